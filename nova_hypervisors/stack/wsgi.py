"""The four HTTP APIs under gunicorn, and knowing when one answers.

There are no ``*-wsgi`` scripts any more; each project ships a WSGI module
(``keystone.wsgi.api``, ``glance.wsgi.api``, ``placement.wsgi.api``,
``nova.wsgi.osapi_compute``) that finds its configuration through an
environment variable.  Each gets one gunicorn master with one threaded
worker (two cores: more workers only cost memory), bound to 127.0.0.1 on
the service's usual port, with its own control socket (gunicorn's default
socket is shared by every instance of one user).
"""

import dataclasses
import json
import time
import urllib.error
import urllib.request

from nova_hypervisors.stack import StackError
from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import procs


@dataclasses.dataclass(frozen=True)
class WsgiService:
    name: str
    port_name: str
    app: str
    # Where the application finds its configuration.
    env: tuple[tuple[str, str], ...]
    # An unauthenticated URL path answering once the app is loaded.
    probe: str = '/'
    # Arguments the application parses with oslo.config (for projects
    # whose WSGI module reads its files from sys.argv, as Cinder's does).
    argv: tuple[str, ...] = ()


def services(layout: stack_layout.Layout) -> dict[str, WsgiService]:
    etc = layout.etc
    return {
        service.name: service
        for service in (
            WsgiService(
                'keystone',
                'keystone',
                'keystone.wsgi.api',
                (('OS_KEYSTONE_CONFIG_DIR', str(etc / 'keystone')),),
                '/v3',
            ),
            WsgiService(
                'glance-api',
                'glance',
                'glance.wsgi.api',
                (('OS_GLANCE_CONFIG_DIR', str(etc / 'glance')),),
            ),
            WsgiService(
                'placement-api',
                'placement',
                'placement.wsgi.api',
                (('OS_PLACEMENT_CONFIG_DIR', str(etc / 'placement')),),
            ),
            WsgiService(
                'cinder-api',
                'cinder',
                'cinder.wsgi.api',
                (),
                argv=(
                    '--config-file',
                    str(etc / 'cinder' / 'cinder.conf'),
                    '--config-file',
                    str(etc / 'cinder' / 'cinder-api.conf'),
                ),
            ),
            WsgiService(
                'neutron-api',
                'neutron',
                'neutron.wsgi.api',
                (
                    ('OS_NEUTRON_CONFIG_DIR', str(etc / 'neutron')),
                    (
                        'OS_NEUTRON_CONFIG_FILES',
                        'neutron.conf;ml2_conf.ini;neutron-api.conf',
                    ),
                ),
            ),
            WsgiService(
                'nova-api',
                'nova-api',
                'nova.wsgi.osapi_compute',
                (
                    ('OS_NOVA_CONFIG_DIR', str(etc / 'nova')),
                    (
                        'OS_NOVA_CONFIG_FILES',
                        # The paste file first: nova-api loads its pipeline
                        # from the first file of the list.
                        'api-paste.ini;nova.conf;nova-api.conf',
                    ),
                ),
            ),
        )
    }


def start(
    service: WsgiService,
    layout: stack_layout.Layout,
    spec: stack_layout.Spec,
    supervisor: procs.Supervisor,
    gunicorn: str,
    env: dict[str, str],
) -> procs.Record:
    port = spec.port(service.port_name)
    argv = [
        gunicorn,
        '--name',
        service.name,
        '--bind',
        f'{stack_layout.LOOPBACK}:{port}',
        '--workers',
        '1',
        '--worker-class',
        'gthread',
        '--threads',
        '4',
        # Image uploads and server boots can hold a request that long.
        '--timeout',
        '300',
        '--graceful-timeout',
        '5',
        # No keep-alive: gunicorn closes an idle connection after 2 s by
        # default, just when the openstack CLI's 2 s "--wait" poll reuses
        # it, and the request then meets a closed socket
        # (RemoteDisconnected).  A fresh connection per request is cheap
        # on loopback.
        '--keep-alive',
        '0',
        '--access-logfile',
        str(layout.log / f'{service.name}-access.log'),
        '--control-socket',
        str(layout.run / f'{service.name}.ctl'),
        'nova_hypervisors.stack.wsgi_app:application',
    ]
    service_env = dict(env, NOVA_HYPERVISORS_WSGI_APP=service.app)
    if service.argv:
        service_env['NOVA_HYPERVISORS_WSGI_ARGV'] = json.dumps(service.argv)
    service_env.update(service.env)
    return supervisor.start(
        service.name, argv, env=service_env, listen=(port,)
    )


def wait_answering(
    record: procs.Record,
    url: str,
    supervisor: procs.Supervisor,
    timeout: float = 90,
) -> None:
    """Wait for any HTTP answer below 500 from ``url``.

    gunicorn's master binds the port before its worker has imported the
    application, so an open port proves nothing; an answer does.  A worker
    that cannot boot makes the master exit, which ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last = ''
    while time.monotonic() < deadline:
        if not procs.alive(record.pid, record.start_time):
            raise StackError(
                f'{record.name} exited during start-up\n'
                f'{supervisor.tail(record.name)}'
            )
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                response.read()
                return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
            last = f'HTTP {error.code}'
        except OSError as error:
            last = str(error)
        time.sleep(0.2)
    raise StackError(
        f'{record.name} did not answer {url} within {timeout:.0f} s '
        f'({last})\n{supervisor.tail(record.name)}'
    )
