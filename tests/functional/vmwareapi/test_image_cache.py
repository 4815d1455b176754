"""The image cache on a vcsim datastore: streamed, padded, race-free.

vCenter writes each cached disk's descriptor (CreateVirtualDisk_Task), and
the image's bytes replace its flat extent, as in-tree does
(``vmops._prepare_flat_image``).

Two nova-computes whose clusters share a datastore share its cache folder;
each uploads under a name of its own and renames the disk into place
(``MoveVirtualDisk_Task`` without ``force`` refuses an existing name:
govmomi ``simulator/file_manager.go`` ``moveDatastoreFile``, as vCenter's
FileManager does), so neither ever writes a file the other is writing.
"""

import unittest
from unittest import mock
import uuid

from nova import objects

from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import datastore
from nova_hypervisors.vmwareapi import images
from nova_hypervisors.vmwareapi import session as vc_session
from tests.functional.vmwareapi import vcsim_fixture

#: Not a whole number of KB: the extent is padded to the disk's capacity.
IMAGE_BYTES = b'\x5a' * 1000


class StreamingGlance:
    """Nova's image API as the cache meets it: chunks without a file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.buffered = 0

    def download(self, context, image_id, data=None, **kwargs):
        if data is None:
            return iter([self.data[:600], self.data[600:]])
        self.buffered += 1
        data.write(self.data)
        return None


class TestImageCache(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        objects.register_all()
        cls.sim = vcsim_fixture.start(clusters=1, hosts_per_cluster=1, vms=0)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        session = vc_session.VCenterSession(
            vc_session.Settings(
                host=self.sim.host,
                port=self.sim.port,
                username=self.sim.username,
                password=self.sim.password,
                ca_file=self.sim.ca_file,
            )
        )
        session.connect()
        self.addCleanup(session.disconnect)
        node = cluster.find_node(session, 'DC0_C0')
        self.files = datastore.DatastoreFiles(
            session, node.datacenter, node.datacenter_path
        )
        self.image_id = str(uuid.uuid4())
        self.meta = objects.ImageMeta.from_dict(
            {
                'id': self.image_id,
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': len(IMAGE_BYTES),
            }
        )

    def cache(self, data: bytes = IMAGE_BYTES) -> images.ImageCache:
        cache = images.ImageCache(self.files, '_base')
        cache._image_api = StreamingGlance(data)
        return cache

    def folder(self, name: str = '') -> str:
        return datastore.path('LocalDS_0', '_base', self.image_id, name)

    def test_the_image_is_streamed_and_padded_to_whole_kb(self):
        cache = self.cache()
        disk = cache.fetch(None, self.meta, 'LocalDS_0')
        self.assertEqual(0, cache._image_api.buffered)
        self.assertEqual(self.folder(f'{self.image_id}.vmdk'), disk)
        extent = b''.join(
            self.files.download(self.folder(f'{self.image_id}-flat.vmdk'))
        )
        self.assertEqual(1024, len(extent))
        self.assertEqual(IMAGE_BYTES, extent[: len(IMAGE_BYTES)])
        self.assertEqual(b'\0' * 24, extent[len(IMAGE_BYTES) :])
        # The descriptor is the one vCenter wrote for a 1 KB disk (review
        # C4): never hand-written, with a geometry and the adapter type.
        text = b''.join(self.files.download(disk))
        self.assertIn(b'RW 2 VMFS', text)
        self.assertIn(b'ddb.geometry.heads', text)
        self.assertIn(b'ddb.adapterType = "lsiLogic"', text)

    def test_the_descriptor_names_the_images_adapter_type(self):
        self.meta.properties = objects.ImageMetaProps.from_dict(
            {'hw_disk_bus': 'ide'}
        )
        disk = self.cache().fetch(None, self.meta, 'LocalDS_0')
        text = b''.join(self.files.download(disk))
        self.assertIn(b'ddb.adapterType = "ide"', text)
        self.assertIn(b'ddb.geometry.heads = "16"', text)

    def test_a_copy_cached_meanwhile_by_another_compute_wins(self):
        self.cache().fetch(None, self.meta, 'LocalDS_0')
        tag = uuid.UUID(int=7)
        partial = f'{self.image_id}.{tag.hex[:12]}-partial'
        other = self.cache(b'\x11' * 1000)
        with mock.patch.object(images.uuid, 'uuid4', return_value=tag):
            # The other compute's upload, racing ours past the lock.
            other._upload(
                None,
                self.meta,
                'LocalDS_0',
                other.cached_disk('LocalDS_0', self.image_id),
            )
        self.assertFalse(self.files.exists(self.folder(f'{partial}.vmdk')))
        self.assertFalse(
            self.files.exists(self.folder(f'{partial}-flat.vmdk'))
        )
        extent = b''.join(
            self.files.download(self.folder(f'{self.image_id}-flat.vmdk'))
        )
        self.assertEqual(IMAGE_BYTES, extent[: len(IMAGE_BYTES)])

    def test_data_unlike_glances_size_is_refused_and_removed(self):
        tag = uuid.UUID(int=9)
        partial = f'{self.image_id}.{tag.hex[:12]}-partial'
        cache = self.cache(IMAGE_BYTES[:700])
        with mock.patch.object(images.uuid, 'uuid4', return_value=tag):
            with self.assertRaises(Exception) as caught:
                cache.fetch(None, self.meta, 'LocalDS_0')
        self.assertIn('1000 bytes', str(caught.exception))
        for name in (
            f'{partial}.vmdk',
            f'{partial}-flat.vmdk',
            f'{self.image_id}.vmdk',
        ):
            self.assertFalse(self.files.exists(self.folder(name)), name)

    def test_a_signed_image_goes_through_a_file(self):
        self.meta.properties = objects.ImageMetaProps.from_dict(
            {'img_signature': 'c2lnbmVk'}
        )
        cache = self.cache()
        cache.fetch(None, self.meta, 'LocalDS_0')
        self.assertEqual(1, cache._image_api.buffered)
