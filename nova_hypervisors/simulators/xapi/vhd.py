"""The VHD format of ``/import_raw_vdi`` and ``/export_raw_vdi``.

Export writes a *dynamic* VHD (footer copy, dynamic header, block
allocation table, 2 MiB blocks each behind its sector bitmap, footer) with
only the blocks the sparse disk file has data in, as xapi's ``vhd-tool``
streams one.  Import reads dynamic VHDs in stream order and fixed VHDs
(raw data followed by a footer).  Differencing VHDs are refused: a stream
upload has no parent to resolve.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import os
from pathlib import Path
import struct
import time
import uuid as uuidlib

from nova_hypervisors.simulators.xapi import disks

SECTOR = 512
BLOCK_SIZE = 2 * 1024 * 1024
NO_BLOCK = 0xFFFFFFFF
FOOTER_FMT = '>8sIIQI4sI4sQQIII16sB427s'
HEADER_FMT = '>8sQQIIII16sII512s192s256s'
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z
DISK_FIXED, DISK_DYNAMIC, DISK_DIFFERENCING = 2, 3, 4


class VhdError(Exception):
    """The upload is not a VHD this simulator can read."""


class PrematureEof(VhdError):
    pass


def _checksum(data: bytes) -> int:
    return (~sum(data)) & 0xFFFFFFFF


def geometry(size: int) -> int:
    """CHS geometry of the VHD specification, packed as in the footer."""
    total = min(size // SECTOR, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    cylinders = cth // heads
    return (cylinders << 16) | (heads << 8) | spt


def footer(size: int, disk_type: int, data_offset: int) -> bytes:
    fields = [
        b'conectix',
        2,
        0x00010000,
        data_offset,
        int(time.time()) - VHD_EPOCH,
        b'xsim',
        0x00010000,
        b'Lnux',
        size,
        size,
        geometry(size),
        disk_type,
        0,
        uuidlib.uuid4().bytes,
        0,
        bytes(427),
    ]
    raw = struct.pack(FOOTER_FMT, *fields)
    fields[12] = _checksum(raw)
    return struct.pack(FOOTER_FMT, *fields)


def dynamic_header(entries: int, table_offset: int) -> bytes:
    fields = [
        b'cxsparse',
        0xFFFFFFFFFFFFFFFF,
        table_offset,
        0x00010000,
        entries,
        BLOCK_SIZE,
        0,
        bytes(16),
        0,
        0,
        bytes(512),
        bytes(192),
        bytes(256),
    ]
    raw = struct.pack(HEADER_FMT, *fields)
    fields[6] = _checksum(raw)
    return struct.pack(HEADER_FMT, *fields)


def _round_up(value: int, unit: int) -> int:
    return (value + unit - 1) // unit * unit


class Export:
    """A dynamic VHD of one disk file: its length, then its bytes."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.entries = (size + BLOCK_SIZE - 1) // BLOCK_SIZE
        with open(path, 'rb') as disk:
            used = set()
            for start, end in disks.data_extents(disk.fileno()):
                end = min(end, size)
                if start < end:
                    used.update(
                        range(start // BLOCK_SIZE, (end - 1) // BLOCK_SIZE + 1)
                    )
        self.blocks = sorted(used)
        self.table_offset = 3 * SECTOR
        self.table_size = _round_up(self.entries * 4, SECTOR)
        self.data_start = self.table_offset + self.table_size
        self.bitmap_size = _round_up(BLOCK_SIZE // SECTOR // 8, SECTOR)
        self.stride = self.bitmap_size + BLOCK_SIZE

    @property
    def length(self) -> int:
        return self.data_start + len(self.blocks) * self.stride + SECTOR

    def __iter__(self) -> Iterator[bytes]:
        tail = footer(self.size, DISK_DYNAMIC, SECTOR)
        yield tail
        yield dynamic_header(self.entries, self.table_offset)
        table = [NO_BLOCK] * self.entries
        for position, block in enumerate(self.blocks):
            table[block] = (self.data_start + position * self.stride) // SECTOR
        bat = struct.pack('>%dI' % self.entries, *table)
        yield bat + bytes(self.table_size - len(bat))
        bitmap = b'\xff' * self.bitmap_size
        with open(self.path, 'rb') as disk:
            for block in self.blocks:
                offset = block * BLOCK_SIZE
                data = os.pread(disk.fileno(), BLOCK_SIZE, offset)
                yield bitmap
                yield data + bytes(BLOCK_SIZE - len(data))
        yield tail


class _Reader:
    """Sequential reads from a stream, tracking the position."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self.position = 0

    def exactly(self, count: int) -> bytes:
        parts = []
        remaining = count
        while remaining:
            chunk = self._read(min(remaining, disks.CHUNK))
            if not chunk:
                raise PrematureEof('stream ended %d bytes early' % remaining)
            parts.append(chunk)
            remaining -= len(chunk)
        self.position += count
        return b''.join(parts)

    def skip_to(self, offset: int) -> None:
        if offset < self.position:
            raise VhdError('VHD structures out of stream order')
        while self.position < offset:
            self.exactly(min(offset - self.position, disks.CHUNK))

    def drain(self) -> None:
        while self._read(disks.CHUNK):
            pass


def import_stream(
    read: Callable[[int], bytes],
    length: int | None,
    fd: int,
    capacity: int,
) -> int:
    """Write a VHD read from ``read`` into the disk open as ``fd``.

    Returns the virtual size the VHD declared.  ``capacity`` is the VDI's
    virtual size: a bigger VHD does not fit.
    """
    reader = _Reader(read)
    first = reader.exactly(SECTOR)
    if first[:8] != b'conectix':
        return _import_fixed(reader, first, length, fd, capacity)
    fields = struct.unpack(FOOTER_FMT, first)
    size, disk_type, data_offset = fields[9], fields[11], fields[3]
    if disk_type == DISK_DIFFERENCING:
        raise VhdError('differencing VHDs need their parent')
    if disk_type != DISK_DYNAMIC:
        raise VhdError('unsupported VHD disk type %d' % disk_type)
    if size > capacity:
        raise VhdError(
            'VHD of %d bytes exceeds the VDI size %d' % (size, capacity)
        )
    reader.skip_to(data_offset)
    header = struct.unpack(HEADER_FMT, reader.exactly(1024))
    if header[0] != b'cxsparse':
        raise VhdError('bad dynamic header cookie')
    table_offset, entries, block_size = header[2], header[4], header[5]
    reader.skip_to(table_offset)
    table = struct.unpack('>%dI' % entries, reader.exactly(entries * 4))
    bitmap_size = _round_up(block_size // SECTOR // 8, SECTOR)
    allocated = sorted(
        (sector * SECTOR, block)
        for block, sector in enumerate(table)
        if sector != NO_BLOCK
    )
    for offset, block in allocated:
        reader.skip_to(offset)
        bitmap = reader.exactly(bitmap_size)
        data = reader.exactly(block_size)
        _write_block(fd, block * block_size, bitmap, data, size)
    reader.drain()
    return size


def _write_block(
    fd: int, base: int, bitmap: bytes, data: bytes, size: int
) -> None:
    """Write the sectors the bitmap marks present, up to the disk size."""
    sectors = len(data) // SECTOR
    run_start = None
    for sector in range(sectors + 1):
        present = (
            sector < sectors and (bitmap[sector // 8] >> (7 - sector % 8)) & 1
        )
        if present and run_start is None:
            run_start = sector
        elif not present and run_start is not None:
            start = base + run_start * SECTOR
            end = min(base + sector * SECTOR, size)
            if start < end:
                chunk = data[
                    run_start * SECTOR : run_start * SECTOR + end - start
                ]
                disks.write_at(fd, start, chunk)
            run_start = None


def _import_fixed(
    reader: _Reader, first: bytes, length: int | None, fd: int, capacity: int
) -> int:
    if length is None:
        raise VhdError('a fixed VHD upload needs a Content-Length')
    size = length - SECTOR
    if size < 0 or size % SECTOR:
        raise VhdError('a fixed VHD is whole sectors plus a footer')
    if size > capacity:
        raise VhdError(
            'VHD of %d bytes exceeds the VDI size %d' % (size, capacity)
        )
    offset = 0
    pending = first
    while offset < size:
        if not pending:
            pending = reader.exactly(min(disks.CHUNK, size - offset))
        chunk, pending = pending[: size - offset], pending[size - offset :]
        disks.write_at(fd, offset, chunk)
        offset += len(chunk)
    tail = pending + reader.exactly(SECTOR - len(pending))
    if tail[:8] != b'conectix':
        raise VhdError('no VHD footer at the end of the upload')
    return size
