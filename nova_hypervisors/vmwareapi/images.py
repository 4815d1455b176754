"""Glance images as disks on a datastore, cached once per datastore.

The first boot of an image on a datastore streams it from Glance to
``[ds] <cache folder>/<image id>/`` over vCenter's ``/folder`` interface,
chunk by chunk, never holding the image on the compute node (only an image
with a signature to verify, or without a size, goes through a temporary
file first); later boots copy or link from there.  A raw image (or a
preallocated vmdk, which is the same bytes) becomes a monolithic flat vmdk:
its data is the ``-flat.vmdk`` extent, padded to whole sectors, and we
write the small descriptor next to it, so no conversion tool is needed.

Uploads of one image to one datastore are serialised by a lock inside one
nova-compute.  Two nova-computes whose clusters share a datastore never
write the same file: each uploads under a name of its own, then renames
the disk into place (``MoveVirtualDisk_Task`` without ``force``); the one
that finds the name taken drops its copy and uses the other's.
"""

from collections.abc import Iterator
import itertools
import logging
import math
import tempfile
from typing import Any
import uuid

from nova.image import glance
from oslo_concurrency import lockutils
from oslo_utils import units
from pyVmomi import vim

from nova import exception
from nova_hypervisors.vmwareapi import datastore as ds_util
from nova_hypervisors.vmwareapi import session as vc_session

LOG = logging.getLogger(__name__)
SECTOR = 512
SPARSE_MAGIC = b'KDMV'
DESCRIPTOR = """# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW {sectors} VMFS "{extent}"

# The Disk Data Base
ddb.adapterType = "{adapter}"
ddb.virtualHWVersion = "14"
"""


def descriptor(extent: str, size: int, adapter: str = 'lsilogic') -> bytes:
    """A monolithic flat vmdk descriptor for an extent of ``size`` bytes
    (padded to whole sectors: ESXi refuses an extent shorter than its
    descriptor says)."""
    sectors = max(1, math.ceil(size / SECTOR))
    return DESCRIPTOR.format(
        sectors=sectors, extent=extent, adapter=adapter
    ).encode()


def padding(size: int) -> bytes:
    """Zeros that bring an extent of ``size`` bytes to whole sectors."""
    return b'\0' * (-size % SECTOR if size else SECTOR)


class ImageCache:
    """Per-datastore cache of Glance images as vmdk disks."""

    def __init__(self, files: ds_util.DatastoreFiles, folder: str) -> None:
        self._files = files
        self.folder = folder
        self._image_api = glance.API()

    def image_folder(self, datastore: str, image_id: str) -> str:
        """Datastore path of the image's folder in the cache."""
        return ds_util.path(datastore, self.folder, image_id)

    def cached_disk(self, datastore: str, image_id: str) -> str:
        """Datastore path of the image's cached vmdk descriptor."""
        return ds_util.path(
            datastore, self.folder, image_id, f'{image_id}.vmdk'
        )

    def fetch(self, context: Any, image_meta: Any, datastore: str) -> str:
        """Ensure the image is cached on ``datastore``; return its vmdk."""
        image_id = image_meta.id
        disk = self.cached_disk(datastore, image_id)
        with lockutils.lock(f'vmware-image-{datastore}-{image_id}'):
            if self._files.exists(disk):
                LOG.debug('Image %s is cached at %s', image_id, disk)
                return disk
            self._upload(context, image_meta, datastore, disk)
        return disk

    def _upload(self, context, image_meta, datastore, disk) -> None:
        image_id = image_meta.id
        disk_format = (
            image_meta.disk_format if 'disk_format' in image_meta else None
        )
        if disk_format not in ('raw', 'vmdk'):
            raise exception.ImageUnacceptable(
                image_id=image_id,
                reason=f'disk_format {disk_format!r} is not supported; '
                'upload a raw or a preallocated vmdk image',
            )
        folder = ds_util.path(datastore, self.folder, image_id)
        self._files.make_directory(folder)
        # A name of our own: another nova-compute may be uploading the
        # same image to the same datastore.
        partial = f'{folder}/{image_id}.{uuid.uuid4().hex[:12]}-partial'
        extent = f'{partial.rsplit("/", 1)[1]}-flat.vmdk'
        try:
            size = self._upload_extent(
                context, image_meta, f'{folder}/{extent}'
            )
            text = descriptor(extent, size)
            self._files.upload(f'{partial}.vmdk', [text], len(text))
            self._files.move_disk(f'{partial}.vmdk', disk)
        except vc_session.TaskFailed as error:
            if not isinstance(error.fault, vim.fault.FileAlreadyExists):
                self._discard(f'{partial}.vmdk', f'{folder}/{extent}')
                raise
            # Another nova-compute cached it first: theirs is as good.
            LOG.info('Image %s was cached at %s meanwhile', image_id, disk)
            self._discard(f'{partial}.vmdk', f'{folder}/{extent}')
        except Exception:
            self._discard(f'{partial}.vmdk', f'{folder}/{extent}')
            raise

    def _discard(self, descriptor_path: str, extent_path: str) -> None:
        """Remove a partial upload: the disk if its descriptor made it,
        else the bare extent."""
        try:
            if self._files.exists(descriptor_path):
                self._files.delete_disk(descriptor_path)
            else:
                self._files.delete(extent_path)
        except Exception:  # noqa: BLE001 - keep the upload's own error
            LOG.warning(
                'Could not remove the partial upload %s',
                extent_path,
                exc_info=True,
            )

    def _upload_extent(self, context, image_meta, target: str) -> int:
        """Glance's bytes to ``target``; return their count."""
        image_id = image_meta.id
        # Glance sets an image's size from its data; without it (or for a
        # signed image, which Glance verifies only while writing it out)
        # the bytes go through a temporary file.
        size = int(image_meta.size or 0) if 'size' in image_meta else 0
        chunks = None
        if size and not _signed(image_meta):
            chunks = self._image_api.download(context, image_id)
        if chunks is None:
            return self._upload_buffered(context, image_id, target)
        chunks = _exactly(image_id, iter(chunks), size)
        first = next(chunks, b'')
        _check_flat(image_id, first)
        LOG.info('Streaming image %s (%d bytes) to %s', image_id, size, target)
        self._files.upload(
            target,
            itertools.chain([first], chunks, [padding(size)]),
            size + len(padding(size)),
        )
        return size

    def _upload_buffered(self, context, image_id, target: str) -> int:
        with tempfile.TemporaryFile() as data:
            self._image_api.download(context, image_id, data=data)
            size = data.tell()
            data.seek(0)
            _check_flat(image_id, data.read(len(SPARSE_MAGIC)))
            data.seek(0)
            LOG.info(
                'Uploading image %s (%d bytes) to %s', image_id, size, target
            )
            self._files.upload(
                target,
                itertools.chain(
                    iter(lambda: data.read(ds_util.CHUNK), b''),
                    [padding(size)],
                ),
                size + len(padding(size)),
            )
        return size

    def sized(
        self, cached: str, datastore: str, image_id: str, root_gb: int
    ) -> str:
        """The image grown to ``root_gb``, kept in the cache beside it.

        A linked clone's delta disk can never be larger than its parent
        (vSphere: "Disks with parents cannot be expanded"), so a root disk
        larger than the image needs a parent of that size: one per
        (image, size), as Nova's in-tree driver keeps
        (``vmops._use_disk_image_as_linked_clone``).  It is made under a
        temporary name and renamed when complete.
        """
        folder = ds_util.path(datastore, self.folder, image_id)
        sized = f'{folder}/{image_id}.{root_gb}.vmdk'
        with lockutils.lock(f'vmware-image-{datastore}-{image_id}'):
            if self._files.exists(sized):
                return sized
            partial = f'{folder}/{image_id}.{root_gb}-partial.vmdk'
            self._files.delete_disk(partial)  # a crashed attempt's
            self._files.copy_disk(cached, partial)
            self._files.extend_disk(partial, root_gb * units.Mi)
            self._files.move_disk(partial, sized)
        LOG.info('Image %s sized to %d GB at %s', image_id, root_gb, sized)
        return sized

    def remove(self, datastore: str, image_id: str) -> None:
        """Drop an image from a datastore's cache."""
        with lockutils.lock(f'vmware-image-{datastore}-{image_id}'):
            self._files.delete(ds_util.path(datastore, self.folder, image_id))


def _signed(image_meta: Any) -> bool:
    properties = image_meta.properties if 'properties' in image_meta else None
    return bool(
        properties is not None
        and 'img_signature' in properties
        and properties.img_signature
    )


def _check_flat(image_id: str, head: bytes) -> None:
    if head[: len(SPARSE_MAGIC)] == SPARSE_MAGIC:
        raise exception.ImageUnacceptable(
            image_id=image_id,
            reason='sparse and streamOptimized vmdk images are not '
            'supported; upload it with vmware_disktype=preallocated',
        )


def _exactly(image_id: str, chunks: Iterator[bytes], size: int):
    """The chunks, refusing data longer or shorter than Glance's size (the
    upload's Content-Length was set from it)."""
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > size:
            break
        yield chunk
    if seen != size:
        raise exception.ImageUnacceptable(
            image_id=image_id,
            reason=f'its data is not the {size} bytes Glance says it is',
        )
