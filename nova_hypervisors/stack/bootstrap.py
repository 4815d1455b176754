"""Schemas, keys, cells and the catalog: what a new cloud needs once.

Each step is recorded in ``bootstrap.json`` with the versions it ran with,
and skipped on the next ``stack up`` unless those versions changed; that is
most of why a restart is faster than a first bring-up (``keystone-manage
bootstrap`` alone takes ~20 s even when it changes nothing).  The four
projects' chains are independent; :mod:`up` runs them side by side.
"""

import base64
from collections.abc import Callable
import json
import os
import pathlib
import subprocess
import time

from nova_hypervisors.stack import StackError
from nova_hypervisors.stack import configs
from nova_hypervisors.stack import keystone_api
from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import venv as stack_venv

Report = Callable[[str], None]


def fernet_repository(path: pathlib.Path) -> None:
    """A Fernet key repository as keystone-manage fernet_setup makes it.

    Key ``0`` is the staged key and the highest number the primary one;
    each file holds one URL-safe base64 encoded 32-byte key, readable by
    its owner only.  An existing repository is left as it is.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    if (path / '0').exists():
        return
    for name in ('1', '0'):
        key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        fd = os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as stream:
            stream.write(key)


class Steps:
    """Runs the once-only steps and remembers which ones are done."""

    def __init__(
        self,
        layout: stack_layout.Layout,
        spec: stack_layout.Spec,
        secrets: dict[str, str],
        services_venv: stack_venv.Venv,
        env: dict[str, str],
        report: Report,
    ) -> None:
        self.layout = layout
        self.spec = spec
        self.secrets = secrets
        self.venv = services_venv
        self.env = env
        self.report = report
        self.version = json.dumps(services_venv.versions(), sort_keys=True)
        try:
            self.done = json.loads(layout.bootstrap_file.read_text())
        except (OSError, ValueError):
            self.done = {}

    def _mark(self, step: str, value: str | None = None) -> None:
        self.done[step] = value or self.version
        self.layout.bootstrap_file.write_text(
            json.dumps(self.done, indent=2) + '\n'
        )

    def is_done(self, step: str) -> bool:
        return self.done.get(step) == self.version

    def run(self, step: str, argv: list[str], env: dict | None = None) -> None:
        """Run one command of a step; its output goes to log/bootstrap.log."""
        started = time.monotonic()
        with open(self.layout.log / 'bootstrap.log', 'a') as log:
            log.write(f'--- {step}: {" ".join(argv)}\n')
            log.flush()
            done = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env or self.env,
                timeout=600,
            )
        if done.returncode:
            raise StackError(
                f'{step}: {" ".join(argv[:4])} ... failed '
                f'(exit {done.returncode}); see '
                f'{self.layout.log / "bootstrap.log"}'
            )
        self.report(f'{step} ({time.monotonic() - started:.1f} s)')

    # -- the four chains ---------------------------------------------------

    def keystone(self) -> None:
        if self.is_done('keystone'):
            return
        manage = self.venv.script('keystone-manage')
        conf = [
            '--config-file',
            str(self.layout.etc / 'keystone' / 'keystone.conf'),
        ]
        data = self.layout.data_dir('keystone')
        # What keystone-manage fernet_setup and credential_setup write,
        # without two more interpreters importing keystone (~4 s of CPU
        # each on our machines).
        fernet_repository(data / 'fernet-keys')
        fernet_repository(data / 'credential-keys')
        self.run('keystone db_sync', [manage, *conf, 'db_sync'])
        identity = configs.service_urls(self.spec)['identity']
        self.run(
            'keystone bootstrap',
            [
                manage,
                *conf,
                'bootstrap',
                '--bootstrap-admin-url',
                identity,
                '--bootstrap-public-url',
                identity,
                '--bootstrap-internal-url',
                identity,
                '--bootstrap-region-id',
                stack_layout.REGION,
            ],
            # The password goes through the environment, not argv.
            env=dict(self.env, OS_BOOTSTRAP_PASSWORD=self.secrets['admin']),
        )
        self._mark('keystone')

    def glance(self) -> None:
        if self.is_done('glance'):
            return
        self.run(
            'glance-manage db_sync',
            [
                self.venv.script('glance-manage'),
                '--config-file',
                str(self.layout.etc / 'glance' / 'glance-api.conf'),
                'db_sync',
            ],
        )
        self._mark('glance')

    def placement(self) -> None:
        if self.is_done('placement'):
            return
        self.run(
            'placement-manage db sync',
            [
                self.venv.script('placement-manage'),
                '--config-file',
                str(self.layout.etc / 'placement' / 'placement.conf'),
                'db',
                'sync',
            ],
        )
        self._mark('placement')

    def cinder(self) -> None:
        if self.is_done('cinder'):
            return
        self.run(
            'cinder-manage db sync',
            [
                self.venv.script('cinder-manage'),
                '--config-file',
                str(self.layout.etc / 'cinder' / 'cinder.conf'),
                'db',
                'sync',
            ],
        )
        self._mark('cinder')

    def neutron(self) -> None:
        if self.is_done('neutron'):
            return
        etc = self.layout.etc / 'neutron'
        self.run(
            'neutron-db-manage upgrade heads',
            [
                self.venv.script('neutron-db-manage'),
                '--config-file',
                str(etc / 'neutron.conf'),
                '--config-file',
                str(etc / 'ml2_conf.ini'),
                'upgrade',
                'heads',
            ],
        )
        self._mark('neutron')

    def nova_manage(self, *args: str) -> list[str]:
        return [
            self.venv.script('nova-manage'),
            '--config-file',
            str(self.layout.etc / 'nova' / 'nova.conf'),
            *args,
        ]

    def nova(self) -> None:
        if self.is_done('nova'):
            return
        self.run('nova-manage api_db sync', self.nova_manage('api_db', 'sync'))
        self.run(
            'nova-manage cell_v2 map_cell0',
            self.nova_manage('cell_v2', 'map_cell0'),
        )
        if not self.done.get('cell1'):
            self.run(
                'nova-manage cell_v2 create_cell',
                self.nova_manage('cell_v2', 'create_cell', '--name', 'cell1'),
            )
            self._mark('cell1')
        # Upgrades the cell0 database as well as cell1's.
        self.run('nova-manage db sync', self.nova_manage('db', 'sync'))
        self._mark('nova')

    # -- after keystone answers ---------------------------------------------

    def catalog_done(self) -> bool:
        return self.done.get('catalog') == self._catalog_key()

    def _catalog_key(self) -> str:
        """What the catalog step registered: endpoints and users."""
        return json.dumps(
            {
                'urls': configs.service_urls(self.spec),
                'users': list(stack_layout.SERVICE_USERS),
            },
            sort_keys=True,
        )

    def catalog(self, client: keystone_api.Client) -> bool:
        """Services, endpoints and service users (idempotent).

        Recorded with the URLs it registered, so a restart skips it unless
        the ports changed.
        """
        urls = configs.service_urls(self.spec)
        key = self._catalog_key()
        if self.done.get('catalog') == key:
            return False
        for service_type, name in (
            ('image', 'glance'),
            ('placement', 'placement'),
            ('compute', 'nova'),
            ('network', 'neutron'),
            ('volumev3', 'cinderv3'),
        ):
            client.ensure_service(service_type, name, urls[service_type])
        project = client.ensure(
            'projects',
            'service',
            {'name': 'service', 'domain_id': 'default'},
        )
        for user in stack_layout.SERVICE_USERS:
            client.ensure_user(
                user,
                self.secrets[f'service_{user}'],
                project['id'],
                ['admin', 'service'],
            )
        self._mark('catalog', key)
        return True

    def discover_hosts(self, hosts: list[str]) -> None:
        """Map new computes to cell1 (skipped when all were mapped before)."""
        key = 'discovered:' + ','.join(sorted(hosts))
        if self.done.get(key):
            return
        self.run(
            'nova-manage cell_v2 discover_hosts',
            self.nova_manage('cell_v2', 'discover_hosts', '--verbose'),
        )
        self._mark(key, 'yes')
