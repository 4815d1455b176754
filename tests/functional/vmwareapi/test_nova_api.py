"""VCDriver through Nova's REST API, against vcsim: a server's life.

Boot, power actions, rescue, snapshot and delete, each through the API and
checked behind the driver's back in vCenter.
"""

from tests.functional.vmwareapi import api_base


class ServerLifecycleTest(api_base.VCenterAPITestCase):
    def test_server_lifecycle_through_the_api(self):
        """Boot, reboot, stop/start, suspend/resume, rescue, snapshot and
        delete; the VM follows each step and is gone at the end."""
        server = self._wait_for_state_change(self._boot(), 'ACTIVE')
        self.assertEqual('poweredOn', self._power_state(server))
        # Named in vCenter as in-tree names its VMs (review D); its files
        # stay in the folder of its uuid.
        props = self._vm_props(server, 'name', 'config.files.vmPathName')
        self.assertEqual(f'{server["name"]} ({server["id"]})', props['name'])
        self.assertIn(f'] {server["id"]}/', props['config.files.vmPathName'])
        hypervisor = server['OS-EXT-SRV-ATTR:hypervisor_hostname']
        self.assertRegex(
            hypervisor, r'^clustercomputeresource-\d+\.[0-9a-f-]+$'
        )

        self._reboot_server(server, hard=False)
        self._reboot_server(server, hard=True)
        self.assertEqual('poweredOn', self._power_state(server))

        server = self._stop_server(server)
        self.assertEqual('poweredOff', self._power_state(server))
        server = self._start_server(server)
        self.assertEqual('poweredOn', self._power_state(server))

        server = self._suspend_server(server)
        self.assertEqual('suspended', self._power_state(server))
        server = self._resume_server(server)
        self.assertEqual('poweredOn', self._power_state(server))

        self.api.post_server_action(server['id'], {'rescue': {}})
        server = self._wait_for_state_change(server, 'RESCUE')
        self.assertEqual('poweredOn', self._power_state(server))
        self.api.post_server_action(server['id'], {'unrescue': None})
        server = self._wait_for_state_change(server, 'ACTIVE')

        image = self._snapshot(server)
        self.assertEqual('raw', image['disk_format'])
        self.assertEqual('poweredOn', self._power_state(server))

        self._delete_server(server)
        self.assertIsNone(self._vm(server))

    def test_power_off_in_vcenter_reaches_nova(self):
        """A VM powered off behind Nova's back shows SHUTOFF."""
        self.external_power_changes = True
        server = self._wait_for_state_change(self._boot(), 'ACTIVE')
        vm = self._vm(server)
        task = self.admin.invoke(vm, 'PowerOffVM_Task')
        self.admin.wait_for_task(task)
        self._wait_for_state_change(server, 'SHUTOFF')

    def test_flavor_no_single_host_fits_is_refused_by_scheduling(self):
        """6 GB fits the 8 GB cluster total but no 4 GB host: NoValidHost."""
        flavor = self._flavor('too-big', memory_mb=6144)
        server = self._wait_for_state_change(self._boot(flavor), 'ERROR')
        self.assertIn('No valid host', server['fault']['message'])
