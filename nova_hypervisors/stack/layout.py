"""Where everything of one stack lives, and what it was asked to be.

One state directory holds the whole stack so that ``stack down`` followed by
``stack up`` restarts the same cloud, and deleting the directory forgets it::

    etc/<service>/   generated configuration, one directory per service
    data/<service>/  databases, images, nova state_path, keys
    log/             oslo.log files and each process's stdout/stderr
    run/             PID files, sockets, simulator connection facts
    stack.json       the options of the last ``stack up`` (the topology)
    secrets.json     generated passwords (mode 0600, kept across restarts)
"""

import dataclasses
import json
import os
import pathlib
import secrets

from nova_hypervisors.stack import StackError

LOOPBACK = '127.0.0.1'
REGION = 'RegionOne'

# The usual port of each listening service; ``--port-offset`` shifts all.
DEFAULT_PORTS = {
    'mariadb': 3306,
    'epmd': 4369,
    'rabbitmq': 5672,
    'rabbitmq-dist': 25672,
    'keystone': 5000,
    'glance': 9292,
    'placement': 8778,
    'nova-api': 8774,
    'neutron': 9696,
    'xapi-sim': 8680,
    'cinder': 8776,
    # An iSCSI portal's port is 3260; one an unprivileged user can bind.
    'iscsi-array': 13260,
    # OpenFlow (6633 on a real host); the agent of XenServer host N
    # listens on this port + N - 1.
    'openflow': 16633,
}

# Compute driver choices: ours (the default) or Nova's fake driver, which
# exercises the machinery while our drivers or simulators are not ready.
DRIVER_REAL = 'real'
DRIVER_FAKE = 'fake'
XENAPI_DRIVER = 'nova_hypervisors.xenapi.XenAPIDriver'
VMWARE_DRIVER = 'nova_hypervisors.vmwareapi.VCDriver'
# FakeDriverWithoutFakeNodes keeps one node per service whose UUID comes
# from nova.virt.node (state_path/compute_id), so it survives restarts the
# way a real driver's node must; plain FakeDriver invents a new UUID.
FAKE_DRIVER = 'fake.FakeDriverWithoutFakeNodes'

SERVICE_USERS = ('glance', 'placement', 'nova', 'cinder', 'neutron')
#: The target every Cinder volume of the stack is a LUN of.
VOLUME_TARGET_IQN = 'iqn.2010-10.org.openstack:nova-hypervisors-stack'


def default_state_dir() -> pathlib.Path:
    """``$NOVA_HYPERVISORS_STACK_DIR`` or the XDG state directory."""
    explicit = os.environ.get('NOVA_HYPERVISORS_STACK_DIR')
    if explicit:
        return pathlib.Path(explicit)
    base = os.environ.get('XDG_STATE_HOME') or os.path.expanduser(
        '~/.local/state'
    )
    return pathlib.Path(base) / 'nova-hypervisors' / 'stack'


@dataclasses.dataclass
class Spec:
    """What ``stack up`` was asked for; kept so a restart needs no options."""

    xen_hosts: int = 2
    vcenter: bool = False
    compute_driver: str = DRIVER_REAL
    port_offset: int = 0
    venv: str = ''

    def port(self, service: str) -> int:
        return DEFAULT_PORTS[service] + self.port_offset

    @property
    def ports(self) -> dict[str, int]:
        return {name: self.port(name) for name in DEFAULT_PORTS}


class Layout:
    """Paths inside one state directory."""

    def __init__(self, state_dir: pathlib.Path | str) -> None:
        self.root = pathlib.Path(state_dir).absolute()
        self.etc = self.root / 'etc'
        self.data = self.root / 'data'
        self.log = self.root / 'log'
        self.run = self.root / 'run'
        self.spec_file = self.root / 'stack.json'
        self.secrets_file = self.root / 'secrets.json'
        self.bootstrap_file = self.root / 'bootstrap.json'
        self.openrc = self.root / 'openrc'

    def create(self) -> None:
        for directory in (self.etc, self.data, self.log, self.run):
            directory.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)

    def etc_dir(self, service: str) -> pathlib.Path:
        path = self.etc / service
        path.mkdir(parents=True, exist_ok=True)
        return path

    def data_dir(self, service: str) -> pathlib.Path:
        path = self.data / service
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load_spec(self) -> Spec | None:
        if not self.spec_file.exists():
            return None
        return Spec(**json.loads(self.spec_file.read_text()))

    def save_spec(self, spec: Spec) -> None:
        self.spec_file.write_text(
            json.dumps(dataclasses.asdict(spec), indent=2) + '\n'
        )

    def secret_file(self, name: str) -> pathlib.Path:
        """One secret in a file only its owner can read, for a process
        that takes it from a file rather than its command line."""
        path = self.etc / f'{name}.password'
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as stream:
            stream.write(self.load_secrets()[name] + '\n')
        return path

    def load_secrets(self) -> dict[str, str]:
        """Passwords of this stack, generated once and then kept.

        Kept rather than regenerated so a restart finds the databases,
        RabbitMQ users and keystone users it created the first time.
        """
        known: dict[str, str] = {}
        if self.secrets_file.exists():
            try:
                known = json.loads(self.secrets_file.read_text())
            except ValueError as error:
                raise StackError(
                    f'{self.secrets_file} is not valid JSON ({error}); '
                    'restore it or remove the whole state directory'
                ) from None
        database_users = (
            'keystone',
            'glance',
            'placement',
            'nova',
            'cinder',
            'neutron',
        )
        wanted = (
            ['admin', 'rabbitmq', 'xenserver', 'vcenter', 'array', 'chap']
            + [f'db_{user}' for user in database_users]
            + [f'service_{user}' for user in SERVICE_USERS]
        )
        changed = False
        for name in wanted:
            if name not in known:
                known[name] = secrets.token_urlsafe(18)
                changed = True
        if changed:
            fd = os.open(
                self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
            )
            with os.fdopen(fd, 'w') as stream:
                json.dump(known, stream, indent=2)
        return known
