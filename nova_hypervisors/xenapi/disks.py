"""VDIs and VBDs: the SR for instance disks, disk creation and removal.

Disk bytes move in :mod:`transfers`.
"""

from __future__ import annotations

import struct

from oslo_log import log as logging

from nova import exception
from nova_hypervisors.xenapi import session as xsession

LOG = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2
NOVA_INSTANCE = 'nova_instance_uuid'
NOVA_DISK = 'nova_disk_type'
DISK_FORMATS = ('raw', 'vhd')

VHD_COOKIE = b'conectix'


def find_sr(session: xsession.XenAPISession, matching_filter: str) -> str:
    """The SR for instance disks, chosen by ``sr_matching_filter``."""
    kind, _, wanted = matching_filter.partition(':')
    if kind == 'default-sr' and wanted == 'true':
        pool = session.call_xenapi('pool.get_record', session.pool_ref)
        sr_ref = pool.get('default_SR')
        if sr_ref and sr_ref != 'OpaqueRef:NULL':
            return sr_ref
        raise exception.StorageError(
            reason='the XenServer pool has no default SR: set one, or fix '
            '[xenserver] sr_matching_filter'
        )
    if kind == 'other-config' and '=' in wanted:
        key, _, value = wanted.partition('=')
        for ref, rec in session.call_xenapi('SR.get_all_records').items():
            if (rec.get('other_config') or {}).get(key) == value:
                return ref
    raise exception.StorageError(
        reason='no SR matches [xenserver] sr_matching_filter %r'
        % matching_filter
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
) -> str:
    return session.call_xenapi(
        'VBD.create',
        {
            'VM': vm_ref,
            'VDI': vdi_ref or 'OpaqueRef:NULL',
            'userdevice': str(userdevice),
            'bootable': bootable,
            'mode': 'RO' if cd else 'RW',
            'type': 'CD' if cd else 'Disk',
            'unpluggable': True,
            'empty': vdi_ref is None,
            'other_config': {},
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
