"""Interface hot-plug through the Nova API on a simulated XenServer host.

Neutron is Nova's NeutronFixture; its ports bind with ``vif_type`` ovs on
the integration bridge.  xapi hot-plugs a VIF into a running VM
(``VIF.plug``); a halted VM gets it at its next start.
"""

import copy

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
