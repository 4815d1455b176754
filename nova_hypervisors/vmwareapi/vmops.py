"""VM lifecycle: spawn, destroy, power operations and state.

Spawn builds the VM in the cluster's resource pool and the instance folder
from a cached image disk (linked or full clone), with one NIC per Neutron
port and a config drive when Nova asks for one.  Placement on a host is
vSphere's job (DRS); only when DRS is off do we pick the best-fitting host.
Everything spawn creates is registered for undo, so a failure leaves
nothing behind.
"""

from collections.abc import Callable
import contextlib
import dataclasses
import logging
from typing import Any

from nova import exception
from nova.virt import configdrive
from nova.virt import driver as virt_driver
from nova.virt import hardware
from oslo_utils import units
from pyVmomi import vim

from nova_hypervisors.common import configdrive as config_drive
from nova_hypervisors.common import volumes as common_volumes
from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import datastore as ds_util
from nova_hypervisors.vmwareapi import events
from nova_hypervisors.vmwareapi import hardware as vm_hardware
from nova_hypervisors.vmwareapi import image_aging
from nova_hypervisors.vmwareapi import images
from nova_hypervisors.vmwareapi import interfaces
from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import network
from nova_hypervisors.vmwareapi import session as vc_session
from nova_hypervisors.vmwareapi import thin_copy
from nova_hypervisors.vmwareapi import volumeops

LOG = logging.getLogger(__name__)

INSTANCE_FOLDER = 'OpenStack'
SCSI_KEY = -100
ROOT_DISK_KEY = -101
CDROM_KEY = -102
EXTRA_DISK_KEY = -110
IDE_UNITS = (0, 1)
VNC_KEY = 'RemoteDisplay.vnc.port'
VNC_PATH = f'config.extraConfig["{VNC_KEY}"]'
VM_PATHS = ['runtime.powerState', 'config.files.vmPathName']


@dataclasses.dataclass(frozen=True)
class SpawnSettings:
    """The [vmware]/[vnc] values spawn needs, read at init_host."""

    datastore_regex: str | None
    use_linked_clone: bool
    vnc_enabled: bool
    vnc_port: int
    vnc_port_total: int
    vnc_keymap: str | None


def ensure_instance_folder(
    session: vc_session.VCenterSession, vm_folder: Any
) -> Any:
    """The ``OpenStack`` folder in a datacenter's VM folder, made if new."""
    try:
        return session.invoke(vm_folder, 'CreateFolder', name=INSTANCE_FOLDER)
    except vim.fault.DuplicateName as error:
        return error.object


def ide_slots(devices: list) -> list[tuple[int, int]]:
    """The free (controller key, unit number) pairs of a VM's IDE
    controllers, in bus order (two units on each)."""
    taken = {
        (device.controllerKey, device.unitNumber)
        for device in devices
        if getattr(device, 'controllerKey', None) is not None
    }
    controllers = sorted(
        (
            device
            for device in devices
            if isinstance(device, vim.vm.device.VirtualIDEController)
        ),
        key=lambda controller: controller.busNumber,
    )
    return [
        (controller.key, unit)
        for controller in controllers
        for unit in IDE_UNITS
        if (controller.key, unit) not in taken
    ]


def vm_directory(vm_path_name: str) -> str:
    """``[ds] uuid/uuid.vmx`` -> ``[ds] uuid``."""
    return vm_path_name.rsplit('/', 1)[0]


def vm_name(display_name: str | None, uuid: str) -> str:
    """What vCenter shows for an instance's VM: "<display name> (<uuid>)",
    as in-tree renames its VMs (vm_util._get_vm_name), within vSphere's 80
    characters.  The VM's files are named by the uuid alone (vmPathName)."""
    if display_name:
        return f'{display_name[:41]} ({uuid[:36]})'
    return uuid[:36]


class VMOps:
    """Creates, removes and powers the instances' VMs."""

    def __init__(
        self,
        session: vc_session.VCenterSession,
        node: cluster.Node,
        files: ds_util.DatastoreFiles,
        image_cache: images.ImageCache,
        states: events.PowerStates,
        settings: SpawnSettings,
        copier: thin_copy.ThinCopier,
    ) -> None:
        self._session = session
        self.volumes = volumeops.VolumeOps(session)
        self._copier = copier
        self._node = node
        self._files = files
        self._images = image_cache
        self._states = states
        self._settings = settings
        self._folder = None
        self._vnc_ports: set[int] | None = None

    # -- helpers ------------------------------------------------------------

    def instance_folder(self) -> Any:
        """The ``OpenStack`` VM folder of the datacenter, created once."""
        if self._folder is None:
            self._folder = ensure_instance_folder(
                self._session, self._node.vm_folder
            )
        return self._folder

    def _run_task(self, managed_object: Any, method: str, **kwargs) -> Any:
        task = self._session.invoke(managed_object, method, **kwargs)
        return self._session.wait_for_task(task)

    def vm_properties(self, vm: Any, paths: list[str]) -> dict:
        return self._session.properties([vm], vim.VirtualMachine, paths)[vm]

    # -- spawn --------------------------------------------------------------

    def spawn(
        self,
        context: Any,
        instance: Any,
        image_meta: Any,
        injected_files: list,
        admin_password: str,
        network_info: list,
        power_on: bool = True,
        block_device_info: dict | None = None,
    ) -> None:
        """Create the instance's VM and power it on; undo all on failure.

        A volume with boot index 0 is the root disk (boot from volume):
        no image is fetched.  Other volumes are attached before the VM
        powers on.
        """
        volumes = virt_driver.block_device_info_get_mapping(block_device_info)
        if common_volumes.root_volume_of(volumes) is None and not (
            'id' in image_meta and image_meta.id
        ):
            raise exception.InstanceDeployFailure(
                reason='no image and no boot volume to boot from'
            )
        undo: list[Callable[[], None]] = []
        try:
            self._spawn(
                context,
                instance,
                image_meta,
                injected_files,
                admin_password,
                network_info,
                undo,
                block_device_info,
            )
            if power_on:
                self.power_on(instance)
        except Exception:
            with contextlib.suppress(Exception):
                LOG.warning('Spawn of %s failed; cleaning up', instance.uuid)
            for step in reversed(undo):
                try:
                    step()
                except Exception:  # noqa: BLE001 - keep the first error
                    LOG.exception('Cleanup after failed spawn failed')
            self._states.expect(instance.uuid, None)
            raise

    def _spawn(
        self,
        context,
        instance,
        image_meta,
        injected_files,
        admin_password,
        network_info,
        undo,
        block_device_info=None,
    ) -> None:
        flavor = instance.flavor
        volumes = virt_driver.block_device_info_get_mapping(block_device_info)
        root_volume = common_volumes.root_volume_of(volumes)
        # What the flavor and image ask for, checked before anything is
        # created (an unknown adapter or NIC model is ImageUnacceptable).
        spec = vim.vm.ConfigSpec()
        vm_hardware.apply(spec, flavor, image_meta)
        adapter = vm_hardware.adapter_type(image_meta)
        card_class = vm_hardware.vif_model(image_meta)
        root_disk = None
        # An iSCSI root volume is attached as an RDM at unit 0 once the VM
        # exists (in-tree attach_root_volume attaches it the same way).
        rdm_root = (
            root_volume is not None
            and root_volume['connection_info'].get('driver_volume_type')
            == volumeops.ISCSI
        )
        if root_volume is not None and not rdm_root:
            # The volume's own disk, on a controller of its adapter type.
            _, root_disk = self.volumes.shadow_disk(
                root_volume['connection_info']
            )
            adapter = root_disk.adapter_type
        # The DRS flag, hosts and datastores; what the hosts' VMs hold
        # comes from the power-state watch.
        capacity = cluster.read_capacity(
            self._session,
            self._node,
            self._settings.datastore_regex,
            self._states.host_usage(),
        )
        datastore = cluster.best_datastore(capacity, flavor.root_gb * units.Gi)
        host = self._host_for(capacity, flavor.memory_mb, datastore)
        cached = (
            None
            if root_volume is not None
            else self._images.fetch(context, image_meta, datastore.name)
        )

        uuid = instance.uuid
        vm_dir = ds_util.path(datastore.name, uuid)
        self._files.make_directory(vm_dir)
        undo.append(lambda: self._files.delete(vm_dir))

        disk_path = ds_util.path(datastore.name, uuid, f'{uuid}.vmdk')
        # The root disk on an IDE controller (ESXi has two, keys 200 and
        # 201) or on a SCSI controller of the image's adapter type; other
        # disks go on SCSI in any case.
        devices = [self._scsi_controller_spec(adapter)]
        # Devices for an IDE controller are added once the VM exists (see
        # _attach_ide).
        on_ide: list = []
        root_list = on_ide if adapter == vm_hardware.IDE else devices
        image_bytes = image_meta.size if 'size' in image_meta else 0
        image_kb = -(-int(image_bytes or 0) // units.Ki)
        grow = flavor.root_gb * units.Mi > image_kb
        if root_disk is not None:
            root_list.append(
                volumeops.disk_spec(root_disk, SCSI_KEY, 0)
                if adapter != vm_hardware.IDE
                else volumeops.disk_spec(root_disk, 0, 0)
            )
        elif rdm_root:
            pass
        elif self._settings.use_linked_clone:
            # The child has exactly its parent's capacity: vSphere never
            # expands a disk with a parent.
            parent = cached
            capacity_kb = image_kb
            if grow:
                parent = self._images.sized(
                    cached,
                    datastore.name,
                    image_meta.id,
                    flavor.root_gb,
                    image_kb,
                    host,
                )
                capacity_kb = flavor.root_gb * units.Mi
            root_list.append(
                self._disk_spec(disk_path, capacity_kb, parent=parent)
            )
        else:
            # A full copy, thin (thin_copy), grown after the copy as
            # in-tree does (vm_util.extend_virtual_disk), then added as
            # it is.
            self._copier.copy(cached, disk_path, image_kb, host)
            if grow:
                self._files.extend_disk(disk_path, flavor.root_gb * units.Mi)
            root_list.append(self._disk_spec(disk_path, None))
        devices += self._extra_disk_specs(
            instance,
            datastore.name,
            block_device_info,
            first_unit=0 if adapter == vm_hardware.IDE else 1,
        )
        devices += network.nic_specs(
            self._session,
            self._node.cluster,
            network_info,
            card_class,
            vm_hardware.vif_allocation(flavor),
        )
        disk_io = vm_hardware.disk_io_allocation(flavor)
        if disk_io is not None:
            for change in devices + on_ide:
                if isinstance(change.device, vim.vm.device.VirtualDisk):
                    change.device.storageIOAllocation = disk_io
        if configdrive.required_by(instance):
            iso = self._upload_config_drive(
                context,
                instance,
                injected_files,
                admin_password,
                network_info,
                vm_dir,
            )
            on_ide.append(self._cdrom_spec(iso))

        spec.name = vm_name(instance.display_name, uuid)
        spec.instanceUuid = uuid
        spec.numCPUs = flavor.vcpus
        spec.memoryMB = flavor.memory_mb
        spec.annotation = f'name:{instance.display_name}\nuuid:{uuid}'
        spec.managedBy = lookup.managed_by()
        spec.files = vim.vm.FileInfo(
            vmPathName=ds_util.path(datastore.name, uuid, f'{uuid}.vmx')
        )
        spec.extraConfig = self._extra_config(instance)
        spec.extraConfig += interfaces.spawn_options(network_info)
        if root_disk is not None:
            spec.extraConfig.append(
                volumeops.volume_option(
                    common_volumes.volume_id_of(
                        root_volume['connection_info']
                    ),
                    root_disk,
                )
            )
        elif self._settings.use_linked_clone and not rdm_root:
            # The cache must keep this VM's parent (image_aging).
            spec.extraConfig.append(
                image_aging.parent_option(
                    self._images.image_folder(datastore.name, image_meta.id)
                )
            )
        spec.deviceChange = devices
        self._states.expect(uuid, 'poweredOff')
        vm = self._run_task(
            self.instance_folder(),
            'CreateVM_Task',
            config=spec,
            pool=self._node.resource_pool,
            host=host,
        )
        undo.append(lambda: self._destroy_vm(vm))
        LOG.info('Created VM %s for instance %s', vm._moId, uuid)
        if on_ide:
            self._attach_ide(vm, on_ide)
        # The root RDM first, so it takes unit 0.
        for volume in sorted(volumes, key=lambda v: v is not root_volume):
            if volume is not root_volume or rdm_root:
                self.volumes.attach(instance, volume['connection_info'])

    def _attach_ide(self, vm: Any, changes: list) -> None:
        """Add disks and CD-ROMs to the IDE controllers the VM has.

        ESXi gives every new VM its two IDE controllers itself; their keys
        are not ours to assume in the CreateVM spec.  As Nova's in-tree
        driver does (``vm_util.allocate_controller_key_and_unit_number``
        over ``config.hardware.device``, then ``ReconfigVM_Task``), the
        devices go on the free units of the controllers found after
        creation, in order: the root disk first, on the first free unit.
        """
        found = self.vm_properties(vm, ['config.hardware.device'])
        slots = ide_slots(found.get('config.hardware.device') or [])
        if len(slots) < len(changes):
            raise exception.InstanceDeployFailure(
                reason=f'the VM has {len(slots)} free IDE units; '
                f'{len(changes)} are needed'
            )
        for change, (controller, unit) in zip(changes, slots, strict=False):
            change.device.controllerKey = controller
            change.device.unitNumber = unit
        self._run_task(
            vm, 'ReconfigVM_Task', spec=vim.vm.ConfigSpec(deviceChange=changes)
        )

    def _host_for(
        self,
        capacity: cluster.Capacity,
        memory_mb: int,
        datastore: cluster.Datastore,
    ) -> Any:
        """None (DRS places the VM) or, with DRS off, the best-fitting host.

        The best fit is the usable host with the most memory left that can
        still hold the flavor and mounts the chosen datastore.  Without DRS
        vCenter wants a host for a VM created in a cluster (vSphere API,
        Folder.CreateVM_Task: "host ... can be omitted only ... with DRS").
        """
        if capacity.drs_enabled:
            return None
        best = cluster.pick_host(capacity, memory_mb, [datastore])
        if best is None:
            raise exception.ComputeResourcesUnavailable(
                reason=f'no host of cluster {self._node.cluster_name} that '
                f'mounts {datastore.name} has {memory_mb} MB of memory left'
            )
        return best.ref

    def _extra_disk_specs(
        self,
        instance: Any,
        datastore: str,
        block_device_info: dict | None,
        first_unit: int = 1,
    ) -> list:
        """New thin disks for the ephemerals and the swap, as in-tree
        (``vmops._create_ephemeral`` and ``_create_swap``): the block
        device mapping's, else the flavor's."""
        flavor = instance.flavor
        ephemerals = virt_driver.block_device_info_get_ephemerals(
            block_device_info
        )
        sizes = [int(e.get('size') or 0) for e in ephemerals]
        if not ephemerals and flavor.ephemeral_gb:
            sizes = [int(flavor.ephemeral_gb)]
        swap = virt_driver.block_device_info_get_swap(block_device_info)
        swap_mb = int((swap or {}).get('swap_size') or flavor.swap or 0)
        folder = ds_util.path(datastore, instance.uuid)
        specs = []
        unit = first_unit
        for index, size_gb in enumerate(sizes):
            if size_gb:
                specs.append(
                    self._new_disk_spec(
                        f'{folder}/ephemeral_{index}.vmdk',
                        size_gb * units.Mi,
                        unit,
                    )
                )
                unit += 1
        if swap_mb:
            specs.append(
                self._new_disk_spec(
                    f'{folder}/swap.vmdk', swap_mb * units.Ki, unit
                )
            )
        return specs

    @staticmethod
    def _new_disk_spec(disk_path: str, capacity_kb: int, unit: int) -> Any:
        """An empty thin disk, created with the VM."""
        disk = vim.vm.device.VirtualDisk(
            key=EXTRA_DISK_KEY - unit,
            controllerKey=SCSI_KEY,
            unitNumber=unit,
            capacityInKB=capacity_kb,
            capacityInBytes=capacity_kb * units.Ki,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=disk_path,
                diskMode='persistent',
                thinProvisioned=True,
            ),
        )
        return vim.vm.device.VirtualDeviceSpec(
            operation='add', fileOperation='create', device=disk
        )

    @staticmethod
    def _scsi_controller_spec(adapter: str) -> Any:
        controller = vm_hardware.scsi_controller(adapter, SCSI_KEY)
        return vim.vm.device.VirtualDeviceSpec(
            operation='add', device=controller
        )

    @staticmethod
    def _disk_spec(
        disk_path: str,
        capacity_kb: int | None,
        parent: str | None = None,
        key: int = ROOT_DISK_KEY,
        unit: int = 0,
        controller_key: int = SCSI_KEY,
    ) -> Any:
        """A root disk: a child of a cached parent (linked clone), or an
        existing full copy (``capacity_kb`` None: as it is)."""
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=disk_path, diskMode='persistent', thinProvisioned=True
        )
        spec = vim.vm.device.VirtualDeviceSpec(operation='add')
        if parent:
            backing.parent = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=parent, diskMode='persistent'
            )
            spec.fileOperation = 'create'
        disk = vim.vm.device.VirtualDisk(
            key=key,
            controllerKey=controller_key,
            unitNumber=unit,
            backing=backing,
        )
        if capacity_kb is not None:
            disk.capacityInKB = capacity_kb
            disk.capacityInBytes = capacity_kb * units.Ki
        spec.device = disk
        return spec

    @staticmethod
    def _cdrom_spec(iso_path: str) -> Any:
        """A CD-ROM for an IDE unit chosen later (_attach_ide)."""
        cdrom = vim.vm.device.VirtualCdrom(
            key=CDROM_KEY,
            backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(
                fileName=iso_path
            ),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                startConnected=True, connected=True, allowGuestControl=False
            ),
        )
        return vim.vm.device.VirtualDeviceSpec(operation='add', device=cdrom)

    def _extra_config(self, instance: Any) -> list:
        options = [
            vim.option.OptionValue(key='nvp.vm-uuid', value=instance.uuid),
            # Stable disk serials in the guest, as in-tree sets.
            vim.option.OptionValue(key='disk.EnableUUID', value='true'),
        ]
        if self._settings.vnc_enabled:
            port = self._allocate_vnc_port()
            options += [
                vim.option.OptionValue(
                    key='RemoteDisplay.vnc.enabled', value='true'
                ),
                vim.option.OptionValue(key=VNC_KEY, value=str(port)),
            ]
            if self._settings.vnc_keymap:
                options.append(
                    vim.option.OptionValue(
                        key='RemoteDisplay.vnc.keyMap',
                        value=self._settings.vnc_keymap,
                    )
                )
        return options

    def _allocate_vnc_port(self) -> int:
        """The lowest free port of [vmware] vnc_port/vnc_port_total.

        Ports in use are read from the cluster once, then tracked here;
        ports of VMs deleted since are found free again by a new read when
        the range looks exhausted.  Only vCenter before 7 gets here (ESXi 7
        has no VNC server).
        """
        first = self._settings.vnc_port
        ports = range(first, first + self._settings.vnc_port_total)
        for fresh in (self._vnc_ports is None, True):
            if fresh:
                self._vnc_ports = self._vnc_ports_in_use()
            for port in ports:
                if port not in self._vnc_ports:
                    self._vnc_ports.add(port)
                    return port
        raise exception.ConsolePortRangeExhausted(
            min_port=first, max_port=first + self._settings.vnc_port_total
        )

    def _vnc_ports_in_use(self) -> set[int]:
        """The VNC ports of the cluster's VMs, by the keyed path of that
        one extraConfig key (vSphere keyed property paths), not the VMs'
        whole extraConfig."""
        from nova_hypervisors.vmwareapi import inventory

        found = inventory.read_cluster(
            self._session,
            self._node.cluster,
            {vim.VirtualMachine: [VNC_PATH]},
        )[vim.VirtualMachine]
        used = set()
        for props in found.values():
            option = props.get(VNC_PATH)
            with contextlib.suppress(TypeError, ValueError):
                used.add(int(getattr(option, 'value', None)))
        return used

    def _upload_config_drive(
        self,
        context,
        instance,
        injected_files,
        admin_password,
        network_info,
        vm_dir,
    ) -> str:
        image = config_drive.build(
            instance, injected_files, admin_password, network_info
        )
        target = f'{vm_dir}/configdrive.iso'
        chunks = (
            image[start : start + ds_util.CHUNK]
            for start in range(0, len(image), ds_util.CHUNK)
        )
        self._files.upload(target, chunks, len(image))
        return target

    # -- destroy ------------------------------------------------------------

    def destroy(self, instance: Any, destroy_disks: bool = True) -> None:
        """Remove the VM and its directory; a missing VM is not an error."""
        vm = lookup.find_vm(self._session, instance.uuid)
        if vm is None:
            LOG.info('Instance %s has no VM in vCenter', instance.uuid)
            self._states.expect(instance.uuid, None)
            return
        if destroy_disks:
            self._destroy_vm(vm)
        else:
            self._power_off_vm(vm)
            self._session.invoke(vm, 'UnregisterVM')
        self._states.expect(instance.uuid, None)

    def _destroy_vm(self, vm: Any) -> None:
        """Unregister the VM, then delete its own directory.

        Never ``Destroy_Task``: with the disks attached, vCenter deletes
        each disk's whole backing chain (vmware/vic#1383), and a linked
        clone's parent is the cached image every other clone of the image
        still needs.  Nova's in-tree driver does the same
        (``vmops._destroy_instance``: UnregisterVM, DeleteDatastoreFile).
        """
        props = self.vm_properties(vm, VM_PATHS)
        self._power_off_vm(vm, props.get('runtime.powerState'))
        self._session.invoke(vm, 'UnregisterVM')
        vm_path = props.get('config.files.vmPathName')
        if vm_path:
            self._files.delete(vm_directory(vm_path))

    def _power_off_vm(self, vm: Any, state: str | None = None) -> None:
        if state is None:
            state = self.vm_properties(vm, VM_PATHS).get('runtime.powerState')
        if state in ('poweredOn', 'suspended'):
            try:
                self._run_task(vm, 'PowerOffVM_Task')
            except vc_session.TaskFailed as error:
                if not isinstance(error.fault, vim.fault.InvalidPowerState):
                    raise

    # -- power --------------------------------------------------------------

    def _power(self, instance: Any, method: str, expected: str) -> None:
        vm = lookup.get_vm(self._session, instance)
        with self._states.changing(instance.uuid, expected):
            try:
                self._run_task(vm, method)
            except vc_session.TaskFailed as error:
                self._states.retract(instance.uuid, expected)
                if not isinstance(error.fault, vim.fault.InvalidPowerState):
                    raise
                LOG.debug(
                    '%s: VM of %s already %s', method, instance.uuid, expected
                )
            except Exception:
                self._states.retract(instance.uuid, expected)
                raise

    def power_on(self, instance: Any) -> None:
        self._power(instance, 'PowerOnVM_Task', 'poweredOn')

    def power_off(self, instance: Any, timeout: int = 0) -> None:
        """Clean shutdown within ``timeout`` seconds, then hard power off."""
        vm = lookup.get_vm(self._session, instance)
        if timeout and self._shutdown_guest(vm, instance, timeout):
            return
        self._power(instance, 'PowerOffVM_Task', 'poweredOff')

    def _shutdown_guest(self, vm: Any, instance: Any, timeout: int) -> bool:
        props = self.vm_properties(
            vm, ['runtime.powerState', 'guest.toolsRunningStatus']
        )
        if props.get('runtime.powerState') != 'poweredOn':
            return props.get('runtime.powerState') == 'poweredOff'
        if props.get('guest.toolsRunningStatus') != 'guestToolsRunning':
            return False
        with self._states.changing(instance.uuid, 'poweredOff'):
            try:
                self._session.invoke(vm, 'ShutdownGuest')
            except (vim.fault.ToolsUnavailable, vim.fault.InvalidState):
                self._states.retract(instance.uuid, 'poweredOff')
                return False
            return self._session.wait_for_value(
                vm,
                vim.VirtualMachine,
                'runtime.powerState',
                'poweredOff',
                timeout,
            )

    def reboot(self, instance: Any, reboot_type: str) -> None:
        """SOFT asks the guest (VMware Tools), falling back to a reset."""
        vm = lookup.get_vm(self._session, instance)
        props = self.vm_properties(
            vm, ['runtime.powerState', 'guest.toolsRunningStatus']
        )
        if props.get('runtime.powerState') != 'poweredOn':
            self.power_on(instance)
            return
        if (
            reboot_type == 'SOFT'
            and props.get('guest.toolsRunningStatus') == 'guestToolsRunning'
        ):
            try:
                self._session.invoke(vm, 'RebootGuest')
                return
            except (
                vim.fault.ToolsUnavailable,
                vim.fault.InvalidState,
                vim.fault.TaskInProgress,
                vim.fault.MethodNotFound,
            ):
                LOG.info('Soft reboot of %s failed; resetting', instance.uuid)
            except Exception as error:  # vcsim lacks RebootGuest
                if 'MethodNotFound' not in type(error).__name__:
                    raise
                LOG.info('Soft reboot of %s failed; resetting', instance.uuid)
        self._power(instance, 'ResetVM_Task', 'poweredOn')

    def suspend(self, instance: Any) -> None:
        self._power(instance, 'SuspendVM_Task', 'suspended')

    def resume(self, instance: Any) -> None:
        self.power_on(instance)

    # -- state --------------------------------------------------------------

    def get_info(
        self, instance: Any, use_cache: bool = True
    ) -> hardware.InstanceInfo:
        """From the watched cache when it can vouch, else one lookup.

        Nova asks with ``use_cache=False`` when it is about to act on the
        answer (a lifecycle event, an unexpected shutdown): then vCenter
        itself is asked, since an event may still be on its way.
        """
        state = self._states.get(instance.uuid) if use_cache else None
        if state is None:
            try:
                vm = lookup.get_vm(self._session, instance)
                state = self.vm_properties(vm, ['runtime.powerState']).get(
                    'runtime.powerState'
                )
            except exception.InstanceNotFound:
                raise
            except Exception:
                # Right after spawn Nova asks for the power state outside
                # its build's cleanup: an error here would leave the new VM
                # behind an instance without a host, which no delete
                # reaches.  What the driver last saw or did is the answer.
                state = self._states.last(instance.uuid)
                if state is None:
                    raise
                LOG.warning(
                    'Reading the VM of %s failed; answering its last '
                    'watched power state',
                    instance.uuid,
                    exc_info=True,
                )
        return hardware.InstanceInfo(state=events.POWER_STATES.get(state, 0))

    def instance_exists(self, instance: Any) -> bool:
        return lookup.find_vm(self._session, instance.uuid) is not None

    def list_instance_uuids(self) -> list[str]:
        """From the watch once its snapshot is whole (no request), else
        one read of the cluster's VMs."""
        if self._states.known():
            return sorted(self._states.uuids())
        return sorted(lookup.cluster_vms(self._session, self._node.cluster))
