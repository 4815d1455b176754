"""Real disk bytes: /import_raw_vdi and /export_raw_vdi."""

from __future__ import annotations

import hashlib
import os
import struct
import urllib.parse

import pytest

from tests.functional.xapi_sim.helpers import GIB
from tests.functional.xapi_sim.helpers import MIB
from tests.functional.xapi_sim.helpers import connect
from tests.functional.xapi_sim.helpers import create_vdi
from tests.functional.xapi_sim.helpers import default_sr
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import local_sr


def transfer(host, method, path, query, body=None, headers=None):
    conn = connect(host)
    conn.request(
        method,
        '%s?%s' % (path, urllib.parse.urlencode(query)),
        body=body,
        headers=headers or {},
    )
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def upload(sim, session, vdi, data, fmt='raw', **extra):
    query = {'vdi': vdi, 'session_id': session._session, 'format': fmt}
    query.update(extra)
    return transfer(sim.hosts[0], 'PUT', '/import_raw_vdi', query, data)


def download(sim, session, vdi, fmt='raw'):
    query = {'vdi': vdi, 'session_id': session._session, 'format': fmt}
    return transfer(sim.hosts[0], 'GET', '/export_raw_vdi', query)


def pattern(size: int) -> bytes:
    """Data with holes and non-zero runs, like a real image."""
    out = bytearray(size)
    block = hashlib.sha256(b'xapi-sim').digest() * 2048  # 64 KiB
    for offset in range(0, size, 3 * MIB):
        chunk = block[: min(len(block), size - offset)]
        out[offset : offset + len(chunk)] = chunk
    out[-7:] = b'the end'
    return bytes(out)


def test_raw_import_exports_back_identical(sim, session):
    xapi = session.xenapi
    data = pattern(8 * MIB)
    vdi = create_vdi(xapi, default_sr(xapi), len(data))
    status, _ = upload(sim, session, vdi, data)
    assert status == 200
    status, exported = download(sim, session, vdi)
    assert status == 200
    assert exported == data


def test_chunked_upload_and_shorter_image(sim, session):
    xapi = session.xenapi
    vdi = create_vdi(xapi, default_sr(xapi), 4 * MIB)
    data = pattern(3 * MIB)
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    status, _ = upload(sim, session, vdi, iter(chunks))
    assert status == 200
    _, exported = download(sim, session, vdi)
    assert len(exported) == 4 * MIB
    assert exported[: len(data)] == data
    assert exported[len(data) :] == bytes(MIB)


def test_vdi_copies_carry_the_bytes(sim, session):
    xapi = session.xenapi
    data = pattern(4 * MIB)
    vdi = create_vdi(xapi, default_sr(xapi), len(data))
    upload(sim, session, vdi, data)
    copies = [
        xapi.VDI.copy(vdi, local_sr(xapi)),
        xapi.VDI.clone(vdi, {}),
        xapi.VDI.snapshot(vdi, {}),
    ]
    for copy in copies:
        assert download(sim, session, copy)[1] == data


def test_vhd_export_and_import_round_trip(sim, session):
    xapi = session.xenapi
    data = pattern(20 * MIB)
    vdi = create_vdi(xapi, default_sr(xapi), len(data))
    upload(sim, session, vdi, data)
    status, image = download(sim, session, vdi, 'vhd')
    assert status == 200
    footer = image[-512:]
    assert footer[:8] == b'conectix' and image[:512] == footer
    assert struct.unpack('>I', footer[60:64])[0] == 3  # dynamic
    assert struct.unpack('>Q', footer[48:56])[0] == len(data)
    checksum = struct.unpack('>I', footer[64:68])[0]
    zeroed = footer[:64] + b'\0\0\0\0' + footer[68:]
    assert checksum == (~sum(zeroed)) & 0xFFFFFFFF
    assert image[512:520] == b'cxsparse'
    # Only the 2 MiB blocks with data are in the image: data every 3 MiB
    # of 20 MiB fills 7 of the 10 blocks.
    blocks = (len(image) - 512 * 3 - 512 - 512) // (2 * MIB + 512)
    assert blocks == 7
    other = create_vdi(xapi, default_sr(xapi), len(data))
    assert upload(sim, session, other, image, 'vhd')[0] == 200
    assert download(sim, session, other)[1] == data


def test_fixed_vhd_import(sim, session):
    xapi = session.xenapi
    data = pattern(2 * MIB)
    footer = bytearray(512)
    footer[:8] = b'conectix'
    struct.pack_into('>Q', footer, 40, len(data))
    struct.pack_into('>Q', footer, 48, len(data))
    struct.pack_into('>I', footer, 60, 2)  # fixed
    vdi = create_vdi(xapi, default_sr(xapi), len(data))
    assert upload(sim, session, vdi, data + bytes(footer), 'vhd')[0] == 200
    assert download(sim, session, vdi)[1] == data


def test_big_vdis_cost_nothing_until_written(sim, session):
    xapi = session.xenapi
    vdi = create_vdi(xapi, default_sr(xapi), GIB)
    uuid = xapi.VDI.get_uuid(vdi)
    sr_uuid = xapi.SR.get_uuid(xapi.VDI.get_SR(vdi))
    disks = sim.topology.disks
    assert os.path.getsize(disks.path(sr_uuid, uuid)) == GIB
    assert disks.allocated(sr_uuid, uuid) < MIB
    upload(sim, session, vdi, pattern(MIB))
    assert disks.allocated(sr_uuid, uuid) < 2 * MIB
    clone = xapi.VDI.clone(vdi, {})
    assert disks.allocated(sr_uuid, xapi.VDI.get_uuid(clone)) < 2 * MIB


def test_transfers_refuse_bad_sessions_vdis_and_sizes(sim, session):
    xapi = session.xenapi
    vdi = create_vdi(xapi, default_sr(xapi), MIB)
    query = {'vdi': vdi, 'session_id': 'OpaqueRef:bogus'}
    assert transfer(sim.hosts[0], 'GET', '/export_raw_vdi', query)[0] == 401
    status, _ = download(sim, session, 'OpaqueRef:missing')
    assert status == 404
    # import_raw_vdi.ml answers 200 before the data: too much data is
    # a failure of the task only.
    task = xapi.task.create('import', '')
    status, _ = upload(sim, session, vdi, bytes(2 * MIB), task_id=task)
    assert status == 200
    assert xapi.task.get_error_info(task)[0] == 'VDI_TOO_SMALL'
    assert download(sim, session, vdi, 'qcow2')[0] == 400


def test_import_task_reports_the_outcome(sim, session):
    xapi = session.xenapi
    vdi = create_vdi(xapi, default_sr(xapi), MIB)
    task = xapi.task.create('import', '')
    assert upload(sim, session, vdi, pattern(MIB), task_id=task)[0] == 200
    assert xapi.task.get_status(task) == 'success'
    bad = xapi.task.create('import', '')
    upload(sim, session, vdi, b'not a vhd at all' * 100, 'vhd', task_id=bad)
    assert xapi.task.get_status(bad) == 'failure'
    assert xapi.task.get_error_info(bad)[0] == 'IMPORT_ERROR'


@pytest.mark.parametrize('fmt', ['raw', 'vhd'])
def test_exports_of_a_fresh_vdi_are_zeros(sim, session, fmt):
    xapi = session.xenapi
    vdi = create_vdi(xapi, default_sr(xapi), 3 * MIB)
    status, image = download(sim, session, vdi, fmt)
    assert status == 200
    if fmt == 'raw':
        assert image == bytes(3 * MIB)
    else:
        other = create_vdi(xapi, default_sr(xapi), 3 * MIB)
        assert upload(sim, session, other, image, 'vhd')[0] == 200
        assert download(sim, session, other)[1] == bytes(3 * MIB)
    assert failure_of(xapi.VDI.get_record, 'OpaqueRef:x')[0] == (
        'HANDLE_INVALID'
    )
