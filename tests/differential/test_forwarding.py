"""(h) The links in Nova's answers, behind nova-guard.

Nova builds every ``href`` from the request: scheme, ``Host``, and, with
``[oslo_middleware] enable_proxy_headers_parsing = True`` (as ``wsgi_stack``
runs it, under cheroot and uWSGI), from ``Forwarded`` and
``X-Forwarded-Proto`` / ``-Host`` / ``-For`` / ``-Prefix`` (oslo.middleware
8.2.0 reads no ``X-Forwarded-Port``), which a WSGI server also fills from
the underscore spellings. The contract: from a peer nova-guard does not
trust, none of them reaches Nova except as nova-guard sets them, so the
links are exactly those of the same request without them; from a trusted
peer (``NOVA_GUARD_TRUSTED_PROXIES``, here 127.0.0.0/8, also when the peer
is IPv4-mapped on a ``[::]`` listener) the dashed ones are kept and the
links carry them; underscore names are dropped from everyone. A request
without ``Host`` gets the listener's address, never Nova's own.

Answers checked: ``GET /``, ``GET /v2.1/servers/{id}`` and
``GET /v2.1/{project_id}/servers/{id}``.
"""

import re

import pytest

import wire

EVIL = 'evil.example'
GOOD = 'good.example'
UNTRUSTED = [
    ('Forwarded', 'for=203.0.113.9;host=%s;proto=https' % EVIL),
    ('X-Forwarded-Host', EVIL),
    ('X-Forwarded-Proto', 'https'),
    ('X-Forwarded-Port', '9999'),
    ('X-Forwarded-Prefix', '/evil'),
    ('X-Forwarded-For', '203.0.113.9'),
    ('X_Forwarded_Host', EVIL),
    ('X_Forwarded_Proto', 'https'),
    ('X_Forwarded_Port', '9999'),
    ('X_Forwarded_Prefix', '/evil'),
    ('X_Forwarded_For', '203.0.113.9'),
]
# Everything at once, dashed first, then underscores first.
UNTRUSTED_SETS = [[h] for h in UNTRUSTED] + [
    UNTRUSTED, UNTRUSTED[6:] + UNTRUSTED[:6]]


def targets(stack):
    env = stack['env']
    sid = env['servers'][2]
    return ['/', '/v2.1/servers/%s' % sid,
            '/v2.1/%s/servers/%s' % (env['project_id'], sid)]


def get(stack, port, target, lines, host=True, version='HTTP/1.1'):
    out = [('Host', '127.0.0.1:%d' % port)] if host else []
    out += [('X-Auth-Token', stack['env']['tokens']['member']),
            ('Accept', 'application/json')]
    out += lines + [('Connection', 'close')]
    r = wire.exchange('127.0.0.1', port,
                      wire.head_bytes('GET', target, out, version), 'GET')
    return r


def hrefs(resp):
    return sorted(set(re.findall(r'"href": "([^"]*)"',
                                 resp.body.decode('utf-8', 'replace'))))


def _check(failures, what, resp, ok):
    links = hrefs(resp)
    if resp.status != 200 or not links:
        failures.append('%s: %s' % (what, resp.brief(200)))
        return
    bad = [h for h in links if not ok(h)]
    if bad:
        failures.append('%s: %s' % (what, ', '.join(bad[:3])))


def _report(stack, failures, n):
    if failures:
        pytest.fail('%s: %d of %d answers with wrong links:\n%s' % (
            stack['kind'], len(failures), n, '\n'.join(failures)),
            pytrace=False)


def test_untrusted_forwarding_headers_never_reach_links(wsgi_stack):
    port = wsgi_stack['guard_port']
    failures, n = [], 0
    for target in targets(wsgi_stack):
        base = hrefs(get(wsgi_stack, port, target, []))
        assert base and all(h.startswith('http://127.0.0.1:%d/' % port)
                            for h in base), base
        for lines in UNTRUSTED_SETS:
            n += 1
            r = get(wsgi_stack, port, target, lines)
            what = '%s with %s' % (target, lines if len(lines) == 1
                                   else 'all %d' % len(lines))
            if r.status != 200 or hrefs(r) != base:
                failures.append('%s: %s' % (what, hrefs(r)[:3]
                                            or r.brief(200)))
    _report(wsgi_stack, failures, n)


# (lines, what every link must start with, given the Host 127.0.0.1:PORT)
TRUSTED = [
    ([('X-Forwarded-Host', GOOD)], 'http://%s/' % GOOD),
    ([('X-Forwarded-Proto', 'https')], 'https://{host}/'),
    ([('X-Forwarded-Prefix', '/pfx')], 'http://{host}/pfx/'),
    ([('X-Forwarded-Host', GOOD + ':8443'), ('X-Forwarded-Proto', 'https')],
     'https://%s:8443/' % GOOD),
    ([('Forwarded', 'for=203.0.113.9;host=%s;proto=https' % GOOD)],
     'https://%s/' % GOOD),
    ([('X-Forwarded-For', '203.0.113.9')], 'http://{host}/'),
    ([('X-Forwarded-Port', '9999')], 'http://{host}/'),
    # Underscore names are dropped, whoever sends them.
    ([('X_Forwarded_Host', EVIL)], 'http://{host}/'),
    ([('X_Forwarded_Prefix', '/evil')], 'http://{host}/'),
    ([('X-Forwarded-Host', GOOD), ('X_Forwarded_Host', EVIL)],
     'http://%s/' % GOOD),
]


@pytest.mark.parametrize('listener', ['trusted_port', 'mapped_port'])
def test_trusted_forwarding_headers_reach_links(wsgi_stack, listener):
    """127.0.0.1 on a 127.0.0.1 listener, ::ffff:127.0.0.1 on [::]: both
    are in NOVA_GUARD_TRUSTED_PROXIES=127.0.0.0/8."""
    port = wsgi_stack[listener]
    host = '127.0.0.1:%d' % port
    failures, n = [], 0
    for target in targets(wsgi_stack):
        for lines, start in TRUSTED:
            n += 1
            want = start.format(host=host)
            _check(failures, '%s with %s (want %s...)' % (target, lines, want),
                   get(wsgi_stack, port, target, lines),
                   lambda h: h.startswith(want))
    _report(wsgi_stack, failures, n)


@pytest.mark.parametrize('listener', ['guard_port', 'trusted_port',
                                      'mapped_port'])
def test_no_host_links_carry_the_listener(wsgi_stack, listener):
    """Without Host, Nova builds its links from what nova-guard sends: the
    address the client connected to, never Nova's own (nor, under uWSGI,
    the machine's host name)."""
    port = wsgi_stack[listener]
    ok_starts = ('http://127.0.0.1:%d/' % port,
                 'http://[::ffff:127.0.0.1]:%d/' % port)
    failures, n = [], 0
    for target in targets(wsgi_stack):
        for version in ('HTTP/1.1', 'HTTP/1.0'):
            n += 1
            _check(failures, '%s %s without Host' % (target, version),
                   get(wsgi_stack, port, target, [], host=False,
                       version=version),
                   lambda h: h.startswith(ok_starts))
    _report(wsgi_stack, failures, n)
