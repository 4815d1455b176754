"""``demo --serve``: Nova's REST API of the demo cloud on a local port.

The in-process cloud stubs Keystone; requests name their user and project
in headers instead.  This server takes the token convention of Nova's old
``noauth2`` mode, ``X-Auth-Token: <user>:<project>`` (user ``admin`` is an
administrator), so a standard OpenStack client can talk to it with
``--os-auth-type admin_token``.
"""

from __future__ import annotations

import socketserver
import threading
from wsgiref import simple_server

from nova.api import wsgi


class _ThreadingServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass


def token_to_headers(app):
    """WSGI middleware: ``user:project`` tokens become the stub's headers."""

    def middleware(environ, start_response):
        token = environ.get('HTTP_X_AUTH_TOKEN', 'admin:admin')
        user, _, project = token.partition(':')
        environ['HTTP_X_AUTH_USER'] = user or 'admin'
        environ['HTTP_X_AUTH_PROJECT_ID'] = project or user or 'admin'
        environ.setdefault(
            'HTTP_X_ROLES', 'admin,member,reader' if user == 'admin' else
            'member,reader'
        )  # fmt: skip
        return app(environ, start_response)

    return middleware


def serve_compute_api(port: int = 0) -> tuple[str, threading.Thread]:
    """Serve Nova's compute API on 127.0.0.1; returns its URL."""
    app = token_to_headers(wsgi.Loader().load_app('osapi_compute'))
    server = simple_server.make_server(
        '127.0.0.1',
        port,
        app,
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f'http://127.0.0.1:{server.server_port}/v2.1', thread


def client_hint(url: str) -> str:
    return (
        'Point a standard OpenStack client at it:\n'
        f'  export OS_AUTH_TYPE=admin_token OS_TOKEN=admin:admin '
        f'OS_ENDPOINT={url}\n'
        '  openstack server list; openstack aggregate show xenpool1\n'
        f'or: curl -H "X-Auth-Token: admin:admin" {url}/servers/detail'
    )
