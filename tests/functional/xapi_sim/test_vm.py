"""VMs: the power-state machine, memory accounting, copies and snapshots."""

from __future__ import annotations

import pytest

from nova_hypervisors.simulators.xapi import SimulatedPool
from tests.functional.xapi_sim.helpers import GIB
from tests.functional.xapi_sim.helpers import MIB
from tests.functional.xapi_sim.helpers import add_vif
from tests.functional.xapi_sim.helpers import attach
from tests.functional.xapi_sim.helpers import create_vdi
from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import default_sr
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import local_sr
from tests.functional.xapi_sim.helpers import login
from tests.functional.xapi_sim.helpers import management_network


def this_host(session) -> str:
    return session.xenapi.session.get_this_host(session._session)


def test_full_power_cycle(xapi):
    vm = create_vm(xapi)
    power = xapi.VM.get_power_state
    assert power(vm) == 'Halted'
    xapi.VM.start(vm, False, False)
    assert power(vm) == 'Running'
    xapi.VM.pause(vm)
    assert power(vm) == 'Paused'
    xapi.VM.unpause(vm)
    xapi.VM.suspend(vm)
    assert power(vm) == 'Suspended'
    assert xapi.VM.get_suspend_VDI(vm) != 'OpaqueRef:NULL'
    xapi.VM.resume(vm, False, False)
    assert power(vm) == 'Running'
    assert xapi.VM.get_suspend_VDI(vm) == 'OpaqueRef:NULL'
    xapi.VM.clean_reboot(vm)
    xapi.VM.hard_reboot(vm)
    assert power(vm) == 'Running'
    xapi.VM.clean_shutdown(vm)
    assert power(vm) == 'Halted'
    xapi.VM.start(vm, True, False)
    assert power(vm) == 'Paused'
    xapi.VM.hard_shutdown(vm)
    assert power(vm) == 'Halted'


@pytest.mark.parametrize(
    ('operation', 'expected'),
    [
        ('clean_shutdown', 'running'),
        ('clean_reboot', 'running'),
        ('hard_shutdown', 'paused, suspended, running'),
        ('hard_reboot', 'paused, running'),
        ('pause', 'running'),
        ('unpause', 'paused'),
        ('suspend', 'running'),
    ],
)
def test_halted_vm_refuses_with_lower_case_states(xapi, operation, expected):
    vm = create_vm(xapi)
    assert failure_of(getattr(xapi.VM, operation), vm) == [
        'VM_BAD_POWER_STATE',
        vm,
        expected,
        'halted',
    ]


def test_running_vm_cannot_start_or_be_destroyed(xapi):
    vm = create_vm(xapi)
    xapi.VM.start(vm, False, False)
    assert failure_of(xapi.VM.start, vm, False, False) == [
        'VM_BAD_POWER_STATE',
        vm,
        'halted',
        'running',
    ]
    assert failure_of(xapi.VM.destroy, vm) == [
        'VM_BAD_POWER_STATE',
        vm,
        'halted, suspended',
        'running',
    ]
    assert failure_of(xapi.VM.resume, vm, False, False) == [
        'VM_BAD_POWER_STATE',
        vm,
        'suspended',
        'running',
    ]


def test_templates_do_not_start(xapi):
    vm = create_vm(xapi, is_a_template=True)
    assert failure_of(xapi.VM.start, vm, False, False) == [
        'VM_IS_TEMPLATE',
        vm,
    ]


def test_blocked_operations_are_refused(xapi):
    vm = create_vm(xapi)
    xapi.VM.add_to_blocked_operations(vm, 'start', 'nova-says-no')
    assert failure_of(xapi.VM.start, vm, False, False) == [
        'OPERATION_BLOCKED',
        vm,
        'nova-says-no',
    ]


def test_running_vm_is_resident_with_domain_metrics_and_console(session, xapi):
    vm = create_vm(xapi, memory=1 * GIB, vcpus=2)
    net = management_network(xapi)
    add_vif(xapi, vm, net)
    xapi.VM.start(vm, False, False)
    record = xapi.VM.get_record(vm)
    host = this_host(session)
    assert record['resident_on'] == host
    assert vm in xapi.host.get_resident_VMs(host)
    assert int(record['domid']) > 0
    metrics = xapi.VM_metrics.get_record(record['metrics'])
    assert metrics['memory_actual'] == str(GIB)
    assert metrics['VCPUs_number'] == '2'
    assert len(record['consoles']) == 1
    console = xapi.console.get_record(record['consoles'][0])
    assert console['protocol'] == 'rfb' and console['VM'] == vm
    guest = xapi.VM_guest_metrics.get_record(record['guest_metrics'])
    assert guest['PV_drivers_up_to_date'] is True
    assert '0/ip' in guest['networks']
    assert xapi.VIF.get_currently_attached(record['VIFs'][0]) is True
    assert 'clean_shutdown' in record['allowed_operations']
    assert 'start' not in record['allowed_operations']
    xapi.VM.hard_shutdown(vm)
    record = xapi.VM.get_record(vm)
    assert record['resident_on'] == 'OpaqueRef:NULL'
    assert record['consoles'] == []
    assert record['guest_metrics'] == 'OpaqueRef:NULL'
    assert record['domid'] == '-1'
    assert vm not in xapi.host.get_resident_VMs(host)


def test_free_memory_accounts_for_running_vms(session, xapi):
    host = this_host(session)
    free = int(xapi.host.compute_free_memory(host))
    metrics = xapi.host.get_metrics(host)
    assert int(xapi.host_metrics.get_memory_free(metrics)) == free
    vm = create_vm(xapi, memory=2 * GIB)
    overhead = int(xapi.VM.get_memory_overhead(vm))
    assert overhead > 0
    assert int(xapi.VM.compute_memory_overhead(vm)) == overhead
    xapi.VM.start(vm, False, False)
    after = int(xapi.host.compute_free_memory(host))
    assert after == free - 2 * GIB - overhead
    assert int(xapi.host_metrics.get_memory_free(metrics)) == after
    xapi.VM.hard_shutdown(vm)
    assert int(xapi.host.compute_free_memory(host)) == free


def test_start_fails_when_the_host_lacks_memory(tmp_path):
    with SimulatedPool(
        hosts=1, host_memory_mib=4096, state_dir=str(tmp_path)
    ) as sim:
        xapi = login(sim.hosts[0]).xenapi
        host = xapi.host.get_all()[0]
        free = int(xapi.host.compute_free_memory(host))
        big = create_vm(xapi, memory=free)  # + overhead: does not fit
        detail = failure_of(xapi.VM.start, big, False, False)
        assert detail[0] == 'HOST_NOT_ENOUGH_FREE_MEMORY'
        needed = free + int(xapi.VM.get_memory_overhead(big))
        assert detail[1:] == [str(needed), str(free)]
        assert xapi.VM.get_power_state(big) == 'Halted'
        assert failure_of(xapi.VM.start_on, big, host, False, False)[0] == (
            'HOST_NOT_ENOUGH_FREE_MEMORY'
        )
        small = create_vm(xapi, memory=free // 2)
        xapi.VM.start(small, False, False)
        second = create_vm(xapi, memory=free // 2)
        assert failure_of(xapi.VM.start, second, False, False)[0] == (
            'HOST_NOT_ENOUGH_FREE_MEMORY'
        )


def test_start_on_picks_the_host_and_checks_it(pooled):
    session = login(pooled.master)
    xapi = session.xenapi
    vm = create_vm(xapi)
    target = pooled.hosts[2].host_ref
    xapi.VM.start_on(vm, target, False, False)
    assert xapi.VM.get_resident_on(vm) == target
    xapi.VM.hard_shutdown(vm)
    xapi.host.disable(target)
    assert failure_of(xapi.VM.start_on, vm, target, False, False) == [
        'HOST_DISABLED',
        target,
    ]
    xapi.host.enable(target)


def test_disks_on_a_local_sr_pin_the_vm_to_its_host(pooled):
    xapi = login(pooled.master).xenapi
    other = pooled.hosts[1].host_ref
    vm = create_vm(xapi)
    vdi = create_vdi(xapi, local_sr(xapi, pooled.hosts[0].host_ref))
    attach(xapi, vm, vdi)
    sr = xapi.VDI.get_SR(vdi)
    assert failure_of(xapi.VM.start_on, vm, other, False, False) == [
        'VM_REQUIRES_SR',
        vm,
        sr,
    ]
    xapi.VM.start(vm, False, False)
    assert xapi.VM.get_resident_on(vm) == pooled.hosts[0].host_ref


def test_affinity_is_where_start_goes_first(pooled):
    xapi = login(pooled.master).xenapi
    vm = create_vm(xapi)
    target = pooled.hosts[1].host_ref
    xapi.VM.set_affinity(vm, target)
    xapi.VM.start(vm, False, False)
    assert xapi.VM.get_resident_on(vm) == target


def test_clone_copy_and_snapshot_copy_disks(xapi):
    sr = default_sr(xapi)
    vm = create_vm(xapi, 'origin')
    vdi = create_vdi(xapi, sr, 16 * MIB)
    attach(xapi, vm, vdi)
    add_vif(xapi, vm, management_network(xapi), mac='aa:bb:cc:00:11:22')
    clone = xapi.VM.clone(vm, 'clone')
    copy = xapi.VM.copy(vm, 'copy', sr)
    for new in (clone, copy):
        record = xapi.VM.get_record(new)
        assert record['uuid'] != xapi.VM.get_uuid(vm)
        assert len(record['VBDs']) == 1
        new_vdi = xapi.VBD.get_VDI(record['VBDs'][0])
        assert new_vdi != vdi
        assert xapi.VDI.get_virtual_size(new_vdi) == str(16 * MIB)
        mac = xapi.VIF.get_MAC(record['VIFs'][0])
        assert mac != 'aa:bb:cc:00:11:22'
    xapi.VM.start(vm, False, False)
    assert failure_of(xapi.VM.clone, vm, 'x') == [
        'VM_BAD_POWER_STATE',
        vm,
        'halted',
        'running',
    ]
    snap = xapi.VM.snapshot(vm, 'snap')
    record = xapi.VM.get_record(snap)
    assert record['is_a_snapshot'] and record['is_a_template']
    assert record['snapshot_of'] == vm
    assert record['power_state'] == 'Halted'
    assert xapi.VM.get_snapshots(vm) == [snap]
    snap_vdi = xapi.VBD.get_VDI(record['VBDs'][0])
    assert xapi.VDI.get_is_a_snapshot(snap_vdi) is True
    assert xapi.VDI.get_snapshot_of(snap_vdi) == vdi
    assert xapi.VIF.get_MAC(record['VIFs'][0]) == 'aa:bb:cc:00:11:22'
    assert failure_of(xapi.VM.start, snap, False, False) == [
        'VM_IS_TEMPLATE',
        snap,
    ]


def test_snapshot_can_leave_disks_out_and_revert(xapi):
    sr = default_sr(xapi)
    vm = create_vm(xapi)
    root = create_vdi(xapi, sr)
    swap = create_vdi(xapi, sr)
    attach(xapi, vm, root, '0')
    attach(xapi, vm, swap, '1')
    snap = xapi.VM.snapshot(vm, 'no-swap', [swap])
    assert len(xapi.VM.get_VBDs(snap)) == 1
    xapi.VM.start(vm, False, False)
    xapi.VM.revert(snap)
    assert xapi.VM.get_power_state(vm) == 'Halted'
    disks = [xapi.VBD.get_VDI(v) for v in xapi.VM.get_VBDs(vm)]
    assert len(disks) == 1 and root not in disks


def test_copy_that_does_not_fit_fails_with_sr_full(tmp_path):
    with SimulatedPool(
        hosts=1, local_sr_gib=1, state_dir=str(tmp_path)
    ) as sim:
        xapi = login(sim.hosts[0]).xenapi
        sr = local_sr(xapi)
        vm = create_vm(xapi)
        attach(xapi, vm, create_vdi(xapi, sr, 600 * MIB))
        before = len(xapi.VDI.get_all())
        detail = failure_of(xapi.VM.clone, vm, 'too-big')
        assert detail[0] == 'SR_FULL'
        assert detail[1:] == [str(600 * MIB), str(GIB - 600 * MIB)]
        assert len(xapi.VDI.get_all()) == before
        assert len(xapi.VM.get_by_name_label('too-big')) == 0


def test_destroy_removes_devices_but_keeps_disks(xapi):
    vm = create_vm(xapi)
    vdi = create_vdi(xapi, default_sr(xapi))
    vbd = attach(xapi, vm, vdi)
    metrics = xapi.VM.get_metrics(vm)
    xapi.VM.destroy(vm)
    assert failure_of(xapi.VBD.get_record, vbd)[0] == 'HANDLE_INVALID'
    assert failure_of(xapi.VM_metrics.get_record, metrics)[0] == (
        'HANDLE_INVALID'
    )
    assert xapi.VDI.get_VBDs(vdi) == []


def test_memory_setters_need_a_halted_vm_and_ordered_values(xapi):
    vm = create_vm(xapi, memory=GIB)
    xapi.VM.set_memory_limits(
        vm, str(GIB), str(2 * GIB), str(GIB), str(2 * GIB)
    )
    assert xapi.VM.get_memory_static_max(vm) == str(2 * GIB)
    assert failure_of(xapi.VM.set_memory_static_max, vm, str(GIB // 2)) == [
        'MEMORY_CONSTRAINT_VIOLATION_ORDER'
    ]
    xapi.VM.start(vm, False, False)
    assert failure_of(xapi.VM.set_VCPUs_max, vm, '4')[:2] == [
        'VM_BAD_POWER_STATE',
        vm,
    ]


def test_control_domain_is_resident_and_untouchable(session, xapi):
    host = this_host(session)
    dom0 = xapi.host.get_control_domain(host)
    record = xapi.VM.get_record(dom0)
    assert record['is_control_domain'] is True
    assert record['power_state'] == 'Running'
    assert record['resident_on'] == host
    assert failure_of(xapi.VM.hard_shutdown, dom0)[0] == (
        'OPERATION_NOT_ALLOWED'
    )
