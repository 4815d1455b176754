"""XenAPIDriver through its facade, over the faked wire and mini xapi."""

from unittest import mock

from nova import context as nova_context
from nova import exception
from nova import objects
from nova import test
from nova.compute import power_state
from nova.compute import provider_tree
from nova.tests.unit import fake_instance

from nova_hypervisors.xenapi import driver as xdriver
from tests.unit.xenapi import fakewire
from tests.unit.xenapi import minixapi

IMAGE = b'\x01\x02boot sector' * 1000


class DriverTestCase(test.NoDBTestCase):
    def setUp(self):
        super().setUp()
        self.wire = self.useFixture(fakewire.FakeWire())
        self.mini = self.useFixture(minixapi.MiniXapiFixture(self.wire)).mini
        self.flags(
            connection_url='http://127.0.0.1',
            connection_password='pw',
            cache_images='none',
            group='xenserver',
        )
        self.drv = xdriver.XenAPIDriver(mock.Mock())
        self.drv.init_host('compute1')
        self.addCleanup(self.drv.cleanup_host, 'compute1')
        self.ctx = nova_context.get_admin_context()
        self.downloads = 0
        self.useFixture(fixtures_download(self))

    def instance(self, **kw):
        flavor = objects.Flavor(
            memory_mb=512,
            vcpus=2,
            root_gb=1,
            ephemeral_gb=kw.pop('ephemeral_gb', 0),
            swap=kw.pop('swap', 0),
            flavorid='1',
            name='small',
            extra_specs={},
        )
        instance = fake_instance.fake_instance_obj(
            self.ctx, flavor=flavor, config_drive='', **kw
        )
        instance.metadata = {}
        instance.system_metadata = {}
        return instance

    def image(self, disk_format='raw', data=IMAGE):
        self.image_data = data
        return objects.ImageMeta.from_dict(
            {
                'id': 'c0ffee00-0000-0000-0000-000000000001',
                'disk_format': disk_format,
                'container_format': 'bare',
                'size': len(data),
                'properties': {},
            }
        )

    def spawn(self, instance, image=None, network_info=None):
        self.drv.spawn(
            self.ctx,
            instance,
            image or self.image(),
            [],
            None,
            {},
            network_info or [],
        )


def fixtures_download(case):
    import fixtures

    def download(context, image_id, data=None, **kwargs):
        case.downloads += 1
        data.write(case.image_data[:100])
        data.write(case.image_data[100:])

    return fixtures.MonkeyPatch(
        'nova_hypervisors.common.images.IMAGE_API.download', download
    )


class TestSpawn(DriverTestCase):
    def test_spawn_starts_a_vm_with_the_image_bytes_on_its_root_disk(self):
        inst = self.instance(swap=256, ephemeral_gb=1)
        self.spawn(
            inst,
            network_info=[
                {
                    'id': 'port-1',
                    'address': 'fa:16:3e:00:00:01',
                    'network': {'bridge': 'br-int'},
                }
            ],
        )
        ((vm_ref, vm),) = self.mini.objects['VM'].items()
        self.assertEqual('Running', vm['power_state'])
        self.assertEqual(minixapi.HOST, vm['resident_on'])
        self.assertEqual(str(512 << 20), vm['memory_static_max'])
        self.assertEqual('2', vm['VCPUs_max'])
        self.assertEqual(inst.uuid, vm['other_config']['nova_uuid'])
        self.assertEqual(inst.uuid, vm['xenstore_data']['vm-data/nova/uuid'])
        self.assertEqual(3, len(vm['VBDs']))
        root = [
            v
            for v in self.mini.objects['VDI'].values()
            if v['other_config'].get('nova_disk_type') == 'root'
        ][0]
        self.assertEqual(str(1 << 30), root['virtual_size'])
        (vif,) = self.mini.objects['VIF'].values()
        self.assertEqual('port-1', vif['other_config']['nicira-iface-id'])
        self.assertIn(IMAGE, self.mini.disk_bytes.values())
        self.assertEqual(
            power_state.RUNNING, self.drv.get_info(inst, use_cache=False).state
        )

    def test_a_bad_image_format_is_refused_before_anything_is_created(self):
        calls = len(self.wire.calls)
        self.assertRaises(
            exception.ImageUnacceptable,
            self.spawn,
            self.instance(),
            self.image('qcow2'),
        )
        self.assertEqual(calls, len(self.wire.calls))

    def test_an_image_larger_than_the_flavor_disk_is_refused_first(self):
        calls = len(self.wire.calls)
        image = self.image(data=b'x' * 10)
        image.size = 2 << 30
        self.assertRaises(
            exception.FlavorDiskSmallerThanImage,
            self.spawn,
            self.instance(),
            image,
        )
        self.assertEqual(calls, len(self.wire.calls))

    def test_the_second_boot_clones_the_cached_image(self):
        self.flags(cache_images='all', group='xenserver')
        self.drv._settings = xdriver.CONF.xenserver
        self.spawn(self.instance())
        self.spawn(self.instance())
        self.assertEqual(1, self.downloads)
        self.assertEqual(2, self.wire.counts['VDI.clone'])

    def test_a_failure_at_any_step_leaves_nothing_behind(self):
        faults = [
            ('VDI.create', 'SR_FULL', '1', '0'),
            ('VM.create', 'INTERNAL_ERROR', 'boom'),
            ('VBD.create', 'INTERNAL_ERROR', 'boom'),
            ('VIF.create', 'INTERNAL_ERROR', 'boom'),
            (
                'VM.start_on',
                'HOST_NOT_ENOUGH_FREE_MEMORY',
                '536870912',
                '1024',
            ),
        ]
        net = [
            {
                'id': 'p',
                'address': 'fa:16:3e:00:00:02',
                'network': {'bridge': 'xenbr9'},
            }
        ]
        for method, *details in faults:
            with self.subTest(method=method):
                self.mini.fail(method, *details)
                self.assertRaises(
                    exception.NovaException,
                    self.spawn,
                    self.instance(swap=64),
                    None,
                    net,
                )
                self.assertEqual({}, self.mini.leftovers())
                self.assertEqual({}, self.mini.objects['network'])

    def test_not_enough_memory_asks_nova_to_reschedule(self):
        self.mini.fail('VM.start_on', 'HOST_NOT_ENOUGH_FREE_MEMORY', '2', '1')
        exc = self.assertRaises(
            exception.ComputeResourcesUnavailable, self.spawn, self.instance()
        )
        self.assertIn('HOST_NOT_ENOUGH_FREE_MEMORY [2, 1]', str(exc))


class TestLifecycle(DriverTestCase):
    def setUp(self):
        super().setUp()
        self.inst = self.instance()
        self.spawn(self.inst)
        (self.vm,) = self.mini.objects['VM'].values()

    def test_destroy_removes_vm_disks_and_vifs(self):
        self.drv.destroy(self.ctx, self.inst, [])
        self.assertEqual({}, self.mini.leftovers())
        self.assertFalse(self.drv.instance_exists(self.inst))

    def test_destroy_of_a_missing_vm_is_fine(self):
        self.drv.destroy(self.ctx, self.instance(), [])

    def test_power_cycle(self):
        self.drv.power_off(self.inst, timeout=5)
        self.assertEqual('Halted', self.vm['power_state'])
        self.drv.power_on(self.ctx, self.inst, [])
        self.drv.pause(self.inst)
        self.assertEqual('Paused', self.vm['power_state'])
        self.drv.unpause(self.inst)
        self.drv.suspend(self.ctx, self.inst)
        self.assertEqual('Suspended', self.vm['power_state'])
        self.drv.resume(self.ctx, self.inst, [], None)
        self.assertEqual('Running', self.vm['power_state'])

    def test_a_failed_soft_reboot_falls_back_to_hard(self):
        self.mini.fail('VM.clean_reboot', 'VM_MISSING_PV_DRIVERS', 'vm')
        self.drv.reboot(self.ctx, self.inst, [], 'SOFT')
        self.assertEqual(1, self.wire.counts['Async.VM.hard_reboot'])

    def test_a_failed_clean_shutdown_falls_back_to_hard(self):
        self.mini.fail('VM.clean_shutdown', 'VM_MISSING_PV_DRIVERS', 'vm')
        self.drv.power_off(self.inst, timeout=5)
        self.assertEqual('Halted', self.vm['power_state'])

    def test_rescue_and_unrescue(self):
        self.drv.rescue(
            self.ctx, self.inst, [], self.image(), 'pw', None, None
        )
        self.assertEqual(2, len(self.mini.objects['VM']))
        self.assertEqual('Halted', self.vm['power_state'])
        self.inst.vm_state = 'rescued'
        self.assertEqual(
            power_state.RUNNING,
            self.drv.get_info(self.inst, use_cache=False).state,
        )
        self.assertEqual([self.inst.uuid], self.drv.list_instance_uuids())
        roots = set(self.mini.objects['VDI'])
        self.drv.unrescue(self.ctx, self.inst)
        self.assertEqual(1, len(self.mini.objects['VM']))
        self.assertEqual('Running', self.vm['power_state'])
        # Only the rescue disk went; the instance's root disk stays.
        self.assertEqual(1, len(self.mini.objects['VDI']))
        self.assertLess(set(self.mini.objects['VDI']), roots)

    def test_destroy_keeping_disks_of_a_rescued_instance_keeps_the_root(self):
        (root,) = self.mini.objects['VDI']
        self.drv.rescue(
            self.ctx, self.inst, [], self.image(), 'pw', None, None
        )
        self.drv.destroy(self.ctx, self.inst, [], destroy_disks=False)
        self.assertEqual([root], list(self.mini.objects['VDI']))
        self.assertEqual({}, self.mini.objects['VM'])

    def test_snapshot_uploads_the_root_disk(self):
        uploaded = {}

        def update(context, image_id, metadata, data=None, **kw):
            uploaded[image_id] = (metadata, data.read())

        vdis = len(self.mini.objects['VDI'])
        with mock.patch(
            'nova_hypervisors.common.images.IMAGE_API.update', update
        ):
            self.drv.snapshot(self.ctx, self.inst, 'img-2', mock.Mock())
        self.assertEqual(IMAGE, uploaded['img-2'][1])
        self.assertEqual(vdis, len(self.mini.objects['VDI']))

    def test_listing_is_one_call_whatever_the_vm_count(self):
        for _ in range(20):
            self.mini.add(
                'VM',
                power_state='Halted',
                resident_on='x',
                affinity=minixapi.HOST,
                is_a_template=False,
                is_control_domain=False,
                name_label='i',
                other_config={'nova_uuid': 'u%d' % _},
            )
        before = self.session_calls()
        self.assertEqual(21, self.drv.get_num_instances())
        self.assertEqual(1, self.session_calls() - before)

    def session_calls(self):
        return len([m for m in self.wire.methods() if m != 'event.from'])


class TestHost(DriverTestCase):
    def test_resources_come_from_the_host_and_the_sr(self):
        res = self.drv.get_available_resource('xen0')
        self.assertEqual(8, res['vcpus'])
        self.assertEqual(16384, res['memory_mb'])
        self.assertEqual(4096, res['memory_mb_used'])
        self.assertEqual(100, res['local_gb'])
        self.assertEqual('host-uuid-0', res['uuid'])
        self.assertEqual(['xen0'], self.drv.get_available_nodes())

    def test_inventory_honours_ratios_and_reserved(self):
        self.flags(
            cpu_allocation_ratio=4.0,
            reserved_host_memory_mb=1024,
            reserved_host_disk_mb=2048,
        )
        tree = provider_tree.ProviderTree()
        tree.new_root('xen0', 'host-uuid-0')
        self.drv.update_provider_tree(tree, 'xen0')
        inv = tree.data('xen0').inventory
        self.assertEqual(4.0, inv['VCPU']['allocation_ratio'])
        self.assertEqual(1024, inv['MEMORY_MB']['reserved'])
        self.assertEqual(2, inv['DISK_GB']['reserved'])
        self.assertEqual(100, inv['DISK_GB']['total'])


class TestNotReady(test.NoDBTestCase):
    def test_calls_before_init_host_say_not_ready(self):
        drv = xdriver.XenAPIDriver(mock.Mock())
        self.assertRaises(
            exception.VirtDriverNotReady, drv.get_available_nodes
        )

    def test_init_host_without_url_names_the_option(self):
        self.flags(connection_url=None, group='xenserver')
        drv = xdriver.XenAPIDriver(mock.Mock())
        exc = self.assertRaises(
            exception.InvalidConfiguration, drv.init_host, 'h'
        )
        self.assertIn('connection_url', str(exc))


class TestLiveMigrationVifWait(DriverTestCase):
    WARNING = 'live_migration_wait_for_vif_plug = False'

    def test_waiting_for_vif_plugged_before_a_migration_is_warned_of(self):
        """xapi plugs a migrating VM's VIFs inside VM.pool_migrate: Nova's
        wait before the migration could only time out."""
        self.assertIn(self.WARNING, self.stdlog.logger.output)

    def test_no_warning_once_the_option_is_off(self):
        self.flags(live_migration_wait_for_vif_plug=False, group='compute')
        before = self.stdlog.logger.output.count(self.WARNING)
        drv = xdriver.XenAPIDriver(mock.Mock())
        drv.init_host('compute1')
        self.addCleanup(drv.cleanup_host, 'compute1')
        after = self.stdlog.logger.output.count(self.WARNING)
        self.assertEqual(before, after)
