#!/usr/bin/env python3
# Licensed under the Apache License, Version 2.0.
"""Run the real OpenStack Nova compute API in one process, on 127.0.0.1.

Nova's own functional-test base class brings up everything the API needs
(sqlite databases, fake messaging, in-process Placement, Neutron/Glance/Cinder
fixtures, real conductor/scheduler/compute services on the fake virt driver);
this script then serves the unmodified ``osapi_compute`` paste pipeline from
the ``etc/nova/api-paste.ini`` shipped with Nova, with cheroot or, with
``--wsgi uwsgi``, with uWSGI (``nova_uwsgi.py``, configured as OpenStack's
deployment tools configure it for nova-api) or, with ``--wsgi apache``, with
uWSGI behind Apache's ``mod_proxy_uwsgi`` under ``/compute``, as devstack
serves it (``nova_apache.py``).

The test-only settings are undone so that the API behaves as in production:
``[api] response_validation = warn``, ``[oslo_policy] enforce_new_defaults =
True`` and the warning filters of Nova's WarningsFixture.

keystonemiddleware's ``auth_token`` filter stays in the pipeline; only its
token lookup is replaced (as keystonemiddleware.fixture.AuthTokenFixture
does): a token ``user:project[:role,role]`` is a valid Keystone v3 token for
that user and project with those roles (default ``member,reader``).

On start-up it boots ``--servers`` servers to ACTIVE and prints one line on
stdout::

    NOVA_READY {"port": ..., "project_id": ..., "token": ..., "servers": [...],
                "max_microversion": "2.104", ...}

then serves until SIGTERM or SIGINT, and cleans up after itself.
"""

import argparse
import datetime
import http.client
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings


def _nova_major():
    # Read without importing nova: importing it applies eventlet patching.
    from importlib import metadata
    try:
        return int(metadata.version('nova').split('.')[0])
    except (metadata.PackageNotFoundError, ValueError):
        return 0


# Native threading, as nova/wsgi/osapi_compute.py runs the API in production.
# Nova's functional-test fixtures support it from Nova 34 (2026.2) on; older
# releases run their test environment, and this API, under eventlet.
if _nova_major() >= 34:
    os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', 'true')

DEFAULT_PROJECT_ID = '6f70656e737461636b20342065766572'
# No ',' or white space in the user or project: a token folded by a WSGI
# server from two header lines ('u:p, v:q') is refused, as Keystone does.
TOKEN_RE = re.compile(r'^([^:,\s]+):([^:,\s]+)(?::([^:\s]*))?$')


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--port', type=int, default=0,
                   help='TCP port on 127.0.0.1 (0 = pick a free one)')
    p.add_argument('--servers', type=int, default=3,
                   help='servers to boot to ACTIVE before serving (default 3)')
    p.add_argument('--project-id', default=DEFAULT_PROJECT_ID,
                   help='project of the servers (lowercase hex)')
    p.add_argument('--threads', type=int, default=16,
                   help='worker threads of the WSGI server')
    p.add_argument('--wsgi', choices=('cheroot', 'uwsgi', 'apache'),
                   default='cheroot',
                   help='WSGI server (default cheroot; apache: uWSGI behind '
                   'Apache under /compute, as devstack serves it)')
    p.add_argument('--proxy-headers', action='store_true',
                   help='[oslo_middleware] enable_proxy_headers_parsing = '
                   'True: Nova builds its links from Forwarded / '
                   'X-Forwarded-* headers')
    p.add_argument('--python', metavar='X.Y',
                   help='build Nova\'s printable class from the Unicode '
                   'database of this Python (3.10 to 3.13) instead of the '
                   'running one\'s (python_stand_in.py says what that covers)')
    p.add_argument('--log-level', default='WARNING',
                   help='log level of Nova\'s own logs, on stderr')
    args = p.parse_args(argv)
    if not re.fullmatch(r'[0-9a-f-]+', args.project_id):
        p.error('--project-id must be lowercase hex (Nova routes only that)')
    if args.servers < 0 or args.servers > 200:
        p.error('--servers must be between 0 and 200')
    return args


def log(msg):
    # Never fails: stderr may be a pipe whose reader has gone (Ctrl-C).
    try:
        print('nova_api: %s' % msg, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()

    # Everything that writes temporary files does it below this directory,
    # which is removed on exit whatever happens.
    tmp_root = tempfile.mkdtemp(prefix='nova-api-')
    os.environ['TMPDIR'] = tmp_root
    tempfile.tempdir = tmp_root

    warning_filters = warnings.filters[:]
    showwarning = warnings.showwarning

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    env = None
    server = None
    serve_thread = None
    rc = 0
    try:
        log('starting Nova services (this takes a few seconds)')
        unicode_seen = None
        own_unicode = unicodedata_version()
        if args.python:
            if args.wsgi != 'cheroot':
                raise RuntimeError('--python stands in for the Unicode '
                                   'database in this process: cheroot only')
            import python_stand_in
            unicode_seen = python_stand_in.stand_in(args.python)
        prefix = ''
        if args.wsgi in ('uwsgi', 'apache'):
            # Nova's environment is built inside uWSGI's worker.
            if args.wsgi == 'apache':
                import nova_apache
                server = serve_thread = nova_apache.ApacheServer(
                    args.port, args.threads, args.proxy_headers,
                    args.log_level)
                prefix = nova_apache.PREFIX
            else:
                import nova_uwsgi
                server = serve_thread = nova_uwsgi.UwsgiServer(
                    args.port, args.threads, args.proxy_headers,
                    args.log_level)
            port = server.port
            server.wait_until_serving(stop)
        else:
            env = NovaEnvironment()
            if args.python:
                python_stand_in.check()
            env.start(proxy_headers=args.proxy_headers)
            # Undo the test-only warning filters (WarningsFixture and friends).
            warnings.filters[:] = warning_filters
            warnings.showwarning = showwarning
            configure_logging(args.log_level)

            app = drain_chunked_body(env.load_app())
            from cheroot import wsgi as cheroot_wsgi
            server = cheroot_wsgi.Server(
                ('127.0.0.1', args.port), app, numthreads=args.threads,
                server_name='127.0.0.1', timeout=60)
            if _eventlet_patched():
                # A green select() does not see a keep-alive connection
                # handed back during it, so it would wait out the whole
                # interval (0.5 s).
                server.expiration_interval = 0.01
            server.prepare()
            port = server.bind_addr[1]
            serve_thread = threading.Thread(
                target=server.serve, name='cheroot', daemon=True)
            serve_thread.start()

        token = '%s:%s' % ('demo', args.project_id)
        servers = boot_servers(port, prefix, token, args.project_id,
                               args.servers, stop)
        if stop.is_set():
            return 0
        from nova.api.openstack import api_version_request as avr
        ready = {
            'port': port,
            'endpoint': 'http://127.0.0.1:%d%s' % (port, prefix),
            # The path Nova is served under (--wsgi apache: /compute).
            'prefix': prefix,
            'project_id': args.project_id,
            'token': token,
            'admin_token': 'admin:%s:admin,member,reader' % args.project_id,
            'reader_token': 'reader:%s:reader' % args.project_id,
            'servers': servers,
            'max_microversion': avr._MAX_API_VERSION,
            'pid': os.getpid(),
            'wsgi': args.wsgi,
            'proxy_headers': args.proxy_headers,
            'startup_seconds': round(time.monotonic() - started, 1),
            'nova_version': _nova_version(),
            # Nova's printable class: (Unicode version, how), and the
            # interpreter's own version (its repr()).
            'unicode': list(unicode_seen or (own_unicode, 'native'))
            + [own_unicode],
        }
        print('NOVA_READY ' + json.dumps(ready, sort_keys=True), flush=True)
        # From here on, nothing more is written to stdout.
        # Bounded only by the signal; the wait has a timeout so that signals
        # are handled promptly.
        while not stop.wait(0.5):
            if not serve_thread.is_alive():
                log('the HTTP server stopped unexpectedly')
                rc = 1
                break
    except Exception:
        log('start-up failed:')
        traceback.print_exc(file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            log('shutting down')
            if server is not None:
                try:
                    server.stop()
                except Exception:
                    pass
            if serve_thread is not None:
                serve_thread.join(10)
            if env is not None:
                env.stop()
        finally:
            shutil.rmtree(tmp_root, ignore_errors=True)
            log('stopped')
    return rc


def drain_chunked_body(app):
    """Read what Nova left unread of a chunked request body.

    When Nova answers before reading the body (406 for a version above its
    maximum, 415), cheroot reads the rest of a Content-Length body before the
    next request on the connection, but leaves a chunked one there, to be
    read as the next request (a proxy's pooled connection then gets cheroot's
    "Malformed Request-Line").
    """
    def wrapped(environ, start_response):
        result = app(environ, start_response)
        try:
            yield from result
        finally:
            if hasattr(result, 'close'):
                result.close()
            if environ.get('HTTP_TRANSFER_ENCODING', '').lower() == 'chunked':
                try:
                    while environ['wsgi.input'].read(65536):
                        pass
                except (OSError, ValueError):
                    pass
    return wrapped


def _eventlet_patched():
    try:
        from eventlet import patcher
    except ImportError:
        return False
    return patcher.is_monkey_patched('socket')


def _nova_version():
    from importlib import metadata
    return metadata.version('nova')


def unicodedata_version():
    import unicodedata
    return unicodedata.unidata_version


def configure_logging(level):
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    # oslo.log's formatter, as nova-api's own logs have it: lines logged
    # while serving a request carry its ids, `[global_request_id
    # request_id user_identity]` (the global one is what a proxy in front
    # sent as X-OpenStack-Request-ID).
    from oslo_log import formatters
    import nova.conf
    handler.setFormatter(formatters.ContextFormatter(
        project='nova', config=nova.conf.CONF))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))
    if root.level >= logging.WARNING:
        # Known, harmless start-up noise of this set-up: the in-process token
        # cache, no memcache client, the fake compute's thread-pool sizes.
        for name in ('keystonemiddleware.auth_token', 'stevedore.extension',
                     'nova.thread_pool_factory'):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def pool_sqlite_file_connections():
    """Keep the functional tests' file-backed sqlite connections open.

    Under native threading (Nova 34 and later) the test databases are sqlite
    files, and oslo.db gives file URLs a NullPool: each transaction opens
    the file and reads Nova's whole schema again, about a third of the CPU
    of a GET or an update. Production Nova pools its (MySQL) connections; a
    small pool here changes no answer. In-memory databases (the eventlet
    releases) keep oslo.db's StaticPool.
    """
    from oslo_db.sqlalchemy import engines
    from sqlalchemy import pool

    # oslo.db's per-dialect set-up functions, called in turn for a sqlite
    # URL; ours runs after them.
    registered = engines._init_connection_args.reg['sqlite']['*']
    if not isinstance(registered, list) or not registered:
        return
    oslo_sqlite = list(registered)

    def pooled(url, engine_args, kw):
        for fn in oslo_sqlite:
            fn(url, engine_args, kw)
        if engine_args.get('poolclass') is pool.NullPool:
            engine_args['poolclass'] = pool.QueuePool
            engine_args['pool_size'] = 8
            # Never wait for a connection: a request may hold one per
            # database, and a NullPool never made anything wait.
            engine_args['max_overflow'] = -1
            engine_args['pool_pre_ping'] = False
            engine_args['connect_args']['check_same_thread'] = False

    registered[:] = [pooled]


class NovaEnvironment:
    """Nova's functional-test environment, set up and torn down by hand."""

    def __init__(self):
        from keystoneauth1 import fixture as ks_fixture
        from keystonemiddleware.auth_token import _exceptions as ksm_exc
        from nova.tests.functional import integrated_helpers

        class _Env(integrated_helpers._IntegratedTestBase):
            # Authentication is done by the real keystonemiddleware filter;
            # the API is served by us, not through wsgi-intercept.
            STUB_KEYSTONE = False

            def runTest(self):  # testtools needs a test method
                pass

            def _setup_services(self):
                if 'cell1' in self.cell_mappings:
                    self.flags(
                        transport_url=self.cell_mappings['cell1'].transport_url)
                self.conductor = self._setup_conductor_service()
                self.addCleanup(self.conductor.stop)
                self.scheduler = self._setup_scheduler_service()
                self.addCleanup(self.scheduler.stop)
                self.compute = self._setup_compute_service()
                self.addCleanup(self._stop_computes)

        self._case = _Env()
        self._V3Token = ks_fixture.V3Token
        self._InvalidToken = ksm_exc.InvalidToken

    def start(self, proxy_headers=False):
        import fixtures
        import nova.conf
        import nova.policy

        pool_sqlite_file_connections()
        case = self._case
        case.setUp()
        conf = nova.conf.CONF

        # Production values instead of the functional tests' ones.
        if 'response_validation' in conf.api:   # Nova 30 and later
            case.flags(response_validation='warn', group='api')
        conf.set_override('enforce_new_defaults', True, group='oslo_policy')
        nova.policy.reset()
        nova.policy.init()

        # The paste file as shipped with Nova, i.e. <prefix>/etc/nova/.
        paste = os.path.join(sys.prefix, 'etc', 'nova', 'api-paste.ini')
        if not os.path.exists(paste):
            raise RuntimeError('api-paste.ini not found at %s' % paste)
        case.flags(api_paste_config=paste, group='wsgi')
        conf.set_override('www_authenticate_uri', 'http://127.0.0.1/identity',
                          group='keystone_authtoken')
        conf.set_override('service_token_roles_required', True,
                          group='keystone_authtoken')
        if proxy_headers:
            from oslo_middleware import http_proxy_to_wsgi
            conf.register_opts(http_proxy_to_wsgi.OPTS,
                               group='oslo_middleware')
            conf.set_override('enable_proxy_headers_parsing', True,
                              group='oslo_middleware')

        V3Token = self._V3Token
        InvalidToken = self._InvalidToken
        expires = (datetime.datetime.now(datetime.timezone.utc).replace(
            tzinfo=None) + datetime.timedelta(days=7))

        def fetch_token(mw, token, **kwargs):
            m = TOKEN_RE.match(token or '')
            if not m:
                raise InvalidToken()
            user, project, roles = m.group(1), m.group(2), m.group(3)
            role_list = [r for r in (roles or 'member,reader').split(',') if r]
            data = V3Token(
                user_id=user, user_name=user,
                user_domain_id='default', user_domain_name='Default',
                project_id=project, project_name=project,
                project_domain_id='default', project_domain_name='Default',
                expires=expires)
            for role in role_list:
                data.add_role(name=role)
            return data

        case.useFixture(fixtures.MonkeyPatch(
            'keystonemiddleware.auth_token.AuthProtocol.fetch_token',
            fetch_token))

    def load_app(self):
        from nova.api.openstack import wsgi_app
        from nova import conf as nova_conf
        from nova.api import wsgi
        wsgi_app._setup_service(nova_conf.CONF.host, 'osapi_compute')
        return wsgi.Loader().load_app('osapi_compute')

    def stop(self):
        try:
            self._case.doCleanups()
        except Exception as e:  # noqa
            log('clean-up error: %s' % e)


def boot_servers(port, prefix, token, project_id, count, stop):
    """Boot ``count`` servers through the API and wait until ACTIVE."""
    if count == 0:
        return []
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    headers = {'X-Auth-Token': token, 'Content-Type': 'application/json',
               'OpenStack-API-Version': 'compute 2.37'}

    def call(method, path, body=None):
        conn.request(method, prefix + path,
                     body=json.dumps(body) if body else None,
                     headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)

    ids = []
    for i in range(count):
        body = {'server': {
            'name': 'server-%d' % (i + 1),
            'imageRef': '155d900f-4e14-4e4c-a73d-069cbf4541e6',
            'flavorRef': '1',
            'networks': 'none',
        }}
        status, resp = call('POST', '/v2.1/servers', body)
        if status != 202:
            raise RuntimeError('create server: %s %s' % (status, resp))
        ids.append(resp['server']['id'])
    deadline = time.monotonic() + 120
    pending = set(ids)
    while pending and not stop.is_set():
        for sid in sorted(pending):
            status, resp = call('GET', '/v2.1/servers/%s' % sid)
            if status != 200:
                raise RuntimeError('get server: %s %s' % (status, resp))
            st = resp['server']['status']
            if st == 'ACTIVE':
                pending.discard(sid)
            elif st == 'ERROR':
                raise RuntimeError('server %s went to ERROR: %s'
                                   % (sid, resp['server'].get('fault')))
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError('servers not ACTIVE in time: %s'
                                   % sorted(pending))
            time.sleep(0.2)
    conn.close()
    return ids


if __name__ == '__main__':
    sys.exit(main())
