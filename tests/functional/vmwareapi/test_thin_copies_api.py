"""Copies of disks stay thin (review B2).

vSphere API, VirtualDiskManager.CopyVirtualDisk_Task: without ``destSpec``
"a preallocated format ... is assumed", and vCenter does not implement
``destSpec`` (govmomi ``object/datastore_file_manager.go`` Copy).  Our
vcsim follows both (patches/0014-copies-are-preallocated-clones-convert):
a preallocated extent has every block allocated, a thin one keeps its
holes, so the blocks a file holds in vcsim's datastore directory tell the
two apart.  The driver copies by a full clone whose disk locator asks for a
thin disk, as Cinder's VMDK driver converts disk types; these tests boot,
resize and copy through Nova's API, and look at the blocks.
"""

import io
import os
from unittest import mock

from oslo_utils import units
from pyVmomi import vim
from pyVmomi import vmodl

from nova_hypervisors.vmwareapi import datastore as ds_util
from nova_hypervisors.vmwareapi import session as vc_session
from nova_hypervisors.vmwareapi import thin_copy
from tests.functional.vmwareapi import api_base

IMAGE = b'\x5a' * (3 * 1024 * 1024)
IMAGE_ID = '4d6a7c1e-2b7f-4f0e-8c3e-1f9e2a0b5c77'
#: A thin extent of a few GB here holds the image's 3 MB and little more.
THIN_LIMIT = 64 * units.Mi


class ThinCopiesBase(api_base.VCenterAPITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.api.microversion = '2.74'
        self.glance.create(
            None,
            {
                'id': IMAGE_ID,
                'name': 'three-mb',
                'status': 'active',
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': len(IMAGE),
                'visibility': 'public',
                'properties': {},
            },
            data=io.BytesIO(IMAGE),
        )

    def _extent(self, ds_path: str) -> str:
        """The local file of a disk's flat extent in vcsim's datastores."""
        relative = ds_path.split('] ', 1)[1].replace('.vmdk', '-flat.vmdk')
        for directory, _, names in os.walk(self.sim.workdir):
            for name in names:
                path = os.path.join(directory, name)
                if path.endswith('/' + relative):
                    return path
        self.fail(f'no extent for {ds_path}')

    def _assert_thin(self, ds_path: str, size: int) -> None:
        """The extent is at least ``size`` long, yet holds few blocks."""
        stat = os.stat(self._extent(ds_path))
        self.assertGreaterEqual(stat.st_size, size)
        self.assertLess(stat.st_blocks * 512, THIN_LIMIT, ds_path)

    def _assert_no_copy_left(self) -> None:
        names = self.admin.view_properties(
            self.admin.content.rootFolder, {vim.VirtualMachine: ['name']}
        )
        for props in names.values():
            self.assertFalse(props['name'].startswith(thin_copy.PREFIX))
        for _, directories, _ in os.walk(self.sim.workdir):
            for name in directories:
                self.assertFalse(name.startswith(thin_copy.PREFIX), name)


class LinkedCloneThinTest(ThinCopiesBase):
    def test_the_sized_parent_in_the_cache_is_thin(self):
        server = self._boot_active(
            image=IMAGE_ID, flavor_id=self._flavor('four-gb', 128, disk=4)
        )
        parent = self._root_disk(server).backing.parent.fileName
        self.assertTrue(parent.endswith(f'/{IMAGE_ID}.4.vmdk'), parent)
        self._assert_thin(parent, 4 * units.Gi)
        with open(self._extent(parent), 'rb') as extent:
            self.assertEqual(IMAGE, extent.read(len(IMAGE)))
        self._assert_no_copy_left()

    def test_a_resize_grows_a_thin_copy(self):
        server = self._boot_active(
            image=IMAGE_ID, flavor_id=self._flavor('one-gb', 128, disk=1)
        )
        server = self._resize_server(
            server, self._flavor('three-gb', 256, disk=3)
        )
        grown = self._root_disk(server)
        self.assertEqual(3 * units.Mi, grown.capacityInKB)
        self.assertIsNone(grown.backing.parent)
        # (vcsim grows the device, not its file, on a capacity edit.)
        self._assert_thin(grown.backing.fileName, 1 * units.Gi)
        server = self._confirm_resize(server)
        self._assert_no_copy_left()

    def test_a_snapshot_uploads_a_thin_copy(self):
        """The disk a snapshot streams to Glance is a thin copy: a
        preallocated one would take the flavor's whole disk on the
        datastore while the upload runs."""
        server = self._boot_active(
            image=IMAGE_ID, flavor_id=self._flavor('one-gb', 128, disk=1)
        )
        downloaded = []
        download = ds_util.DatastoreFiles.download

        def checking(files, ds_path):
            disk = ds_path.replace('-flat.vmdk', '.vmdk')
            self._assert_thin(disk, 1 * units.Gi)
            downloaded.append(ds_path)
            return download(files, ds_path)

        methods = []
        invoke = vc_session.VCenterSession.invoke

        def recording(session, managed_object, method, *args, **kwargs):
            methods.append(method)
            return invoke(session, managed_object, method, *args, **kwargs)

        with (
            mock.patch.object(ds_util.DatastoreFiles, 'download', checking),
            mock.patch.object(vc_session.VCenterSession, 'invoke', recording),
        ):
            image = self._snapshot(server)
        self.assertEqual(1, len(downloaded))
        self.assertIn('CloneVM_Task', methods)
        self.assertNotIn('CopyVirtualDisk_Task', methods)
        self.assertEqual('active', image['status'])
        self._assert_no_copy_left()

    def test_vcsim_copies_are_preallocated_and_destspec_is_refused(self):
        """What a driver copying with CopyVirtualDisk_Task would meet."""
        server = self._boot_active(
            image=IMAGE_ID, flavor_id=self._flavor('two-gb', 128, disk=2)
        )
        parent = self._root_disk(server).backing.parent.fileName
        copy = parent.replace('.vmdk', '-copy.vmdk')
        manager = self.admin.content.virtualDiskManager
        datacenter = self.compute1.driver._node.datacenter
        self.admin.wait_for_task(
            self.admin.invoke(
                manager,
                'CopyVirtualDisk_Task',
                sourceName=parent,
                sourceDatacenter=datacenter,
                destName=copy,
                destDatacenter=datacenter,
            )
        )
        stat = os.stat(self._extent(copy))
        self.assertGreaterEqual(stat.st_blocks * 512, stat.st_size)
        task = self.admin.invoke(
            manager,
            'CopyVirtualDisk_Task',
            sourceName=parent,
            sourceDatacenter=datacenter,
            destName=parent.replace('.vmdk', '-thin.vmdk'),
            destDatacenter=datacenter,
            destSpec=vim.VirtualDiskManager.VirtualDiskSpec(
                diskType='thin', adapterType='lsiLogic'
            ),
        )
        with self.assertRaises(vc_session.TaskFailed) as caught:
            self.admin.wait_for_task(task)
        self.assertIsInstance(
            caught.exception.fault, vmodl.fault.NotImplemented
        )


class FullCloneThinTest(ThinCopiesBase):
    vmware_options = {'use_linked_clone': False}

    def test_a_full_clone_root_disk_is_thin_and_holds_the_image(self):
        server = self._boot_active(
            image=IMAGE_ID, flavor_id=self._flavor('four-gb', 128, disk=4)
        )
        root = self._root_disk(server)
        self.assertIsNone(root.backing.parent)
        self._assert_thin(root.backing.fileName, 4 * units.Gi)
        with open(self._extent(root.backing.fileName), 'rb') as extent:
            self.assertEqual(IMAGE, extent.read(len(IMAGE)))
        self._assert_no_copy_left()
        self._delete_server(server)
        self._assert_no_copy_left()
