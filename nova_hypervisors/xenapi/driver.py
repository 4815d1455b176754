"""XenAPIDriver: Nova's ComputeDriver for XenServer / XCP-ng.

A thin facade: every method hands off to the object that owns the concern
(:mod:`session`, :mod:`vmops`, :mod:`host`, :mod:`events`,
:mod:`migrations`, :mod:`pool`, :mod:`volumeops`).
"""

from __future__ import annotations

from nova import exception
from nova.compute import task_states
from nova.virt import driver
import nova.virt.node
from oslo_log import log as logging

from nova_hypervisors import conf
from nova_hypervisors.common import availability
from nova_hypervisors.common import lifecycle
from nova_hypervisors.common import volumes as common_volumes
from nova_hypervisors.xenapi import disks
from nova_hypervisors.xenapi import events
from nova_hypervisors.xenapi import host as xhost
from nova_hypervisors.xenapi import imagecache
from nova_hypervisors.xenapi import instances as xinstances
from nova_hypervisors.xenapi import migrations as xmigrations
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vifs
from nova_hypervisors.xenapi import vm_utils
from nova_hypervisors.xenapi import vmops as xvmops
from nova_hypervisors.xenapi.pool import service as pool_service

CONF = conf.CONF
LOG = logging.getLogger(__name__)


class XenAPIDriver(driver.ComputeDriver):
    """A XenServer host, managed through its pool master."""

    capabilities = dict(
        driver.ComputeDriver.capabilities,
        has_imagecache=True,
        supports_image_type_raw=True,
        supports_image_type_vhd=True,
        supports_extend_volume=True,
        supports_attach_interface=True,
    )

    def __init__(self, virtapi, read_only=False):
        """Take this service's settings; touch no network (init_host does)."""
        super().__init__(virtapi)
        self._settings = CONF.xenserver
        self._session: xsession.XenAPISession | None = None
        self._watcher: events.EventWatcher | None = None
        self._table: xinstances.InstanceTable | None = None
        self._vmops: xvmops.VMOps | None = None
        self._host_state: xhost.HostState | None = None
        self._dispatcher: lifecycle.EventDispatcher | None = None
        self._migrations: xmigrations.MigrationOps | None = None
        self._pool_service: pool_service.PoolService | None = None

    # -- service lifecycle -----------------------------------------------

    def init_host(self, host):
        settings = self._settings
        if not settings.connection_url:
            raise exception.InvalidConfiguration(
                message='[xenserver] connection_url is not set'
            )
        if (
            CONF.compute.live_migration_wait_for_vif_plug
            and CONF.vif_plugging_timeout
        ):
            # xapi plugs a migrating VM's VIFs on the destination host
            # inside VM.pool_migrate, when its domain arrives there; no
            # port is on the destination's switch before, so Neutron has
            # nothing to report and the source waits out the timeout.
            LOG.warning(
                'Live migrations to this host wait %d s for a '
                'network-vif-plugged event that cannot come before a '
                'XenServer migration starts; set [compute] '
                'live_migration_wait_for_vif_plug = False',
                CONF.vif_plugging_timeout,
            )
        session = xsession.XenAPISession(
            settings.connection_url,
            settings.connection_username,
            settings.connection_password or '',
            concurrent=settings.connection_concurrent,
            login_timeout=settings.login_timeout,
            operation_timeout=settings.operation_timeout,
            ca_file=settings.ca_file,
            insecure=settings.insecure,
        )
        session.connect()
        try:
            disks.find_sr(session, settings.sr_matching_filter)
        except exception.StorageError as exc:
            session.close()
            raise exception.InvalidConfiguration(
                message=exc.kwargs.get('reason') or str(exc)
            ) from None
        dispatcher = lifecycle.EventDispatcher(self.emit_event)
        dispatcher.start()
        self._dispatcher = dispatcher
        tracker = lifecycle.PowerStateTracker(dispatcher.put)
        table = xinstances.InstanceTable(lambda: session.host_ref, tracker)
        watcher = events.EventWatcher(
            session,
            table.on_vm_event,
            table.on_vm_snapshot,
            availability.ServiceAvailability(host, settings.unreachable_grace)
            if settings.unreachable_grace
            else None,
        )
        watcher.start()
        self._session = session
        self._table = table
        self._watcher = watcher
        self._vmops = xvmops.VMOps(
            session, watcher, table, settings, self.virtapi
        )
        self._host_state = xhost.HostState(
            session, settings.sr_matching_filter, settings.allow_pv_guests
        )
        self._migrations = xmigrations.MigrationOps(
            session, watcher, settings, host, self._vmops.volumes
        )
        self._pool_service = pool_service.PoolService(session, host, settings)
        self._pool_service.start()
        self._keep_node_identity(session.host_uuid)
        LOG.info(
            'Managing XenServer host %s (%s) through pool master %s',
            session.host_name,
            session.host_uuid,
            session.master_address,
        )

    @staticmethod
    def _keep_node_identity(host_uuid: str) -> None:
        """Record the node uuid (the XenServer host's) in state_path.

        Nova refuses to start a compute again without that file once it
        has started before; our node identity is the host's uuid.
        """
        if nova.virt.node.read_local_node_uuid() is None:
            nova.virt.node.write_local_node_uuid(host_uuid)

    def cleanup_host(self, host):
        if self._pool_service is not None:
            self._pool_service.stop()
        if self._watcher is not None:
            self._watcher.stop()
        if self._dispatcher is not None:
            self._dispatcher.stop()
        if self._session is not None:
            self._session.close()

    def _ops(self) -> xvmops.VMOps:
        if self._vmops is None:
            raise exception.VirtDriverNotReady()
        return self._vmops

    def _moves(self) -> xmigrations.MigrationOps:
        if self._migrations is None:
            raise exception.VirtDriverNotReady()
        return self._migrations

    def _host(self) -> xhost.HostState:
        if self._host_state is None:
            raise exception.VirtDriverNotReady()
        return self._host_state

    # -- instances ---------------------------------------------------------

    def get_info(self, instance, use_cache=True):
        return self._ops().get_info(instance, use_cache=use_cache)

    def instance_exists(self, instance):
        return self._ops().instance_exists(instance)

    def list_instances(self):
        return list(self._ops().list_instances().values())

    def list_instance_uuids(self):
        return list(self._ops().list_instances())

    def get_num_instances(self):
        return len(self._ops().list_instances())

    def spawn(
        self,
        context,
        instance,
        image_meta,
        injected_files,
        admin_password,
        allocations,
        network_info=None,
        block_device_info=None,
        power_on=True,
        accel_info=None,
    ):
        self._ops().spawn(
            context,
            instance,
            image_meta,
            injected_files,
            admin_password,
            network_info,
            block_device_info,
            power_on=power_on,
        )

    def destroy(
        self,
        context,
        instance,
        network_info,
        block_device_info=None,
        destroy_disks=True,
        destroy_secrets=True,
    ):
        if instance.task_state == task_states.RESIZE_REVERTING:
            # A resize inside the pool keeps one VM record, which the
            # source takes back in finish_revert_migration.
            return
        self._ops().destroy(instance, destroy_disks=destroy_disks)

    def cleanup(
        self,
        context,
        instance,
        network_info,
        block_device_info=None,
        destroy_disks=True,
        migrate_data=None,
        destroy_vifs=True,
        destroy_secrets=True,
    ):
        if migrate_data is not None and self._moves().is_elsewhere(instance):
            # After a live migration the VM is the migrated one.
            return
        self._ops().destroy(instance, destroy_disks=destroy_disks)

    def reboot(
        self,
        context,
        instance,
        network_info,
        reboot_type,
        block_device_info=None,
        bad_volumes_callback=None,
        accel_info=None,
        share_info=None,
    ):
        self._ops().reboot(instance, reboot_type)

    def power_off(self, instance, timeout=0, retry_interval=0):
        self._ops().power_off(instance, timeout=timeout)

    def power_on(
        self,
        context,
        instance,
        network_info,
        block_device_info=None,
        accel_info=None,
        share_info=None,
    ):
        self._ops().power_on(instance)

    def pause(self, instance):
        self._ops().pause(instance)

    def unpause(self, instance):
        self._ops().unpause(instance)

    def suspend(self, context, instance):
        self._ops().suspend(instance)

    def resume(
        self,
        context,
        instance,
        network_info,
        block_device_info=None,
        share_info=None,
    ):
        self._ops().resume(instance)

    def rescue(
        self,
        context,
        instance,
        network_info,
        image_meta,
        rescue_password,
        block_device_info,
        share_info,
    ):
        self._ops().rescue(
            context, instance, network_info, image_meta, rescue_password
        )

    def unrescue(self, context, instance):
        self._ops().unrescue(instance)

    def snapshot(self, context, instance, image_id, update_task_state):
        self._ops().snapshot(context, instance, image_id, update_task_state)

    def get_vnc_console(self, context, instance):
        return self._ops().get_vnc_console(instance)

    def get_console_output(self, context, instance):
        return self._ops().get_console_output(instance)

    def get_diagnostics(self, instance):
        return self._ops().get_diagnostics(instance)

    def get_instance_diagnostics(self, instance):
        return self._ops().get_instance_diagnostics(instance)

    # -- interfaces --------------------------------------------------------

    def attach_interface(self, context, instance, image_meta, vif):
        """Nova deallocates the port and reports InterfaceAttachFailed if
        this raises; :func:`vifs.attach` leaves nothing behind then."""
        self._ops()
        vm_ref, _ = vm_utils.lookup(self._session, instance)
        vifs.attach(
            self._session, vm_ref, vif, self._settings.ovs_integration_bridge
        )

    def detach_interface(self, context, instance, vif):
        self._ops()
        found = vm_utils.find_vm(self._session, instance)
        if found is None or not vifs.detach(self._session, found[0], vif):
            LOG.info(
                'No VIF of port %s to detach', vif['id'], instance=instance
            )

    # -- volumes -----------------------------------------------------------

    def get_volume_connector(self, instance):
        return self._ops().volumes.get_volume_connector()

    def attach_volume(
        self,
        context,
        connection_info,
        instance,
        mountpoint,
        disk_bus=None,
        device_type=None,
        encryption=None,
    ):
        if encryption:
            raise exception.VolumeEncryptionNotSupported(
                volume_type='encrypted',
                volume_id=common_volumes.volume_id_of(connection_info),
            )
        ops = self._ops()
        vm_ref, _ = vm_utils.lookup(self._session, instance)
        ops.volumes.attach(vm_ref, connection_info, mountpoint)

    def detach_volume(
        self, context, connection_info, instance, mountpoint, encryption=None
    ):
        ops = self._ops()
        session = self._session
        found = vm_utils.find_vm(session, instance)
        if found is None:
            LOG.info('VM gone; volume already detached', instance=instance)
            return
        if not vm_utils.belongs_to_host(found[1], session.host_ref):
            # Nova's rollback of a live migration asks the destination to
            # drop its connection; in a pool the VM is the one that stayed
            # on the source, and keeps its disk.  Only the SR leaves here.
            ops.volumes.release_volume_here(connection_info)
            return
        ops.volumes.detach(found[0], connection_info)

    def extend_volume(
        self, context, connection_info, instance, requested_size
    ):
        self._ops().volumes.extend(connection_info, requested_size)

    # -- the host -----------------------------------------------------------

    def get_host_ip_addr(self):
        if self._session is None:
            raise exception.VirtDriverNotReady()
        return self._session.host_address

    def get_available_nodes(self, refresh=False):
        if self._session is None:
            raise exception.VirtDriverNotReady()
        return [self._session.host_name]

    def get_nodenames_by_uuid(self, refresh=False):
        """The XenServer host's uuid is the node's stable identity."""
        if self._session is None:
            raise exception.VirtDriverNotReady()
        return {self._session.host_uuid: self._session.host_name}

    def get_available_resource(self, nodename):
        return self._host().available_resource()

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        inventory = provider_tree.data(nodename).inventory
        ratios = self._get_allocation_ratios(inventory)
        provider_tree.update_inventory(
            nodename,
            self._host().inventory(
                ratios, self._get_reserved_host_disk_gb_from_config()
            ),
        )

    def manage_image_cache(self, context, all_instances):
        """Drop cached base VDIs of images no instance here uses."""
        session = self._session
        if session is None or self._settings.cache_images == 'none':
            return
        used = {inst.image_ref for inst in all_instances if inst.image_ref}
        sr_ref = disks.find_sr(session, self._settings.sr_matching_filter)
        removed = imagecache.remove_unused(session, sr_ref, used)
        if removed:
            LOG.info('Removed unused cached images %s', ', '.join(removed))

    # -- live migration -------------------------------------------------

    def check_can_live_migrate_destination(
        self,
        context,
        instance,
        src_compute_info,
        dst_compute_info,
        block_migration=False,
        disk_over_commit=False,
    ):
        return self._moves().check_can_live_migrate_destination(
            context, instance, src_compute_info, block_migration
        )

    def cleanup_live_migration_destination_check(
        self, context, dest_check_data
    ):
        """Nothing was reserved by the destination check."""

    def check_can_live_migrate_source(
        self, context, instance, dest_check_data, block_device_info=None
    ):
        return self._moves().check_can_live_migrate_source(
            instance, dest_check_data
        )

    def pre_live_migration(
        self,
        context,
        instance,
        block_device_info,
        network_info,
        disk_info,
        migrate_data,
    ):
        return self._moves().pre_live_migration(
            instance,
            network_info,
            migrate_data,
            driver.block_device_info_get_mapping(block_device_info),
        )

    def live_migration(
        self,
        context,
        instance,
        dest,
        post_method,
        recover_method,
        block_migration=False,
        migrate_data=None,
    ):
        self._moves().live_migration(
            context,
            instance,
            dest,
            post_method,
            recover_method,
            block_migration,
            migrate_data,
        )

    def rollback_live_migration_at_source(
        self, context, instance, migrate_data
    ):
        """xapi left the VM running here; nothing to undo."""

    def rollback_live_migration_at_destination(
        self,
        context,
        instance,
        network_info,
        block_device_info,
        destroy_disks=True,
        migrate_data=None,
    ):
        self._moves().rollback_live_migration_at_destination(
            instance, migrate_data
        )

    def post_live_migration(
        self, context, instance, block_device_info, migrate_data=None
    ):
        self._moves().post_live_migration(
            driver.block_device_info_get_mapping(block_device_info),
            migrate_data,
        )

    def post_live_migration_at_source(self, context, instance, network_info):
        """xapi moved the VIFs with the VM; volume SRs leave this host."""
        self._moves().post_live_migration_at_source(instance)

    def post_live_migration_at_destination(
        self,
        context,
        instance,
        network_info,
        block_migration=False,
        block_device_info=None,
    ):
        self._moves().post_live_migration_at_destination(instance)

    # -- cold migration and resize -------------------------------------

    def migrate_disk_and_power_off(
        self,
        context,
        instance,
        dest,
        flavor,
        network_info,
        block_device_info=None,
        timeout=0,
        retry_interval=0,
    ):
        return self._moves().migrate_disk_and_power_off(
            context, instance, flavor, timeout
        )

    def finish_migration(
        self,
        context,
        migration,
        instance,
        disk_info,
        network_info,
        image_meta,
        resize_instance,
        allocations,
        block_device_info=None,
        power_on=True,
        share_info=None,
    ):
        self._moves().finish_migration(
            instance,
            disk_info,
            network_info,
            power_on,
            driver.block_device_info_get_mapping(block_device_info),
        )

    def confirm_migration(self, context, migration, instance, network_info):
        self._moves().confirm_migration(instance)

    def finish_revert_migration(
        self,
        context,
        instance,
        network_info,
        migration,
        block_device_info=None,
        power_on=True,
        share_info=None,
    ):
        self._moves().finish_revert_migration(instance, power_on)

    # -- host maintenance -----------------------------------------------

    def host_maintenance_mode(self, host, mode):
        return self._moves().host_maintenance_mode(mode)

    def set_host_enabled(self, enabled):
        return self._moves().set_host_enabled(enabled)
