"""VMs Nova did not create are no instances.

Every vCenter 7.0U1+ cluster runs vSphere Cluster Services' agent VMs, and
clusters hold appliances and customers' VMs too; our vcsim puts one such
VM in every cluster (``agent_vms``).  A compute that counted it would not
even start ("My hypervisor has existing instances, but I appear to be a
new service in this database"): these tests start two.
"""

import time

from pyVmomi import vim

from nova_hypervisors.vmwareapi import inventory
from tests.functional.vmwareapi import api_base


class ForeignVMsTest(api_base.VCenterAPITestCase):
    def _agent_vm(self):
        node = self.compute1.driver._node
        vms = inventory.read_cluster(
            self.admin, node.cluster, {vim.VirtualMachine: ['name']}
        )[vim.VirtualMachine]
        self.assertEqual(1, len(vms))
        return next(iter(vms))

    def test_only_novas_vms_are_listed_and_counted(self):
        driver = self.compute1.driver
        self._agent_vm()
        self.assertEqual([], driver.list_instance_uuids())
        self.assertEqual(0, driver.get_num_instances())
        server = self._boot_active()
        listed = (
            self.compute1.driver.list_instance_uuids()
            + self.compute2.driver.list_instance_uuids()
        )
        self.assertEqual([server['id']], listed)

    def test_a_foreign_vm_powering_off_is_no_event_for_nova(self):
        emitted = []
        driver = self.compute1.driver
        driver.register_event_listener(emitted.append)
        vm = self._agent_vm()
        self.admin.wait_for_task(self.admin.invoke(vm, 'PowerOffVM_Task'))
        time.sleep(1)
        self.assertEqual([], emitted)
