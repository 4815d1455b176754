"""Glance images as disks on a datastore, cached once per datastore.

The first boot of an image on a datastore streams it from Glance to
``[ds] <cache folder>/<image id>/`` over vCenter's ``/folder`` interface,
chunk by chunk, never holding the image on the compute node (only an image
with a signature to verify, or without a size, goes through a temporary
file first); later boots copy or link from there.  A raw image (or a
preallocated vmdk, which is the same bytes) becomes a monolithic flat vmdk:
vCenter writes its descriptor
(``CreateVirtualDisk_Task``, the disk type and adapter type of the image),
and the image's bytes replace the flat extent it made, padded to whole KB:
what Nova's in-tree driver does (``vmops._prepare_flat_image``), so no
descriptor is ever written by hand and no conversion tool is needed.

Uploads of one image to one datastore are serialised by a lock inside one
nova-compute.  Two nova-computes whose clusters share a datastore never
write the same file: each uploads under a name of its own, then renames
the disk into place (``MoveVirtualDisk_Task`` without ``force``); the one
that finds the name taken drops its copy and uses the other's.
"""

from collections.abc import Iterator
import contextlib
import itertools
import logging
import tempfile
from typing import Any
import uuid

from nova import exception
from nova.image import glance
from oslo_concurrency import lockutils
from oslo_utils import units
from pyVmomi import vim

from nova_hypervisors.vmwareapi import datastore as ds_util
from nova_hypervisors.vmwareapi import hardware as vm_hardware
from nova_hypervisors.vmwareapi import session as vc_session
from nova_hypervisors.vmwareapi import thin_copy

LOG = logging.getLogger(__name__)
SPARSE_MAGIC = b'KDMV'
#: The descriptor's disk type for an image's bytes: every byte of the
#: extent is written, as Cinder's VMDK driver notes of a disk made from a
#: flat extent (vmdk._check_disk_conversion).
IMAGE_DISK_TYPE = 'preallocated'
#: vmware_adaptertype / hw_scsi_model -> the descriptor's adapter type:
#: vCenter's VirtualDiskManager knows only ide, busLogic and lsiLogic, so
#: the newer SCSI controllers are written as lsiLogic (in-tree
#: vm_util.get_vmdk_adapter_type).
DESCRIPTOR_ADAPTERS = {
    'ide': 'ide',
    'busLogic': 'busLogic',
    'lsiLogic': 'lsiLogic',
    'lsiLogicsas': 'lsiLogic',
    'paraVirtual': 'lsiLogic',
}


def capacity_kb(size: int) -> int:
    """The disk capacity for an image of ``size`` bytes: whole KB."""
    return max(1, -(-size // units.Ki))


def padding(size: int) -> bytes:
    """Zeros that bring an extent of ``size`` bytes to its capacity."""
    return b'\0' * (capacity_kb(size) * units.Ki - size)


class ImageCache:
    """Per-datastore cache of Glance images as vmdk disks."""

    def __init__(
        self,
        files: ds_util.DatastoreFiles,
        folder: str,
        copier: thin_copy.ThinCopier | None = None,
    ) -> None:
        """``copier`` makes the sized parents (:meth:`sized`)."""
        self._files = files
        self.folder = folder
        self._copier = copier
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
        adapter = DESCRIPTOR_ADAPTERS[vm_hardware.adapter_type(image_meta)]

        def new_disk(size: int) -> str:
            # vCenter writes the descriptor; its extent makes way for
            # the image's bytes.
            self._files.create_disk(
                f'{partial}.vmdk', capacity_kb(size), IMAGE_DISK_TYPE, adapter
            )
            self._files.delete(f'{partial}-flat.vmdk')
            return f'{partial}-flat.vmdk'

        try:
            self._upload_extent(context, image_meta, new_disk)
            self._files.move_disk(f'{partial}.vmdk', disk)
        except vc_session.TaskFailed as error:
            self._discard(partial)
            if not isinstance(error.fault, vim.fault.FileAlreadyExists):
                raise
            # Another nova-compute cached it first: theirs is as good.
            LOG.info('Image %s was cached at %s meanwhile', image_id, disk)
        except Exception:
            self._discard(partial)
            raise

    def _discard(self, partial: str) -> None:
        """Remove a partial upload: its descriptor and its extent, each
        if it is there."""
        try:
            self._files.delete(f'{partial}.vmdk')
            self._files.delete(f'{partial}-flat.vmdk')
        except Exception:  # noqa: BLE001 - keep the upload's own error
            LOG.warning(
                'Could not remove the partial upload %s',
                partial,
                exc_info=True,
            )

    def _upload_extent(self, context, image_meta, new_disk) -> int:
        """Glance's bytes to the extent ``new_disk(size)`` returns; return
        their count."""
        image_id = image_meta.id
        # Glance sets an image's size from its data; without it (or for a
        # signed image, which Glance verifies only while writing it out)
        # the bytes go through a temporary file.
        size = int(image_meta.size or 0) if 'size' in image_meta else 0
        chunks = None
        if size and not _signed(image_meta):
            chunks = self._image_api.download(context, image_id)
        if chunks is None:
            return self._upload_buffered(context, image_id, new_disk)
        chunks = _exactly(image_id, iter(chunks), size)
        first = next(chunks, b'')
        _check_flat(image_id, first)
        target = new_disk(size)
        LOG.info('Streaming image %s (%d bytes) to %s', image_id, size, target)
        self._files.upload(
            target,
            itertools.chain([first], chunks, [padding(size)]),
            size + len(padding(size)),
        )
        return size

    def _upload_buffered(self, context, image_id, new_disk) -> int:
        with tempfile.TemporaryFile() as data:
            self._image_api.download(context, image_id, data=data)
            size = data.tell()
            data.seek(0)
            _check_flat(image_id, data.read(len(SPARSE_MAGIC)))
            data.seek(0)
            target = new_disk(size)
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
        self,
        cached: str,
        datastore: str,
        image_id: str,
        root_gb: int,
        image_kb: int,
        host: Any = None,
    ) -> str:
        """The image grown to ``root_gb``, kept in the cache beside it.

        A linked clone's delta disk can never be larger than its parent
        (vSphere: "Disks with parents cannot be expanded"), so a root disk
        larger than the image needs a parent of that size: one per
        (image, size), as Nova's in-tree driver keeps
        (``vmops._use_disk_image_as_linked_clone``).  It is a thin copy
        (thin_copy; in-tree's ``CopyVirtualDisk_Task`` makes it
        preallocated, the full root size), made under a temporary name and
        renamed when complete.  ``host``: where the copy's seed VM runs
        when DRS does not choose.
        """
        assert self._copier is not None, 'sized parents need a copier'
        folder = ds_util.path(datastore, self.folder, image_id)
        sized = f'{folder}/{image_id}.{root_gb}.vmdk'
        with lockutils.lock(f'vmware-image-{datastore}-{image_id}'):
            if self._files.exists(sized):
                return sized
            partial = f'{folder}/{image_id}.{root_gb}-partial.vmdk'
            self._files.delete_disk(partial)  # a crashed attempt's
            try:
                self._copier.copy(cached, partial, image_kb, host)
                self._files.extend_disk(partial, root_gb * units.Mi)
                self._files.move_disk(partial, sized)
            except Exception:
                with contextlib.suppress(Exception):
                    self._files.delete_disk(partial)
                raise
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
