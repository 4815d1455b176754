"""VolumeOps: Cinder ``vmdk`` volumes as disks of an instance's VM.

Cinder's VMDK driver keeps each volume as the one disk of a powered-off
*shadow VM*; ``connection_info['data']['volume']`` is that VM's moref.  As
Nova's in-tree driver does (``nova/virt/vmwareapi/volumeops.py``):

* **attach** adds the shadow's disk file to the instance's VM by
  ``ReconfigVM_Task``, without a file operation (the file is Cinder's), on
  a free unit of a controller of the disk's adapter type (a new controller
  when none has room), and records ``volume-<id>`` in the VM's extraConfig
  (in-tree ``_update_volume_details``).  vSphere hot-adds SCSI disks to a
  running VM but not IDE ones, so an IDE volume of a powered-on VM is
  refused.
* **detach** removes the disk, again without a file operation.  When the
  instance's disk file is no longer the shadow's (the instance was moved
  to another datastore, and its volume disk with it), the shadow VM is
  first moved to that datastore and given that file (in-tree
  ``_consolidate_vmdk_volume``), so Cinder finds the volume's data.
* **boot from volume** makes the volume's disk the root disk at creation.

``iscsi`` volumes are LUNs of an array: every host of the cluster gets the
target's portal as a send target of its software iSCSI adapter and
rescans it (a VM may run on any of them, and DRS moves it), then the LUN
the VM's host found is attached as a raw device mapping in physical
compatibility mode, as in-tree does (``_attach_volume_iscsi``; in-tree
prepares only the cluster's first host).  A LUN that no rescan finds
fails the attach and the send targets this attach added are removed.

Nothing here deletes a volume's file: the VM is destroyed by
``UnregisterVM`` and removal of its own folder (vmops), never by
``Destroy_Task``, which would delete every attached disk.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from nova import exception
from pyVmomi import vim
from pyVmomi import vmodl

from nova_hypervisors.common import volumes as common_volumes
from nova_hypervisors.vmwareapi import datastore as ds_util
from nova_hypervisors.vmwareapi import hardware as vm_hardware
from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import session as vc_session

LOG = logging.getLogger(__name__)

VMDK = 'vmdk'
ISCSI = 'iscsi'
#: extraConfig key of an attached volume (in-tree's name).
VOLUME_KEY = 'volume-%s'
SCSI_UNITS = [unit for unit in range(16) if unit != 7]
MAX_SCSI_BUSES = 4
NEW_CONTROLLER_KEY = -200
NEW_DISK_KEY = -201
DEVICE_PATHS = ['config.hardware.device', 'runtime.powerState']


@dataclasses.dataclass(frozen=True)
class VolumeDisk:
    """The disk of a volume's shadow VM."""

    path: str
    adapter_type: str
    thin: bool
    capacity_kb: int
    uuid: str | None
    device: Any


def check_type(connection_info: dict) -> dict:
    kind = connection_info.get('driver_volume_type')
    if kind not in (VMDK, ISCSI):
        raise exception.VolumeDriverNotFound(driver_type=kind)
    data = connection_info.get('data') or {}
    if kind == ISCSI:
        if not data.get('target_portal') or not data.get('target_iqn'):
            raise exception.StorageError(
                reason='iscsi connection data lacks target_portal or '
                'target_iqn'
            )
        return data
    data = connection_info.get('data') or {}
    if not data.get('volume'):
        raise exception.StorageError(
            reason='vmdk connection data names no shadow VM (volume)'
        )
    return data


def adapter_of(devices: list, disk: Any) -> str:
    """The adapter type of the controller a disk hangs on."""
    return controller_adapter(devices, disk.controllerKey)


def controller_adapter(devices: list, controller_key: int) -> str:
    """The adapter type of the controller with ``controller_key``."""
    for device in devices:
        if device.key != controller_key:
            continue
        if isinstance(device, vim.vm.device.VirtualIDEController):
            return vm_hardware.IDE
        for adapter, kind in vm_hardware.CONTROLLERS.items():
            if isinstance(device, kind):
                return adapter
    return vm_hardware.DEFAULT_ADAPTER


def ide_of_running_vm(adapter_type: str, props: dict) -> bool:
    """Whether a disk is IDE and its VM not off: vSphere adds, removes
    and grows IDE disks only while the VM is off (SCSI ones also while it
    runs).  ``props`` has ``runtime.powerState``."""
    return (
        adapter_type == vm_hardware.IDE
        and props.get('runtime.powerState') != 'poweredOff'
    )


def disks_of(devices: list) -> list:
    return [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]


def free_slot(devices: list, adapter: str) -> tuple[int, int, Any]:
    """(controller key, unit, new controller spec or None) for a disk."""
    taken = {
        (d.controllerKey, d.unitNumber)
        for d in devices
        if getattr(d, 'controllerKey', None) is not None
    }
    if adapter == vm_hardware.IDE:
        for device in devices:
            if isinstance(device, vim.vm.device.VirtualIDEController):
                for unit in (0, 1):
                    if (device.key, unit) not in taken:
                        return device.key, unit, None
        raise exception.StorageError(reason='no free IDE unit on the VM')
    kind = vm_hardware.CONTROLLERS.get(
        adapter, vm_hardware.CONTROLLERS[vm_hardware.DEFAULT_ADAPTER]
    )
    controllers = [d for d in devices if isinstance(d, kind)]
    for controller in controllers:
        for unit in SCSI_UNITS:
            if (controller.key, unit) not in taken:
                return controller.key, unit, None
    buses = {
        d.busNumber
        for d in devices
        if isinstance(d, vim.vm.device.VirtualSCSIController)
    }
    free_buses = [b for b in range(MAX_SCSI_BUSES) if b not in buses]
    if not free_buses:
        raise exception.StorageError(reason='no free SCSI unit on the VM')
    controller = vm_hardware.scsi_controller(adapter, NEW_CONTROLLER_KEY)
    controller.busNumber = free_buses[0]
    spec = vim.vm.device.VirtualDeviceSpec(operation='add', device=controller)
    return NEW_CONTROLLER_KEY, 0, spec


def disk_spec(disk: VolumeDisk, controller_key: int, unit: int) -> Any:
    """An existing volume disk, added as it is (no file operation)."""
    device = vim.vm.device.VirtualDisk(
        key=NEW_DISK_KEY,
        controllerKey=controller_key,
        unitNumber=unit,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=disk.path,
            diskMode='persistent',
            thinProvisioned=disk.thin,
        ),
    )
    return vim.vm.device.VirtualDeviceSpec(operation='add', device=device)


def volume_option(volume_id: str, disk: VolumeDisk | None) -> Any:
    """extraConfig ``volume-<id>``: the disk's uuid (its path where vCenter
    gives no uuid); empty once detached."""
    value = '' if disk is None else (disk.uuid or disk.path)
    return vim.option.OptionValue(key=VOLUME_KEY % volume_id, value=value)


class VolumeOps:
    """Volumes of the instances in this compute's cluster."""

    def __init__(self, session: vc_session.VCenterSession) -> None:
        self._session = session

    def _run_task(self, obj: Any, method: str, **kwargs) -> Any:
        task = self._session.invoke(obj, method, **kwargs)
        return self._session.wait_for_task(task)

    def _props(self, vm: Any, paths: list[str]) -> dict:
        return self._session.properties([vm], vim.VirtualMachine, paths)[vm]

    # -- what Cinder is told ---------------------------------------------

    def get_volume_connector(self, instance: Any, host_ip: str) -> dict:
        """As in-tree: the vCenter address, and the instance's VM moref
        (Cinder's VMDK driver creates the volume's backing near it)."""
        connector = {'ip': host_ip, 'host': host_ip}
        vm = lookup.find_vm(self._session, instance.uuid)
        if vm is not None:
            connector['instance'] = vm._moId
            host = self._props(vm, ['runtime.host'])['runtime.host']
            adapters = self._session.properties(
                [host],
                vim.HostSystem,
                ['config.storageDevice.hostBusAdapter'],
            )[host].get('config.storageDevice.hostBusAdapter')
            for adapter in adapters or []:
                if isinstance(adapter, vim.host.InternetScsiHba):
                    connector['initiator'] = adapter.iScsiName
        return connector

    # -- the volume's disk -------------------------------------------------

    def shadow_disk(self, connection_info: dict) -> tuple[Any, VolumeDisk]:
        data = check_type(connection_info)
        shadow = self._session.moref(vim.VirtualMachine, data['volume'])
        try:
            devices = self._props(shadow, ['config.hardware.device']).get(
                'config.hardware.device'
            )
        except vmodl.fault.ManagedObjectNotFound:
            raise exception.VolumeNotFound(
                volume_id=common_volumes.volume_id_of(connection_info)
            ) from None
        disks = disks_of(devices or [])
        if not disks:
            raise exception.StorageError(
                reason='the shadow VM of volume %s has no disk'
                % common_volumes.volume_id_of(connection_info)
            )
        disk = disks[0]
        backing = disk.backing
        return shadow, VolumeDisk(
            path=backing.fileName,
            adapter_type=adapter_of(devices, disk),
            thin=bool(getattr(backing, 'thinProvisioned', False)),
            capacity_kb=int(disk.capacityInKB or 0),
            uuid=getattr(backing, 'uuid', None) or None,
            device=disk,
        )

    # -- attach and detach -------------------------------------------------

    def attach(self, instance: Any, connection_info: dict) -> None:
        if connection_info.get('driver_volume_type') == ISCSI:
            self._attach_iscsi(instance, connection_info)
            return
        vm = lookup.get_vm(self._session, instance)
        _, disk = self.shadow_disk(connection_info)
        props = self._props(vm, DEVICE_PATHS)
        devices = props.get('config.hardware.device') or []
        if ide_of_running_vm(disk.adapter_type, props):
            raise exception.Invalid(
                'An IDE disk cannot be hot-added to a running VM; stop '
                'the server first'
            )
        controller, unit, new_controller = free_slot(
            devices, disk.adapter_type
        )
        changes = [disk_spec(disk, controller, unit)]
        if new_controller is not None:
            changes.insert(0, new_controller)
        volume_id = common_volumes.volume_id_of(connection_info)
        LOG.info(
            'Attaching volume %s to %s at %d:%d',
            volume_id,
            instance.uuid,
            controller,
            unit,
        )
        self._run_task(
            vm,
            'ReconfigVM_Task',
            spec=vim.vm.ConfigSpec(
                deviceChange=changes,
                extraConfig=[volume_option(volume_id, disk)],
            ),
        )

    def detach(self, instance: Any, connection_info: dict) -> None:
        vm = lookup.find_vm(self._session, instance.uuid)
        volume_id = common_volumes.volume_id_of(connection_info)
        if vm is None:
            LOG.info('VM gone; volume %s already detached', volume_id)
            return
        if connection_info.get('driver_volume_type') == ISCSI:
            self._detach_iscsi(vm, connection_info)
            return
        shadow, disk = self.shadow_disk(connection_info)
        device, props = self._volume_device(vm, disk, volume_id)
        if device is None:
            LOG.info('Volume %s is not attached; nothing to detach', volume_id)
            return
        # vSphere hot-removes SCSI disks without asking the guest (no
        # guest can hold one back), but removes no IDE disk from a
        # powered-on VM, as it adds none: refuse before vCenter does.
        devices = props.get('config.hardware.device') or []
        if ide_of_running_vm(adapter_of(devices, device), props):
            raise exception.DeviceDetachFailed(
                device=device.backing.fileName,
                reason='vSphere removes no IDE disk from a running VM; '
                'stop the server, then detach the volume',
            )
        if device.backing.fileName != disk.path:
            self._consolidate(vm, shadow, disk, device.backing.fileName)
        self._run_task(
            vm,
            'ReconfigVM_Task',
            spec=vim.vm.ConfigSpec(
                deviceChange=[
                    vim.vm.device.VirtualDeviceSpec(
                        operation='remove', device=device
                    )
                ],
                extraConfig=[volume_option(volume_id, None)],
            ),
        )

    def _volume_device(
        self, vm: Any, disk: VolumeDisk, volume_id: str
    ) -> tuple[Any, dict]:
        """The instance's disk that is the volume (or None), and the VM's
        devices and power state."""
        key = VOLUME_KEY % volume_id
        props = self._props(
            vm, DEVICE_PATHS + [f'config.extraConfig["{key}"]']
        )
        recorded = props.get(f'config.extraConfig["{key}"]')
        recorded = getattr(recorded, 'value', recorded) or ''
        device = self._attached_device(
            props.get('config.hardware.device') or [], disk, recorded
        )
        return device, props

    @staticmethod
    def _attached_device(
        devices: list, disk: VolumeDisk, recorded: str
    ) -> Any:
        """The instance's disk that is the volume: by the uuid recorded at
        attach, else by the shadow's file, else by the recorded path."""
        for device in disks_of(devices):
            backing = device.backing
            uuid = getattr(backing, 'uuid', None)
            if recorded and uuid and uuid == recorded:
                return device
        for device in disks_of(devices):
            if device.backing.fileName in (disk.path, recorded):
                return device
        return None

    def _consolidate(
        self, vm: Any, shadow: Any, disk: VolumeDisk, current: str
    ) -> None:
        """Give the shadow VM the file the instance now uses.

        In-tree ``_consolidate_vmdk_volume``: move the shadow VM to the
        datastore of the current file, drop the shadow's own (stale) copy
        of the disk, and attach the current file in its place.
        """
        LOG.info(
            'Volume disk moved from %s to %s; updating its shadow VM',
            disk.path,
            current,
        )
        datastore_name = ds_util.split(current)[0]
        props = self._props(vm, ['resourcePool', 'runtime.host', 'datastore'])
        datastores = self._session.properties(
            props.get('datastore') or [], vim.Datastore, ['name']
        )
        target = next(
            (
                ref
                for ref, p in datastores.items()
                if p['name'] == datastore_name
            ),
            None,
        )
        if target is None:
            raise exception.StorageError(
                reason=f'datastore {datastore_name} of the volume is not '
                'one of the instance VM'
            )
        self._run_task(
            shadow,
            'RelocateVM_Task',
            spec=vim.vm.RelocateSpec(
                datastore=target,
                pool=props.get('resourcePool'),
                host=props.get('runtime.host'),
            ),
        )
        _, moved = self.shadow_disk_of(shadow)
        # Two calls, as in-tree (detach_disk_from_vm, attach_disk_to_vm).
        self._run_task(
            shadow,
            'ReconfigVM_Task',
            spec=vim.vm.ConfigSpec(
                deviceChange=[
                    vim.vm.device.VirtualDeviceSpec(
                        operation='remove',
                        fileOperation='destroy',
                        device=moved.device,
                    )
                ]
            ),
        )
        self._run_task(
            shadow,
            'ReconfigVM_Task',
            spec=vim.vm.ConfigSpec(
                deviceChange=[
                    disk_spec(
                        dataclasses.replace(moved, path=current),
                        moved.device.controllerKey,
                        moved.device.unitNumber,
                    )
                ]
            ),
        )

    def shadow_disk_of(self, shadow: Any) -> tuple[Any, VolumeDisk]:
        return self.shadow_disk(
            {
                'driver_volume_type': VMDK,
                'data': {'volume': shadow._moId},
            }
        )

    # -- iSCSI -------------------------------------------------------------

    def _cluster_hosts(self, vm: Any) -> tuple[Any, list]:
        """The VM's host, and every host of its cluster."""
        host = self._props(vm, ['runtime.host'])['runtime.host']
        parent = self._session.properties([host], vim.HostSystem, ['parent'])[
            host
        ]['parent']
        hosts = self._session.properties(
            [parent], vim.ComputeResource, ['host']
        )[parent]['host']
        return host, list(hosts)

    def _iscsi_adapters(self, hosts: list) -> list[tuple[Any, Any]]:
        """(storage system, software iSCSI adapter) of each host that has
        one."""
        systems = self._session.properties(
            hosts, vim.HostSystem, ['configManager.storageSystem']
        )
        found = []
        for props in systems.values():
            system = props['configManager.storageSystem']
            adapters = self._session.properties(
                [system],
                vim.host.StorageSystem,
                ['storageDeviceInfo.hostBusAdapter'],
            )[system]['storageDeviceInfo.hostBusAdapter']
            hba = next(
                (
                    a
                    for a in adapters
                    if isinstance(a, vim.host.InternetScsiHba)
                ),
                None,
            )
            if hba is not None:
                found.append((system, hba))
        return found

    def _prepare_hosts(self, hosts: list, portal: str) -> list:
        """Send target and rescan on each host's software iSCSI adapter;
        returns (storage system, adapter, send target) of every send
        target this call added."""
        address, _, port = portal.rpartition(':')
        added = []
        for system, hba in self._iscsi_adapters(hosts):
            known = {
                '%s:%s' % (t.address, t.port)
                for t in hba.configuredSendTarget or []
            }
            if portal not in known:
                target = vim.host.InternetScsiHba.SendTarget(
                    address=address, port=int(port or 3260)
                )
                self._session.invoke(
                    system,
                    'AddInternetScsiSendTargets',
                    iScsiHbaDevice=hba.device,
                    targets=[target],
                )
                added.append((system, hba.device, target))
            self._session.invoke(system, 'RescanHba', hbaDevice=hba.device)
        return added

    def prepare_cluster(self, cluster_ref: Any, block_devices: list) -> None:
        """Before a VM with ``iscsi`` volumes moves into ``cluster_ref``:
        every host there gets the targets' portals and rescans, since
        vCenter moves a raw device mapping only to a host that has found
        its LUN."""
        portals = {
            check_type(bdm['connection_info'])['target_portal']
            for bdm in block_devices
            if (bdm.get('connection_info') or {}).get('driver_volume_type')
            == ISCSI
        }
        if not portals:
            return
        hosts = self._session.properties(
            [cluster_ref], vim.ComputeResource, ['host']
        )[cluster_ref].get('host')
        for portal in sorted(portals):
            self._prepare_hosts(list(hosts or []), portal)

    def _forget_send_targets(self, added: list) -> None:
        for system, device, target in added:
            try:
                self._session.invoke(
                    system,
                    'RemoveInternetScsiSendTargets',
                    iScsiHbaDevice=device,
                    targets=[target],
                )
            except Exception:  # noqa: BLE001 - keep the first error
                LOG.warning('Could not remove send target %s', target.address)

    def find_lun(self, host: Any, data: dict) -> tuple[str, str, int] | None:
        """(device name, LUN uuid, capacity in KB) of the connection's LUN
        on ``host``, as in-tree's ``_iscsi_get_target`` finds it."""
        paths = [
            'config.storageDevice.hostBusAdapter',
            'config.storageDevice.scsiTopology',
            'config.storageDevice.scsiLun',
        ]
        props = self._session.properties([host], vim.HostSystem, paths)[host]
        adapters = props.get(paths[0]) or []
        hba = next(
            (a for a in adapters if isinstance(a, vim.host.InternetScsiHba)),
            None,
        )
        topology = props.get(paths[1])
        if hba is None or topology is None:
            return None
        wanted = None
        for adapter in topology.adapter or []:
            if adapter.adapter != hba.key:
                continue
            for target in adapter.target or []:
                transport = target.transport
                if (
                    data['target_portal']
                    in (getattr(transport, 'address', None) or [])
                    and getattr(transport, 'iScsiName', '')
                    == data['target_iqn']
                ):
                    for lun in target.lun or []:
                        if lun.lun == int(data.get('target_lun') or 0):
                            wanted = lun.scsiLun
        for lun in props.get(paths[2]) or []:
            if lun.key == wanted:
                capacity = getattr(lun, 'capacity', None)
                size_kb = (
                    capacity.block * capacity.blockSize // 1024
                    if capacity
                    else 0
                )
                return lun.deviceName, lun.uuid, size_kb
        return None

    def _attach_iscsi(self, instance: Any, connection_info: dict) -> None:
        data = check_type(connection_info)
        vm = lookup.get_vm(self._session, instance)
        host, hosts = self._cluster_hosts(vm)
        added = self._prepare_hosts(hosts, data['target_portal'])
        try:
            found = self.find_lun(host, data)
            if found is None:
                raise exception.StorageError(
                    reason='iSCSI target %s LUN %s was not found on the '
                    "VM's host after a rescan of %s"
                    % (
                        data['target_iqn'],
                        data.get('target_lun'),
                        data['target_portal'],
                    )
                )
            device_name, lun_uuid, size_kb = found
            devices = self._props(vm, ['config.hardware.device'])[
                'config.hardware.device'
            ]
            scsi = [
                d
                for d in devices
                if isinstance(d, vim.vm.device.VirtualSCSIController)
            ]
            adapter = (
                controller_adapter(devices, scsi[0].key)
                if scsi
                else vm_hardware.DEFAULT_ADAPTER
            )
            controller, unit, new_controller = free_slot(devices, adapter)
            rdm = vim.vm.device.VirtualDisk(
                key=NEW_DISK_KEY,
                controllerKey=controller,
                unitNumber=unit,
                capacityInKB=size_kb,
                backing=vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo(
                    deviceName=device_name,
                    lunUuid=lun_uuid,
                    compatibilityMode='physicalMode',
                    diskMode='independent_persistent',
                    fileName='',
                ),
            )
            changes = [
                vim.vm.device.VirtualDeviceSpec(
                    operation='add', fileOperation='create', device=rdm
                )
            ]
            if new_controller is not None:
                changes.insert(0, new_controller)
            volume_id = common_volumes.volume_id_of(connection_info)
            self._run_task(
                vm,
                'ReconfigVM_Task',
                spec=vim.vm.ConfigSpec(
                    deviceChange=changes,
                    extraConfig=[
                        vim.option.OptionValue(
                            key=VOLUME_KEY % volume_id, value=lun_uuid
                        )
                    ],
                ),
            )
        except Exception:
            self._forget_send_targets(added)
            raise

    def _detach_iscsi(self, vm: Any, connection_info: dict) -> None:
        """Remove the RDM (its mapping file goes; the LUN stays)."""
        volume_id = common_volumes.volume_id_of(connection_info)
        key = VOLUME_KEY % volume_id
        props = self._props(
            vm, ['config.hardware.device', f'config.extraConfig["{key}"]']
        )
        recorded = props.get(f'config.extraConfig["{key}"]')
        recorded = getattr(recorded, 'value', recorded) or ''
        device = next(
            (
                d
                for d in disks_of(props.get('config.hardware.device') or [])
                if isinstance(
                    d.backing,
                    vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo,
                )
                and recorded
                and d.backing.lunUuid == recorded
            ),
            None,
        )
        if device is None:
            LOG.info('Volume %s is not attached; nothing to detach', volume_id)
            return
        self._run_task(
            vm,
            'ReconfigVM_Task',
            spec=vim.vm.ConfigSpec(
                deviceChange=[
                    vim.vm.device.VirtualDeviceSpec(
                        operation='remove',
                        fileOperation='destroy',
                        device=device,
                    )
                ],
                extraConfig=[volume_option(volume_id, None)],
            ),
        )

    # -- size ------------------------------------------------------------

    def extend(
        self, instance: Any, connection_info: dict, requested_size: int
    ) -> None:
        """Cinder has grown the volume; make the instance see its size.

        ``iscsi``: the array grew the LUN, so every host of the cluster
        rescans its adapter (``RescanHba`` rereads each LUN's capacity).
        The RDM is in physical compatibility mode: the guest addresses the
        LUN itself and sees the new size with no change to the VM.

        ``vmdk``: the instance's disk device is grown to the new size by
        ``ReconfigVM_Task`` (an ``edit`` with a larger ``capacityInKB``,
        how vSphere grows a virtual disk, also of a running VM).  vSphere
        grows no IDE disk of a running VM, so that is refused first.
        """
        volume_id = common_volumes.volume_id_of(connection_info)
        vm = lookup.get_vm(self._session, instance)
        if connection_info.get('driver_volume_type') == ISCSI:
            self._extend_iscsi(vm, connection_info, requested_size)
            return
        _, disk = self.shadow_disk(connection_info)
        device, props = self._volume_device(vm, disk, volume_id)
        if device is None:
            raise exception.VolumeNotFound(volume_id=volume_id)
        wanted_kb = -(-requested_size // 1024)
        if int(device.capacityInKB or 0) >= wanted_kb:
            return
        devices = props.get('config.hardware.device') or []
        if ide_of_running_vm(adapter_of(devices, device), props):
            raise exception.ExtendVolumeNotSupported(
                message='vSphere grows no IDE disk of a running VM; stop '
                'the server and extend again'
            )
        device.capacityInKB = wanted_kb
        if getattr(device, 'capacityInBytes', None):
            device.capacityInBytes = wanted_kb * 1024
        LOG.info('Growing volume %s of %s to %d KB', volume_id,
                 instance.uuid, wanted_kb)  # fmt: skip
        self._run_task(
            vm,
            'ReconfigVM_Task',
            spec=vim.vm.ConfigSpec(
                deviceChange=[
                    vim.vm.device.VirtualDeviceSpec(
                        operation='edit', device=device
                    )
                ]
            ),
        )

    def _extend_iscsi(
        self, vm: Any, connection_info: dict, requested_size: int
    ) -> None:
        data = check_type(connection_info)
        host, hosts = self._cluster_hosts(vm)
        # The portal is known there since the attach: this rescans.
        self._prepare_hosts(hosts, data['target_portal'])
        found = self.find_lun(host, data)
        if found is None:
            raise exception.VolumeNotFound(
                volume_id=common_volumes.volume_id_of(connection_info)
            )
        size = found[2] * 1024
        if size < requested_size:
            raise exception.StorageError(
                reason='the LUN is %d bytes after a rescan, not %d'
                % (size, requested_size)
            )

    # -- boot from volume --------------------------------------------------

    def root_devices(
        self, connection_info: dict, controller_key: int
    ) -> tuple[VolumeDisk, Any]:
        """The root disk spec of a VM booting from a volume."""
        _, disk = self.shadow_disk(connection_info)
        return disk, disk_spec(disk, controller_key, 0)
