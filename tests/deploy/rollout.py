"""A rollout of the sidecar pod, as the kubelet deletes one, without Kubernetes:
the real Nova API of deploy/dev/ (in the place of uWSGI on 127.0.0.1:8773),
nova-guard in front of it with the sidecar's settings, keep-alive clients
loading it through nova-guard; then both containers' preStop hooks run at
once, each container gets its SIGTERM when its own hook is done, and the
grace period bounds the whole.

    rollout.py ROOT NOVA_GUARD_BIN DEV_DIR

Run with the dev venv's Python. Twice:

- with deploy/kubernetes/sidecar/nova-api-osapi-patch.yaml's hooks (nova-guard:
  sleep; nova-osapi: the patch's script, run as it is, waiting for nova-guard
  to be gone): no request sent while the pod is still an endpoint may get a
  502 or a connection error, and nova-guard must exit 0 before Nova is signalled;
- with the chart's own nova-osapi hook (tests/deploy/fixtures/nova-api-osapi.yaml:
  /tmp/nova-api.sh stop, that is `kill -TERM 1`, uWSGI at once): the same load
  must see 502s, or the test would not show anything.

The pod is an endpoint until PROPAGATION seconds after the deletion (the
endpoints controller and the proxies dropping it), shorter than nova-guard's
preStop sleep, as the sleep is meant to be. Prints "ok NAME" / "FAIL NAME:
why" lines. Everything listens on 127.0.0.1.
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

import yaml
from checks import Checks, free_port

ROOT, BIN, DEV_DIR = sys.argv[1:4]
FIXTURE = os.path.join(ROOT, 'tests', 'deploy', 'fixtures', 'nova-api-osapi.yaml')
PATCH = os.path.join(ROOT, 'deploy', 'kubernetes', 'sidecar', 'nova-api-osapi-patch.yaml')
CLIENTS = 6

CHECKS = Checks('rollout')
report = CHECKS.report


def container(deployment, name):
    for c in deployment['spec']['template']['spec']['containers']:
        if c['name'] == name:
            return c
    raise AssertionError('no container %s' % name)


def seconds(duration):
    units = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600}
    for unit in ('ms', 's', 'm', 'h'):
        if duration.endswith(unit):
            return float(duration[:-len(unit)]) * units[unit]
    raise ValueError(duration)


class Nova:
    """deploy/dev/nova_api.py, up and serving."""

    def __init__(self, log):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(DEV_DIR, 'nova_api.py'), '--port', '0',
             '--servers', '1'],
            stdout=subprocess.PIPE, stderr=open(log, 'wb'), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        self.ready = None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith(b'NOVA_READY '):
                self.ready = json.loads(line[len('NOVA_READY '):])
                break
        if self.ready is None:
            self.proc.kill()
            raise RuntimeError('Nova did not start (see %s)' % log)


class Guard:
    """nova-guard with the sidecar container's environment, on local ports."""

    def __init__(self, env, upstream, log):
        self.port, self.admin = free_port(), free_port()
        env = dict(env, NOVA_GUARD_LISTEN='127.0.0.1:%d' % self.port,
                   NOVA_GUARD_ADMIN_LISTEN='127.0.0.1:%d' % self.admin,
                   NOVA_GUARD_UPSTREAM=upstream, NOVA_GUARD_LOG_FORMAT='json')
        env.pop('NOVA_GUARD_TRUSTED_PROXIES', None)
        self.proc = subprocess.Popen([BIN], env=env, stdout=open(log, 'wb'),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection('127.0.0.1', self.admin, timeout=2)
                c.request('GET', '/readyz')
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError('nova-guard did not become ready (see %s)' % log)


class Load:
    """Keep-alive clients listing servers through nova-guard while the pod is
    an endpoint (until `stop_sending`); each result is (sent_at, outcome)."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.results = []
        self.lock = threading.Lock()
        self.stop_sending = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True)
                        for _ in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def client(self):
        conn = None
        while not self.stop_sending.is_set():
            sent = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
                conn.request('GET', '/v2.1/servers', headers={'X-Auth-Token': self.token})
                r = conn.getresponse()
                r.read()
                outcome = r.status
                if r.getheader('connection', '').lower() == 'close':
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                outcome = type(e).__name__
                conn = None
            with self.lock:
                self.results.append((sent, outcome))
        if conn is not None:
            conn.close()

    def finish(self):
        self.stop_sending.set()
        for t in self.threads:
            t.join(40)


def rollout(name, osapi_hook, guard_env, guard_sleep, grace, propagation, work):
    """One pod deletion. `osapi_hook(nova, guard)` runs nova-osapi's preStop
    and returns when it is done. Returns what the checks need."""
    nova = Nova(os.path.join(work, '%s-nova.log' % name))
    guard = Guard(guard_env, 'http://127.0.0.1:%d' % nova.ready['port'],
                  os.path.join(work, '%s-guard.log' % name))
    load = Load(guard.port, nova.ready['token'])
    time.sleep(2)  # steady load before the deletion
    t0 = time.monotonic()
    times = {}

    def guard_container():
        time.sleep(guard_sleep)               # its preStop: sleep
        times['guard_sigterm'] = time.monotonic()
        guard.proc.send_signal(signal.SIGTERM)
        guard.proc.wait()
        times['guard_exit'] = time.monotonic()

    def osapi_container():
        osapi_hook(nova, guard)
        times['osapi_sigterm'] = time.monotonic()
        if nova.proc.poll() is None:
            nova.proc.send_signal(signal.SIGTERM)
        nova.proc.wait()

    threads = [threading.Thread(target=guard_container, daemon=True),
               threading.Thread(target=osapi_container, daemon=True)]
    for t in threads:
        t.start()
    # The endpoint is dropped PROPAGATION s after the deletion: no new
    # requests from then on (those in flight finish).
    time.sleep(propagation)
    load.finish()
    for t in threads:
        t.join(max(0.1, t0 + grace - time.monotonic()))
    killed = []
    for p, what in ((guard.proc, 'nova-guard'), (nova.proc, 'nova-api')):
        if p.poll() is None:  # the kubelet's SIGKILL at the end of the grace period
            p.kill()
            p.wait()
            killed.append(what)
    ready = [(s, o) for s, o in load.results if s < t0 + propagation]
    bad = [(round(s - t0, 2), o) for s, o in ready if o != 200]
    return {'t0': t0, 'times': times, 'ready': ready, 'bad': bad, 'killed': killed,
            'guard_rc': guard.proc.returncode, 'during': [r for r in ready if r[0] >= t0]}


def main():
    work = os.environ.get('ROLLOUT_WORK') or __import__('tempfile').mkdtemp(prefix='rollout-')
    fixture = yaml.safe_load(open(FIXTURE))
    patch = yaml.safe_load(open(PATCH))
    g = container(patch, 'nova-guard')
    guard_env = {e['name']: e['value'] for e in g['env']}
    guard_sleep = g['lifecycle']['preStop']['sleep']['seconds']
    grace = patch['spec']['template']['spec']['terminationGracePeriodSeconds']
    # The pod leaves the endpoints a little before nova-guard's sleep ends.
    propagation = max(1.0, guard_sleep - 1.0)
    new_hook = container(patch, 'nova-osapi')['lifecycle']['preStop']['exec']['command']
    old_hook = container(fixture, 'nova-osapi')['lifecycle']['preStop']['exec']['command']
    admin_port = guard_env['NOVA_GUARD_ADMIN_LISTEN'].rsplit(':', 1)[1]
    report('the patch\'s nova-osapi hook waits on nova-guard\'s admin port %s' % admin_port,
           None if new_hook[3] == '127.0.0.1:%s' % admin_port else new_hook[3:])

    def patched_hook(nova, guard):
        # The patch's command as the kubelet runs it in nova-osapi, pointed
        # at this nova-guard's admin port.
        argv = list(new_hook)
        argv[0] = sys.executable
        argv[3] = '127.0.0.1:%d' % guard.admin
        subprocess.run(argv, timeout=grace)

    def chart_hook(nova, guard):
        # /tmp/nova-api.sh stop: `kill -TERM 1`, PID 1 being uWSGI.
        assert old_hook == ['/tmp/nova-api.sh', 'stop'], old_hook
        nova.proc.send_signal(signal.SIGTERM)

    started = time.monotonic()
    r = rollout('patched', patched_hook, guard_env, guard_sleep, grace, propagation, work)
    report('patched hooks: %d requests while the pod was an endpoint, %d during the '
           'deletion, none failed' % (len(r['ready']), len(r['during'])),
           None if r['ready'] and r['during'] and not r['bad']
           else 'failures (seconds after the deletion, outcome): %s' % r['bad'][:10])
    t = r['times']
    report('patched hooks: nova-guard exited (0) before nova-api was signalled',
           None if r['guard_rc'] == 0 and 'guard_exit' in t and 'osapi_sigterm' in t
           and t['guard_exit'] <= t['osapi_sigterm'] else (r['guard_rc'], t))
    report('patched hooks: the deletion ended within terminationGracePeriodSeconds %d' % grace,
           None if not r['killed'] else 'killed at the end of the grace period: %s' % r['killed'])

    r = rollout('chart', chart_hook, guard_env, guard_sleep, grace, propagation, work)
    failed = [o for _, o in r['bad']]
    report('the chart\'s own hook (uWSGI stopped at once): %d of %d requests while the pod '
           'was an endpoint failed (%s)' % (len(failed), len(r['ready']),
                                            ', '.join(sorted({str(o) for o in failed}))),
           None if any(o == 502 for o in failed) else 'no 502: the test shows nothing')
    print('note rollout: %.0f s' % (time.monotonic() - started), flush=True)
    return 1 if CHECKS.failures else 0


if __name__ == '__main__':
    sys.exit(main())
