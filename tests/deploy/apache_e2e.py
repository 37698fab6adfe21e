"""End to end, in devstack's shape: a client → nova-guard
(NOVA_GUARD_PATH_PREFIX=/compute) → Apache (mod_proxy_uwsgi, `ProxyPass
"/compute"` as devstack writes it) → uWSGI on a uwsgi socket → the real
Nova API of deploy/dev/ (`nova_api.py --wsgi apache`).

    apache_e2e.py ROOT NOVA_GUARD_BIN DEV_DIR

Run with the dev venv's Python. Prints "ok NAME" / "FAIL NAME: why" lines.
Everything listens on 127.0.0.1.

Apache reads the path before Nova does: it decodes it, removes dot segments,
merges slashes and matches `/compute` on what results. The walk-around check
sends an update that only nova-guard refuses (an accessIPv4 in
NOVA_GUARD_ACCESS_IPV4_DENY) under many spellings of the path, through
nova-guard and, for comparison, straight to Apache, and reads the server
back from Nova after each: nothing nova-guard refuses may be stored through
it, and every spelling that Apache and Nova take as an update must be
judged. The same for the header lines Apache reads its own way.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile

from checks import Checks, Procs, free_port, recv_all, start_nova, wait_for

ROOT, BIN, DEV_DIR = sys.argv[1:4]
CHECKS = Checks('apache')
report = CHECKS.report
procs = Procs()
DENIED_NET, DENIED = '198.51.100.0/24', '198.51.100.7'
ALLOWED = '192.0.2.1'
PREFIX = '/compute'

# S: the server's id; P: its project. Each spelling is sent as it is.
SPELLINGS = [
    '/compute/v2.1/servers/S', '/compute/v2.1/P/servers/S', '/compute/v2/servers/S',
    '/compute/v2/P/servers/S', '/compute//v2.1/servers/S', '//compute/v2.1/servers/S',
    '/compute///v2.1///servers///S', '/compute/v2.1//P/servers/S',
    '/compute/./v2.1/servers/S', '/compute/x/../v2.1/servers/S',
    '/x/../compute/v2.1/servers/S', '/compute/v2.1/servers/./S', '/compute/v2.1/./servers/S',
    '/compute/./v2.1/./servers/./S', '/compute/v2.1/servers//S', '/compute/v2.1/servers/S/',
    '/compute/v2.1/servers/S/.', '/compute/v2.1/servers/S//', '/compute/v2.1/servers/S/./',
    '/compute/v2.1/servers/S/x/..', '/compute/v2.1/servers/S/x/%2e%2e',
    '/compute/v2.1/servers/S/action/..', '/%63ompute/v2.1/servers/S',
    '/compute/v2.1/%73ervers/S', '/compute/%2e/v2.1/servers/S', '/compute/%2E/v2.1/servers/S',
    '/compute/%2e%2e/compute/v2.1/servers/S', '/compute/.%2e/compute/v2.1/servers/S',
    '/compute/v2.1/x/%2e%2e/servers/S', '/compute/v2.1/servers/x/%2E%2E/S',
    '/compute/v2.1/servers/%2e/S', '/compute/v2.1/servers/%252e%252e/S',
    '/compute%2Fv2.1/servers/S', '/compute%2f/v2.1/servers/S', '/compute/v2.1%2Fservers/S',
    '/compute/v2.1/servers/S%2F', '/compute/v2.1/servers/S/%2e',
    '/compute/v2.1/servers/S/..%2fS', '/compute/v2.1/servers/S;x', '/compute;x/v2.1/servers/S',
    '/compute/v2.1/servers/S%3Bx', '/compute/v2.1/servers/S%23x', '/compute/v2.1/servers/S%3Fx',
    '/compute/v2.1/servers/S?x=1', '/compute/v2.1/servers/S#frag', '/COMPUTE/v2.1/servers/S',
    '/compute\\v2.1/servers/S', '/compute/v2.1/servers/S.json', '/compute/v2.1/servers/S%20',
    '/compute/v2.1/servers/%20S', 'http://127.0.0.1:A/compute/v2.1/servers/S',
]


def request(method, target, token, lines, payload=b'', http='HTTP/1.1', host='127.0.0.1'):
    """A request's bytes: `target` and the header `lines` go on the wire as
    they are, after Host and X-Auth-Token, and before Connection: close."""
    head = '%s %s %s\r\nHost: %s\r\nX-Auth-Token: %s\r\n' % (method, target, http, host, token)
    head += ''.join('%s: %s\r\n' % kv for kv in lines) + 'Connection: close\r\n\r\n'
    return head.encode('latin-1') + payload


def send(port, method, target, token, body=None, version='2.1'):
    """-> (status, JSON body or None), `body` sent as JSON."""
    data = json.dumps(body).encode() if body is not None else b''
    return exchange(port, request(method, target, token, [
        ('OpenStack-API-Version', 'compute %s' % version),
        ('Content-Type', 'application/json'), ('Content-Length', str(len(data)))], data,
        host='127.0.0.1:%d' % port))


def exchange(port, request):
    """`request`'s bytes to 127.0.0.1:`port` -> (status, JSON body or None)."""
    with socket.create_connection(('127.0.0.1', port), 30) as s:
        s.sendall(request)
        raw = recv_all(s)
    head, _, payload = raw.partition(b'\r\n\r\n')
    status = int(head.split(b' ', 2)[1]) if head else 0
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, None


def header_rows(path, token, body):
    """(name, request) for the header lines Apache reads otherwise than
    nova-guard could: it drops names with `_`, joins repeated lines, refuses
    a chunked body to mod_proxy_uwsgi (411), answers `100 Continue` itself."""
    def req(lines, payload=body, method='PUT', target=path, http='HTTP/1.1'):
        return request(method, target, token, lines, payload, http)
    length = ('Content-Length', str(len(body)))
    chunked = b'%x\r\n%s\r\n0\r\n\r\n' % (len(body), body)
    return [
        ('Content_Type and Content-Type: text/plain',
         req([('Content_Type', 'application/json'), ('Content-Type', 'text/plain'), length])),
        ('no Content-Type', req([length])),
        ('OpenStack-API-Version twice',
         req([('Content-Type', 'application/json'), ('OpenStack-API-Version', 'compute 2.1'),
              ('OpenStack-API-Version', 'compute 2.90'), length])),
        ('POST with ?_method=PUT', req([('Content-Type', 'application/json'), length],
                                       method='POST', target=path + '?_method=PUT')),
        ('chunked', req([('Content-Type', 'application/json'), ('Transfer-Encoding', 'chunked')],
                        chunked)),
        ('HTTP/1.0', req([('Content-Type', 'application/json'), length], http='HTTP/1.0')),
        ('Expect: 100-continue',
         req([('Content-Type', 'application/json'), ('Expect', '100-continue'), length])),
    ]


def main(work):
    # --- Nova behind Apache, as devstack serves it ---------------------------------
    nova, ready = start_nova(
        [sys.executable, os.path.join(DEV_DIR, 'nova_api.py'), '--port', '0',
         '--servers', '1', '--wsgi', 'apache'], work, 'Nova behind Apache start-up')
    procs.append(nova)
    apache, token, project = ready['port'], ready['token'], ready['project_id']
    server = ready['servers'][0]
    check_prefix = ready.get('prefix') == PREFIX
    report('Nova is served under %s by Apache' % PREFIX,
           None if check_prefix else 'NOVA_READY says prefix %r' % ready.get('prefix'))

    # --- nova-guard in front of Apache ---------------------------------------------
    port = free_port()
    genv = {k: v for k, v in os.environ.items() if not k.startswith('NOVA_GUARD_')}
    genv.update(NOVA_GUARD_LISTEN='127.0.0.1:%d' % port,
                NOVA_GUARD_UPSTREAM='http://127.0.0.1:%d' % apache,
                NOVA_GUARD_PATH_PREFIX=PREFIX,
                NOVA_GUARD_ACCESS_IPV4_DENY=DENIED_NET,
                NOVA_GUARD_LOG_FORMAT='json')
    guard = procs.start([BIN], os.path.join(work, 'guard.log'), genv)
    wait_for('nova-guard', lambda: socket.create_connection(('127.0.0.1', port), 1), 30, guard)

    path = '%s/v2.1/servers/%s' % (PREFIX, server)

    # --- what passes and what does not ------------------------------------------------
    status, got = send(port, 'PUT', path, token,
                       {'server': {'accessIPv6': '2001:0DB8:0000::0001'}}, '2.19')
    report('a valid update through nova-guard gets Nova\'s 200, accessIPv6 canonical',
           None if status == 200 and got['server']['accessIPv6'] == '2001:db8::1'
           else '%s %s' % (status, got))
    links = [lk['href'] for lk in (got or {}).get('server', {}).get('links', [])]
    report('Nova\'s links point at nova-guard under %s' % PREFIX,
           None if links and all(h.startswith('http://127.0.0.1:%d%s/' % (port, PREFIX))
                                 for h in links) else str(links))
    bad = {'server': {'name': ' bad'}}
    direct = send(apache, 'PUT', path, token, bad)
    through = send(port, 'PUT', path, token, bad)

    def rejected():
        # By its field, not its place: each worker writes its own batches,
        # so lines of exchanges close in time may come out of order.
        with open(os.path.join(work, 'guard.log'), errors='replace') as f:
            events = [json.loads(line) for line in f if line.startswith('{')]
        return any(e.get('message') == 'exchange' and e.get('method') == 'PUT'
                   and e.get('verdict') == 'rejected' and e.get('field') == 'name'
                   for e in events)
    try:
        judged = wait_for('the access line', rejected, 10, guard)
    except RuntimeError:
        judged = False
    report('an invalid name gets Nova\'s own 400 from nova-guard, which rejected it',
           None if through == direct and through[0] == 400 and judged
           else '%s / %s; rejected by nova-guard: %s' % (through, direct, judged))
    status, got = send(port, 'PUT', path, token, {'name': 'x'})
    report('a body with no server entity gets 422 computeFault',
           None if status == 422 and 'computeFault' in (got or {}) else '%s %s' % (status, got))

    # --- the walk-around check ----------------------------------------------------------
    def stored():
        status, got = send(apache, 'GET', path, token)
        return got['server']['accessIPv4'] if status == 200 else 'GET %d' % status

    def reset():
        status, _ = send(apache, 'PUT', path, token, {'server': {'accessIPv4': ALLOWED}})
        if status != 200:
            raise RuntimeError('resetting accessIPv4: %d' % status)

    stored_through, not_judged, updates = [], [], 0
    for spelling in SPELLINGS:
        target = (spelling.replace('S', server).replace('/P/', '/%s/' % project)
                  .replace(':A/', ':%d/' % apache))
        reset()
        g_status, _ = send(port, 'PUT', target, token, {'server': {'accessIPv4': DENIED}})
        if stored() == DENIED:
            stored_through.append('%s (nova-guard answered %d)' % (spelling, g_status))
        reset()
        n_status, _ = send(apache, 'PUT', target, token, {'server': {'accessIPv4': DENIED}})
        if n_status == 200 and stored() == DENIED:
            updates += 1
            if g_status != 400:
                not_judged.append('%s (nova-guard %d)' % (spelling, g_status))
    report('walk-around: none of %d spellings of the path stores through nova-guard what it '
           'refuses' % len(SPELLINGS), '; '.join(stored_through) or None)
    report('walk-around: the %d spellings Apache and Nova take as an update are judged'
           % updates, None if updates >= 20 and not not_judged
           else 'too few updates (%d)' % updates if updates < 20 else '; '.join(not_judged))

    denied = json.dumps({'server': {'accessIPv4': DENIED}}).encode()
    rows, stored_through = header_rows(path, token, denied), []
    for name, request in rows:
        reset()
        status, _ = exchange(port, request)
        if stored() == DENIED:
            stored_through.append('%s (nova-guard answered %d)' % (name, status))
    report('walk-around: none of %d header variants stores through nova-guard what it '
           'refuses' % len(rows), '; '.join(stored_through) or None)


if __name__ == '__main__':
    work = tempfile.mkdtemp(prefix='nova-guard-apache-')
    try:
        main(work)
    except Exception as e:  # a set-up failure is one failed check
        import traceback
        traceback.print_exc()
        report('set-up', repr(e))
    finally:
        procs.stop_all()
        if CHECKS.failures:
            print('note apache: logs kept in %s' % work)
        else:
            subprocess.run(['rm', '-rf', work])
    sys.exit(1 if CHECKS.failures else 0)
