"""Unit tests: controller slots for volumes, finding an attached volume's
disk, and consolidating a moved volume disk back to its shadow VM (in-tree
``volumeops._consolidate_vmdk_volume``)."""

from unittest import mock

from nova import exception
import pytest
from pyVmomi import vim

from nova_hypervisors.vmwareapi import volumeops

SHADOW_PATH = '[ds1] volume-1/volume-1.vmdk'
MOVED_PATH = '[ds2] instance/volume-1.vmdk'


def disk(path, controller=1000, unit=0, uuid=None):
    return vim.vm.device.VirtualDisk(
        key=2000 + unit,
        controllerKey=controller,
        unitNumber=unit,
        capacityInKB=1024,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=path, uuid=uuid, thinProvisioned=True
        ),
    )


def lsi(key=1000, bus=0):
    return vim.vm.device.VirtualLsiLogicController(key=key, busNumber=bus)


def test_a_volume_takes_the_first_free_unit_but_never_7():
    devices = [lsi()] + [disk('[ds] d%d' % u, unit=u) for u in range(7)]
    assert volumeops.free_slot(devices, 'lsiLogic') == (1000, 8, None)


def test_a_full_controller_gets_a_new_one_on_the_next_bus():
    units = [u for u in range(16) if u != 7]
    devices = [lsi()] + [disk('[ds] d%d' % u, unit=u) for u in units]
    key, unit, spec = volumeops.free_slot(devices, 'lsiLogic')
    assert (key, unit) == (volumeops.NEW_CONTROLLER_KEY, 0)
    assert spec.device.busNumber == 1


def test_a_volume_of_another_adapter_type_gets_its_own_controller():
    key, _, spec = volumeops.free_slot([lsi()], 'paraVirtual')
    assert isinstance(spec.device, vim.vm.device.ParaVirtualSCSIController)
    assert key == volumeops.NEW_CONTROLLER_KEY


def test_four_scsi_buses_are_the_limit():
    devices = [lsi(key=1000 + b, bus=b) for b in range(4)]
    devices += [
        disk('[ds] d', controller=1000 + b, unit=u)
        for b in range(4)
        for u in range(16)
        if u != 7
    ]
    with pytest.raises(exception.StorageError):
        volumeops.free_slot(devices, 'lsiLogic')


def test_the_attached_disk_is_found_by_uuid_before_its_path():
    shadow = volumeops.VolumeDisk(
        SHADOW_PATH, 'lsiLogic', True, 1, 'u-1', None
    )
    moved = disk(MOVED_PATH, unit=1, uuid='u-1')
    other = disk('[ds] root.vmdk', unit=0, uuid='u-root')
    found = volumeops.VolumeOps._attached_device([other, moved], shadow, 'u-1')
    assert found is moved
    by_path = disk(SHADOW_PATH, unit=2)
    found = volumeops.VolumeOps._attached_device([other, by_path], shadow, '')
    assert found is by_path


def test_detach_of_a_moved_disk_gives_the_shadow_vm_the_new_file():
    """The instance moved to ds2 with its volume disk: the shadow VM moves
    there, drops its stale copy and takes the instance's file; then the
    disk leaves the instance without a file operation."""
    session = mock.Mock()
    vm, shadow = mock.Mock(_moId='vm-1'), mock.Mock(_moId='vm-shadow')
    ds1, ds2 = vim.Datastore('datastore-1'), vim.Datastore('datastore-2')
    session.moref.return_value = shadow
    moved = disk(MOVED_PATH, unit=1, uuid='u-1')
    stale = disk('[ds2] volume-1/volume-1.vmdk', uuid='u-1')
    shadow_reads = [
        {'config.hardware.device': [lsi(), disk(SHADOW_PATH, uuid='u-1')]},
        {'config.hardware.device': [lsi(), stale]},
    ]

    def properties(objects, kind, paths):
        if kind is vim.Datastore:
            return {ds1: {'name': 'ds1'}, ds2: {'name': 'ds2'}}
        (obj,) = objects
        if obj is shadow:
            return {obj: shadow_reads.pop(0)}
        if obj is vm and 'resourcePool' in paths:
            return {
                vm: {
                    'resourcePool': vim.ResourcePool('resgroup-1'),
                    'runtime.host': vim.HostSystem('host-1'),
                    'datastore': [ds1, ds2],
                }
            }
        if obj is vm:
            return {
                vm: {
                    'config.hardware.device': [lsi(), moved],
                    'config.extraConfig["volume-v1"]': vim.option.OptionValue(
                        key='volume-v1', value='u-1'
                    ),
                }
            }

    session.properties.side_effect = properties
    calls = []
    session.invoke.side_effect = lambda obj, method, **kw: calls.append(
        (obj, method, kw)
    )
    ops = volumeops.VolumeOps(session)
    info = {
        'driver_volume_type': 'vmdk',
        'data': {'volume': 'vm-shadow', 'volume_id': 'v1'},
    }
    with mock.patch.object(volumeops.lookup, 'find_vm', return_value=vm):
        ops.detach(mock.Mock(uuid='i-1'), info)
    methods = [(obj, method) for obj, method, _ in calls]
    assert methods == [
        (shadow, 'RelocateVM_Task'),
        (shadow, 'ReconfigVM_Task'),
        (shadow, 'ReconfigVM_Task'),
        (vm, 'ReconfigVM_Task'),
    ]
    assert calls[0][2]['spec'].datastore is ds2
    drop = calls[1][2]['spec'].deviceChange[0]
    assert (drop.operation, drop.fileOperation) == ('remove', 'destroy')
    assert drop.device is stale
    add = calls[2][2]['spec'].deviceChange[0]
    assert add.device.backing.fileName == MOVED_PATH
    assert add.fileOperation is None
    remove = calls[3][2]['spec'].deviceChange[0]
    assert (remove.operation, remove.fileOperation) == ('remove', None)
    assert remove.device is moved


def test_other_connection_types_are_refused_by_name():
    with pytest.raises(exception.VolumeDriverNotFound):
        volumeops.check_type({'driver_volume_type': 'rbd', 'data': {}})


def test_an_ide_volume_of_a_running_vm_is_not_grown():
    """vSphere grows no IDE disk of a powered-on VM: the extend is
    refused before anything is sent."""
    session = mock.Mock()
    vm, shadow = mock.Mock(_moId='vm-1'), mock.Mock(_moId='vm-shadow')
    session.moref.return_value = shadow
    ide = vim.vm.device.VirtualIDEController(key=200, busNumber=0)
    volume_disk = disk(SHADOW_PATH, controller=200)

    def properties(objects, kind, paths):
        (obj,) = objects
        if obj is shadow:
            return {obj: {'config.hardware.device': [ide, volume_disk]}}
        return {
            vm: {
                'config.hardware.device': [ide, volume_disk],
                'runtime.powerState': 'poweredOn',
            }
        }

    session.properties.side_effect = properties
    ops = volumeops.VolumeOps(session)
    info = {
        'driver_volume_type': 'vmdk',
        'data': {'volume': 'vm-shadow', 'volume_id': 'v1'},
    }
    with mock.patch.object(volumeops.lookup, 'get_vm', return_value=vm):
        with pytest.raises(exception.ExtendVolumeNotSupported) as raised:
            ops.extend(mock.Mock(uuid='i-1'), info, 2 << 30)
    assert 'IDE' in str(raised.value)
    session.invoke.assert_not_called()
