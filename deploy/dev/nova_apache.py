# Licensed under the Apache License, Version 2.0.
"""The development Nova API as devstack serves it (``nova_api.py --wsgi
apache``): uWSGI on a ``socket`` (the uwsgi protocol), behind Apache's
``mod_proxy_uwsgi`` under the path prefix ``/compute``.

devstack writes, for nova-api, a uWSGI ``socket`` and the Apache line::

    ProxyPass "/compute" "unix:/var/run/uwsgi/nova-api-wsgi.socket|uwsgi://uwsgi-uds-nova-api-wsgi" retry=0 acquire=1

Here the socket is a TCP one on 127.0.0.1 (the same protocol and the same
``ProxyPass`` otherwise), and Apache runs in the foreground from a
configuration of its own (Debian's ``apache2`` and
``libapache2-mod-proxy-uwsgi``), so that nothing of the machine's own Apache
is touched. Apache reads the request (its path normalised, decoded and
matched against ``/compute``) and hands uWSGI the rest as ``PATH_INFO``.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import nova_uwsgi

PREFIX = '/compute'
MODULES = '/usr/lib/apache2/modules'
PACKAGES = 'apache2 and libapache2-mod-proxy-uwsgi'


def apache_binary():
    for path in (shutil.which('apache2'), '/usr/sbin/apache2'):
        if path and os.access(path, os.X_OK):
            return path
    return None


def apache_config(root, port, uwsgi_port):
    # As root Apache must switch to a user of its own; as anyone else it
    # stays who it is and takes no User/Group.
    user = 'User www-data\nGroup www-data\n' if os.geteuid() == 0 else ''
    return f"""ServerRoot {root}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
ErrorLog /dev/stderr
LogLevel warn
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_uwsgi_module {MODULES}/mod_proxy_uwsgi.so
{user}ProxyPass "{PREFIX}" "uwsgi://127.0.0.1:{uwsgi_port}" retry=0 acquire=1
"""


class ApacheServer:
    """Apache on 127.0.0.1:``port`` (0: a free port) in front of uWSGI."""

    def __init__(self, port, threads, proxy_headers, log_level):
        binary = apache_binary()
        missing = [m for m in ('mod_proxy.so', 'mod_proxy_uwsgi.so')
                   if not os.path.exists(os.path.join(MODULES, m))]
        if binary is None or missing:
            raise RuntimeError('--wsgi apache needs the Debian packages %s'
                               % PACKAGES)
        self.uwsgi = nova_uwsgi.UwsgiServer(0, threads, proxy_headers,
                                            log_level, protocol='uwsgi')
        self.proc = self.root = None
        try:
            if port == 0:
                with socket.socket() as s:
                    s.bind(('127.0.0.1', 0))
                    port = s.getsockname()[1]
            self.port = port
            # Read by Apache's parent process (root), not by its children.
            self.root = tempfile.mkdtemp(prefix='apache-')
            conf = os.path.join(self.root, 'httpd.conf')
            with open(conf, 'w') as f:
                f.write(apache_config(self.root, port, self.uwsgi.port))
            self.proc = subprocess.Popen(
                [binary, '-f', conf, '-DFOREGROUND'],
                stdin=subprocess.DEVNULL, stdout=sys.stderr)
        except BaseException:
            self.stop()
            raise

    def is_alive(self):
        return self.exited() is None

    def wait_until_serving(self, stop, timeout=240):
        """Until GET /compute/ answers 200 through Apache."""
        nova_uwsgi.wait_until_answering(self.port, PREFIX + '/', self.exited,
                                        stop, timeout)

    def exited(self):
        """Why it cannot answer any more, or None while it runs."""
        if self.proc.poll() is not None:
            return 'Apache exited while starting (%s)' % self.proc.returncode
        return self.uwsgi.exited()

    def join(self, timeout=None):
        self.uwsgi.join(timeout)

    def stop(self, grace=20):
        if self.proc is not None:
            # SIGTERM: Apache stops at once, its children with it.
            nova_uwsgi.terminate(self.proc, grace)
        self.uwsgi.stop(grace)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
