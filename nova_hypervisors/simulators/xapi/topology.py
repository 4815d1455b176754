"""Simulated hosts, the pools they form, and who is whose master.

A :class:`SimHost` is one XenServer host: a loopback address with its own
xapi endpoint, credentials and host UUID.  A :class:`PoolState` is one
pool's database plus its master; a standalone host is the master of a pool
of one.  Hosts keep their own idea of where the master is
(``master_address``), which is what ``HOST_IS_SLAVE`` reports, and which
may be stale after a master died until ``pool.recover_slaves`` fixes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nova_hypervisors.simulators.xapi.datamodel import Datamodel
from nova_hypervisors.simulators.xapi.disks import DiskStore
from nova_hypervisors.simulators.xapi.store import ObjectStore
from nova_hypervisors.simulators.xapi.store import new_uuid

if TYPE_CHECKING:
    from nova_hypervisors.simulators.xapi.faults import Faults

PRODUCT_VERSION = '8.4.0'
EXTERNAL_BRIDGES = ('br-int',)
API_VERSION = (2, 21)
MIB = 1024 * 1024
GIB = 1024 * MIB


class SimHost:
    """One simulated host; also the public handle tests get.

    Public attributes: ``name``, ``address``, ``port``, ``url`` (https),
    ``http_port``, ``http_url`` (plain http, as port 80), ``https_only``,
    ``username``, ``password`` (what API logins need now: a pool member's
    is its master's), ``local_password`` (the host's own root password, for
    ``slave_local_login_with_password``), ``uuid``, ``host_ref`` (in the
    database of the pool it belongs to), ``is_master``, ``answering``.
    """

    def __init__(
        self,
        topology: Topology,
        index: int,
        address: str,
        password: str,
    ) -> None:
        self.topology = topology
        self.index = index
        self.name = 'xenserver-%d' % (index + 1)
        self.address = address
        self.port = 0
        self.username = 'root'
        self.password = password
        self.local_password = password
        self.uuid = new_uuid()
        self.memory_mib = topology.host_memory_mib
        self.cpus = topology.host_cpus
        self.product_version = PRODUCT_VERSION
        self.api_version = API_VERSION
        self.local_sr_uuid = new_uuid()
        self.pool: PoolState | None = None
        self.master_address = address
        self.answering = False
        self.local_sessions: set[str] = set()
        self.server = None  # the XenAPI server (https) while answering
        self.plain_server = None  # plain http (consoles), unless https_only
        self.http_port = 0
        #: As ``host.https_only`` on XenServer 8: port 80 is closed.
        self.https_only = False
        #: Bridges that exist in dom0 outside xapi's own (an operator's
        #: Open vSwitch integration bridge): what unmanaged networks use.
        self.external_bridges = set(EXTERNAL_BRIDGES)

    def __repr__(self) -> str:
        role = 'master' if self.pool and self.is_master else 'slave'
        return '<SimHost %s %s %s>' % (self.name, self.address, role)

    @property
    def url(self) -> str:
        """The XenAPI URL: https, unless the simulator runs without TLS."""
        scheme = 'https' if self.topology.tls is not None else 'http'
        return '%s://%s:%d' % (scheme, self.address, self.port)

    @property
    def http_url(self) -> str:
        """The plain-HTTP endpoint (port 80 on a real host)."""
        return 'http://%s:%d' % (self.address, self.http_port)

    @property
    def is_master(self) -> bool:
        return self.pool is not None and self.pool.master is self

    @property
    def host_ref(self) -> str | None:
        if self.pool is None:
            return None
        return self.pool.store.find_uuid('host', self.uuid)

    @property
    def store(self) -> ObjectStore:
        return self.pool.store


class PoolState:
    """One pool: its database and its current master."""

    def __init__(self, model: Datamodel, master: SimHost) -> None:
        self.store = ObjectStore(model)
        self.master = master
        self.pool_ref = ''

    @property
    def members(self) -> list[SimHost]:
        hosts = self.master.topology.hosts
        return [h for h in hosts if h.pool is self]

    @property
    def password(self) -> str:
        return self.master.password


class Topology:
    """All hosts of one simulator, their disks and their faults."""

    def __init__(
        self,
        model: Datamodel,
        disks: DiskStore,
        faults: Faults,
        host_memory_mib: int,
        host_cpus: int,
        local_sr_gib: int,
        shared_sr_gib: int,
    ) -> None:
        self.model = model
        self.disks = disks
        self.faults = faults
        self.host_memory_mib = host_memory_mib
        self.host_cpus = host_cpus
        self.local_sr_size = local_sr_gib * GIB
        self.shared_sr_size = shared_sr_gib * GIB
        self.shared_sr_uuid = new_uuid()
        self.hosts: list[SimHost] = []
        self.port = 0
        self.http_port = 0
        #: The run's TLS files (``tls.Credentials``), or None: plain http.
        self.tls = None
        #: Seconds an ejected host reboots for, and a joiner's toolstack
        #: restarts for (minutes and seconds on real hosts).
        self.eject_reboot_seconds = 0.0
        self.join_restart_seconds = 0.0
        #: Whether guests started from now on run guest tools (PV drivers
        #: and the guest agent): only those have guest metrics, and only
        #: those can be shut down or rebooted cleanly.
        self.guest_tools = True
        self.next_domid = 1
        #: Each host's Open vSwitch (``switches.HostSwitches``), or None:
        #: plugged VIFs then appear nowhere but in the database.
        self.switches = None

    def host_by_address(self, address: str) -> SimHost | None:
        for host in self.hosts:
            if host.address == address:
                return host
        return None

    def host_by_name(self, name: str) -> SimHost:
        for host in self.hosts:
            if name in (host.name, host.address, host.uuid):
                return host
        raise KeyError('no simulated host %r' % name)

    def pools(self) -> list[PoolState]:
        seen: list[PoolState] = []
        for host in self.hosts:
            if host.pool is not None and host.pool not in seen:
                seen.append(host.pool)
        return seen

    def pool_of_address(self, address: str) -> PoolState | None:
        host = self.host_by_address(address)
        return None if host is None else host.pool
