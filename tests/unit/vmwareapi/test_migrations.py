"""Live-migration checks and the bookkeeping of a grown root disk."""

import unittest
from unittest import mock

from nova import exception
from pyVmomi import vim

from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import migrations

VCENTER = '5c1e2f0a-0000-4000-8000-000000000001'


def node() -> cluster.Node:
    return cluster.Node(
        cluster=vim.ClusterComputeResource('domain-c7'),
        cluster_name='C0',
        resource_pool=None,
        datacenter=None,
        datacenter_name='DC0',
        datacenter_path='DC0',
        vm_folder=None,
        vcenter_uuid=VCENTER,
        vcenter_version='7.0.0',
    )


class TestLiveMigrationChecks(unittest.TestCase):
    def setUp(self):
        self.migrations = migrations.Migrations(
            mock.Mock(),
            node(),
            mock.Mock(),
            mock.Mock(),
            mock.Mock(),
            None,
            mock.Mock(),
        )

    def test_destination_names_its_cluster_by_moref(self):
        data = self.migrations.destination_data(
            {'hypervisor_hostname': f'domain-c9.{VCENTER}'}
        )
        self.assertEqual('domain-c7', data.cluster_name)
        self.assertEqual('', data.datastore_regex)

    def test_a_source_in_another_vcenter_is_refused(self):
        other = 'domain-c9.5c1e2f0a-0000-4000-8000-000000000002'
        with self.assertRaises(exception.MigrationPreCheckError) as caught:
            self.migrations.destination_data({'hypervisor_hostname': other})
        self.assertIn(other, str(caught.exception))


class TestExtraConfig(unittest.TestCase):
    def option(self, key, value):
        return vim.option.OptionValue(key=key, value=value)

    def test_the_last_value_wins_and_empty_means_unset(self):
        """vcsim appends options that vCenter replaces."""
        key = migrations.BACKUP_PATH_KEY
        options = [self.option(key, '[ds] a.vmdk'), self.option(key, '')]
        self.assertEqual('', migrations.extra_config(options, key))
        options.append(self.option(key, '[ds] b.vmdk'))
        self.assertEqual('[ds] b.vmdk', migrations.extra_config(options, key))
        self.assertEqual('', migrations.extra_config(None, key))


class TestLiveMigrationFailure(unittest.TestCase):
    """A refused RelocateVM rolls back; a VM of unknown place raises."""

    def setUp(self):
        self.node = node()
        self.session = mock.Mock()
        self.vmops = mock.Mock()
        self.migrations = migrations.Migrations(
            self.session,
            self.node,
            self.vmops,
            mock.Mock(),
            mock.Mock(),
            None,
            mock.Mock(),
        )
        self.instance = mock.Mock(uuid='u1')
        self.post, self.recover = mock.Mock(), mock.Mock()
        patcher = mock.patch.object(
            migrations.Migrations,
            '_relocate',
            side_effect=vim.fault.InvalidState(msg='busy'),
        )
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(mock.patch.stopall)
        mock.patch.object(migrations.cluster, 'find_node').start()
        mock.patch.object(migrations.lookup, 'get_vm').start()
        self.find_vm = mock.patch.object(migrations.lookup, 'find_vm').start()

    def migrate(self):
        data = mock.Mock(cluster_name='domain-c9', datastore_regex='')
        self.migrations.live_migration(
            'ctx', self.instance, 'dest', self.post, self.recover, data
        )
        return data

    def test_a_vm_still_here_is_rolled_back_without_error(self):
        pool = vim.ResourcePool('resgroup-1')
        self.vmops.vm_properties.return_value = {'resourcePool': pool}
        self.session.properties.return_value = {
            pool: {'owner': self.node.cluster}
        }
        data = self.migrate()
        self.recover.assert_called_once_with(
            'ctx', self.instance, 'dest', data
        )
        self.post.assert_not_called()

    def test_a_vm_that_cannot_be_found_raises_for_an_operator(self):
        self.find_vm.return_value = None
        with self.assertRaises(vim.fault.InvalidState):
            self.migrate()
        self.recover.assert_not_called()
