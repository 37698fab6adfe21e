"""What every deploy check script shares: one `ok` or `FAIL` line per check,
the count of failures for its exit status, and a free loopback port."""

import socket


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
