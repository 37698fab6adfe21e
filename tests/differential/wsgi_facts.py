#!/usr/bin/env python3
"""How cheroot and uWSGI hand a request to Nova: measured, printed as a table.

    deploy/dev/.venv/bin/python tests/differential/wsgi_facts.py [-k REGEX]

Starts the development Nova under each WSGI server (``nova_api.py --wsgi
cheroot|uwsgi --proxy-headers``), sends each probe straight to Nova (no
nova-guard) and prints, per probe, what each server made of it: the
status, and what Nova's answer shows it read (the microversion it applied,
whether it authenticated, what it stored, the host in its links). The
table in tests/differential/README.md comes from this script.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import wire  # noqa: E402
import wsgi_servers  # noqa: E402


class Nova:
    def __init__(self, kind, ready):
        self.kind = kind
        self.ready = ready
        self.port = ready['port']
        self.project = ready['project_id']
        self.token = ready['token']
        self.server = ready['servers'][0]
        self.host = '127.0.0.1:%d' % self.port

    def send(self, method, target, lines, body=None, version='HTTP/1.1',
             host=True, framed=False, token=True):
        out = []
        if host:
            out.append(('Host', self.host))
        if token:
            out.append(('X-Auth-Token', self.token))
        out += lines
        if body is not None and not framed:
            out.append(('Content-Length', str(len(body))))
        out.append(('Connection', 'close'))
        data = wire.head_bytes(method, target, out, version) + (body or b'')
        return wire.exchange('127.0.0.1', self.port, data, method,
                             timeout=15)

    def path(self, fmt='/v2.1/{p}/servers/{s}'):
        return fmt.format(p=self.project, s=self.server, h=self.host)

    def stored(self):
        r = self.send('GET', '/v2.1/servers/%s' % self.server,
                      [('OpenStack-API-Version', 'compute 2.104')])
        return (r.json() or {}).get('server', {})

    def reset(self):
        body = json.dumps({'server': {'name': 'probe', 'description': None,
                                      'accessIPv4': '192.0.2.1'}}).encode()
        r = self.send('PUT', '/v2.1/servers/%s' % self.server,
                      [('Content-Type', 'application/json'),
                       ('OpenStack-API-Version', 'compute 2.104')], body)
        assert r.status == 200, r.brief()


def msg(r):
    j = r.json()
    if isinstance(j, dict) and len(j) == 1:
        inner = next(iter(j.values()))
        if isinstance(inner, dict) and 'message' in inner:
            return str(inner['message'])[:70]
    return r.body[:50].decode('latin-1').replace('\n', ' ')


def version_of(r):
    return (r.one('openstack-api-version') or '-').replace('compute ', '')


def status_msg(r):
    return '%d %s' % (r.status, msg(r)) if r.status != 200 else '200'


def first_href(r):
    m = re.search(rb'"href": "([^"]*)"', r.body)
    return m.group(1).decode() if m else '-'


BODY = b'{"server": {"name": "probe-ok"}}'
JSON = ('Content-Type', 'application/json')


def put_name(n, lines, name='probe-ok', **kw):
    """PUT a valid rename; -> 'status, stored name'."""
    n.reset()
    body = json.dumps({'server': {'name': name}}).encode()
    r = n.send('PUT', n.path(), lines, body, **kw)
    stored = n.stored().get('name')
    return '%s; stored name %s' % (status_msg(r), 'changed'
                                   if stored == name else 'unchanged')


def probes():
    P = []

    def probe(name):
        def deco(fn):
            P.append((name, fn))
            return fn
        return deco

    # --- underscore header names ------------------------------------------
    @probe('X_Auth_Token only (GET server)')
    def _(n):
        r = n.send('GET', n.path(), [('X_Auth_Token', n.token)], token=False)
        return r.status == 200 and '200: authenticated' or status_msg(r)

    @probe('X_Auth_Token only, PUT /v2 description with NUL')
    def _(n):
        n.reset()
        r = n.send('PUT', n.path('/v2/{p}/servers/{s}'),
                   [('X_Auth_Token', n.token), JSON],
                   b'{"server": {"description": "a\\u0000b"}}', token=False)
        d = n.stored().get('description')
        return '%s; stored description %r' % (status_msg(r), d)

    @probe('OpenStack_API_Version: compute 2.19')
    def _(n):
        r = n.send('GET', n.path(), [('OpenStack_API_Version',
                                      'compute 2.19')])
        return 'version %s' % version_of(r)

    @probe('X_OpenStack_Nova_API_Version: 2.19')
    def _(n):
        r = n.send('GET', n.path(), [('X_OpenStack_Nova_API_Version',
                                      '2.19')])
        return 'version %s' % version_of(r)

    @probe('Content_Type: application/xml (no Content-Type)')
    def _(n):
        return put_name(n, [('Content_Type', 'application/xml')])

    @probe('Content_Length: N (no Content-Length)')
    def _(n):
        body = b'{"server": {"name": "probe-ok"}}'
        n.reset()
        r = n.send('PUT', n.path(), [JSON, ('Content_Length',
                                            str(len(body)))],
                   body, framed=True)
        return '%s; stored name %s' % (status_msg(r), n.stored().get('name'))

    @probe('X-Auth-Token: valid, then X_Auth_Token: bogus')
    def _(n):
        r = n.send('GET', n.path(), [('X_Auth_Token', 'bogus')])
        return '%d' % r.status

    @probe('X_Auth_Token: bogus, then X-Auth-Token: valid')
    def _(n):
        r = n.send('GET', n.path(), [('X_Auth_Token', 'bogus'),
                                     ('X-Auth-Token', n.token)], token=False)
        return '%d' % r.status

    @probe('Content-Type: xml, then Content_Type: json')
    def _(n):
        return put_name(n, [('Content-Type', 'application/xml'),
                            ('Content_Type', 'application/json')])

    @probe('Content_Type: json, then Content-Type: xml')
    def _(n):
        return put_name(n, [('Content_Type', 'application/json'),
                            ('Content-Type', 'application/xml')])

    @probe('OpenStack-API-Version: 2.19, then OpenStack_API_Version: 2.1')
    def _(n):
        r = n.send('GET', n.path(), [
            ('OpenStack-API-Version', 'compute 2.19'),
            ('OpenStack_API_Version', 'compute 2.1')])
        return 'version %s' % version_of(r)

    @probe('X-Forwarded-Host: evil.example (GET /)')
    def _(n):
        return first_href(n.send('GET', '/', [('X-Forwarded-Host',
                                               'evil.example')]))

    @probe('X_Forwarded_Host: evil.example (GET /)')
    def _(n):
        return first_href(n.send('GET', '/', [('X_Forwarded_Host',
                                               'evil.example')]))

    @probe('X-Forwarded-Proto: http, then X_Forwarded_Proto: https')
    def _(n):
        return first_href(n.send('GET', '/', [
            ('X-Forwarded-Proto', 'http'), ('X_Forwarded_Proto', 'https')]))

    @probe('X-Forwarded-Host: good, then X_Forwarded_Host: evil')
    def _(n):
        return first_href(n.send('GET', '/', [
            ('X-Forwarded-Host', 'good.example'),
            ('X_Forwarded_Host', 'evil.example')]))

    @probe('Forwarded: host=evil.example;proto=https (GET /)')
    def _(n):
        return first_href(n.send('GET', '/', [
            ('Forwarded', 'for=192.0.2.9;host=evil.example;proto=https')]))

    @probe('Forwarded + X-Forwarded-Host: good (GET /)')
    def _(n):
        return first_href(n.send('GET', '/', [
            ('X-Forwarded-Host', 'good.example'),
            ('Forwarded', 'host=evil.example')]))

    @probe('X-Forwarded-Proto: https (GET /)')
    def _(n):
        return first_href(n.send('GET', '/', [('X-Forwarded-Proto',
                                               'https')]))

    @probe('X-Forwarded-Prefix: /evil (GET /)')
    def _(n):
        return first_href(n.send('GET', '/', [('X-Forwarded-Prefix',
                                               '/evil')]))

    @probe('X_Forwarded_Prefix: /evil (GET /)')
    def _(n):
        return first_href(n.send('GET', '/', [('X_Forwarded_Prefix',
                                               '/evil')]))

    @probe('X-Forwarded-Port: 9999 (GET /)')
    def _(n):
        return first_href(n.send('GET', '/', [('X-Forwarded-Port', '9999')]))

    # --- repeated lines -----------------------------------------------------
    @probe('OpenStack-API-Version: compute 2.19 / volume 3.0')
    def _(n):
        r = n.send('GET', n.path(), [
            ('OpenStack-API-Version', 'compute 2.19'),
            ('OpenStack-API-Version', 'volume 3.0')])
        return 'version %s' % version_of(r)

    @probe('OpenStack-API-Version: compute 2.90 / compute 2.19')
    def _(n):
        r = n.send('GET', n.path(), [
            ('OpenStack-API-Version', 'compute 2.90'),
            ('OpenStack-API-Version', 'compute 2.19')])
        return 'version %s' % version_of(r)

    @probe('X-OpenStack-Nova-API-Version: 2.90 / 2.19')
    def _(n):
        r = n.send('GET', n.path(), [
            ('X-OpenStack-Nova-API-Version', '2.90'),
            ('X-OpenStack-Nova-API-Version', '2.19')])
        return 'version %s' % version_of(r)

    @probe('X-OpenStack-Nova-API-Version: 2.19 / (empty)')
    def _(n):
        r = n.send('GET', n.path(), [
            ('X-OpenStack-Nova-API-Version', '2.19'),
            ('X-OpenStack-Nova-API-Version', '')])
        return '%s version %s' % (r.status, version_of(r))

    @probe('Content-Type: application/xml / application/json')
    def _(n):
        return put_name(n, [('Content-Type', 'application/xml'),
                            ('Content-Type', 'application/json')])

    @probe('Content-Type: application/json / application/xml')
    def _(n):
        return put_name(n, [('Content-Type', 'application/json'),
                            ('Content-Type', 'application/xml')])

    @probe('Content-Length: N / N (same)')
    def _(n):
        body = b'{"server": {"name": "probe-ok"}}'
        n.reset()
        r = n.send('PUT', n.path(), [JSON, ('Content-Length', str(len(body))),
                                     ('Content-Length', str(len(body)))],
                   body, framed=True)
        return '%s; stored name %s' % (status_msg(r), n.stored().get('name'))

    @probe('Content-Length: N / 2 (differ)')
    def _(n):
        body = b'{"server": {"name": "probe-ok"}}'
        n.reset()
        r = n.send('PUT', n.path(), [JSON, ('Content-Length', str(len(body))),
                                     ('Content-Length', '2')],
                   body, framed=True)
        return '%s; stored name %s' % (status_msg(r), n.stored().get('name'))

    @probe('X-Auth-Token: valid / bogus')
    def _(n):
        r = n.send('GET', n.path(), [('X-Auth-Token', 'bogus')])
        return '%d' % r.status

    @probe('X-Auth-Token: bogus / valid')
    def _(n):
        r = n.send('GET', n.path(), [('X-Auth-Token', 'bogus'),
                                     ('X-Auth-Token', n.token)], token=False)
        return '%d' % r.status

    # --- paths ----------------------------------------------------------------
    for sp in ['/v2.1/{p}//servers/{s}', '/v2.1//{p}/servers/{s}',
               '/v2.1/{p}/servers//{s}', '/v2.1//servers/{s}',
               '/v2.1/{p}/%73ervers/{s}', '/%762.1/{p}/servers/{s}',
               '/v2.1/{p}%2Fservers/{s}', '//v2.1/{p}/servers/{s}',
               '/v2.1/./{p}/servers/{s}', '/v2.1/x/../{p}/servers/{s}',
               '/v2.1/{p}/servers/{s}#frag', 'http://{h}/v2.1/{p}/servers/{s}',
               '/v2.1/{p}/servers/{s}.json', '/V2.1/{p}/servers/{s}',
               '/v2.1/{p}/SERVERS/{s}', '/v2.1/{p}/servers/{s}/',
               '/v2.1/{p}/servers/{s}%2F', '/v2.1/{p}/servers/%2e%2e/{s}',
               '/v2.1/{p}/x/%2e%2e/servers/{s}', '/v2.1/{p}/servers/{s}%23x',
               '/v2.1/{p}/servers/{s};x', '/v2.1/{p}/./servers/./{s}',
               '*', 'v2.1/{p}/servers/{s}']:
        def _(n, sp=sp):
            r = n.send('PUT', n.path(sp), [JSON],
                       b'{"server": {"name": ""}}')
            routed = r.status == 400 and 'name' in msg(r)
            return 'update' if routed else status_msg(r)
        P.append(('PUT ' + sp.replace('{p}', 'P').replace('{s}', 'S')
                  .replace('{h}', 'H') + ' (name "")', _))

    # --- spellings Nova itself routes (keystonemiddleware, Routes, urlmap) --
    # A description with NUL: stored by legacy v2's update, refused by
    # v2.1's (400 at 2.1) -- shows which API, if any, ran update.
    nul = b'{"server": {"description": "a\\u0000b"}}'
    for label, method, sp, lines, token in [
        ('X-Storage-Token only, PUT /v2/P/servers/S', 'PUT',
         '/v2/{p}/servers/{s}', [('X-Storage-Token', None)], False),
        ('POST /v2/P/servers/S?_method=PUT', 'POST',
         '/v2/{p}/servers/{s}?_method=PUT', [], True),
        ('POST /v2/P/servers/S?_method=put', 'POST',
         '/v2/{p}/servers/{s}?_method=put', [], True),
        ('PUT /P/servers/S, Content-Type: application/json;version=2/x',
         'PUT', '/{p}/servers/{s}',
         [('Content-Type', 'application/json;version=2/x')], True),
        ('PUT /servers/S, Content-Type: application/json;version=2',
         'PUT', '/servers/{s}',
         [('Content-Type', 'application/json;version=2')], True),
        ('PUT /servers/S, Content-Type: application/json;version=2.1/x',
         'PUT', '/servers/{s}',
         [('Content-Type', 'application/json;version=2.1/x')], True),
        ('PUT /servers/S, Accept: application/json;version=2/x', 'PUT',
         '/servers/{s}', [JSON, ('Accept', 'application/json;version=2/x')],
         True),
        ('PUT %2Fv2/P/servers/S', 'PUT', '%2Fv2/{p}/servers/{s}', [JSON],
         True),
        ('PUT ./v2/P/servers/S', 'PUT', './v2/{p}/servers/{s}', [JSON],
         True),
    ]:
        def _(n, method=method, sp=sp, lines=lines, token=token):
            n.reset()
            ls = [(k, n.token if v is None else v) for k, v in lines]
            if not any(k == 'Content-Type' for k, _ in ls):
                ls.append(JSON)
            r = n.send(method, n.path(sp), ls, nul, token=token)
            d = n.stored().get('description')
            return '%s; %s' % (status_msg(r), 'STORED' if d == 'a\x00b'
                               else 'not stored')
        P.append((label + ' (/v2 description with NUL)', _))

    # --- no Host ----------------------------------------------------------
    @probe('GET / HTTP/1.1 without Host')
    def _(n):
        r = n.send('GET', '/', [], host=False)
        return '%d %s' % (r.status, first_href(r))

    @probe('GET / HTTP/1.0 without Host')
    def _(n):
        r = n.send('GET', '/', [], host=False, version='HTTP/1.0')
        return '%d %s' % (r.status, first_href(r))

    @probe('GET /v2.1/servers/S HTTP/1.0 without Host')
    def _(n):
        r = n.send('GET', '/v2.1/servers/%s' % n.server, [], host=False,
                   version='HTTP/1.0')
        return '%d %s' % (r.status, first_href(r))

    @probe('PUT update HTTP/1.0 without Host')
    def _(n):
        return put_name(n, [JSON], host=False, version='HTTP/1.0')

    # --- bytes HTTP forbids ------------------------------------------------
    for ch in ['{{', '}}', '|', '"', '<', '>', '\\', '^', '`', '\x01', '\x7f']:
        def _(n, ch=ch):
            return status_msg(n.send('PUT', n.path('/v2.1/{p}/servers/{s}?a='
                                                   + ch), [JSON], BODY))
        P.append(('PUT target with raw %r in the query' % ch[0], _))

    for ch in ['\x00', '\x01', '\x1f', '\x7f']:
        def _(n, ch=ch):
            return status_msg(n.send('PUT', n.path(), [
                JSON, ('X-Note', 'a%sb' % ch)], BODY))
        P.append(('PUT with header value containing %r' % ch, _))

    # --- depth ------------------------------------------------------------
    def nest(d):
        return '[' * d + ']' * d

    def deepest(n, make, lo=500, hi=1300):
        """Largest total depth Nova parses (answer not 500)."""
        while lo < hi:
            mid = (lo + hi + 1) // 2
            r = n.send('PUT', n.path(make[0]), [JSON], make[1](mid).encode())
            if r.status == 500:
                hi = mid - 1
            else:
                lo = mid
        return lo

    places = [
        ('/v2: {"server": {"name": "d", "x": nest}}', '/v2/{p}/servers/{s}',
         lambda d: '{"server": {"name": "d", "x": %s}}' % nest(d - 2)),
        ('2.1: {"server": {"x": nest}}', '/v2.1/{p}/servers/{s}',
         lambda d: '{"server": {"x": %s}}' % nest(d - 2)),
        ('2.1: top-level nest', '/v2.1/{p}/servers/{s}', nest),
        ('2.1: {"server": {"name": nest}}', '/v2.1/{p}/servers/{s}',
         lambda d: '{"server": {"name": %s}}' % nest(d - 2)),
    ]
    for label, path, make in places:
        def _(n, path=path, make=make):
            limit = deepest(n, (path, make))
            answers = []
            for d in (limit, limit + 1, 1000, 1100):
                r = n.send('PUT', n.path(path), [JSON], make(d).encode())
                answers.append('%d:%d' % (d, r.status))
            return 'parses up to %d (%s)' % (limit, ' '.join(answers))
        P.append(('depth, ' + label, _))

    # --- CONNECT ----------------------------------------------------------
    @probe('CONNECT /v2.1/P/servers/S (valid body)')
    def _(n):
        return status_msg(n.send('CONNECT', n.path(), [JSON], BODY))

    @probe('CONNECT 127.0.0.1:PORT')
    def _(n):
        return status_msg(n.send('CONNECT', n.host, []))

    return P


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('-k', default='', help='only probes matching REGEX')
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix='wsgi-facts-')
    started = {}
    errors = []

    def start(kind):
        try:
            started[kind] = wsgi_servers.launch_nova(
                kind, os.path.join(tmp, '%s.log' % kind), servers=1)
        except Exception as e:      # noqa
            errors.append(e)

    threads = [threading.Thread(target=start, args=(k,))
               for k in wsgi_servers.KINDS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if errors:
            raise errors[0]
        novas = [Nova(k, started[k][1]) for k in wsgi_servers.KINDS]
        rx = re.compile(args.k)
        print('| request | cheroot | uWSGI |')
        print('|---|---|---|')
        for name, fn in probes():
            if not rx.search(name):
                continue
            cells = []
            for n in novas:
                try:
                    cells.append(fn(n))
                except Exception as e:      # noqa
                    cells.append('error: %r' % e)
            print('| %s | %s | %s |' % (
                name.replace('|', '\\|'),
                *(c.replace('|', '\\|') for c in cells)), flush=True)
    finally:
        for kind, (proc, _) in started.items():
            harness.stop(proc)


if __name__ == '__main__':
    main()
