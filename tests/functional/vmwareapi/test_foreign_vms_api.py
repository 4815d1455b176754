"""VMs Nova did not create are no instances.

Every vCenter 7.0U1+ cluster runs vSphere Cluster Services' agent VMs, and
clusters hold appliances and customers' VMs too; our vcsim puts one such
VM in every cluster (``agent_vms``).  A compute that counted it would not
even start ("My hypervisor has existing instances, but I appear to be a
new service in this database"): these tests start two.
"""

import time
import uuid

from pyVmomi import vim

from nova_hypervisors.vmwareapi import inventory
from nova_hypervisors.vmwareapi import lookup
from tests.functional.vmwareapi import api_base
from tests.functional.vmwareapi import vcsim_fixture


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


class InTreeVMsTest(api_base.VCenterAPITestCase):
    """Switching ``compute_driver`` from Nova's in-tree driver keeps every
    instance, also a VM whose instanceUuid vCenter changed (registered
    again, imported): in-tree finds it by ``extraConfig["nvp.vm-uuid"]``
    (vm_util._get_vm_ref_from_extraconfig), and so do we."""

    def test_a_vm_whose_instance_uuid_drifted_is_adopted_at_start(self):
        server = self._boot_active()
        vm = self._vm(server)
        drifted = str(uuid.uuid4())
        self.admin.wait_for_task(
            self.admin.invoke(
                vm,
                'ReconfigVM_Task',
                spec=vim.vm.ConfigSpec(instanceUuid=drifted),
            )
        )
        self.assertIsNone(self._vm(server))
        # The keyed path our vcsim now serves, as vCenter does (patch 0011).
        option = self.admin.properties(
            [vm], vim.VirtualMachine, [lookup.VM_UUID_PATH]
        )[vm][lookup.VM_UUID_PATH]
        self.assertEqual(
            ('nvp.vm-uuid', server['id']), (option.key, option.value)
        )

        cluster_name = self._cluster_of_vm(vm)
        compute = {'DC0_C0': self.compute1, 'DC0_C1': self.compute2}[
            cluster_name
        ]
        self.flags(
            group='vmware',
            **vcsim_fixture.vmware_flags(self.sim, cluster_name),
        )
        self.restart_compute_service(compute)

        self.assertEqual(vm, self._vm(server))
        self.assertIn(server['id'], compute.driver.list_instance_uuids())
        self.api.post_server_action(server['id'], {'os-stop': None})
        self._wait_for_state_change(server, 'SHUTOFF')
        self.assertEqual('poweredOff', self._power_state(server))
        self._delete_server(server)
        self.assertIsNone(self._vm(server))

    def _cluster_of_vm(self, vm) -> str:
        pool = self.admin.properties(
            [vm], vim.VirtualMachine, ['resourcePool']
        )[vm]['resourcePool']
        owner = self.admin.properties([pool], vim.ResourcePool, ['owner'])[
            pool
        ]['owner']
        return self.admin.properties(
            [owner], vim.ClusterComputeResource, ['name']
        )[owner]['name']
