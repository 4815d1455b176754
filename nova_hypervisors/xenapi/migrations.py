"""MigrationOps: moving instances between the hosts of a XenServer pool.

* **Live migration.**  Between members of one pool whose disks sit on a
  shared SR, xapi moves the running domain with ``VM.pool_migrate``: the
  VM record, its disks and its VIFs stay what they are.  Otherwise (another
  pool, or local disks) it is a block migration: the destination asks its
  own master for a ``host.migrate_receive`` token in ``pre_live_migration``
  and the source hands it to ``VM.migrate_send`` with a map of every disk
  and VIF.  Either call either moves the VM or leaves it running where it
  was, so a failure is rolled back by telling Nova, never by undoing.
* **Cold migration and resize** inside a pool keep the one VM record: the
  source halts it, the destination changes memory, VCPUs and disks and
  starts it on its own host.  A grown disk keeps its old self as a backup
  VDI until the resize is confirmed, so a revert gives the old size back.
* **Host maintenance** lives in :mod:`maintenance`.

A VM's ``affinity`` names the host whose nova-compute owns it (see
:func:`vm_utils.belongs_to_host`), so every move ends by setting it.
"""

from __future__ import annotations

import contextlib
import json

from nova import exception
from nova import objects
from oslo_log import log as logging
from oslo_utils import excutils

from nova_hypervisors.xenapi import disks
from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import events
from nova_hypervisors.xenapi import maintenance
from nova_hypervisors.xenapi import migrate_data as xmigrate_data
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vifs
from nova_hypervisors.xenapi import vm_utils
from nova_hypervisors.xenapi import volume_srs
from nova_hypervisors.xenapi import volumeops

LOG = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2
NULL_REF = 'OpaqueRef:NULL'
ROOT_DEVICE = '0'
SWAP_DEVICE = '1'
EPHEMERAL_DEVICE = '2'
#: VM other_config key: "disk kind=backup VDI ref,..." of a resize.
RESIZE_BACKUPS = 'nova_resize_backups'
BACKUP_OF = disks.BACKUP_OF


class MigrationOps:
    """Live and cold migration, resize and host maintenance."""

    def __init__(
        self,
        session: xsession.XenAPISession,
        watcher: events.EventWatcher,
        settings,
        compute_host: str,
        volumes: volumeops.VolumeOps,
    ) -> None:
        self._volumes = volumes
        self._session = session
        self._watcher = watcher
        self._settings = settings
        self._compute_host = compute_host
        self._maintenance = maintenance.HostMaintenance(session, watcher)

    # -- helpers ---------------------------------------------------------

    def _call(self, method: str, *args):
        return self._session.call_xenapi(method, *args)

    def _async(self, method: str, *args, timeout: float | None = None):
        return events.run_async(
            self._session, self._watcher, method, *args, timeout=timeout
        )

    def _pool_uuid(self) -> str:
        return self._call('pool.get_uuid', self._session.pool_ref)

    def _xen_host_of(
        self, context, compute_host: str, nodename: str | None = None
    ) -> str:
        """The pool member a Nova compute host manages (its node's uuid).

        :raises MigrationPreCheckError: when it is not in our pool.
        """
        if nodename:
            node = objects.ComputeNode.get_by_host_and_nodename(
                context, compute_host, nodename
            )
        else:
            node = objects.ComputeNodeList.get_all_by_host(
                context, compute_host
            )[0]
        try:
            return self._call('host.get_by_uuid', node.uuid)
        except exception.NotFound:
            raise exception.MigrationPreCheckError(
                reason='compute host %s (XenServer host %s) is not a member '
                'of the XenServer pool of %s'
                % (compute_host, node.uuid, self._session.host_name)
            ) from None

    def _start_here(self, vm_ref: str) -> None:
        self._async(
            'VM.start_on',
            vm_ref,
            self._session.host_ref,
            False,
            False,
            timeout=self._settings.operation_timeout,
        )

    def _claim(self, vm_ref: str) -> None:
        """Make this compute the VM's owner (and xapi's preferred host)."""
        self._call('VM.set_affinity', vm_ref, self._session.host_ref)

    def _disks_by_device(self, record: dict) -> dict[str, tuple[str, dict]]:
        """{userdevice: (VDI ref, VDI record)} of the VM's own disks."""
        result = {}
        for vbd_ref in record.get('VBDs', []):
            vbd = self._session.get_rec('VBD', vbd_ref)
            if not vbd or vbd['type'] != 'Disk' or vbd['VDI'] == NULL_REF:
                continue
            if (vbd.get('other_config') or {}).get(volumeops.OSVOL):
                # A Cinder volume: never copied, resized or mapped; its
                # SR is made visible where the VM goes (volumeops).
                continue
            vdi = self._session.get_rec('VDI', vbd['VDI'])
            if vdi is not None:
                result[vbd['userdevice']] = (vbd['VDI'], vdi)
        return result

    # -- live migration: checks ------------------------------------------

    def check_can_live_migrate_destination(
        self, context, instance, src_compute_info, block_migration
    ):
        """Runs on the destination: pool_migrate if we can, else block.

        Shared means: the source host is in our pool and every disk of the
        VM is on a shared SR; then xapi itself checks that the VM may run
        here (memory, SRs, networks) before Nova commits to anything.
        """
        source_uuid = _primitive_field(src_compute_info, 'uuid')
        with _precheck():
            found = vm_utils.find_vm(self._session, instance)
            same_pool = found is not None and self._is_pool_member(source_uuid)
            shared = same_pool and self._disks_shared(found[1])
        if not shared and block_migration is False:
            raise exception.MigrationPreCheckError(
                reason='%s and block migration was not requested'
                % (
                    'the instance has disks on a local SR'
                    if same_pool
                    else 'the source host is in another XenServer pool'
                )
            )
        if shared:
            with _precheck():
                self._assert_can_boot_here(found[0])
        return objects.HyperVLiveMigrateData(is_shared_instance_path=shared)

    def _assert_can_boot_here(self, vm_ref: str) -> None:
        """xapi's check, but a volume SR not plugged here yet is fine:
        ``pre_live_migration`` plugs it (xapi checks the SRs first, so
        its other checks then run again in ``VM.pool_migrate``)."""
        try:
            self._call(
                'VM.assert_can_boot_here', vm_ref, self._session.host_ref
            )
        except exception.NovaException as exc:
            args = getattr(exc, 'xenapi_args', None) or []
            if errors.code_of(exc) != 'VM_REQUIRES_SR' or len(args) < 2:
                raise
            sr_type = self._call('SR.get_type', args[1])
            if sr_type != volume_srs.ISCSI:
                raise

    def _is_pool_member(self, host_uuid: str | None) -> bool:
        if not host_uuid:
            return False
        try:
            self._call('host.get_by_uuid', host_uuid)
        except exception.NotFound:
            return False
        return True

    def _disks_shared(self, record: dict) -> bool:
        for _, vdi in self._disks_by_device(record).values():
            sr = self._session.get_rec('SR', vdi['SR'])
            if not sr or not sr.get('shared'):
                return False
        return True

    def check_can_live_migrate_source(self, instance, dest_check_data):
        """Runs on the source: only a running guest migrates live."""
        with _precheck():
            _, record = vm_utils.lookup(self._session, instance)
        if record['power_state'] != 'Running':
            raise exception.MigrationPreCheckError(
                reason='the VM is %s; only a running VM migrates live'
                % record['power_state']
            )
        return dest_check_data

    # -- live migration: the move ----------------------------------------

    def pre_live_migration(
        self, instance, network_info, migrate_data, volumes=()
    ):
        """Runs on the destination; a block migration gets its token here.

        ``host.migrate_receive`` must be asked of the destination's own
        master, which only this compute can reach.  Inside the pool the
        volumes' SRs are plugged here first: ``VM.pool_migrate`` needs
        every SR of the VM visible on the destination.
        """
        if migrate_data.is_shared_instance_path:
            if volumes:
                vm_ref, _ = vm_utils.lookup(self._session, instance)
                self._volumes.connect_here(vm_ref, list(volumes))
            return migrate_data
        session = self._session
        found = vm_utils.find_vm(session, instance)
        if volumes and found is not None:
            # Local disks inside the pool: the VM keeps its VBDs, as in
            # a shared move; its volume SRs must be plugged here.
            self._volumes.connect_here(found[0], list(volumes))
        host_ref = session.host_ref
        pif = self._call('host.get_management_interface', host_ref)
        network = self._call('PIF.get_network', pif)
        result = xmigrate_data.XenAPILiveMigrateData.from_base(migrate_data)
        result.migrate_receive = self._call(
            'host.migrate_receive', host_ref, network, {}
        )
        result.dest_sr = disks.find_sr(
            session, self._settings.sr_matching_filter
        )
        created: list[str] = []
        result.vif_networks = {
            vif['address']: vifs.find_or_create_network(
                session,
                vifs.bridge_of(vif, self._settings.ovs_integration_bridge),
                created,
            )
            for vif in network_info or []
        }
        result.cross_pool = found is None
        # Another pool: each volume's SR is connected here last, so a
        # failure before leaves nothing of it (as Nova's last in-tree
        # driver did, nova 21 vmops.connect_block_device_volumes).
        result.volume_srs = (
            self._volumes.connect_for_arrival(list(volumes))
            if volumes and result.cross_pool
            else {}
        )
        return result

    def live_migration(
        self,
        context,
        instance,
        dest: str,
        post_method,
        recover_method,
        block_migration,
        migrate_data,
    ) -> None:
        """Move the VM; on failure it still runs here and Nova is told so.

        Nova puts an instance in ERROR when this raises, so failures are
        handed to ``recover_method`` (Nova's rollback) instead.
        """
        moving = None  # where to, once the move itself was asked for
        try:
            vm_ref, record = vm_utils.lookup(self._session, instance)
            if migrate_data.is_shared_instance_path:
                migration = migrate_data.migration
                nodename = (
                    migration.dest_node
                    if migration.obj_attr_is_set('dest_node')
                    else None
                )
                dest_host = self._xen_host_of(context, dest, nodename)
                moving = dest_host
                LOG.info(
                    'Live-migrating with VM.pool_migrate to %s',
                    dest,
                    instance=instance,
                )
                self._async(
                    'VM.pool_migrate', vm_ref, dest_host, {'live': 'true'}
                )
            else:
                moving = _OTHER_POOL
                self._migrate_send(instance, vm_ref, record, migrate_data)
        except Exception:
            if moving is None or not self._moved_anyway(instance, moving):
                LOG.exception(
                    'Live migration to %s failed; the instance stays here',
                    dest,
                    instance=instance,
                )
                recover_method(context, instance, dest, migrate_data)
                return
            LOG.warning(
                'Waiting for the live migration to %s failed, but the VM '
                'has moved there: the migration is complete',
                dest,
                instance=instance,
                exc_info=True,
            )
        post_method(context, instance, dest, block_migration, migrate_data)

    def _moved_anyway(self, instance, destination: str) -> bool:
        """Whether the VM left this host although the migration "failed".

        A failure while the task is awaited (reading its record, a dropped
        connection) says nothing about the task itself: xapi may well have
        finished the move.  Rolling back then would make Nova believe the
        instance runs here while it runs on the destination.  The VM's
        record says where it is: ``resident_on`` the destination inside
        the pool; gone from this pool after a cross-pool send.
        """
        try:
            found = vm_utils.find_vm(self._session, instance)
        except Exception:
            LOG.warning(
                'Cannot tell where the VM is after the failed migration',
                instance=instance,
                exc_info=True,
            )
            return False
        if found is None:
            return destination == _OTHER_POOL
        record = found[1]
        return (
            record.get('resident_on') == destination
            and record.get('power_state') == 'Running'
        )

    def _migrate_send(self, instance, vm_ref, record, migrate_data) -> None:
        if not isinstance(
            migrate_data, xmigrate_data.XenAPILiveMigrateData
        ) or not migrate_data.obj_attr_is_set('migrate_receive'):
            raise exception.MigrationError(
                reason='the destination gave no host.migrate_receive token'
            )
        vdi_map = {
            vdi_ref: migrate_data.dest_sr
            for vdi_ref, _ in self._disks_by_device(record).values()
        }
        if migrate_data.cross_pool:
            vdi_map.update(self._volume_vdi_map(vm_ref, migrate_data))
        vif_map = {}
        for vif_ref in record.get('VIFs', []):
            mac = self._call('VIF.get_MAC', vif_ref)
            if mac in migrate_data.vif_networks:
                vif_map[vif_ref] = migrate_data.vif_networks[mac]
        LOG.info(
            'Block-migrating with VM.migrate_send (%d disks)',
            len(vdi_map),
            instance=instance,
        )
        self._async(
            'VM.migrate_send',
            vm_ref,
            dict(migrate_data.migrate_receive),
            True,
            vdi_map,
            vif_map,
            {},
            {},
        )

    def _volume_vdi_map(self, vm_ref: str, migrate_data) -> dict[str, str]:
        """Each volume VDI -> its SR as the destination pool knows it.

        The destination introduced the same SR uuid (the same LUNs), so
        xapi finds the VDIs there and copies nothing; mapping them is
        what Nova's last in-tree driver did (nova 21,
        ``vmops._call_live_migrate_command``).  xapi refuses a VDI left
        out of the map of a send to another pool (``VDI_NOT_IN_MAP``).
        """
        connected = (
            migrate_data.volume_srs
            if migrate_data.obj_attr_is_set('volume_srs')
            else {}
        )
        vdi_map = {}
        for vdi_ref in self._volumes.volume_vdis(vm_ref):
            sr_uuid = self._call(
                'SR.get_uuid', self._call('VDI.get_SR', vdi_ref)
            )
            if sr_uuid not in connected:
                raise exception.MigrationError(
                    reason='the destination did not connect the volume SR '
                    '%s' % sr_uuid
                )
            vdi_map[vdi_ref] = connected[sr_uuid]
        return vdi_map

    def post_live_migration(self, volumes, migrate_data) -> None:
        """Runs on the source after the move: a VM that went to another
        pool leaves its volume SRs behind in this one; they go."""
        if volumes and getattr(migrate_data, 'cross_pool', False):
            self._volumes.release_departed(list(volumes))

    def post_live_migration_at_source(self, instance) -> None:
        """The VM left: its volume SRs leave this host."""
        found = vm_utils.find_vm(self._session, instance)
        if found is not None:
            self._volumes.release_here(found[0])

    def post_live_migration_at_destination(self, instance) -> None:
        """The VM runs here now: this compute owns it."""
        vm_ref, record = vm_utils.lookup(self._session, instance)
        if record.get('resident_on') != self._session.host_ref:
            LOG.warning(
                'After live migration the VM runs on %s, not here',
                record.get('resident_on'),
                instance=instance,
            )
        self._claim(vm_ref)

    def rollback_live_migration_at_destination(
        self, instance, migrate_data
    ) -> None:
        """Remove what a failed cross-pool send may have left here.

        In one pool there is only one VM record, so there is nothing to
        clean; in another pool a halted copy of the VM may remain.
        """
        if not getattr(migrate_data, 'cross_pool', False):
            found = vm_utils.find_vm(self._session, instance)
            if found is not None:
                # The VM stayed on the source: unplug what pre_live_
                # migration plugged here.
                self._volumes.release_here(found[0])
            return
        found = vm_utils.find_vm(self._session, instance)
        if found is not None and found[1]['power_state'] == 'Halted':
            LOG.info('Removing the halted copy of a failed block migration')
            vm_ref, record = found
            # Volume VBDs are not among these disks: their LUNs stay.
            for vdi_ref, _ in self._disks_by_device(record).values():
                disks.destroy_vdi(self._session, vdi_ref)
            with contextlib.suppress(exception.NotFound):
                self._call('VM.destroy', vm_ref)
        if migrate_data.obj_attr_is_set('volume_srs'):
            # Forgotten unless a VM of this pool uses them.
            self._volumes.release_srs(migrate_data.volume_srs.values())

    def is_elsewhere(self, instance) -> bool:
        """Whether the instance's VM is gone from this host (moved).

        Nova calls ``cleanup`` on the source after a live migration; in a
        pool the VM record is the migrated VM itself and must survive.
        """
        found = vm_utils.find_vm(self._session, instance)
        return found is None or found[1].get('resident_on') not in (
            self._session.host_ref,
        )

    # -- cold migration and resize ------------------------------------------

    def migrate_disk_and_power_off(
        self, context, instance, flavor, timeout: int
    ) -> str:
        """Runs on the source: check everything, then halt the VM.

        Nothing changes before the checks pass, so a refused resize leaves
        the instance running (InstanceFaultRollback).
        """
        vm_ref, record = vm_utils.lookup(self._session, instance)
        try:
            self._check_resize(instance, flavor, record)
            self._check_destination(context, instance, record)
        except exception.NovaException as exc:
            raise exception.InstanceFaultRollback(inner_exception=exc) from exc
        if record['power_state'] == 'Running' and timeout:
            try:
                self._async('VM.clean_shutdown', vm_ref, timeout=timeout)
            except exception.NovaException as exc:
                LOG.warning(
                    'Clean shutdown failed (%s); shutting down hard',
                    exc,
                    instance=instance,
                )
        record = self._call('VM.get_record', vm_ref)
        if record['power_state'] != 'Halted':
            self._async('VM.hard_shutdown', vm_ref)
        return json.dumps({'pool': self._pool_uuid()})

    def _check_resize(self, instance, flavor, record: dict) -> None:
        """Refuse to shrink a disk: xapi cannot, and data would be lost."""
        current = self._disks_by_device(record)
        for device, kind, size in (
            (ROOT_DEVICE, 'root', int(flavor.root_gb) * GIB),
            (EPHEMERAL_DEVICE, 'ephemeral', int(flavor.ephemeral_gb) * GIB),
        ):
            if device not in current:
                continue
            have = int(current[device][1]['virtual_size'])
            if (kind == 'root' and size and size < have) or (
                kind == 'ephemeral' and size < have
            ):
                raise exception.ResizeError(
                    reason='the %s disk cannot shrink from %d GiB to %d GiB'
                    % (kind, -(-have // GIB), size // GIB)
                )

    def _check_destination(self, context, instance, record: dict) -> None:
        """The destination must be a member of our pool that sees the disks.

        The VM is only re-started on the destination, so every disk must
        be on a shared SR: xapi refuses to start a VM on a host without a
        plugged PBD for each of its SRs (``VM_REQUIRES_SR``), and the
        source would have halted it by then.  Local disks are refused
        here, before anything is touched; live (block) migration moves
        them.
        """
        mig_ctxt = instance.migration_context
        if mig_ctxt is None or 'migration_id' not in mig_ctxt:
            return
        migration = objects.Migration.get_by_id(context, mig_ctxt.migration_id)
        dest_host = self._xen_host_of(
            context, migration.dest_compute, migration.dest_node
        )
        if dest_host != self._session.host_ref and not self._disks_shared(
            record
        ):
            raise exception.MigrationPreCheckError(
                reason='the instance has disks on a local SR of %s; cold '
                'migration and resize to another host need a shared SR '
                '(live migration moves local disks)' % self._session.host_name
            )

    def finish_migration(
        self,
        instance,
        disk_info: str,
        network_info,
        power_on: bool,
        volumes=(),
    ) -> None:
        """Runs on the destination: apply the flavor, start the VM here."""
        info = json.loads(disk_info or '{}')
        if info.get('pool') and info['pool'] != self._pool_uuid():
            raise exception.MigrationError(
                reason='cold migration only moves instances between hosts '
                'of one XenServer pool'
            )
        vm_ref, record = vm_utils.lookup(self._session, instance)
        backups: dict[str, str] = {}
        try:
            self._apply_flavor(instance, vm_ref, record, backups)
            other = dict(record.get('other_config') or {})
            if backups:
                other[RESIZE_BACKUPS] = ','.join(
                    '%s=%s' % item for item in sorted(backups.items())
                )
                self._call('VM.set_other_config', vm_ref, other)
        except Exception:
            # Nova puts the instance in ERROR, from where no revert can
            # come: backups nobody recorded would stay forever.
            with excutils.save_and_reraise_exception():
                self._destroy_quietly(backups.values())
        self._claim(vm_ref)
        self._volumes.connect_here(vm_ref, list(volumes))
        if power_on:
            self._start_here(vm_ref)

    def _apply_flavor(
        self, instance, vm_ref: str, record: dict, backups: dict | None = None
    ) -> None:
        """Memory, VCPUs and disk sizes of ``instance.flavor``.

        ``backups`` receives {device: backup VDI} of the disks that grew,
        as each backup is made.
        """
        flavor = instance.flavor
        memory = str(int(flavor.memory_mb) * MIB)
        if str(record['memory_static_max']) != memory:
            self._call(
                'VM.set_memory_limits', vm_ref, '0', memory, memory, memory
            )
        vcpus = int(flavor.vcpus)
        if int(record['VCPUs_max']) != vcpus:
            if vcpus > int(record['VCPUs_max']):
                self._call('VM.set_VCPUs_max', vm_ref, str(vcpus))
                self._call('VM.set_VCPUs_at_startup', vm_ref, str(vcpus))
            else:
                self._call('VM.set_VCPUs_at_startup', vm_ref, str(vcpus))
                self._call('VM.set_VCPUs_max', vm_ref, str(vcpus))
        current = self._disks_by_device(record)
        backups = {} if backups is None else backups
        for device, size in (
            (ROOT_DEVICE, int(flavor.root_gb) * GIB),
            (EPHEMERAL_DEVICE, int(flavor.ephemeral_gb) * GIB),
        ):
            if device not in current:
                continue
            vdi_ref, vdi = current[device]
            if size and size > int(vdi['virtual_size']):
                backups[device] = self._backup(instance, vdi_ref, vdi)
                disks.resize_vdi(self._session, vdi_ref, size)

    def _backup(self, instance, vdi_ref: str, vdi: dict) -> str:
        """A copy of a disk before it grows, for a revert.

        Named and tagged so that destroy finds it even when nobody recorded
        it (``vmops._destroy_orphan_disks``); a copy that cannot be tagged
        is removed at once.
        """
        backup = self._async(
            'VDI.copy', vdi_ref, vdi['SR'], NULL_REF, NULL_REF
        )
        try:
            self._call(
                'VDI.set_name_label',
                backup,
                disks.BACKUP_NAME % vdi['name_label'],
            )
            self._call(
                'VDI.set_other_config', backup, {BACKUP_OF: instance.uuid}
            )
        except Exception:
            with excutils.save_and_reraise_exception():
                self._destroy_quietly([backup])
        return backup

    def _destroy_quietly(self, vdi_refs) -> None:
        """Undo: remove these VDIs; a failure is logged, the original
        error is what the caller raises."""
        for vdi_ref in vdi_refs:
            try:
                disks.destroy_vdi(self._session, vdi_ref)
            except Exception:
                LOG.warning('Could not remove disk %s', vdi_ref, exc_info=True)

    def confirm_migration(self, instance) -> None:
        """Runs on the source: the backups of grown disks go."""
        found = vm_utils.find_vm(self._session, instance)
        if found is None:
            return
        vm_ref, record = found
        self._volumes.release_here(vm_ref)
        backups = _parse_backups(record)
        for backup in backups.values():
            disks.destroy_vdi(self._session, backup)
        if backups:
            other = dict(record.get('other_config') or {})
            other.pop(RESIZE_BACKUPS, None)
            self._call('VM.set_other_config', vm_ref, other)

    def finish_revert_migration(self, instance, power_on: bool) -> None:
        """Runs on the source: old flavor, old disks, back on this host.

        ``instance.flavor`` is the old flavor again by now; a grown disk is
        swapped for its backup, so the old size comes back as it was.
        """
        vm_ref, record = vm_utils.lookup(self._session, instance)
        if record['power_state'] != 'Halted':
            self._async('VM.hard_shutdown', vm_ref)
            record = self._call('VM.get_record', vm_ref)
        backups = _parse_backups(record)
        if backups:
            self._restore_backups(vm_ref, record, backups)
            other = dict(record.get('other_config') or {})
            other.pop(RESIZE_BACKUPS, None)
            self._call('VM.set_other_config', vm_ref, other)
            record = self._call('VM.get_record', vm_ref)
        self._apply_flavor(instance, vm_ref, record)
        self._claim(vm_ref)
        if power_on:
            self._start_here(vm_ref)

    def _restore_backups(
        self, vm_ref: str, record: dict, backups: dict[str, str]
    ) -> None:
        session = self._session
        for vbd_ref in record.get('VBDs', []):
            vbd = session.get_rec('VBD', vbd_ref)
            if not vbd or vbd['userdevice'] not in backups:
                continue
            backup = backups[vbd['userdevice']]
            grown = vbd['VDI']
            other = self._call('VDI.get_other_config', grown)
            self._call('VDI.set_other_config', backup, other)
            self._call('VBD.destroy', vbd_ref)
            disks.create_vbd(
                session,
                vm_ref,
                backup,
                int(vbd['userdevice']),
                bootable=vbd['bootable'],
            )
            disks.destroy_vdi(session, grown)

    # -- host maintenance ----------------------------------------------------

    def set_host_enabled(self, enabled: bool) -> str:
        return self._maintenance.set_host_enabled(enabled)

    def host_maintenance_mode(self, mode: bool) -> str:
        return self._maintenance.host_maintenance_mode(mode)


@contextlib.contextmanager
def _precheck():
    """A check that cannot ask xapi refuses the migration.

    Nova leaves the instance ACTIVE where it is for a
    MigrationPreCheckError, but puts it in ERROR for anything else a
    pre-check raises, although nothing has moved yet.
    """
    try:
        yield
    except exception.MigrationPreCheckError:
        raise
    except exception.NovaException as exc:
        raise exception.MigrationPreCheckError(
            reason=exc.format_message()
        ) from exc


#: A cross-pool send's destination (it has no host ref in this pool).
_OTHER_POOL = 'another pool'


def _primitive_field(compute_info, name: str):
    """A field of a ComputeNode as ``obj_to_primitive`` gave it."""
    if not compute_info:
        return None
    data = compute_info.get('nova_object.data', compute_info)
    return data.get(name)


def _parse_backups(record: dict) -> dict[str, str]:
    text = (record.get('other_config') or {}).get(RESIZE_BACKUPS, '')
    return dict(item.split('=', 1) for item in text.split(',') if '=' in item)
