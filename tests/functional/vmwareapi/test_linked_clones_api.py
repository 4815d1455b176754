"""Linked clones share the cached image: deleting one keeps it.

Our vcsim deletes a destroyed VM's disks down their backing chains, as
vCenter does (patches/0001-destroy-deletes-disk-chains.patch): a driver
that destroyed VMs with Destroy_Task would delete the cached parent of
every other clone here too.
"""

import io

from nova import context
from oslo_utils import units
from pyVmomi import vim

from nova_hypervisors.vmwareapi import datastore
from nova_hypervisors.vmwareapi import session as vc_session
from tests.functional.vmwareapi import api_base

IMAGE = b'\x5a' * (3 * 1024 * 1024 + 512)
IMAGE_ID = '8f0b8f30-1d34-4bbb-9d4c-5e5f2b9c0a11'


class LinkedCloneTest(api_base.VCenterAPITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.api.microversion = '2.74'  # boots on a named host

    def _parent_of(self, server: dict) -> str:
        backing = self._root_disk(server).backing
        self.assertIsNotNone(backing.parent, 'not a linked clone')
        return backing.parent.fileName

    def test_deleting_a_clone_keeps_the_image_its_siblings_need(self):
        first = self._boot_active(host='compute1')
        second = self._boot_active(host='compute1')
        parent = self._parent_of(second)
        self.assertEqual(parent, self._parent_of(first))
        files = datastore.DatastoreFiles(self.admin, None, 'DC0')
        own_disk = self._root_disk(first).backing.fileName

        self._delete_server(first)

        self.assertTrue(files.exists(parent))
        self.assertFalse(files.exists(own_disk))
        self._stop_server(second)
        self._start_server(second)
        self.assertEqual('poweredOn', self._power_state(second))
        third = self._boot_active(host='compute1')
        self.assertEqual(parent, self._parent_of(third))

    def _marks(self, folder: str) -> list:
        stores = self.admin.view_properties(
            self.admin.content.rootFolder, {vim.Datastore: ['name']}
        )
        name = folder.split(']')[0][1:]
        (store,) = [ref for ref, p in stores.items() if p['name'] == name]
        files = datastore.DatastoreFiles(self.admin, None, 'DC0')
        return [n for n in files.names(store, folder) if n.startswith('ts-')]

    def test_the_cache_ages_only_images_no_vm_links_to(self):
        """manage_image_cache as in-tree's (a ts- mark, then removal after
        remove_unused_original_minimum_age_seconds), but never while a VM
        on the datastore still links to the image, whichever node it
        belongs to: both clusters share LocalDS_0 and its cache here."""
        self.flags(
            remove_unused_original_minimum_age_seconds=0, group='image_cache'
        )
        server = self._boot_active(host='compute2')
        parent = self._parent_of(server)
        folder = parent.rsplit('/', 1)[0]
        files = datastore.DatastoreFiles(self.admin, None, 'DC0')
        ctx = context.get_admin_context()

        # No instance of compute1 uses it: marked, then kept (linked).
        self.compute1.driver.manage_image_cache(ctx, [])
        self.assertEqual(1, len(self._marks(folder)))
        self.compute1.driver.manage_image_cache(ctx, [])
        self.assertTrue(files.exists(parent))
        # In use on compute2: the mark goes.
        self.compute2.manager._run_image_cache_manager_pass(ctx)
        self.assertEqual([], self._marks(folder))

        self._delete_server(server)
        self.compute1.driver.manage_image_cache(ctx, [])
        self.assertTrue(files.exists(parent))  # marked only
        # Nova's own periodic pass removes it now.
        self.compute1.manager._run_image_cache_manager_pass(ctx)
        self.assertFalse(files.exists(parent))
        # The next boot caches the image again.
        again = self._boot_active(host='compute1')
        self.assertEqual(parent, self._parent_of(again))


class SizedParentTest(api_base.VCenterAPITestCase):
    """A root disk larger than the image: vSphere never expands a disk
    with a parent (patches/0002-child-disks-no-larger-than-parent.patch)."""

    def setUp(self) -> None:
        super().setUp()
        self.api.microversion = '2.74'
        self.glance.create(
            None,
            {
                'id': IMAGE_ID,
                'name': 'small',
                'status': 'active',
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': len(IMAGE),
                'visibility': 'public',
                'properties': {},
            },
            data=io.BytesIO(IMAGE),
        )
        self.flavor = self._flavor('two-gb', 128, disk=2)

    def test_the_clone_of_a_grown_root_has_a_parent_of_that_size(self):
        server = self._boot_active(image=IMAGE_ID, flavor_id=self.flavor)
        disk = self._root_disk(server)
        parent = disk.backing.parent.fileName
        self.assertTrue(parent.endswith(f'/{IMAGE_ID}.2.vmdk'), parent)
        self.assertEqual(2 * units.Mi, disk.capacityInKB)
        # The image's own cached disk stays as it was, for other sizes.
        small = self._boot_active(
            image=IMAGE_ID, flavor_id=self._flavor('image-sized', 128, disk=0)
        )
        self.assertTrue(
            self._root_disk(small).backing.parent.fileName.endswith(
                f'/{IMAGE_ID}.vmdk'
            )
        )
        again = self._boot_active(image=IMAGE_ID, flavor_id=self.flavor)
        self.assertEqual(
            parent, self._root_disk(again).backing.parent.fileName
        )

    def test_vcsim_refuses_a_child_larger_than_its_parent(self):
        """What a driver growing the delta itself would meet."""
        server = self._boot_active(
            image=IMAGE_ID, flavor_id=self._flavor('image-sized', 128, disk=0)
        )
        parent = self._root_disk(server).backing.parent.fileName
        vm = self._vm(server)
        controller = next(
            d
            for d in self._vm_props(server, 'config.hardware.device')[
                'config.hardware.device'
            ]
            if isinstance(d, vim.vm.device.VirtualSCSIController)
        )
        datastore_name = parent.split(']')[0][1:]
        child = vim.vm.device.VirtualDisk(
            key=-1,
            controllerKey=controller.key,
            unitNumber=1,
            capacityInKB=units.Mi,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=f'[{datastore_name}] {server["id"]}/grown.vmdk',
                diskMode='persistent',
                parent=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                    fileName=parent, diskMode='persistent'
                ),
            ),
        )
        spec = vim.vm.ConfigSpec(
            deviceChange=[
                vim.vm.device.VirtualDeviceSpec(
                    operation='add', fileOperation='create', device=child
                )
            ]
        )
        task = self.admin.invoke(vm, 'ReconfigVM_Task', spec=spec)
        with self.assertRaises(vc_session.TaskFailed) as caught:
            self.admin.wait_for_task(task)
        self.assertIsInstance(
            caught.exception.fault, vim.fault.InvalidDeviceSpec
        )


class FileSessionTest(api_base.VCenterAPITestCase):
    """vCenter's /folder interface needs a live session
    (patches/0009-folder-needs-a-session.patch)."""

    def test_an_expired_session_logs_in_again_and_is_not_absent(self):
        server = self._boot_active()
        disk = self._root_disk(server).backing.fileName
        files = datastore.DatastoreFiles(self.admin, None, 'DC0')
        self.assertTrue(files.exists(disk))
        generation = self.admin.generation
        self.assertGreater(self.sim.expire_sessions(), 0)
        self.assertTrue(files.exists(disk))
        self.assertEqual(generation + 1, self.admin.generation)
        self.assertFalse(files.exists(disk + '.missing'))
