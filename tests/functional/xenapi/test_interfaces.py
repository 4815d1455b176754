"""Interface hot-plug through the Nova API on a simulated XenServer host.

Neutron is Nova's NeutronFixture; its ports bind with ``vif_type`` ovs on
the integration bridge.  xapi hot-plugs a VIF into a running VM
(``VIF.plug``); a halted VM gets it at its next start.
"""

import copy
import time

from nova.tests.functional.api import client

from tests.functional.xenapi import test_lifecycle


class TestInterfaceHotPlug(test_lifecycle.XenAPITestCase):
    def port_vifs(self, server):
        _, vm = self.vm_of(server)
        vifs = self.records('VIF')
        return {
            vifs[ref]['other_config'].get('neutron-port-id'): vifs[ref]
            for ref in vm['VIFs']
        }

    def attach_port(self, server, port):
        self.api.attach_interface(
            server['id'], {'interfaceAttachment': {'port_id': port['id']}}
        )

    def test_a_port_is_hot_plugged_into_a_running_server_and_removed(self):
        server = self.boot()
        port = self.neutron.port_1
        self.attach_port(server, port)
        vif = self.port_vifs(server)[port['id']]
        self.assertTrue(vif['currently_attached'])
        self.assertEqual(port['mac_address'], vif['MAC'])
        self.assertEqual('0', vif['device'])
        self.assertEqual(port['id'], vif['other_config']['nicira-iface-id'])
        network = self.records('network')[vif['network']]
        self.assertEqual('br-int', network['bridge'])
        self.assertEqual(
            [port['id']],
            [i['port_id'] for i in self.api.get_port_interfaces(server['id'])],
        )
        self.api.detach_interface(server['id'], port['id'])
        self.assertEqual([], self.api.get_port_interfaces(server['id']))
        self.assertEqual({}, self.port_vifs(server))
        # The network Nova made for br-int went with its last VIF.
        self.assertNotIn(vif['network'], self.records('network'))
        self.assertEqual({}, self.records('VIF'))

    def test_the_next_port_takes_the_next_device(self):
        server = self.boot(networks=[{'port': self.neutron.port_1['id']}])
        # The fixture defines port_2 but does not serve it until added.
        self.neutron._ports[self.neutron.port_2['id']] = copy.deepcopy(
            self.neutron.port_2
        )
        self.attach_port(server, self.neutron.port_2)
        vifs = self.port_vifs(server)
        self.assertEqual('0', vifs[self.neutron.port_1['id']]['device'])
        self.assertEqual('1', vifs[self.neutron.port_2['id']]['device'])
        self.assertTrue(vifs[self.neutron.port_2['id']]['currently_attached'])
        self._delete_server(server)
        self.assert_nothing_left(server['id'])

    def test_a_stopped_server_gets_the_port_at_its_next_start(self):
        server = self.boot()
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self.wait_for_power(server, 'SHUTOFF')
        self.attach_port(server, self.neutron.port_1)
        vif = self.port_vifs(server)[self.neutron.port_1['id']]
        self.assertFalse(vif['currently_attached'])
        self.api.post_server_action(server['id'], {'os-start': None})
        self.wait_for_power(server, 'ACTIVE')
        vif = self.port_vifs(server)[self.neutron.port_1['id']]
        self.assertTrue(vif['currently_attached'])

    def test_a_failed_plug_leaves_no_vif_and_no_network(self):
        server = self.boot()
        self.sim.faults.fail_next(
            'VIF.plug', 1, ['INTERNAL_ERROR', 'injected: vif hotplug failed']
        )
        self.assertRaises(
            client.OpenStackApiException,
            self.attach_port,
            server,
            self.neutron.port_1,
        )
        self.assertEqual({}, self.records('VIF'))
        self.assertEqual(
            [],
            [
                n
                for n in self.records('network').values()
                if n['bridge'] == 'br-int'
            ],
        )
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])
        self.assertEqual([], self.api.get_port_interfaces(server['id']))


class TestWaitingForNeutron(test_lifecycle.XenAPITestCase):
    """Spawn waits for ``network-vif-plugged`` of the ports Neutron has not
    bound yet (status DOWN), as libvirt does (``vif_plugging_timeout``,
    ``vif_plugging_is_fatal``)."""

    def setUp(self):
        super().setUp()
        port = self.neutron._ports[self.neutron.port_1['id']]
        port['status'] = 'DOWN'
        self.port_id = port['id']

    def boot_on_port(self):
        server = self._build_server(
            image_uuid=test_lifecycle.IMAGE_ID,
            flavor_id=self.flavor_id,
            networks=[{'port': self.port_id}],
        )
        return self.api.post_server({'server': server})

    def running_vm(self, server):
        found = self.vm_of(server)
        return found and found[1]['power_state'] == 'Running'

    def wait_for(self, what, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        self.fail('timed out waiting for %s' % what)

    def test_the_boot_ends_when_neutron_reports_the_port_plugged(self):
        self.flags(vif_plugging_timeout=30)
        server = self.boot_on_port()
        # xapi plugged the VIF at the start; Nova waits for Neutron.
        self.wait_for('the VM to run', lambda: self.running_vm(server))
        self.assertEqual('BUILD', self.api.get_server(server['id'])['status'])
        self.api.create_server_external_events(
            [
                {
                    'name': 'network-vif-plugged',
                    'server_uuid': server['id'],
                    'tag': self.port_id,
                }
            ]
        )
        self._wait_for_state_change(server, 'ACTIVE')

    def test_a_port_never_reported_plugged_fails_the_boot_cleanly(self):
        self.flags(vif_plugging_timeout=1)
        self.flags(max_attempts=1, group='scheduler')
        server = self._wait_for_state_change(self.boot_on_port(), 'ERROR')
        self.assertIn('Virtual Interface creation failed', str(server))
        self.assert_nothing_left(server['id'])

    def test_without_is_fatal_a_timeout_only_warns(self):
        self.flags(vif_plugging_timeout=1, vif_plugging_is_fatal=False)
        server = self._wait_for_state_change(self.boot_on_port(), 'ACTIVE')
        _, vm = self.vm_of(server)
        self.assertEqual('Running', vm['power_state'])
        self.assertIn('going on', self.stdlog.logger.output)
