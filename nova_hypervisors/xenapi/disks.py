"""VDIs and VBDs: the SR for instance disks, disk creation and removal.

Disk bytes move in :mod:`transfers`.
"""

from __future__ import annotations

import struct

from nova import exception
from oslo_log import log as logging

from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vm_utils

LOG = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2
NOVA_INSTANCE = 'nova_instance_uuid'
NOVA_DISK = 'nova_disk_type'
#: VDI other_config key marking a resize backup (of which instance).
BACKUP_OF = 'nova_resize_backup_of'
#: The name of a disk's resize backup (destroy finds unrecorded ones).
BACKUP_NAME = '%s resize backup'
NULL_REF = 'OpaqueRef:NULL'
DISK_FORMATS = ('raw', 'vhd')

VHD_COOKIE = b'conectix'


LOCAL_STORAGE_FILTER = 'other-config:i18n-key=local-storage'


def find_sr(session: xsession.XenAPISession, matching_filter: str) -> str:
    """The SR for instance disks, chosen by ``sr_matching_filter``.

    Only an SR plugged on *this* compute's host qualifies: a VM can start
    only where every SR it needs has an attached PBD (xapi refuses with
    ``VM_REQUIRES_SR``), and disk transfers are served by such a host.
    The old in-tree driver kept the same rule (nova 21.2.3
    ``vm_utils._find_sr``: an SR with a PBD of ``session.host_ref``).
    ``other-config:i18n-key=local-storage`` matches every host's local
    SR, so it picks this host's own.
    """
    kind, _, wanted = matching_filter.partition(':')
    if kind == 'default-sr' and wanted == 'true':
        pool = session.call_xenapi('pool.get_record', session.pool_ref)
        default = pool.get('default_SR')
        candidates = [default] if default and default != NULL_REF else []
        what = "the pool's default SR"
    elif kind == 'other-config' and '=' in wanted:
        key, _, value = wanted.partition('=')
        candidates = [
            ref
            for ref, rec in session.call_xenapi('SR.get_all_records').items()
            if (rec.get('other_config') or {}).get(key) == value
        ]
        what = 'an SR with other_config %s' % wanted
    else:
        raise exception.StorageError(
            reason='[xenserver] sr_matching_filter %r is neither '
            '"default-sr:true" nor "other-config:<key>=<value>"'
            % matching_filter
        )
    plugged = {
        pbd['SR']
        for pbd in session.get_all_records_where(
            'PBD',
            'field "host"=%s and field "currently_attached"="true"'
            % vm_utils.quote(session.host_ref),
        ).values()
    }
    for sr_ref in candidates:
        if sr_ref in plugged:
            return sr_ref
    hint = ''
    if candidates and matching_filter != LOCAL_STORAGE_FILTER:
        hint = (
            '; a pool whose hosts have only local storage needs '
            'sr_matching_filter = %s' % LOCAL_STORAGE_FILTER
        )
    raise exception.StorageError(
        reason='[xenserver] sr_matching_filter %r: %s on XenServer host %s'
        % (
            matching_filter,
            (
                '%s is not plugged' % what
                if candidates
                else 'no SR matches (%s)' % what
            ),
            session.host_name or session.host_address,
        )
        + hint
    )


def create_vdi(
    session,
    sr_ref: str,
    name: str,
    size: int,
    other_config: dict,
    read_only: bool = False,
) -> str:
    """A new, empty VDI of ``size`` bytes."""
    return session.call_xenapi(
        'VDI.create',
        {
            'name_label': name,
            'name_description': '',
            'SR': sr_ref,
            'virtual_size': str(int(size)),
            'type': 'user',
            'sharable': False,
            'read_only': read_only,
            'other_config': other_config,
            'xenstore_data': {},
            'sm_config': {},
            'tags': [],
        },
    )


def create_vbd(
    session,
    vm_ref: str,
    vdi_ref: str | None,
    userdevice: int,
    bootable: bool = False,
    cd: bool = False,
    read_only: bool = False,
    other_config: dict | None = None,
) -> str:
    return session.call_xenapi(
        'VBD.create',
        {
            'VM': vm_ref,
            'VDI': vdi_ref or 'OpaqueRef:NULL',
            'userdevice': str(userdevice),
            'bootable': bootable,
            'mode': 'RO' if (cd or read_only) else 'RW',
            'type': 'CD' if cd else 'Disk',
            'unpluggable': True,
            'empty': vdi_ref is None,
            'other_config': other_config or {},
            'qos_algorithm_type': '',
            'qos_algorithm_params': {},
            'device': '',
        },
    )


def instance_disk_config(instance_uuid: str, kind: str) -> dict:
    return {NOVA_INSTANCE: instance_uuid, NOVA_DISK: kind}


def destroy_vdi(session, vdi_ref: str) -> None:
    """Destroy a VDI; one already gone is fine."""
    try:
        session.call_xenapi('VDI.destroy', vdi_ref)
    except exception.NotFound:
        pass


def resize_vdi(session, vdi_ref: str, size: int) -> None:
    session.call_xenapi('VDI.resize', vdi_ref, str(int(size)))


def vhd_virtual_size(head: bytes, file_size: int) -> int:
    """A VHD's virtual size from its first 512 bytes.

    Dynamic and differencing VHDs start with a copy of the footer ("current
    size" at offset 48); a fixed VHD is its data followed by the footer.
    """
    if head[:8] == VHD_COOKIE and len(head) >= 56:
        return struct.unpack('>Q', head[48:56])[0]
    return max(file_size - 512, 0)


def vdis_of_instance(
    session,
    instance_uuid: str,
    vm_record: dict | None,
    kinds: tuple[str, ...] | None = None,
) -> list[str]:
    """The instance's own VDIs (never Cinder volumes), from its VBDs.

    ``kinds``, when given, keeps only VDIs of those ``nova_disk_type``s.
    """
    result = []
    if not vm_record:
        return result
    for vbd_ref in vm_record.get('VBDs', []):
        vbd = session.get_rec('VBD', vbd_ref)
        if not vbd or vbd['VDI'] == 'OpaqueRef:NULL':
            continue
        vdi = session.get_rec('VDI', vbd['VDI'])
        other_config = (vdi or {}).get('other_config') or {}
        if other_config.get(NOVA_INSTANCE) != instance_uuid:
            continue
        if kinds is None or other_config.get(NOVA_DISK) in kinds:
            result.append(vbd['VDI'])
    return result


def rounded_size(size: int, unit: int = MIB) -> int:
    return (int(size) + unit - 1) // unit * unit
