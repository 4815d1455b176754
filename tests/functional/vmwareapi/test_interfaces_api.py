"""Interface hot-plug through the Nova API on vcsim.

A port attached to a running server becomes a card of its VM
(``ReconfigVM_Task``) on the network named like the port's, with the
port's MAC and an ``nvp.iface-id.<n>`` extraConfig holding the port id
(in-tree ``vmops.attach_interface``); detaching removes the card and sets
that index to ``free``, to be given out again.
"""

import copy

from nova.tests.functional.api import client
from pyVmomi import vim

from tests.functional.vmwareapi import api_base

NETWORK_1 = '3cb9bc59-5699-4588-a4b1-b87f96708bc6'


class InterfacesTestCase(api_base.VCenterAPITestCase):
    def setUp(self):
        super().setUp()
        network = self.neutron._networks[NETWORK_1]
        old = network['name']
        network['name'] = 'VM Network'
        self.addCleanup(network.__setitem__, 'name', old)
        self.port_1 = self.neutron.port_1
        self.port_2 = copy.deepcopy(self.neutron.port_2)
        # The fixture defines port_2 but does not serve it until added.
        self.neutron._ports[self.port_2['id']] = self.port_2

    def cards(self, server):
        devices = self._vm_props(server, 'config.hardware.device')[
            'config.hardware.device'
        ]
        return {
            d.macAddress: d
            for d in devices
            if isinstance(d, vim.vm.device.VirtualEthernetCard)
        }

    def iface_ids(self, server):
        options = self._vm_props(server, 'config.extraConfig')[
            'config.extraConfig'
        ]
        return {
            o.key: o.value
            for o in options
            if o.key.startswith('nvp.iface-id.')
        }

    def attach_port(self, server, port):
        self.api.attach_interface(
            server['id'], {'interfaceAttachment': {'port_id': port['id']}}
        )


class InterfacesTest(InterfacesTestCase):
    def test_a_port_is_hot_added_and_removed_keeping_the_nsx_index(self):
        server = self._boot_active(networks=[{'port': self.port_1['id']}])
        self.assertEqual(
            {'nvp.iface-id.0': self.port_1['id']}, self.iface_ids(server)
        )
        self.attach_port(server, self.port_2)
        self.assertEqual('poweredOn', self._power_state(server))
        card = self.cards(server)[self.port_2['mac_address']]
        self.assertEqual('VM Network', card.backing.deviceName)
        self.assertEqual(self.port_2['id'], card.externalId)
        self.assertEqual(
            {
                'nvp.iface-id.0': self.port_1['id'],
                'nvp.iface-id.1': self.port_2['id'],
            },
            self.iface_ids(server),
        )
        # The first port goes: its index is free and is given out again.
        self.api.detach_interface(server['id'], self.port_1['id'])
        self.assertNotIn(self.port_1['mac_address'], self.cards(server))
        self.assertEqual('free', self.iface_ids(server)['nvp.iface-id.0'])
        self.attach_port(server, self.port_1)
        self.assertEqual(
            {
                'nvp.iface-id.0': self.port_1['id'],
                'nvp.iface-id.1': self.port_2['id'],
            },
            self.iface_ids(server),
        )
        self.assertEqual(2, len(self.cards(server)))
        self._delete_server(server)
        self.assertIsNone(self._vm(server))

    def test_a_stopped_server_gets_the_card_too(self):
        server = self._boot_active()
        server = self._stop_server(server)
        self.attach_port(server, self.port_1)
        self.assertIn(self.port_1['mac_address'], self.cards(server))
        self.api.detach_interface(server['id'], self.port_1['id'])
        self.assertEqual({}, self.cards(server))


class InterfaceFaultsTest(InterfacesTestCase):
    compute_errors_expected = True

    def test_a_port_on_no_network_of_the_cluster_is_refused(self):
        server = self._boot_active()
        network = self.neutron._networks[NETWORK_1]
        network['name'] = 'no-such-network'
        self.assertRaises(
            client.OpenStackApiException,
            self.attach_port,
            server,
            self.port_1,
        )
        self.assertEqual({}, self.cards(server))
        self.assertEqual({}, self.iface_ids(server))
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])
