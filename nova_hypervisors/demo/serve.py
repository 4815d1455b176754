"""``demo --serve``: the demo cloud's REST APIs on one local port.

One HTTP server on 127.0.0.1 serves, under path prefixes:

* ``/identity``: keystone v3 tokens and the service catalog
  (:mod:`.identity`);
* ``/compute``: Nova's own compute API (the real ``osapi_compute``);
* ``/volume``: Cinder's v3 volume API over the demo's volumes
  (:mod:`.block_storage`);
* ``/image``: glance v2, read-only (:mod:`.image_api`).

So the standard ``openstack`` CLI, given the printed openrc, creates
volumes, boots servers and attaches volumes as against a real cloud.

The in-process Nova takes its caller from headers, as Nova's old
``noauth2`` mode did; a token the identity endpoint issued becomes those
headers, and a request with no such token is refused with 401, except
version discovery.
"""

from __future__ import annotations

import os
import secrets
import shlex
import socketserver
import threading
from typing import Any
from wsgiref import simple_server

import fixtures
from nova.api import wsgi

from nova_hypervisors.demo import block_storage
from nova_hypervisors.demo import identity
from nova_hypervisors.demo import image_api
from nova_hypervisors.demo import rest

#: Paths (below a service prefix) that answer without a token.
DISCOVERY = ('', '/v2.1', '/v3', '/v2')
SERVED_IQN = 'iqn.2010-10.org.openstack:demo-served-volumes'


class _ThreadingServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass


class Tokens:
    """Tokens the identity endpoint issued: ``{token: (user, project)}``."""

    def __init__(self) -> None:
        self._issued: dict[str, tuple[str, str]] = {}

    def issue(self, user: str, project: str) -> str:
        token = secrets.token_hex(16)
        self._issued[token] = (user, project)
        return token

    def caller(self, environ) -> tuple[str, str] | None:
        return self._issued.get(environ.get('HTTP_X_AUTH_TOKEN', ''))


def with_caller(app, tokens: Tokens):
    """WSGI middleware: the token's user and project become the headers
    the in-process Nova reads; no token, no access (but discovery)."""

    def middleware(environ, start_response):
        caller = tokens.caller(environ)
        if caller is None:
            if (environ.get('PATH_INFO') or '').rstrip('/') not in DISCOVERY:
                return _unauthorized(start_response)
            caller = (identity.USER, identity.PROJECT)
        user, project = caller
        environ['HTTP_X_AUTH_USER'] = user
        environ['HTTP_X_AUTH_PROJECT_ID'] = project
        environ['HTTP_X_ROLES'] = 'admin,member,reader'
        return app(environ, start_response)

    return middleware


def _unauthorized(start_response):
    return rest.respond(
        start_response,
        401,
        {
            'error': {
                'code': 401,
                'title': 'Unauthorized',
                'message': 'no valid X-Auth-Token; get one from '
                '/identity/v3/auth/tokens',
            }
        },
        [('WWW-Authenticate', 'Keystone uri="/identity"')],
    )


def by_prefix(apps: dict[str, Any]):
    """WSGI dispatcher: ``/<prefix>/rest`` goes to ``apps[prefix]`` with
    ``SCRIPT_NAME`` ``/<prefix>``, as a web server mounts each service."""

    def dispatch(environ, start_response):
        path = environ.get('PATH_INFO') or '/'
        prefix, _, rest = path.lstrip('/').partition('/')
        app = apps.get(prefix)
        if app is None:
            return rest.respond(
                start_response,
                404,
                {'error': 'no such service; see /identity'},
            )
        environ['SCRIPT_NAME'] = environ.get('SCRIPT_NAME', '') + '/' + prefix
        environ['PATH_INFO'] = '/' + rest if rest or path.endswith('/') else ''
        return app(environ, start_response)

    return dispatch


class ServedCloud:
    """The demo's clouds behind one port; ``url``, ``password``."""

    def __init__(self, story: Any, port: int = 0) -> None:
        self.password = secrets.token_urlsafe(12)
        self.tokens = Tokens()
        self.storage = block_storage.BlockStorage(
            story.nova.cinder, _backends(story)
        )
        _detach_where_the_instance_runs(story.nova)
        apps = {
            'identity': _issuing(
                identity.application(self.password, self.endpoints),
                self.tokens,
            ),
            'compute': with_caller(
                wsgi.Loader().load_app('osapi_compute'), self.tokens
            ),
            'volume': with_caller(
                block_storage.application(
                    self.storage,
                    lambda environ: environ['HTTP_X_AUTH_PROJECT_ID'],
                ),
                self.tokens,
            ),
            'image': with_caller(
                image_api.application(story.nova.glance, _admin_context),
                self.tokens,
            ),
        }
        self._server = simple_server.make_server(
            '127.0.0.1',
            port,
            by_prefix(apps),
            server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )
        self.url = f'http://127.0.0.1:{self._server.server_port}'
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True
        )
        self._thread.start()

    def endpoints(self) -> dict[str, str]:
        volume = f'{self.url}/volume/v3/%(project_id)s'
        return {
            'identity': f'{self.url}/identity',
            'compute': f'{self.url}/compute/v2.1',
            'block-storage': volume,
            'volumev3': volume,
            'image': f'{self.url}/image',
        }

    def openrc(self) -> dict[str, str]:
        return {
            'OS_AUTH_URL': f'{self.url}/identity/v3',
            'OS_AUTH_TYPE': 'password',
            'OS_IDENTITY_API_VERSION': '3',
            'OS_USERNAME': identity.USER,
            'OS_PASSWORD': self.password,
            'OS_PROJECT_NAME': identity.PROJECT,
            'OS_USER_DOMAIN_NAME': identity.DOMAIN['name'],
            'OS_PROJECT_DOMAIN_NAME': identity.DOMAIN['name'],
            'OS_REGION_NAME': identity.REGION,
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.storage.stop()


def _issuing(app, tokens: Tokens):
    """The identity app with a fresh token in place of its placeholder."""

    def middleware(environ, start_response):
        def starting(status, headers, exc_info=None):
            headers = [
                (name, tokens.issue(*value.split(':', 1)))
                if name == 'X-Subject-Token'
                else (name, value)
                for name, value in headers
            ]
            return start_response(status, headers, exc_info)

        return app(environ, starting)

    return middleware


def _admin_context():
    from nova import context

    return context.get_admin_context()


def _backends(story: Any) -> list:
    from nova_hypervisors.simulators import iscsi_target

    if story.array is None:
        story.array = iscsi_target.StorageArray(
            f'{story.state_dir}/iscsi-array'
        ).start()
    chap = ('demo', secrets.token_urlsafe(12))
    story.array.add_target(SERVED_IQN, chap=chap)
    backends = [
        block_storage.IscsiArrayBackend(story.array, SERVED_IQN, chap, 1)
    ]
    if story.vcsim is not None:
        from nova_hypervisors.demo import vcenter_view

        backends.append(
            block_storage.ShadowVmBackend(
                lambda name, size_gb: vcenter_view.shadow_volume(
                    story.vcsim, name, size_gb=size_gb
                ),
                lambda moref: vcenter_view.destroy_vm(story.vcsim, moref),
            )
        )
    return backends


def _detach_where_the_instance_runs(nova: Any) -> None:
    """Nova detaches a volume through the driver only where ``CONF.host``
    is the instance's host (``DriverVolumeBlockDevice._do_detach``): each
    real nova-compute has its own.  In this one process the call reached
    the instance's host's compute by RPC, so it runs with that host."""
    from nova import conf
    from nova.virt import block_device

    original = block_device.DriverVolumeBlockDevice._do_detach
    lock = threading.Lock()

    def _do_detach(self, context, instance, *args, **kwargs):
        with lock:
            config = conf.CONF
            before = config.host
            config.set_override('host', instance.host)
            try:
                return original(self, context, instance, *args, **kwargs)
            finally:
                config.set_override('host', before)

    nova.useFixture(
        fixtures.MockPatchObject(
            block_device.DriverVolumeBlockDevice, '_do_detach', _do_detach
        )
    )


def write_openrc(cloud: ServedCloud, directory: str) -> str:
    """An openrc of the served cloud, readable by its owner only (it
    holds the password); returns its path."""
    path = os.path.join(directory, 'openrc')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as openrc:
        for key, value in cloud.openrc().items():
            openrc.write(f'export {key}={shlex.quote(value)}\n')
    return path


def client_hint(openrc: str) -> str:
    return (
        'Point the openstack CLI at it:\n'
        f'  . {openrc}\n'
        '  openstack server list; openstack aggregate show xenpool1\n'
        '  openstack volume create --size 1 vol1\n'
        '  openstack server create --image demo-raw-disk --flavor m1.tiny '
        '--nic none --availability-zone xenpool vm1\n'
        '  openstack server add volume vm1 vol1\n'
        'Volume types: simulated-iscsi-array (the default: a LUN of the '
        "demo's iSCSI array) and vcenter-vmdk (a shadow VM on vcsim, for "
        'servers on the vCenter node).'
    )
