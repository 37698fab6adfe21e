"""deploy/dev/nova_api.py, configured as Nova is behind a TLS-terminating
load balancer (``[oslo_middleware] enable_proxy_headers_parsing = True``,
as kolla-ansible and OpenStack-Ansible set it), and recording what reaches
it: one JSON line per request (method, path, the X-Forwarded-* headers,
Host, and the body of PUTs) in the file named by NOVA_RECORD.

    nova_recorded.py DEV_DIR [nova_api.py arguments]
"""

import json
import os
import sys
import threading

dev_dir = sys.argv[1]
sys.path.insert(0, dev_dir)
import nova_api  # noqa: E402

record_path = os.environ['NOVA_RECORD']
lock = threading.Lock()


def recording(app):
    def wrapper(environ, start_response):
        body = b''
        if environ.get('REQUEST_METHOD') == 'PUT':
            n = int(environ.get('CONTENT_LENGTH') or 0)
            body = environ['wsgi.input'].read(n) if n else b''
            import io
            environ['wsgi.input'] = io.BytesIO(body)
        entry = {
            'method': environ.get('REQUEST_METHOD'),
            'path': environ.get('PATH_INFO'),
            'protocol': environ.get('SERVER_PROTOCOL'),
            'host': environ.get('HTTP_HOST'),
            'x_forwarded_for': environ.get('HTTP_X_FORWARDED_FOR'),
            'x_forwarded_proto': environ.get('HTTP_X_FORWARDED_PROTO'),
            'x_forwarded_host': environ.get('HTTP_X_FORWARDED_HOST'),
            'request_id': environ.get('HTTP_X_OPENSTACK_REQUEST_ID'),
            'body': body.decode('utf-8', 'replace'),
        }
        with lock, open(record_path, 'a') as f:
            f.write(json.dumps(entry) + '\n')
        return app(environ, start_response)
    return wrapper


load_app = nova_api.NovaEnvironment.load_app


def load_app_behind_proxy(self):
    from oslo_config import cfg
    from oslo_middleware import http_proxy_to_wsgi
    cfg.CONF.register_opts(http_proxy_to_wsgi.OPTS, group='oslo_middleware')
    cfg.CONF.set_override('enable_proxy_headers_parsing', True, group='oslo_middleware')
    return recording(load_app(self))


nova_api.NovaEnvironment.load_app = load_app_behind_proxy

if __name__ == '__main__':
    sys.exit(nova_api.main(sys.argv[2:]))
