"""Each simulated host's Open vSwitch: where a plugged VIF really appears.

On a XenServer host with the ``openvswitch`` network backend, xapi's vif
hotplug script (xen-api ``scripts/vif``, ``add_to_bridge``) adds the
domain's backend device ``vif<domid>.<device>`` to the bridge of the VIF's
network, with the external ids ``xs-vm-uuid``, ``xs-vif-uuid``,
``xs-network-uuid`` and ``attached-mac``; dom0's ``ovs-xapi-sync`` (Open
vSwitch's ``xenserver/usr_share_openvswitch_scripts_ovs-xapi-sync``) adds
``iface-id``, the VIF's ``other_config:nicira-iface-id`` or else its uuid,
and ``iface-status``.  A Neutron Open vSwitch agent watching that switch
binds the port whose id is the ``iface-id``.  When the domain goes, or the
VIF is unplugged, the script removes the port again.

Given each host's ovsdb socket, the simulator does the same: after every
call it compares the VIFs that are plugged (``currently_attached`` on a
running VM) with the ports it has on each host's switch, and adds or
removes the difference in one ``ovs-vsctl`` transaction per host.  So
``VM.start``, ``VIF.plug``, a live migration (new domid on the new host),
``VM.clean_shutdown`` and ``VIF.unplug`` answer only once the switch
shows it, as on a real host.  A bridge of an unmanaged network must exist
on the host's switch (``BRIDGE_NOT_AVAILABLE`` otherwise).
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import threading

from nova_hypervisors.simulators import openvswitch

LOG = logging.getLogger(__name__)

#: The external ids that mark a port as a VIF's (set by xapi's script).
VIF_ID = 'xs-vif-uuid'


class SwitchError(Exception):
    """ovs-vsctl failed: the switch is unreachable or refused a change."""


@dataclasses.dataclass(frozen=True)
class Port:
    bridge: str
    external_ids: tuple[tuple[str, str], ...]


class HostSwitches:
    """The Open vSwitch databases of some hosts, by host name."""

    def __init__(self, ovsdb: dict[str, str]) -> None:
        self.ovsdb = dict(ovsdb)
        #: host name -> port name -> Port, as last put on that switch.
        self.ports: dict[str, dict[str, Port]] = {}
        #: A pool's database -> its generation when last synced: a call
        #: that changed nothing (every read) costs no scan.
        self._synced: dict[object, int] = {}
        self.lock = threading.Lock()

    # -- ovs-vsctl ----------------------------------------------------------

    def _run(self, host: str, *args: str, answers=(0,)) -> tuple[int, str]:
        """(exit status, output) of ovs-vsctl; any status but ``answers``
        is a SwitchError."""
        done = subprocess.run(
            openvswitch.vsctl_argv(self.ovsdb[host]) + list(args),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode not in answers:
            raise SwitchError(
                f'ovs-vsctl on {host}: {done.stderr.strip() or done.stdout}'
            )
        return done.returncode, done.stdout

    def bridge_exists(self, host: str, bridge: str) -> bool:
        """Whether ``bridge`` is on the host's switch (``br-exists``
        answers 2 for a missing one)."""
        status, _ = self._run(host, 'br-exists', bridge, answers=(0, 2))
        return status == 0

    def adopt(self) -> None:
        """Take over the VIF ports a previous run left on the switches, so
        the first sync removes those no VIF wants any more."""
        with self.lock:
            for host in self.ovsdb:
                found: dict[str, Port] = {}
                _, listing = self._run(
                    host,
                    '--format=csv',
                    '--data=bare',
                    '--no-headings',
                    '--columns=name',
                    'find',
                    'Interface',
                    f'external_ids:{VIF_ID}!=""',
                )
                for name in listing.split():
                    # Bridge unknown, ids irrelevant: anything differs
                    # from what a VIF wants, so it is replaced or removed.
                    found[name] = Port('', ())
                self.ports[host] = found

    # -- reconciling --------------------------------------------------------

    def sync(self, topology) -> None:
        """Make every host's switch show exactly the plugged VIFs."""
        with self.lock:
            wanted: dict[str, dict[str, Port]] = {}
            seen: dict[object, int] = {}
            for pool in topology.pools():
                store = pool.store
                # A pool busy in another call (a joiner waiting for its
                # master's answer holds its own database) is left to that
                # call, which syncs when it ends: waiting here could wait
                # for this very call.
                if not store.lock.acquire(blocking=False):
                    continue
                try:
                    if self._synced.get(store) == store.generation:
                        continue
                    seen[store] = store.generation
                    for member in pool.members:
                        if member.name in self.ovsdb:
                            wanted.setdefault(member.name, {})
                    _collect(store, topology, wanted)
                finally:
                    store.lock.release()
            for host, ports in wanted.items():
                self._apply(host, ports)
            self._synced.update(seen)

    def clear(self) -> None:
        """Every VIF port off the switches: the simulated hosts stop,
        and with them their domains."""
        with self.lock:
            for host in self.ovsdb:
                self._apply(host, {})
            self._synced.clear()

    def _apply(self, host: str, wanted: dict[str, Port]) -> None:
        have = self.ports.setdefault(host, {})
        gone = [name for name in have if wanted.get(name) != have[name]]
        added = [name for name in wanted if have.get(name) != wanted[name]]
        if not gone and not added:
            return
        args: list[str] = []
        for name in gone:
            args += ['--', '--if-exists', 'del-port', name]
        for name in added:
            port = wanted[name]
            args += ['--', '--may-exist', 'add-port', port.bridge, name]
            args += ['--', 'set', 'Interface', name]
            args += [f'external_ids:{k}="{v}"' for k, v in port.external_ids]
        self._run(host, *args)
        for name in gone:
            have.pop(name, None)
        for name in added:
            have[name] = wanted[name]
        LOG.info(
            'switch of %s: added %s, removed %s',
            host,
            ', '.join(added) or 'nothing',
            ', '.join(gone) or 'nothing',
        )


def _collect(store, topology, wanted: dict[str, dict[str, Port]]) -> None:
    """The ports the pool of ``store`` wants, added to ``wanted``."""
    for vif in store.records('VIF').values():
        if not vif['currently_attached'] or not store.exists('VM', vif['VM']):
            continue
        vm = store.get('VM', vif['VM'])
        if vm['domid'] < 0 or not store.exists('host', vm['resident_on']):
            continue
        address = store.get('host', vm['resident_on'])['address']
        sim_host = topology.host_by_address(address)
        if sim_host is None or sim_host.name not in wanted:
            continue
        network = store.get('network', vif['network'])
        iface_id = (vif['other_config'] or {}).get('nicira-iface-id')
        ids = (
            ('attached-mac', vif['MAC']),
            ('iface-id', iface_id or vif['uuid']),
            ('iface-status', 'active'),
            ('xs-network-uuid', network['uuid']),
            ('xs-vif-uuid', vif['uuid']),
            ('xs-vm-uuid', vm['uuid']),
        )
        name = 'vif%d.%s' % (vm['domid'], vif['device'])
        wanted[sim_host.name][name] = Port(network['bridge'], ids)
