"""VDIs and VBDs: the SR for instance disks, disk creation, transfers.

Disk bytes move through xapi's own HTTP handlers on the pool master
(``PUT /import_raw_vdi``, ``GET /export_raw_vdi``), streamed: nothing of an
image is ever stored whole on the compute host.
"""

from __future__ import annotations

import struct
import urllib.parse

from oslo_log import log as logging

from nova import exception
from nova_hypervisors.common import images
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


class _PutSink:
    """``PUT /import_raw_vdi`` with a known length, fed chunk by chunk."""

    def __init__(
        self,
        session: xsession.XenAPISession,
        vdi_ref: str,
        disk_format: str,
        length: int,
    ) -> None:
        self._expected = length
        self._sent = 0
        query = urllib.parse.urlencode(
            {
                'vdi': vdi_ref,
                'format': disk_format,
                'session_id': session.handle,
            }
        )
        self._conn = session.http_connection(session.operation_timeout)
        self._conn.putrequest(
            'PUT', '/import_raw_vdi?' + query, skip_accept_encoding=True
        )
        self._conn.putheader('Content-Length', str(length))
        self._conn.putheader('Content-Type', 'application/octet-stream')
        self._conn.endheaders()

    def write(self, chunk: bytes) -> None:
        self._sent += len(chunk)
        if self._sent > self._expected:
            raise exception.ImageUnacceptable(
                image_id='', reason='image is larger than Glance says'
            )
        self._conn.send(chunk)

    def close(self) -> None:
        try:
            if self._sent != self._expected:
                raise exception.ImageUnacceptable(
                    image_id='',
                    reason='image has %d bytes, Glance says %d'
                    % (self._sent, self._expected),
                )
            response = self._conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise exception.StorageError(
                    reason='import_raw_vdi answered HTTP %d %s'
                    % (response.status, body[:200].decode('ascii', 'replace'))
                )
        finally:
            self._conn.close()

    def abort(self) -> None:
        self._conn.close()


def import_image(
    session: xsession.XenAPISession,
    context,
    image_meta,
    sr_ref: str,
    name: str,
    other_config: dict,
) -> str:
    """Stream a Glance image into a new VDI; return the VDI.

    The VDI is created once the image head is known (a VHD tells its
    virtual size there), and destroyed again if the transfer fails.
    """
    disk_format = images.require_disk_format(image_meta, DISK_FORMATS)
    length = int(image_meta.size)
    created: list[str] = []

    def open_sink(head: bytes) -> _PutSink:
        if disk_format == 'vhd':
            size = vhd_virtual_size(head, length)
        else:
            size = length
        size = max(size, MIB)
        vdi_ref = create_vdi(session, sr_ref, name, size, other_config)
        created.append(vdi_ref)
        return _PutSink(session, vdi_ref, disk_format, length)

    writer = images.StreamingWriter(open_sink)
    try:
        images.stream_image(context, image_meta.id, writer)
    except BaseException:
        for vdi_ref in created:
            destroy_vdi(session, vdi_ref)
        raise
    LOG.debug(
        'Imported image %s (%d bytes, %s)', image_meta.id, length, disk_format
    )
    return created[0]


def export_vdi(
    session: xsession.XenAPISession, vdi_ref: str, disk_format: str = 'vhd'
):
    """An open HTTP response streaming the VDI's bytes (has ``read``)."""
    query = urllib.parse.urlencode(
        {
            'vdi': vdi_ref,
            'format': disk_format,
            'session_id': session.handle,
        }
    )
    conn = session.http_connection(session.operation_timeout)
    conn.request('GET', '/export_raw_vdi?' + query)
    response = conn.getresponse()
    if response.status != 200:
        body = response.read()[:200].decode('ascii', 'replace')
        conn.close()
        raise exception.StorageError(
            reason='export_raw_vdi answered HTTP %d %s'
            % (response.status, body)
        )
    return response


def upload_bytes(
    session: xsession.XenAPISession, vdi_ref: str, data: bytes
) -> None:
    """Write small contents (a config drive) into a VDI."""
    sink = _PutSink(session, vdi_ref, 'raw', len(data))
    try:
        sink.write(data)
        sink.close()
    except BaseException:
        sink.abort()
        raise


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
