"""Thin copies of virtual disks, by a full clone.

vCenter copies a disk (``CopyVirtualDisk_Task``) only as preallocated: the
vSphere API says that without ``destSpec`` "a preallocated format ... is
assumed", and vCenter does not implement ``destSpec`` (govmomi
``object/datastore_file_manager.go``).  A copy that must stay thin (a
full-clone root disk, a sized parent in the image cache, a root disk grown
by a resize) is therefore made the way Cinder's VMDK driver converts a
volume's disk type (``volumeops.clone_backing``): a full ``CloneVM_Task``
whose disk locator asks for a thin disk.

The source is no VM's disk, so a *seed* VM is made around it first, its
one disk a linked child of the source (only a small delta is written).
The seed is cloned in full: vCenter consolidates the chain into the
clone's own, thin disk.  That disk is moved where it is wanted, both VMs
are unregistered and their folders removed.  The source is only read.
"""

from collections.abc import Callable
import contextlib
import logging
from typing import Any
import uuid

from oslo_utils import units
from pyVmomi import vim

from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import datastore as ds_util
from nova_hypervisors.vmwareapi import session as vc_session

LOG = logging.getLogger(__name__)
#: What the seed and clone VMs are called, with a tag of their own.
PREFIX = 'nova-copy-'
SCSI_KEY = -100
DISK_KEY = -101


class ThinCopier:
    """Thin copies of disks on one cluster's datastores."""

    def __init__(
        self,
        session: vc_session.VCenterSession,
        node: cluster.Node,
        files: ds_util.DatastoreFiles,
        folder: Callable[[], Any],
    ) -> None:
        """``folder``: where the seed and clone VMs go (the instances')."""
        self._session = session
        self._node = node
        self._files = files
        self._folder = folder

    def _run_task(self, managed_object: Any, method: str, **kwargs) -> Any:
        task = self._session.invoke(managed_object, method, **kwargs)
        return self._session.wait_for_task(task)

    def copy(
        self,
        source: str,
        destination: str,
        capacity_kb: int,
        host: Any = None,
    ) -> None:
        """Copy the disk ``source`` (of ``capacity_kb``) to
        ``destination`` on the same datastore, as a thin disk.

        ``host``: where the seed VM runs when DRS does not choose (it must
        mount the datastore).  Nothing of the seed or the clone is left,
        whatever fails.
        """
        datastore, _ = ds_util.split(source)
        tag = uuid.uuid4().hex[:12]
        seed_name, clone_name = f'{PREFIX}{tag}', f'{PREFIX}{tag}-thin'
        made = {}
        try:
            made[seed_name] = self._seed(
                seed_name, datastore, source, capacity_kb, host
            )
            found = self._session.properties(
                [made[seed_name]],
                vim.VirtualMachine,
                ['config.hardware.device', 'datastore'],
            )[made[seed_name]]
            disk = _only_disk(found.get('config.hardware.device'))
            ds_ref = (found.get('datastore') or [None])[0]
            made[clone_name] = self._run_task(
                made[seed_name],
                'CloneVM_Task',
                folder=self._folder(),
                name=clone_name,
                spec=_clone_spec(disk.key, ds_ref),
            )
            cloned = _only_disk(
                self._session.properties(
                    [made[clone_name]],
                    vim.VirtualMachine,
                    ['config.hardware.device'],
                )[made[clone_name]].get('config.hardware.device')
            )
            # The disk must be no VM's to be moved.
            for name in (clone_name, seed_name):
                self._session.invoke(made[name], 'UnregisterVM')
                made[name] = None
            self._files.move_disk(cloned.backing.fileName, destination)
        finally:
            self._clean_up(datastore, seed_name, clone_name, made)
        LOG.info('Copied %s to %s as a thin disk', source, destination)

    def _seed(
        self,
        name: str,
        datastore: str,
        source: str,
        capacity_kb: int,
        host: Any,
    ) -> Any:
        """A small VM whose one disk is a linked child of ``source``."""
        folder = ds_util.path(datastore, name)
        child = vim.vm.device.VirtualDisk(
            key=DISK_KEY,
            controllerKey=SCSI_KEY,
            unitNumber=0,
            capacityInKB=capacity_kb,
            capacityInBytes=capacity_kb * units.Ki,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=f'{folder}/{name}.vmdk',
                diskMode='persistent',
                thinProvisioned=True,
                parent=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                    fileName=source, diskMode='persistent'
                ),
            ),
        )
        spec = vim.vm.ConfigSpec(
            name=name,
            guestId='otherGuest64',
            numCPUs=1,
            memoryMB=4,
            annotation='A temporary VM of nova-compute, for a disk copy',
            files=vim.vm.FileInfo(vmPathName=f'{folder}/{name}.vmx'),
            deviceChange=[
                vim.vm.device.VirtualDeviceSpec(
                    operation='add',
                    device=vim.vm.device.VirtualLsiLogicController(
                        key=SCSI_KEY, busNumber=0, sharedBus='noSharing'
                    ),
                ),
                vim.vm.device.VirtualDeviceSpec(
                    operation='add', fileOperation='create', device=child
                ),
            ],
        )
        self._files.make_directory(folder)
        return self._run_task(
            self._folder(),
            'CreateVM_Task',
            config=spec,
            pool=self._node.resource_pool,
            host=host,
        )

    def _clean_up(
        self, datastore: str, seed_name: str, clone_name: str, made: dict
    ) -> None:
        """Unregister what is still registered (found by name when a task's
        wait failed after vCenter made the VM), then remove both folders:
        the seed's holds only its delta, never the source."""
        for name in (clone_name, seed_name):
            if name in made and made[name] is None:
                continue  # unregistered already
            vm = made.get(name) or self._find(name)
            if vm is not None:
                with contextlib.suppress(Exception):
                    self._session.invoke(vm, 'UnregisterVM')
        for name in (clone_name, seed_name):
            # Tried twice: a folder left here is no VM's and no cache's,
            # so nothing else would ever remove it.
            for attempt in (1, 2):
                try:
                    self._files.delete(ds_util.path(datastore, name))
                    break
                except Exception:  # noqa: BLE001 - keep the copy's error
                    LOG.warning(
                        'Could not remove the temporary folder %s of a disk '
                        'copy (attempt %d of 2)',
                        name,
                        attempt,
                        exc_info=True,
                    )

    def _find(self, name: str) -> Any:
        try:
            return self._session.invoke(
                self._session.content.searchIndex,
                'FindChild',
                entity=self._folder(),
                name=name,
            )
        except Exception:  # noqa: BLE001 - nothing to unregister then
            LOG.debug('Could not look for %s', name, exc_info=True)
            return None


def _only_disk(devices: list | None) -> Any:
    disks = [
        device
        for device in devices or ()
        if isinstance(device, vim.vm.device.VirtualDisk)
    ]
    if len(disks) != 1:
        raise vc_session.TaskFailed(
            'CloneVM_Task', None, f'expected one disk, found {len(disks)}'
        )
    return disks[0]


def _clone_spec(disk_key: int, datastore: Any) -> Any:
    """A full clone (every backing moved, none shared) whose disk is thin."""
    locator = vim.vm.RelocateSpec.DiskLocator(
        diskId=disk_key,
        datastore=datastore,
        diskMoveType='moveAllDiskBackingsAndDisallowSharing',
        diskBackingInfo=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName='', diskMode='persistent', thinProvisioned=True
        ),
    )
    return vim.vm.CloneSpec(
        location=vim.vm.RelocateSpec(
            datastore=datastore,
            diskMoveType='moveAllDiskBackingsAndDisallowSharing',
            disk=[locator],
        ),
        powerOn=False,
        template=False,
    )
