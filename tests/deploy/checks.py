"""What every deploy check script shares: one `ok` or `FAIL` line per check,
the count of failures for its exit status, a free loopback port, the processes
a script starts (and stops), waiting for one to get somewhere, and the dev
Nova started."""

import json
import os
import signal
import socket
import subprocess
import time


class Checks:
    """`part` names the script's checks in its lines (None: the names say
    it themselves)."""

    def __init__(self, part=None):
        self.prefix = '%s: ' % part if part else ''
        self.failures = 0

    def report(self, name, problem=None):
        if problem is None:
            print('ok %s%s' % (self.prefix, name), flush=True)
        else:
            self.failures += 1
            print('FAIL %s%s: %s' % (self.prefix, name, problem), flush=True)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, cond, timeout, proc=None):
    """`cond()`'s first true value within `timeout` seconds (an OSError
    counts as not yet); RuntimeError when the time is up or `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError('%s: process exited with %s' % (what, proc.returncode))
        try:
            v = cond()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError('%s: not within %s s' % (what, timeout))


def start_nova(cmd, work, what, env=None):
    """Starts `cmd` (nova_api.py or a wrapper of it) with its output in
    `work`: (the process, its NOVA_READY object) once it is ready."""
    out = os.path.join(work, 'nova.out')
    nova = subprocess.Popen(cmd, stdout=open(out, 'wb'),
                            stderr=open(os.path.join(work, 'nova.err'), 'wb'),
                            stdin=subprocess.DEVNULL, env=env)

    def ready():
        for line in open(out):
            if line.startswith('NOVA_READY '):
                return json.loads(line[len('NOVA_READY '):])
    try:
        return nova, wait_for(what, ready, 240, nova)
    except BaseException:
        nova.terminate()
        nova.wait(30)
        raise


class Procs(list):
    """The processes a script started, to stop them all at its end."""

    def start(self, args, log, env=None):
        """`args` with stdout and stderr in the file `log`."""
        p = subprocess.Popen(args, stdout=open(log, 'wb'), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
        self.append(p)
        return p

    def stop_all(self, grace=20):
        """SIGTERM to each, SIGKILL to those still there after `grace` s."""
        for p in self:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def recv_all(s):
    """Everything `s` sends until it closes."""
    data = b''
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
