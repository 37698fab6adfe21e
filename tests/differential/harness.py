"""Differential harness: send each request to Nova and through nova-guard, compare.

A *case* is one request (method, path, headers, body). It is sent to Nova
directly and through nova-guard, each on its own server of a pair whose two
servers are kept in the same state, and the two answers are compared: status,
parsed JSON body (server views without ids, links and timestamps), and the
headers that matter. Where they differ, the difference must be one of the
contract's deliberate ones ("Where we differ from Nova"), each an explicit
predicate below; anything else is a disagreement.
"""

import dataclasses
import http.client
import json
import os
import queue
import re
import shlex
import socket
import subprocess
import threading
import time
import uuid

# --- the deliberate differences -------------------------------------------

NO_ENTITY_422 = {"computeFault": {"code": 422, "message":
                 "Unable to process the contained instructions"}}
MALFORMED_400 = {"badRequest": {"code": 400,
                                "message": "Malformed request body"}}
TOO_LARGE_413 = {"overLimit": {"code": 413,
                               "message": "Request is too large."}}
MAX_BODY_BYTES = 114688

REQ_ID_RE = re.compile(
    r'^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')

# Nova's answers when there is no server entity in the body.
_NO_ENTITY_MSG_RE = re.compile(
    r"^(?:'server' is a required property"
    r"|.* is not of type 'object'"
    r"|Invalid input for field/attribute server\. Value: .*"
    r" is not of type 'object')$", re.S)


@dataclasses.dataclass
class Response:
    status: int
    headers: list          # [(name, value)], as received, duplicates kept
    body: bytes
    elapsed: float = 0.0

    def all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def one(self, name):
        vals = self.all(name)
        return vals[0] if vals else None

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def brief(self, limit=400):
        hs = {k: v for k, v in self.headers if k.lower() in MATTERING}
        body = self.body[:limit]
        return '%d %s %r%s' % (self.status, hs, body,
                               '...' if len(self.body) > limit else '')


MATTERING = ('content-type', 'x-openstack-request-id', 'x-compute-request-id',
             'openstack-api-version', 'x-openstack-nova-api-version', 'vary',
             'www-authenticate')


@dataclasses.dataclass
class Case:
    """One request, described so that it can be rebuilt and replayed."""
    id: str
    group: str
    body: bytes = None              # None: no body at all
    version: str = '2.1'            # 'v2' (legacy), '2.x', 'latest', or None
    url_form: str = 'project'       # 'project' | 'bare' | a custom path fmt
    header_form: str = 'new'        # 'new' | 'legacy' | 'both' | 'none'
    headers: dict = None            # extra headers (None value = remove)
    server: str = 'pair'            # 'pair' | 'missing' | a literal id
    token: str = 'member'           # 'member' | 'reader' | 'other' | 'none'
    #                                 | a literal token
    url_project: str = None         # None: the token's project
    chunked: bool = False
    method: str = 'PUT'
    expect: tuple = None            # (status, message) per nova-facts.md
    expect_fields: dict = None      # fields of the 200 answer's server
    note: str = ''

    def replay_hint(self):
        return ('case %s: %s %s body=%r' % (
            self.id, self.method, self.describe_path(),
            self.body if self.body is None or len(self.body) <= 600
            else self.body[:600] + b'...(%d bytes)' % len(self.body)))

    def describe_path(self):
        return '%s [%s/%s/%s%s]' % (
            self.version, self.url_form, self.header_form, self.server,
            ' chunked' if self.chunked else '')


class Conn:
    """A keep-alive HTTP/1.1 connection that reconnects when needed."""

    def __init__(self, host, port, timeout=60):
        self.host, self.port, self.timeout = host, port, timeout
        self._c = None

    def close(self):
        if self._c is not None:
            self._c.close()
            self._c = None

    def request(self, method, target, headers, body=None, chunked=False):
        for attempt in (0, 1):
            fresh = self._c is None
            if fresh:
                self._c = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout)
            try:
                return self._send(method, target, headers, body, chunked)
            except (ConnectionResetError, BrokenPipeError,
                    http.client.RemoteDisconnected,
                    http.client.CannotSendRequest, socket.timeout) as e:
                self.close()
                # A reused connection may have been closed by the server
                # while idle; retry once on a fresh one.
                if fresh or attempt == 1 or isinstance(e, socket.timeout):
                    raise
        raise AssertionError('unreachable')

    def _send(self, method, target, headers, body, chunked):
        c = self._c
        t0 = time.perf_counter()
        c.putrequest(method, target, skip_host=True,
                     skip_accept_encoding=True)
        for k, v in headers:
            c.putheader(k, v)
        if chunked:
            c.putheader('Transfer-Encoding', 'chunked')
            c.endheaders()
            if body:
                # Two chunks, to make sure the body is really re-assembled.
                cut = len(body) // 2 or len(body)
                for part in (body[:cut], body[cut:]):
                    if part:
                        c.send(b'%x\r\n' % len(part) + part + b'\r\n')
            c.send(b'0\r\n\r\n')
        else:
            if body is not None:
                c.putheader('Content-Length', str(len(body)))
            c.endheaders(body if body else None)
        r = c.getresponse()
        data = r.read()
        resp = Response(r.status, list(r.getheaders()), data,
                        time.perf_counter() - t0)
        if r.will_close:
            self.close()
        return resp


# --- building a request ----------------------------------------------------

class Target:
    """One side of the comparison: where to send and which server to use."""

    def __init__(self, name, host, port, server):
        self.name = name
        self.host, self.port = host, port
        self.server = server
        self.conn = Conn(host, port)

    @property
    def hostport(self):
        return '%s:%d' % (self.host, self.port)


def build_request(case, env, target):
    """-> (method, request-target, [(header, value)], body)."""
    project = env['project_id']
    tokens = env['tokens']
    if case.server == 'pair':
        sid = target.server
    elif case.server == 'missing':
        sid = env['missing_server']
    else:
        sid = case.server
    url_project = case.url_project or project
    legacy = case.version == 'v2'
    base = '/v2' if legacy else '/v2.1'
    if case.url_form == 'project':
        path = '%s/%s/servers/%s' % (base, url_project, sid)
    elif case.url_form == 'bare':
        path = '%s/servers/%s' % (base, sid)
    else:
        path = case.url_form.format(base=base, project=url_project,
                                    server=sid, host=target.hostport)
    headers = {'Host': target.hostport,
               'Accept': 'application/json',
               'Content-Type': 'application/json'}
    if case.token in tokens:
        headers['X-Auth-Token'] = tokens[case.token]
    elif case.token != 'none':
        headers['X-Auth-Token'] = case.token
    v = case.version
    if v is not None:
        mv = '2.1' if v == 'v2' else v   # legacy: headers must be ignored
        if case.header_form in ('new', 'both'):
            headers['OpenStack-API-Version'] = 'compute ' + mv
        if case.header_form in ('legacy', 'both'):
            headers['X-OpenStack-Nova-API-Version'] = (
                mv if case.header_form == 'legacy' else '2.1')
    for k, val in (case.headers or {}).items():
        # case-insensitive replace
        for existing in list(headers):
            if existing.lower() == k.lower():
                del headers[existing]
        if val is not None:
            headers[k] = val
    return case.method, path, list(headers.items()), case.body


def send(case, env, target):
    if hasattr(case, 'send'):        # wire.WireCase writes its own request
        return case.send(env, target)
    method, path, headers, body = build_request(case, env, target)
    return target.conn.request(method, path, headers, body, case.chunked)


# --- comparison -------------------------------------------------------------

VOLATILE_KEYS = {'id', 'links', 'created', 'updated', 'OS-SRV-USG:launched_at',
                 'href'}


def normalise(obj, server_id=None):
    """A server view without what differs between two servers of a pair:
    ids, links, timestamps; the server's id in messages becomes <server>."""
    if isinstance(obj, dict):
        return {k: normalise(v, server_id) for k, v in obj.items()
                if k not in VOLATILE_KEYS}
    if isinstance(obj, list):
        return [normalise(v, server_id) for v in obj]
    if server_id and isinstance(obj, str):
        return obj.replace(server_id, '<server>')
    return obj


def state_diff(a, b, path=''):
    """The places where two stored server views differ, as text."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += state_diff(a.get(k, '<absent>'), b.get(k, '<absent>'),
                              '%s.%s' % (path, k) if path else str(k))
        return out
    if a != b:
        return ['%s: nova-side %s, guard-side %s' % (
            path, json.dumps(a)[:200], json.dumps(b)[:200])]
    return []


def _vary(resp):
    out = []
    for v in resp.all('vary'):
        out.extend(p.strip() for p in v.split(',') if p.strip())
    return out


def header_differences(nova, guard, skip=()):
    """Differences in the headers that matter, as a list of strings."""
    diffs = []

    def cmp(name, a, b):
        if name not in skip and a != b:
            diffs.append('%s: nova=%r guard=%r' % (name, a, b))

    cmp('content-type', nova.all('content-type'), guard.all('content-type'))
    present = []
    for resp, who in ((nova, 'nova'), (guard, 'guard')):
        ids = [resp.all('x-openstack-request-id'),
               resp.all('x-compute-request-id')]
        present.append(bool(ids[0] or ids[1]))
        if (ids[0] or ids[1]) and not (
                len(ids[0]) == 1 and len(ids[1]) == 1
                and REQ_ID_RE.match(ids[0][0]) and ids[0] == ids[1]):
            if 'request-id' not in skip:
                diffs.append('request ids (%s): %r' % (who, ids))
    if present[0] != present[1] and 'request-id' not in skip:
        diffs.append('request ids present: nova=%s guard=%s' % tuple(present))
    cmp('openstack-api-version', nova.all('openstack-api-version'),
        guard.all('openstack-api-version'))
    cmp('x-openstack-nova-api-version',
        nova.all('x-openstack-nova-api-version'),
        guard.all('x-openstack-nova-api-version'))
    cmp('vary', _vary(nova), _vary(guard))
    cmp('www-authenticate', nova.all('www-authenticate'),
        guard.all('www-authenticate'))
    return diffs


def body_differences(nova, guard, ids=(None, None)):
    a, b = nova.json(), guard.json()
    if a is None or b is None:
        na, nb = nova.body, guard.body
        if ids[0] and ids[1]:
            na = na.replace(ids[0].encode(), b'<server>')
            nb = nb.replace(ids[1].encode(), b'<server>')
        if na != nb:
            return ['body: nova=%r guard=%r' % (na[:300], nb[:300])]
        return []
    a, b = normalise(a, ids[0]), normalise(b, ids[1])
    if a != b:
        return ['body: nova=%s guard=%s' % (json.dumps(a)[:600],
                                            json.dumps(b)[:600])]
    return []


def python_json(body):
    """(ok, value) as Nova would decode the body (Python's json module)."""
    if body is None or body == b'':
        return True, None
    try:
        text = body.decode('utf-8')
    except UnicodeDecodeError:
        return False, 'utf8'
    try:
        return True, json.loads(text)
    except ValueError:
        return False, 'json'


def has_server_entity(value):
    return isinstance(value, dict) and isinstance(value.get('server'), dict)


def _same(ref, guard, ids):
    return (ref.status == guard.status
            and not body_differences(ref, guard, ids)
            and not header_differences(ref, guard))


# Spellings of the update path that the contract has nova-guard validate
# because some WSGI server in front of Nova routes them to update-server,
# though cheroot (which serves Nova here) does not.
ROUTED_ELSEWHERE = 'routed-by-some-server'


def allowed_difference(case, nova, guard, ask=None, ids=(None, None)):
    """Name of the deliberate difference that explains nova != guard, or None.

    ``ask(case)`` sends a variant of the request to Nova directly and returns
    its answer: what Nova says to the same request with valid credentials, a
    malformed body, or the canonical path, against which nova-guard's own
    answer is then compared.
    """
    ok, value = python_json(case.body)
    gj = guard.json()
    nj = nova.json()
    nova_msg = ''
    if isinstance(nj, dict) and isinstance(nj.get('badRequest'), dict):
        nova_msg = str(nj['badRequest'].get('message', ''))

    # 1. No server entity: the documented 422 where Nova says 400.
    if (ok and not has_server_entity(value) and nova.status == 400
            and guard.status == 422 and gj == NO_ENTITY_422
            and _NO_ENTITY_MSG_RE.match(nova_msg)
            and not header_differences(nova, guard)):
        return 'no-server-entity-422'

    # 2. Legacy /v2: description, hostname, pinned_availability_zone are
    #    rejected (Nova drops them, or stores them when no other key is
    #    known). The answer must look like Nova's own legacy 400.
    if (case.version == 'v2' and ok and has_server_entity(value)
            and set(value['server']) & {'description', 'hostname',
                                        'pinned_availability_zone'}
            and guard.status == 400 and isinstance(gj, dict)
            and set(gj) == {'badRequest'}
            and gj['badRequest'].get('code') == 400
            and isinstance(gj['badRequest'].get('message'), str)
            and ask is not None):
        ref = ask(dataclasses.replace(case, body=b'{"server": {"name": ""}}'))
        if ref.status == 400 and not header_differences(ref, guard):
            return 'legacy-v2-extra-field'

    # 3. Too large: a Nova-shaped JSON 413 instead of webob's page.
    if (case.body is not None and len(case.body) > MAX_BODY_BYTES
            and nova.status == 413 and guard.status == 413
            and gj == TOO_LARGE_413
            and guard.all('content-type') == [
                'application/json; charset=UTF-8']
            and not header_differences(
                nova, guard, skip=('content-type', 'openstack-api-version',
                                   'x-openstack-nova-api-version', 'vary'))):
        return 'too-large-413'

    # 4. Invalid UTF-8: 400 Malformed where Nova answers 500; the answer must
    #    be Nova's own answer to a malformed body on the same request.
    if (not ok and value == 'utf8' and nova.status == 500
            and guard.status == 400 and gj == MALFORMED_400
            and ask is not None):
        ref = ask(dataclasses.replace(case, body=b'{'))
        if ref.status == 400 and ref.json() == MALFORMED_400 and \
                not header_differences(ref, guard):
            return 'invalid-utf8-400'

    # 5. Answered before Keystone: with a token Nova refuses (401) or a URL
    #    project that is not the token's (400 Malformed request URL), the
    #    client gets the body's answer: what Nova says with valid credentials.
    if (ask is not None and guard.status in (400, 422)
            and (nova.status == 401 or (
                nova.status == 400
                and nova_msg.startswith('Malformed request URL')))):
        fixed = dataclasses.replace(case, token='member', url_project=None)
        ref = ask(fixed)
        if ref.status in (400, 422) and (
                _same(ref, guard, ids)
                or allowed_difference(fixed, ref, guard, ask, ids)):
            return 'before-keystone'

    # 6. A spelling of the path that cheroot does not route to update-server
    #    but another WSGI server does: validated like the canonical path.
    if (ask is not None and case.note == ROUTED_ELSEWHERE
            and guard.status in (400, 422)
            and (nova.status == 404 or (
                nova.status == 400 and nj is None))):
        canonical = dataclasses.replace(case, url_form='project', note='')
        ref = ask(canonical)
        if ref.status in (400, 422) and (
                _same(ref, guard, ids)
                or allowed_difference(canonical, ref, guard, ask, ids)):
            return 'path-routed-by-other-servers'

    # 7.-9., depth, CONNECT: how nova-guard reads a request (contract, "nova-guard
    # reads each request as Nova will"; wire.WireCase, wire.DeepCase).
    return reading_difference(case, nova, guard, ask, ids)


# Header lines nova-guard combines into one when repeated, and those whose
# repeats must agree (different values: 400, never forwarded).
COMBINED = ('openstack-api-version', 'x-openstack-nova-api-version')
FRAMING = ('content-type', 'content-length')
# A guard answers at least this deep a body itself (contract: "at least 1,000").
GUARD_MIN_DEPTH = 1000


def as_forwarded(case):
    """(the request as nova-guard forwards it, [the rules applied]) for a
    wire case whose ``lines`` nova-guard rewrites: names with ``_`` dropped,
    repeated version lines combined into one (values joined by ``, ``),
    identical repeated Content-Type / Content-Length lines read as one;
    ``('refuse', rules)`` for repeats of those two that differ; ``(None,
    [])`` when nothing applies."""
    lines = getattr(case, 'lines', None)
    if not lines:
        return None, []
    rules = []
    kept = [(k, v) for k, v in lines if '_' not in k]
    if len(kept) != len(lines):
        rules.append('underscore-header-dropped')
    out = []
    for k, v in kept:
        low = k.lower()
        prev = [i for i, (k2, _) in enumerate(out) if k2.lower() == low]
        if prev and low in COMBINED:
            i = prev[0]
            out[i] = (out[i][0], '%s, %s' % (out[i][1], v))
            rules.append('repeated-version-combined')
        elif prev and low in FRAMING:
            if out[prev[0]][1].strip() != v.strip():
                return 'refuse', ['repeated-framing-400']
            rules.append('repeated-line-read-as-one')
        else:
            out.append((k, v))
    if not rules:
        return None, []
    fwd = dataclasses.replace(case, lines=out)
    if case.framed and not any(k.lower() == 'content-length' for k, _ in out):
        # No line frames the body any more: nova-guard reads none (what
        # follows the head is the next request on the connection).
        fwd = dataclasses.replace(fwd, body=None, framed=False)
    return fwd, sorted(set(rules))


_NESTING = [(re.compile(r"(?:\{'a': )+"), "{'a': "), (re.compile(r'\[+'), '['),
            (re.compile(r'\]+'), ']'), (re.compile(r'\}+'), '}')]


def collapse_nesting(resp):
    """The answer with every run of nesting in its body written once, so
    that a message rendering a value nested 950 levels deep can be compared
    with the same message for the value nested two levels deep."""
    text = resp.body.decode('utf-8', 'replace')
    for rx, one in _NESTING:
        text = rx.sub(one, text)
    return dataclasses.replace(resp, body=text.encode())


def reading_difference(case, nova, guard, ask, ids):
    gj = guard.json()
    fwd, rules = as_forwarded(case)
    # 9. Bytes HTTP forbids in the target or a header value: 400.
    if case.note == 'forbidden-bytes' and guard.status == 400:
        return 'forbidden-bytes-400'
    # Repeated Content-Type / Content-Length lines that differ: 400.
    if fwd == 'refuse' and guard.status == 400:
        return rules[0]
    # 7. Underscore names dropped, version lines combined, identical framing
    #    lines read as one: nova-guard answers what Nova answers to the
    #    request it forwards.
    if fwd not in (None, 'refuse') and ask is not None:
        ref = ask(fwd)
        if _same(ref, guard, ids) or allowed_difference(fwd, ref, guard,
                                                        ask, ids):
            return '+'.join(rules)
    # 5. with the token in repeated lines (a WSGI server may fold them into
    #    one token Keystone refuses): the body's answer with one valid token.
    lines = getattr(case, 'lines', None) or []
    if (ask is not None and guard.status in (400, 422) and nova.status == 401
            and any(k.lower() == 'x-auth-token' for k, _ in lines)):
        fixed = dataclasses.replace(case, token='member', lines=[
            (k, v) for k, v in lines if k.lower() != 'x-auth-token'])
        ref = ask(fixed)
        if ref.status in (400, 422) and (
                _same(ref, guard, ids)
                or allowed_difference(fixed, ref, guard, ask, ids)):
            return 'before-keystone'
    # Repeated X-Auth-Token lines: the contract does not say. Forwarded as
    #    they are (nova-guard's answer is then Nova's own) or combined into
    #    one line like the version lines (uWSGI's reading): both accepted.
    base = fwd if fwd not in (None, 'refuse') else case
    blines = getattr(base, 'lines', None) or []
    tokens = [v for k, v in blines if k.lower() == 'x-auth-token']
    if len(tokens) > 1 and ask is not None:
        first = [i for i, (k, _) in enumerate(blines)
                 if k.lower() == 'x-auth-token'][0]
        joined = [(k, v) for i, (k, v) in enumerate(blines)
                  if k.lower() != 'x-auth-token' or i == first]
        joined[first] = (joined[first][0], ', '.join(tokens))
        combined = dataclasses.replace(base, lines=joined)
        ref = ask(combined)
        if _same(ref, guard, ids) or allowed_difference(combined, ref, guard,
                                                        ask, ids):
            return 'repeated-token-combined'
    # CONNECT: forwarded as received (then Nova's answer, or 502 when Nova
    # closes without one), or answered 405.
    if case.method == 'CONNECT' and (
            guard.status == 405 or (nova.status == 0 and guard.status == 502)):
        return 'connect-405'
    # 8. and depth: Nova hit Python's recursion limit (500). nova-guard
    #    judges the body as it would judge it nested shallowly, i.e. gives
    #    Nova's answer to the shallow body, down to GUARD_MIN_DEPTH levels at
    #    least; deeper, it may answer 400 Malformed request body instead.
    depth = getattr(case, 'depth', None)
    if depth and nova.status == 500 and ask is not None:
        if (depth > GUARD_MIN_DEPTH and guard.status == 400
                and gj == MALFORMED_400):
            ref = ask(dataclasses.replace(case, body=b'{'))
            if ref.json() == MALFORMED_400 and \
                    not header_differences(ref, guard):
                return 'too-deep-400'
        shallow = case.shallow()
        ref = ask(shallow)
        if ref.status != 500 and (
                _same(collapse_nesting(ref), collapse_nesting(guard), ids)
                or allowed_difference(shallow, ref, guard, ask, ids)):
            return 'nested-beyond-nova-judged'
    return None


@dataclasses.dataclass
class Outcome:
    case: Case
    kind: str            # 'agree' | 'allowed' | 'disagree'
    detail: str = ''
    nova: Response = None
    guard: Response = None

    def report(self, seed=None):
        return '\n'.join([
            'DISAGREEMENT %s' % self.case.replay_hint(),
            '  replay: %sNOVA_GUARD_DIFF_CASES=%s tests/differential/run.sh'
            % ('NOVA_GUARD_DIFF_SEED=%s ' % seed if seed is not None else '',
               shlex.quote('^%s$' % re.escape(self.case.id))),
            '  nova : %s' % (self.nova.brief() if self.nova else None),
            '  guard: %s' % (self.guard.brief() if self.guard else None),
            '  why  : %s' % self.detail,
        ])


def compare(case, nova, guard, ask=None, ids=(None, None)):
    diffs = []
    if nova.status != guard.status:
        diffs.append('status: nova=%d guard=%d' % (nova.status, guard.status))
    diffs += body_differences(nova, guard, ids)
    diffs += header_differences(nova, guard)
    if not diffs:
        return 'agree', ''
    allowed = allowed_difference(case, nova, guard, ask, ids)
    if allowed:
        return 'allowed', allowed
    return 'disagree', '; '.join(diffs)


@dataclasses.dataclass
class Reported:
    """A disagreement found in another process, as its report."""
    text: str

    def report(self, seed=None):
        return self.text


class Tally:
    def __init__(self):
        self.cases = 0
        self.agree = 0
        self.allowed = {}
        self.disagreements = []
        self.facts = []          # Nova answers that differ from nova-facts.md
        self.state_checks = 0
        self.resets = 0
        self.nova_secs = 0.0
        self.guard_secs = 0.0
        self.accepted = 0

    def add(self, outcome):
        self.cases += 1
        if outcome.kind == 'agree':
            self.agree += 1
        elif outcome.kind == 'allowed':
            self.allowed[outcome.detail] = (
                self.allowed.get(outcome.detail, 0) + 1)
        else:
            self.disagreements.append(outcome)

    def merge(self, other):
        self.cases += other.cases
        self.agree += other.agree
        for k, v in other.allowed.items():
            self.allowed[k] = self.allowed.get(k, 0) + v
        self.disagreements += other.disagreements
        self.facts += other.facts
        self.state_checks += other.state_checks
        self.resets += other.resets
        self.nova_secs += other.nova_secs
        self.guard_secs += other.guard_secs
        self.accepted += other.accepted

    def to_json(self, seed):
        """The tally as JSON, its disagreements as their reports: how a
        worker process hands it to the one that prints the summary."""
        d = dict(vars(self))
        d['disagreements'] = [o.report(seed) for o in self.disagreements]
        return json.dumps(d)

    @classmethod
    def from_json(cls, text):
        t = cls()
        vars(t).update(json.loads(text))
        t.disagreements = [Reported(r) for r in t.disagreements]
        return t

    def summary(self):
        allowed = sum(self.allowed.values())
        answers = self.cases - self.agree - allowed
        return ('differential: %d cases, %d agreements, %d allowed differences'
                ' (%s), %d disagreements (%d in answers, %d in stored state)'
                % (self.cases, self.agree, allowed,
                   ', '.join('%s %d' % kv for kv in sorted(
                       self.allowed.items())) or 'none',
                   len(self.disagreements), answers,
                   len(self.disagreements) - answers))


# --- the pair of servers and the runner ------------------------------------

RESET_BODY = {'server': {
    'name': 'pair', 'description': None, 'hostname': 'pair',
    'OS-DCF:diskConfig': 'MANUAL', 'accessIPv4': '192.0.2.1',
    'accessIPv6': '2001:db8::1', 'pinned_availability_zone': None}}


class Runner:
    """Runs cases against a pair of servers kept in the same state.

    ``env`` may name the microversion the state is read and reset at
    (``state_version``, default 2.104) and a ``text_filter`` applied to every
    answer before it is compared (see releases.py).
    """

    def __init__(self, env, nova_target, guard_target, state_every=20):
        self.env = env
        self.state_version = env.get('state_version', '2.104')
        self.text_filter = env.get('text_filter')
        self.nova = nova_target      # requests to Nova directly, server A
        self.guard = guard_target    # requests through nova-guard, server B
        # To look at the stored state, always ask Nova directly.
        self.nova_b = Target('nova-b', nova_target.host, nova_target.port,
                             guard_target.server)
        self.state_every = state_every
        self.since_check = []
        self.snapshot = None
        self.dirty = False
        self.tally = Tally()

    def _send(self, case, target):
        r = send(case, self.env, target)
        return self.text_filter(r) if self.text_filter else r

    # state --------------------------------------------------------------
    def _get(self, target):
        headers = [('Host', target.hostport), ('Accept', 'application/json'),
                   ('X-Auth-Token', self.env['tokens']['member']),
                   ('OpenStack-API-Version',
                    'compute ' + self.state_version)]
        r = target.conn.request('GET', '/v2.1/servers/%s' % target.server,
                                headers)
        if r.status != 200:
            raise AssertionError('GET server %s: %s' % (target.server,
                                                        r.brief()))
        return normalise(r.json())

    def stored_states(self):
        self.tally.state_checks += 1
        return self._get(self.nova), self._get(self.nova_b)

    def reset(self):
        """Put both servers into the same known state."""
        self.tally.resets += 1
        fields = dict(RESET_BODY['server'])
        if tuple(map(int, self.state_version.split('.'))) < (2, 104):
            del fields['pinned_availability_zone']
        body = json.dumps({'server': fields}).encode()
        for t in (self.nova, self.nova_b):
            headers = [('Host', t.hostport), ('Accept', 'application/json'),
                       ('Content-Type', 'application/json'),
                       ('X-Auth-Token', self.env['tokens']['member']),
                       ('OpenStack-API-Version',
                        'compute ' + self.state_version)]
            r = t.conn.request('PUT', '/v2.1/servers/%s' % t.server, headers,
                               body)
            if r.status != 200:
                raise AssertionError('reset %s: %s' % (t.server, r.brief()))
        a, b = self.stored_states()
        if a != b:
            raise AssertionError('servers differ after a reset:\n%s\n%s'
                                 % (a, b))
        self.snapshot = a
        self.since_check = []
        self.dirty = False

    def check_state(self):
        """Both servers must be in the same stored state, and unchanged
        since the last check if every request since was rejected."""
        if not self.since_check:
            return
        a, b = self.stored_states()
        if a == b and (self.dirty or a == self.snapshot):
            self.snapshot = a
            self.since_check = []
            self.dirty = False
            return
        # Replay the requests since the last check one by one from a reset,
        # looking at the stored state after each, to find the culprit.
        suspects = self.since_check
        self.since_check = []
        before = len(self.tally.disagreements)
        self.reset_to_replay(suspects)
        if len(self.tally.disagreements) == before:
            self.tally.disagreements.append(Outcome(
                suspects[-1], 'disagree',
                'stored state differed after the %d requests up to this one,'
                ' but not when they were replayed one by one' % len(suspects)))
        self.reset()

    def reset_to_replay(self, suspects):
        """Replay ``suspects`` from a reset, checking the state after each."""
        self.reset()
        for case in suspects:
            n = self._send(case, self.nova)
            g = self._send(case, self.guard)
            if n.status == 200 and g.status != 200:
                send(case, self.env, self.nova_b)
            a, b = self.stored_states()
            changed = n.status == 200 or g.status == 200
            if a != b or (not changed and a != self.snapshot):
                self.tally.disagreements.append(Outcome(
                    case, 'disagree', 'stored state differs after this '
                    'request (nova %d, guard %d): %s' % (
                        n.status, g.status, '; '.join(
                            state_diff(a, b) or state_diff(self.snapshot, a))),
                    n, g))
                self.reset()
            else:
                self.snapshot = a

    # running ------------------------------------------------------------
    def ask_nova(self, case):
        """Nova's answer to a variant of a request (server A; B alike when
        it is accepted, so that the pair stays in step)."""
        r = self._send(case, self.nova)
        if r.status == 200:
            send(case, self.env, self.nova_b)
            self.dirty = True
        return r

    def run(self, case):
        if self.snapshot is None:
            self.reset()
        n = self._send(case, self.nova)
        g = self._send(case, self.guard)
        ids = ((self.nova.server, self.guard.server) if case.server == 'pair'
               else (None, None))
        kind, detail = compare(case, n, g, self.ask_nova, ids)
        outcome = Outcome(case, kind, detail, n, g)
        self.tally.nova_secs += n.elapsed
        self.tally.guard_secs += g.elapsed
        self.tally.accepted += n.status == 200
        self.tally.add(outcome)
        if case.expect is not None:
            self._check_fact(case, n)

        if n.status == 200 and g.status == 200:
            # Both accepted: their answers (the server as stored, in this
            # microversion's view) were compared above; the full stored
            # state is compared at the next check.
            self.since_check.append(case)
            self.dirty = True
        elif n.status == 200 and kind == 'allowed':
            # Nova accepted what nova-guard rejects on purpose (legacy /v2
            # description...): give server B the same change, directly.
            send(case, self.env, self.nova_b)
            self.since_check.append(case)
            self.dirty = True
        elif n.status == 200 or g.status == 200:
            # Only one side changed its server: a disagreement, already
            # recorded. Start again from a known state (the requests since
            # the last check go unchecked in this failing run).
            self.since_check = []
            self.snapshot = None
        else:
            self.since_check.append(case)
        if len(self.since_check) >= self.state_every:
            self.check_state()
        return outcome

    def finish(self):
        self.check_state()

    def _check_fact(self, case, n):
        status, message = case.expect
        nj = n.json()
        got = None
        if isinstance(nj, dict) and len(nj) == 1:
            inner = next(iter(nj.values()))
            if isinstance(inner, dict):
                got = inner.get('message')
        if n.status != status or (message is not None and got != message):
            self.tally.facts.append(
                '%s: nova-facts expects %s %r, Nova 34 answered %d %r'
                % (case.replay_hint(), status, message, n.status,
                   got if got is not None else n.body[:200]))
        elif n.status == 200 and case.expect_fields:
            server = (nj or {}).get('server', {})
            for k, want in case.expect_fields.items():
                if server.get(k) != want:
                    self.tally.facts.append(
                        '%s: nova-facts expects %s=%r, Nova 34 answered %r'
                        % (case.replay_hint(), k, want, server.get(k)))


def fresh_uuid(rng=None):
    if rng is None:
        return str(uuid.uuid4())
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# --- the processes under test -----------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def guard_binary():
    """The nova-guard under test: NOVA_GUARD_BIN, else the release build."""
    return os.environ.get('NOVA_GUARD_BIN') or os.path.join(
        ROOT, 'target', 'release', 'nova-guard')


def stop(proc, grace=30):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def start_nova(argv, log_path, what='Nova', timeout=240):
    """Starts a nova_api.py command line, its log to `log_path`, and waits
    for its NOVA_READY line -> (process, the NOVA_READY dict, with 'log').
    Raises RuntimeError with the end of the log when it does not come up."""
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log,
                                text=True, cwd=ROOT)
    lines = queue.Queue()

    def reader():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        if line.startswith('NOVA_READY '):
            ready = json.loads(line[len('NOVA_READY '):])
            ready['log'] = str(log_path)
            return proc, ready
    stop(proc)
    raise RuntimeError('%s did not start; its log:\n%s'
                       % (what, open(log_path).read()[-5000:]))


def start_guard(binary, nova_port, log_path, env=None, host='127.0.0.1',
                answered=True):
    """nova-guard in front of the Nova on `nova_port`, on `host` and a port
    of the kernel's choosing (read from its `listening` line: no other
    process can take it meanwhile), its output to `log_path`; `env` adds
    variables (None: removes one). Waits until it answers `GET /`
    (`answered`) or only listens -> (process, port). Raises RuntimeError
    with the end of its output."""
    full = dict(os.environ)
    full.update({
        'NOVA_GUARD_LISTEN': '%s:0' % host,
        'NOVA_GUARD_UPSTREAM': 'http://127.0.0.1:%d' % nova_port,
        'NOVA_GUARD_LOG_FORMAT': 'json',
    })
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    with open(log_path, 'w') as log:
        proc = subprocess.Popen([binary], stdout=log, stderr=subprocess.STDOUT,
                                env=full, cwd=ROOT)
    deadline = time.monotonic() + 30
    port = None
    while time.monotonic() < deadline and proc.poll() is None:
        if port is None:
            port = _listening_port(log_path)
        if port is not None:
            try:
                if answered:
                    c = Conn('127.0.0.1', port, timeout=5)
                    c.request('GET', '/', [('Host', '127.0.0.1:%d' % port)])
                    c.close()
                else:
                    socket.create_connection(('127.0.0.1', port), 1).close()
                return proc, port
            except OSError:
                pass
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError('nova-guard did not start; its output:\n%s'
                       % open(log_path).read()[-5000:])


def _listening_port(log_path):
    """The port of nova-guard's `listening` line in its log, if it is there."""
    with open(log_path, encoding='utf-8', errors='replace') as f:
        for line in f:
            if '"listening"' not in line:
                continue
            try:
                listen = json.loads(line).get('listen', '')
            except ValueError:
                continue
            port = listen.rpartition(':')[2]
            if port.isdigit():
                return int(port)
    return None
