"""The cluster's capacity as Placement inventory (no wire involved)."""

import types
import unittest

from nova import exception
from oslo_utils import units

from nova_hypervisors.vmwareapi import cluster

RATIOS = {'VCPU': 4.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}
NO_RESERVE = {'VCPU': 0, 'MEMORY_MB': 0, 'DISK_GB': 0}


def host(name, memory_mb=4096, cpus=2, state='connected', maint=False):
    return name, {
        'name': name,
        'summary.hardware.memorySize': memory_mb * units.Mi,
        'summary.hardware.numCpuThreads': cpus,
        'runtime.connectionState': state,
        'runtime.inMaintenanceMode': maint,
    }


def vm(on_host, memory_mb, power='poweredOn', cpus=1):
    return {
        'runtime.host': on_host,
        'runtime.powerState': power,
        'summary.config.memorySizeMB': memory_mb,
        'summary.config.numCpu': cpus,
    }


def datastore(
    name,
    capacity_gb,
    free_gb,
    accessible=True,
    kind='VMFS',
    maintenance='normal',
    mounted_on=(),
):
    return name, {
        'host': [
            types.SimpleNamespace(
                key=host_name, mountInfo=types.SimpleNamespace(mounted=True)
            )
            for host_name in mounted_on
        ],
        'summary.name': name,
        'summary.capacity': capacity_gb * units.Gi,
        'summary.freeSpace': free_gb * units.Gi,
        'summary.accessible': accessible,
        'summary.type': kind,
        'summary.maintenanceMode': maintenance,
    }


class TestInventory(unittest.TestCase):
    def capacity(self, hosts, vms=(), datastores=(), regex=None):
        return cluster.capacity_from_properties(
            dict(hosts), cluster.host_usage(vms), list(datastores), regex
        )

    def test_max_unit_is_the_largest_single_host_not_the_total(self):
        cap = self.capacity(
            [host('h0'), host('h1')], datastores=[datastore('ds', 100, 50)]
        )
        inv = cluster.placement_inventory(cap, RATIOS, NO_RESERVE, None)
        self.assertEqual(8192, inv['MEMORY_MB']['total'])
        self.assertEqual(4096, inv['MEMORY_MB']['max_unit'])
        self.assertEqual(4, inv['VCPU']['total'])
        self.assertEqual(2, inv['VCPU']['max_unit'])

    def test_powered_on_vms_reduce_what_their_host_can_take(self):
        cap = self.capacity(
            [host('h0'), host('h1')],
            vms=[
                vm('h0', 3000),
                vm('h1', 1000),
                vm('h1', 2000, power='poweredOff'),
            ],
        )
        inv = cluster.placement_inventory(cap, RATIOS, NO_RESERVE, None)
        self.assertEqual(3096, inv['MEMORY_MB']['max_unit'])

    def test_hosts_in_maintenance_or_disconnected_do_not_count(self):
        cap = self.capacity(
            [
                host('h0', memory_mb=8192, maint=True),
                host('h1', memory_mb=16384, state='disconnected'),
                host('h2', memory_mb=2048),
            ]
        )
        inv = cluster.placement_inventory(cap, RATIOS, NO_RESERVE, None)
        self.assertEqual(2048, inv['MEMORY_MB']['total'])
        self.assertEqual(2048, inv['MEMORY_MB']['max_unit'])

    def test_vcpu_max_unit_is_a_hosts_threads_under_overcommit(self):
        """3,000 one-vCPU VMs on 64-thread hosts: a 2-vCPU flavor still
        fits (Nova's default VCPU ratio is 4.0)."""
        hosts = [host('h%d' % i, cpus=64, memory_mb=1 << 20) for i in range(3)]
        vms = [vm('h%d' % (i % 3), 32, cpus=1) for i in range(3000)]
        cap = self.capacity(hosts, vms=vms)
        ratios = dict(RATIOS, VCPU=4.0)
        inv = cluster.placement_inventory(cap, ratios, NO_RESERVE, None)
        self.assertEqual(64, inv['VCPU']['max_unit'])
        self.assertEqual(192, inv['VCPU']['total'])

    def test_memory_max_unit_under_overcommit_is_a_hosts_room(self):
        """With a ratio above 1 a host takes more than its memory in all,
        and what it still takes is its share of that."""
        hosts = [host('h0', memory_mb=4096), host('h1', memory_mb=4096)]
        vms = [vm('h0', 5000), vm('h1', 1000)]
        cap = self.capacity(hosts, vms=vms)
        ratios = dict(RATIOS, MEMORY_MB=1.5)
        inv = cluster.placement_inventory(cap, ratios, NO_RESERVE, None)
        self.assertEqual(6144 - 1000, inv['MEMORY_MB']['max_unit'])

    def test_allocation_ratio_and_reserved_are_honoured(self):
        cap = self.capacity([host('h0')])
        ratios = dict(RATIOS, MEMORY_MB=1.5)
        reserved = dict(NO_RESERVE, MEMORY_MB=512, VCPU=1)
        inv = cluster.placement_inventory(cap, ratios, reserved, None)
        self.assertEqual(512, inv['MEMORY_MB']['reserved'])
        self.assertEqual(1.5, inv['MEMORY_MB']['allocation_ratio'])
        self.assertEqual(6144, inv['MEMORY_MB']['max_unit'])
        self.assertEqual(1, inv['VCPU']['reserved'])

    def test_disk_comes_from_datastores_matching_the_regex(self):
        cap = self.capacity(
            [host('h0')],
            datastores=[
                datastore('nova-a', 100, 10),
                datastore('nova-b', 200, 80),
                datastore('other', 1000, 900),
                datastore('nova-gone', 500, 500, accessible=False),
            ],
            regex='nova-',
        )
        inv = cluster.placement_inventory(cap, RATIOS, NO_RESERVE, 'nova-')
        self.assertEqual(300, inv['DISK_GB']['total'])
        self.assertEqual(80, inv['DISK_GB']['max_unit'])
        self.assertEqual('nova-b', cluster.best_datastore(cap).name)

    def test_a_datastore_shared_with_other_clusters_counts_once(self):
        """Each cluster reports its hosts' part of a shared datastore, so
        the nova-computes of both clusters add up to it once (review B9);
        one disk can still take the whole free space."""
        shared = datastore(
            'nfs', 400, 100, mounted_on=['h0', 'h1', 'other0', 'other1']
        )
        own = datastore('local', 100, 50, mounted_on=['h0'])
        cap = self.capacity([host('h0'), host('h1')], datastores=[shared, own])
        inv = cluster.placement_inventory(cap, RATIOS, NO_RESERVE, None)
        self.assertEqual(200 + 100, inv['DISK_GB']['total'])
        self.assertEqual(100, inv['DISK_GB']['max_unit'])
        node = cluster.Node(
            types.SimpleNamespace(_moId='domain-c7'),
            'C',
            *[None] * 5,
            'u',
            '8.0.2',
        )
        report = cluster.available_resource(cap, node)
        self.assertEqual(300, report['local_gb'])
        self.assertEqual(150 + 50, report['local_gb_used'])

    def test_datastores_in_maintenance_or_unwritable_are_skipped(self):
        """The one being evacuated is the emptiest; vSAN and vVol take no
        flat disks: neither may win."""
        cap = self.capacity(
            [host('h0')],
            datastores=[
                datastore(
                    'evacuating', 1000, 999, maintenance='inMaintenance'
                ),
                datastore('vsan', 900, 900, kind='vsan'),
                datastore('vvol', 900, 900, kind='VVOL'),
                datastore('other', 900, 900, kind='OTHER'),
                datastore('nfs', 200, 100, kind='NFS41'),
                datastore('vmfs', 100, 50),
            ],
        )
        self.assertEqual(['nfs', 'vmfs'], [ds.name for ds in cap.datastores])
        self.assertEqual('nfs', cluster.best_datastore(cap).name)

    def test_no_matching_datastore_is_reported_not_a_crash(self):
        cap = self.capacity(
            [host('h0')], datastores=[datastore('x', 1, 1)], regex='nomatch'
        )
        with self.assertLogs('nova_hypervisors.vmwareapi.cluster') as logs:
            inv = cluster.placement_inventory(
                cap, RATIOS, NO_RESERVE, 'nomatch'
            )
        self.assertNotIn('DISK_GB', inv)
        self.assertIn('datastore_regex', logs.output[0])
        self.assertRaises(
            exception.DatastoreNotFound, cluster.best_datastore, cap
        )
