"""What every deploy check script shares: one `ok` or `FAIL` line per check,
the count of failures for its exit status, a free loopback port, and waiting
for a process to get somewhere."""

import socket
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
