"""Nova under each WSGI server, with nova-guard in front: the fixtures of
test_wsgi_servers.py and test_forwarding.py, and the launchers that
wsgi_facts.py uses too.

``wsgi_stack`` is one real Nova (``deploy/dev/nova_api.py --wsgi KIND
--proxy-headers``: ``[oslo_middleware] enable_proxy_headers_parsing = True``,
as behind any proxy) for KIND in ``cheroot`` and ``uwsgi``, and three
nova-guards in front of it: one that trusts no peer (the default) and two
with ``NOVA_GUARD_TRUSTED_PROXIES=127.0.0.0/8``, which trust the tests, one on
127.0.0.1 and one on ``[::]`` (where the tests' IPv4 connections arrive from
IPv4-mapped addresses, ``::ffff:127.0.0.1``).
Session-scoped and parametrised: one server's stack at a time.
"""

import os
import sys
import time

import pytest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NOVA_API = os.path.join(ROOT, 'deploy', 'dev', 'nova_api.py')
KINDS = ('cheroot', 'uwsgi')
TRUSTED = '127.0.0.0/8'
# Every nova-guard here refuses this network for accessIPv4 (a rule of
# nova-guard's own, for test_wsgi_servers.test_walk_around).
DENIED = '198.51.100.0/24'
DENIED_IPV4 = '198.51.100.7'


def launch_nova(kind, log_path, servers=4, timeout=240):
    """-> (process, the NOVA_READY object). Raises RuntimeError with the
    end of Nova's log when it does not come up."""
    return harness.start_nova(
        [sys.executable, NOVA_API, '--port', '0', '--servers', str(servers),
         '--wsgi', kind, '--proxy-headers'], log_path, 'Nova (%s)' % kind,
        timeout)


def launch_guard(nova_port, log_path, extra_env=None, host='127.0.0.1'):
    """-> (process, port) of a nova-guard in front of Nova, listening on
    ``host`` (``[::]``: clients on 127.0.0.1 are IPv4-mapped peers)."""
    binary = harness.guard_binary()
    if not os.access(binary, os.X_OK):
        raise RuntimeError('no nova-guard binary at %s' % binary)
    return harness.start_guard(
        binary, nova_port, log_path,
        {'NOVA_GUARD_ACCESS_IPV4_DENY': DENIED, **(extra_env or {})},
        host=host, answered=False)


def stack_env(ready, guard_port, kind):
    """The ``env`` dict harness.build_request and the runner use."""
    from corpus import OTHER_PROJECT
    project = ready['project_id']
    return {
        'project_id': project,
        'tokens': {
            'member': ready['token'],
            'reader': 'reader:%s:reader' % project,
            'other': 'other:%s' % OTHER_PROJECT,
        },
        'missing_server': 'f1f2f3f4-0000-4000-8000-00000000dead',
        'servers': ready['servers'],
        'nova_port': ready['port'],
        'guard_port': guard_port,
        'max_microversion': ready['max_microversion'],
        'wsgi': kind,
    }


@pytest.fixture(scope='session', params=KINDS)
def wsgi_stack(request, tmp_path_factory):
    kind = request.param
    d = tmp_path_factory.mktemp('wsgi-%s' % kind)
    started = time.monotonic()
    procs = []
    try:
        proc, ready = launch_nova(kind, d / 'nova-api.log')
        procs.append(proc)
        guard, guard_port = launch_guard(ready['port'], d / 'guard.log')
        procs.append(guard)
        trusted, trusted_port = launch_guard(
            ready['port'], d / 'guard-trusted.log',
            {'NOVA_GUARD_TRUSTED_PROXIES': TRUSTED})
        procs.append(trusted)
        mapped, mapped_port = launch_guard(
            ready['port'], d / 'guard-trusted-mapped.log',
            {'NOVA_GUARD_TRUSTED_PROXIES': TRUSTED}, host='[::]')
        procs.append(mapped)
    except RuntimeError as e:
        for p in reversed(procs):
            harness.stop(p)
        pytest.fail(str(e), pytrace=False)
    print('\n%s: Nova and three nova-guards up in %.1f s'
          % (kind, time.monotonic() - started))
    yield {'kind': kind, 'nova': ready, 'guard_port': guard_port,
           'trusted_port': trusted_port, 'mapped_port': mapped_port,
           'env': stack_env(ready, guard_port, kind),
           'guard_log': str(d / 'guard.log')}
    for p in reversed(procs):
        harness.stop(p)


def runner(stack, pair=0, guard_port=None):
    env = stack['env']
    a, b = env['servers'][2 * pair], env['servers'][2 * pair + 1]
    nova_t = harness.Target('nova', '127.0.0.1', env['nova_port'], a)
    guard_t = harness.Target('guard', '127.0.0.1',
                             guard_port or env['guard_port'], b)
    return harness.Runner(env, nova_t, guard_t)
