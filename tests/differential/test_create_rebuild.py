"""nova-guard must answer create-server and rebuild bodies as Nova does.

Each case is sent to Nova directly and through nova-guard; where nova-guard
answers itself (a guarded field's error) its answer must be Nova's, and
everything else must reach Nova and get Nova's own answer. No case may
create or rebuild anything: valid create bodies name a flavor that does not
exist and valid rebuild bodies an image that does not exist, so Nova stops
right after validation with the same answer on both sides.

Then the same corpus through a second nova-guard in report-only mode: every
answer must be Nova's own, and the verdict it logs for each case must be the
one the enforcing nova-guard acted on.
"""

import json
import os
import random
import time

import pytest

import harness
from conftest import SEED, selected

UUID = '0b1e7c2a-5d3f-4e6a-9b8c-1d2e3f4a5b6c'   # no such image
FLAVOR = 'no-such-flavor'

GUARDED = {
    'name': ['x', '', ' a', 'a ', 'abc\n', 'x' * 256, 1, None, '\u200b',
             '\u00e9t\u00e9', '   ', 'a\u3000b'],
    'OS-DCF:diskConfig': ['AUTO', 'MANUAL', 'auto', None, 1, ''],
    'accessIPv4': ['1.2.3.4', '', None, '01.2.3.4', '1.2.3', 5, '1.2.3.4\n'],
    'accessIPv6': ['::1', '2001:0DB8::1', '::babe:67.23.10.132',
                   'fe80::1%eth0', '', None, 'bad', '::FFFF:1.2.3.4'],
    'description': ['d', '', None, 1, 'a\tb', 'x\n', 'y' * 256],
    'hostname': ['ab', 'a', 'a.b', '', '-a', 'a_b', 'x' * 64, 1, '\n', 'ab\n'],
}
OTHER = {
    'imageRef': [UUID, '', 'x', 1, None],
    'flavorRef': [FLAVOR, 1.5, '', None],
    'adminPass': ['p', 1],
    'metadata': [{}, {'a': 'b'}, {'a': 1}, {'a/b': 'c'}],
    'networks': ['auto', 'none', [], [{'uuid': UUID}], [{'uuid': 'x'}],
                 [{'fixed_ip': '10.0.0.1'}], [{'fixed_ip': '1.2.3'}], 'bad'],
    'availability_zone': ['nova', ' nova', ''],
    'block_device_mapping_v2': [
        [], [{'boot_index': 'x'}], [{'volume_size': 0}],
        [{'source_type': 'blank', 'destination_type': 'local',
          'boot_index': -1, 'volume_size': 1,
          'delete_on_termination': True}],
        [{'source_type': 'image', 'uuid': UUID, 'boot_index': 0}]],
    'config_drive': [True, 'yes', 'y'],
    'key_name': ['k', '', None],
    'min_count': [1, 0, '1'],
    'security_groups': [[], [{'name': 'default'}], [{'x': 1}]],
    'user_data': ['aGVsbG8=', '', None, '!!!!'],
    'preserve_ephemeral': [True, 'x'],
    'tags': [[], ['a'], ['a,b']],
    'trusted_image_certificates': [None, ['a'], []],
    'host': ['h', ''],
    'foo': [1],
}
VERSIONS = ['v2', '2.1', '2.18', '2.19', '2.36', '2.37', '2.53', '2.54',
            '2.56', '2.57', '2.63', '2.73', '2.74', '2.89', '2.90', '2.93',
            '2.94', '2.100', 'latest']


def _entity(rng, op):
    ent = {}
    for k in rng.sample(sorted(GUARDED) + sorted(OTHER), rng.randint(0, 6)):
        ent[k] = rng.choice(GUARDED.get(k) or OTHER[k])
    if op == 'create':
        if rng.random() < 0.8:
            ent.setdefault('name', 'srv')
        if rng.random() < 0.8:
            ent['flavorRef'] = FLAVOR
        if rng.random() < 0.5:
            ent.setdefault('networks', 'none')
        if rng.random() < 0.5:
            ent['imageRef'] = UUID
    elif rng.random() < 0.8:
        ent['imageRef'] = UUID
    items = list(ent.items())
    rng.shuffle(items)
    return dict(items)


def corpus_cases(seed, count):
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        op = rng.choice(['create', 'rebuild'])
        key = 'server' if op == 'create' else 'rebuild'
        top = {key: _entity(rng, op)}
        r = rng.random()
        if r < 0.04:
            top['os:scheduler_hints'] = {}
        elif r < 0.07:
            top['foo'] = 1
        elif r < 0.09:
            top = {key: rng.choice(['x', None])}
        elif r < 0.11 and op == 'rebuild':
            top = {'os-getConsoleOutput': {'length': rng.choice([1, 'x'])}}
        body = json.dumps(top, ensure_ascii=rng.random() < 0.5).encode()
        url = ('{base}/{project}/servers' if op == 'create'
               else '{base}/{project}/servers/{server}/action')
        if rng.random() < 0.3:
            url = url.replace('/{project}', '')
        cases.append(harness.Case(
            id='%s-%d' % (op, i), group=op, body=body,
            version=rng.choice(VERSIONS), url_form=url, method='POST',
            server='pair'))
    return cases


def _send_both(env, case, nova_t, guard_t, sid):
    n = harness.send(case, env, nova_t)
    g = harness.send(case, env, guard_t)
    kind, detail = harness.compare(case, n, g, ids=(sid, sid))
    return harness.Outcome(case, kind, detail, n, g)


def _exchanges(path, after):
    out = []
    with open(path) as f:
        for line in f.readlines()[after:]:
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if v.get('fields', v).get('message') == 'exchange':
                out.append(v)
    # Workers hand their lines over in batches: the timestamps keep the
    # order in which the exchanges ended.
    out.sort(key=lambda v: v.get('timestamp', ''))
    return [v.get('fields', v) for v in out]


def _log_lines(path):
    with open(path) as f:
        return len(f.readlines())


@pytest.fixture(scope='module')
def report_guard(nova, guard, tmp_path_factory):
    log_path = tmp_path_factory.mktemp('report') / 'nova-guard.log'
    proc, port = harness.start_guard(guard['binary'], nova['port'], log_path,
                                     {'NOVA_GUARD_MODE': 'report'})
    yield {'port': port, 'log': str(log_path)}
    harness.stop(proc)


def test_create_and_rebuild_fields(env, guard, report_guard, record):
    count = int(os.environ.get('NOVA_GUARD_DIFF_CR_COUNT', '800'))
    started = time.monotonic()
    sid = env['servers'][0]
    nova_t = harness.Target('nova', '127.0.0.1', env['nova_port'], sid)
    guard_t = harness.Target('guard', '127.0.0.1', env['guard_port'], sid)
    report_t = harness.Target('report', '127.0.0.1', report_guard['port'],
                              sid)
    runner = harness.Runner(env, nova_t, guard_t)   # for its tally
    cases = selected(corpus_cases(SEED, count))
    print('\ncreate/rebuild bodies: seed %d, %d cases' % (SEED, len(cases)))

    time.sleep(0.3)  # earlier tests' lines written out (batches of 50 ms)
    enforce_from = _log_lines(guard['log'])
    report_from = _log_lines(report_guard['log'])
    report_differs = []
    per_op = {}
    for case in cases:
        out = _send_both(env, case, nova_t, guard_t, sid)
        runner.tally.add(out)
        r = harness.send(case, env, report_t)
        kind, detail = harness.compare(case, out.nova, r, ids=(sid, sid))
        if kind != 'agree':
            report_differs.append('%s: %s' % (case.replay_hint(), detail))
        st = per_op.setdefault(case.group, {})
        st[out.kind] = st.get(out.kind, 0) + 1

    # The verdicts, in order: enforce mode's acts, report mode's reports.
    time.sleep(0.5)
    enforced = _exchanges(guard['log'], enforce_from)
    reported = _exchanges(report_guard['log'], report_from)
    enforced = [e for e in enforced if e.get('method') == 'POST']
    reported = [e for e in reported if e.get('method') == 'POST']
    assert len(enforced) == len(cases), (len(enforced), len(cases))
    assert len(reported) == len(cases), (len(reported), len(cases))
    verdicts = {}
    mismatched = []
    for case, e, r in zip(cases, enforced, reported):
        ev = e['verdict']
        key = '%s %s' % (e.get('operation'), ev)
        verdicts[key] = verdicts.get(key, 0) + 1
        want = {'rejected': 'reported'}.get(ev, ev)
        same = (r['verdict'] == want
                and r.get('field') == e.get('field')
                and r.get('rule') == e.get('rule')
                and r.get('operation') == e.get('operation')
                and (ev != 'rejected' or r.get('would_status') == e['status'])
                and (ev != 'forwarded' or r.get('would_rewrite_ipv6')
                     == e.get('ipv6_rewritten')))
        if not same:
            mismatched.append('%s: enforce %s, report %s' % (
                case.id, json.dumps(e), json.dumps(r)))
    print('create/rebuild outcomes by operation: %s' % json.dumps(per_op))
    print('enforce-mode verdicts by operation: %s'
          % json.dumps(verdicts, sort_keys=True))
    print('report mode: %d answers differing from Nova, %d verdicts '
          'differing from enforce mode' % (len(report_differs),
                                           len(mismatched)))
    record('(e) create/rebuild (seed %d)' % SEED, runner, started)
    assert not report_differs, '\n'.join(report_differs[:10])
    assert not mismatched, '\n'.join(mismatched[:10])
