"""Moving instances inside a XenServer pool, through the Nova API.

Three simulated XenServer hosts form one pool (shared default SR), each
managed by its own nova-compute whose connection_url is its own host (the
session follows HOST_IS_SLAVE to the master).  Every test checks what Nova
says against what the simulator holds: where the VM is resident, which
compute owns it (affinity), its memory, VCPUs and disk sizes.
"""

import hashlib
import io
import time

import fixtures
from nova import context as nova_context
from nova import exception
from nova.tests.functional.api import client

from nova_hypervisors import conf  # noqa: F401 - registers [xenserver]
from nova_hypervisors.simulators.xapi import SimulatedPool
from nova_hypervisors.xenapi import disks
from tests.functional import base

RAW = b''.join(hashlib.sha256(b'%d' % i).digest() for i in range(8192))
IMAGE_ID = '5e1f0000-0000-4000-8000-0000000000bb'
GIB = 1024**3
MIB = 1024**2


class PoolMigrationTestCase(base.NovaAPITestCase):
    compute_driver = base.XENAPI_DRIVER
    hosts = 3
    pooled = True
    shared_sr = True
    sr_matching_filter = 'default-sr:true'
    #: [xenserver] options of every compute beyond the connection.
    xenserver_options: dict = {}

    def setUp(self):
        super().setUp()
        state_dir = self.useFixture(fixtures.TempDir()).path
        self.sim = SimulatedPool(
            hosts=self.hosts,
            state_dir=state_dir,
            pooled=self.pooled,
            port=0,
            password='pool-secret',
            host_memory_mib=4096,
            shared_sr=self.shared_sr,
        )
        self.sim.start()
        self.addCleanup(self.sim.stop)
        self.flags(sync_power_state_interval=-1)
        self.computes = {}
        for number, xen in enumerate(self.sim.hosts, start=1):
            self.computes[f'xen{number}'] = self.start_compute(
                f'xen{number}',
                xenserver={
                    'connection_url': xen.url,
                    'connection_username': xen.username,
                    'connection_password': xen.password,
                    'ca_file': self.sim.ca_file,
                    'running_timeout': 30,
                    'sr_matching_filter': self.sr_matching_filter,
                    **self.xenserver_options,
                },
            )
        self.glance.create(
            None,
            {
                'id': IMAGE_ID,
                'name': 'raw',
                'status': 'active',
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': len(RAW),
                'properties': {},
            },
            data=io.BytesIO(RAW),
        )
        self.small = self._create_flavor(
            memory_mb=256, vcpu=1, disk=1, ephemeral=0
        )
        self.large = self._create_flavor(
            memory_mb=512, vcpu=2, disk=2, ephemeral=0
        )
        self.xen_by_uuid = {xen.uuid: xen for xen in self.sim.hosts}

    # -- helpers -----------------------------------------------------------

    def boot(self, host):
        server = self._build_server(
            image_uuid=IMAGE_ID,
            flavor_id=self.small,
            networks='none',
            host=host,
        )
        self.api.microversion = '2.74'
        try:
            created = self.api.post_server({'server': server})
        finally:
            self.api.microversion = 'latest'
        return self._wait_for_state_change(created, 'ACTIVE')

    def db(self):
        return self.sim.db(self.sim.hosts[0])

    def vm_of(self, server):
        for ref, rec in self.db().get_all_records('VM').items():
            if rec['other_config'].get('nova_uuid') == server['id']:
                return ref, rec
        self.fail('no VM for server %s' % server['id'])

    def host_of_vm(self, server):
        """(resident compute, owning compute) as the simulator says."""
        _, rec = self.vm_of(server)
        return self._compute_of(rec['resident_on']), self._compute_of(
            rec['affinity']
        )

    def _compute_of(self, host_ref):
        hosts = self.db().get_all_records('host')
        if host_ref not in hosts:
            return None
        uuid = hosts[host_ref]['uuid']
        number = [x.uuid for x in self.sim.hosts].index(uuid) + 1
        return f'xen{number}'

    def root_size(self, server):
        _, rec = self.vm_of(server)
        for vbd in rec['VBDs']:
            vbd_rec = self.db().get_record('VBD', vbd)
            if vbd_rec['userdevice'] == '0':
                return self.db().get_record('VDI', vbd_rec['VDI'])[
                    'virtual_size'
                ]
        self.fail('no root disk')

    def wait_until(self, what, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        self.fail(f'timed out waiting for {what}')

    def nova_host(self, server):
        return self.api.get_server(server['id'])['OS-EXT-SRV-ATTR:host']

    def allocation_providers(self, server):
        allocs = self.placement.get(
            '/allocations/%s' % server['id'], version='1.28'
        ).body['allocations']
        return set(allocs)

    def node_uuid(self, compute):
        number = int(compute[3:])
        return self.sim.hosts[number - 1].uuid


class TestLiveMigration(PoolMigrationTestCase):
    def test_live_migration_moves_the_running_vm_with_pool_migrate(self):
        """The VM is resident on the destination; Nova agrees; ACTIVE."""
        server = self.boot('xen1')
        vm_ref, _ = self.vm_of(server)
        self.assertEqual(('xen1', 'xen1'), self.host_of_vm(server))

        server = self._live_migrate(server, host='xen2')

        self.assertEqual('xen2', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(('xen2', 'xen2'), self.host_of_vm(server))
        new_ref, rec = self.vm_of(server)
        self.assertEqual(vm_ref, new_ref)  # the same VM, moved
        self.assertEqual('Running', rec['power_state'])
        # Each compute lists only what it owns.
        self.assertEqual(
            [], self.computes['xen1'].driver.list_instance_uuids()
        )
        self.assertEqual(
            [server['id']],
            self.computes['xen2'].driver.list_instance_uuids(),
        )
        self.assertEqual(
            {self.node_uuid('xen2')}, self.allocation_providers(server)
        )

    def test_failed_live_migration_leaves_the_instance_running_here(self):
        """xapi refuses the move: ACTIVE on the source, VM still there."""
        server = self.boot('xen1')
        self.sim.faults.fail_next(
            'VM.pool_migrate', 1, ['VM_MIGRATE_FAILED', 'injected']
        )

        server = self._live_migrate(
            server, migration_expected_state='failed', host='xen2'
        )

        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('xen1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(('xen1', 'xen1'), self.host_of_vm(server))
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])
        self.assertEqual(
            {self.node_uuid('xen1')}, self.allocation_providers(server)
        )


class TestColdMigrationAndResize(PoolMigrationTestCase):
    def test_cold_migration_then_confirm_runs_it_on_the_destination(self):
        server = self.boot('xen1')
        vm_ref, _ = self.vm_of(server)

        server = self._migrate_server(server, host='xen3')
        self.assertEqual('xen3', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(('xen3', 'xen3'), self.host_of_vm(server))

        server = self._confirm_resize(server)
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(('xen3', 'xen3'), self.host_of_vm(server))
        self.assertEqual(vm_ref, self.vm_of(server)[0])
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])

    def test_resize_changes_memory_vcpus_and_grows_the_root_disk(self):
        server = self.boot('xen1')
        old_root = self.root_size(server)

        server = self._resize_server(server, self.large)
        self.assertNotEqual('xen1', server['OS-EXT-SRV-ATTR:host'])
        _, rec = self.vm_of(server)
        self.assertEqual(512 * MIB, rec['memory_static_max'])
        self.assertEqual(2, rec['VCPUs_at_startup'])
        self.assertEqual(2 * GIB, self.root_size(server))
        self.assertEqual('Running', rec['power_state'])

        server = self._confirm_resize(server)
        self.assertEqual(2 * GIB, self.root_size(server))
        self.assertGreaterEqual(2 * GIB, old_root)
        # The backup of the grown disk is gone with the confirm.
        leftovers = [
            rec
            for rec in self.db().get_all_records('VDI').values()
            if 'nova_resize_backup_of' in rec['other_config']
        ]
        self.assertEqual([], leftovers)

    def test_revert_resize_gives_the_old_size_back_on_the_source(self):
        server = self.boot('xen1')
        old_root = self.root_size(server)
        server = self._resize_server(server, self.large)
        dest = server['OS-EXT-SRV-ATTR:host']
        self.assertEqual((dest, dest), self.host_of_vm(server))

        server = self._revert_resize(server)

        self.assertEqual('xen1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(('xen1', 'xen1'), self.host_of_vm(server))
        _, rec = self.vm_of(server)
        self.assertEqual(256 * MIB, rec['memory_static_max'])
        self.assertEqual(1, rec['VCPUs_at_startup'])
        self.assertEqual('Running', rec['power_state'])
        self.assertEqual(old_root, self.root_size(server))
        vdis = self.db().get_all_records('VDI').values()
        self.assertEqual(
            [],
            [r for r in vdis if 'nova_resize_backup_of' in r['other_config']],
        )

    def test_shrinking_the_root_disk_is_refused_before_anything_changes(self):
        server = self.boot('xen1')
        self.api.post_server_action(
            server['id'], {'resize': {'flavorRef': self.large}}
        )
        server = self._wait_for_state_change(server, 'VERIFY_RESIZE')
        server = self._confirm_resize(server)
        tiny = self._create_flavor(memory_mb=256, vcpu=1, disk=1, ephemeral=0)

        try:
            self.api.post_server_action(
                server['id'], {'resize': {'flavorRef': tiny}}
            )
        except client.OpenStackApiException:
            # The harness runs Nova's casts as calls, so the refusal comes
            # back through prep_resize, whose reschedule ends in ERROR; in
            # a deployment resize_instance is a cast and the instance's
            # InstanceFaultRollback leaves it ACTIVE.
            pass

        self._wait_for_migration_status(server, ['error'])
        server = self.api.get_server(server['id'])
        self.assertIn('cannot shrink', server['fault']['message'])
        self.assertEqual(2, server['flavor']['disk'])
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])
        self.assertEqual(2 * GIB, self.root_size(server))


class TestHostMaintenance(PoolMigrationTestCase):
    def test_maintenance_mode_moves_every_instance_off_the_host(self):
        running = self.boot('xen1')
        stopped = self.boot('xen1')
        self.api.post_server_action(stopped['id'], {'os-stop': None})
        stopped = self._wait_for_state_change(stopped, 'SHUTOFF')
        self.api.microversion = '2.42'
        try:
            body = self.api.api_put(
                '/os-hosts/xen1', {'maintenance_mode': 'enable'}
            ).body
        finally:
            self.api.microversion = 'latest'
        self.assertEqual('on_maintenance', body['maintenance_mode'])

        for server in (running, stopped):
            resident, owner = self.host_of_vm(server)
            self.assertNotEqual('xen1', owner)
            self.assertEqual(owner, self.nova_host(server))
            self.assertEqual(
                {self.node_uuid(owner)}, self.allocation_providers(server)
            )
        self.assertEqual('Running', self.vm_of(running)[1]['power_state'])
        self.assertNotEqual('xen1', self.host_of_vm(running)[0])
        xen1 = self.sim.hosts[0]
        self.assertFalse(
            self.db().get_record('host', xen1.host_ref)['enabled']
        )
        self.assertEqual(
            [], self.computes['xen1'].driver.list_instance_uuids()
        )

        self.api.microversion = '2.42'
        try:
            body = self.api.api_put(
                '/os-hosts/xen1',
                {'maintenance_mode': 'disable', 'status': 'enable'},
            ).body
        finally:
            self.api.microversion = 'latest'
        self.assertEqual('off_maintenance', body['maintenance_mode'])
        self.assertEqual('enabled', body['status'])
        self.assertTrue(self.db().get_record('host', xen1.host_ref)['enabled'])


class TestBlockMigrationBetweenPools(PoolMigrationTestCase):
    """Two standalone hosts: two pools, each with its own default SR."""

    hosts = 2
    pooled = False

    def test_block_migration_recreates_the_vm_in_the_other_pool(self):
        server = self.boot('xen1')
        source_db = self.sim.db(self.sim.hosts[0])
        dest_db = self.sim.db(self.sim.hosts[1])

        server = self._live_migrate(server, host='xen2')

        self.assertEqual('xen2', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('ACTIVE', server['status'])
        mine = [
            rec
            for rec in dest_db.get_all_records('VM').values()
            if rec['other_config'].get('nova_uuid') == server['id']
        ]
        self.assertEqual(1, len(mine))
        self.assertEqual('Running', mine[0]['power_state'])
        self.assertEqual(self.sim.hosts[1].host_ref, mine[0]['resident_on'])
        self.assertEqual(self.sim.hosts[1].host_ref, mine[0]['affinity'])
        self.assertEqual(
            [],
            [
                rec
                for rec in source_db.get_all_records('VM').values()
                if rec['other_config'].get('nova_uuid') == server['id']
            ],
        )


class TestLocalStoragePool(PoolMigrationTestCase):
    """A freshly made pool: every host has only its local SR, and the
    pool's default SR is the master's local storage."""

    shared_sr = False
    sr_matching_filter = disks.LOCAL_STORAGE_FILTER

    def local_sr_of(self, xen):
        for ref, sr in self.db().get_all_records('SR').items():
            hosts = [
                self.db().get_record('PBD', pbd)['host'] for pbd in sr['PBDs']
            ]
            if sr['type'] == 'ext' and hosts == [xen.host_ref]:
                return ref
        self.fail('no local SR on %s' % xen.name)

    def root_vdi(self, server):
        _, rec = self.vm_of(server)
        for vbd in rec['VBDs']:
            vbd_rec = self.db().get_record('VBD', vbd)
            if vbd_rec['userdevice'] == '0':
                return self.db().get_record('VDI', vbd_rec['VDI'])
        self.fail('no root disk')

    def disk_bytes(self, vdi, length):
        sr_uuid = self.db().get_record('SR', vdi['SR'])['uuid']
        path = self.sim.topology.disks.path(sr_uuid, vdi['uuid'])
        with open(path, 'rb') as disk:
            return disk.read(length)

    def test_every_member_boots_on_its_own_local_sr(self):
        for number, xen in enumerate(self.sim.hosts, start=1):
            server = self.boot(f'xen{number}')
            _, rec = self.vm_of(server)
            self.assertEqual(xen.host_ref, rec['resident_on'])
            root = self.root_vdi(server)
            self.assertEqual(self.local_sr_of(xen), root['SR'])
            self.assertEqual(RAW, self.disk_bytes(root, len(RAW)))

    def test_block_live_migration_moves_the_disks_to_the_members_sr(self):
        server = self.boot('xen1')
        vm_ref, _ = self.vm_of(server)

        server = self._live_migrate(server, host='xen2')

        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(('xen2', 'xen2'), self.host_of_vm(server))
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])
        root = self.root_vdi(server)
        self.assertEqual(self.local_sr_of(self.sim.hosts[1]), root['SR'])
        self.assertEqual(RAW, self.disk_bytes(root, len(RAW)))
        left = [
            rec
            for rec in self.db().get_all_records('VDI').values()
            if rec['SR'] == self.local_sr_of(self.sim.hosts[0])
            and rec['other_config'].get('nova_instance_uuid') == server['id']
        ]
        self.assertEqual([], left)

    def test_block_migration_keeps_the_config_drive_and_leaks_nothing(self):
        server = self._build_server(
            image_uuid=IMAGE_ID,
            flavor_id=self.small,
            networks='none',
            host='xen1',
        )
        server['config_drive'] = True
        self.api.microversion = '2.74'
        try:
            created = self.api.post_server({'server': server})
        finally:
            self.api.microversion = 'latest'
        server = self._wait_for_state_change(created, 'ACTIVE')

        server = self._live_migrate(server, host='xen2')

        self.assertEqual(('xen2', 'xen2'), self.host_of_vm(server))
        _, rec = self.vm_of(server)
        drives = [
            self.db().get_record('VBD', vbd)
            for vbd in rec['VBDs']
            if self.db().get_record('VBD', vbd)['userdevice'] == '3'
        ]
        self.assertEqual(1, len(drives))
        self.assertFalse(drives[0]['empty'])
        drive = self.db().get_record('VDI', drives[0]['VDI'])
        self.assertEqual(
            'configdrive', drive['other_config']['nova_disk_type']
        )
        self.assertEqual(self.local_sr_of(self.sim.hosts[1]), drive['SR'])
        iso = self.disk_bytes(drive, int(drive['virtual_size']))
        self.assertEqual(b'CD001', iso[0x8001:0x8006])
        mine = [
            vdi
            for vdi in self.db().get_all_records('VDI').values()
            if vdi['other_config'].get('nova_instance_uuid') == server['id']
        ]
        self.assertEqual(
            ['configdrive', 'root'],
            sorted(v['other_config']['nova_disk_type'] for v in mine),
        )
        self._delete_server(server)
        self.assertEqual(
            [],
            [
                vdi
                for vdi in self.db().get_all_records('VDI').values()
                if vdi['other_config'].get('nova_instance_uuid')
                == server['id']
            ],
        )

    def test_cold_migration_of_local_disks_is_refused_before_any_change(self):
        server = self.boot('xen1')
        self.api.microversion = '2.56'
        try:
            self.api.post_server_action(
                server['id'], {'migrate': {'host': 'xen2'}}
            )
        except client.OpenStackApiException:
            # As for a refused shrink: the harness runs the cast as a
            # call, so the refusal may come back here.
            pass
        finally:
            self.api.microversion = 'latest'
        self._wait_for_migration_status(server, ['error'])
        server = self.api.get_server(server['id'])
        self.assertIn('local SR', server['fault']['message'])
        self.assertEqual(('xen1', 'xen1'), self.host_of_vm(server))
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])
        root = self.root_vdi(server)
        self.assertEqual(self.local_sr_of(self.sim.hosts[0]), root['SR'])

    def test_a_member_whose_filter_matches_no_plugged_sr_fails_init(self):
        """default-sr:true names the master's local SR, which a member
        cannot use: init_host says so, and how to fix it."""
        xen = self.sim.hosts[1]
        with self.assertRaises(exception.InvalidConfiguration) as caught:
            self.start_compute(
                'xen2-default-sr',
                xenserver={
                    'connection_url': xen.url,
                    'connection_username': xen.username,
                    'connection_password': xen.password,
                    'ca_file': self.sim.ca_file,
                    'sr_matching_filter': 'default-sr:true',
                },
            )
        message = str(caught.exception)
        self.assertIn('sr_matching_filter', message)
        self.assertIn(disks.LOCAL_STORAGE_FILTER, message)


class TestImageCacheOnTheSharedSR(PoolMigrationTestCase):
    """Every compute of the pool clones its instances from one base VDI
    per image on the shared SR, and each runs Nova's cache cleanup with
    its own instances only."""

    def bases(self):
        return [
            rec
            for rec in self.db().get_all_records('VDI').values()
            if rec['other_config'].get('nova_image_cache') == IMAGE_ID
        ]

    def cleanup(self, compute):
        ctx = nova_context.get_admin_context()
        self.computes[compute].driver.manage_image_cache(ctx, [])

    def test_a_base_another_computes_instance_uses_is_kept(self):
        server = self.boot('xen2')
        self.assertEqual(1, len(self.bases()))
        # xen1 runs nothing, so Nova tells it nothing is in use.
        self.cleanup('xen1')
        self.assertEqual(1, len(self.bases()))
        self._delete_server(server)
        self.cleanup('xen1')
        self.assertEqual([], self.bases())

    def test_a_base_removed_under_a_spawn_is_fetched_again(self):
        self.boot('xen1')
        # As if another compute removed the base between lookup and clone.
        self.sim.faults.fail_next(
            'VDI.clone', 1, ['HANDLE_INVALID', 'VDI', 'OpaqueRef:gone']
        )
        server = self.boot('xen2')
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])
