"""VolumeOps: Cinder volumes as VBDs of an instance's VM.

A volume's VDI is a LUN of an iSCSI SR (:mod:`volume_srs`).  Attaching
creates a VBD at the userdevice the mountpoint names (``/dev/xvde`` is
4), or the first free one from 4 on: 0 to 3 belong to the instance's own
disks (root, swap, ephemeral, config drive), present or to come with a
resize.  It plugs the VBD when the VM runs (xapi hot-plugs disks of a
running VM with ``VBD.plug``); a halted VM gets the disk at its next
start.  Each volume VBD carries the
volume id in its ``other_config``, so detach finds it without reaching the
array.  Detach unplugs (a guest that holds the disk busy makes xapi answer
``DEVICE_DETACH_REJECTED``), destroys the VBD, and forgets the SR when no
VBD uses it any more.  Volume VDIs are never destroyed: the LUN is
Cinder's.
"""

from __future__ import annotations

import contextlib
import re

from nova import exception
from oslo_log import log as logging
from oslo_utils import excutils

from nova_hypervisors.common import volumes as common_volumes
from nova_hypervisors.xenapi import disks
from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vm_utils
from nova_hypervisors.xenapi import volume_srs

LOG = logging.getLogger(__name__)

#: VBD other_config keys of a volume's VBD (``osvol`` as the old driver).
OSVOL = 'osvol'
VOLUME_ID = 'nova_volume_id'
#: The first userdevice a volume may take (see the module's doc).
FIRST_FREE_DEVICE = 4


def mountpoint_to_number(mountpoint: str | None) -> int | None:
    """``/dev/xvdc`` and ``/dev/vdc`` and ``sdc`` -> 2; ``'5'`` -> 5."""
    if not mountpoint:
        return None
    name = mountpoint.rsplit('/', 1)[-1]
    if name.isdigit():
        return int(name)
    match = re.fullmatch(r'(?:x?vd|[hs]d)([a-p])', name)
    if match:
        return ord(match.group(1)) - ord('a')
    return None


class VolumeOps:
    """Volumes of the instances on this compute's host."""

    def __init__(self, session: xsession.XenAPISession) -> None:
        self._session = session

    def _call(self, method: str, *args):
        return self._session.call_xenapi(method, *args)

    # -- what Cinder is told ---------------------------------------------

    def get_volume_connector(self) -> dict:
        """This host as an iSCSI initiator (``host.iscsi_iqn``)."""
        session = self._session
        record = session.get_rec('host', session.host_ref) or {}
        initiator = record.get('iscsi_iqn') or (
            record.get('other_config') or {}
        ).get('iscsi_iqn')
        connector = {
            'ip': record.get('address') or '',
            'host': record.get('hostname') or record.get('name_label'),
            'multipath': bool(record.get('multipathing')),
            'platform': 'x86_64',
            'os_type': 'linux2',
        }
        if initiator:
            connector['initiator'] = initiator
        return connector

    # -- attach and detach -------------------------------------------------

    def attach(
        self,
        vm_ref: str,
        connection_info: dict,
        mountpoint: str | None,
        bootable: bool = False,
        hotplug: bool = True,
    ) -> str:
        """Connect the volume and give it to the VM; returns the VBD.

        On any failure nothing is left: the VBD is destroyed and the SR
        forgotten if this attach introduced it.
        """
        target = volume_srs.ISCSITarget.from_connection_info(connection_info)
        session = self._session
        sr_ref, vdi_ref = volume_srs.connect(session, session.host_ref, target)
        vbd_ref = None
        try:
            device = 0 if bootable else self._free_device(vm_ref, mountpoint)
            vbd_ref = disks.create_vbd(
                session,
                vm_ref,
                vdi_ref,
                device,
                bootable=bootable,
                other_config={
                    OSVOL: 'True',
                    VOLUME_ID: common_volumes.volume_id_of(connection_info),
                },
            )
            if hotplug and self._running(vm_ref):
                self._call('VBD.plug', vbd_ref)
        except Exception:
            with contextlib.suppress(Exception):
                if vbd_ref is not None:
                    self._call('VBD.destroy', vbd_ref)
            with contextlib.suppress(Exception):
                volume_srs.release(session, sr_ref)
            raise
        return vbd_ref

    def _running(self, vm_ref: str) -> bool:
        return self._call('VM.get_power_state', vm_ref) == 'Running'

    def _free_device(self, vm_ref: str, mountpoint: str | None) -> int:
        """One call: xapi lists the userdevices still free on the VM."""
        allowed = {
            int(device)
            for device in self._call('VM.get_allowed_VBD_devices', vm_ref)
        }
        wanted = mountpoint_to_number(mountpoint)
        if wanted is not None and wanted >= FIRST_FREE_DEVICE:
            if wanted in allowed:
                return wanted
        free = sorted(d for d in allowed if d >= FIRST_FREE_DEVICE)
        if not free:
            raise exception.StorageError(reason='the VM has no free disk slot')
        return free[0]

    def volume_vbds(self, vm_ref: str) -> dict[str, str]:
        """Volume id -> VBD, for every volume VBD of the VM (one call)."""
        records = self._session.get_all_records_where(
            'VBD', 'field "VM"=%s' % vm_utils.quote(vm_ref)
        )
        return {
            rec['other_config'][VOLUME_ID]: ref
            for ref, rec in records.items()
            if rec['other_config'].get(OSVOL)
            and rec['other_config'].get(VOLUME_ID)
        }

    def detach(self, vm_ref: str, connection_info: dict) -> None:
        """Take the volume off the VM; forget its SR if nothing uses it."""
        volume_id = common_volumes.volume_id_of(connection_info)
        vbd_ref = self.volume_vbds(vm_ref).get(volume_id)
        if vbd_ref is None:
            LOG.info('Volume %s is not attached; nothing to detach', volume_id)
            return
        self._detach_vbd(vbd_ref, volume_id)

    def _detach_vbd(self, vbd_ref: str, volume_id: str) -> None:
        vdi_ref = self._call('VBD.get_VDI', vbd_ref)
        sr_ref = self._call('VDI.get_SR', vdi_ref)
        if self._call('VBD.get_currently_attached', vbd_ref):
            try:
                self._call('VBD.unplug', vbd_ref)
            except exception.NovaException as exc:
                if errors.code_of(exc) == 'DEVICE_DETACH_REJECTED':
                    raise exception.DeviceDetachFailed(
                        device=volume_id,
                        reason='the guest refused to release the disk; '
                        'unmount it in the guest and try again',
                    ) from None
                raise
        with contextlib.suppress(exception.NotFound):
            self._call('VBD.destroy', vbd_ref)
        volume_srs.release(self._session, sr_ref)

    def detach_all(self, vm_ref: str) -> None:
        """Every volume off a halted VM about to be destroyed."""
        for volume_id, vbd_ref in self.volume_vbds(vm_ref).items():
            self._detach_vbd(vbd_ref, volume_id)

    def volume_vdis(self, vm_ref: str) -> set[str]:
        return {
            self._call('VBD.get_VDI', vbd_ref)
            for vbd_ref in self.volume_vbds(vm_ref).values()
        }

    # -- moves -----------------------------------------------------------

    def connect_here(self, vm_ref: str, volumes: list) -> None:
        """Make the VM's volumes usable on this compute's host.

        A VM moving inside the pool (live, or a cold migration's start
        here) keeps its VBDs; xapi starts or receives it only where every
        SR of its disks has a plugged PBD (``VM_REQUIRES_SR``), so each
        volume's SR gets one here.  A volume without a VBD is attached.
        """
        session = self._session
        vbds = self.volume_vbds(vm_ref)
        for volume in volumes:
            info = volume['connection_info']
            target = volume_srs.ISCSITarget.from_connection_info(info)
            if common_volumes.volume_id_of(info) not in vbds:
                self.attach(
                    vm_ref, info, volume.get('mount_device'), hotplug=False
                )
                continue
            sr_ref = volume_srs.find_sr(session, target)
            if sr_ref is None:
                volume_srs.connect(session, session.host_ref, target)
            else:
                volume_srs.plug_on(session, sr_ref, session.host_ref, target)

    def connect_for_arrival(self, volumes: list) -> dict[str, str]:
        """Connect the volumes of a VM coming from another pool.

        Each volume's SR is introduced in this pool under the same uuid
        (derived from the target) and plugged on this host, and its LUN
        scanned in; ``VM.migrate_send`` maps the VM's volume VDIs to these
        SRs, so the LUNs are not copied.  Returns {SR uuid: SR ref}; on a
        failure, the SRs connected so far are released again.
        """
        session = self._session
        connected: dict[str, str] = {}
        try:
            for volume in volumes:
                target = volume_srs.ISCSITarget.from_connection_info(
                    volume['connection_info']
                )
                sr_ref, _ = volume_srs.connect(
                    session, session.host_ref, target
                )
                connected[target.sr_uuid] = sr_ref
        except Exception:
            with excutils.save_and_reraise_exception():
                self.release_srs(connected.values())
        return connected

    def release_srs(self, sr_refs) -> None:
        """Forget each SR that no VBD of the pool uses."""
        for sr_ref in list(sr_refs):
            volume_srs.release(self._session, sr_ref)

    def release_departed(self, volumes: list) -> None:
        """The VM went to another pool: its volume SRs leave this one."""
        for volume in volumes:
            target = volume_srs.ISCSITarget.from_connection_info(
                volume['connection_info']
            )
            sr_ref = volume_srs.find_sr(self._session, target)
            if sr_ref is not None:
                volume_srs.release(self._session, sr_ref)

    def release_here(self, vm_ref: str) -> None:
        """Unplug the VM's volume SRs from this host once the VM left."""
        session = self._session
        for vdi_ref in self.volume_vdis(vm_ref):
            sr_ref = self._call('VDI.get_SR', vdi_ref)
            volume_srs.unplug_from(session, sr_ref, session.host_ref)

    def release_volume_here(self, connection_info: dict) -> None:
        """Unplug one volume's SR from this host, unless a VM here uses
        it; the VBDs stay."""
        target = volume_srs.ISCSITarget.from_connection_info(connection_info)
        sr_ref = volume_srs.find_sr(self._session, target)
        if sr_ref is not None:
            volume_srs.unplug_from(
                self._session, sr_ref, self._session.host_ref
            )

    # -- size ------------------------------------------------------------

    def extend(self, connection_info: dict, requested_size: int) -> None:
        """The array has grown the LUN; rescan so xapi sees its size."""
        target = volume_srs.ISCSITarget.from_connection_info(connection_info)
        sr_ref = volume_srs.find_sr(self._session, target)
        if sr_ref is None:
            raise exception.VolumeNotFound(
                volume_id=common_volumes.volume_id_of(connection_info)
            )
        self._call('SR.scan', sr_ref)
        for vdi_ref in self._call('SR.get_VDIs', sr_ref):
            sm_config = self._call('VDI.get_sm_config', vdi_ref)
            if sm_config.get('LUNid') == str(target.lun):
                size = int(self._call('VDI.get_virtual_size', vdi_ref))
                if size < requested_size:
                    raise exception.StorageError(
                        reason='the LUN is %d bytes after a rescan, not %d'
                        % (size, requested_size)
                    )
                return
        raise exception.VolumeNotFound(
            volume_id=common_volumes.volume_id_of(connection_info)
        )
