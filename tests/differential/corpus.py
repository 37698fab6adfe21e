"""The fixed corpus: the cases of nova-facts.md, at every microversion.

Each body is sent at every version of VERSIONS. The URL form (with or without
the project id) and the header that carries the microversion
(OpenStack-API-Version or X-OpenStack-Nova-API-Version) rotate with the body,
so that every (version, URL form, header) combination is covered by a quarter
of the bodies; the bodies in FULL_FORMS are sent in all four combinations at
every version (NOVA_GUARD_DIFF_FULL=1 does that for every body).

Where nova-facts.md gives Nova's answer, the case carries it (``expect``) and
Nova's real answer is checked against it too.
"""

import json
import os

from harness import ROUTED_ELSEWHERE, Case

VERSIONS = ['v2', '2.1', '2.18', '2.19', '2.89', '2.90', '2.93', '2.94',
            '2.103', '2.104', 'latest']
V21_FORMS = [('project', 'new'), ('bare', 'legacy'), ('bare', 'new'),
             ('project', 'legacy')]
# Legacy /v2 ignores (deletes) both microversion headers; send them anyway.
V2_FORMS = [('project', 'none'), ('bare', 'none'), ('project', 'new'),
            ('bare', 'both')]

MAX = '2.104'


def vnum(v):
    """Comparable microversion; legacy v2 is below 2.1."""
    if v == 'v2':
        return (2, 0)
    if v == 'latest':
        v = MAX
    a, b = v.split('.')
    return (int(a), int(b))


def dumps(obj, ascii=False):
    return json.dumps(obj, ensure_ascii=ascii).encode('utf-8')


def srv(**fields):
    return dumps({'server': fields})


def srv_a(**fields):
    """Same, with every non-ASCII character escaped as \\uXXXX."""
    return dumps({'server': fields}, ascii=True)


class B:
    """A body and what nova-facts.md says about it, by version."""

    def __init__(self, name, body, expect=None, full=False, fields=None):
        self.name = name
        self.body = body
        self.expect = expect    # callable(version) -> (status, msg) | None
        self.full = full
        self.fields = fields    # only used for documentation


def ok_from(v0):
    """Accepted (200) from microversion v0 on, else Additional properties."""
    def f(v):
        return (200, None) if vnum(v) >= vnum(v0) else None
    return f


def always(status, msg=None):
    return lambda v: (status, msg)


def v21(status, msg=None, legacy=None):
    """Same answer on every v2.1 version; legacy gets ``legacy``."""
    def f(v):
        if v == 'v2':
            return legacy
        return (status, msg)
    return f


def field_msg(field, value, jmsg):
    return 'Invalid input for field/attribute %s. Value: %s. %s' % (
        field, value, jmsg)


NAME_REASON = ("An invalid 'name' value was provided. The name must be: "
               "printable characters. Can not start or end with whitespace.")
NAME_REASON_V2 = ("An invalid 'name' value was provided. The name must be: "
                  "printable characters with at least one non space character")
HOSTNAME_290_RE = '^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$'


def bodies():
    out = []
    add = out.append

    # --- §3.3 / §3.5: no server entity, top level -------------------------
    none_obj = "None is not of type 'object'"
    add(B('top-null', b'null', always(400, none_obj), full=True))
    add(B('top-empty-object', b'{}',
          always(400, "'server' is a required property"), full=True))
    add(B('top-foo', b'{"foo": 1}',
          always(400, "'server' is a required property")))
    add(B('top-list', b'[]', always(400, "[] is not of type 'object'")))
    add(B('top-string', b'"abc"', always(400, "'abc' is not of type 'object'")))
    add(B('top-int', b'1', always(400, "1 is not of type 'object'")))
    add(B('server-string', b'{"server": "abc"}', always(400, field_msg(
        'server', 'abc', "'abc' is not of type 'object'"))))
    add(B('server-null', b'{"server": null}', always(400, field_msg(
        'server', 'None', "None is not of type 'object'")), full=True))
    add(B('server-list', b'{"server": [{"name": "x"}]}'))
    add(B('server-string-plus-extra', b'{"foo": 1, "server": "abc"}'))
    add(B('server-empty', b'{"server": {}}', always(200), full=True))
    add(B('server-foo', b'{"server": {"foo": "x"}}', v21(400, field_msg(
        'server', "{'foo': 'x'}",
        "Additional properties are not allowed ('foo' was unexpected)"),
        legacy=(200, None)), full=True))
    add(B('server-ok-top-foo', b'{"server": {"name": "ok"}, "foo": 1}', v21(
        400, "Additional properties are not allowed ('foo' was unexpected)",
        legacy=(200, None))))
    add(B('server-two-extra', b'{"server": {"foo": 1, "bar": 2}}', v21(
        400, field_msg('server', "{'foo': 1, 'bar': 2}",
                       "Additional properties are not allowed "
                       "('bar', 'foo' were unexpected)"),
        legacy=(200, None))))
    add(B('top-two-extra', b'{"server": {}, "zed": 1, "abc": 2}', v21(
        400, "Additional properties are not allowed "
        "('abc', 'zed' were unexpected)", legacy=(200, None))))
    add(B('server-name-plus-foo', srv(name='x', foo=1),
          v21(400, None, legacy=(200, None))))
    add(B('admin_password', srv(admin_password='secret'),
          v21(400, None, legacy=(200, None))))
    add(B('host_id', srv(host_id='abc'), v21(400, None, legacy=(200, None))))
    add(B('hostId-legacy-style', srv(hostId='abc', name='n')))
    add(B('personality', srv(personality=[], name='n')))

    # --- §1.3 name ---------------------------------------------------------
    add(B('name-ascii', srv(name='renamed'), always(200), full=True))
    add(B('name-tempest-multibyte', srv(name='\u00cd\u00f1st\u00e1\u00f1c'
                                          '\u00c9-update-1'), always(200)))
    add(B('name-tempest-escaped', srv_a(name='\u00cd\u00f1st\u00e1\u00f1c'
                                          '\u00c9-update-2'), always(200)))
    add(B('name-ete', srv(name='\u00e9t\u00e9'), always(200)))
    add(B('name-ideographic-space-inside', srv(name='a\u3000b'), always(200)))
    add(B('name-20a1', srv(name='\u20a1'), always(200)))
    add(B('name-leading-space', srv(name=' a'),
          v21(400, NAME_REASON, legacy=(200, None)), full=True))
    add(B('name-trailing-space', srv(name='a '),
          v21(400, NAME_REASON, legacy=(200, None))))
    add(B('name-trailing-nbsp', srv(name='a\u00a0'),
          v21(400, NAME_REASON, legacy=(200, None))))
    add(B('name-spaces-only', srv(name='   '),
          v21(400, NAME_REASON, legacy=(400, NAME_REASON_V2))))
    add(B('name-64-spaces', srv(name=' ' * 64),
          v21(400, NAME_REASON, legacy=(400, NAME_REASON_V2))))
    add(B('name-empty', srv(name=''), v21(
        400, field_msg('name', '', "'' should be non-empty"),
        legacy=(400, NAME_REASON_V2)), full=True))
    add(B('name-zwsp', srv(name='\u200b'), v21(
        400, NAME_REASON, legacy=(400, NAME_REASON_V2))))
    add(B('name-tab-inside', srv(name='a\tb'), v21(
        400, NAME_REASON, legacy=(400, NAME_REASON_V2))))
    add(B('name-emoji', srv(name='\U0001F600'), v21(
        400, NAME_REASON, legacy=(400, NAME_REASON_V2))))
    add(B('name-emoji-escaped', srv_a(name='ok\U0001F600'), v21(
        400, NAME_REASON, legacy=(400, NAME_REASON_V2))))
    add(B('name-lone-surrogate', b'{"server": {"name": "a\\ud83d"}}', v21(
        400, NAME_REASON, legacy=(400, NAME_REASON_V2))))
    add(B('name-255', srv(name='x' * 255), always(200)))
    add(B('name-255-multibyte', srv(name='\u00e9' * 255), always(200)))
    add(B('name-256', srv(name='x' * 256), always(400, field_msg(
        'name', 'x' * 256, "'%s' is too long" % ('x' * 256)))))
    add(B('name-256-tempest-a', srv(name='a' * 256), always(400, None)))
    add(B('name-256-multibyte', srv(name='\u00e9' * 256), always(400, None)))
    add(B('name-trailing-newline', srv(name='abc\n'), always(200)))
    add(B('name-newline-inside', srv(name='a\nb'), v21(
        400, NAME_REASON, legacy=(400, NAME_REASON_V2))))
    add(B('name-newline-only', srv(name='\n'), v21(
        400, NAME_REASON, legacy=(400, NAME_REASON_V2))))
    add(B('name-inner-spaces', srv(name='abc   def'), always(200)))
    add(B('name-outer-and-inner-spaces', srv(name='  abc   def  '),
          v21(400, NAME_REASON, legacy=(200, None))))
    add(B('name-int', srv(name=123), always(400, field_msg(
        'name', '123', "123 is not of type 'string'"))))
    add(B('name-null', srv(name=None), always(400, field_msg(
        'name', 'None', "None is not of type 'string'"))))
    add(B('name-true', srv(name=True), always(400, field_msg(
        'name', 'True', "True is not of type 'string'"))))
    add(B('name-float', b'{"server": {"name": 1E2}}', always(400, field_msg(
        'name', '100.0', "100.0 is not of type 'string'"))))
    add(B('name-list', srv(name=['a', 1])))
    add(B('name-nan', b'{"server": {"name": NaN}}'))
    add(B('name-infinity', b'{"server": {"name": -Infinity}}'))
    add(B('name-1e400', b'{"server": {"name": 1e400}}'))

    # --- diskConfig -----------------------------------------------------------
    add(B('diskconfig-auto', srv(**{'OS-DCF:diskConfig': 'AUTO'}),
          always(200)))
    add(B('diskconfig-manual', srv(**{'OS-DCF:diskConfig': 'MANUAL'}),
          always(200)))
    add(B('diskconfig-lower', srv(**{'OS-DCF:diskConfig': 'auto'}), always(
        400, field_msg('OS-DCF:diskConfig', 'auto',
                       "'auto' is not one of ['AUTO', 'MANUAL']"))))
    add(B('diskconfig-null', srv(**{'OS-DCF:diskConfig': None})))
    add(B('diskconfig-empty', srv(**{'OS-DCF:diskConfig': ''})))

    # --- §2 accessIPv4 --------------------------------------------------------
    for ip in ['1.2.3.4', '0.0.0.0', '255.255.255.255', '192.168.0.10',
               '1.1.1.1']:
        add(B('ipv4-ok-%s' % ip, srv(accessIPv4=ip), always(200)))
    for ip in ['01.2.3.4', '1.2.3.04', '1.2.3', '256.1.1.1', '0x1.2.3.4',
               '1..3.4', '\u0661.2.3.4', '1.2.3.4\n', ' 1.2.3.4',
               '1.1.1.1.1.1', '::1', '1.2.3.4/32']:
        add(B('ipv4-bad-%r' % ip, srv(accessIPv4=ip), always(
            400, field_msg('accessIPv4', ip, "%r is not a 'ipv4'" % ip))))
    add(B('ipv4-empty', srv(accessIPv4=''), always(400, field_msg(
        'accessIPv4', '', "'' is not a 'ipv4'"))))
    add(B('ipv4-null', srv(accessIPv4=None), always(400, field_msg(
        'accessIPv4', 'None', "None is not of type 'string'"))))
    add(B('ipv4-int', srv(accessIPv4=16909060)))

    # --- §2 accessIPv6: accepted, with canonical rendering ------------------
    canonical = [
        ('::babe:67.23.10.132', '::babe:4317:a84'),
        ('0000:0000:0000:0000:0000:babe:220.12.22.2', '::babe:dc0c:1602'),
        ('::babe:202:202', '::babe:202:202'),
        ('2001:DB8::1', '2001:db8::1'),
        ('2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'),
        ('2001:0DB8:0:0:0:0:0:1', '2001:db8::1'),
        ('2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'),
        ('1:0:0:1:0:0:0:1', '1:0:0:1::1'),
        ('1:0:0:2:0:0:3:4', '1::2:0:0:3:4'),
        ('1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'),
        ('::1:2:3:4:5:6:7', '0:1:2:3:4:5:6:7'),
        ('::ffff:1.2.3.4', '::ffff:1.2.3.4'),
        ('::FFFF:1.2.3.4', '::ffff:1.2.3.4'),
        ('::ffff:abcd:1234', '::ffff:171.205.18.52'),
        ('::1.2.3.4', '::1.2.3.4'),
        ('::0.1.0.0', '::0.1.0.0'),
        ('::0.0.0.1', '::1'),
        ('::0.0.255.255', '::ffff'),
        ('::255.255.255.255', '::255.255.255.255'),
        ('::ffff:0:1.2.3.4', '::ffff:0:102:304'),
        ('64:ff9b::1.2.3.4', '64:ff9b::102:304'),
        ('1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'),
        ('FE80::ABCD', 'fe80::abcd'),
        ('0001:0002::', '1:2::'),
        ('2001:2001::3', '2001:2001::3'),
        ('2001:db8::9abc', '2001:db8::9abc'),
        ('::', '::'),
        ('::1', '::1'),
        ('1::', '1::'),
        ('0:0:0:0:0:0:0:0', '::'),
        ('1:0:0:0:1:0:0:0', '1::1:0:0:0'),
        ('0:0:1:0:0:0:0:0', '0:0:1::'),
        ('1:2:0:4:5:6:7:8', '1:2:0:4:5:6:7:8'),
        ('::ffff:0.0.0.0', '::ffff:0.0.0.0'),
        ('::1:0:0:0', '::1:0:0:0'),
    ]
    for i, (ip, canon) in enumerate(canonical):
        add(B('ipv6-ok-%s' % ip, srv(accessIPv6=ip), always(200),
              full=(i == 0), fields={'accessIPv6': canon}))
    add(B('ipv6-and-ipv4-tempest', srv(accessIPv4='1.1.1.1',
                                       accessIPv6='::babe:202:202'),
          always(200)))
    add(B('ipv6-escaped-text', b'{"server": {"accessIPv6": '
          b'"2001:0DB8\\u003a:0:0:1"}}', always(200)))
    add(B('ipv6-repeated-key', b'{"server": {"accessIPv6": "::1", '
          b'"name": "dup", "accessIPv6": "0:0::0:00:1:2"}}', always(200)))
    for ip in ['00001::', '1::2::3', ':1::2', '1::2:', '1:2:3:4:5:6:7:1.2.3.4',
               '::ffff:1.2.3', '2001:db8::1/64', '[::1]', ' ::1', '::1 ',
               '::\u0661', 'fe80::1%eth0', 'fe80::1%', '::1\n', 'fe80:::::::',
               '::ffff:01.2.3.4', '0.0.0.0', '1:2:3:4:5:6:7:8:9', 'g::1',
               '1:2:3:4:5:6:7', '::12345']:
        add(B('ipv6-bad-%r' % ip, srv(accessIPv6=ip), always(
            400, field_msg('accessIPv6', ip, "%r is not a 'ipv6'" % ip))))
    add(B('ipv6-empty', srv(accessIPv6=''), always(400, field_msg(
        'accessIPv6', '', "'' is not a 'ipv6'")), full=True))
    add(B('ipv6-null', srv(accessIPv6=None), always(400, field_msg(
        'accessIPv6', 'None', "None is not of type 'string'"))))

    # --- §3.4 which error wins ---------------------------------------------
    add(B('order-ipv4-then-name', b'{"server": {"accessIPv4": "x", '
          b'"name": ""}}', v21(400, field_msg(
              'name', '', "'' should be non-empty"))))
    add(B('order-foo-and-bad-ipv4', b'{"server": {"name": "x", "foo": 1, '
          b'"accessIPv4": "bad"}}', v21(400, field_msg(
              'accessIPv4', 'bad', "'bad' is not a 'ipv4'")), full=True))
    add(B('order-ipv6-then-diskconfig', srv(accessIPv6='zz',
                                            **{'OS-DCF:diskConfig': 'x'})))
    add(B('order-all-bad', b'{"server": {"pinned_availability_zone": "", '
          b'"hostname": "-", "description": 1, "accessIPv6": "", '
          b'"accessIPv4": "", "OS-DCF:diskConfig": "", "name": ""}, '
          b'"top": 1}', full=True))
    add(B('order-extra-and-top-extra', b'{"zzz": 1, "server": {"aaa": 1}}'))

    # --- description (2.19+) --------------------------------------------------
    add(B('description', srv(description='x'), ok_from('2.19'), full=True))
    add(B('description-empty', srv(description=''), ok_from('2.19')))
    add(B('description-null', srv(description=None), ok_from('2.19')))
    add(B('description-int', srv(description=1), lambda v: (
        (400, field_msg('description', '1',
                        "1 is not of type 'string', 'null'"))
        if vnum(v) >= (2, 19) else None)))
    add(B('description-trailing-newline', srv(description='x\n'),
          ok_from('2.19')))
    add(B('description-tab', srv(description='a\tb')))
    add(B('description-255', srv(description='d' * 255), ok_from('2.19')))
    add(B('description-256', srv(description='d' * 256)))
    add(B('description-emoji', srv(description='\U0001F600')))
    add(B('description-ete', srv(description='\u00e9t\u00e9 \u3000 x'),
          ok_from('2.19')))
    add(B('description-line-separator', srv(description='a\u2028b')))
    add(B('description-with-name', srv(name='with-desc', description='d')))

    # --- hostname (2.90+, FQDN from 2.94) ------------------------------------
    add(B('hostname-ab', srv(hostname='ab'), ok_from('2.90'), full=True))
    add(B('hostname-a', srv(hostname='a'), lambda v: (
        (400, field_msg('hostname', 'a', "'a' does not match %r"
                        % HOSTNAME_290_RE))
        if (2, 90) <= vnum(v) < (2, 94) else
        (200, None) if vnum(v) >= (2, 94) else None)))
    add(B('hostname-dotted', srv(hostname='my-host.example.com')))
    add(B('hostname-underscore', srv(hostname='a_b')))
    add(B('hostname-leading-dash', srv(hostname='-ab')))
    add(B('hostname-trailing-newline', srv(hostname='ab\n')))
    add(B('hostname-newline-only', srv(hostname='\n')))
    add(B('hostname-dot', srv(hostname='.')))
    add(B('hostname-empty', srv(hostname=''), lambda v: (
        (400, field_msg('hostname', '', "'' should be non-empty"))
        if vnum(v) >= (2, 94) else None)))
    add(B('hostname-63', srv(hostname='h' * 63), ok_from('2.90')))
    add(B('hostname-64', srv(hostname='h' * 64)))
    add(B('hostname-255', srv(hostname='h' * 255)))
    add(B('hostname-256', srv(hostname='h' * 256)))
    add(B('hostname-int', srv(hostname=1)))
    add(B('hostname-null', srv(hostname=None)))

    # --- pinned_availability_zone (2.104+), tempest's sequence --------------
    add(B('pinned-az-empty', srv(pinned_availability_zone=''), lambda v: (
        (400, field_msg('pinned_availability_zone', '',
                        "'' is not valid under any of the given schemas"))
        if vnum(v) >= (2, 104) else None), full=True))
    add(B('pinned-az-unpin', srv(pinned_availability_zone=None),
          ok_from('2.104')))
    add(B('pinned-az-pin-current', srv(pinned_availability_zone='nova'),
          ok_from('2.104')))
    add(B('pinned-az-other-while-pinned',
          srv(pinned_availability_zone='other')))
    add(B('pinned-az-pin-again', srv(pinned_availability_zone='nova'),
          ok_from('2.104')))
    add(B('pinned-az-unpin-2', srv(pinned_availability_zone=None),
          ok_from('2.104')))
    add(B('pinned-az-unpin-unpinned', srv(pinned_availability_zone=None),
          ok_from('2.104')))
    add(B('pinned-az-other-while-unpinned',
          srv(pinned_availability_zone='other')))
    add(B('pinned-az-int', srv(pinned_availability_zone=1)))
    add(B('pinned-az-256', srv(pinned_availability_zone='z' * 256)))

    # --- everything at once ---------------------------------------------------
    add(B('all-valid-fields', srv(
        name='all', description='all fields', hostname='all-host',
        accessIPv4='10.0.0.1', accessIPv6='2001:DB8:0::10',
        pinned_availability_zone=None, **{'OS-DCF:diskConfig': 'AUTO'})))

    # --- §3.5 parsing -----------------------------------------------------------
    mal = 'Malformed request body'
    for name, body in [
            ('malformed-open-brace', b'{'),
            ('malformed-trailing-data', b'{"server": {}} x'),
            ('malformed-two-objects', b'{"server": {}}{"server": {}}'),
            ('malformed-bom', b'\xef\xbb\xbf{"server": {}}'),
            ('malformed-whitespace-only', b'  \n '),
            ('malformed-raw-control-char', b'{"server": {"name": "a\x01b"}}'),
            ('malformed-raw-newline', b'{"server": {"name": "a\nb"}}'),
            ('malformed-single-quotes', b"{'server': {}}"),
            ('malformed-trailing-comma', b'{"server": {"name": "x",}}'),
            ('malformed-bad-escape', b'{"server": {"name": "\\x41"}}'),
            ('malformed-short-unicode-escape', b'{"server": {"name": "\\u12"}}'),
            ('malformed-nan-lowercase', b'{"server": {"name": nan}}'),
            ('malformed-big-int', b'{"server": {"name": ' + b'9' * 4301
             + b'}}'),
    ]:
        add(B(name, body, always(400, mal)))
    add(B('big-int-4300', b'{"server": {"name": ' + b'9' * 4300 + b'}}'))
    add(B('duplicate-name-last-wins-bad',
          b'{"server": {"name": "a", "name": ""}}'))
    add(B('duplicate-name-last-wins-good',
          b'{"server": {"name": "", "name": "good"}}', always(200)))
    add(B('duplicate-server-last-wins',
          b'{"server": {"name": ""}, "server": {"name": "ok2"}}',
          always(200)))
    add(B('duplicate-server-last-not-object',
          b'{"server": {"name": "ok"}, "server": 1}'))
    add(B('escaped-key-name', b'{"server": {"n\\u0061me": "esc-key"}}',
          always(200)))
    add(B('escaped-slash', b'{"server": {"name": "a\\/b"}}', always(200)))
    add(B('whitespace-everywhere',
          b' \r\n\t{ "server" :\n{\t"name"\r:\n"ws" } }\n ', always(200)))
    return out


# --- requests other than the body ----------------------------------------------

def order_cases():
    """§5: the checks that come before body validation, and what wins."""
    bad = srv(name='')
    good = srv(name='order-ok')
    cases = []
    for v in ('v2', '2.1', '2.104'):
        for i, (form, hdr) in enumerate(V2_FORMS[:2] if v == 'v2'
                                        else V21_FORMS[:2]):
            tag = '%s/%s/%s' % (v, form, hdr)
            c = dict(version=v, url_form=form, header_form=hdr, group='a')
            cases += [
                Case('order-no-token-bad@' + tag, body=bad, token='none', **c,
                     expect=(401, None)),
                Case('order-no-token-good@' + tag, body=good, token='none',
                     **c),
                Case('order-empty-token-bad@' + tag, body=bad,
                     headers={'X-Auth-Token': ''}, **c),
                Case('order-missing-server-bad@' + tag, body=bad,
                     server='missing', **c),
                Case('order-missing-server-good@' + tag, body=good,
                     server='missing', expect=(404, None), **c),
                Case('order-reader-good@' + tag, body=good, token='reader',
                     expect=(403, "Policy doesn't allow "
                             "os_compute_api:servers:update to be performed."),
                     **c),
                Case('order-reader-bad@' + tag, body=bad, token='reader', **c),
                Case('order-reader-missing@' + tag, body=good, token='reader',
                     server='missing', expect=(404, None), **c),
                Case('order-other-project-good@' + tag, body=good,
                     token='other', url_project=OTHER_PROJECT,
                     expect=(404, None), **c),
                Case('order-other-project-bad@' + tag, body=bad,
                     token='other', url_project=OTHER_PROJECT, **c),
                Case('order-ctype-xml-malformed@' + tag, body=b'{',
                     headers={'Content-Type': 'application/xml'},
                     expect=(415, 'Unsupported Content-Type'), **c),
                Case('order-ctype-xml-bad@' + tag, body=bad,
                     headers={'Content-Type': 'application/xml'}, **c),
                Case('order-malformed-missing-server@' + tag, body=b'{',
                     server='missing', **c),
                Case('order-empty-body-missing-server@' + tag, body=b'',
                     server='missing', **c),
            ]
    # Pre-Keystone differences (contract difference 5): compared with the
    # answer Nova gives to the same body with valid credentials.
    return cases


OTHER_PROJECT = 'a0a0a0a0b1b1b1b1c2c2c2c2d3d3d3d3'


def prekeystone_cases():
    """Contract difference 5: bad token, or a URL project not the token's."""
    out = []
    for v in ('v2', '2.1', '2.94'):
        form, hdr = (V2_FORMS if v == 'v2' else V21_FORMS)[0]
        for bname, body in [('name-empty', srv(name='')),
                            ('no-entity', b'{"foo": 1}'),
                            ('malformed', b'{'),
                            ('valid', srv(name='prekeystone-ok'))]:
            c = dict(version=v, url_form=form, header_form=hdr, group='a',
                     body=body)
            out.append(Case('prekeystone-bad-token-%s@%s' % (bname, v),
                            token='not a valid token', **c))
            out.append(Case('prekeystone-url-project-%s@%s' % (bname, v),
                            url_project='abcdef0123', **c))
    return out


def content_type_cases():
    out = []
    body = srv(name='ctype-ok')
    bad = srv(name='')
    for v in ('v2', '2.1', '2.104'):
        form, hdr = (V2_FORMS if v == 'v2' else V21_FORMS)[2]
        for ct in [None, '', 'text/plain', 'text/plain; charset=utf-8',
                   'application/json; charset=UTF-8',
                   'application/json;charset=utf-8',
                   'application/json ;charset=utf-8',
                   'application/vnd.openstack.compute+json',
                   'Application/JSON', 'application/xml', ' application/json',
                   'application/json-patch+json', 'text/html',
                   'application/x-www-form-urlencoded', '*/*']:
            for bname, b in (('good', body), ('bad', bad), ('malformed', b'{')):
                out.append(Case('ctype-%r-%s@%s' % (ct, bname, v), body=b,
                                version=v, url_form=form, header_form=hdr,
                                headers={'Content-Type': ct}, group='a'))
    return out


def microversion_header_cases():
    """§4.2: how the version is read; bodies that tell which one was used."""
    probes = [('hostname-a', srv(hostname='a')),
              ('description', srv(description='mv')),
              ('pinned-az-empty', srv(pinned_availability_zone=''))]
    values = [
        ({'OpenStack-API-Version': 'COMPUTE 2.19'}, 'upper-service'),
        ({'OpenStack-API-Version': 'Compute 2.90'}, 'mixed-service'),
        ({'OpenStack-API-Version': 'compute 2.1, compute 2.94'}, 'rightmost'),
        ({'OpenStack-API-Version': 'compute 2.94,compute 2.19'}, 'rightmost-2'),
        ({'OpenStack-API-Version': 'volume 3.0, compute 2.90'}, 'other-first'),
        ({'OpenStack-API-Version': 'volume 3.0',
          'X-OpenStack-Nova-API-Version': '2.19'}, 'fallback-legacy'),
        ({'OpenStack-API-Version': 'compute 2.19',
          'X-OpenStack-Nova-API-Version': '2.104'}, 'new-wins'),
        ({'X-OpenStack-Nova-API-Version': '2.19, 2.94'}, 'legacy-list'),
        ({'X-OpenStack-Nova-API-Version': ' 2.90 '}, 'legacy-spaces'),
        ({'OpenStack-API-Version': 'compute latest'}, 'latest'),
        ({'OpenStack-API-Version': 'compute  2.19'}, 'double-space'),
        ({'OpenStack-API-Version': 'compute 2.105'}, 'too-high'),
        ({'OpenStack-API-Version': 'compute 3.0'}, 'major-3'),
        ({'OpenStack-API-Version': 'compute 2.0'}, 'too-low'),
        ({'OpenStack-API-Version': 'compute 2.x'}, 'bad-format'),
        ({'OpenStack-API-Version': 'compute 2.01'}, 'leading-zero'),
        ({'OpenStack-API-Version': 'compute 2'}, 'no-minor'),
        ({'OpenStack-API-Version': 'compute LATEST'}, 'latest-upper'),
        ({'OpenStack-API-Version': 'compute'}, 'no-version'),
        ({'OpenStack-API-Version': ''}, 'empty'),
        ({'X-OpenStack-Nova-API-Version': '2.105'}, 'legacy-too-high'),
        ({'X-OpenStack-Nova-API-Version': 'latest'}, 'legacy-latest'),
        ({'X-OpenStack-Nova-API-Version': 'bogus'}, 'legacy-bad'),
    ]
    out = []
    for hdrs, tag in values:
        for pname, body in probes:
            for url_form in ('project', 'bare'):
                out.append(Case('mv-%s-%s-%s' % (tag, pname, url_form),
                                body=body, version=None, url_form=url_form,
                                headers=hdrs, group='a'))
        # On /v2 every one of these headers is ignored.
        out.append(Case('mv-%s-v2' % tag, body=srv(description='v2'),
                        version='v2', header_form='none', headers=hdrs,
                        group='a'))
    return out


def size_cases():
    out = []
    head = b'{"server": {"name": "big"}}'
    for v in ('v2', '2.1', '2.104'):
        form, hdr = (V2_FORMS if v == 'v2' else V21_FORMS)[1]
        c = dict(version=v, url_form=form, header_form=hdr, group='a')
        at = head + b' ' * (114688 - len(head))
        over = at + b' '
        out += [
            Case('size-at-limit@' + v, body=at, expect=(200, None), **c),
            Case('size-over-limit@' + v, body=over, expect=(413, None), **c),
            Case('size-over-limit-invalid@' + v,
                 body=b'{"server": {"name": ""}}' + b' ' * 114688, **c),
            Case('size-over-accept-text@' + v, body=over,
                 headers={'Accept': 'text/plain'}, **c),
            Case('size-over-accept-html@' + v, body=over,
                 headers={'Accept': 'text/html'}, **c),
            Case('size-over-no-token@' + v, body=over, token='none', **c),
            Case('size-over-chunked@' + v, body=over, chunked=True, **c),
        ]
    return out


def utf8_cases():
    out = []
    for v in ('v2', '2.1', '2.19', '2.104'):
        form, hdr = (V2_FORMS if v == 'v2' else V21_FORMS)[3]
        c = dict(version=v, url_form=form, header_form=hdr, group='a')
        for name, body in [
                ('ff-in-name', b'{"server": {"name": "\xff"}}'),
                ('lone-byte', b'\xff'),
                ('overlong-slash', b'{"server": {"name": "\xc0\xaf"}}'),
                ('cesu-surrogate', b'{"server": {"name": "\xed\xa0\xbd"}}'),
                ('truncated-sequence', b'{"server": {"name": "\xe2\x82"}}'),
                ('latin1-in-key', b'{"server": {"n\xe4me": "x"}}'),
                ('invalid-utf8-valid-elsewhere',
                 b'{"server": {"name": "ok"}, "x": "\x80"}'),
        ]:
            out.append(Case('utf8-%s@%s' % (name, v), body=body, **c))
            out.append(Case('utf8-%s-missing-server@%s' % (name, v),
                            body=body, server='missing', **c))
        out.append(Case('utf8-text-plain@' + v,
                        body=b'{"server": {"name": "\xff"}}',
                        headers={'Content-Type': 'text/plain'}, **c))
        out.append(Case('utf8-bad-ctype@' + v,
                        body=b'{"server": {"name": "\xff"}}',
                        headers={'Content-Type': 'application/xml'}, **c))
    return out


def chunked_cases():
    out = []
    for v in ('v2', '2.1', '2.104'):
        form, hdr = (V2_FORMS if v == 'v2' else V21_FORMS)[0]
        c = dict(version=v, url_form=form, header_form=hdr, group='a',
                 chunked=True)
        out += [
            Case('chunked-valid@' + v, body=srv(name='chunked'), **c),
            Case('chunked-invalid@' + v, body=srv(name=''), **c),
            Case('chunked-empty@' + v, body=b'', **c),
            Case('chunked-malformed@' + v, body=b'{"server": ', **c),
            Case('chunked-ipv6@' + v, body=srv(accessIPv6='2001:DB8::2'), **c),
        ]
    return out


CONTRACT_SPELLINGS = 12   # the first 12 below are listed by the contract


def routing_cases():
    """Spellings of the update path (contract "Which requests are validated").

    An invalid body shows whether the update handler ran (400) or not (404
    or another answer from Nova); both sides must agree either way.
    """
    spellings = [
        '{base}/{project}//servers/{server}',
        '{base}//{project}/servers/{server}',
        '{base}/{project}/servers//{server}',
        '{base}//servers/{server}',
        '{base}/{project}/%73ervers/{server}',
        '{base}/{project}%2Fservers/{server}',
        '/{base}/{project}/servers/{server}',
        '{base}/./{project}/servers/{server}',
        '{base}/x/../{project}/servers/{server}',
        '{base}/{project}/servers/{server}#frag',
        'http://{host}{base}/{project}/servers/{server}',
        '{base}/{project}/servers/{server}.json',
        # not update-server for any server:
        '{base}/{project}/servers/{server}/',
        '{base}/{project}/SERVERS/{server}',
        '{base}/{project}/servers/{server}%2F',
        '{base}/{project}/servers/{server}?foo=bar',
        '{base}/{project}/servers/detail',
        '{base}/{project}/servers/{server}/metadata',
        '{base}/{project}/servers',
    ]
    out = []
    for v in ('v2', '2.1', '2.94'):
        for i, sp in enumerate(spellings):
            for bname, body in (('bad', srv(name='')),
                                ('no-entity', b'{"x": 1}')):
                out.append(Case('route-%d-%s@%s' % (i, bname, v), body=body,
                                version=v, url_form=sp, header_form='new',
                                group='a', note=ROUTED_ELSEWHERE
                                if i < CONTRACT_SPELLINGS else ''))
        out.append(Case('route-upper-version@' + v, body=srv(name=''),
                        version=v, url_form='/V2.1/{project}/servers/{server}',
                        group='a'))
        out.append(Case('route-post@' + v, body=srv(name=''), version=v,
                        method='POST', group='a'))
        out.append(Case('route-patch@' + v, body=srv(name=''), version=v,
                        method='PATCH', group='a'))
        out.append(Case('route-upper-project@' + v, body=srv(name=''),
                        version=v, url_project='6F70656E737461636B',
                        group='a'))
    return out


def static_cases():
    full = os.environ.get('NOVA_GUARD_DIFF_FULL') == '1'
    out = []
    for bi, b in enumerate(bodies()):
        for vi, v in enumerate(VERSIONS):
            forms = V2_FORMS if v == 'v2' else V21_FORMS
            chosen = forms if (full or b.full) else [
                forms[(bi + vi) % len(forms)]]
            for form, hdr in chosen:
                exp = b.expect(v) if b.expect else None
                out.append(Case(
                    '%s@%s/%s/%s' % (b.name, v, form, hdr), group='a',
                    body=b.body, version=v, url_form=form, header_form=hdr,
                    expect=exp, expect_fields=b.fields))
    for fn in (order_cases, content_type_cases, microversion_header_cases,
               size_cases, utf8_cases, chunked_cases, routing_cases):
        out += fn()
    return out
