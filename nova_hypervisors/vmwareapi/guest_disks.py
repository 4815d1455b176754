"""Operations on an instance's disks: snapshot to Glance, rescue.

A snapshot freezes the root disk with a vSphere snapshot, copies it into a
standalone disk (which also flattens a linked clone's chain), streams that
copy's flat extent to Glance over vCenter's ``/folder`` interface as a raw
image (disk_format ``raw``, container ``bare``: the extent holds the disk's
bytes, not a vmdk container) and removes both.
Rescue boots the VM from a copy of the rescue image attached as a second
disk, leaving the root disk untouched for the user to repair.
"""

import logging
from typing import Any

from nova.compute import task_states
from nova.image import glance
from pyVmomi import vim

from nova_hypervisors.vmwareapi import datastore as ds_util
from nova_hypervisors.vmwareapi import events
from nova_hypervisors.vmwareapi import images
from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import session as vc_session
from nova_hypervisors.vmwareapi import thin_copy
from nova_hypervisors.vmwareapi import vmops as vm_ops

LOG = logging.getLogger(__name__)
RESCUE_SUFFIX = '-rescue.vmdk'
DISK_PATHS = ['config.hardware.device', 'config.files.vmPathName']


def disks(devices: list) -> list:
    return [
        d for d in devices or () if isinstance(d, vim.vm.device.VirtualDisk)
    ]


def root_disk(devices: list) -> Any:
    """The first disk that is not a rescue disk."""
    for disk in disks(devices):
        if not disk.backing.fileName.endswith(RESCUE_SUFFIX):
            return disk
    raise LookupError('the VM has no root disk')


class GuestDisks:
    def __init__(
        self,
        session: vc_session.VCenterSession,
        files: ds_util.DatastoreFiles,
        image_cache: images.ImageCache,
        vmops: vm_ops.VMOps,
        states: events.PowerStates,
        copier: thin_copy.ThinCopier,
    ) -> None:
        self._session = session
        self._copier = copier
        self._files = files
        self._images = image_cache
        self._vmops = vmops
        self._states = states

    def _run_task(self, managed_object: Any, method: str, **kwargs) -> Any:
        task = self._session.invoke(managed_object, method, **kwargs)
        return self._session.wait_for_task(task)

    # -- snapshot -----------------------------------------------------------

    def snapshot(
        self, context: Any, instance: Any, image_id: str, update_task_state
    ) -> None:
        vm = lookup.get_vm(self._session, instance)
        props = self._vmops.vm_properties(
            vm,
            DISK_PATHS
            + [
                'runtime.powerState',
                'runtime.host',
                'guest.toolsRunningStatus',
            ],
        )
        root_device = root_disk(props.get('config.hardware.device'))
        root = root_device.backing.fileName
        vm_dir = vm_ops.vm_directory(props['config.files.vmPathName'])
        copy = f'{vm_dir}/snapshot-{image_id}.vmdk'
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        # A quiesced snapshot needs VMware Tools in a running guest; in-tree
        # always asks for one (vmops._create_vm_snapshot), which fails
        # without Tools.
        quiesce = (
            props.get('runtime.powerState') == 'poweredOn'
            and props.get('guest.toolsRunningStatus') == 'guestToolsRunning'
        )
        snapshot = self._run_task(
            vm,
            'CreateSnapshot_Task',
            name=f'nova-snapshot-{image_id}',
            description='taken for a Glance image',
            memory=False,
            quiesce=quiesce,
        )
        try:
            # Thin: a preallocated copy would take the disk's whole
            # capacity on the datastore while the upload runs (thin_copy).
            self._copier.copy(
                root, copy, root_device.capacityInKB, props.get('runtime.host')
            )
        finally:
            self._run_task(
                snapshot, 'RemoveSnapshot_Task', removeChildren=False
            )
        update_task_state(
            task_state=task_states.IMAGE_UPLOADING,
            expected_state=task_states.IMAGE_PENDING_UPLOAD,
        )
        try:
            extent = copy.replace('.vmdk', '-flat.vmdk')
            # The bytes are the flat extent: a raw image of the disk, which
            # every hypervisor (and qemu-img) reads as what it is.  They go
            # from the datastore to Glance as they come, never to the
            # compute node's disk.
            metadata = {
                'disk_format': 'raw',
                'container_format': 'bare',
                'properties': {'vmware_adaptertype': 'lsiLogic'},
            }
            with ds_util.reader(self._files.download(extent)) as data:
                glance.API().update(context, image_id, metadata, data)
        finally:
            self._files.delete_disk(copy)
        LOG.info(
            'Snapshot of %s uploaded as image %s', instance.uuid, image_id
        )

    # -- rescue -------------------------------------------------------------

    def rescue(self, context: Any, instance: Any, image_meta: Any) -> None:
        vm = lookup.get_vm(self._session, instance)
        props = self._vmops.vm_properties(vm, DISK_PATHS)
        devices = props.get('config.hardware.device')
        root = root_disk(devices)
        vm_dir = vm_ops.vm_directory(props['config.files.vmPathName'])
        datastore, _ = ds_util.split(vm_dir)
        cached = self._images.fetch(context, image_meta, datastore)
        rescue_path = f'{vm_dir}/{instance.uuid}{RESCUE_SUFFIX}'
        self._states.expect(instance.uuid, 'poweredOff')
        self._vmops.power_off(instance)
        self._files.copy_disk(cached, rescue_path)
        used_units = {
            d.unitNumber
            for d in disks(devices)
            if d.controllerKey == root.controllerKey
        }
        unit = min(set(range(16)) - used_units - {7})
        disk = vim.vm.device.VirtualDisk(
            key=-1,
            controllerKey=root.controllerKey,
            unitNumber=unit,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=rescue_path, diskMode='persistent'
            ),
        )
        self._reconfigure(
            vm,
            deviceChange=[
                vim.vm.device.VirtualDeviceSpec(operation='add', device=disk)
            ],
        )
        devices = self._vmops.vm_properties(vm, DISK_PATHS).get(
            'config.hardware.device'
        )
        rescue_key = next(
            d.key for d in disks(devices) if d.backing.fileName == rescue_path
        )
        self._reconfigure(
            vm,
            bootOptions=vim.vm.BootOptions(
                bootOrder=[
                    vim.vm.BootOptions.BootableDiskDevice(deviceKey=rescue_key)
                ]
            ),
        )
        self._vmops.power_on(instance)

    def unrescue(self, instance: Any) -> None:
        vm = lookup.get_vm(self._session, instance)
        devices = self._vmops.vm_properties(vm, DISK_PATHS).get(
            'config.hardware.device'
        )
        self._vmops.power_off(instance)
        changes = [
            vim.vm.device.VirtualDeviceSpec(
                operation='remove', fileOperation='destroy', device=d
            )
            for d in disks(devices)
            if d.backing.fileName.endswith(RESCUE_SUFFIX)
        ]
        self._reconfigure(
            vm,
            deviceChange=changes,
            bootOptions=vim.vm.BootOptions(bootOrder=[]),
        )
        self._vmops.power_on(instance)

    def _reconfigure(self, vm: Any, **spec: Any) -> None:
        self._run_task(vm, 'ReconfigVM_Task', spec=vim.vm.ConfigSpec(**spec))
