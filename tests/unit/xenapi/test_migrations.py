"""Migrations through the driver facade, over the faked wire and mini xapi.

A second pool member (``OpaqueRef:host-1``) and a shared SR are added to
the mini xapi; Nova's own objects stand in for what the conductor sends.
"""

from unittest import mock

from nova import exception
from nova import objects
from nova.compute import task_states
from nova.objects import migrate_data as nova_migrate_data

from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import migrate_data as xmigrate_data
from tests.unit.xenapi import minixapi
from tests.unit.xenapi.fakewire import XapiFailure
from tests.unit.xenapi.test_driver import DriverTestCase

OTHER = 'OpaqueRef:host-1'
GIB = 1 << 30
OTHER_UUID = '0e1f0000-0000-4000-8000-000000000001'


class MigrationTestCase(DriverTestCase):
    def setUp(self):
        super().setUp()
        mini = self.mini
        mini.add('host', OTHER, uuid=OTHER_UUID, hostname='xen1')
        mini.objects['SR'][minixapi.SR]['shared'] = True
        mini.objects['pool']['OpaqueRef:pool']['uuid'] = 'pool-uuid'
        self.moves = []
        wire = self.wire

        def set_field(cls, field):
            def call(session, ref, value):
                mini.get(cls, ref)[field] = value
                return ''

            return call

        def by_uuid(session, uuid):
            for ref, rec in mini.objects['host'].items():
                if rec.get('uuid') == uuid:
                    return ref
            raise XapiFailure('UUID_INVALID', 'host', uuid)

        def pool_migrate(session, vm, host, options):
            self.moves.append(('pool_migrate', vm, host))
            mini.get('VM', vm)['resident_on'] = host
            return ''

        def migrate_send(session, vm, dest, live, vdi_map, vif_map, *rest):
            self.moves.append(('migrate_send', vm, dest, vdi_map))
            return vm

        def set_memory(session, vm, smin, smax, dmin, dmax):
            mini.get('VM', vm).update(
                memory_static_max=smax, memory_dynamic_max=dmax
            )
            return ''

        def vdi_copy(session, vdi, sr, base, into):
            return mini.vdi_copy(session, vdi, {})

        handlers = {
            'host.get_by_uuid': by_uuid,
            'pool.get_uuid': lambda s, ref: mini.get('pool', ref)['uuid'],
            'VM.assert_can_boot_here': lambda s, vm, host: '',
            'VM.set_affinity': set_field('VM', 'affinity'),
            'VM.set_other_config': set_field('VM', 'other_config'),
            'VM.set_VCPUs_max': set_field('VM', 'VCPUs_max'),
            'VM.set_VCPUs_at_startup': set_field('VM', 'VCPUs_at_startup'),
            'VM.set_memory_limits': set_memory,
            'VM.pool_migrate': pool_migrate,
            'VM.migrate_send': migrate_send,
            'VDI.copy': vdi_copy,
            'VDI.get_other_config': (
                lambda s, ref: mini.get('VDI', ref)['other_config']
            ),
            'host.get_management_interface': lambda s, host: 'OpaqueRef:pif',
            'PIF.get_network': lambda s, pif: 'OpaqueRef:mgmt-net',
            'host.migrate_receive': lambda s, host, net, opts: {
                'session_id': 'OpaqueRef:secret-session',
                'host': host,
            },
            'host.disable': lambda s, host: self.toggled.append(False) or '',
            'host.enable': lambda s, host: self.toggled.append(True) or '',
        }
        self.toggled = []
        for name, handler in handlers.items():
            wire.on(name, mini.faulty(name, handler))
        for name in ('VM.pool_migrate', 'VM.migrate_send', 'VDI.copy'):
            wire.on('Async.' + name, mini.async_of(name))
        self.post = mock.Mock()
        self.recover = mock.Mock()

    def running_instance(self, **kw):
        inst = self.instance(**kw)
        self.spawn(inst)
        return inst

    def vm(self):
        ((ref, rec),) = self.mini.objects['VM'].items()
        return ref, rec

    def root(self):
        _, rec = self.vm()
        for vbd in rec['VBDs']:
            vbd_rec = self.mini.get('VBD', vbd)
            if vbd_rec['userdevice'] == '0':
                return self.mini.get('VDI', vbd_rec['VDI'])
        self.fail('no root VDI')

    def shared_data(self, shared=True):
        data = objects.HyperVLiveMigrateData(is_shared_instance_path=shared)
        data.migration = objects.Migration(dest_node='xen1')
        return data


class TestLiveMigrationChecks(MigrationTestCase):
    def test_a_pool_member_on_a_shared_sr_gets_pool_migrate(self):
        """The destination check answers a class the conductor knows."""
        inst = self.running_instance()
        data = self.drv.check_can_live_migrate_destination(
            self.ctx,
            inst,
            {'nova_object.data': {'uuid': 'host-uuid-0'}},
            {},
            block_migration=None,
        )
        self.assertIs(type(data), nova_migrate_data.HyperVLiveMigrateData)
        self.assertTrue(data.is_shared_instance_path)
        self.assertIn('VM.assert_can_boot_here', self.wire.methods())

    def test_another_pool_without_block_migration_is_refused(self):
        inst = self.running_instance()
        self.assertRaises(
            exception.MigrationPreCheckError,
            self.drv.check_can_live_migrate_destination,
            self.ctx,
            inst,
            {'nova_object.data': {'uuid': 'elsewhere'}},
            {},
            block_migration=False,
        )

    def test_a_vm_that_cannot_run_here_fails_the_check(self):
        inst = self.running_instance()
        self.mini.fail(
            'VM.assert_can_boot_here', 'HOST_NOT_ENOUGH_FREE_MEMORY', '9', '1'
        )
        self.assertRaises(
            exception.MigrationPreCheckError,
            self.drv.check_can_live_migrate_destination,
            self.ctx,
            inst,
            {'nova_object.data': {'uuid': 'host-uuid-0'}},
            {},
        )

    def test_only_a_running_vm_migrates_live(self):
        inst = self.running_instance()
        self.drv.power_off(inst)
        self.assertRaises(
            exception.MigrationPreCheckError,
            self.drv.check_can_live_migrate_source,
            self.ctx,
            inst,
            self.shared_data(),
        )


class TestLiveMigration(MigrationTestCase):
    def live_migrate(self, inst, data):
        node = objects.ComputeNode(uuid=OTHER_UUID)
        with mock.patch.object(
            objects.ComputeNode, 'get_by_host_and_nodename', return_value=node
        ):
            self.drv.live_migration(
                self.ctx, inst, 'compute2', self.post, self.recover, None, data
            )

    def test_pool_migrate_moves_the_vm_and_calls_nova_back(self):
        inst = self.running_instance()
        vm_ref, _ = self.vm()
        data = self.shared_data()
        self.live_migrate(inst, data)
        self.assertEqual([('pool_migrate', vm_ref, OTHER)], self.moves)
        self.post.assert_called_once_with(
            self.ctx, inst, 'compute2', None, data
        )
        self.recover.assert_not_called()

    def test_a_failed_move_is_rolled_back_by_nova_not_raised(self):
        """Nova puts an instance in ERROR if live_migration raises."""
        inst = self.running_instance()
        self.mini.fail('VM.pool_migrate', 'VM_MIGRATE_FAILED', 'x')
        data = self.shared_data()
        self.live_migrate(inst, data)
        self.recover.assert_called_once_with(self.ctx, inst, 'compute2', data)
        self.post.assert_not_called()
        self.assertEqual(minixapi.HOST, self.vm()[1]['resident_on'])

    def test_a_move_done_although_its_wait_failed_is_completed(self):
        """xapi moved the VM, but awaiting the task failed (a dropped
        connection): the VM runs on the destination, so Nova is told the
        migration is complete rather than rolled back."""
        inst = self.running_instance()
        start = self.wire.handlers[(None, 'Async.VM.pool_migrate')]

        def moved_then_lost(session_ref, *args):
            start(session_ref, *args)
            raise XapiFailure('INTERNAL_ERROR', 'connection reset')

        self.wire.on('Async.VM.pool_migrate', moved_then_lost)
        data = self.shared_data()
        self.live_migrate(inst, data)
        self.assertEqual(OTHER, self.vm()[1]['resident_on'])
        self.post.assert_called_once_with(
            self.ctx, inst, 'compute2', None, data
        )
        self.recover.assert_not_called()

    def test_a_check_that_cannot_ask_xapi_refuses_the_migration(self):
        """A XenAPI failure in a pre-check is a MigrationPreCheckError,
        which leaves the instance ACTIVE where it is (anything else would
        put it in ERROR)."""
        inst = self.running_instance()
        self.mini.fail('host.get_by_uuid', 'INTERNAL_ERROR', 'x')
        self.assertRaises(
            exception.MigrationPreCheckError,
            self.drv.check_can_live_migrate_destination,
            self.ctx,
            inst,
            {'nova_object.data': {'uuid': 'host-uuid-0'}},
            {},
            block_migration=None,
        )

    def test_block_migration_sends_every_disk_to_the_destination_sr(self):
        inst = self.running_instance(ephemeral_gb=1)
        vm_ref, _ = self.vm()
        data = self.drv.pre_live_migration(
            self.ctx, inst, None, [], None, self.shared_data(shared=False)
        )
        self.assertIsInstance(data, xmigrate_data.XenAPILiveMigrateData)
        self.assertEqual(minixapi.SR, data.dest_sr)
        self.assertFalse(data.cross_pool)
        self.assertEqual('xen1', data.migration.dest_node)
        self.live_migrate(inst, data)
        ((method, ref, dest, vdi_map),) = self.moves
        self.assertEqual(('migrate_send', vm_ref), (method, ref))
        self.assertEqual(2, len(vdi_map))
        self.assertEqual({minixapi.SR}, set(vdi_map.values()))
        self.post.assert_called_once()

    def test_the_migrate_receive_token_never_reaches_a_log_line(self):
        inst = self.running_instance()
        data = self.drv.pre_live_migration(
            self.ctx, inst, None, [], None, self.shared_data(shared=False)
        )
        self.assertNotIn('secret-session', repr(data))
        self.assertIn('session_id=<secret>', repr(data))

    def test_cleanup_after_a_live_migration_keeps_the_moved_vm(self):
        inst = self.running_instance()
        self.live_migrate(inst, self.shared_data())
        self.drv.cleanup(
            self.ctx, inst, [], None, True, migrate_data=self.shared_data()
        )
        self.assertEqual(1, len(self.mini.objects['VM']))

    def test_the_destination_takes_ownership_after_the_move(self):
        inst = self.running_instance()
        self.live_migrate(inst, self.shared_data())
        self.drv.post_live_migration_at_destination(self.ctx, inst, [])
        # host-1 is not this compute's host, so it warns but still claims.
        self.assertEqual(minixapi.HOST, self.vm()[1]['affinity'])


class TestResize(MigrationTestCase):
    def new_flavor(self, root_gb=2, memory_mb=1024, vcpus=4, ephemeral=0):
        return objects.Flavor(
            memory_mb=memory_mb,
            vcpus=vcpus,
            root_gb=root_gb,
            ephemeral_gb=ephemeral,
            swap=0,
            flavorid='2',
            name='big',
            extra_specs={},
        )

    def resize(self, inst, flavor):
        inst.migration_context = None
        info = self.drv.migrate_disk_and_power_off(
            self.ctx, inst, '10.0.0.2', flavor, []
        )
        self.assertEqual('Halted', self.vm()[1]['power_state'])
        old_flavor = inst.flavor
        inst.flavor = flavor
        self.drv.finish_migration(
            self.ctx, None, inst, info, [], None, True, {}
        )
        return old_flavor

    def test_shrinking_a_disk_is_refused_before_anything_changes(self):
        inst = self.running_instance(ephemeral_gb=1)
        calls = len(self.wire.calls)
        with self.assertRaises(exception.InstanceFaultRollback) as caught:
            self.drv.migrate_disk_and_power_off(
                self.ctx, inst, '10.0.0.2', self.new_flavor(ephemeral=0), []
            )
        self.assertIn('cannot shrink', str(caught.exception.inner_exception))
        self.assertEqual('Running', self.vm()[1]['power_state'])
        self.assertNotIn(
            'Async.VM.hard_shutdown',
            [c[1] for c in self.wire.calls[calls:]],
        )

    def test_resize_sets_memory_vcpus_and_grows_root_with_a_backup(self):
        inst = self.running_instance()
        self.resize(inst, self.new_flavor())
        _, rec = self.vm()
        self.assertEqual(str(1024 << 20), rec['memory_static_max'])
        self.assertEqual('4', rec['VCPUs_max'])
        self.assertEqual('Running', rec['power_state'])
        self.assertEqual(str(2 * GIB), str(self.root()['virtual_size']))
        self.assertIn('nova_resize_backups', rec['other_config'])

        self.drv.confirm_migration(self.ctx, None, inst, [])

        self.assertNotIn('nova_resize_backups', self.vm()[1]['other_config'])
        backups = [
            v
            for v in self.mini.objects['VDI'].values()
            if 'nova_resize_backup_of' in v['other_config']
        ]
        self.assertEqual([], backups)

    def test_a_backup_that_cannot_be_named_is_removed_at_once(self):
        """The copy exists, tagging it fails: the copy goes, as it would
        otherwise stay forever (the instance is in ERROR, no revert)."""
        inst = self.running_instance()
        before = set(self.mini.objects['VDI'])
        self.mini.fail('VDI.set_name_label', 'INTERNAL_ERROR', 'x')
        self.assertRaises(
            errors.XenAPIError, self.resize, inst, self.new_flavor()
        )
        self.assertEqual(before, set(self.mini.objects['VDI']))

    def test_revert_swaps_the_backup_back_in(self):
        inst = self.running_instance()
        old = self.resize(inst, self.new_flavor())
        inst.task_state = task_states.RESIZE_REVERTING
        # The destination's destroy leaves the pool's one VM alone.
        self.drv.destroy(self.ctx, inst, [])
        self.assertEqual(1, len(self.mini.objects['VM']))
        inst.flavor = old

        self.drv.finish_revert_migration(self.ctx, inst, [], None)

        _, rec = self.vm()
        self.assertEqual(str(512 << 20), rec['memory_static_max'])
        self.assertEqual('2', rec['VCPUs_max'])
        self.assertEqual(str(GIB), str(self.root()['virtual_size']))
        self.assertEqual('root', self.root()['other_config']['nova_disk_type'])
        self.assertEqual('Running', rec['power_state'])
        self.assertNotIn('nova_resize_backups', rec['other_config'])


class TestHost(MigrationTestCase):
    def test_set_host_enabled_disables_and_enables_the_xenserver_host(self):
        self.assertEqual('disabled', self.drv.set_host_enabled(False))
        self.assertEqual('enabled', self.drv.set_host_enabled(True))
        self.assertEqual([False, True], self.toggled)

    def test_leaving_maintenance_enables_the_host(self):
        self.assertEqual(
            'off_maintenance', self.drv.host_maintenance_mode('xen0', False)
        )
        self.assertEqual([True], self.toggled)


def test_a_compute_of_version_1_0_gets_no_volume_srs():
    data = xmigrate_data.XenAPILiveMigrateData(
        cross_pool=True, volume_srs={'sr-uuid': 'OpaqueRef:sr'}
    )
    primitive = data.obj_to_primitive(target_version='1.0')
    assert 'volume_srs' not in primitive['nova_object.data']
    assert primitive['nova_object.data']['cross_pool'] is True
    current = data.obj_to_primitive()
    assert current['nova_object.data']['volume_srs'] == {
        'sr-uuid': 'OpaqueRef:sr'
    }
