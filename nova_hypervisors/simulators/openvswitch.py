"""One simulated XenServer host's dom0 switch: an Open vSwitch of its own.

Debian's ``openvswitch-switch`` runs here without its kernel module: each
switch is an ``ovsdb-server`` with its own database and socket, and an
``ovs-vswitchd`` on the userspace ``netdev`` datapath.  Two choices keep
several switches on one machine apart:

* every switch has its own run directory (``OVS_RUNDIR``: control and
  OpenFlow management sockets), so nothing meets in /var/run/openvswitch;
* ``--enable-dummy=override`` makes the ports userspace ones: a bridge's
  own port or a VIF's ``vif<domid>.<device>`` creates no network device of
  the machine.  Two hosts' ``br-int`` would otherwise be one kernel name,
  and taps that ovs-vswitchd creates outlive it.

The ports still get OpenFlow numbers and carry flows, which is what a
Neutron Open vSwitch agent reads and programs; no packet leaves a switch.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

SCHEMA = pathlib.Path('/usr/share/openvswitch/vswitch.ovsschema')
PROGRAMS = ('ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl')
#: Debian's package of all four programs.
PACKAGE = 'openvswitch-switch'


class Switch:
    """The files of one switch, all under ``root``."""

    def __init__(self, root: pathlib.Path | str) -> None:
        self.root = pathlib.Path(root)
        self.database = self.root / 'conf.db'
        self.socket = self.root / 'db.sock'

    @property
    def db_url(self) -> str:
        return f'unix:{self.socket}'

    def environment(self) -> dict[str, str]:
        """Where the switch's programs put their sockets and pid files."""
        return {
            'OVS_RUNDIR': str(self.root),
            'OVS_LOGDIR': str(self.root),
            'OVS_DBDIR': str(self.root),
        }

    def create(self) -> None:
        """A new database from the schema Debian ships (kept if present)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.database.exists():
            _run([program('ovsdb-tool'), 'create', str(self.database),
                  str(SCHEMA)])  # fmt: skip

    def ovsdb_server_argv(self) -> list[str]:
        return [
            program('ovsdb-server'),
            str(self.database),
            f'--remote=punix:{self.socket}',
            f'--unixctl={self.root / "ovsdb-server.ctl"}',
            f'--pidfile={self.root / "ovsdb-server.pid"}',
            '--no-chdir',
        ]

    def vswitchd_argv(self) -> list[str]:
        return [
            program('ovs-vswitchd'),
            self.db_url,
            f'--unixctl={self.root / "ovs-vswitchd.ctl"}',
            f'--pidfile={self.root / "ovs-vswitchd.pid"}',
            '--no-chdir',
            # No datapath in the kernel: the netdev one only.
            '--disable-system',
            '--enable-dummy=override',
        ]

    def vsctl(self, *args: str, wait: bool = True) -> str:
        argv = vsctl_argv(self.socket)
        if not wait:
            argv.append('--no-wait')
        return _run(argv + list(args))

    def add_bridge(self, name: str) -> None:
        """A bridge on the userspace datapath (kept if present)."""
        self.vsctl('--may-exist', 'add-br', name, '--', 'set', 'Bridge',
                   name, 'datapath_type=netdev')  # fmt: skip


def vsctl_argv(socket: pathlib.Path | str) -> list[str]:
    """ovs-vsctl on the switch whose database listens on ``socket``."""
    return [program('ovs-vsctl'), f'--db=unix:{socket}', '--timeout=30']


def program(name: str) -> str:
    return shutil.which(name) or f'/usr/sbin/{name}'


def missing_programs() -> list[str]:
    return [
        name
        for name in PROGRAMS
        if not shutil.which(name) and not pathlib.Path(program(name)).exists()
    ]


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise RuntimeError(
            f'{" ".join(argv[:3])} failed: {done.stderr.strip()}'
        )
    return done.stdout
