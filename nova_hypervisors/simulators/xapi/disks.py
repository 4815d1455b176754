"""Real VDI bytes under the state directory, kept sparse.

Each VDI is one file, ``<state_dir>/sr-<SR uuid>/<VDI uuid>.img``, whose
length is the VDI's virtual size.  A new VDI is a hole: a 1 GiB disk costs
nothing until written.  Copies (VDI.copy/clone/snapshot, VM.copy, storage
migration) try a copy-on-write clone first (``FICLONE`` on btrfs/XFS) and
otherwise copy only the allocated extents, so holes stay holes.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import errno
import fcntl
import os
from pathlib import Path
import shutil
import threading

FICLONE = 0x40049409
CHUNK = 1 << 20


class DiskStore:
    """Files backing the VDIs of every SR of one simulator."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def sr_dir(self, sr_uuid: str) -> Path:
        path = self.root / ('sr-%s' % sr_uuid)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def path(self, sr_uuid: str, vdi_uuid: str) -> Path:
        return self.sr_dir(sr_uuid) / ('%s.img' % vdi_uuid)

    def create(self, sr_uuid: str, vdi_uuid: str, size: int) -> Path:
        path = self.path(sr_uuid, vdi_uuid)
        with open(path, 'wb') as disk:
            disk.truncate(size)
        return path

    def link(self, sr_uuid: str, vdi_uuid: str, target: str) -> None:
        """Back a VDI with a file that lives elsewhere (an array's LUN).

        Writes through the VDI reach that file: every writer here opens
        disks ``r+b``, never truncating.  Removing the link (SR.forget,
        a LUN gone) leaves the file alone.
        """
        path = self.path(sr_uuid, vdi_uuid)
        if path.is_symlink() and os.readlink(path) == target:
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        path.symlink_to(target)

    def unlink(self, sr_uuid: str, vdi_uuid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sr_uuid, vdi_uuid).unlink()

    def exists(self, sr_uuid: str, vdi_uuid: str) -> bool:
        return self.path(sr_uuid, vdi_uuid).exists()

    def destroy(self, sr_uuid: str, vdi_uuid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sr_uuid, vdi_uuid).unlink()

    def destroy_sr(self, sr_uuid: str) -> None:
        shutil.rmtree(self.root / ('sr-%s' % sr_uuid), ignore_errors=True)

    def resize(self, sr_uuid: str, vdi_uuid: str, size: int) -> None:
        with open(self._existing(sr_uuid, vdi_uuid), 'r+b') as disk:
            disk.truncate(size)

    def allocated(self, sr_uuid: str, vdi_uuid: str) -> int:
        """Bytes really used on the host's disk (for tests and reports)."""
        return self._existing(sr_uuid, vdi_uuid).stat().st_blocks * 512

    def copy(
        self, src: tuple[str, str], dst: tuple[str, str], size: int
    ) -> None:
        """Copy the bytes of VDI ``src`` to a new VDI ``dst`` of ``size``."""
        source = self._existing(*src)
        target = self.path(*dst)
        with open(source, 'rb') as fin, open(target, 'wb') as fout:
            if not _try_reflink(fin, fout):
                for start, end in data_extents(fin.fileno()):
                    _copy_range(fin.fileno(), fout.fileno(), start, end)
            fout.truncate(size)

    def _existing(self, sr_uuid: str, vdi_uuid: str) -> Path:
        path = self.path(sr_uuid, vdi_uuid)
        if not path.exists():
            # A VDI record without bytes (introduced, or created before the
            # state directory was wiped) reads as zeros, like a new disk.
            with open(path, 'wb'):
                pass
        return path


def _try_reflink(fin, fout) -> bool:
    try:
        fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
        return True
    except OSError:
        return False


def _copy_range(fd_in: int, fd_out: int, start: int, end: int) -> None:
    offset = start
    while offset < end:
        count = min(end - offset, 64 * CHUNK)
        try:
            done = os.copy_file_range(fd_in, fd_out, count, offset, offset)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL):
                raise
            data = os.pread(fd_in, count, offset)
            done = os.pwrite(fd_out, data, offset)
        if done == 0:
            break
        offset += done


def data_extents(fd: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every allocated region of an open file."""
    size = os.fstat(fd).st_size
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return
            yield (offset, size)  # no SEEK_DATA support: all of it
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield (start, end)
        offset = end


def is_hole(fd: int, start: int, end: int) -> bool:
    """Whether ``[start, end)`` of the file has never been written."""
    try:
        data = os.lseek(fd, start, os.SEEK_DATA)
    except OSError as exc:
        return exc.errno == errno.ENXIO
    return data >= end


def write_at(fd: int, offset: int, data: bytes | memoryview) -> None:
    """Write ``data`` at ``offset``, skipping zeros that land on holes."""
    if not any(data) and is_hole(fd, offset, offset + len(data)):
        return
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view = view[done:]
        offset += done


def read_raw(path: Path, size: int) -> Iterator[bytes]:
    """Every byte of a disk, zeros for holes, in chunks."""
    with open(path, 'rb') as disk:
        fd = disk.fileno()
        offset = 0
        while offset < size:
            count = min(CHUNK, size - offset)
            if is_hole(fd, offset, offset + count):
                yield bytes(count)
            else:
                chunk = os.pread(fd, count, offset)
                if len(chunk) < count:
                    chunk += bytes(count - len(chunk))
                yield chunk
            offset += count
