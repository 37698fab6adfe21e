"""nova-guard configured for each supported Nova release must answer as that
release's real Nova does (releases.py says how each runs).

Per release, a sample, from the session's seed (replay: NOVA_GUARD_DIFF_SEED
and NOVA_GUARD_DIFF_CASES, with NOVA_GUARD_DIFF_RELEASES to pick releases):
- NOVA_GUARD_DIFF_RELEASE_COUNT (default 450) generated update bodies
  (generator.py), at versions up to the release's maximum;
- NOVA_GUARD_DIFF_RELEASE_CR_COUNT (default 200) create and rebuild bodies
  (test_create_rebuild.py), likewise;
- NOVA_GUARD_DIFF_RELEASE_FIXED (default 300) cases drawn from the fixed
  corpus (corpus.py), sent as they are (versions above the release's maximum
  get its 406, which nova-guard must leave to Nova);
- the characters whose class differs between the Pythons' Unicode versions,
  in names, descriptions, hostnames, addresses and keys
  (releases.unicode_cases).
The stored state of the update pair is checked as in test_differential.py.
The newest release also has the full set there, on Python 3.11.
"""

import dataclasses
import os
import random
import time

import pytest

import corpus
import generator
import harness
import releases
import test_create_rebuild
from conftest import MISSING_SERVER, OTHER_PROJECT, SEED, selected

PAIRS = releases.selected()


def _count(name, default):
    return int(os.environ.get(name, default))


@pytest.fixture(scope='module', params=PAIRS,
                ids=['%s-py%s' % p for p in PAIRS])
def release_env(request, tmp_path_factory):
    release, python = request.param
    max_version, _ = releases.RELEASES[release]
    logs = tmp_path_factory.mktemp('release-%s' % release)
    venv = releases.venv(release)
    nova_proc, ready = releases.start_nova(venv, python,
                                           logs / 'nova-api.log')
    guard_proc = None
    try:
        assert ready['max_microversion'] == max_version, ready
        guard_proc, guard_port = releases.start_guard(
            harness.guard_binary(), ready['port'], release, python,
            logs / 'nova-guard.log')
        # Nova's printable class, and its interpreter's own (its repr()).
        unicode_version, how, own_unicode = ready['unicode']
        project = ready['project_id']
        yield {
            'release': release,
            'python': python,
            'nova_version': ready['nova_version'],
            'unicode': 'printable class of Unicode %s (%s), repr() of %s' % (
                unicode_version, how, own_unicode),
            'project_id': project,
            'tokens': {
                'member': ready['token'],
                'reader': 'reader:%s:reader' % project,
                'other': 'other:%s' % OTHER_PROJECT,
            },
            'missing_server': MISSING_SERVER,
            'servers': ready['servers'],
            'nova_port': ready['port'],
            'guard_port': guard_port,
            'max_microversion': ready['max_microversion'],
            'state_version': ready['max_microversion'],
            'seed': SEED,
            'text_filter': releases.text_filter(own_unicode, unicode_version),
        }
    finally:
        if guard_proc is not None:
            harness.stop(guard_proc)
        harness.stop(nova_proc)


def _fit(case, max_version):
    """The case at the release's maximum if its version is above it."""
    v = case.version
    if v not in (None, 'v2', 'latest') and (
            releases.vnum(v) > releases.vnum(max_version)):
        case = dataclasses.replace(case, version=max_version)
    return case


def _bare(case):
    # nova-facts.md describes the newest release; not checked here.
    return dataclasses.replace(case, expect=None, expect_fields=None)


def test_release_sample(release_env, record):
    env = release_env
    release, maxv = env['release'], env['max_microversion']
    started = time.monotonic()
    n_gen = _count('NOVA_GUARD_DIFF_RELEASE_COUNT', 330)
    n_cr = _count('NOVA_GUARD_DIFF_RELEASE_CR_COUNT', 150)
    n_fixed = _count('NOVA_GUARD_DIFF_RELEASE_FIXED', 220)
    differ = env['text_filter'].differ if env['text_filter'] else ()
    print('\nNova %s (%s) for Python %s: %s; seed %d: %d generated, %d '
          'create/rebuild, %d fixed cases; repr() escapes compared as '
          'characters for %d code points'
          % (env['nova_version'], release, env['python'], env['unicode'],
             SEED, n_gen, n_cr, n_fixed, len(differ)))

    # Update: the pair of servers 0 and 1, their stored state checked.
    a, b = env['servers'][0], env['servers'][1]
    runner = harness.Runner(
        env, harness.Target('nova', '127.0.0.1', env['nova_port'], a),
        harness.Target('guard', '127.0.0.1', env['guard_port'], b))
    fixed = [c for c in corpus.static_cases()
             if not c.id.startswith('pinned-az-')]
    fixed = random.Random(SEED).sample(fixed, min(n_fixed, len(fixed)))
    update = [_bare(c) for c in fixed] + releases.unicode_cases()
    update += [_bare(_fit(c, maxv))
               for c in generator.generated_cases(SEED, n_gen)]
    for case in selected(update):
        runner.run(case)
    runner.finish()

    # Create and rebuild: server 2 on both sides (nothing is changed).
    sid = env['servers'][2]
    nova_t = harness.Target('nova', '127.0.0.1', env['nova_port'], sid)
    guard_t = harness.Target('guard', '127.0.0.1', env['guard_port'], sid)
    filt = env['text_filter'] or (lambda r: r)
    for case in selected(test_create_rebuild.corpus_cases(SEED, n_cr)):
        case = _fit(case, maxv)
        n = filt(harness.send(case, env, nova_t))
        g = filt(harness.send(case, env, guard_t))
        kind, detail = harness.compare(case, n, g, ids=(sid, sid))
        runner.tally.add(harness.Outcome(case, kind, detail, n, g))
    how = 'native' if not env['text_filter'] and 'native' in env['unicode'] \
        else 'stand-in'
    record('(i) %s, Python %s %s (seed %d)'
           % (release, env['python'], how, SEED), runner, started)
