"""(g) nova-guard reads each request as Nova will, under cheroot and uWSGI.

Every case runs against Nova under each WSGI server (``wsgi_stack``: cheroot
and uWSGI, ``enable_proxy_headers_parsing = True``), directly and through
nova-guard, compared as every other case is (harness.compare), with the
contract's deliberate differences as predicates (harness.reading_difference):

- header names with ``_`` (``X_Auth_Token``, ``OpenStack_API_Version``,
  ``Content_Type``, ``Content_Length``...), alone and beside the dashed name
  in either order: dropped by nova-guard, so its answer is Nova's answer to
  the request without them;
- repeated lines: ``OpenStack-API-Version`` / ``X-OpenStack-Nova-API-Version``
  combined into one; ``Content-Type`` / ``Content-Length`` that differ: 400;
  identical ones read as one; ``X-Auth-Token`` twice;
- path spellings (corpus.routing_cases and a few more);
- no Host, HTTP/1.1 and 1.0;
- JSON nested 700 to 1,100 levels deep, in six places;
- CONNECT to an update URL and to an authority;
- bytes HTTP forbids in the target or a header value: 400.

Then (test_walk_around) the safety property itself: a body that nova-guard
rejects when the request is spelled plainly (a ``description`` with NUL on
legacy ``/v2``; an ``accessIPv4`` in ``NOVA_GUARD_ACCESS_IPV4_DENY``) is
never stored by Nova when sent through nova-guard with an underscore,
repeated or otherwise ambiguous spelling, under either server, whatever
each server itself makes of the spelling (which is printed).
test_walk_around_routing does the same for spellings that Nova itself routes
to update, create or rebuild (``X-Storage-Token``, ``_method=`` in the query,
a ``version=`` parameter of Content-Type / Accept on an unversioned path, paths
as uWSGI decodes them, a final ``%0a``, a target without a leading ``/``, an
HTTP/2 field value with white space around it): nova-guard must answer them as
it answers the plain spelling (the last two: a 400 of its own, nothing
forwarded; absolute-form targets whose authority hides a path: nothing stored).
"""

import json
import time

import pytest

import corpus
import harness
import wsgi_servers
from conftest import SEED, selected
from corpus import srv
from wire import DeepCase, WireCase

B_OK = srv(name='wsgi-ok')
B_BAD = srv(name='')
B_V2X = b'{"server": {"description": "wsgi\\u0000x"}}'     # legacy /v2 only
B_D19 = srv(description='wsgi-d')                          # from 2.19
B_H90 = srv(hostname='wsgi-h')                             # from 2.90
B_DENY = srv(accessIPv4=wsgi_servers.DENIED_IPV4)


def wcase(id, body, version='2.1', **kw):
    return WireCase('wsgi-%s' % id, group='g', body=body, version=version,
                    **kw)


def header_cases():
    out = []
    tok = '{token}'
    # (tag, WireCase keywords, bodies, versions)
    underscore = [
        ('u-token-only', dict(token='none', lines=[('X_Auth_Token', tok)]),
         (B_OK, B_BAD), ('2.1', 'v2')),
        ('u-token-empty-dashed', dict(token='none', lines=[
            ('X-Auth-Token', ''), ('X_Auth_Token', tok)]),
         (B_OK, B_BAD), ('2.1', 'v2')),
        ('u-token-bogus-first', dict(token='none', lines=[
            ('X_Auth_Token', 'bogus'), ('X-Auth-Token', tok)]),
         (B_OK, B_BAD), ('2.1',)),
        ('u-token-bogus-after', dict(lines=[('X_Auth_Token', 'bogus')]),
         (B_OK, B_BAD), ('2.1',)),
        ('u-version', dict(header_form='none', lines=[
            ('OpenStack_API_Version', 'compute 2.19')]),
         (B_D19, B_BAD), ('2.1',)),
        ('u-version-after-dashed', dict(header_form='none', lines=[
            ('OpenStack-API-Version', 'compute 2.1'),
            ('OpenStack_API_Version', 'compute 2.19')]),
         (B_D19, B_OK), ('2.1',)),
        ('u-version-malformed-dashed', dict(header_form='none', lines=[
            ('OpenStack-API-Version', 'compute 2.x'),
            ('OpenStack_API_Version', 'compute 2.19')]),
         (B_D19, B_BAD), ('2.1',)),
        ('u-legacy-version', dict(header_form='none', lines=[
            ('X_OpenStack_Nova_API_Version', '2.90')]),
         (B_H90, B_OK), ('2.1',)),
        ('u-legacy-high-dashed', dict(header_form='none', lines=[
            ('X-OpenStack-Nova-API-Version', '9.99'),
            ('X_OpenStack_Nova_API_Version', '2.19')]),
         (B_D19, B_BAD), ('2.1',)),
        ('u-ctype-only-xml', dict(drop=('Content-Type',), lines=[
            ('Content_Type', 'application/xml')]),
         (B_OK, B_BAD), ('2.1', 'v2')),
        ('u-ctype-json-after-xml', dict(drop=('Content-Type',), lines=[
            ('Content-Type', 'application/xml'),
            ('Content_Type', 'application/json')]),
         (B_OK, B_BAD), ('2.1', 'v2')),
        ('u-ctype-xml-after-json', dict(drop=('Content-Type',), lines=[
            ('Content_Type', 'application/json'),
            ('Content-Type', 'application/xml')]),
         (B_OK, B_BAD), ('2.1',)),
        ('u-clength-extra-0', dict(lines=[('Content_Length', '0')]),
         (B_OK, B_BAD), ('2.1',)),
    ]
    repeated = [
        ('r-version-volume', dict(header_form='none', lines=[
            ('OpenStack-API-Version', 'compute 2.19'),
            ('OpenStack-API-Version', 'volume 3.0')]),
         (B_D19, B_BAD), ('2.1',)),
        ('r-version-two', dict(header_form='none', lines=[
            ('OpenStack-API-Version', 'compute 2.90'),
            ('OpenStack-API-Version', 'compute 2.19')]),
         (B_H90, B_D19), ('2.1',)),
        ('r-version-malformed-first', dict(header_form='none', lines=[
            ('OpenStack-API-Version', 'compute 2.x'),
            ('OpenStack-API-Version', 'compute 2.19')]),
         (B_D19, B_BAD), ('2.1',)),
        ('r-version-malformed-last', dict(header_form='none', lines=[
            ('OpenStack-API-Version', 'compute 2.19'),
            ('OpenStack-API-Version', 'compute 2.x')]),
         (B_D19, B_BAD), ('2.1',)),
        ('r-version-high-volume', dict(header_form='none', lines=[
            ('OpenStack-API-Version', 'compute 9.99'),
            ('OpenStack-API-Version', 'volume 3.0')]),
         (B_OK, B_BAD), ('2.1',)),
        ('r-legacy-two', dict(header_form='none', lines=[
            ('X-OpenStack-Nova-API-Version', '2.90'),
            ('X-OpenStack-Nova-API-Version', '2.19')]),
         (B_H90, B_D19), ('2.1',)),
        ('r-legacy-high-first', dict(header_form='none', lines=[
            ('X-OpenStack-Nova-API-Version', '9.99'),
            ('X-OpenStack-Nova-API-Version', '2.19')]),
         (B_D19, B_BAD), ('2.1',)),
        ('r-legacy-high-last', dict(header_form='none', lines=[
            ('X-OpenStack-Nova-API-Version', '2.19'),
            ('X-OpenStack-Nova-API-Version', '9.99')]),
         (B_D19,), ('2.1',)),
        ('r-ctype-same', dict(drop=('Content-Type',), lines=[
            ('Content-Type', 'application/json'),
            ('Content-Type', 'application/json')]),
         (B_OK, B_BAD), ('2.1', 'v2')),
        ('r-ctype-xml-json', dict(drop=('Content-Type',), lines=[
            ('Content-Type', 'application/xml'),
            ('Content-Type', 'application/json')]),
         (B_OK, B_BAD), ('2.1', 'v2')),
        ('r-ctype-json-xml', dict(drop=('Content-Type',), lines=[
            ('Content-Type', 'application/json'),
            ('Content-Type', 'application/xml')]),
         (B_OK, B_BAD), ('2.1',)),
        ('r-token-valid-bogus', dict(token='none', lines=[
            ('X-Auth-Token', tok), ('X-Auth-Token', 'bogus')]),
         (B_OK, B_BAD), ('2.1',)),
        ('r-token-bogus-valid', dict(token='none', lines=[
            ('X-Auth-Token', 'bogus'), ('X-Auth-Token', tok)]),
         (B_OK, B_BAD), ('2.1',)),
        ('r-token-same', dict(token='none', lines=[
            ('X-Auth-Token', tok), ('X-Auth-Token', tok)]),
         (B_OK, B_BAD), ('2.1', 'v2')),
        ('r-token-empty-valid', dict(token='none', lines=[
            ('X-Auth-Token', ''), ('X-Auth-Token', tok)]),
         (B_OK, B_BAD), ('2.1',)),
    ]
    for tag, kw, bodies, versions in underscore + repeated:
        for v in versions:
            for bi, body in enumerate(bodies):
                out.append(wcase('%s-%d@%s' % (tag, bi, v), body, v, **kw))
    # Bodies framed by the lines themselves.
    for bi, body in enumerate((B_OK, B_BAD)):
        n = str(len(body))
        out += [
            wcase('u-clength-only-%d' % bi, body, framed=True,
                  lines=[('Content_Length', n)]),
            wcase('r-clength-same-%d' % bi, body, framed=True,
                  lines=[('Content-Length', n), ('Content-Length', n)]),
            wcase('r-clength-differ-%d' % bi, body, framed=True,
                  lines=[('Content-Length', n), ('Content-Length', '2')]),
        ]
    return out


def path_cases():
    """corpus.routing_cases at /v2 and 2.1, and spellings it lacks."""
    out = [c for c in corpus.routing_cases()
           if c.id.endswith(('@v2', '@2.1'))]
    more = [
        # Routed by uWSGI (it removes dot segments), not by cheroot.
        ('dots', '{base}/{project}/./servers/./{server}', True),
        # Routed by neither (404); nova-guard may validate them (it decodes
        # before it removes dot segments): validating more is safe.
        ('pct-dotdot', '{base}/{project}/x/%2e%2e/servers/{server}', True),
        ('pct-dotdot-2', '{base}/{project}/servers/%2e%2e/{server}', True),
        # Routed by uWSGI (it removes dot segments before it decodes: the
        # `..` removes `%2e%2e`), not by cheroot.
        ('pct-dotdot-back', '{base}/{project}/servers/%2e%2e/../{server}',
         True),
        # Routed by both, as the server id 'S#x' / 'S;x' (no such server).
        ('pct-hash', '{base}/{project}/servers/{server}%23x', False),
        ('semicolon', '{base}/{project}/servers/{server};x', False),
        # Routed by cheroot (server id 'S%2F'), not by uWSGI.
        ('pct-slash-end', '{base}/{project}/servers/{server}%2F', False),
    ]
    for v in ('v2', '2.1'):
        for tag, sp, elsewhere in more:
            for bname, body in (('bad', B_BAD), ('no-entity', b'{"x": 1}')):
                out.append(harness.Case(
                    'wsgi-route-%s-%s@%s' % (tag, bname, v), group='g',
                    body=body, version=v, url_form=sp,
                    note=harness.ROUTED_ELSEWHERE if elsewhere else ''))
    return out


def host_cases():
    out = []
    for hv in ('HTTP/1.1', 'HTTP/1.0'):
        tag = hv[-3:]
        for bi, body in enumerate((B_OK, B_BAD)):
            out.append(wcase('no-host-%s-%d' % (tag, bi), body,
                             drop=('Host',), http_version=hv))
        out.append(wcase('no-host-get-%s' % tag, None, method='GET',
                         drop=('Host',), http_version=hv))
    return out


def connect_cases():
    return [
        wcase('connect-path-ok', B_OK, method='CONNECT'),
        wcase('connect-path-bad', B_BAD, method='CONNECT'),
        wcase('connect-path-v2x', B_V2X, version='v2', method='CONNECT'),
        wcase('connect-authority', None, method='CONNECT', target='{host}'),
    ]


FORBIDDEN_TARGET = ['{{', '}}', '|', '"', '<', '>', '\\', '^', '`', '\x01',
                    '\x7f']
FORBIDDEN_VALUE = ['\x00', '\x01', '\x1f', '\x7f']


def forbidden_cases():
    out = []
    for i, ch in enumerate(FORBIDDEN_TARGET):
        out.append(wcase('forbidden-target-%d' % i, B_OK,
                         target='{path}?a=' + ch, note='forbidden-bytes'))
    for i, ch in enumerate(FORBIDDEN_VALUE):
        out.append(wcase('forbidden-value-%d' % i, B_OK,
                         lines=[('X-Note', 'a%sb' % ch)],
                         note='forbidden-bytes'))
    return out


DEPTHS = [700, 800, 801, 850, 900, 907, 908, 914, 915, 950, 1000, 1001, 1100]
# (tag, version, template, levels the template adds, nesting kind)
PLACES = [
    ('v2-unknown', 'v2', '{"server": {"name": "deep", "x": %s}}', 2, 'array'),
    ('v2-unknown-nul', 'v2',
     '{"server": {"description": "deep\\u0000", "x": %s}}', 2, 'array'),
    ('server-unknown', '2.1', '{"server": {"name": "deep", "x": %s}}', 2,
     'array'),
    ('server-unknown-objects', '2.1',
     '{"server": {"name": "deep", "x": %s}}', 2, 'object'),
    ('top-level', '2.1', '%s', 0, 'array'),
    ('top-unknown', '2.1', '{"server": {"name": "deep"}, "x": %s}', 1,
     'array'),
]


def depth_cases():
    out = []
    for tag, v, template, outer, kind in PLACES:
        for d in DEPTHS:
            out.append(DeepCase('wsgi-depth-%s-%d' % (tag, d), group='g',
                                version=v, template=template, outer=outer,
                                depth=d, kind=kind))
    # The nested value rendered in Nova's message: within Nova's own limit.
    for d in (700, 850, 900):
        out.append(DeepCase('wsgi-depth-name-%d' % d, group='g',
                            template='{"server": {"name": %s}}', outer=2,
                            depth=d))
    return out


def reading_cases():
    return (header_cases() + path_cases() + host_cases() + connect_cases()
            + forbidden_cases() + depth_cases())


STRICT = {'underscore-header-dropped', 'repeated-version-combined'}


def expectation(runner, case, outcome):
    """What the contract asks of nova-guard beyond agreeing with Nova, as
    the reason it was not met (None when it was). An answer equal to Nova's
    does not show that nova-guard read the request as it must: Nova answers
    the request as sent, underscore and repeated lines included, and
    nova-guard gives that same answer when it lets those lines through."""
    g = outcome.guard
    # 9. Bytes HTTP forbids: 400, whatever Nova makes of them.
    if case.note == 'forbidden-bytes' and g.status != 400:
        return ('nova-guard must answer 400 to bytes HTTP forbids (got %d)'
                % g.status)
    fwd, rules = harness.as_forwarded(case)
    if fwd == 'refuse' and g.status != 400:
        return ('nova-guard must refuse repeated Content-Type / '
                'Content-Length lines that differ with 400 (got %d)'
                % g.status)
    # 7. and combined version lines: the answer is Nova's answer to the
    #    request nova-guard must forward, even where it is also Nova's answer
    #    to the request as sent.
    if outcome.kind == 'agree' and fwd not in (None, 'refuse') and \
            STRICT & set(rules):
        ids = (runner.nova.server, runner.guard.server)
        ref = runner.ask_nova(fwd)
        if not (harness._same(ref, g, ids) or harness.allowed_difference(
                fwd, ref, g, runner.ask_nova, ids)):
            diffs = harness.body_differences(ref, g, ids) + \
                harness.header_differences(ref, g)
            return ('nova-guard did not forward the request as it must '
                    '(%s): Nova answers that one %d, nova-guard %d; %s'
                    % ('+'.join(rules), ref.status, g.status,
                       '; '.join(diffs)[:400]))
    return None


def test_reading(wsgi_stack, record):
    kind = wsgi_stack['kind']
    started = time.monotonic()
    runner = wsgi_servers.runner(wsgi_stack)
    explicit = []
    for case in selected(reading_cases()):
        outcome = runner.run(case)
        why = expectation(runner, case, outcome)
        if why:
            # Counted as a disagreement in answers, not as what it agreed.
            t = runner.tally
            if outcome.kind == 'agree':
                t.agree -= 1
            elif outcome.kind == 'allowed':
                t.allowed[outcome.detail] -= 1
            explicit.append(harness.Outcome(case, 'disagree', why,
                                            outcome.nova, outcome.guard))
            runner.reset()
    runner.finish()
    for o in explicit:
        runner.tally.disagreements.append(o)
    record('(g) reading, %s' % kind, runner, started)


# --- the safety property --------------------------------------------------

TOK = '{token}'
# (tag, WireCase keywords): spellings that some reading of the request lets
# past a guard that decides on another reading.
WALK_AROUND = [
    ('X_Auth_Token only', dict(token='none', lines=[('X_Auth_Token', TOK)])),
    ('X-Auth-Token empty + X_Auth_Token', dict(token='none', lines=[
        ('X-Auth-Token', ''), ('X_Auth_Token', TOK)])),
    ('Content-Type xml + Content_Type json', dict(
        drop=('Content-Type',), lines=[('Content-Type', 'application/xml'),
                                       ('Content_Type', 'application/json')])),
    ('Content_Type json + Content-Type xml', dict(
        drop=('Content-Type',), lines=[('Content_Type', 'application/json'),
                                       ('Content-Type', 'application/xml')])),
    ('Content-Type xml, json (repeated)', dict(
        drop=('Content-Type',), lines=[('Content-Type', 'application/xml'),
                                       ('Content-Type', 'application/json')])),
    ('Content-Type json, json (repeated)', dict(
        drop=('Content-Type',), lines=[('Content-Type', 'application/json'),
                                       ('Content-Type', 'application/json')])),
    # uWSGI hands Nova these values as written (415); cheroot strips them.
    ('Content-Type with a tab before it', dict(
        drop=('Content-Type',), lines=[('Content-Type', '\tapplication/json')])),
    ('Content-Type with a space after it', dict(
        drop=('Content-Type',), lines=[('Content-Type', 'application/json ')])),
    ('Content_Length only', dict(framed=True, lines=[
        ('Content_Length', '{length}')])),
    ('OpenStack-API-Version 2.x + OpenStack_API_Version 2.1', dict(
        header_form='none', lines=[
            ('OpenStack-API-Version', 'compute 2.x'),
            ('OpenStack_API_Version', 'compute 2.1')])),
    ('OpenStack-API-Version compute 9.99, volume 3.0 (repeated)', dict(
        header_form='none', lines=[
            ('OpenStack-API-Version', 'compute 9.99'),
            ('OpenStack-API-Version', 'volume 3.0')])),
    ('X-OpenStack-Nova-API-Version 9.99 + X_OpenStack_Nova_API_Version 2.1',
     dict(header_form='none', lines=[
         ('X-OpenStack-Nova-API-Version', '9.99'),
         ('X_OpenStack_Nova_API_Version', '2.1')])),
    ('CONNECT', dict(method='CONNECT')),
]
# (tag, version, body, the stored field, the value nova-guard refuses)
REFUSED = [
    ('v2-description-nul', 'v2', B_V2X, 'description', 'wsgi\x00x'),
    ('denied-accessIPv4', '2.1', B_DENY, 'accessIPv4',
     wsgi_servers.DENIED_IPV4),
]


def _walk_case(tag, kw, version, body):
    kw = dict(kw)
    if kw.get('lines'):
        kw['lines'] = [(k, v.replace('{length}', str(len(body))))
                       for k, v in kw['lines']]
    return WireCase('walk-%s@%s' % (tag, version), group='g', body=body,
                    version=version, **kw)


def test_walk_around(wsgi_stack):
    """Nothing nova-guard refuses is stored through it, whatever the
    spelling; what Nova itself does with each spelling is printed."""
    kind = wsgi_stack['kind']
    runner = wsgi_servers.runner(wsgi_stack, pair=1)
    env = wsgi_stack['env']
    failures, rows = [], []
    for rtag, version, body, field, value in REFUSED:
        # The plain spelling: nova-guard refuses it.
        plain = harness.Case('walk-plain-%s' % rtag, group='g', body=body,
                             version=version)
        runner.reset()
        g = harness.send(plain, env, runner.guard)
        if g.status == 200 or runner.stored_states()[1].get(
                'server', {}).get(field) == value:
            failures.append('%s: the plain request is not refused by '
                            'nova-guard (%s)' % (rtag, g.brief()))
        for tag, kw in WALK_AROUND:
            if version == 'v2' and 'Version' in tag:
                continue        # /v2 ignores microversion headers
            case = _walk_case(tag, kw, version, body)
            if not selected([case]):
                continue
            runner.reset()
            n = harness.send(case, env, runner.nova)
            g = harness.send(case, env, runner.guard)
            a, b = runner.stored_states()
            stored_direct = a.get('server', {}).get(field) == value
            stored_guard = b.get('server', {}).get(field) == value
            rows.append('%-8s %-22s %-62s direct %-3d %-10s guard %-3d %s' % (
                kind, rtag, tag, n.status,
                'STORED' if stored_direct else 'not stored', g.status,
                'STORED' if stored_guard else 'not stored'))
            if stored_guard:
                failures.append('%s %s, %s: stored through nova-guard '
                                '(%s=%r); nova-guard answered %s' % (
                                    kind, rtag, tag, field, value,
                                    g.brief()))
    runner.reset()
    print('\nwalk-around spellings (%s): what Nova stores directly and '
          'through nova-guard\n%s' % (kind, '\n'.join(rows)))
    if failures:
        pytest.fail('%d request(s) stored what nova-guard refuses (seed %d)'
                    ':\n%s' % (len(failures), SEED, '\n'.join(failures)),
                    pytrace=False)


# --- walk-arounds in Nova's own routing -------------------------------------
#
# Spellings that Nova itself, under any WSGI server, routes to update-server,
# create-server or the rebuild action though they do not look like them:
# keystonemiddleware reads X-Storage-Token when there is no X-Auth-Token;
# Routes takes the method from `_method=` in the query (any case, any
# request method); Nova's urlmap picks the API from a `version=` parameter of
# Content-Type (then Accept) when the path names none (`version=2/x`: legacy
# v2, `version=2.1/x`: v2.1; a bare `version=2` maps to the version
# document); and a request target that does not start with `/`, which
# cheroot refuses (400) but uWSGI makes a PATH_INFO of. Over HTTP/2, a field
# value reaches nova-guard as written, spaces and tabs around it included,
# while the WSGI servers strip them from the HTTP/1 line nova-guard would
# forward (`" application/json"` is JSON to Nova). Paths as uWSGI decodes
# them and a final `%0a` (Routes' `$`) are routed too. nova-guard must
# validate these as the plain spelling, giving the same answer (as it must
# an HTTP/2 request), answer the bad target and the padded value with a 400
# of its own, forwarding nothing (OWN_400), and let nothing be stored through
# an absolute-form target (NOT_STORED).

WALK_IMAGE = '0b1e7c2a-5d3f-4e6a-9b8c-1d2e3f4a5b6c'     # no such image
WALK_FLAVOR = 'no-such-flavor'
# Nothing can be created or rebuilt with these (as in test_create_rebuild):
# whatever reads them, Nova stops at the flavor / image, after validation.
B_CREATE_DENY = json.dumps({'server': {
    'name': 'walk', 'imageRef': WALK_IMAGE, 'flavorRef': WALK_FLAVOR,
    'networks': 'none', 'accessIPv4': wsgi_servers.DENIED_IPV4}}).encode()
B_REBUILD_DENY = json.dumps({'rebuild': {
    'imageRef': WALK_IMAGE, 'accessIPv4': wsgi_servers.DENIED_IPV4}}).encode()

# body tag -> (version, body, url_form and method of the plain spelling,
# the stored field and the value nova-guard refuses; None: create, which
# cannot create anything here).
ROUTED_BODIES = {
    'v2-description-nul': ('v2', B_V2X, 'project', 'PUT', 'description',
                           'wsgi\x00x'),
    'denied-accessIPv4': ('2.1', B_DENY, 'project', 'PUT', 'accessIPv4',
                          wsgi_servers.DENIED_IPV4),
    'create-denied-accessIPv4': ('2.37', B_CREATE_DENY,
                                 '{base}/{project}/servers', 'POST', None,
                                 None),
    'rebuild-denied-accessIPv4': ('2.1', B_REBUILD_DENY,
                                  '{base}/{project}/servers/{server}/action',
                                  'POST', 'accessIPv4',
                                  wsgi_servers.DENIED_IPV4),
}
SAME_AS_PLAIN = 'same-as-plain'     # nova-guard's answer to the plain one
OWN_400 = 'own-400'                 # nova-guard's own 400, nothing forwarded
NOT_STORED = 'not-stored'           # whatever the answer, nothing stored
_STORAGE = [('X-Storage-Token', TOK)]
# (tag, body tag, WireCase keywords, what nova-guard must answer)
ROUTED_WALK_AROUND = [
    # 1. keystonemiddleware: X-Storage-Token when X-Auth-Token is absent.
    ('X-Storage-Token, PUT /v2/P/servers/S', 'v2-description-nul',
     dict(token='none', lines=_STORAGE), SAME_AS_PLAIN),
    ('X-Storage-Token, PUT /v2.1/servers/S', 'denied-accessIPv4',
     dict(token='none', lines=_STORAGE, url_form='{base}/servers/{server}'),
     SAME_AS_PLAIN),
    ('X-Storage-Token, POST /v2.1/servers', 'create-denied-accessIPv4',
     dict(token='none', lines=_STORAGE, method='POST',
          url_form='{base}/servers'), SAME_AS_PLAIN),
    ('X-Storage-Token, POST /v2.1/P/servers/S/action',
     'rebuild-denied-accessIPv4',
     dict(token='none', lines=_STORAGE, method='POST',
          url_form='{base}/{project}/servers/{server}/action'),
     SAME_AS_PLAIN),
    # 2. Routes' method override in the query.
    ('POST /v2/P/servers/S?_method=PUT', 'v2-description-nul',
     dict(method='POST', url_form='{base}/{project}/servers/{server}'
          '?_method=PUT'), SAME_AS_PLAIN),
    ('POST /v2.1/servers/S?_method=put', 'denied-accessIPv4',
     dict(method='POST', url_form='{base}/servers/{server}?_method=put'),
     SAME_AS_PLAIN),
    ('PUT /v2.1/servers?_method=POST', 'create-denied-accessIPv4',
     dict(method='PUT', url_form='{base}/servers?_method=POST'),
     SAME_AS_PLAIN),
    ('PUT /v2.1/servers/S/action?_method=POST', 'rebuild-denied-accessIPv4',
     dict(method='PUT', url_form='{base}/servers/{server}/action'
          '?_method=POST'), SAME_AS_PLAIN),
    # 3. Nova's urlmap: the API from Content-Type / Accept `version=`.
    ('PUT /P/servers/S, Content-Type version=2/x', 'v2-description-nul',
     dict(url_form='/{project}/servers/{server}',
          headers={'Content-Type': 'application/json;version=2/x'}),
     SAME_AS_PLAIN),
    ('PUT /servers/S, Content-Type version=2/x', 'v2-description-nul',
     dict(url_form='/servers/{server}',
          headers={'Content-Type': 'application/json;version=2/x'}),
     SAME_AS_PLAIN),
    ('PUT /servers/S, Accept version=2/x', 'v2-description-nul',
     dict(url_form='/servers/{server}',
          headers={'Accept': 'application/json;version=2/x'}),
     SAME_AS_PLAIN),
    ('PUT /servers/S, Content-Type version=2.1/x', 'denied-accessIPv4',
     dict(url_form='/servers/{server}',
          headers={'Content-Type': 'application/json; version=2.1/x'}),
     SAME_AS_PLAIN),
    ('PUT /P/servers/S, Accept version=2.1/x', 'denied-accessIPv4',
     dict(url_form='/{project}/servers/{server}',
          headers={'Accept': 'application/json;version=2.1/x'}),
     SAME_AS_PLAIN),
    ('POST /servers, Content-Type version=2.1/x', 'create-denied-accessIPv4',
     dict(method='POST', url_form='/servers',
          headers={'Content-Type': 'application/json;version=2.1/x'}),
     SAME_AS_PLAIN),
    # A `version` spelled with backslashes in quotes, which Python's
    # parse_http_list drops.
    ('PUT /servers/S, Accept "ver\\sion"=2.1/x', 'denied-accessIPv4',
     dict(url_form='/servers/{server}',
          headers={'Accept': 'application/json;"ver\\sion"=2.1/x'}),
     SAME_AS_PLAIN),
    ('PUT /P/servers/S, Accept "...;ver\\sion=2/x"', 'v2-description-nul',
     dict(url_form='/{project}/servers/{server}',
          headers={'Accept': '"application/json;ver\\sion=2/x"'}),
     SAME_AS_PLAIN),
    # Dot segments: uWSGI removes them before it decodes, so `%2e%2e` is a
    # segment that the literal `..` after it removes.
    ('PUT /v2.1/servers/%2e%2e/../S', 'denied-accessIPv4',
     dict(url_form='{base}/servers/%2e%2e/../{server}'), SAME_AS_PLAIN),
    ('PUT /v2/P/servers/%2e/../S', 'v2-description-nul',
     dict(url_form='{base}/{project}/servers/%2e/../{server}'),
     SAME_AS_PLAIN),
    ('POST /v2.1/%2e/../servers', 'create-denied-accessIPv4',
     dict(method='POST', url_form='{base}/%2e/../servers'), SAME_AS_PLAIN),
    ('POST /v2.1/P/servers/%2E%2E/../S/action', 'rebuild-denied-accessIPv4',
     dict(method='POST',
          url_form='{base}/{project}/servers/%2E%2E/../{server}/action'),
     SAME_AS_PLAIN),
    # uWSGI decodes as it goes: a `..` drops back to a `/` decoded from
    # `%2F`, and an escape cut off at the end is dropped.
    ('PUT /v2.1/servers/x%2F../../../S', 'denied-accessIPv4',
     dict(url_form='{base}/servers/x%2F../../../{server}'), SAME_AS_PLAIN),
    ('PUT /v2/x%2F%2e%2e/../../P/servers/S', 'v2-description-nul',
     dict(url_form='{base}/x%2F%2e%2e/../../{project}/servers/{server}'),
     SAME_AS_PLAIN),
    ('PUT /v2.1/servers/S%2', 'denied-accessIPv4',
     dict(url_form='{base}/servers/{server}%2'), SAME_AS_PLAIN),
    # Routes' patterns end in Python's `$`, which matches before a final
    # newline.
    ('POST /v2.1/servers%0a', 'create-denied-accessIPv4',
     dict(method='POST', url_form='{base}/servers%0a'), SAME_AS_PLAIN),
    ('POST /v2.1/P/servers/S/action%0A', 'rebuild-denied-accessIPv4',
     dict(method='POST',
          url_form='{base}/{project}/servers/{server}/action%0A'),
     SAME_AS_PLAIN),
    # Absolute-form: nova-guard sends Nova the path after the authority,
    # without a fragment, so a `%2F` or `#` in the authority routes nowhere.
    ('PUT http://h%2Fv2.1/P/servers/S', 'denied-accessIPv4',
     dict(url_form='http://h%2Fv2.1/{project}/servers/{server}'),
     NOT_STORED),
    ('PUT http://h#x/v2.1/P/servers/S', 'denied-accessIPv4',
     dict(url_form='http://h#x{base}/{project}/servers/{server}'),
     NOT_STORED),
    # 4. A request target that does not start with '/'.
    ('PUT %2Fv2/P/servers/S', 'v2-description-nul',
     dict(url_form='%2Fv2/{project}/servers/{server}'), OWN_400),
    ('PUT ./v2.1/P/servers/S', 'denied-accessIPv4',
     dict(url_form='./v2.1/{project}/servers/{server}'), OWN_400),
    # 5. HTTP/2 hands a field value over as written; every HTTP/1 reader
    # strips the spaces and tabs around it (RFC 9113 §8.2.1: malformed).
    ('HTTP/2 PUT /v2.1/P/servers/S', 'denied-accessIPv4',
     dict(http2=True), SAME_AS_PLAIN),
    ('HTTP/2 PUT /v2/P/servers/S', 'v2-description-nul',
     dict(http2=True), SAME_AS_PLAIN),
    ('HTTP/2 PUT, Content-Type " application/json"', 'denied-accessIPv4',
     dict(http2=True, headers={'Content-Type': ' application/json'}),
     OWN_400),
    ('HTTP/2 PUT, Content-Type "application/json\\t"', 'denied-accessIPv4',
     dict(http2=True, headers={'Content-Type': 'application/json\t'}),
     OWN_400),
    ('HTTP/2 PUT, Content-Type " "', 'denied-accessIPv4',
     dict(http2=True, headers={'Content-Type': ' '}), OWN_400),
    ('HTTP/2 PUT /P/servers/S, Content-Type " ...;version=2/x"',
     'v2-description-nul',
     dict(http2=True, url_form='/{project}/servers/{server}',
          headers={'Content-Type': ' application/json;version=2/x'}),
     OWN_400),
    ('HTTP/2 POST /v2.1/P/servers/S/action, Content-Type " application/json"',
     'rebuild-denied-accessIPv4',
     dict(http2=True, method='POST',
          url_form='{base}/{project}/servers/{server}/action',
          headers={'Content-Type': ' application/json'}), OWN_400),
]


def _access_line(log_path, agent, timeout=2.0):
    """nova-guard's access line of the request sent with User-Agent
    ``agent``, or None when none is written within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with open(log_path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if agent in line:
                    return json.loads(line)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _said(r):
    """Status and the start of the message of an answer, for the table."""
    j = r.json()
    if isinstance(j, dict) and len(j) == 1:
        inner = next(iter(j.values()))
        if isinstance(inner, dict) and 'message' in inner:
            return '%d %s' % (r.status, str(inner['message'])[:60])
    if r.status == 200:
        return '200'
    return '%d %r' % (r.status, r.body[:60])


def test_walk_around_routing(wsgi_stack):
    """Spellings Nova routes to update / create / rebuild (X-Storage-Token,
    `_method=`, a `version=` media-type parameter on an unversioned path, a
    target without a leading `/`): through nova-guard nothing refused is
    stored, and nova-guard answers as it does to the plain spelling (or, for
    the target, a 400 of its own without forwarding). What Nova itself does
    with each, directly, is printed: where it stores the body, the spelling
    would walk around a nova-guard that does not read it as Nova does."""
    import uuid
    kind = wsgi_stack['kind']
    runner = wsgi_servers.runner(wsgi_stack, pair=1)
    env = wsgi_stack['env']
    log = wsgi_stack['guard_log']
    ids = (runner.guard.server, runner.guard.server)
    failures, rows = [], []

    def agent():
        return 'walk-routing/%s' % uuid.uuid4()

    def stored(field, value):
        if field is None:
            return False, False
        a, b = runner.stored_states()
        return (a.get('server', {}).get(field) == value,
                b.get('server', {}).get(field) == value)

    runner.reset()
    plain = {}
    for btag, (version, body, url, method, field, value) in \
            ROUTED_BODIES.items():
        ua = agent()
        case = harness.Case('walk-routing-plain-%s' % btag, group='g',
                            body=body, version=version, url_form=url,
                            method=method, headers={'User-Agent': ua})
        g = harness.send(case, env, runner.guard)
        line = _access_line(log, ua)
        _, stored_guard = stored(field, value)
        if g.status != 400 or line is None or 'upstream_status' in line \
                or stored_guard:
            failures.append('%s %s: the plain request is not refused by '
                            'nova-guard itself (%s; access line %s)'
                            % (kind, btag, g.brief(), line))
            if stored_guard:
                runner.reset()
        plain[btag] = g

    for tag, btag, kw, must in ROUTED_WALK_AROUND:
        version, body, _, _, field, value = ROUTED_BODIES[btag]
        ua = agent()
        kw = dict(kw)
        kw['headers'] = dict(kw.get('headers') or {}, **{'User-Agent': ua})
        case = WireCase('walk-routing-%s@%s' % (tag, version), group='g',
                        body=body, version=version, **kw)
        if not selected([case]):
            continue
        n = harness.send(case, env, runner.nova)
        g = harness.send(case, env, runner.guard)
        line = _access_line(log, ua)
        stored_direct, stored_guard = stored(field, value)
        forwarded = line is not None and 'upstream_status' in line
        why = []
        if stored_guard:
            why.append('stored through nova-guard (%s=%r)' % (field, value))
        if must == OWN_400:
            if g.status != 400 or forwarded:
                why.append('nova-guard must answer a malformed head (a '
                           'target without a leading "/", a field value '
                           'padded with whitespace) with a 400 of its own, '
                           'forwarding nothing: it answered %s%s' % (
                               _said(g), ', forwarded (its log: upstream_'
                               'status %s)' % line['upstream_status']
                               if forwarded else ''))
        elif must == NOT_STORED:
            pass
        elif not harness._same(plain[btag], g, ids):
            diffs = ''
            if g.status == plain[btag].status:
                diffs = ': ' + '; '.join(
                    harness.body_differences(plain[btag], g, ids)
                    + harness.header_differences(plain[btag], g))[:400]
            why.append('nova-guard answered %s%s, not as to the plain '
                       'spelling (%s)%s' % (
                           _said(g), ', forwarded to Nova' if forwarded
                           else '', _said(plain[btag]), diffs))
        direct = '%s%s' % (_said(n), ', STORED' if stored_direct else '')
        rows.append('%-8s %-26s %-50s direct %-50s guard %s%s%s' % (
            kind, btag, tag, direct[:50], _said(g)[:50],
            ' (forwarded)' if forwarded else '',
            ', STORED' if stored_guard else ''))
        if why:
            failures.append('%s %s, %s: %s [directly, Nova: %s]' % (
                kind, btag, tag, '; '.join(why), direct))
        if stored_direct or stored_guard:
            runner.reset()
    runner.reset()
    print('\nwalk-arounds in Nova\'s routing (%s): Nova directly, and '
          'nova-guard\n%s' % (kind, '\n'.join(rows)))
    if failures:
        pytest.fail('%d request(s) not read by nova-guard as Nova routes '
                    'them (seed %d):\n%s' % (len(failures), SEED,
                                            '\n'.join(failures)),
                    pytrace=False)


def test_guard_logs_hold_no_token(wsgi_stack):
    """Nothing read from a request is echoed into nova-guard's log: neither
    the tokens sent in dashed, underscore or repeated lines."""
    with open(wsgi_stack['guard_log'], encoding='utf-8',
              errors='replace') as f:
        text = f.read()
    assert text.strip(), 'nova-guard logged nothing'
    for line in text.splitlines():
        if line.strip():
            json.loads(line)
    assert wsgi_stack['env']['tokens']['member'] not in text
