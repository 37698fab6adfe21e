"""End to end, in the kolla-ansible shape: a client over TLS → HAProxy
(deploy/haproxy/haproxy.cfg, unchanged, TLS with a certificate made here)
→ nova-guard (three of them, the "controllers") → the real Nova API of
deploy/dev/ (behind a load balancer's settings, recording what reaches it).

    haproxy_e2e.py ROOT NOVA_GUARD_BIN DEV_DIR

Run with the dev venv's Python. Prints "ok NAME" / "FAIL NAME: why" lines.
Everything listens on 127.0.0.1.
"""

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import yaml
from checks import Checks, Procs, recv_all, start_nova, wait_for

ROOT, BIN, DEV_DIR = sys.argv[1:4]
HERE = os.path.dirname(os.path.abspath(__file__))
CFG = os.path.join(ROOT, 'deploy', 'haproxy', 'haproxy.cfg')

CHECKS = Checks('haproxy')
report = CHECKS.report
procs = Procs()


def check(name, cond, detail=''):
    report(name, None if cond else (detail or 'not so'))
    return cond


handed_out = set()


def free_port():
    """A port free now and not handed out before (another process may still
    take it before it is used: the nova-guards are started again then)."""
    while True:
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        if port not in handed_out:
            handed_out.add(port)
            return port


def records(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def haproxy_stat(sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock_path)
    s.sendall(b'show stat\n')
    data = recv_all(s)
    s.close()
    lines = data.decode().splitlines()
    header = lines[0].lstrip('# ').split(',')
    return [dict(zip(header, line.split(','))) for line in lines[1:] if line]


def guard_events(logs):
    events = []
    for log in logs:
        with open(log, errors='replace') as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get('message') == 'exchange':
                    events.append(e)
    return events


def main():
    work = tempfile.mkdtemp(prefix='nova-guard-haproxy-')
    record = os.path.join(work, 'nova-record.jsonl')

    # --- TLS certificate for the VIP -----------------------------------------
    key, crt, pem = (os.path.join(work, n) for n in ('vip.key', 'vip.crt', 'vip.pem'))
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
                    '-keyout', key, '-out', crt], check=True, capture_output=True)
    with open(pem, 'w') as out:
        out.write(open(crt).read() + open(key).read())

    # --- Nova ------------------------------------------------------------------
    nova, ready = start_nova(
        [sys.executable, os.path.join(HERE, 'nova_recorded.py'), DEV_DIR,
         '--port', '0', '--servers', '1'], work, 'Nova start-up',
        dict(os.environ, NOVA_RECORD=record))
    procs.append(nova)
    nova_port, project, token = ready['port'], ready['project_id'], ready['token']
    server_id = ready['servers'][0]

    # --- three nova-guards, the "controllers" -----------------------------------
    def start_guards():
        ports = [free_port() for _ in range(3)]
        admins = [free_port() for _ in range(3)]
        logs, started = [], []
        for i, port in enumerate(ports):
            genv = {k: v for k, v in os.environ.items() if not k.startswith('NOVA_GUARD_')}
            genv.update(NOVA_GUARD_LISTEN='127.0.0.1:%d' % port,
                        NOVA_GUARD_UPSTREAM='http://127.0.0.1:%d' % nova_port,
                        NOVA_GUARD_TRUSTED_PROXIES='127.0.0.1/32',
                        NOVA_GUARD_LOG_FORMAT='json',
                        NOVA_GUARD_ADMIN_LISTEN='127.0.0.1:%d' % admins[i])
            log = os.path.join(work, 'guard%d.log' % i)
            logs.append(log)
            p = procs.start([BIN], log, genv)
            started.append(p)
            wait_for('nova-guard %d' % i,
                     lambda port=port: socket.create_connection(('127.0.0.1', port), 1), 30, p)
        return ports, admins, logs

    for attempt in range(3):
        try:
            guard_ports, admin_ports, guard_logs = start_guards()
            break
        except RuntimeError:
            # A port was taken meanwhile by another process: stop these, again.
            for p in procs[1:]:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    p.wait(20)
            del procs[1:]
            if attempt == 2:
                raise

    # --- HAProxy ------------------------------------------------------------------
    r = subprocess.run(['haproxy', '-c', '-f', CFG], capture_output=True, text=True,
                       env=dict(os.environ, NOVA_VIP='127.0.0.1:1', HAPROXY_CERT=pem,
                                HAPROXY_STATS_SOCKET=os.path.join(work, 'check.sock'),
                                NOVA_GUARD_1='127.0.0.1:1', NOVA_GUARD_2='127.0.0.1:2',
                                NOVA_GUARD_3='127.0.0.1:3'))
    check('haproxy -c accepts deploy/haproxy/haproxy.cfg', r.returncode == 0,
          r.stdout + r.stderr)
    vip = free_port()
    stats = os.path.join(work, 'haproxy.sock')
    henv = dict(os.environ, NOVA_VIP='127.0.0.1:%d' % vip, HAPROXY_CERT=pem,
                HAPROXY_STATS_SOCKET=stats)
    for i, port in enumerate(guard_ports):
        henv['NOVA_GUARD_%d' % (i + 1)] = '127.0.0.1:%d' % port
    haproxy = procs.start(['haproxy', '-db', '-f', CFG], os.path.join(work, 'haproxy.log'), henv)

    # Health checks: HEAD / over HTTP/1.0, through nova-guard, to Nova.
    def all_up():
        rows = [r for r in haproxy_stat(stats)
                if r.get('pxname') == 'nova_api_back' and r.get('svname', '').startswith('controller')]
        if len(rows) == 3 and all(r['status'] == 'UP' and r['check_status'] == 'L7OK' for r in rows):
            return rows
    try:
        rows = wait_for('HAProxy health checks', all_up, 30, haproxy)
        check('HAProxy health check (HEAD / HTTP/1.0) passes on every nova-guard',
              True, '')
        codes = sorted({r['check_code'] for r in rows})
        print('note haproxy: health check answered with HTTP %s' % ','.join(codes))
    except RuntimeError as e:
        report('HAProxy health check (HEAD / HTTP/1.0) passes on every nova-guard',
               '%s; %s' % (e, open(os.path.join(work, 'haproxy.log')).read()[-2000:]))
    heads = [e for e in guard_events(guard_logs) if e.get('method') == 'HEAD' and e.get('path') == '/']
    check('nova-guard logged the health checks and forwarded them to Nova',
          heads and all(e.get('upstream_status') and e['status'] == e['upstream_status'] for e in heads),
          str(heads[:2]))

    # The same check sent by hand, to see the answer on the wire.
    s = socket.create_connection(('127.0.0.1', guard_ports[0]), 5)
    s.sendall(b'HEAD / HTTP/1.0\r\n\r\n')
    s.settimeout(5)
    raw = recv_all(s)
    s.close()
    head, _, rest = raw.partition(b'\r\n\r\n')
    status_line = head.split(b'\r\n')[0].decode()
    check('HEAD / HTTP/1.0 to nova-guard: a 2xx/3xx answer, no body, connection closed',
          re.match(r'HTTP/1\.[01] [23]\d\d ', status_line) is not None and rest == b'',
          repr(raw[:300]))

    # --- through the chain ------------------------------------------------------
    ctx = ssl.create_default_context(cafile=crt)
    base_url = 'https://127.0.0.1:%d' % vip

    def call(method, path, body=None, headers=None):
        c = http.client.HTTPSConnection('127.0.0.1', vip, context=ctx, timeout=60)
        h = {'X-Auth-Token': token, 'Content-Type': 'application/json'}
        h.update(headers or {})
        c.request(method, path, body=None if body is None else (
            body if isinstance(body, (bytes, str)) else json.dumps(body)), headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r.headers, data

    spoof = {'X-Forwarded-For': '203.0.113.66', 'X-Forwarded-Proto': 'http',
             'X-Forwarded-Host': 'evil.example'}
    path = '/v2.1/%s/servers/%s' % (project, server_id)
    before = len(records(record))
    status, headers, data = call('PUT', path, {'server': {'name': 'through-the-chain'}},
                                 dict(spoof, **{'OpenStack-API-Version': 'compute 2.94'}))
    body = json.loads(data or b'{}')
    check('valid update through HAProxy and nova-guard: 200 from Nova',
          status == 200 and body.get('server', {}).get('name') == 'through-the-chain',
          '%s %s' % (status, data[:300]))
    got = [r for r in records(record)[before:] if r['method'] == 'PUT']
    check('Nova received the update once', len(got) == 1, str(got))
    if got:
        g = got[0]
        check('Nova sees X-Forwarded-For: client, then HAProxy (spoofed value dropped)',
              g['x_forwarded_for'] == '127.0.0.1, 127.0.0.1', repr(g['x_forwarded_for']))
        check('Nova sees X-Forwarded-Proto: https (spoofed value dropped)',
              g['x_forwarded_proto'] == 'https', repr(g['x_forwarded_proto']))
        check('Nova sees X-Forwarded-Host: the address the client used (spoofed value dropped)',
              g['x_forwarded_host'] == '127.0.0.1:%d' % vip, repr(g['x_forwarded_host']))
        check('Nova sees the client\'s Host unchanged',
              g['host'] == '127.0.0.1:%d' % vip, repr(g['host']))
    links = [link['href'] for link in body.get('server', {}).get('links', [])]
    check('links in Nova\'s answer point at the TLS endpoint the client used',
          links and all(h.startswith(base_url + '/') for h in links), str(links))
    check('Nova\'s request id reaches the client',
          re.fullmatch(r'req-[0-9a-f-]{36}', headers.get('x-openstack-request-id', '')) is not None,
          str(headers.get('x-openstack-request-id')))

    # accessIPv6 rewritten before Nova sees it.
    before = len(records(record))
    status, headers, data = call('PUT', path, {'server': {'accessIPv6': '2001:0DB8:0:0:0:0:0:1'}})
    got = [r for r in records(record)[before:] if r['method'] == 'PUT']
    check('accessIPv6 reaches Nova in canonical form',
          status == 200 and got and json.loads(got[0]['body']) == {
              'server': {'accessIPv6': '2001:db8::1'}},
          '%s %s %s' % (status, data[:200], got))

    # Rejections: answered by nova-guard, never seen by Nova, findable by id.
    for what, payload, want_status, want_body in (
        ('an invalid name', {'server': {'name': ' leading space'}}, 400, None),
        ('no server entity', {'servers': {}}, 422,
         {'computeFault': {'code': 422,
                           'message': 'Unable to process the contained instructions'}}),
        ('malformed JSON', '{"server": ', 400,
         {'badRequest': {'code': 400, 'message': 'Malformed request body'}}),
    ):
        before = len(records(record))
        status, headers, data = call('PUT', path, payload)
        reached = [r for r in records(record)[before:] if r['method'] == 'PUT']
        body = json.loads(data or b'{}')
        ok_body = body == want_body if want_body else (
            body.get('badRequest', {}).get('code') == 400
            and 'name' in body['badRequest'].get('message', ''))
        check('%s: %d through the chain, with Nova\'s body' % (what, want_status),
              status == want_status and ok_body, '%s %s' % (status, data[:300]))
        check('%s: Nova never saw it' % what, not reached, str(reached))
        rid = headers.get('x-openstack-request-id', '')
        time.sleep(0.1)
        ev = [e for e in guard_events(guard_logs) if e.get('request_id') == rid]
        check('%s: the client\'s request id finds the rejection in nova-guard\'s log' % what,
              rid.startswith('req-') and len(ev) == 1 and ev[0].get('verdict') == 'rejected'
              and ev[0].get('status') == want_status and headers.get('x-compute-request-id') == rid,
              '%s %s' % (rid, ev))

    # Other requests pass through: a GET, and Nova's own 401 without a token.
    status, headers, data = call('GET', path)
    links = [link['href'] for link in json.loads(data or b'{}').get('server', {}).get('links', [])]
    check('GET passes through with https links', status == 200 and links
          and all(h.startswith(base_url + '/') for h in links), '%s %s' % (status, links))
    c = http.client.HTTPSConnection('127.0.0.1', vip, context=ctx, timeout=60)
    c.request('PUT', path, body=json.dumps({'server': {'name': ' bad'}}),
              headers={'Content-Type': 'application/json'})
    r = c.getresponse()
    r.read()
    check('no token: Nova\'s own 401 reaches the client', r.status == 401, str(r.status))

    # The admin listener of each nova-guard: health, readiness, and the
    # rejections above counted by field (or rule), summed over the three.
    def admin(i, path):
        c = http.client.HTTPConnection('127.0.0.1', admin_ports[i], timeout=10)
        c.request('GET', path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body
    answers = [(admin(i, '/healthz')[0], admin(i, '/readyz')[0]) for i in range(3)]
    check('/healthz and /readyz answer 200 on every nova-guard',
          answers == [(200, 200)] * 3, str(answers))
    counted = {}
    for i in range(3):
        for line in admin(i, '/metrics')[1].splitlines():
            m = re.match(r'nova_guard_rejections_total\{operation="\w+",'
                         r'field="(\w*)",rule="(\w+)"\} (\d+)', line)
            if m:
                what = m.group(1) or m.group(2)
                counted[what] = counted.get(what, 0) + int(m.group(3))
    check('/metrics counts the three rejections by field or rule',
          counted == {'name': 1, 'serverEntity': 1, 'json': 1}, str(counted))

    # The sidecar's nova-osapi probe (deploy/kubernetes), against this Nova.
    patch = yaml.safe_load(open(os.path.join(ROOT, 'deploy', 'kubernetes', 'sidecar',
                                             'nova-api-osapi-patch.yaml')))
    osapi = [c for c in patch['spec']['template']['spec']['containers']
             if c['name'] == 'nova-osapi'][0]
    cmd = osapi['livenessProbe']['exec']['command']
    script = cmd[2].replace('127.0.0.1:8773', '127.0.0.1:%d' % nova_port)
    up = subprocess.run([sys.executable, '-c', script], capture_output=True, timeout=30)
    down = subprocess.run([sys.executable, '-c', cmd[2].replace(
        '127.0.0.1:8773', '127.0.0.1:%d' % free_port())], capture_output=True, timeout=30)
    check('the sidecar\'s nova-osapi probe passes on a live Nova and fails on a closed port',
          up.returncode == 0 and down.returncode != 0,
          '%s %s' % (up.returncode, down.returncode))

    # Nova goes away: nova-guard answers 502 (asked directly: through HAProxy
    # it is a race with the health checks); then HAProxy's checks, which go
    # through nova-guard, take the servers out (HAProxy's own 503).
    nova.send_signal(signal.SIGTERM)

    def nova_refuses():
        try:
            socket.create_connection(('127.0.0.1', nova_port), 1).close()
            return False
        except OSError:
            return True
    wait_for('Nova to stop listening', nova_refuses, 60)
    c = http.client.HTTPConnection('127.0.0.1', guard_ports[0], timeout=30)
    c.request('PUT', path, body=json.dumps({'server': {'name': 'nova-is-down'}}),
              headers={'X-Auth-Token': token, 'Content-Type': 'application/json'})
    r = c.getresponse()
    data = r.read()
    c.close()
    check('Nova down: nova-guard answers 502 computeFault',
          r.status == 502 and json.loads(data or b'{}') == {'computeFault': {
              'code': 502, 'message': 'The compute API could not be reached.'}},
          '%s %s' % (r.status, data[:200]))
    try:
        wait_for('servers marked down', lambda: all(
            r['status'].startswith('DOWN') for r in haproxy_stat(stats)
            if r.get('svname', '').startswith('controller')), 20, haproxy)
        status, _, _ = call('GET', '/')
        check('Nova down: HAProxy\'s health checks take every nova-guard out (503)',
              status == 503, str(status))
    except RuntimeError as e:
        report('Nova down: HAProxy\'s health checks take every nova-guard out (503)', str(e))
    return work


if __name__ == '__main__':
    work = None
    try:
        work = main()
    except Exception as e:  # a set-up failure is one failed check
        import traceback
        traceback.print_exc()
        report('set-up', repr(e))
    finally:
        procs.stop_all()
        if CHECKS.failures and work:
            print('note haproxy: logs kept in %s' % work)
        elif work:
            subprocess.run(['rm', '-rf', work])
    sys.exit(1 if CHECKS.failures else 0)
