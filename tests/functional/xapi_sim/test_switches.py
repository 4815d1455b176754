"""Plugged VIFs on each simulated host's real Open vSwitch.

What a XenServer host with the openvswitch backend does, and these tests
hold the simulator to (xen-api ``scripts/vif``, ``add_to_bridge`` and
``remove_from_bridge``; Open vSwitch's ``ovs-xapi-sync`` for ``iface-id``
and ``iface-status``; the unmanaged-network check of xen-api
``ocaml/xapi/xapi_network.ml``):

* a running VM's plugged VIF is the port ``vif<domid>.<device>`` of its
  network's bridge on the switch of the host it runs on, with the external
  ids ``xs-vm-uuid``, ``xs-vif-uuid``, ``xs-network-uuid``,
  ``attached-mac`` and ``iface-id`` (the VIF's ``nicira-iface-id``);
* unplugging the VIF or stopping the VM removes the port; a live
  migration moves it to the new host's switch under the new domid;
* a VIF on an unmanaged network whose bridge the host's switch lacks
  cannot be plugged (``BRIDGE_NOT_AVAILABLE``).
"""

from __future__ import annotations

import subprocess
import time

import pytest

from nova_hypervisors.simulators import openvswitch
from nova_hypervisors.simulators.xapi import SimulatedPool
from tests.functional.xapi_sim.helpers import MIB
from tests.functional.xapi_sim.helpers import attach
from tests.functional.xapi_sim.helpers import create_vdi
from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import default_sr
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import login

PORT_ID = '5ad0b1d8-6f0e-4f1b-9a43-0b5e2b5c1d11'


class RunningSwitch:
    """ovsdb-server and ovs-vswitchd of one host, for one test."""

    def __init__(self, root) -> None:
        missing = openvswitch.missing_programs()
        assert not missing, f'install Debian {openvswitch.PACKAGE}: {missing}'
        self.switch = openvswitch.Switch(root)
        self.switch.create()
        env = dict(self.switch.environment(), PATH='/usr/sbin:/usr/bin')
        self.processes = [
            subprocess.Popen(
                self.switch.ovsdb_server_argv(),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        deadline = time.monotonic() + 20
        while not self.switch.socket.exists():
            assert time.monotonic() < deadline, 'ovsdb-server did not start'
            time.sleep(0.05)
        self.switch.vsctl('init', wait=False)
        self.processes.append(
            subprocess.Popen(
                self.switch.vswitchd_argv(),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        self.switch.add_bridge('br-int')

    def interfaces(self) -> dict[str, dict]:
        """name -> {'bridge', 'ofport', 'external_ids'} of VIF ports."""
        result = {}
        for bridge in self.switch.vsctl('list-br').split():
            for name in self.switch.vsctl('list-ports', bridge).split():
                ids = self.switch.vsctl(
                    'get', 'Interface', name, 'external_ids'
                )
                ofport = self.switch.vsctl('get', 'Interface', name, 'ofport')
                result[name] = {
                    'bridge': bridge,
                    'ofport': int(ofport),
                    'external_ids': _parse_map(ids),
                }
        return result

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            process.wait(timeout=20)


def _parse_map(text: str) -> dict[str, str]:
    text = text.strip().strip('{}')
    result = {}
    for item in filter(None, (part.strip() for part in text.split(', '))):
        key, _, value = item.partition('=')
        result[key.strip('"')] = value.strip('"')
    return result


@pytest.fixture
def switches(tmp_path):
    running = {
        name: RunningSwitch(tmp_path / name)
        for name in ('xenserver-1', 'xenserver-2')
    }
    yield running
    for switch in running.values():
        switch.stop()


@pytest.fixture
def pooled(tmp_path, switches):
    ovsdb = {name: str(s.switch.socket) for name, s in switches.items()}
    with SimulatedPool(
        hosts=2, state_dir=str(tmp_path / 'state'), pooled=True, ovsdb=ovsdb
    ) as pool:
        yield pool


def _integration_network(xapi, bridge: str = 'br-int') -> str:
    """An unmanaged network on Open vSwitch's bridge, as Nova makes it."""
    return xapi.network.create(
        {
            'name_label': bridge,
            'name_description': '',
            'MTU': '1500',
            'other_config': {},
            'bridge': bridge,
            'managed': False,
        }
    )


def _vm_with_vif(xapi, network: str, device: str = '0') -> tuple[str, str]:
    vm = create_vm(xapi, memory=256 * MIB)
    attach(xapi, vm, create_vdi(xapi, default_sr(xapi)))
    vif = xapi.VIF.create(
        {
            'device': device,
            'network': network,
            'VM': vm,
            'MAC': 'fa:16:3e:00:00:01',
            'MTU': '1500',
            'other_config': {'nicira-iface-id': PORT_ID},
            'qos_algorithm_type': '',
            'qos_algorithm_params': {},
        }
    )
    return vm, vif


def test_a_started_vm_has_its_vif_on_its_hosts_switch(pooled, switches):
    xapi = login(pooled.master).xenapi
    network = _integration_network(xapi)
    vm, vif = _vm_with_vif(xapi, network)
    assert switches['xenserver-1'].interfaces() == {}
    xapi.VM.start_on(vm, pooled.hosts[0].host_ref, False, False)
    domid = xapi.VM.get_domid(vm)
    ports = switches['xenserver-1'].interfaces()
    name = f'vif{domid}.0'
    assert list(ports) == [name]
    assert ports[name]['bridge'] == 'br-int'
    assert ports[name]['ofport'] > 0
    assert ports[name]['external_ids'] == {
        'attached-mac': 'fa:16:3e:00:00:01',
        'iface-id': PORT_ID,
        'iface-status': 'active',
        'xs-network-uuid': xapi.network.get_uuid(network),
        'xs-vif-uuid': xapi.VIF.get_uuid(vif),
        'xs-vm-uuid': xapi.VM.get_uuid(vm),
    }
    assert switches['xenserver-2'].interfaces() == {}

    xapi.VIF.unplug(vif)
    assert switches['xenserver-1'].interfaces() == {}
    xapi.VIF.plug(vif)
    assert list(switches['xenserver-1'].interfaces()) == [name]

    xapi.VM.hard_shutdown(vm)
    assert switches['xenserver-1'].interfaces() == {}


def test_live_migration_moves_the_port_to_the_new_hosts_switch(
    pooled, switches
):
    xapi = login(pooled.master).xenapi
    vm, _ = _vm_with_vif(xapi, _integration_network(xapi))
    xapi.VM.start_on(vm, pooled.hosts[0].host_ref, False, False)
    xapi.VM.pool_migrate(vm, pooled.hosts[1].host_ref, {'live': 'true'})
    assert switches['xenserver-1'].interfaces() == {}
    ports = switches['xenserver-2'].interfaces()
    assert list(ports) == [f'vif{xapi.VM.get_domid(vm)}.0']
    assert (
        ports[f'vif{xapi.VM.get_domid(vm)}.0']['external_ids']['iface-id']
        == PORT_ID
    )


def test_calls_that_change_nothing_ask_no_switch(
    pooled, switches, monkeypatch
):
    """Reads (Nova's periodic tasks make many) run no ovs-vsctl; a
    change does."""
    xapi = login(pooled.master).xenapi
    vm, _ = _vm_with_vif(xapi, _integration_network(xapi))
    xapi.VM.start_on(vm, pooled.hosts[0].host_ref, False, False)
    calls = []
    real_run = subprocess.run

    def counting_run(argv, *args, **kwargs):
        calls.append(argv)
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, 'run', counting_run)
    xapi.VM.get_all_records()
    xapi.VIF.get_all_records()
    assert calls == []
    xapi.VM.hard_shutdown(vm)
    assert calls  # a change is followed onto the switch


def test_a_bridge_the_hosts_switch_lacks_cannot_be_plugged(pooled, switches):
    xapi = login(pooled.master).xenapi
    vm, _ = _vm_with_vif(xapi, _integration_network(xapi, 'br-missing'))
    details = failure_of(
        xapi.VM.start_on, vm, pooled.hosts[0].host_ref, False, False
    )
    assert details == ['BRIDGE_NOT_AVAILABLE', 'br-missing']
    assert xapi.VM.get_power_state(vm) == 'Halted'


def test_ports_of_a_stopped_simulator_are_removed_and_stale_ones_adopted(
    tmp_path, switches
):
    """A switch outlives the simulator: its VIF ports go when the hosts
    stop, and ports a crashed run left are removed at the next start."""
    ovsdb = {name: str(s.switch.socket) for name, s in switches.items()}
    switch = switches['xenserver-1'].switch
    switch.vsctl(
        'add-port', 'br-int', 'vif99.0', '--', 'set', 'Interface',
        'vif99.0', 'external_ids:xs-vif-uuid=left-over',
    )  # fmt: skip
    with SimulatedPool(
        hosts=2, state_dir=str(tmp_path / 'state'), pooled=True, ovsdb=ovsdb
    ) as pool:
        assert switches['xenserver-1'].interfaces() == {}
        xapi = login(pool.master).xenapi
        vm, _ = _vm_with_vif(xapi, _integration_network(xapi))
        xapi.VM.start_on(vm, pool.hosts[0].host_ref, False, False)
        assert switches['xenserver-1'].interfaces()
    assert switches['xenserver-1'].interfaces() == {}


def test_a_host_joins_a_pool_while_its_switch_is_watched(tmp_path, switches):
    """pool.join is a call from the joiner to its master, made while the
    joiner's database is busy: following the master's answer onto the
    switches must not wait for that database."""
    ovsdb = {name: str(s.switch.socket) for name, s in switches.items()}
    with SimulatedPool(
        hosts=2, state_dir=str(tmp_path / 'state'), ovsdb=ovsdb
    ) as sim:
        master, joiner = sim.hosts
        login(joiner).xenapi.pool.join(
            master.address, master.username, master.password
        )
        xapi = login(master).xenapi
        assert len(xapi.host.get_all()) == 2
        vm, _ = _vm_with_vif(xapi, _integration_network(xapi))
        xapi.VM.start_on(vm, joiner.host_ref, False, False)
        assert list(switches['xenserver-2'].interfaces()) == [
            f'vif{xapi.VM.get_domid(vm)}.0'
        ]


def test_an_unknown_host_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match='xenserver-9'):
        SimulatedPool(
            hosts=1,
            state_dir=str(tmp_path / 'state'),
            ovsdb={'xenserver-9': str(tmp_path / 'db.sock')},
        )
