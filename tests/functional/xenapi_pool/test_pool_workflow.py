"""The operator's pool workflow through the Nova API, on simulated hosts.

Three simulated XenServer hosts, each managed by its own nova-compute; the
pool is built only with the aggregate API, and the outcome is checked on
the simulator (its own pool records) as well as in the aggregate.
"""

import hashlib
import io
import time

import fixtures
from nova.tests.functional.api import client

from nova_hypervisors.simulators.xapi import SimulatedPool
from tests.functional import base

RAW = b''.join(hashlib.sha256(b'%d' % i).digest() for i in range(8192))
IMAGE_ID = '5e1f0000-0000-4000-8000-0000000000aa'


class PoolTestCase(base.NovaAPITestCase):
    compute_driver = base.XENAPI_DRIVER
    hosts = 3
    reconcile_interval = 1

    def setUp(self):
        super().setUp()
        state_dir = self.useFixture(fixtures.TempDir()).path
        # A pool's members share the master's credentials, so every
        # compute of the pool is configured with the same ones.
        self.sim = SimulatedPool(
            hosts=self.hosts,
            state_dir=state_dir,
            pooled=False,
            port=0,
            password='pool-secret',
        )
        self.sim.start()
        self.addCleanup(self.sim.stop)
        self.flags(sync_power_state_interval=-1)
        for number, xen in enumerate(self.sim.hosts, start=1):
            self.start_compute(
                f'xen{number}',
                xenserver={
                    'connection_url': xen.url,
                    'connection_username': xen.username,
                    'connection_password': xen.password,
                    'ca_file': self.sim.ca_file,
                    'pool_reconcile_interval': self.reconcile_interval,
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
        self.flavor_id = self._create_flavor(memory_mb=256, vcpu=1, disk=1)

    # -- helpers --------------------------------------------------------

    def wait_until(self, what, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        self.fail(f'timed out waiting for {what}')

    def create_pool_aggregate(self, name='pool1', zone='xenpool'):
        body = {'name': name}
        if zone:
            body['availability_zone'] = zone
        aggregate = self.api.post_aggregate({'aggregate': body})
        self.api.post_aggregate_action(
            aggregate['id'],
            {
                'set_metadata': {
                    'metadata': {
                        'hypervisor_pool': 'true',
                        'operational_state': 'created',
                    }
                }
            },
        )
        return aggregate['id']

    def aggregate(self, aggregate_id):
        return self.api.api_get(f'/os-aggregates/{aggregate_id}').body[
            'aggregate'
        ]

    def wait_for_metadata(self, aggregate_id, key, value, what=None):
        """The aggregate's metadata once ``key`` reads ``value``."""
        return self.wait_until(
            what or f'{key}={value}',
            lambda: (
                (m := self.aggregate(aggregate_id)['metadata']).get(key)
                == value
                and m
            ),
        )

    def add_host(self, aggregate_id, host):
        self.api.post_aggregate_action(
            aggregate_id, {'add_host': {'host': host}}
        )

    def remove_host(self, aggregate_id, host):
        self.api.post_aggregate_action(
            aggregate_id, {'remove_host': {'host': host}}
        )

    def pool_of(self, xen):
        """(pool record, member addresses) as the simulator sees them."""
        db = self.sim.db(xen)
        (pool,) = db.get_all_records('pool').values()
        hosts = db.get_all_records('host')
        return pool, sorted(h['address'] for h in hosts.values())

    def build_pool(self, zone='xenpool'):
        aggregate_id = self.create_pool_aggregate(zone=zone)
        self.add_host(aggregate_id, 'xen1')
        self.wait_for_metadata(
            aggregate_id, 'master_compute', 'xen1', 'xen1 recorded as master'
        )
        self.add_host(aggregate_id, 'xen2')
        self.add_host(aggregate_id, 'xen3')
        everyone = sorted(h.address for h in self.sim.hosts)
        self.wait_until(
            'all hosts in the pool',
            lambda: (
                self.pool_of(self.sim.hosts[0])[1] == everyone
                and {'xen2', 'xen3'}
                <= set(self.aggregate(aggregate_id)['metadata'])
            ),
        )
        return aggregate_id

    def boot(self, **kwargs):
        server = self._build_server(
            image_uuid=IMAGE_ID,
            flavor_id=self.flavor_id,
            networks='none',
            **kwargs,
        )
        created = self.api.post_server({'server': server})
        return self._wait_for_state_change(created, 'ACTIVE')


class TestPoolFromAggregate(PoolTestCase):
    def test_the_first_host_added_becomes_master_and_names_the_pool(self):
        aggregate_id = self.create_pool_aggregate('gold')
        self.add_host(aggregate_id, 'xen1')
        metadata = self.wait_for_metadata(
            aggregate_id, 'operational_state', 'active', 'the master recorded'
        )
        xen1 = self.sim.hosts[0]
        self.assertEqual('xen1', metadata['master_compute'])
        self.assertEqual(xen1.address, metadata['master_address'])
        self.assertEqual(xen1.uuid, metadata['xen1'])
        pool, members = self.pool_of(xen1)
        self.assertEqual('gold', pool['name_label'])
        self.assertEqual([xen1.address], members)

    def test_further_hosts_join_the_masters_pool(self):
        aggregate_id = self.build_pool()
        metadata = self.aggregate(aggregate_id)['metadata']
        self.assertEqual('active', metadata['operational_state'])
        self.assertEqual(self.sim.hosts[1].uuid, metadata['xen2'])
        self.assertEqual(self.sim.hosts[2].uuid, metadata['xen3'])
        self.assertNotIn('password', str(metadata).lower())
        # Each compute still reports only its own host.
        hypervisors = self.api.api_get('/os-hypervisors/detail').body[
            'hypervisors'
        ]
        self.assertEqual(3, len(hypervisors))
        self.assertEqual(
            3, len({h['hypervisor_hostname'] for h in hypervisors})
        )

    def test_instances_boot_on_members_of_the_pool(self):
        self.build_pool()
        server = self.boot(host='xen3')
        db = self.sim.db(self.sim.hosts[0])
        hosts = db.get_all_records('host')
        (vm,) = [
            rec
            for rec in db.get_all_records('VM').values()
            if rec['other_config'].get('nova_uuid') == server['id']
        ]
        self.assertEqual(
            self.sim.hosts[2].address, hosts[vm['resident_on']]['address']
        )

    def test_removing_an_empty_host_ejects_it(self):
        aggregate_id = self.build_pool()
        self.remove_host(aggregate_id, 'xen3')
        xen3 = self.sim.hosts[2]
        self.wait_until(
            'xen3 ejected',
            lambda: (
                self.pool_of(self.sim.hosts[0])[1]
                == sorted(h.address for h in self.sim.hosts[:2])
            ),
        )
        self.wait_until(
            'xen3 forgotten by the aggregate',
            lambda: 'xen3' not in self.aggregate(aggregate_id)['metadata'],
        )
        self.assertEqual([xen3.address], self.pool_of(xen3)[1])
        # xapi rebooted xen3 into a fresh pool of its own; its compute
        # follows it there, without a restart, and boots on it again.
        session = self.computes['xen3'].driver._session
        self.wait_until(
            'xen3 compute back on its standalone host',
            lambda: (
                session.master_address == xen3.address
                and session.host_ref == xen3.host_ref
            ),
        )
        self.api.microversion = '2.74'
        try:
            server = self.boot(host='xen3')
        finally:
            self.api.microversion = 'latest'
        vms = self.sim.db(xen3).get_all_records('VM').values()
        self.assertEqual(
            [xen3.host_ref],
            [
                vm['resident_on']
                for vm in vms
                if vm['other_config'].get('nova_uuid') == server['id']
            ],
        )

    def test_nova_refuses_to_remove_a_busy_host_from_a_zoned_pool(self):
        """With an availability zone, Nova itself answers 409."""
        aggregate_id = self.build_pool()
        self.boot(host='xen2')
        error = self.assertRaises(
            client.OpenStackApiException,
            self.remove_host,
            aggregate_id,
            'xen2',
        )
        self.assertEqual(409, error.response.status_code)
        self.assertIn(
            self.sim.hosts[1].address, self.pool_of(self.sim.hosts[0])[1]
        )
        self.assertEqual(
            'active',
            self.aggregate(aggregate_id)['metadata']['operational_state'],
        )

    def test_ejecting_a_busy_host_is_refused_and_loses_nothing(self):
        """Without a zone Nova lets the host go; the pool keeps it, says
        why, and ejects it by itself once it is empty."""
        aggregate_id = self.build_pool(zone=None)
        server = self.boot(host='xen2')
        self.remove_host(aggregate_id, 'xen2')
        metadata = self.wait_for_metadata(
            aggregate_id, 'operational_state', 'error', 'the error state'
        )
        self.assertIn('xen2', metadata['operational_state_reason'])
        self.assertIn(server['id'], metadata['operational_state_reason'])
        self.assertIn(
            self.sim.hosts[1].address, self.pool_of(self.sim.hosts[0])[1]
        )
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])
        self._delete_server(server)
        self.wait_until(
            'xen2 ejected',
            lambda: (
                self.sim.hosts[1].address
                not in self.pool_of(self.sim.hosts[0])[1]
            ),
        )
        self.wait_for_metadata(
            aggregate_id,
            'operational_state',
            'active',
            'the aggregate active again',
        )

    def test_aggregates_without_hypervisor_pool_change_nothing(self):
        aggregate = self.api.post_aggregate({'aggregate': {'name': 'plain'}})
        self.add_host(aggregate['id'], 'xen1')
        self.add_host(aggregate['id'], 'xen2')
        time.sleep(2.5)  # two reconciliation intervals: nothing may happen
        self.assertEqual(
            [self.sim.hosts[0].address], self.pool_of(self.sim.hosts[0])[1]
        )
        self.assertEqual({}, self.aggregate(aggregate['id'])['metadata'])


class TestWholePoolWorkflow(PoolTestCase):
    """Issue 5's story in one go, on a pool built only from the API."""

    def resident_address(self, server):
        db = self.sim.db(self.sim.hosts[0])
        hosts = db.get_all_records('host')
        (vm,) = [
            rec
            for rec in db.get_all_records('VM').values()
            if rec['other_config'].get('nova_uuid') == server['id']
        ]
        return hosts[vm['resident_on']]['address']

    def test_build_boot_move_resize_and_shrink_the_pool(self):
        self.flags(allow_resize_to_same_host=False)
        aggregate_id = self.build_pool()
        xen = {f'xen{n}': h.address for n, h in enumerate(self.sim.hosts, 1)}

        moving = self.boot(host='xen1')
        moving = self._live_migrate(moving, host='xen2')
        self.assertEqual('xen2', moving['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(xen['xen2'], self.resident_address(moving))

        resized = self.boot(host='xen3')
        resized = self._migrate_server(resized, host='xen1')
        resized = self._revert_resize(resized)
        self.assertEqual('xen3', resized['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(xen['xen3'], self.resident_address(resized))
        larger = self._create_flavor(memory_mb=512, vcpu=2, disk=2)
        resized = self._resize_server(resized, larger)
        resized = self._confirm_resize(resized)
        self.assertNotEqual('xen3', resized['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(
            xen[resized['OS-EXT-SRV-ATTR:host']],
            self.resident_address(resized),
        )

        # xen2 runs an instance: with its zone, Nova refuses the removal.
        self.assertRaises(
            client.OpenStackApiException,
            self.remove_host,
            aggregate_id,
            'xen2',
        )
        # xen3 is empty now (the resize left it): it leaves and is ejected.
        empty = 'xen3'
        self.assertNotIn(
            empty,
            {s['OS-EXT-SRV-ATTR:host'] for s in (moving, resized)},
        )
        self.remove_host(aggregate_id, empty)
        self.wait_until(
            f'{empty} ejected',
            lambda: xen[empty] not in self.pool_of(self.sim.hosts[0])[1],
        )
        self.assertEqual('ACTIVE', self.api.get_server(moving['id'])['status'])
        self.assertEqual(
            'ACTIVE', self.api.get_server(resized['id'])['status']
        )


class TestJoinFailures(PoolTestCase):
    def test_a_joiner_running_instances_is_an_error_then_joins_when_empty(
        self,
    ):
        """xapi refuses the join; the aggregate says why; once the host is
        empty the next reconciliation joins it without anyone retrying."""
        busy = self.boot(host='xen2')
        aggregate_id = self.create_pool_aggregate(zone=None)
        self.add_host(aggregate_id, 'xen1')
        self.wait_for_metadata(
            aggregate_id, 'master_compute', 'xen1', 'xen1 recorded as master'
        )
        self.add_host(aggregate_id, 'xen2')
        metadata = self.wait_for_metadata(
            aggregate_id, 'operational_state', 'error', 'the error state'
        )
        reason = metadata['operational_state_reason']
        self.assertIn('JOINING_HOST_CANNOT_HAVE_RUNNING', reason)
        self.assertIn('Stop or move the VMs', reason)
        self.assertNotIn('pool-secret', reason)
        self.assertEqual(
            [self.sim.hosts[0].address], self.pool_of(self.sim.hosts[0])[1]
        )
        self._delete_server(busy)
        self.wait_until(
            'xen2 joined',
            lambda: (
                self.sim.hosts[1].address in self.pool_of(self.sim.hosts[0])[1]
            ),
        )
        self.wait_for_metadata(
            aggregate_id,
            'operational_state',
            'active',
            'the aggregate active again',
        )
