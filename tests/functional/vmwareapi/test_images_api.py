"""Images through Nova's API: a snapshot uploads the VM's disk bytes.

The server boots from an image made of known bytes; "create image" must
upload exactly the bytes the VM's disk holds, labelled as what they are.
vcsim stores disks as plain files and does not model delta disks (a linked
clone's child is an empty file there), so these servers are full clones;
on vCenter the copy taken for the upload consolidates a linked clone.
"""

import io

import fixtures

from nova_hypervisors.vmwareapi import datastore
from tests.functional.vmwareapi import api_base

#: 3 MiB that differ in every sector, so a shifted or partial copy shows.
DISK_BYTES = b''.join(
    i.to_bytes(4, 'big') * 128 for i in range(3 * 1024 * 1024 // 512)
)
IMAGE_ID = '6e1e39f4-7d0b-4be4-9b2b-7d52f7a5f0c1'


class ImagesTest(api_base.VCenterAPITestCase):
    vmware_options = {'use_linked_clone': False}

    def setUp(self) -> None:
        super().setUp()
        self.glance.create(
            None,
            {
                'id': IMAGE_ID,
                'name': 'known-bytes',
                'status': 'active',
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': len(DISK_BYTES),
                'visibility': 'public',
                'properties': {},
            },
            data=io.BytesIO(DISK_BYTES),
        )
        self._keep_uploaded_bytes()
        # disk=0: the root disk is the image's size (admin may boot such
        # flavors), so the bytes compared stay small; a larger root disk
        # is grown on vCenter, and would be snapshotted whole.
        self.flavor = self._flavor('image-sized', 128, disk=0)

    def _keep_uploaded_bytes(self) -> None:
        """Nova's GlanceFixture keeps the bytes given to create() only;
        Glance keeps those of an upload to an existing image too, which is
        how Nova's compute service delivers a snapshot."""
        glance = self.glance
        update = glance.update

        def update_keeping_data(
            context, image_id, metadata, data=None, purge_props=False
        ):
            if data is not None:
                glance._imagedata[image_id] = data.read()
            return update(context, image_id, metadata, purge_props=purge_props)

        self.useFixture(
            fixtures.MockPatchObject(glance, 'update', update_keeping_data)
        )

    def _vm_disk_bytes(self, server: dict) -> bytes:
        files = datastore.DatastoreFiles(self.admin, None, 'DC0')
        disk = self._root_disk(server).backing.fileName
        return b''.join(files.download(disk.replace('.vmdk', '-flat.vmdk')))

    def test_snapshot_uploads_the_vms_disk_bytes_as_a_raw_image(self):
        server = self._boot_active(image=IMAGE_ID, flavor_id=self.flavor)
        self.assertEqual(DISK_BYTES, self._vm_disk_bytes(server))

        image = self._snapshot(server)
        self.assertEqual('raw', image['disk_format'])
        self.assertEqual('bare', image['container_format'])
        self.assertEqual(DISK_BYTES, self.glance._imagedata[image['id']])
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])

    def test_a_server_booted_from_a_snapshot_has_the_same_disk(self):
        server = self._boot_active(image=IMAGE_ID, flavor_id=self.flavor)
        image = self._snapshot(server)
        clone = self._boot_active(image=image['id'], flavor_id=self.flavor)
        self.assertEqual(DISK_BYTES, self._vm_disk_bytes(clone))
