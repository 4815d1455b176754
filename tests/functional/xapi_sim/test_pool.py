"""Pools of real network hosts: masters, slaves, joins and failover."""

from __future__ import annotations

import time

import pytest

from tests.functional.xapi_sim.helpers import MIB
from tests.functional.xapi_sim.helpers import add_vif
from tests.functional.xapi_sim.helpers import attach
from tests.functional.xapi_sim.helpers import client as xapi_client
from tests.functional.xapi_sim.helpers import create_vdi
from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import default_sr
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import local_sr
from tests.functional.xapi_sim.helpers import login
from tests.functional.xapi_sim.helpers import management_network


def test_slaves_refuse_logins_naming_the_master(pooled):
    master, slave = pooled.hosts[0], pooled.hosts[1]
    client = xapi_client(slave)
    assert failure_of(
        client.xenapi.login_with_password, slave.username, slave.password
    ) == ['HOST_IS_SLAVE', master.address]
    # The address alone suffices: the port is the same on every host.
    assert slave.url.replace(slave.address, master.address) == master.url
    assert not slave.is_master and pooled.master is master


def test_a_pool_sees_all_hosts_and_shares_its_default_sr(pooled):
    xapi = login(pooled.master).xenapi
    hosts = xapi.host.get_all_records()
    assert {h['address'] for h in hosts.values()} == {
        h.address for h in pooled.hosts
    }
    assert {h.host_ref for h in pooled.hosts} == set(hosts)
    shared = default_sr(xapi)
    assert xapi.SR.get_shared(shared) is True
    pbd_hosts = {xapi.PBD.get_host(p) for p in xapi.SR.get_PBDs(shared)}
    assert pbd_hosts == set(hosts)
    locals_ = [
        sr for sr in xapi.SR.get_all_records().values() if sr['type'] == 'ext'
    ]
    assert len(locals_) == 3
    assert (
        xapi.pool.get_master(xapi.pool.get_all()[0]) == pooled.master.host_ref
    )
    dom0s = [
        v for v in xapi.VM.get_all_records().values() if v['is_control_domain']
    ]
    assert len(dom0s) == 3


def test_join_merges_the_joiner_and_invalidates_its_sessions(sim):
    master, joiner = sim.hosts[0], sim.hosts[1]
    joiner_session = login(joiner)
    jx = joiner_session.xenapi
    vm = create_vm(jx, 'brought-along')
    uuid = jx.VM.get_uuid(vm)
    jx.pool.join(master.address, master.username, master.password)
    assert not joiner.is_master
    # Only the master authenticates: the joiner's API password is its.
    assert joiner.password == master.password != joiner.local_password
    # The client re-logs in on SESSION_INVALID and meets HOST_IS_SLAVE.
    assert failure_of(jx.VM.get_all) == ['HOST_IS_SLAVE', master.address]
    xapi = login(master).xenapi
    assert len(xapi.host.get_all()) == 2
    moved = xapi.VM.get_by_uuid(uuid)
    assert moved != vm
    assert xapi.VM.get_name_label(moved) == 'brought-along'
    pbds = xapi.SR.get_PBDs(default_sr(xapi))
    assert joiner.host_ref in {xapi.PBD.get_host(p) for p in pbds}


def test_join_preconditions(sim):
    master, joiner, third = sim.hosts
    jx = login(joiner).xenapi
    assert failure_of(
        jx.pool.join, master.address, 'root', 'wrong-password'
    ) == ['SESSION_AUTHENTICATION_FAILED']
    assert failure_of(
        jx.pool.join, joiner.address, 'root', joiner.password
    ) == ['OPERATION_NOT_ALLOWED', 'Host cannot become slave of itself']
    vm = create_vm(jx)
    jx.VM.start(vm, False, False)
    assert failure_of(
        jx.pool.join, master.address, 'root', master.password
    ) == ['JOINING_HOST_CANNOT_HAVE_RUNNING_OR_SUSPENDED_VMS']
    jx.VM.hard_shutdown(vm)
    sim.set_product_version(joiner, '8.2.1')
    assert failure_of(
        jx.pool.join, master.address, 'root', master.password
    ) == ['POOL_JOINING_HOST_MUST_HAVE_SAME_PRODUCT_VERSION']
    # The master has the shared SR, so it cannot join anybody.
    mx = login(master).xenapi
    assert failure_of(mx.pool.join, third.address, 'root', third.password) == [
        'JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS'
    ]
    sim.faults.stop_host(master.name)
    assert failure_of(
        jx.pool.join, master.address, 'root', master.password
    ) == ['JOINING_HOST_CONNECTION_FAILED']
    sim.faults.start_host(master.name)
    jx.pool.join_force(master.address, 'root', master.password)
    assert joiner.pool is master.pool
    tx = login(third).xenapi
    assert failure_of(
        tx.pool.join, joiner.address, 'root', master.password
    ) == ['HOST_IS_SLAVE', master.address]


def test_a_master_of_other_hosts_cannot_join(sim):
    first, second, third = sim.hosts
    login(third).xenapi.pool.join(second.address, 'root', second.password)
    xapi = login(second).xenapi
    assert failure_of(
        xapi.pool.join, first.address, 'root', first.password
    ) == ['JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS']
    assert failure_of(
        xapi.pool.join, third.address, 'root', second.password
    ) == ['OPERATION_NOT_ALLOWED', 'Host is already part of a pool']


def test_eject_makes_a_fresh_standalone_host(pooled):
    xapi = login(pooled.master).xenapi
    leaving = pooled.hosts[2]
    vm = create_vm(xapi)
    xapi.VM.start_on(vm, leaving.host_ref, False, False)
    assert failure_of(xapi.pool.eject, leaving.host_ref) == [
        'OPERATION_NOT_ALLOWED',
        'VM resident on host',
    ]
    assert failure_of(xapi.pool.eject, pooled.master.host_ref)[0] == (
        'OPERATION_NOT_ALLOWED'
    )
    xapi.VM.hard_shutdown(vm)
    old_ref = leaving.host_ref
    xapi.pool.eject(old_ref)
    assert old_ref not in xapi.host.get_all()
    assert leaving.is_master
    assert leaving.password == leaving.local_password
    # It reboots (xapi_pool.ml eject_self): refused until it is back.
    with pytest.raises(OSError):
        login(leaving)
    deadline = time.monotonic() + 10
    while True:
        try:
            own = login(leaving).xenapi
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert len(own.host.get_all()) == 1
    assert own.SR.get_type(default_sr(own)) == 'ext'


def test_designate_new_master_hands_over(pooled):
    old, new = pooled.hosts[0], pooled.hosts[1]
    client = login(old)
    client.xenapi.pool.designate_new_master(new.host_ref)
    assert pooled.master is new
    assert failure_of(client.xenapi.VM.get_all) == [
        'HOST_IS_SLAVE',
        new.address,
    ]
    xapi = login(new).xenapi
    pool = xapi.pool.get_all()[0]
    assert xapi.pool.get_master(pool) == new.host_ref
    assert failure_of(
        xapi_client(pooled.hosts[2]).xenapi.login_with_password,
        'root',
        new.password,
    ) == ['HOST_IS_SLAVE', new.address]


def test_emergency_transition_after_the_master_died(pooled):
    old, survivor, other = pooled.hosts
    killed = pooled.faults.kill_master()
    assert killed is old
    with pytest.raises(OSError):
        login(old)
    local = xapi_client(survivor)
    local.slave_local_login_with_password('root', survivor.local_password)
    local.xenapi.pool.emergency_transition_to_master()
    local.logout()
    xapi = login(survivor).xenapi
    assert pooled.master is survivor
    metrics = xapi.host.get_metrics(old.host_ref)
    assert xapi.host_metrics.get_live(metrics) is False
    # The other slave still points at the dead master until recovered.
    assert failure_of(
        xapi_client(other).xenapi.login_with_password,
        'root',
        other.password,
    ) == ['HOST_IS_SLAVE', old.address]
    assert xapi.pool.recover_slaves() == [other.host_ref]
    assert failure_of(
        xapi_client(other).xenapi.login_with_password,
        'root',
        other.password,
    ) == ['HOST_IS_SLAVE', survivor.address]
    pooled.faults.start_host(old.name)
    assert failure_of(
        xapi_client(old).xenapi.login_with_password,
        'root',
        old.password,
    ) == ['HOST_IS_SLAVE', survivor.address]


def test_pool_migrate_moves_a_running_vm_on_shared_storage(pooled):
    xapi = login(pooled.master).xenapi
    vm = create_vm(xapi, memory=256 * MIB)
    attach(xapi, vm, create_vdi(xapi, default_sr(xapi)))
    xapi.VM.start_on(vm, pooled.hosts[0].host_ref, False, False)
    source, target = pooled.hosts[0].host_ref, pooled.hosts[1].host_ref
    free = int(xapi.host.compute_free_memory(target))
    xapi.VM.pool_migrate(vm, target, {'live': 'true'})
    assert xapi.VM.get_resident_on(vm) == target
    assert vm in xapi.host.get_resident_VMs(target)
    assert vm not in xapi.host.get_resident_VMs(source)
    assert int(xapi.host.compute_free_memory(target)) < free
    assert xapi.VM.get_power_state(vm) == 'Running'
    halted = create_vm(xapi)
    assert failure_of(xapi.VM.pool_migrate, halted, target, {}) == [
        'VM_BAD_POWER_STATE',
        halted,
        'running',
        'halted',
    ]


def test_pool_migrate_refuses_local_disks(pooled):
    xapi = login(pooled.master).xenapi
    vm = create_vm(xapi)
    disk = create_vdi(xapi, local_sr(xapi, pooled.hosts[0].host_ref))
    attach(xapi, vm, disk)
    xapi.VM.start_on(vm, pooled.hosts[0].host_ref, False, False)
    target = pooled.hosts[1].host_ref
    assert failure_of(xapi.VM.pool_migrate, vm, target, {}) == [
        'VM_REQUIRES_SR',
        vm,
        xapi.VDI.get_SR(disk),
    ]


def test_migrate_send_moves_a_vm_to_another_pool(sim):
    source, dest = login(sim.hosts[1]).xenapi, login(sim.hosts[2]).xenapi
    vm = create_vm(source, 'traveller')
    disk = create_vdi(source, local_sr(source), 2 * MIB)
    attach(source, vm, disk)
    vif = add_vif(source, vm, management_network(source))
    source.VM.start(vm, False, False)
    dest_host = dest.host.get_all()[0]
    receipt = dest.host.migrate_receive(
        dest_host, management_network(dest), {}
    )
    assert set(receipt) >= {'session_id', 'host', 'master', 'xenops', 'SM'}
    assert failure_of(
        source.VM.migrate_send, vm, receipt, True, {}, {}, {}
    ) == ['VDI_NOT_IN_MAP', disk]
    new_vm = source.VM.migrate_send(
        vm,
        receipt,
        True,
        {disk: local_sr(dest)},
        {vif: management_network(dest)},
        {},
    )
    assert failure_of(source.VM.get_record, vm)[0] == 'HANDLE_INVALID'
    record = dest.VM.get_record(new_vm)
    assert record['name_label'] == 'traveller'
    assert record['power_state'] == 'Running'
    assert record['resident_on'] == dest_host
    new_disk = dest.VBD.get_VDI(record['VBDs'][0])
    assert dest.VDI.get_SR(new_disk) == local_sr(dest)
    assert failure_of(source.VDI.get_record, disk)[0] == 'HANDLE_INVALID'


def test_evacuate_moves_every_guest_off_a_host(pooled):
    xapi = login(pooled.master).xenapi
    leaving = pooled.hosts[1].host_ref
    vms = [create_vm(xapi, 'e%d' % i, memory=256 * MIB) for i in range(3)]
    for vm in vms:
        xapi.VM.start_on(vm, leaving, False, False)
    assert xapi.host.get_vms_which_prevent_evacuation(leaving) == {}
    xapi.host.disable(leaving)
    xapi.host.evacuate(leaving)
    for vm in vms:
        assert xapi.VM.get_resident_on(vm) != leaving
        assert xapi.VM.get_power_state(vm) == 'Running'
    assert xapi.host.get_enabled(leaving) is False


def test_hosts_and_srs_keep_their_uuids_across_restarts(tmp_path):
    """A restarted host is the same host: Nova keys its node by the uuid."""
    from nova_hypervisors.simulators.xapi import SimulatedPool

    def identity():
        with SimulatedPool(hosts=2, state_dir=str(tmp_path)) as sim:
            srs = sim.db(sim.hosts[0]).get_all_records('SR').values()
            return (
                [host.uuid for host in sim.hosts],
                sorted(sr['uuid'] for sr in srs),
            )

    assert identity() == identity()
