# Licensed under the Apache License, Version 2.0.
"""The development Nova API served by uWSGI (``nova_api.py --wsgi uwsgi``).

Two roles in one module:

- in ``nova_api.py`` (no ``uwsgi`` module importable), ``UwsgiServer`` starts
  the venv's ``uwsgi`` binary on a listening socket bound here and handed over
  as a file descriptor, and stops it;
- inside uWSGI (``module = nova_uwsgi:application``), importing the module
  builds the same in-process Nova environment as ``nova_api.py`` does for
  cheroot (``NovaEnvironment``) and exposes the unmodified ``osapi_compute``
  paste pipeline as ``application``.

The uWSGI settings are those the OpenStack deployment tools write for
nova-api (OpenStack-Ansible's ``uwsgi.ini.j2``, openstack-helm's
``nova_api_uwsgi``): ``http-socket`` (uWSGI parses HTTP itself; devstack's
``socket`` + Apache ``mod_proxy_uwsgi`` puts Apache's parser in front
instead: ``nova_apache.py``), ``buffer-size = 65535``, ``add-header =
Connection: close`` (every answer closes its connection: ``http-socket`` in
uWSGI 2.0 has no keep-alive), ``master``, ``lazy-apps``, ``enable-threads``, ``die-on-term``,
``need-app``, ``thunder-lock``. What differs, because the whole Nova runs in
one process here: one worker (``processes = 1``) with ``threads`` threads,
where the deployment tools run several single-threaded workers.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import uwsgi  # noqa: F401  (only importable inside uWSGI)
except ImportError:
    uwsgi = None


def uwsgi_options(fd, threads, protocol='http'):
    return [
        '--strict',
        # http: uWSGI parses HTTP itself; uwsgi: the uwsgi protocol, for a
        # web server in front (nova_apache.py).
        '--http-socket' if protocol == 'http' else '--socket', 'fd://%d' % fd,
        '--module', 'nova_uwsgi:application',
        '--pythonpath', HERE,
        '--home', sys.prefix,
        '--master',
        '--processes', '1',
        '--threads', str(threads),
        '--enable-threads',
        '--lazy-apps',
        '--need-app',
        '--die-on-term',
        '--exit-on-reload',
        '--thunder-lock',
        '--buffer-size', '65535',
        '--add-header', 'Connection: close',
        '--disable-logging',
    ]


def terminate(proc, grace):
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_until_answering(port, path, exited, stop, timeout):
    """Until GET ``path`` on 127.0.0.1:``port`` answers 200, ``stop`` is
    set, or ``exited()`` says why it never will (then RuntimeError)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        why = exited()
        if why:
            raise RuntimeError(why)
        try:
            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
            conn.request('GET', path)
            if conn.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError('Nova did not answer in %d s' % timeout)
        time.sleep(0.3)


class UwsgiServer:
    """uWSGI in a child process, on 127.0.0.1:``port`` (0: a free port)."""

    def __init__(self, port, threads, proxy_headers, log_level,
                 protocol='http'):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        binary = os.path.join(os.path.dirname(sys.executable), 'uwsgi')
        if not os.access(binary, os.X_OK):
            raise RuntimeError('no uwsgi at %s (deploy/dev/setup-venv.sh '
                               'installs it)' % binary)
        env = dict(os.environ,
                   NOVA_DEV_PROXY_HEADERS='1' if proxy_headers else '',
                   NOVA_DEV_LOG_LEVEL=log_level)
        fd = self.sock.fileno()
        # uWSGI's own messages go to stderr, like Nova's logs; its stdout is
        # not ours (NOVA_READY is written by nova_api.py alone).
        self.proc = subprocess.Popen(
            [binary] + uwsgi_options(fd, threads, protocol), pass_fds=(fd,),
            env=env,
            stdin=subprocess.DEVNULL, stdout=sys.stderr, cwd=HERE)

    def is_alive(self):
        return self.proc.poll() is None

    def wait_until_serving(self, stop, timeout=240):
        """Until GET / answers 200: uWSGI accepts connections before its
        worker has loaded Nova."""
        wait_until_answering(self.port, '/', self.exited, stop, timeout)

    def exited(self):
        """Why it cannot answer any more, or None while it runs."""
        return None if self.is_alive() else 'uWSGI exited while starting'

    def join(self, timeout=None):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, grace=20):
        # die-on-term: the master stops the worker and exits.
        terminate(self.proc, grace)
        self.sock.close()


def _build_application():
    import nova_api
    filters, show = warnings.filters[:], warnings.showwarning
    env = nova_api.NovaEnvironment()
    env.start(proxy_headers=os.environ.get('NOVA_DEV_PROXY_HEADERS') == '1')
    warnings.filters[:] = filters
    warnings.showwarning = show
    nova_api.configure_logging(os.environ.get('NOVA_DEV_LOG_LEVEL',
                                              'WARNING'))
    uwsgi.atexit = env.stop
    return env.load_app()


if uwsgi is not None:
    application = _build_application()
