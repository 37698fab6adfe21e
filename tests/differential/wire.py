"""Requests written byte for byte: what http.client will not send.

Repeated and underscore header lines, no Host, HTTP/1.0, absolute-form and
odd request targets, CONNECT, bytes HTTP forbids. ``WireCase`` is a
``harness.Case`` whose request is written here (harness.send calls its
``send``), so that the runner, the comparison and the deliberate-difference
predicates treat it like any other case.
"""

import dataclasses
import http.client
import io
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events

import harness

# Bodies nested 1,100 levels deep are parsed here too (harness.python_json).
sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))


class _Sock:
    """The file-like view http.client.HTTPResponse reads from."""

    def __init__(self, data):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


def read_all(sock, timeout):
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
    return b''.join(chunks)


def parse_response(raw, method):
    """-> harness.Response (status 0 when nothing parseable came back)."""
    if not raw:
        return harness.Response(0, [], b'')
    r = http.client.HTTPResponse(_Sock(raw), method=method)
    try:
        r.begin()
        body = r.read()
    except (http.client.HTTPException, ValueError):
        return harness.Response(0, [], raw)
    return harness.Response(r.status, list(r.getheaders()), body)


def exchange(host, port, data, method, timeout=30):
    """Send ``data`` on a fresh connection and read until the server closes
    it (every request here says ``Connection: close``)."""
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        raw = read_all(s, timeout)
    resp = parse_response(raw, method)
    resp.elapsed = time.perf_counter() - t0
    return resp


def h2_exchange(host, port, method, target, lines, body, timeout=30):
    """One request over HTTP/2 with prior knowledge, its fields exactly as
    given (not validated or normalised by the client): ``Host`` becomes
    ``:authority``, ``Connection`` is left out (HTTP/2 has none).
    -> harness.Response (status 0 when the stream was reset)."""
    t0 = time.perf_counter()
    config = h2.config.H2Configuration(
        client_side=True, header_encoding=None,
        validate_outbound_headers=False, normalize_outbound_headers=False,
        validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    authority = '%s:%d' % (host, port)
    fields = []
    for k, v in lines:
        if k.lower() == 'host':
            authority = v
        elif k.lower() != 'connection':
            fields.append((k.lower().encode('latin-1'),
                           v if isinstance(v, bytes) else v.encode('latin-1')))
    fields = [(b':method', method.encode()), (b':scheme', b'http'),
              (b':authority', authority.encode('latin-1')),
              (b':path', target.encode('latin-1'))] + fields
    status, headers, data = 0, [], b''
    with socket.create_connection((host, port), timeout=timeout) as s:
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, fields, end_stream=not body)
        if body:
            conn.send_data(stream, body, end_stream=True)
        s.sendall(conn.data_to_send())
        done = False
        while not done:
            try:
                got = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not got:
                break
            for ev in conn.receive_data(got):
                if isinstance(ev, h2.events.ResponseReceived):
                    headers = [(k.decode('latin-1'), v.decode('latin-1'))
                               for k, v in ev.headers]
                    status = int(dict(headers).get(':status', 0))
                    headers = [(k, v) for k, v in headers
                               if not k.startswith(':')]
                elif isinstance(ev, h2.events.DataReceived):
                    data += ev.data
                    conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded,
                                     h2.events.StreamReset,
                                     h2.events.ConnectionTerminated)):
                    done = True
            s.sendall(conn.data_to_send())
    resp = harness.Response(status, headers, data)
    resp.elapsed = time.perf_counter() - t0
    return resp


def head_bytes(method, target, lines, version='HTTP/1.1'):
    out = ['%s %s %s\r\n' % (method, target, version)]
    for k, v in lines:
        out.append('%s: %s\r\n' % (k, v))
    out.append('\r\n')
    return ''.join(out).encode('latin-1')


@dataclasses.dataclass
class WireCase(harness.Case):
    """A case whose head is written as given.

    The request is built as for any case (``harness.build_request``), then:
    ``drop`` removes header lines by name (case-insensitive; ``'Host'`` for
    a request without one), ``lines`` appends (name, value) lines as they
    are (repeats, underscores, odd bytes), ``target`` replaces the request
    target (``{path}``, ``{host}`` are filled in), ``http_version`` sets the
    protocol, and a body is sent with ``Content-Length`` unless a line of
    ``lines`` already frames it (``framed``). With ``http2``, nova-guard is
    sent the same fields over HTTP/2 (prior knowledge, names lower-cased,
    values as given) while Nova, which speaks HTTP/1 only, gets them as
    HTTP/1 lines: as nova-guard would forward them.
    """
    lines: list = None
    drop: tuple = ()
    target: str = None
    http_version: str = 'HTTP/1.1'
    framed: bool = False
    http2: bool = False

    def send(self, env, target):
        method, path, headers, body = harness.build_request(self, env,
                                                            target)
        drop = {d.lower() for d in self.drop}
        out = [(k, v) for k, v in headers if k.lower() not in drop]
        if body is not None and not self.framed:
            out.append(('Content-Length', str(len(body))))
        out += [(k, v.format(host=target.hostport, server=target.server,
                             token=env['tokens']['member'],
                             project=env['project_id'])
                 if isinstance(v, str) else v)
                for k, v in (self.lines or [])]
        out.append(('Connection', 'close'))
        req_target = path
        if self.target is not None:
            req_target = self.target.format(path=path, host=target.hostport)
        if self.http2 and target.name == 'guard':
            return h2_exchange(target.host, target.port, method, req_target,
                               out, body)
        data = head_bytes(method, req_target, out, self.http_version)
        return exchange(target.host, target.port, data + (body or b''),
                        method)

    def describe_path(self):
        return '%s [%s/%s/%s lines=%r drop=%r target=%r %s]' % (
            self.version, self.url_form, self.header_form, self.server,
            self.lines, self.drop, self.target, self.http_version)


def nest(depth, kind='array'):
    """A JSON value nested ``depth`` levels deep."""
    if kind == 'array':
        return '[' * depth + ']' * depth
    return '{"a": ' * (depth - 1) + '{}' + '}' * (depth - 1)


@dataclasses.dataclass
class DeepCase(harness.Case):
    """A body whose ``template`` holds, at ``%s``, a value nested so that the
    whole body is ``depth`` levels deep (``outer`` levels are the
    template's own)."""
    template: str = '%s'
    outer: int = 0
    depth: int = 0
    kind: str = 'array'

    def __post_init__(self):
        if self.body is None:
            self.body = (self.template % nest(self.depth - self.outer,
                                              self.kind)).encode()

    def shallow(self):
        """The same body with the nested value two levels deep."""
        return dataclasses.replace(self, depth=self.outer + 2, body=None)
