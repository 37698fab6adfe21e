"""(f) fuzz inputs replayed against the real Nova.

The `check` fuzz target (fuzz/fuzz_targets/check.rs) judges a body the way
nova-guard's validator does, but its own oracles only check the validator
against itself. Here every input of its corpus is sent as the update-server
request it stands for, to Nova directly and through nova-guard, and the two
answers compared like every other case:

- byte 0, bit 0: the mode, 0 for `/v2.1`, 1 for legacy `/v2`;
- byte 1 & 0x7f: the microversion 2.N, sent as `OpenStack-API-Version:
  compute 2.N` in both modes (legacy `/v2` ignores it). Versions Nova does
  not serve (2.0, above its maximum) are sent as they are: Nova answers 406,
  and so must nova-guard;
- the rest: the body, byte for byte.

Inputs shorter than two bytes (which the target skips) are skipped.

Every input of the `ipv6` corpus is sent as
`{"server": {"accessIPv6": <the input as a JSON string>}}` at 2.1, so that
the canonical text nova-guard writes is compared with what Nova stores.
Inputs that are not valid UTF-8 (which the target skips too) are skipped.

By default the committed corpora (fuzz/corpus/check, fuzz/corpus/ipv6: the
seeds and what the long fuzz runs found, merged) are
replayed; NOVA_GUARD_DIFF_FUZZ_CORPUS=<dir> replays `<dir>/check` and
`<dir>/ipv6` instead (either may be missing), e.g. a corpus grown by a long
fuzz run.
"""

import json
import os
import time

import harness
from conftest import ROOT, make_runner, selected

SEEDS = os.path.join(ROOT, 'fuzz', 'corpus')


def corpus_dir():
    return os.environ.get('NOVA_GUARD_DIFF_FUZZ_CORPUS') or SEEDS


def _inputs(target):
    d = os.path.join(corpus_dir(), target)
    if not os.path.isdir(d):
        return []
    out = []
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        if os.path.isfile(path):
            with open(path, 'rb') as f:
                out.append((name, f.read()))
    return out


def check_case(name, data):
    """The update request a `check` input stands for, or None."""
    if len(data) < 2:
        return None
    legacy = data[0] & 1 == 1
    minor = data[1] & 0x7f
    header = 'compute 2.%d' % minor
    return harness.Case(
        'fuzz-check-%s' % name, group='f', body=data[2:],
        version='v2' if legacy else '2.%d' % minor,
        # The mode's own header rule applies: on /v2 the header is sent
        # too, and must be ignored by both.
        headers={'OpenStack-API-Version': header},
        note='fuzz check input %s' % name)


def ipv6_case(name, data):
    """The update request setting accessIPv6 to an `ipv6` input, or None."""
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        return None
    body = json.dumps({'server': {'accessIPv6': text}}).encode()
    return harness.Case('fuzz-ipv6-%s' % name, group='f', body=body,
                        version='2.1', note='fuzz ipv6 input %s' % name)


def fuzz_cases():
    """(cases, skipped) for the corpus in use."""
    cases, skipped = [], 0
    for target, make in (('check', check_case), ('ipv6', ipv6_case)):
        for name, data in _inputs(target):
            case = make(name, data)
            if case is None:
                skipped += 1
            else:
                cases.append(case)
    return cases, skipped


def test_fuzz_corpus(env, record):
    started = time.monotonic()
    runner = make_runner(env, pair=0)
    cases, skipped = fuzz_cases()
    print('\nfuzz corpus %s: %d cases, %d inputs skipped (check: under two '
          'bytes; ipv6: not UTF-8)' % (corpus_dir(), len(cases), skipped))
    assert cases or os.environ.get('NOVA_GUARD_DIFF_FUZZ_CORPUS'), \
        'no fuzz seeds under %s' % SEEDS
    statuses = {}
    for case in selected(cases):
        o = runner.run(case)
        key = '%s %d/%d' % (case.id.split('-')[1], o.nova.status,
                            o.guard.status)
        statuses[key] = statuses.get(key, 0) + 1
    runner.finish()
    print('answers (target nova/guard: cases): %s' % ', '.join(
        '%s: %d' % kv for kv in sorted(statuses.items())))
    record('(f) fuzz corpus', runner, started)
