"""Moving instances between the clusters (nodes) of one vCenter.

Cold migration and resize power the VM off at the source; the destination
takes it over with ``RelocateVM_Task`` into its own resource pool, applies
the new flavor and powers it on.  A revert is the same take-over by the
source with the old flavor.  Live migration is ``RelocateVM_Task`` with the
VM powered on.  The datastore only changes when the destination cannot use
the current one.  Placement inside a cluster stays DRS's job; a host is
named only because a relocation into a cluster needs one when DRS is off.

vSphere can grow a virtual disk but never shrink it.  So a resize that grows
the root disk grows a copy of it put in its place and keeps the original
untouched (its path and size in the VM's ``extraConfig``); a revert puts the
original back, so the instance really returns to the old flavor's disk, and
a confirm deletes it.
"""

import logging
from typing import Any

from nova import exception
from nova import objects
from nova.compute import task_states
from oslo_utils import units
from pyVmomi import vim

from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import datastore as ds_util
from nova_hypervisors.vmwareapi import events
from nova_hypervisors.vmwareapi import guest_disks
from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import network
from nova_hypervisors.vmwareapi import session as vc_session
from nova_hypervisors.vmwareapi import thin_copy
from nova_hypervisors.vmwareapi import vmops as vm_ops

LOG = logging.getLogger(__name__)
VM_PATHS = [
    'parent',
    'resourcePool',
    'datastore',
    'config.hardware.device',
    'config.extraConfig',
    'runtime.host',
]
#: extraConfig keys naming the pre-resize root disk and its size.
BACKUP_PATH_KEY = 'nova.resize.rootBackup'
BACKUP_KB_KEY = 'nova.resize.rootBackupKB'
#: The grown copy that replaces the root disk during a resize.
GROWN_SUFFIX = '-resized.vmdk'


def extra_config(options: list | None, key: str) -> str:
    """The value of ``key``; the last one wins (vcsim appends options
    where vCenter replaces them), and an empty value means unset."""
    value = ''
    for option in options or ():
        if option.key == key:
            value = option.value or ''
    return value


def _backup_options(path: str, size_kb: int) -> list:
    """extraConfig naming the pre-resize root disk; '' clears it."""
    return [
        vim.option.OptionValue(key=BACKUP_PATH_KEY, value=path),
        vim.option.OptionValue(
            key=BACKUP_KB_KEY, value=str(size_kb) if path else ''
        ),
    ]


def _disk_add_spec(root: Any, path: str, capacity_kb: int) -> Any:
    """Attach the existing disk ``path`` where ``root`` is."""
    disk = vim.vm.device.VirtualDisk(
        key=-1,
        controllerKey=root.controllerKey,
        unitNumber=root.unitNumber,
        capacityInKB=capacity_kb or None,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=path,
            diskMode=root.backing.diskMode or 'persistent',
            thinProvisioned=root.backing.thinProvisioned,
        ),
    )
    return vim.vm.device.VirtualDeviceSpec(operation='add', device=disk)


class Migrations:
    """Resize, cold and live migration between the clusters of a vCenter."""

    def __init__(
        self,
        session: vc_session.VCenterSession,
        node: cluster.Node,
        vmops: vm_ops.VMOps,
        files: ds_util.DatastoreFiles,
        states: events.PowerStates,
        datastore_regex: str | None,
        copier: thin_copy.ThinCopier,
    ) -> None:
        self._session = session
        self._files = files
        self._copier = copier
        self._node = node
        self._vmops = vmops
        self._states = states
        self._datastore_regex = datastore_regex

    # -- resize / cold migration -----------------------------------------

    def migrate_disk_and_power_off(
        self, instance: Any, flavor: Any, timeout: int
    ) -> str:
        if flavor.root_gb < instance.flavor.root_gb:
            raise exception.InstanceFaultRollback(
                exception.ResizeError(
                    reason='a root disk cannot shrink '
                    f'({instance.flavor.root_gb} GB -> {flavor.root_gb} GB)'
                )
            )
        self._vmops.power_off(instance, timeout)
        return ''

    def finish_migration(
        self, instance: Any, network_info: list, power_on: bool
    ) -> None:
        """Take the VM into this cluster with the instance's new flavor."""
        vm, props = self._take_over(instance, network_info)
        changes = self._grow_root_disk(vm, props, instance.flavor.root_gb)
        self._apply_flavor(vm, instance.flavor, changes)
        if power_on:
            self._vmops.power_on(instance)

    def finish_revert_migration(
        self, instance: Any, network_info: list, power_on: bool
    ) -> None:
        """Take the VM back with the old flavor and, if the resize grew
        the root disk, the root disk as it was before."""
        vm, props = self._take_over(instance, network_info)
        self._restore_root_disk(vm, props)
        self._apply_flavor(vm, instance.flavor)
        if power_on:
            self._vmops.power_on(instance)

    def confirm_migration(self, instance: Any) -> None:
        """The VM moved, it was not copied: only the original of a grown
        root disk is left to delete."""
        vm = lookup.find_vm(self._session, instance.uuid)
        if vm is None:
            return
        options = self._vmops.vm_properties(vm, ['config.extraConfig']).get(
            'config.extraConfig'
        )
        backup = extra_config(options, BACKUP_PATH_KEY)
        if not backup:
            return
        self._files.delete_disk(backup)
        self._apply_flavor(vm, None, extra=_backup_options('', 0))
        LOG.info('Deleted the pre-resize root disk %s', backup)

    @staticmethod
    def keeps_vm(instance: Any) -> bool:
        """Whether destroy must leave the VM alone: during a resize revert
        the destination drops the instance, but the VM goes back."""
        return instance.task_state == task_states.RESIZE_REVERTING

    def _take_over(
        self, instance: Any, network_info: list
    ) -> tuple[Any, dict]:
        vm = lookup.get_vm(self._session, instance)
        props = self._vmops.vm_properties(vm, VM_PATHS)
        self._relocate(
            vm,
            props,
            self._node,
            self._datastore_regex,
            instance,
            network_info,
        )
        return vm, props

    def _grow_root_disk(self, vm: Any, props: dict, root_gb: int) -> list:
        """Put a grown copy of the root disk in its place; return the device
        change that grows it to ``root_gb`` (applied with the flavor).

        The copy is a standalone thin disk (a full clone consolidates a
        linked clone's chain), so growing it never touches a delta
        disk; the original stays as it was, for a revert.  A second resize
        before the first is confirmed or reverted keeps the first original.
        """
        root = guest_disks.root_disk(props.get('config.hardware.device'))
        wanted_kb = root_gb * units.Mi
        current_kb = root.capacityInKB or 0
        if wanted_kb <= current_kb:
            return []
        options = props.get('config.extraConfig')
        if not extra_config(options, BACKUP_PATH_KEY):
            original = root.backing.fileName
            grown = original[: -len('.vmdk')] + GROWN_SUFFIX
            # Thin, on the host the VM is on (thin_copy).
            self._copier.copy(
                original, grown, current_kb, props.get('runtime.host')
            )
            swap = [
                vim.vm.device.VirtualDeviceSpec(
                    operation='remove', device=root
                ),
                _disk_add_spec(root, grown, current_kb),
            ]
            self._apply_flavor(
                vm, None, swap, extra=_backup_options(original, current_kb)
            )
            devices = self._vmops.vm_properties(
                vm, ['config.hardware.device']
            )['config.hardware.device']
            root = guest_disks.root_disk(devices)
        root.capacityInKB = wanted_kb
        root.capacityInBytes = wanted_kb * units.Ki
        return [vim.vm.device.VirtualDeviceSpec(operation='edit', device=root)]

    def _restore_root_disk(self, vm: Any, props: dict) -> None:
        """Put the original root disk back in place of the grown copy."""
        options = props.get('config.extraConfig')
        original = extra_config(options, BACKUP_PATH_KEY)
        if not original:
            return
        original_kb = int(extra_config(options, BACKUP_KB_KEY) or 0)
        root = guest_disks.root_disk(props.get('config.hardware.device'))
        swap = [
            vim.vm.device.VirtualDeviceSpec(
                operation='remove', fileOperation='destroy', device=root
            ),
            _disk_add_spec(root, original, original_kb),
        ]
        self._apply_flavor(vm, None, swap, extra=_backup_options('', 0))
        LOG.info('Restored the pre-resize root disk %s', original)

    def _apply_flavor(
        self,
        vm: Any,
        flavor: Any | None,
        changes: list | None = None,
        extra: list | None = None,
    ) -> None:
        """One ReconfigVM: the flavor's CPUs and memory (when given),
        device changes and extraConfig options."""
        spec = vim.vm.ConfigSpec(deviceChange=changes or [])
        if flavor is not None:
            spec.numCPUs = flavor.vcpus
            spec.memoryMB = flavor.memory_mb
        if extra:
            spec.extraConfig = extra
        task = self._session.invoke(vm, 'ReconfigVM_Task', spec=spec)
        self._session.wait_for_task(task)

    def _relocate(
        self,
        vm: Any,
        props: dict,
        node: cluster.Node,
        datastore_regex: str | None,
        instance: Any,
        network_info: list,
    ) -> None:
        """Move the VM into ``node``'s cluster: its resource pool, a host
        (without DRS), a datastore the cluster can use, the cluster's own
        networks for its cards and, in another datacenter, that
        datacenter's instance folder."""
        pool_owner = self._session.properties(
            [props['resourcePool']], vim.ResourcePool, ['owner']
        )[props['resourcePool']].get('owner')
        if pool_owner == node.cluster:
            return
        # Our own cluster's VMs are followed by the watch; another
        # cluster's are read with its hosts.
        usage = self._states.host_usage() if node == self._node else None
        capacity = cluster.read_capacity(
            self._session, node, datastore_regex, usage
        )
        # Every datastore of the VM must be one the destination can use;
        # otherwise the VM moves to the destination's best datastore.
        usable = {ds.ref: ds for ds in capacity.datastores}
        current = list(props.get('datastore') or ())
        if current and all(ref in usable for ref in current):
            needed = [usable[ref] for ref in current]
            target = None
        else:
            target = cluster.best_datastore(capacity)
            needed = [target]
        spec = vim.vm.RelocateSpec(
            pool=node.resource_pool,
            host=self._best_host(capacity, instance.flavor.memory_mb, needed),
        )
        if target is not None:
            spec.datastore = target.ref
        spec.deviceChange = network.retarget_specs(
            self._session,
            node.cluster,
            network_info,
            props.get('config.hardware.device'),
        )
        folder = (
            self._vmops.instance_folder()
            if node == self._node
            else vm_ops.ensure_instance_folder(self._session, node.vm_folder)
        )
        if props.get('parent') != folder:
            # Into another datacenter: vCenter wants the destination's
            # folder (and datastore, which then differs anyway: a datastore
            # belongs to one datacenter) (vSphere API, RelocateSpec).
            spec.folder = folder
        LOG.info(
            'Relocating VM of %s into cluster %s',
            instance.uuid,
            node.cluster_name,
        )
        task = self._session.invoke(vm, 'RelocateVM_Task', spec=spec)
        self._session.wait_for_task(task)

    @staticmethod
    def _best_host(
        capacity: cluster.Capacity,
        memory_mb: int,
        datastores: list[cluster.Datastore],
    ) -> Any:
        if not capacity.usable_hosts:
            raise exception.MigrationPreCheckError(
                reason='the destination cluster has no usable host'
            )
        best = cluster.pick_host(capacity, memory_mb, datastores)
        if best is None:
            raise exception.MigrationPreCheckError(
                reason=f'no host of the destination cluster that mounts '
                f'{", ".join(ds.name for ds in datastores)} has {memory_mb} '
                'MB of memory left'
            )
        return best.ref

    # -- live migration ----------------------------------------------------

    def destination_data(self, src_compute_info: dict | None) -> Any:
        """What the source needs to find this cluster in vCenter.

        The cluster goes by its moref (unique in a vCenter, unlike names
        across datacenters).  A source node of another vCenter is refused:
        RelocateVM cannot leave its vCenter.
        """
        source_node = (src_compute_info or {}).get('hypervisor_hostname')
        source_vcenter = (source_node or '').partition('.')[2]
        if source_vcenter and source_vcenter != self._node.vcenter_uuid:
            raise exception.MigrationPreCheckError(
                reason=f'source node {source_node} belongs to another '
                f'vCenter than {self._node.nodename}'
            )
        return objects.migrate_data.VMwareLiveMigrateData(
            cluster_name=self._node.cluster._moId,
            datastore_regex=self._datastore_regex or '',
        )

    def check_source(self, dest_check_data: Any) -> Any:
        """The source must see the destination cluster in its vCenter."""
        try:
            cluster.find_node(self._session, dest_check_data.cluster_name)
        except vc_session.ConfigurationError as error:
            raise exception.MigrationPreCheckError(reason=str(error)) from None
        return dest_check_data

    def live_migration(
        self,
        context: Any,
        instance: Any,
        dest: str,
        post_method: Any,
        recover_method: Any,
        migrate_data: Any,
    ) -> None:
        """RelocateVM the running VM into the destination's cluster.

        If the relocation fails and the VM is still running here, Nova's
        rollback is called and the failure ends there, as libvirt's driver
        does: the server stays ACTIVE on this node and the migration is
        marked failed.  If the VM is in the destination's cluster anyway (a
        failure while the finished task was awaited), the migration is
        complete and Nova is told so.  Only if the VM's place is unknown is
        the error raised, so Nova puts the server in ERROR for an operator
        to look at.
        """
        destination = None
        try:
            node = cluster.find_node(self._session, migrate_data.cluster_name)
            destination = node.cluster
            vm = lookup.get_vm(self._session, instance)
            props = self._vmops.vm_properties(vm, VM_PATHS)
            self._relocate(
                vm,
                props,
                node,
                migrate_data.datastore_regex or None,
                instance,
                instance.get_network_info(),
            )
        except Exception:
            where = self._cluster_of_vm(instance)
            if where is not None and where == destination:
                LOG.warning(
                    'Waiting for the live migration of %s failed, but its '
                    'VM is in the destination cluster: the migration is '
                    'complete',
                    instance.uuid,
                    exc_info=True,
                )
            else:
                LOG.exception('Live migration of %s failed', instance.uuid)
                if where is None or where != self._node.cluster:
                    raise
                recover_method(context, instance, dest, migrate_data)
                return
        self._states.expect(instance.uuid, None)
        post_method(context, instance, dest, False, migrate_data)

    def _cluster_of_vm(self, instance: Any) -> Any | None:
        """The cluster the instance's VM is in; None when unknown."""
        try:
            vm = lookup.find_vm(self._session, instance.uuid)
            if vm is None:
                return None
            pool = self._vmops.vm_properties(vm, ['resourcePool'])[
                'resourcePool'
            ]
            return self._session.properties(
                [pool], vim.ResourcePool, ['owner']
            )[pool].get('owner')
        except Exception:  # noqa: BLE001 - unknown means "not known here"
            LOG.warning('Cannot tell where the VM of %s is', instance.uuid)
            return None
