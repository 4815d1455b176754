"""Glance images as disks on a datastore, cached once per datastore.

The first boot of an image on a datastore streams it from Glance to
``[ds] <cache folder>/<image id>/`` over vCenter's ``/folder`` interface;
later boots copy or link from there.  A raw image (or a preallocated vmdk,
which is the same bytes) becomes a monolithic flat vmdk: its data is the
``-flat.vmdk`` extent and we write the small descriptor next to it, so no
conversion tool is needed.  Uploads of one image to one datastore are
serialised by a lock, so concurrent boots upload it once.
"""

import logging
import math
import tempfile
from typing import Any

from nova.image import glance
from oslo_concurrency import lockutils
from oslo_utils import units

from nova import exception
from nova_hypervisors.vmwareapi import datastore as ds_util

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
    """A monolithic flat vmdk descriptor for an extent of ``size`` bytes."""
    sectors = max(1, math.ceil(size / SECTOR))
    return DESCRIPTOR.format(
        sectors=sectors, extent=extent, adapter=adapter
    ).encode()


class ImageCache:
    """Per-datastore cache of Glance images as vmdk disks."""

    def __init__(self, files: ds_util.DatastoreFiles, folder: str) -> None:
        self._files = files
        self.folder = folder
        self._image_api = glance.API()

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
        with tempfile.TemporaryFile() as data:
            self._image_api.download(context, image_id, data=data)
            size = data.tell()
            data.seek(0)
            if data.read(len(SPARSE_MAGIC)) == SPARSE_MAGIC:
                raise exception.ImageUnacceptable(
                    image_id=image_id,
                    reason='sparse and streamOptimized vmdk images are not '
                    'supported; upload it with vmware_disktype=preallocated',
                )
            data.seek(0)
            folder = ds_util.path(datastore, self.folder, image_id)
            self._files.make_directory(folder)
            extent = f'{image_id}-flat.vmdk'
            LOG.info(
                'Uploading image %s (%d bytes) to %s', image_id, size, folder
            )
            self._files.upload(
                ds_util.path(datastore, self.folder, image_id, extent),
                iter(lambda: data.read(ds_util.CHUNK), b''),
                size,
            )
        text = descriptor(extent, size)
        # The descriptor is written last: its presence marks a complete copy.
        self._files.upload(disk, [text], len(text))

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
