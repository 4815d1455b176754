"""``SimulatedPool``: a set of simulated XenServer hosts on loopback.

Each host listens on its own address (``127.0.0.1``, ``127.0.0.2`` ...),
all on the same port, because ``HOST_IS_SLAVE`` carries only the master's
address and a client rebuilds the URL with its own port.  Host 1 starts as
the master of a pool with the shared NFS SR as default SR; the others are
standalone unless ``pooled=True`` joins them to it at start.
"""

from __future__ import annotations

import copy
import json
import logging
import pathlib
import secrets
import shutil
import socket
import tempfile
import threading
import time
from typing import Any

from nova_hypervisors.simulators.xapi import bootstrap
from nova_hypervisors.simulators.xapi import datamodel
from nova_hypervisors.simulators.xapi import host as host_ops
from nova_hypervisors.simulators.xapi import pool as pool_ops
from nova_hypervisors.simulators.xapi import sessions
from nova_hypervisors.simulators.xapi import switches
from nova_hypervisors.simulators.xapi import tls as tls_files
from nova_hypervisors.simulators.xapi.control import ControlServer
from nova_hypervisors.simulators.xapi.disks import DiskStore
from nova_hypervisors.simulators.xapi.dispatch import Dispatcher
from nova_hypervisors.simulators.xapi.faults import Faults
from nova_hypervisors.simulators.xapi.store import ObjectStore
from nova_hypervisors.simulators.xapi.topology import SimHost
from nova_hypervisors.simulators.xapi.topology import Topology
from nova_hypervisors.simulators.xapi.wire import XapiServer

LOG = logging.getLogger(__name__)

MAX_HOSTS = 250
PORT_ATTEMPTS = 25


class DbView:
    """Read access to one pool's database, for test assertions.

    Records are copies in store form (ints are ``int``, datetimes are
    xapi's ``20240102T03:04:05Z`` strings).
    """

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def get_all_records(self, cls: str) -> dict[str, dict[str, Any]]:
        with self._store.lock:
            return copy.deepcopy(self._store.records(cls))

    def get_record(self, cls: str, ref: str) -> dict[str, Any]:
        with self._store.lock:
            return copy.deepcopy(self._store.get(cls, ref))

    def get_all(self, cls: str) -> list[str]:
        with self._store.lock:
            return self._store.refs(cls)

    def get_by_uuid(self, cls: str, uuid: str) -> str:
        with self._store.lock:
            return self._store.by_uuid(cls, uuid)

    def find(self, cls: str, **equals: Any) -> list[str]:
        with self._store.lock:
            return self._store.find(cls, **equals)

    def where(self, cls: str, expr: str) -> dict[str, dict[str, Any]]:
        with self._store.lock:
            refs = self._store.query(cls, expr)
            return {r: copy.deepcopy(self._store.get(cls, r)) for r in refs}

    @property
    def store(self) -> ObjectStore:
        """The live store, for tests that must seed many objects fast."""
        return self._store


class SimulatedPool:
    """Simulated XenServer hosts answering the real XenAPI client.

    ``SimulatedPool(hosts=3, state_dir=path, pooled=False, port=0)``;
    ``shared_sr=False`` gives every host only its local SR (a fresh pool:
    the master's local storage is the default SR); an ejected host is away
    ``eject_reboot_seconds``, a joiner ``join_restart_seconds``;
    ``guest_tools=False``: guests run no tools (no guest metrics, no
    clean shutdown or reboot);
    ``start()`` binds every host, ``stop()`` (idempotent) unbinds them.
    ``hosts`` are handles with ``name``, ``address``, ``url``, ``username``,
    ``password``, ``uuid`` and ``host_ref``; ``master`` is the current
    master of the first host's pool; ``faults`` injects failures;
    ``control_url`` serves the same faults over HTTP; ``db(host)`` reads a
    pool's database directly.
    """

    def __init__(
        self,
        hosts: int = 1,
        state_dir: str | None = None,
        pooled: bool = False,
        port: int = 0,
        host_memory_mib: int = 16384,
        host_cpus: int = 8,
        local_sr_gib: int = 200,
        shared_sr_gib: int = 1024,
        password: str | None = None,
        shared_sr: bool = True,
        tls: bool = True,
        http_port: int = 0,
        eject_reboot_seconds: float = 2.0,
        join_restart_seconds: float = 0.5,
        guest_tools: bool = True,
        ovsdb: dict[str, str] | None = None,
    ) -> None:
        if not 1 <= hosts <= MAX_HOSTS:
            raise ValueError('hosts must be between 1 and %d' % MAX_HOSTS)
        if not (0 <= port <= 65535 and 0 <= http_port <= 65535):
            raise ValueError('ports must be between 0 and 65535')
        if host_memory_mib < 1024:
            raise ValueError('host_memory_mib must be at least 1024')
        if host_cpus < 1:
            raise ValueError('host_cpus must be at least 1')
        self._own_state_dir = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix='xapi-sim-')
        self.requested_port = port
        self.requested_http_port = http_port
        self.faults = Faults()
        self.faults.bind(self)
        self.topology = Topology(
            model=datamodel.load(),
            disks=DiskStore(self.state_dir),
            faults=self.faults,
            host_memory_mib=host_memory_mib,
            host_cpus=host_cpus,
            local_sr_gib=local_sr_gib,
            shared_sr_gib=shared_sr_gib,
        )
        for index in range(hosts):
            self.topology.hosts.append(
                SimHost(
                    self.topology,
                    index,
                    '127.0.0.%d' % (index + 1),
                    password or secrets.token_urlsafe(12),
                )
            )
        self.topology.eject_reboot_seconds = eject_reboot_seconds
        self.topology.join_restart_seconds = join_restart_seconds
        self.topology.guest_tools = guest_tools
        if ovsdb:
            unknown = set(ovsdb) - {h.name for h in self.topology.hosts}
            if unknown:
                raise ValueError(
                    'no simulated host named %s' % ', '.join(sorted(unknown))
                )
            self.topology.switches = switches.HostSwitches(ovsdb)
        if tls:
            self.topology.tls = tls_files.Credentials(
                self.state_dir, [h.address for h in self.topology.hosts]
            )
        if not self._own_state_dir:
            self._keep_identity()
        for index, sim_host in enumerate(self.topology.hosts):
            state = bootstrap.new_pool(
                self.topology, sim_host, shared=shared_sr and index == 0
            )
            with state.store.lock:
                host_ops.refresh_memory(state.store, sim_host.host_ref)
        if pooled:
            master = self.topology.hosts[0]
            for joiner in self.topology.hosts[1:]:
                pool_ops.join_pool(self.topology, joiner, master.pool)
        self.dispatcher = Dispatcher(self.topology)
        self._control: ControlServer | None = None
        self._lock = threading.RLock()
        self._started = False
        self._stopped = False

    def _keep_identity(self) -> None:
        """Give hosts and SRs the uuids they had in this state directory.

        A real host keeps its uuid across restarts (Nova's compute node is
        keyed by it) and its SRs keep theirs (the disk files are named by
        them); the rest of the database lives in memory only.
        """
        path = pathlib.Path(self.state_dir) / 'identity.json'
        topology = self.topology
        if path.exists():
            known = json.loads(path.read_text())
            topology.shared_sr_uuid = known['shared_sr_uuid']
            # More hosts than last time: the new ones get new uuids.
            for host, saved in zip(
                topology.hosts, known['hosts'], strict=False
            ):
                host.uuid = saved['uuid']
                host.local_sr_uuid = saved['local_sr_uuid']
        known = {
            'shared_sr_uuid': topology.shared_sr_uuid,
            'hosts': [
                {'uuid': host.uuid, 'local_sr_uuid': host.local_sr_uuid}
                for host in topology.hosts
            ],
        }
        path.write_text(json.dumps(known, indent=2) + '\n')

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> SimulatedPool:
        with self._lock:
            if self._started:
                return self
            if self.topology.switches is not None:
                self.topology.switches.adopt()
                self.topology.switches.sync(self.topology)
            self._bind_all()
            self._control = ControlServer(self)
            self._control.start()
            self._started = True
            return self

    def _bind_all(self) -> None:
        """Every host's XenAPI port (https) and plain-http port.

        Each is the same on every address: ``HOST_IS_SLAVE`` carries only
        the master's address, and clients keep their own port.
        """
        fixed = self.requested_port and (
            self.requested_http_port or self.topology.tls is None
        )
        attempts = 1 if fixed else PORT_ATTEMPTS
        last_error: OSError | None = None
        for _ in range(attempts):
            port = self.requested_port or _free_port()
            http_port = port
            if self.topology.tls is not None:
                http_port = self.requested_http_port or _free_port()
                if http_port == port:
                    continue
            servers = []
            try:
                for sim_host in self.topology.hosts:
                    servers.append(self._servers_of(sim_host, port, http_port))
            except OSError as exc:
                last_error = exc
                for pair in servers:
                    for server in pair:
                        if server is not None:
                            server.server_close()
                continue
            self.topology.port = port
            self.topology.http_port = http_port
            for sim_host, pair in zip(
                self.topology.hosts, servers, strict=True
            ):
                self._serve(sim_host, *pair)
            return
        raise OSError(
            'cannot bind port %s on every simulated host address: %s'
            % (self.requested_port or 'any', last_error)
        )

    def _servers_of(self, sim_host: SimHost, port: int, http_port: int):
        """(XenAPI server, plain-http server or None), bound, not started."""
        sim_host.port = port
        sim_host.http_port = http_port
        tls = self.topology.tls
        if tls is None:
            return XapiServer(sim_host, self.dispatcher, port), None
        main = XapiServer(
            sim_host, self.dispatcher, port, tls.server_context()
        )
        if sim_host.https_only:
            return main, None
        try:
            plain = XapiServer(sim_host, self.dispatcher, http_port)
        except OSError:
            main.server_close()
            raise
        return main, plain

    @staticmethod
    def _serve(sim_host: SimHost, main, plain) -> None:
        sim_host.server = main
        sim_host.plain_server = plain
        sim_host.answering = True
        main.start()
        if plain is not None:
            plain.start()

    @property
    def ca_file(self) -> str | None:
        """The CA a client must trust (``[xenserver] ca_file``)."""
        tls = self.topology.tls
        return None if tls is None else tls.ca_file

    def client_context(self):
        """An SSL context trusting the simulator's CA, for test clients."""
        tls = self.topology.tls
        return None if tls is None else tls.client_context()

    def set_https_only(self, host: str | SimHost, value: bool = True) -> None:
        """``host.set_https_only``: close (or reopen) the plain-http port."""
        sim_host = self.host(host)
        with self._lock:
            sim_host.https_only = value
            if self.topology.tls is None or sim_host.server is None:
                return
            if value and sim_host.plain_server is not None:
                sim_host.plain_server.stop()
                sim_host.plain_server = None
            elif not value and sim_host.plain_server is None:
                plain = XapiServer(
                    sim_host, self.dispatcher, sim_host.http_port
                )
                sim_host.plain_server = plain
                plain.start()

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            servers = [h.server for h in self.topology.hosts if h.server]
            servers += [
                h.plain_server for h in self.topology.hosts if h.plain_server
            ]
            if self._control is not None:
                servers.append(self._control)
            # Each server notices a shutdown at its next poll: stop them
            # all at once rather than one poll interval after another.
            stoppers = [
                threading.Thread(target=server.stop, daemon=True)
                for server in servers
            ]
            for stopper in stoppers:
                stopper.start()
            for stopper in stoppers:
                stopper.join()
            for sim_host in self.topology.hosts:
                sim_host.server = None
                sim_host.plain_server = None
                sim_host.answering = False
            self._control = None
            if self.topology.switches is not None:
                try:
                    self.topology.switches.clear()
                except switches.SwitchError as exc:
                    LOG.warning('VIF ports left on a switch: %s', exc)
            if self._own_state_dir:
                shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> SimulatedPool:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- public state ------------------------------------------------------

    @property
    def hosts(self) -> list[SimHost]:
        return self.topology.hosts

    @property
    def master(self) -> SimHost:
        return self.topology.hosts[0].pool.master

    @property
    def port(self) -> int:
        return self.topology.port

    @property
    def control_url(self) -> str | None:
        return None if self._control is None else self._control.url

    def host(self, name_or_handle: str | SimHost) -> SimHost:
        if isinstance(name_or_handle, SimHost):
            return name_or_handle
        return self.topology.host_by_name(name_or_handle)

    def db(self, host: str | SimHost | None = None) -> DbView:
        """The database of the pool ``host`` (default: host 1) is in."""
        return DbView(self.host(host or self.hosts[0]).pool.store)

    def describe(self) -> dict[str, Any]:
        """What the CLI prints: every host's endpoint and credentials."""
        return {
            'hosts': [
                {
                    'name': h.name,
                    'address': h.address,
                    'url': h.url,
                    'http_url': h.http_url,
                    'username': h.username,
                    'password': h.password,
                    'uuid': h.uuid,
                    'master': h.is_master,
                    'pool_master': h.pool.master.name,
                }
                for h in self.hosts
            ],
            'control_url': self.control_url,
            'ca_file': self.ca_file,
            'state_dir': self.state_dir,
        }

    def set_product_version(self, host: str | SimHost, version: str) -> None:
        """Give a host another product version (for pool.join checks)."""
        sim_host = self.host(host)
        sim_host.product_version = version
        store = sim_host.pool.store
        with store.lock:
            store.set(
                'host',
                sim_host.host_ref,
                'software_version',
                bootstrap.software_version(sim_host),
            )

    # -- host-level faults (called through self.faults) --------------------

    def expire_sessions(self) -> int:
        expired = 0
        for state in self.topology.pools():
            with state.store.lock:
                expired += sessions.expire_all(state.store)
        for sim_host in self.hosts:
            expired += len(sim_host.local_sessions)
            sim_host.local_sessions.clear()
        return expired

    def stop_host(self, name: str | SimHost) -> None:
        sim_host = self.host(name)
        with self._lock:
            if sim_host.server is None:
                return
            sim_host.server.stop()
            if sim_host.plain_server is not None:
                sim_host.plain_server.stop()
            sim_host.server = None
            sim_host.plain_server = None
            sim_host.answering = False
            sim_host.local_sessions.clear()
        store = sim_host.pool.store
        with store.lock:
            if sim_host.host_ref is not None:
                host_ops.set_live(store, sim_host.host_ref, False)

    def start_host(self, name: str | SimHost) -> None:
        sim_host = self.host(name)
        with self._lock:
            if sim_host.server is not None:
                return
            if not self._started:
                raise RuntimeError('start the simulator first')
            if sim_host.pool.master is not sim_host:
                # A master that died and was replaced comes back as a slave
                # of the new master (as after pool.recover_slaves).
                sim_host.master_address = sim_host.pool.master.address
            self._serve(
                sim_host,
                *self._servers_of(
                    sim_host, self.topology.port, self.topology.http_port
                ),
            )
        store = sim_host.pool.store
        with store.lock:
            if sim_host.host_ref is not None:
                host_ops.set_live(store, sim_host.host_ref, True)

    def restart_host(
        self, name: str | SimHost, seconds: float, grace: float = 0.0
    ) -> None:
        """Away for ``seconds`` (a reboot, a toolstack restart), then back.

        With ``grace`` the host goes a moment later, so that the reply of
        the call that caused it (on the host itself) still goes out;
        without, it is gone when this returns.
        """
        sim_host = self.host(name)
        if not grace:
            self.stop_host(sim_host)

        def away() -> None:
            if grace:
                time.sleep(grace)
                with self._lock:
                    if self._stopped:
                        return
                self.stop_host(sim_host)
            time.sleep(seconds)
            with self._lock:
                if self._stopped:
                    return
            self.start_host(sim_host)

        threading.Thread(
            target=away,
            name='xapi-sim-restart-%s' % sim_host.name,
            daemon=True,
        ).start()

    def kill_master(self) -> SimHost:
        """The master of host 1's pool dies (stops answering for good)."""
        master = self.master
        self.stop_host(master)
        return master


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
