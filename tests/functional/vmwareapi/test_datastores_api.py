"""Where instance disks go: a writable datastore, never one in maintenance.

Our vcsim's local datastores are VMFS, and one in maintenance mode takes
no new files or VMs, as on vCenter
(patches/0004-datastore-types-and-maintenance-mode.patch).
"""

from pyVmomi import vim

from nova_hypervisors.vmwareapi import datastore
from nova_hypervisors.vmwareapi import inventory
from tests.functional.vmwareapi import api_base


class MaintenanceTest(api_base.VCenterAPITestCase):
    vcsim_options = {'datastores': 2}
    compute_errors_expected = True

    def setUp(self) -> None:
        super().setUp()
        self.api.microversion = '2.74'  # boots on a named host

    def _datastores(self) -> dict:
        node = self.compute1.driver._node
        found = inventory.read_cluster(
            self.admin,
            node.cluster,
            {vim.Datastore: ['summary.name', 'summary.type']},
        )[vim.Datastore]
        return {props['summary.name']: ref for ref, props in found.items()}

    def _enter_maintenance(self, ref) -> None:
        self.admin.invoke(ref, 'DatastoreEnterMaintenanceMode')

    def test_a_datastore_in_maintenance_takes_no_new_files(self):
        """What a driver meets that ignores maintenance mode."""
        ref = self._datastores()['LocalDS_0']
        self._enter_maintenance(ref)
        files = datastore.DatastoreFiles(
            self.admin, self.compute1.driver._node.datacenter, 'DC0'
        )
        with self.assertRaises(vim.fault.InvalidDatastoreState):
            files.make_directory('[LocalDS_0] refused')

    def test_the_datastore_in_maintenance_is_skipped(self):
        self._enter_maintenance(self._datastores()['LocalDS_0'])
        server = self._boot_active(host='compute1')
        disk = self._root_disk(server).backing.fileName
        self.assertTrue(disk.startswith('[LocalDS_1] '), disk)

    def test_no_usable_datastore_fails_the_boot_and_leaves_nothing(self):
        for ref in self._datastores().values():
            self._enter_maintenance(ref)
        self.flags(max_attempts=1, group='scheduler')
        server = self._wait_for_state_change(
            self._boot(host='compute1'), 'ERROR'
        )
        self.assertIsNone(self._vm(server))
        files = datastore.DatastoreFiles(
            self.admin, self.compute1.driver._node.datacenter, 'DC0'
        )
        for name in ('LocalDS_0', 'LocalDS_1'):
            self.assertFalse(files.exists(f'[{name}] {server["id"]}'))
