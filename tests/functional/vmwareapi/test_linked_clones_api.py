"""Linked clones share the cached image: deleting one keeps it.

Our vcsim deletes a destroyed VM's disks down their backing chains, as
vCenter does (patches/0001-destroy-deletes-disk-chains.patch): a driver
that destroyed VMs with Destroy_Task would delete the cached parent of
every other clone here too.
"""

from nova_hypervisors.vmwareapi import datastore
from tests.functional.vmwareapi import api_base


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
