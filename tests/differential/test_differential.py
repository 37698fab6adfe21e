"""nova-guard must answer every update request as Nova does.

(a) the fixed corpus of nova-facts.md at every microversion, (b) generated
bodies, (c) the stored state of a pair of servers, checked throughout (a) and
(b), and (d) the real openstack client.
"""

import json
import os
import random
import re
import subprocess
import sys
import time

import pytest

import corpus
import generator
import harness
from conftest import SEED, make_runner, selected


def test_fixed_corpus(env, record):
    started = time.monotonic()
    runner = make_runner(env, pair=0)
    cases = corpus.static_cases()
    # A seeded random order, so that a change to the stored state by one
    # request is not hidden by the same field being set on both servers by
    # the next requests before the state is looked at. The pinned AZ cases
    # keep their order (tempest's sequence) at the end.
    pinned = [c for c in cases if c.id.startswith('pinned-az-')]
    rest = [c for c in cases if not c.id.startswith('pinned-az-')]
    random.Random(SEED).shuffle(rest)
    for case in selected(rest + pinned):
        runner.run(case)
    for case in selected(corpus.prekeystone_cases()):
        runner.run(case)
    runner.finish()
    record('(a) fixed corpus', runner, started)


def test_generated_bodies(env, record):
    count = int(os.environ.get('NOVA_GUARD_DIFF_COUNT', '900'))
    started = time.monotonic()
    runner = make_runner(env, pair=0)
    print('\ngenerated bodies: seed %d, %d cases' % (SEED, count))
    for case in selected(generator.generated_cases(SEED, count)):
        runner.run(case)
    runner.finish()
    record('(b) generated (seed %d)' % SEED, runner, started)


# --- (d) the real openstack client -------------------------------------------

OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')

CLIENT_COMMANDS = [
    ('set-name', [], ['server', 'set', '--name', 'from-osc']),
    ('set-name-multibyte', [], ['server', 'set', '--name',
                                '\u00cd\u00f1st\u00e1\u00f1c\u00c9']),
    ('set-description-2.19', ['--os-compute-api-version', '2.19'],
     ['server', 'set', '--description', 'set by osc']),
    ('set-bad-name', [], ['server', 'set', '--name', ' bad name']),
    ('set-name-too-long', [], ['server', 'set', '--name', 'n' * 256]),
    ('set-description-2.1', ['--os-compute-api-version', '2.1'],
     ['server', 'set', '--description', 'too early']),
    ('set-name-2.104', ['--os-compute-api-version', '2.104'],
     ['server', 'set', '--name', 'at-2.104']),
]


def _osc(endpoint, token, pre, args, server):
    cmd = [OPENSTACK, '--os-auth-type', 'admin_token', '--os-endpoint',
           endpoint, '--os-token', token] + pre + args + [server]
    env = dict(os.environ, OS_CLOUD='', PYTHONWARNINGS='ignore')
    for k in list(env):
        if k.startswith('OS_') and k != 'OS_CLOUD':
            del env[k]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _norm_output(text, endpoint, server):
    text = text.replace(endpoint, '<endpoint>').replace(server, '<server>')
    text = re.sub(r'req-[0-9a-f-]{36}', '<request-id>', text)
    return text.strip()


def test_openstack_client(env, record):
    started = time.monotonic()
    runner = make_runner(env, pair=1)
    token = env['tokens']['member']
    nova_ep = 'http://127.0.0.1:%d/v2.1' % env['nova_port']
    guard_ep = 'http://127.0.0.1:%d/v2.1' % env['guard_port']
    a, b = runner.nova.server, runner.guard.server
    for name, pre, args in CLIENT_COMMANDS:
        case = harness.Case('osc-%s' % name, group='d',
                            note=' '.join(pre + args))
        if not selected([case]):
            continue
        runner.reset()
        pn = _osc(nova_ep, token, pre, args, a)
        pg = _osc(guard_ep, token, pre, args, b)
        out_n, err_n = pn.communicate(timeout=120)
        out_g, err_g = pg.communicate(timeout=120)
        direct = (pn.returncode, _norm_output(out_n, nova_ep, a),
                  _norm_output(err_n, nova_ep, a))
        proxied = (pg.returncode, _norm_output(out_g, guard_ep, b),
                   _norm_output(err_g, guard_ep, b))
        state_a, state_b = runner.stored_states()
        diffs = []
        if direct != proxied:
            diffs.append('exit/output: direct=%r proxied=%r' % (direct,
                                                               proxied))
        if state_a != state_b:
            diffs.append('stored state: %s' % '; '.join(
                harness.state_diff(state_a, state_b)))
        outcome = harness.Outcome(
            case, 'disagree' if diffs else 'agree', '; '.join(diffs))
        runner.tally.add(outcome)
        runner.tally.accepted += pn.returncode == 0
        print('osc %-24s exit %d %s' % (name, pn.returncode,
                                        (err_n.strip().splitlines() or [''])[-1][:120]))
    record('(d) openstack client', runner, started)


def test_nothing_left_to_compare(env):
    """The session ran cases at all (guards against an empty selection)."""
    from conftest import TOTAL
    if os.environ.get('NOVA_GUARD_DIFF_CASES'):
        pytest.skip('a selection of cases was asked for')
    assert TOTAL.cases > 2000, TOTAL.summary()


def test_guard_log_has_no_secrets(env, guard):
    """nova-guard's log (JSON, one event per exchange) never holds a token
    or a request body."""
    with open(guard['log'], encoding='utf-8', errors='replace') as f:
        lines = [line for line in f if line.strip()]
    assert lines, 'nova-guard logged nothing'
    bad = [line for line in lines if not line.lstrip().startswith('{')]
    for line in lines:
        if line.lstrip().startswith('{'):
            json.loads(line)
    assert not bad, 'lines that are not JSON events: %r' % bad[:5]
    text = ''.join(lines)
    for secret in list(env['tokens'].values()) + ['not a valid token']:
        assert secret not in text, 'a token is in the log'
    for body_text in ('order-ok', 'prekeystone-ok', 'ctype-ok'):
        assert body_text not in text, 'a request body is in the log'


def _guard_line(guard, user_agent, timeout=5.0):
    """nova-guard's access line of the request sent with `user_agent`."""
    deadline = time.monotonic() + timeout
    while True:
        with open(guard['log'], encoding='utf-8', errors='replace') as f:
            for line in f:
                if user_agent in line:
                    return json.loads(line)
        if time.monotonic() > deadline:
            pytest.fail('no access line with User-Agent %s' % user_agent)
        time.sleep(0.1)


def _nova_request_line(nova, local_id, timeout=5.0):
    """The `[global_request_id request_id ...]` of Nova's own request-log
    line for the request Nova gave `local_id` (oslo.log's context format)."""
    pattern = re.compile(r'nova\.api\.openstack\.requestlog \[(\S+) (%s) '
                         % re.escape(local_id))
    deadline = time.monotonic() + timeout
    while True:
        with open(nova['log'], encoding='utf-8', errors='replace') as f:
            for line in f:
                m = pattern.search(line)
                if m:
                    return m.group(1), m.group(2)
        if time.monotonic() > deadline:
            pytest.fail('Nova logged no request line for %s' % local_id)
        time.sleep(0.1)


def test_nova_logs_the_request_id_nova_guard_logged(env, nova, guard):
    """Without an X-OpenStack-Request-ID from the client, nova-guard sends
    its own id in it, so Nova's log line of the request carries, as its
    global request id, the id in nova-guard's access line; a client's own
    id reaches Nova untouched."""
    import http.client
    import uuid
    server = env['servers'][0]
    client_id = 'req-%s' % uuid.uuid4()
    for sent in (None, client_id):
        agent = 'request-id-check/%s' % uuid.uuid4()
        headers = {'X-Auth-Token': env['tokens']['member'],
                   'User-Agent': agent}
        if sent:
            headers['X-OpenStack-Request-ID'] = sent
        conn = http.client.HTTPConnection('127.0.0.1', env['guard_port'],
                                          timeout=30)
        conn.request('GET', '/v2.1/servers/%s' % server, headers=headers)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == 200, resp.status
        local = resp.getheader('X-OpenStack-Request-ID')
        line = _guard_line(guard, agent)
        assert line['upstream_request_id'] == local, line
        global_id, _ = _nova_request_line(nova, local)
        if sent is None:
            assert 'global_request_id' not in line, line
            assert global_id == line['request_id'], (global_id, line)
        else:
            assert line['global_request_id'] == sent, line
            assert global_id == sent, (global_id, line)
