"""VMOps: an instance's life on XenServer, from spawn to destroy.

Every step that creates something on the pool records how to undo it, so a
spawn that fails half-way removes what it made (VM, VDIs, VBDs, VIFs,
networks) before Nova reschedules.  Long operations are ``Async.`` calls
awaited through the event watcher; soft reboots and clean shutdowns fall
back to the hard ones after their timeout.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib

from nova import conf as nova_conf
from nova import exception
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova.console import type as ctype
from nova.objects import diagnostics
from nova.virt import configdrive
from nova.virt import driver as virt_driver
from nova.virt import hardware
from oslo_log import log as logging

from nova_hypervisors.common import configdrive as config_drive
from nova_hypervisors.common import images
from nova_hypervisors.common import volumes as common_volumes
from nova_hypervisors.xenapi import disks
from nova_hypervisors.xenapi import events
from nova_hypervisors.xenapi import guest_info
from nova_hypervisors.xenapi import imagecache
from nova_hypervisors.xenapi import instances as xinstances
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import transfers
from nova_hypervisors.xenapi import vifs
from nova_hypervisors.xenapi import vm_utils
from nova_hypervisors.xenapi import volumeops as xvolumeops

CONF = nova_conf.CONF
LOG = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2
ROOT_DEVICE = 0
SWAP_DEVICE = 1
FIRST_EPHEMERAL_DEVICE = 2
CONFIG_DRIVE_DEVICE = 3
SNAPSHOT_FORMAT = 'vhd'
RESCUE_DISK = 'rescue'
#: The names (after the instance's) of the disks an instance owns.
ORPHAN_KINDS = ('root', 'swap', 'ephemeral', 'config drive', RESCUE_DISK)


def _neutron_failed(event_name, instance) -> None:
    LOG.error('Neutron reported %s failed', event_name, instance=instance)
    if CONF.vif_plugging_is_fatal:
        raise exception.VirtualInterfaceCreateException()


class _Undo:
    """What a half-done spawn must remove, newest first.

    Steps that must run before all others (halting the VM: xapi refuses to
    unplug or destroy the VBDs, VIFs and VDIs of a running VM with
    ``OPERATION_NOT_ALLOWED`` and ``VDI_IN_USE``, so a failure after the
    start would otherwise leave them all) are added with ``first``.
    """

    def __init__(self) -> None:
        self._first: list[tuple[str, Callable[[], None]]] = []
        self._steps: list[tuple[str, Callable[[], None]]] = []

    def add(self, what: str, step: Callable[[], None]) -> None:
        self._steps.append((what, step))

    def first(self, what: str, step: Callable[[], None]) -> None:
        self._first.append((what, step))

    def rollback(self) -> None:
        for what, step in self._first + list(reversed(self._steps)):
            try:
                step()
            except Exception:
                LOG.exception(
                    'Cleaning up %s after a failed spawn failed', what
                )
        self._first = []
        self._steps = []


class VMOps:
    """Instance operations against the pool master, scoped to our host."""

    def __init__(
        self,
        session: xsession.XenAPISession,
        watcher: events.EventWatcher,
        table: xinstances.InstanceTable,
        settings,
        virtapi=None,
    ) -> None:
        self._virtapi = virtapi
        self._session = session
        self._watcher = watcher
        self._table = table
        self._settings = settings
        self._transfers = transfers.Transfers(session, watcher)
        self.volumes = xvolumeops.VolumeOps(session)

    # -- helpers ---------------------------------------------------------

    def _async(self, method: str, *args, timeout: float | None = None):
        return events.run_async(
            self._session, self._watcher, method, *args, timeout=timeout
        )

    def _call(self, method: str, *args):
        return self._session.call_xenapi(method, *args)

    def _sr(self) -> str:
        return disks.find_sr(self._session, self._settings.sr_matching_filter)

    # -- spawn ---------------------------------------------------------

    def spawn(
        self,
        context,
        instance,
        image_meta,
        injected_files,
        admin_password,
        network_info,
        block_device_info,
        power_on: bool = True,
    ) -> None:
        """Build and start the VM; on any failure remove all of it.

        Volumes in ``block_device_info`` are attached before the start; a
        volume with boot index 0 is the root disk, and no image is
        imported then (boot from volume).
        """
        volumes = virt_driver.block_device_info_get_mapping(block_device_info)
        root_volume = common_volumes.root_volume_of(volumes)
        vm_utils.check_image(image_meta, self._settings.allow_pv_guests)
        disk_format = (
            None
            if root_volume
            else images.require_disk_format(image_meta, disks.DISK_FORMATS)
        )
        root_size = int(instance.flavor.root_gb) * GIB
        if (
            disk_format == 'raw'
            and root_size
            and int(image_meta.size) > root_size
        ):
            raise exception.FlavorDiskSmallerThanImage(
                flavor_size=root_size, image_size=int(image_meta.size)
            )
        undo = _Undo()
        try:
            vm_ref = self._build(
                context,
                instance,
                image_meta,
                injected_files,
                admin_password,
                network_info,
                undo,
                volumes=volumes,
            )
            if power_on:
                self._start_with_network(instance, vm_ref, network_info)
        except Exception:
            LOG.warning(
                'Spawn failed; removing what it created', instance=instance
            )
            undo.rollback()
            raise

    def _build(
        self,
        context,
        instance,
        image_meta,
        injected_files,
        admin_password,
        network_info,
        undo: _Undo,
        rescue: bool = False,
        extra_vdi: str | None = None,
        volumes: list | None = None,
    ) -> str:
        session = self._session
        sr_ref = self._sr()
        volumes = volumes or []
        root_volume = common_volumes.root_volume_of(volumes)
        root_vdi = None
        if root_volume is None:
            root_vdi = self._root_disk(
                context, instance, image_meta, sr_ref, rescue
            )
            undo.add('root disk', lambda: disks.destroy_vdi(session, root_vdi))
        record = vm_utils.vm_record(
            instance, image_meta, session.host_ref, rescue=rescue
        )
        record['xenstore_data'] = vm_utils.xenstore_metadata(instance)
        vm_ref = self._call('VM.create', record)
        undo.first('halting the VM', lambda: self._halt(vm_ref))
        undo.add('VM', lambda: self._destroy_vm_record(vm_ref))
        if root_vdi is not None:
            vbd = disks.create_vbd(
                session, vm_ref, root_vdi, ROOT_DEVICE, bootable=True
            )
            undo.add('root VBD', lambda: self._destroy_vbd(vbd))
        for volume in volumes:
            self._attach_at_spawn(vm_ref, volume, volume is root_volume, undo)
        if extra_vdi is not None:
            # The rescued instance's own disk, second in line.
            vbd = disks.create_vbd(session, vm_ref, extra_vdi, 1)
            undo.add('rescued disk VBD', lambda: self._destroy_vbd(vbd))
        else:
            self._extra_disks(instance, vm_ref, sr_ref, undo)
            if configdrive.required_by(instance):
                self._config_drive(
                    context,
                    instance,
                    vm_ref,
                    sr_ref,
                    injected_files,
                    admin_password,
                    network_info,
                    undo,
                )
        created_networks: list[str] = []
        created_vifs: list[str] = []
        undo.add(
            'networks',
            lambda: [
                vifs.destroy_network_if_unused(session, ref)
                for ref in created_networks
            ],
        )
        undo.add('VIFs', lambda: vifs.destroy_vifs(session, created_vifs))
        vifs.create_vifs(
            session,
            vm_ref,
            network_info,
            self._settings.ovs_integration_bridge,
            created_networks,
            created_vifs,
        )
        return vm_ref

    def _attach_at_spawn(
        self, vm_ref: str, volume: dict, root: bool, undo: _Undo
    ) -> None:
        info = volume['connection_info']
        self.volumes.attach(
            vm_ref,
            info,
            volume.get('mount_device'),
            bootable=root,
            hotplug=False,
        )
        undo.add(
            'volume %s' % common_volumes.volume_id_of(info),
            lambda: self.volumes.detach(vm_ref, info),
        )

    def _root_disk(
        self, context, instance, image_meta, sr_ref: str, rescue: bool
    ) -> str:
        session = self._session
        kind = RESCUE_DISK if rescue else 'root'
        other_config = disks.instance_disk_config(instance.uuid, kind)
        name = '%s %s' % (instance.name, kind)
        if imagecache.should_cache(self._settings.cache_images, image_meta):
            vdi_ref = imagecache.clone_base(
                session, self._transfers, context, image_meta, sr_ref
            )
            other_config = dict(
                other_config, **{imagecache.CLONED_FROM: image_meta.id}
            )
            try:
                self._call('VDI.set_other_config', vdi_ref, other_config)
                self._call('VDI.set_name_label', vdi_ref, name)
            except Exception:
                disks.destroy_vdi(session, vdi_ref)
                raise
        else:
            vdi_ref = self._transfers.import_image(
                context, image_meta, sr_ref, name, other_config
            )
        root_size = int(instance.flavor.root_gb) * GIB
        if root_size and not rescue:
            try:
                size = int(self._call('VDI.get_virtual_size', vdi_ref))
                if size < root_size:
                    disks.resize_vdi(session, vdi_ref, root_size)
            except Exception:
                disks.destroy_vdi(session, vdi_ref)
                raise
        return vdi_ref

    def _new_disk(
        self,
        instance,
        vm_ref: str,
        sr_ref: str,
        kind: str,
        size: int,
        device: int,
        undo: _Undo,
    ) -> None:
        session = self._session
        vdi = disks.create_vdi(
            session,
            sr_ref,
            '%s %s' % (instance.name, kind),
            size,
            disks.instance_disk_config(instance.uuid, kind),
        )
        undo.add(kind, lambda: disks.destroy_vdi(session, vdi))
        vbd = disks.create_vbd(session, vm_ref, vdi, device)
        undo.add(kind + ' VBD', lambda: self._destroy_vbd(vbd))

    def _extra_disks(
        self, instance, vm_ref: str, sr_ref: str, undo: _Undo
    ) -> None:
        flavor = instance.flavor
        if flavor.swap:
            self._new_disk(
                instance,
                vm_ref,
                sr_ref,
                'swap',
                int(flavor.swap) * MIB,
                SWAP_DEVICE,
                undo,
            )
        if flavor.ephemeral_gb:
            self._new_disk(
                instance,
                vm_ref,
                sr_ref,
                'ephemeral',
                int(flavor.ephemeral_gb) * GIB,
                FIRST_EPHEMERAL_DEVICE,
                undo,
            )

    def _config_drive(
        self,
        context,
        instance,
        vm_ref: str,
        sr_ref: str,
        injected_files,
        admin_password,
        network_info,
        undo: _Undo,
    ) -> None:
        """An ISO9660 config drive in its own VDI, a read-only disk.

        Not a CD: ``VM.migrate_send`` never mirrors CDs and ejects those
        whose SR is not mapped (xen-api ocaml/xapi/xapi_vm_migrate.ml,
        ``vdi_filter`` and ``find_cds_to_eject``), which would strand the
        VDI; the old in-tree driver attached it as a read-only disk too
        (nova 21.2.3 ``vm_utils.generate_configdrive``).  As a disk it is
        in the ``vdi_map`` and moves with the VM.
        """
        data = config_drive.build(
            instance, injected_files, admin_password, network_info
        )
        session = self._session
        vdi = disks.create_vdi(
            session,
            sr_ref,
            '%s config drive' % instance.name,
            disks.rounded_size(len(data)),
            disks.instance_disk_config(instance.uuid, 'configdrive'),
        )
        undo.add('config drive', lambda: disks.destroy_vdi(session, vdi))
        self._transfers.upload_bytes(vdi, sr_ref, data)
        vbd = disks.create_vbd(
            session, vm_ref, vdi, CONFIG_DRIVE_DEVICE, read_only=True
        )
        undo.add('config drive VBD', lambda: self._destroy_vbd(vbd))

    def _start_with_network(self, instance, vm_ref: str, network_info):
        """Start the VM and wait for Neutron to report its ports plugged.

        As libvirt does (``_create_guest_with_network``): the ports not
        yet active are waited for (``network-vif-plugged``), for
        ``vif_plugging_timeout`` seconds.  xapi plugs the VIFs when the VM
        starts; the host's Open vSwitch agent then binds them and Neutron
        tells Nova.  A timeout or a failed binding fails the spawn when
        ``vif_plugging_is_fatal`` (its undo removes the VM), else it is
        logged.
        """
        timeout = CONF.vif_plugging_timeout
        events = (
            [
                ('network-vif-plugged', vif['id'])
                for vif in network_info or []
                if vif.get('active', True) is False
            ]
            if timeout and self._virtapi is not None
            else []
        )
        if not events:
            self._start(vm_ref)
            return
        try:
            with self._virtapi.wait_for_instance_event(
                instance,
                events,
                timeout=timeout,
                error_callback=_neutron_failed,
            ):
                self._start(vm_ref)
        except exception.InstanceEventTimeout:
            if CONF.vif_plugging_is_fatal:
                raise exception.VirtualInterfaceCreateException() from None
            LOG.warning(
                'Neutron did not report %s plugged in %ss; going on '
                '(vif_plugging_is_fatal is off)',
                ', '.join(name for _, name in events),
                timeout,
                instance=instance,
            )

    def _start(self, vm_ref: str) -> None:
        """``VM.start_on`` this compute's host; returns once Running.

        The task may take long on a busy pool (parallel boots, a slow SR
        attach), and cancelling it half-way can leave a half-built
        domain: it gets ``operation_timeout``, as every long task does
        (the old driver called ``VM.start_on`` synchronously).
        """
        self._async(
            'VM.start_on',
            vm_ref,
            self._session.host_ref,
            False,
            False,
            timeout=self._settings.operation_timeout,
        )

    # -- destroy -------------------------------------------------------

    def _destroy_vbd(self, vbd_ref: str) -> None:
        with contextlib.suppress(exception.NotFound):
            self._call('VBD.destroy', vbd_ref)

    def _halt(self, vm_ref: str) -> None:
        """Hard shutdown unless the VM is (already) halted or gone."""
        record = self._session.get_rec('VM', vm_ref)
        if record is not None and record['power_state'] != 'Halted':
            with contextlib.suppress(exception.NotFound):
                self._async('VM.hard_shutdown', vm_ref)

    def _destroy_vm_record(self, vm_ref: str) -> None:
        record = self._session.get_rec('VM', vm_ref)
        if record is None:
            return
        if record['power_state'] != 'Halted':
            with contextlib.suppress(exception.NotFound):
                self._async('VM.hard_shutdown', vm_ref)
        with contextlib.suppress(exception.NotFound):
            self._call('VM.destroy', vm_ref)

    def _destroy_vm(
        self,
        instance_uuid: str,
        vm_ref: str,
        record: dict,
        destroy_disks: bool,
        kinds: tuple[str, ...] | None = None,
    ) -> None:
        """Remove a VM with its VIFs, VBDs and (if asked) its own VDIs.

        ``kinds`` limits the VDIs destroyed to those ``nova_disk_type``s:
        a rescue VM has the instance's own root disk attached, and xapi
        destroys an attached VDI as soon as no VBD of it is plugged
        (``xapi_vdi.ml``, ``destroy_and_data_destroy_common``), so only its
        ``rescue`` disk may go.
        """
        session = self._session
        if record['power_state'] != 'Halted':
            self._async('VM.hard_shutdown', vm_ref)
        vdi_refs = disks.vdis_of_instance(
            session, instance_uuid, record, kinds
        )
        # Volumes first: their VBDs go, their SRs are forgotten once no
        # VM uses them; their VDIs (LUNs) are Cinder's and stay.
        self.volumes.detach_all(vm_ref)
        vif_records = [
            (ref, session.get_rec('VIF', ref))
            for ref in record.get('VIFs', [])
        ]
        for vbd_ref in record.get('VBDs', []):
            self._destroy_vbd(vbd_ref)
        vifs.destroy_vifs(session, [ref for ref, _ in vif_records])
        with contextlib.suppress(exception.NotFound):
            self._call('VM.destroy', vm_ref)
        if destroy_disks:
            for vdi_ref in vdi_refs:
                disks.destroy_vdi(session, vdi_ref)
        for _, vif in vif_records:
            if vif:
                vifs.destroy_network_if_unused(session, vif['network'])

    def destroy(self, instance, destroy_disks: bool = True) -> None:
        """Remove the instance's VM (and a rescue VM); never volumes."""
        rescue = vm_utils.find_vm(self._session, instance, rescue=True)
        if rescue is not None:
            self._destroy_rescue_vm(instance, rescue)
        found = vm_utils.find_vm(self._session, instance)
        if found is None:
            LOG.info('VM already gone', instance=instance)
        else:
            self._destroy_vm(instance.uuid, found[0], found[1], destroy_disks)
        if destroy_disks:
            # Also the disks an earlier, interrupted destroy detached.
            self._destroy_orphan_disks(instance)

    def _destroy_orphan_disks(self, instance) -> None:
        """The instance's disks that no VM holds: found by their names and
        their ``nova_instance_uuid`` tag, not through a VM (a spawn whose
        undo could not finish, a VM removed behind Nova's back).  One
        query; a disk still plugged into some VM is left alone, and so is
        every disk without the tag (volumes, cached images)."""
        names = ['%s %s' % (instance.name, kind) for kind in ORPHAN_KINDS]
        # A resize's backups that the VM never recorded (an interrupted
        # finish_migration); named after the disk they copy.
        names += [disks.BACKUP_NAME % name for name in names[:3]]
        expr = ' or '.join(
            'field "name__label"=%s' % vm_utils.quote(name) for name in names
        )
        records = self._session.get_all_records_where('VDI', expr)
        for ref, rec in records.items():
            other = rec.get('other_config') or {}
            tag = other.get(disks.NOVA_INSTANCE) or other.get(disks.BACKUP_OF)
            if tag != instance.uuid or rec.get('VBDs'):
                continue
            LOG.info(
                'Removing disk %s left without a VM',
                rec.get('name_label'),
                instance=instance,
            )
            disks.destroy_vdi(self._session, ref)

    # -- power -----------------------------------------------------------

    def reboot(self, instance, reboot_type: str) -> None:
        vm_ref, record = vm_utils.lookup(self._session, instance)
        state = record['power_state']
        if state == 'Halted':
            self._start(vm_ref)
            return
        if state == 'Suspended':
            self._async(
                'VM.resume_on', vm_ref, self._session.host_ref, False, False
            )
            return
        if reboot_type == 'SOFT' and state == 'Running':
            try:
                self._async(
                    'VM.clean_reboot',
                    vm_ref,
                    timeout=self._settings.clean_reboot_timeout,
                )
                return
            except exception.NovaException as exc:
                LOG.warning(
                    'Soft reboot failed (%s); rebooting hard',
                    exc,
                    instance=instance,
                )
        if state == 'Paused':
            self._call('VM.unpause', vm_ref)
        self._async('VM.hard_reboot', vm_ref)

    def power_off(self, instance, timeout: int = 0) -> None:
        """Clean shutdown within ``timeout`` seconds, else hard."""
        vm_ref, record = vm_utils.lookup(self._session, instance)
        if record['power_state'] == 'Halted':
            return
        if timeout and record['power_state'] == 'Running':
            try:
                self._async('VM.clean_shutdown', vm_ref, timeout=timeout)
                return
            except exception.NovaException as exc:
                LOG.warning(
                    'Clean shutdown failed (%s); shutting down hard',
                    exc,
                    instance=instance,
                )
        self._async('VM.hard_shutdown', vm_ref)

    def power_on(self, instance) -> None:
        vm_ref, record = vm_utils.lookup(self._session, instance)
        state = record['power_state']
        if state == 'Halted':
            self._start(vm_ref)
        elif state == 'Suspended':
            self._async(
                'VM.resume_on', vm_ref, self._session.host_ref, False, False
            )
        elif state == 'Paused':
            self._call('VM.unpause', vm_ref)

    def pause(self, instance) -> None:
        vm_ref, _ = vm_utils.lookup(self._session, instance)
        self._call('VM.pause', vm_ref)

    def unpause(self, instance) -> None:
        vm_ref, _ = vm_utils.lookup(self._session, instance)
        self._call('VM.unpause', vm_ref)

    def suspend(self, instance) -> None:
        vm_ref, _ = vm_utils.lookup(self._session, instance)
        self._async('VM.suspend', vm_ref)

    def resume(self, instance) -> None:
        vm_ref, _ = vm_utils.lookup(self._session, instance)
        self._async(
            'VM.resume_on', vm_ref, self._session.host_ref, False, False
        )

    # -- rescue ----------------------------------------------------------

    def rescue(
        self, context, instance, network_info, image_meta, rescue_password
    ) -> None:
        """Boot a rescue VM from the rescue image with the root disk second.

        The instance's VM is halted (not destroyed) and comes back on
        unrescue.
        """
        images.require_disk_format(image_meta, disks.DISK_FORMATS)
        vm_utils.check_image(image_meta, self._settings.allow_pv_guests)
        vm_ref, record = vm_utils.lookup(self._session, instance)
        root_vdi = self._root_vdi(record)
        if record['power_state'] != 'Halted':
            self._async('VM.hard_shutdown', vm_ref)
        undo = _Undo()
        try:
            rescue_ref = self._build(
                context,
                instance,
                image_meta,
                None,
                rescue_password,
                network_info,
                undo,
                rescue=True,
                extra_vdi=root_vdi,
            )
            self._start(rescue_ref)
        except Exception:
            undo.rollback()
            raise

    def unrescue(self, instance) -> None:
        rescue = vm_utils.find_vm(self._session, instance, rescue=True)
        if rescue is not None:
            self._destroy_rescue_vm(instance, rescue)
        vm_ref, record = vm_utils.lookup(self._session, instance)
        if record['power_state'] == 'Halted':
            self._start(vm_ref)

    def _destroy_rescue_vm(self, instance, rescue: tuple[str, dict]) -> None:
        """The rescue VM and its rescue disk; never the instance's disks."""
        self._destroy_vm(
            instance.uuid,
            rescue[0],
            rescue[1],
            destroy_disks=True,
            kinds=(RESCUE_DISK,),
        )

    def _root_vdi(self, record: dict) -> str:
        for vbd_ref in record.get('VBDs', []):
            vbd = self._call('VBD.get_record', vbd_ref)
            if vbd['userdevice'] == str(ROOT_DEVICE) and vbd['type'] == 'Disk':
                return vbd['VDI']
        raise exception.StorageError(reason='the VM has no root disk')

    # -- snapshot ----------------------------------------------------------

    def snapshot(
        self, context, instance, image_id: str, update_task_state
    ) -> None:
        """Snapshot the root VDI, stream it to Glance, drop the snapshot."""
        vm_ref, record = vm_utils.lookup(self._session, instance)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        root_vdi = self._root_vdi(record)
        snap = self._async('VDI.snapshot', root_vdi, {})
        try:
            update_task_state(
                task_state=task_states.IMAGE_UPLOADING,
                expected_state=task_states.IMAGE_PENDING_UPLOAD,
            )
            with self._transfers.export_vdi(snap, SNAPSHOT_FORMAT) as data:
                images.upload_image(
                    context,
                    image_id,
                    {
                        'disk_format': SNAPSHOT_FORMAT,
                        'container_format': 'bare',
                    },
                    data,
                )
        finally:
            disks.destroy_vdi(self._session, snap)

    # -- state -------------------------------------------------------------

    def get_info(
        self, instance, use_cache: bool = True
    ) -> hardware.InstanceInfo:
        found = (
            self._table.get(instance.uuid)
            if (use_cache and self._table.ready.is_set())
            else None
        )
        if found is None:
            try:
                found = vm_utils.lookup(self._session, instance)
            except exception.InstanceNotFound:
                raise
            except exception.NovaException:
                # xapi did not answer this time.  Nova asks right after a
                # spawn, and a failure there ends the build without a
                # destroy (compute manager, _update_instance_after_spawn),
                # which would leave the running VM behind: the state the
                # event watcher last saw answers instead, when it has one.
                found = self._table.get(instance.uuid)
                if found is None:
                    raise
                LOG.warning(
                    'Reading the VM failed; answering its last watched '
                    'power state',
                    instance=instance,
                )
        state = vm_utils.to_power_state(found[1])
        if state == power_state.SHUTDOWN and (
            instance.obj_attr_is_set('vm_state')
            and instance.vm_state == vm_states.RESCUED
        ):
            # A rescued instance's own VM is halted; the rescue VM runs.
            rescue = vm_utils.find_vm(self._session, instance, rescue=True)
            if rescue is not None:
                state = vm_utils.to_power_state(rescue[1])
        return hardware.InstanceInfo(state=state)

    def instance_exists(self, instance) -> bool:
        return vm_utils.find_vm(self._session, instance) is not None

    def list_instances(self) -> dict[str, str]:
        """{nova uuid: instance name} of this host's VMs, one call."""
        host_ref = self._session.host_ref
        return {
            rec['other_config'][vm_utils.NOVA_UUID]: rec['name_label']
            for rec in vm_utils.all_nova_vms(self._session).values()
            if vm_utils.belongs_to_host(rec, host_ref)
        }

    # -- consoles and diagnostics (see guest_info) -----------------------

    def get_vnc_console(self, instance) -> ctype.ConsoleVNC:
        return guest_info.vnc_console(
            self._session, instance, self._settings.console_port
        )

    def get_console_output(self, instance) -> bytes:
        return guest_info.console_output(self._session, instance)

    def get_diagnostics(self, instance) -> dict:
        return guest_info.diagnostics(self._session, instance)

    def get_instance_diagnostics(self, instance) -> diagnostics.Diagnostics:
        return guest_info.instance_diagnostics(self._session, instance)
