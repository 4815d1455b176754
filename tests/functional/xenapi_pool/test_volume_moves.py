"""Instances with Cinder volumes moving inside a XenServer pool.

A VM keeps its VBDs when it moves inside a pool; xapi starts or receives
it only on a host where every SR of its disks has a plugged PBD
(``VM_REQUIRES_SR``).  So the destination plugs each volume's SR before
the move, and the source unplugs it once no VM of its own uses it.
"""

from nova_hypervisors.xenapi import disks
from tests.functional.xenapi import volumes
from tests.functional.xenapi_pool import test_migrations

VOLUME = 'c0c0c0c0-0000-4000-8000-00000000000c'
DATA = b'written on the array before the move' * 100


class VolumeMovesTestCase(
    volumes.ISCSIVolumes, test_migrations.PoolMigrationTestCase
):
    def setUp(self):
        super().setUp()
        self.start_array()

    def volume_sr_hosts(self):
        """{compute} whose host has a plugged PBD of a volume SR."""
        db = self.db()
        found = set()
        for sr in db.get_all_records('SR').values():
            if sr['type'] != 'iscsi':
                continue
            for pbd in sr['PBDs']:
                rec = db.get_record('PBD', pbd)
                if rec['currently_attached']:
                    found.add(self._compute_of(rec['host']))
        return found

    def volume_vbd(self, server):
        _, vm = self.vm_of(server)
        for ref in vm['VBDs']:
            vbd = self.db().get_record('VBD', ref)
            if vbd['other_config'].get('nova_volume_id') == VOLUME:
                return vbd
        self.fail('the volume is not attached')

    def boot_with_volume(self):
        server = self.boot('xen1')
        self.attach(server, self.volume(VOLUME))
        self.array.write(volumes.IQN, 1, DATA)
        self.assertEqual({'xen1'}, self.volume_sr_hosts())
        return server


class TestVolumesMove(VolumeMovesTestCase):
    def test_live_migration_keeps_the_volume_attached(self):
        server = self.boot_with_volume()
        server = self._live_migrate(server, host='xen2')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(('xen2', 'xen2'), self.host_of_vm(server))
        self.assertTrue(self.volume_vbd(server)['currently_attached'])
        # The SR followed the VM; the source's PBD went.
        self.assertEqual({'xen2'}, self.volume_sr_hosts())
        self.api.get_server_volume(server['id'], VOLUME)
        self._delete_server(server)
        self.assertEqual(set(), self.volume_sr_hosts())
        self.assertEqual(DATA, self.array.read(volumes.IQN, 1, len(DATA)))

    def test_a_refused_live_migration_leaves_the_sr_on_the_source_only(self):
        server = self.boot_with_volume()
        self.sim.faults.fail_next(
            'VM.pool_migrate', 1, ['VM_MIGRATE_FAILED', 'injected']
        )
        server = self._live_migrate(
            server, migration_expected_state='failed', host='xen2'
        )
        self.assertEqual(('xen1', 'xen1'), self.host_of_vm(server))
        self.assertTrue(self.volume_vbd(server)['currently_attached'])
        self.assertEqual({'xen1'}, self.volume_sr_hosts())

    def test_cold_migration_starts_the_vm_with_its_volume_there(self):
        server = self.boot_with_volume()
        server = self._migrate_server(server, host='xen3')
        self.assertEqual(('xen3', 'xen3'), self.host_of_vm(server))
        self.assertTrue(self.volume_vbd(server)['currently_attached'])
        server = self._confirm_resize(server)
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual({'xen3'}, self.volume_sr_hosts())

    def test_resize_grows_the_root_disk_and_leaves_the_volume_alone(self):
        server = self.boot_with_volume()
        size = self.db().get_record('VDI', self.volume_vbd(server)['VDI'])[
            'virtual_size'
        ]
        server = self._resize_server(server, self.large)
        server = self._confirm_resize(server)
        self.assertEqual(2 * volumes.GIB, self.root_size(server))
        vbd = self.volume_vbd(server)
        self.assertTrue(vbd['currently_attached'])
        self.assertEqual(
            size, self.db().get_record('VDI', vbd['VDI'])['virtual_size']
        )
        host = server['OS-EXT-SRV-ATTR:host']
        self.assertEqual({host}, self.volume_sr_hosts())


class TestVolumesBetweenPools(VolumeMovesTestCase):
    """Two standalone hosts (two pools) that both reach the array: a
    block migration takes the VM to the other pool and its volume with
    it, without copying the LUN (nova 21's in-tree driver did the same:
    the destination connects the volume's SR under the same uuid, and
    the source maps the volume VDI to it)."""

    hosts = 2
    pooled = False

    def pool_volumes(self, number):
        """(iscsi SR uuids, {volume id: VBD}) of one pool."""
        db = self.sim.db(self.sim.hosts[number])
        srs = [
            sr['uuid']
            for sr in db.get_all_records('SR').values()
            if sr['type'] == 'iscsi'
        ]
        vbds = {
            vbd['other_config']['nova_volume_id']: vbd
            for vbd in db.get_all_records('VBD').values()
            if vbd['other_config'].get('nova_volume_id')
        }
        return srs, vbds

    def test_block_migration_takes_the_volume_to_the_other_pool(self):
        server = self.boot_with_volume()
        (sr_uuid,), _ = self.pool_volumes(0)

        server = self._live_migrate(server, host='xen2')

        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('xen2', server['OS-EXT-SRV-ATTR:host'])
        # The source pool forgot the SR; the destination has it, under
        # the same uuid, and the VM's VBD is plugged on the same LUN.
        self.assertEqual(([], {}), self.pool_volumes(0))
        srs, vbds = self.pool_volumes(1)
        self.assertEqual([sr_uuid], srs)
        self.assertTrue(vbds[VOLUME]['currently_attached'])
        self.assertEqual(DATA, self.array.read(volumes.IQN, 1, len(DATA)))
        self.api.get_server_volume(server['id'], VOLUME)

        self._delete_server(server)
        self.assertEqual(([], {}), self.pool_volumes(1))
        self.assertEqual(DATA, self.array.read(volumes.IQN, 1, len(DATA)))

    def test_a_failed_send_leaves_the_volume_on_the_source_only(self):
        server = self.boot_with_volume()
        before = self.pool_volumes(0)
        self.sim.faults.fail_next(
            'VM.migrate_send', 1, ['VM_MIGRATE_FAILED', 'injected']
        )
        server = self._live_migrate(
            server, migration_expected_state='failed', host='xen2'
        )
        self.assertEqual('xen1', self.nova_host(server))
        srs, vbds = self.pool_volumes(0)
        self.assertEqual(before[0], srs)
        self.assertTrue(vbds[VOLUME]['currently_attached'])
        # What pre_live_migration connected in the other pool is gone.
        self.assertEqual(([], {}), self.pool_volumes(1))


class TestVolumesWithLocalDisks(VolumeMovesTestCase):
    """One pool whose hosts have local disks only: a live migration is a
    block migration inside the pool, and the volume keeps its VBD."""

    shared_sr = False
    sr_matching_filter = disks.LOCAL_STORAGE_FILTER

    def test_block_migration_inside_the_pool_keeps_the_volume(self):
        server = self.boot_with_volume()
        server = self._live_migrate(server, host='xen2')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(('xen2', 'xen2'), self.host_of_vm(server))
        self.assertTrue(self.volume_vbd(server)['currently_attached'])
        self.assertEqual({'xen2'}, self.volume_sr_hosts())
        self._delete_server(server)
        self.assertEqual(set(), self.volume_sr_hosts())
        self.assertEqual(DATA, self.array.read(volumes.IQN, 1, len(DATA)))
