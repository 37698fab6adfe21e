"""Session fixtures: one real Nova, and nova-guard in front of it."""

import json
import os
import random
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import harness  # noqa: E402

NOVA_API = os.path.join(ROOT, 'deploy', 'dev', 'nova_api.py')
# nova-guard matches the Python that runs Nova here: this interpreter (the
# release, 2026.2, is its default). test_releases.py sets its own.
os.environ['NOVA_GUARD_NOVA_PYTHON'] = '%d.%d' % sys.version_info[:2]
MISSING_SERVER = 'f1f2f3f4-0000-4000-8000-00000000dead'
from corpus import OTHER_PROJECT  # noqa: E402
# Nova under cheroot and uWSGI with nova-guards in front (test_wsgi_servers,
# test_forwarding).
from wsgi_servers import wsgi_stack  # noqa: E402,F401

# Everything the session found, for the closing summary.
TOTAL = harness.Tally()
TIMINGS = []


def _seed():
    raw = os.environ.get('NOVA_GUARD_DIFF_SEED')
    if raw:
        return int(raw)
    seed = random.SystemRandom().randrange(1, 2 ** 31)
    # The worker processes (pytest-xdist) start after this and inherit it:
    # one seed for the whole session.
    os.environ['NOVA_GUARD_DIFF_SEED'] = str(seed)
    return seed


SEED = _seed()


# Two lanes of about equal length, each run by its own worker process, test
# after test (run.sh: pytest-xdist), each starting only the Novas its tests
# use: the session's Nova 34 on cheroot, with its nova-guards; and Nova 34
# under each WSGI server, then each release's Nova. run.sh prints each
# test's time.
LANES = {
    'test_create_rebuild.py': 'session-nova',
    'test_differential.py': 'session-nova',
    'test_fuzz_corpus.py': 'session-nova',
    'test_forwarding.py': 'other-novas',
    'test_wsgi_servers.py': 'other-novas',
    'test_releases.py': 'other-novas',
}


def lane(nodeid):
    module = nodeid.split('::', 1)[0]
    if module not in LANES:
        raise pytest.UsageError('%s: no lane in conftest.LANES' % module)
    return LANES[module]


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Each lane to one worker, whole. (pytest-xdist's own `loadgroup`
    does not group under pytest 9.2, which no longer lets it rename tests.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByLane(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return lane(nodeid)

    return ByLane(config, log)


def pytest_sessionfinish(session):
    """In a worker process: hand its tallies to the controller."""
    out = getattr(session.config, 'workeroutput', None)
    if out is not None:
        out['differential'] = json.dumps({'total': TOTAL.to_json(SEED),
                                          'timings': TIMINGS})


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """In the controller: a worker's tallies join the session's."""
    raw = getattr(node, 'workeroutput', {}).get('differential')
    if raw:
        got = json.loads(raw)
        TOTAL.merge(harness.Tally.from_json(got['total']))
        TIMINGS.extend(tuple(t) for t in got['timings'])


def pytest_report_header(config):
    return ['differential seed: NOVA_GUARD_DIFF_SEED=%d' % SEED]


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    if TOTAL.cases == 0 and not TOTAL.disagreements:
        return
    tr.section('nova-guard vs Nova')
    for name, n, secs, accepted in TIMINGS:
        tr.write_line('%-28s %6d cases (%d accepted by Nova) %7.1f s'
                      % (name, n, accepted, secs))
    tr.write_line('state checks (GET of both servers): %d, resets: %d'
                  % (TOTAL.state_checks, TOTAL.resets))
    if TOTAL.facts:
        tr.write_line('Nova 34 answers that differ from nova-facts.md '
                      '(informational, %d):' % len(TOTAL.facts))
        for f in TOTAL.facts[:200]:
            tr.write_line('  ' + f)
    for d in TOTAL.disagreements[:500]:
        tr.write_line(d.report(SEED))
    tr.write_line('seed: NOVA_GUARD_DIFF_SEED=%d' % SEED)
    tr.write_line(TOTAL.summary())


@pytest.fixture(scope='session')
def nova(tmp_path_factory):
    import importlib.util
    if importlib.util.find_spec('nova') is None:
        pytest.fail('run with the venv of deploy/dev/setup-venv.sh '
                    '(Nova is not importable by %s)' % sys.executable)
    log_path = tmp_path_factory.mktemp('nova') / 'nova-api.log'
    try:
        proc, ready = harness.start_nova(
            # INFO, as nova-api logs in production: a line per request, with
            # its request ids (test_nova_logs_the_request_id_nova_guard_logged).
            [sys.executable, NOVA_API, '--port', '0', '--servers', '4',
             '--log-level', 'INFO'], log_path)
    except RuntimeError as e:
        pytest.fail(str(e))
    yield ready
    harness.stop(proc)


@pytest.fixture(scope='session')
def guard(nova, tmp_path_factory):
    binary = harness.guard_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail('no nova-guard binary at %s (build it: cargo build '
                    '--release --locked, or set NOVA_GUARD_BIN)' % binary)
    log_path = tmp_path_factory.mktemp('guard') / 'nova-guard.log'
    try:
        proc, port = harness.start_guard(binary, nova['port'], log_path)
    except RuntimeError as e:
        pytest.fail(str(e))
    yield {'port': port, 'log': str(log_path), 'binary': binary}
    harness.stop(proc)


@pytest.fixture(scope='session')
def env(nova, guard):
    project = nova['project_id']
    return {
        'project_id': project,
        'tokens': {
            'member': nova['token'],
            'reader': 'reader:%s:reader' % project,
            'other': 'other:%s' % OTHER_PROJECT,
        },
        'missing_server': MISSING_SERVER,
        'servers': nova['servers'],
        'nova_port': nova['port'],
        'guard_port': guard['port'],
        'max_microversion': nova['max_microversion'],
        'seed': SEED,
    }


def make_runner(env, pair=0, state_every=20):
    a, b = env['servers'][2 * pair], env['servers'][2 * pair + 1]
    nova_t = harness.Target('nova', '127.0.0.1', env['nova_port'], a)
    guard_t = harness.Target('guard', '127.0.0.1', env['guard_port'], b)
    return harness.Runner(env, nova_t, guard_t, state_every=state_every)


def selected(cases):
    """NOVA_GUARD_DIFF_CASES=<regex> runs only the cases whose id matches."""
    import re
    pat = os.environ.get('NOVA_GUARD_DIFF_CASES')
    if not pat:
        return cases
    rx = re.compile(pat)
    return [c for c in cases if rx.search(c.id)]


@pytest.fixture
def record():
    """Adds a runner's results to the session total; fails on disagreement."""
    def _record(name, runner, started):
        secs = time.monotonic() - started
        TIMINGS.append((name, runner.tally.cases, secs,
                        runner.tally.accepted))
        TOTAL.merge(runner.tally)
        t = runner.tally
        print('\n%s: %s' % (name, t.summary()))
        if t.disagreements:
            pytest.fail('%d disagreement(s) with Nova (seed %d):\n%s' % (
                len(t.disagreements), SEED,
                '\n'.join(d.report(SEED) for d in t.disagreements[:5])),
                pytrace=False)
    return _record
