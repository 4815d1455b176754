"""Moving servers between two clusters of one vCenter, through Nova's API.

Resize (CPU, memory, disk) with confirm and revert, cold migration with
confirm and revert, and live migration (``RelocateVM_Task`` with the VM
powered on).  The VM is moved, never copied: its moref stays the same.
"""

from unittest import mock

from oslo_utils import units
from pyVmomi import vim

from nova_hypervisors.vmwareapi import migrations
from nova_hypervisors.vmwareapi import session as vc_session
from tests.functional.vmwareapi import api_base

NODE = 'OS-EXT-SRV-ATTR:hypervisor_hostname'


class MigrationsTest(api_base.VCenterAPITestCase):
    def _provider_of(self, server: dict) -> str:
        node = server[NODE]
        return self.admin_api.api_get(
            f'os-hypervisors?hypervisor_hostname_pattern={node}'
        ).body['hypervisors'][0]['id']

    def _assert_allocated_only_on_own_node(self, server: dict) -> None:
        allocations = self._get_allocations_by_server_uuid(server['id'])
        self.assertEqual([self._provider_of(server)], list(allocations))

    def _backup_option(self, server: dict) -> str:
        options = self._vm_props(server, 'config.extraConfig')[
            'config.extraConfig'
        ]
        return migrations.extra_config(options, migrations.BACKUP_PATH_KEY)

    def _file_exists(self, ds_path: str) -> bool:
        from nova_hypervisors.vmwareapi import datastore

        files = datastore.DatastoreFiles(self.admin, None, 'DC0')
        return files.exists(ds_path)

    def test_resize_revert_restores_cpu_memory_and_the_old_disk(self):
        """A resize grows CPU, memory and disk in the other cluster; the
        revert brings the VM back with the old flavor *and* the root disk
        as it was (vSphere cannot shrink a disk: the resize grew a copy
        and kept the original, which the revert puts back)."""
        server = self._boot_active()
        source = self._cluster_of(server)
        vm = self._vm(server)
        original = self._root_disk(server).backing.fileName
        self.assertEqual(1 * units.Mi, self._root_disk(server).capacityInKB)
        bigger = self._flavor('bigger', memory_mb=1024, vcpus=2, disk=2)

        server = self._resize_server(server, bigger)
        self.assertNotEqual(source, self._cluster_of(server))
        self.assertEqual(vm, self._vm(server))
        props = self._vm_props(
            server, 'summary.config.memorySizeMB', 'summary.config.numCpu'
        )
        self.assertEqual(1024, props['summary.config.memorySizeMB'])
        self.assertEqual(2, props['summary.config.numCpu'])
        grown = self._root_disk(server)
        self.assertEqual(2 * units.Mi, grown.capacityInKB)
        self.assertNotEqual(original, grown.backing.fileName)
        self.assertEqual(original, self._backup_option(server))
        self.assertTrue(self._file_exists(original))

        server = self._revert_resize(server)
        self.assertEqual(source, self._cluster_of(server))
        self.assertEqual('poweredOn', self._power_state(server))
        props = self._vm_props(
            server, 'summary.config.memorySizeMB', 'summary.config.numCpu'
        )
        self.assertEqual(512, props['summary.config.memorySizeMB'])
        self.assertEqual(1, props['summary.config.numCpu'])
        restored = self._root_disk(server)
        self.assertEqual(1 * units.Mi, restored.capacityInKB)
        self.assertEqual(original, restored.backing.fileName)
        self.assertEqual('', self._backup_option(server))
        self.assertFalse(self._file_exists(grown.backing.fileName))
        self.assertEqual(1, server['flavor']['disk'])
        self._assert_allocated_only_on_own_node(server)

    def test_resize_confirm_keeps_the_grown_disk_and_drops_the_old(self):
        server = self._boot_active()
        source = self._cluster_of(server)
        original = self._root_disk(server).backing.fileName
        bigger = self._flavor('bigger', memory_mb=1024, vcpus=2, disk=2)
        server = self._resize_server(server, bigger)

        server = self._confirm_resize(server)
        self.assertNotEqual(source, self._cluster_of(server))
        grown = self._root_disk(server)
        self.assertEqual(2 * units.Mi, grown.capacityInKB)
        self.assertTrue(self._file_exists(grown.backing.fileName))
        self.assertEqual('', self._backup_option(server))
        self.assertFalse(self._file_exists(original))
        self.assertEqual(2, server['flavor']['disk'])
        self._assert_allocated_only_on_own_node(server)
        self._delete_server(server)
        self.assertIsNone(self._vm(server))

    def test_cold_migration_revert_and_confirm(self):
        """migrate moves the powered-off VM to the other cluster; revert
        brings it back running; a second migrate is confirmed."""
        server = self._boot_active()
        source, vm = self._cluster_of(server), self._vm(server)
        node = server[NODE]

        server = self._migrate_server(server)
        self.assertNotEqual(source, self._cluster_of(server))
        self.assertNotEqual(node, server[NODE])
        self.assertEqual(vm, self._vm(server))
        self.assertEqual('poweredOn', self._power_state(server))

        server = self._revert_resize(server)
        self.assertEqual(source, self._cluster_of(server))
        self.assertEqual(node, server[NODE])
        self.assertEqual('poweredOn', self._power_state(server))

        server = self._migrate_server(server)
        server = self._confirm_resize(server)
        self.assertNotEqual(source, self._cluster_of(server))
        self.assertEqual(vm, self._vm(server))
        self._assert_allocated_only_on_own_node(server)

    def test_live_migration_relocates_the_running_vm_and_back(self):
        """os-migrateLive relocates the VM while it runs: the power state
        at the moment of RelocateVM_Task is read from vCenter itself."""
        server = self._boot_active()
        source, vm = self._cluster_of(server), self._vm(server)
        source_host = server['OS-EXT-SRV-ATTR:host']
        other_host = {'compute1': 'compute2', 'compute2': 'compute1'}[
            source_host
        ]
        states_at_relocation = []
        invoke = vc_session.VCenterSession.invoke
        admin = self.admin

        def spy(session, managed_object, method, *args, **kwargs):
            if method == 'RelocateVM_Task':
                states_at_relocation.append(
                    admin.properties([vm], type(vm), ['runtime.powerState'])[
                        vm
                    ]['runtime.powerState']
                )
            return invoke(session, managed_object, method, *args, **kwargs)

        with mock.patch.object(vc_session.VCenterSession, 'invoke', spy):
            server = self._live_migrate(server)
            self.assertEqual(other_host, server['OS-EXT-SRV-ATTR:host'])
            self.assertNotEqual(source, self._cluster_of(server))
            self.assertEqual(vm, self._vm(server))
            self.assertEqual('poweredOn', self._power_state(server))
            self._assert_allocated_only_on_own_node(server)

            server = self._live_migrate(server, host=source_host)
        self.assertEqual(source_host, server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(source, self._cluster_of(server))
        self.assertEqual(['poweredOn', 'poweredOn'], states_at_relocation)
        self._assert_allocated_only_on_own_node(server)
        # The driver keeps answering for the VM after it came back.
        server = self._stop_server(server)
        self.assertEqual('poweredOff', self._power_state(server))

    def test_a_failed_relocation_leaves_the_server_running_where_it_was(self):
        """vCenter refuses RelocateVM_Task: Nova rolls back (the driver
        calls the recover callback) and the VM never left."""
        self.compute_errors_expected = True
        server = self._boot_active()
        source, host = self._cluster_of(server), server['OS-EXT-SRV-ATTR:host']
        invoke = vc_session.VCenterSession.invoke

        def refuse_relocation(session, managed_object, method, *a, **kw):
            if method == 'RelocateVM_Task':
                raise vim.fault.InvalidState(msg='host is busy')
            return invoke(session, managed_object, method, *a, **kw)

        with mock.patch.object(
            vc_session.VCenterSession, 'invoke', refuse_relocation
        ):
            self.api.post_server_action(
                server['id'],
                {'os-migrateLive': {'host': None, 'block_migration': 'auto'}},
            )
            self._wait_for_migration_status(server, ['error', 'failed'])
        server = self._wait_for_server_parameter(
            server,
            {
                'status': 'ACTIVE',
                'OS-EXT-STS:task_state': None,
                'OS-EXT-SRV-ATTR:host': host,
            },
        )
        self.assertEqual(source, self._cluster_of(server))
        self.assertEqual('poweredOn', self._power_state(server))
        self._assert_allocated_only_on_own_node(server)
