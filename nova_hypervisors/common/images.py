"""Glance images streamed to and from a hypervisor, never copied whole.

Nova's image API writes an image's chunks into a file object (``data=``)
both with the real Glance client and with Nova's functional-test fixture,
so the download side is a write-only file object that forwards each chunk
to the hypervisor as it arrives.  The hypervisor side (an HTTP PUT, an NFC
lease...) is opened lazily, after the first bytes: a driver may need the
image header (a VHD footer copy, a VMDK descriptor) to size the disk it
creates, and a refused image must not leave anything created behind.
"""

from __future__ import annotations

from collections.abc import Callable
import io
from typing import Protocol

from nova import exception
from nova.image import glance
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

IMAGE_API = glance.API()


class Sink(Protocol):
    """Where the image bytes go."""

    def write(self, chunk: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def require_disk_format(image_meta, allowed: tuple[str, ...]) -> str:
    """The image's disk format, refused unless in ``allowed``.

    Called before anything is created on the hypervisor.
    """
    disk_format = getattr(image_meta, 'disk_format', None)
    if disk_format not in allowed:
        raise exception.ImageUnacceptable(
            image_id=getattr(image_meta, 'id', None),
            reason='disk format %r is not supported by this hypervisor '
            '(supported: %s)' % (disk_format, ', '.join(allowed)),
        )
    return disk_format


class StreamingWriter(io.RawIOBase):
    """A write-only file that opens its sink once it has seen the head.

    ``open_sink(head)`` receives the first ``head_size`` bytes (fewer for
    a tiny image) and returns the :class:`Sink`; every byte, head included,
    then goes to it in order.
    """

    def __init__(
        self, open_sink: Callable[[bytes], Sink], head_size: int = 512
    ) -> None:
        super().__init__()
        self._open_sink = open_sink
        self._head_size = head_size
        self._head = bytearray()
        self._sink: Sink | None = None
        self.bytes_written = 0

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        size = len(chunk)
        self.bytes_written += size
        if self._sink is None:
            self._head += chunk
            if len(self._head) < self._head_size:
                return size
            self._start()
            return size
        self._sink.write(bytes(chunk))
        return size

    def _start(self) -> None:
        head = bytes(self._head)
        self._head = bytearray()
        self._sink = self._open_sink(head[: self._head_size])
        self._sink.write(head)

    def finish(self) -> None:
        """All bytes were written: let the sink complete."""
        if self._sink is None:
            self._start()
        self._sink.close()

    def abort(self) -> None:
        if self._sink is not None:
            self._sink.abort()

    @property
    def started(self) -> bool:
        return self._sink is not None

    # Nova's image API may flush/fsync the file it was given.
    def flush(self) -> None:
        return None

    def fileno(self) -> int:
        raise OSError('not a real file')


def stream_image(context, image_id: str, writer: StreamingWriter) -> None:
    """Stream a Glance image into ``writer`` and complete the sink."""
    try:
        IMAGE_API.download(context, image_id, data=writer)
        writer.finish()
    except BaseException:
        writer.abort()
        raise


def upload_image(context, image_id: str, metadata: dict, data) -> None:
    """Upload ``data`` (a readable file object) as the image's bytes."""
    IMAGE_API.update(context, image_id, metadata, data=data, purge_props=False)
