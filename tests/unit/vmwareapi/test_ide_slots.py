"""Free IDE units, found on the controllers ESXi gave the VM."""

from pyVmomi import vim

from nova_hypervisors.vmwareapi import vmops


def _controller(key: int, bus: int):
    return vim.vm.device.VirtualIDEController(key=key, busNumber=bus)


def test_free_units_in_bus_order_taken_ones_skipped():
    devices = [
        _controller(201, 1),
        _controller(200, 0),
        vim.vm.device.VirtualCdrom(key=3000, controllerKey=200, unitNumber=0),
    ]
    assert vmops.ide_slots(devices) == [(200, 1), (201, 0), (201, 1)]


def test_no_ide_controller_no_slot():
    scsi = vim.vm.device.VirtualLsiLogicController(key=1000, busNumber=0)
    assert vmops.ide_slots([scsi]) == []
