"""Storage and network objects, with xapi's attachment rules."""

from __future__ import annotations

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


def test_first_host_pool_has_shared_default_sr_and_local_sr(sim, xapi):
    sr = default_sr(xapi)
    record = xapi.SR.get_record(sr)
    assert record['type'] == 'nfs' and record['shared'] is True
    ext = xapi.SR.get_record(local_sr(xapi))
    assert ext['type'] == 'ext' and ext['shared'] is False
    assert ext['name_label'] == 'Local storage'
    # A standalone host of the same simulator: a fresh install.
    other = login(sim.hosts[1]).xenapi
    other_default = default_sr(other)
    assert other.SR.get_type(other_default) == 'ext'
    assert not [s for s in other.SR.get_all_records().values() if s['shared']]


def test_vdi_create_accounts_capacity_and_sr_full(xapi):
    sr = local_sr(xapi)
    size = int(xapi.SR.get_physical_size(sr))
    vdi = create_vdi(xapi, sr, GIB)
    assert xapi.SR.get_physical_utilisation(sr) == str(GIB)
    assert xapi.SR.get_virtual_allocation(sr) == str(GIB)
    assert vdi in xapi.SR.get_VDIs(sr)
    assert failure_of(create_vdi, xapi, sr, size) == [
        'SR_FULL',
        str(size),
        str(size - GIB),
    ]
    xapi.VDI.destroy(vdi)
    assert xapi.SR.get_physical_utilisation(sr) == '0'
    assert vdi not in xapi.SR.get_VDIs(sr)


def test_vdi_copy_clone_snapshot_resize(xapi):
    shared = default_sr(xapi)
    local = local_sr(xapi)
    vdi = create_vdi(xapi, shared, 4 * MIB, 'base')
    copied = xapi.VDI.copy(vdi, local)
    assert xapi.VDI.get_SR(copied) == local
    assert xapi.VDI.get_name_label(copied) == 'base'
    clone = xapi.VDI.clone(vdi, {})
    assert xapi.VDI.get_SR(clone) == shared
    snap = xapi.VDI.snapshot(vdi, {})
    assert xapi.VDI.get_is_a_snapshot(snap) is True
    assert xapi.VDI.get_snapshots(vdi) == [snap]
    xapi.VDI.resize(vdi, str(8 * MIB))
    assert xapi.VDI.get_virtual_size(vdi) == str(8 * MIB)
    detail = failure_of(xapi.VDI.resize, vdi, str(MIB))
    assert detail[0] == 'SR_BACKEND_FAILURE_79'


def test_vdi_in_use_while_attached_to_a_running_vm(xapi):
    vm = create_vm(xapi)
    vdi = create_vdi(xapi, default_sr(xapi))
    vbd = attach(xapi, vm, vdi)
    xapi.VM.start(vm, False, False)
    assert xapi.VBD.get_currently_attached(vbd) is True
    assert failure_of(xapi.VDI.destroy, vdi) == ['VDI_IN_USE', vdi, 'destroy']
    assert failure_of(xapi.VDI.resize, vdi, str(GIB)) == [
        'VDI_IN_USE',
        vdi,
        'resize',
    ]
    other = create_vm(xapi, 'other')
    attach(xapi, other, vdi)
    assert failure_of(xapi.VM.start, other, False, False) == [
        'VDI_IN_USE',
        vdi,
        'attach',
    ]
    xapi.VM.hard_shutdown(vm)
    xapi.VDI.destroy(vdi)
    assert failure_of(xapi.VBD.get_record, vbd)[0] == 'HANDLE_INVALID'


def test_vbd_plug_and_unplug_rules(xapi):
    vm = create_vm(xapi)
    vdi = create_vdi(xapi, default_sr(xapi))
    vbd = attach(xapi, vm, vdi, '1', bootable=False)
    assert failure_of(xapi.VBD.plug, vbd) == [
        'VM_BAD_POWER_STATE',
        vm,
        'running',
        'halted',
    ]
    xapi.VM.start(vm, False, False)
    assert failure_of(xapi.VBD.plug, vbd) == ['DEVICE_ALREADY_ATTACHED', vbd]
    xapi.VBD.unplug(vbd)
    assert xapi.VBD.get_currently_attached(vbd) is False
    assert failure_of(xapi.VBD.unplug, vbd) == ['DEVICE_ALREADY_DETACHED', vbd]
    hot = attach(xapi, vm, create_vdi(xapi, default_sr(xapi)), '2')
    assert xapi.VBD.get_currently_attached(hot) is False
    xapi.VBD.plug(hot)
    assert xapi.VBD.get_device(hot) == 'xvdc'
    detail = failure_of(xapi.VBD.destroy, hot)
    assert detail[0] == 'OPERATION_NOT_ALLOWED'
    xapi.VBD.unplug(hot)
    xapi.VBD.destroy(hot)


def test_vbd_devices_are_unique_and_autodetected(xapi):
    vm = create_vm(xapi)
    sr = default_sr(xapi)
    attach(xapi, vm, create_vdi(xapi, sr), '0')
    assert failure_of(attach, xapi, vm, create_vdi(xapi, sr), '0') == [
        'DEVICE_ALREADY_EXISTS',
        '0',
    ]
    auto = attach(xapi, vm, create_vdi(xapi, sr), 'autodetect')
    assert xapi.VBD.get_userdevice(auto) == '1'
    assert failure_of(attach, xapi, vm, create_vdi(xapi, sr), 'floppy!') == [
        'INVALID_DEVICE',
        'floppy!',
    ]
    allowed = xapi.VM.get_allowed_VBD_devices(vm)
    assert '0' not in allowed and '1' not in allowed and '2' in allowed


def test_cd_drives_insert_and_eject(xapi):
    vm = create_vm(xapi)
    iso = create_vdi(xapi, default_sr(xapi), MIB, 'iso')
    cd = xapi.VBD.create(
        {
            'VM': vm,
            'VDI': 'OpaqueRef:NULL',
            'userdevice': '3',
            'bootable': False,
            'mode': 'RO',
            'type': 'CD',
            'empty': True,
            'other_config': {},
            'qos_algorithm_type': '',
            'qos_algorithm_params': {},
        }
    )
    assert failure_of(xapi.VBD.eject, cd) == ['VBD_IS_EMPTY', cd]
    xapi.VBD.insert(cd, iso)
    assert xapi.VBD.get_VDI(cd) == iso
    assert failure_of(xapi.VBD.insert, cd, iso) == ['VBD_NOT_EMPTY', cd]
    xapi.VBD.eject(cd)
    assert xapi.VBD.get_empty(cd) is True


def test_sr_create_forget_and_pbds(session, xapi):
    host = xapi.session.get_this_host(session._session)
    sr = xapi.SR.create(
        host,
        {'device': '/dev/sdb'},
        str(10 * GIB),
        'extra',
        '',
        'ext',
        'user',
        False,
        {},
    )
    pbds = xapi.SR.get_PBDs(sr)
    assert len(pbds) == 1
    assert xapi.PBD.get_currently_attached(pbds[0]) is True
    vdi = create_vdi(xapi, sr)
    assert failure_of(xapi.SR.forget, sr) == ['SR_HAS_PBD', sr]
    xapi.PBD.unplug(pbds[0])
    assert failure_of(create_vdi, xapi, sr) == ['SR_HAS_NO_PBDS', sr]
    xapi.SR.forget(sr)
    assert failure_of(xapi.VDI.get_record, vdi)[0] == 'HANDLE_INVALID'
    assert failure_of(
        xapi.SR.create, host, {}, '0', 'x', '', 'zfs', '', False, {}
    ) == ['SR_UNKNOWN_DRIVER', 'zfs']


def test_networks_get_bridges_and_refuse_destroy_while_in_use(xapi):
    net = xapi.network.create(
        {
            'name_label': 'private',
            'name_description': '',
            'MTU': '1500',
            'other_config': {},
            'tags': [],
        }
    )
    assert xapi.network.get_bridge(net).startswith('xapi')
    vm = create_vm(xapi)
    vif = add_vif(xapi, vm, net)
    xapi.VM.start(vm, False, False)
    assert failure_of(xapi.network.destroy, net) == [
        'NETWORK_CONTAINS_VIF',
        vif,
    ]
    management = management_network(xapi)
    assert failure_of(xapi.network.destroy, management) == [
        'CANNOT_DESTROY_SYSTEM_NETWORK',
        management,
    ]
    xapi.VM.hard_shutdown(vm)
    xapi.network.destroy(net)
    assert xapi.VM.get_VIFs(vm) == []


def test_vif_rules_and_generated_macs(xapi):
    vm = create_vm(xapi)
    net = management_network(xapi)
    vif = add_vif(xapi, vm, net)
    mac = xapi.VIF.get_MAC(vif)
    assert len(mac.split(':')) == 6
    assert xapi.VIF.get_MAC_autogenerated(vif) is True
    assert failure_of(add_vif, xapi, vm, net, '0') == [
        'DEVICE_ALREADY_EXISTS',
        '0',
    ]
    assert failure_of(add_vif, xapi, vm, net, '1', 'zz') == [
        'MAC_INVALID',
        'zz',
    ]
    assert failure_of(xapi.VIF.plug, vif)[:2] == ['VM_BAD_POWER_STATE', vm]
    xapi.VM.start(vm, False, False)
    assert failure_of(xapi.VIF.plug, vif) == ['DEVICE_ALREADY_ATTACHED', vif]
    assert failure_of(xapi.VIF.destroy, vif)[0] == 'OPERATION_NOT_ALLOWED'
    xapi.VIF.unplug(vif)
    xapi.VIF.destroy(vif)


def test_host_has_pif_cpus_metrics_and_management_interface(session, xapi):
    host = xapi.session.get_this_host(session._session)
    record = xapi.host.get_record(host)
    assert len(record['host_CPUs']) == 8
    cpu = xapi.host_cpu.get_record(record['host_CPUs'][0])
    assert cpu['host'] == host
    pif = xapi.host.get_management_interface(host)
    assert pif in record['PIFs']
    assert xapi.PIF.get_management(pif) is True
    assert xapi.PIF.get_IP(pif) == record['address']
    assert failure_of(xapi.PIF.unplug, pif) == [
        'PIF_IS_MANAGEMENT_INTERFACE',
        pif,
    ]
    metrics = xapi.host_metrics.get_record(record['metrics'])
    assert metrics['memory_total'] == str(16 * GIB)
    assert int(metrics['memory_free']) < 16 * GIB - 1 * GIB
