"""VCDriver keeps Nova's interface and fails init_host clearly."""

from unittest import mock

from nova import exception
from nova import test
from nova.virt import driver as nova_driver

from nova_hypervisors.vmwareapi import VCDriver


class TestVCDriver(test.NoDBTestCase):
    def test_public_methods_keep_computedriver_signatures(self):
        self.assertPublicAPISignatures(
            nova_driver.ComputeDriver(None), VCDriver(None)
        )

    def test_missing_host_ip_names_the_option(self):
        self.flags(host_ip=None, group='vmware')
        with self.assertRaises(exception.InvalidConfiguration) as caught:
            VCDriver(None).init_host('compute1')
        self.assertIn('[vmware] host_ip', str(caught.exception))

    def test_missing_cluster_name_names_the_option(self):
        self.flags(
            host_ip='vc.example',
            host_username='u',
            host_password='secret',
            group='vmware',
        )
        with (
            mock.patch(
                'nova_hypervisors.vmwareapi.session.VCenterSession.connect'
            ),
            mock.patch(
                'nova_hypervisors.vmwareapi.session.VCenterSession.view_properties',
                return_value={},
            ),
        ):
            with self.assertRaises(exception.InvalidConfiguration) as caught:
                VCDriver(None).init_host('compute1')
        self.assertIn('[vmware] cluster_name', str(caught.exception))

    def test_each_driver_keeps_the_node_identity_it_started_with(self):
        """Several compute services in one process (Nova's functional
        harness) must not swap node identities through Nova's cache."""
        from nova.virt import node as virt_node

        first, second = VCDriver(None), VCDriver(None)
        first._node = second._node = mock.Mock(nodename='domain-c7.vc')
        with mock.patch.object(virt_node, 'LOCAL_NODE_UUID', 'uuid-1'):
            self.assertEqual(
                {'uuid-1': 'domain-c7.vc'}, first.get_nodenames_by_uuid()
            )
        with mock.patch.object(virt_node, 'LOCAL_NODE_UUID', 'uuid-2'):
            self.assertEqual(['uuid-1'], list(first.get_nodenames_by_uuid()))
            self.assertEqual(['uuid-2'], list(second.get_nodenames_by_uuid()))
