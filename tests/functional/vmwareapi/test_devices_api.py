"""Devices and placement of a server's VM, through Nova's API.

A Neutron port becomes a vmxnet3 card with the port's MAC on the port group
Neutron bound it to (vcsim has the standard network 'VM Network' and the
distributed port group 'DC0_DVPG0'); a config drive becomes an ISO on the
VM's datastore directory, attached as a CD-ROM; with DRS off, the driver
picks the host of the cluster with the most memory left.
"""

import os
import shutil

from nova.tests import fixtures as nova_fixtures
import pytest
from pyVmomi import vim

from nova_hypervisors.vmwareapi import datastore
from tests.functional.vmwareapi import api_base

PORT_1 = 'ce531f90-199f-48c0-816c-13e38010b442'
NETWORK_1 = '3cb9bc59-5699-4588-a4b1-b87f96708bc6'


def require_genisoimage() -> None:
    """Nova builds config drives with genisoimage; CI must have it."""
    if shutil.which('genisoimage'):
        return
    message = 'genisoimage is missing: apt-get install genisoimage'
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
        pytest.fail(message)
    pytest.skip(message)


class DevicesTest(api_base.VCenterAPITestCase):
    def _set(self, mapping: dict, key: str, value: object) -> None:
        """Change fixture data for this test only (NeutronFixture shares
        its dicts between tests)."""
        old = mapping[key]
        mapping[key] = value
        self.addCleanup(mapping.__setitem__, key, old)

    def _cards(self, server: dict) -> list:
        devices = self._vm_props(server, 'config.hardware.device')[
            'config.hardware.device'
        ]
        return [
            d
            for d in devices
            if isinstance(d, vim.vm.device.VirtualEthernetCard)
        ]

    def _port_group_key(self, name: str) -> str:
        found = self.admin.view_properties(
            self.admin.content.rootFolder,
            {vim.dvs.DistributedVirtualPortgroup: ['name', 'key']},
        )
        return next(p['key'] for p in found.values() if p['name'] == name)

    def test_a_dvs_port_lands_on_its_distributed_port_group(self):
        port = self.neutron._ports[PORT_1]
        self._set(port, 'binding:vif_type', 'dvs')
        self._set(
            port,
            'binding:vif_details',
            {'dvs_port_group_name': 'DC0_DVPG0'},
        )
        server = self._boot_active(networks=[{'port': PORT_1}])

        (card,) = self._cards(server)
        self.assertIsInstance(card, vim.vm.device.VirtualVmxnet3)
        self.assertEqual(port['mac_address'], card.macAddress)
        self.assertEqual(PORT_1, card.externalId)
        self.assertIsInstance(
            card.backing,
            vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo,
        )
        self.assertEqual(
            self._port_group_key('DC0_DVPG0'), card.backing.port.portgroupKey
        )

    def test_a_port_lands_on_the_standard_network_named_like_its_own(self):
        self._set(self.neutron._networks[NETWORK_1], 'name', 'VM Network')
        server = self._boot_active(networks=[{'port': PORT_1}])

        (card,) = self._cards(server)
        self.assertEqual(
            self.neutron._ports[PORT_1]['mac_address'], card.macAddress
        )
        self.assertIsInstance(
            card.backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo
        )
        self.assertEqual('VM Network', card.backing.deviceName)

    def test_a_move_to_the_other_cluster_puts_the_card_on_its_network(self):
        """Neutron binds the port for the destination host; the relocation
        puts the card on the network of that binding, in the destination
        cluster (RelocateSpec.deviceChange, as in-tree's update_vif_spec;
        our vcsim applies it since patch 0012), keeping its MAC."""
        self._set(self.neutron._networks[NETWORK_1], 'name', 'VM Network')
        server = self._boot_active(networks=[{'port': PORT_1}])
        (card,) = self._cards(server)
        self.assertIsInstance(
            card.backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo
        )
        port = self.neutron._ports[PORT_1]
        self._set(port, 'binding:vif_type', 'dvs')
        self._set(
            port,
            'binding:vif_details',
            {'dvs_port_group_name': 'DC0_DVPG0'},
        )

        server = self._confirm_resize(self._migrate_server(server))
        (moved,) = self._cards(server)
        self.assertEqual(card.key, moved.key)
        self.assertEqual(port['mac_address'], moved.macAddress)
        self.assertIsInstance(
            moved.backing,
            vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo,
        )
        self.assertEqual(
            self._port_group_key('DC0_DVPG0'), moved.backing.port.portgroupKey
        )

    def test_a_port_on_no_known_network_fails_the_boot_cleanly(self):
        """Neutron's 'private' network has no port group in vCenter: the
        fault names it and nothing is left behind in vCenter."""
        self.compute_errors_expected = True
        # One attempt: the fault is then the driver's, not "retries
        # exhausted" (and NeutronFixture cannot unbind for a reschedule).
        self.flags(max_attempts=1, group='scheduler')
        server = self._wait_for_state_change(
            self._boot(networks=[{'port': PORT_1}]), 'ERROR'
        )
        self.assertIn('private', server['fault']['message'])
        self.assertIsNone(self._vm(server))

    def test_a_config_drive_is_an_iso_cdrom_with_the_metadata(self):
        require_genisoimage()
        server = self._boot_active(config_drive=True)
        self.api.microversion = '2.48'  # structured diagnostics
        diagnostics = self.api.api_get(
            f'/servers/{server["id"]}/diagnostics'
        ).body
        self.assertTrue(diagnostics['config_drive'])
        self.assertEqual('running', diagnostics['state'])

        devices = self._vm_props(server, 'config.hardware.device')[
            'config.hardware.device'
        ]
        (cdrom,) = [
            d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)
        ]
        iso_path = cdrom.backing.fileName
        self.assertTrue(iso_path.endswith(f'{server["id"]}/configdrive.iso'))
        files = datastore.DatastoreFiles(self.admin, None, 'DC0')
        iso = b''.join(files.download(iso_path))
        self.assertEqual(b'CD001', iso[0x8001:0x8006])  # ISO 9660
        self.assertIn(b'config-2', iso[0x8028:0x8048])  # its volume label
        self.assertIn(server['id'].encode(), iso)

        self._delete_server(server)
        self.assertFalse(files.exists(iso_path))


class HostChoiceTest(api_base.VCenterAPITestCase):
    """With DRS off in cluster DC0_C0 the driver names the host."""

    vcsim_options = {'datastores': 2, 'unmounted_datastore': 'LocalDS_1'}

    def setUp(self) -> None:
        super().setUp()
        self.api.microversion = '2.74'  # boots on a named host
        found = self.admin.view_properties(
            self.admin.content.rootFolder,
            {vim.ClusterComputeResource: ['name']},
        )
        (cluster,) = [r for r, p in found.items() if p['name'] == 'DC0_C0']
        spec = vim.cluster.ConfigSpecEx(
            drsConfig=vim.cluster.DrsConfigInfo(enabled=False)
        )
        self.admin.wait_for_task(
            self.admin.invoke(
                cluster,
                'ReconfigureComputeResource_Task',
                spec=spec,
                modify=True,
            )
        )

    def _hosts(self, cluster_name: str) -> dict:
        found = self.admin.view_properties(
            self.admin.content.rootFolder,
            {vim.ClusterComputeResource: ['name', 'host', 'resourcePool']},
        )
        cluster = next(p for p in found.values() if p['name'] == cluster_name)
        names = self.admin.properties(
            cluster['host'], vim.HostSystem, ['name']
        )
        return {
            props['name']: (ref, cluster['resourcePool'])
            for ref, props in names.items()
        }

    def _memory_hog(self, host: object, pool: object, memory_mb: int) -> None:
        """A powered-on VM outside Nova, taking memory of one host."""
        folder = self.admin.view_properties(
            self.admin.content.rootFolder, {vim.Datacenter: ['vmFolder']}
        )
        vm_folder = next(iter(folder.values()))['vmFolder']
        spec = vim.vm.ConfigSpec(
            name='memory-hog',
            memoryMB=memory_mb,
            numCPUs=1,
            guestId='otherGuest64',
            files=vim.vm.FileInfo(vmPathName='[LocalDS_0] memory-hog'),
        )
        vm = self.admin.wait_for_task(
            self.admin.invoke(
                vm_folder, 'CreateVM_Task', config=spec, pool=pool, host=host
            )
        )
        self.admin.wait_for_task(self.admin.invoke(vm, 'PowerOnVM_Task'))

    def test_drs_off_puts_the_vm_on_a_host_that_mounts_its_datastore(self):
        """LocalDS_1 is not on the first host of the cluster: even with the
        most memory left, that host cannot run a VM whose files are there
        (patches/0007-create-vm-needs-a-host-that-mounts-the-datastore)."""
        hosts = self._hosts('DC0_C0')
        (first, (first_ref, pool)), (second, (second_ref, _)) = sorted(
            hosts.items()
        )
        self._memory_hog(second_ref, pool, 3072)
        # LocalDS_0 in maintenance: the VM's files must go to LocalDS_1.
        found = self.admin.view_properties(
            self.admin.content.rootFolder, {vim.Datastore: ['name']}
        )
        (local0,) = [r for r, p in found.items() if p['name'] == 'LocalDS_0']
        self.admin.invoke(local0, 'DatastoreEnterMaintenanceMode')
        server = self._boot_active(host='compute1')

        host = self._vm_props(server, 'runtime.host')['runtime.host']
        name = self.admin.properties([host], vim.HostSystem, ['name'])[host]
        self.assertEqual(second, name['name'])
        disk = self._root_disk(server).backing.fileName
        self.assertTrue(disk.startswith('[LocalDS_1] '), disk)

    def test_drs_off_puts_the_vm_on_the_host_with_most_memory_left(self):
        hosts = self._hosts('DC0_C0')
        (busy, (busy_ref, pool)), (free, _) = sorted(hosts.items())
        self._memory_hog(busy_ref, pool, 3072)
        server = self._boot_active(host='compute1')

        host = self._vm_props(server, 'runtime.host')['runtime.host']
        name = self.admin.properties([host], vim.HostSystem, ['name'])[host]
        self.assertEqual(free, name['name'])


class NSXSegmentTest(api_base.VCenterAPITestCase):
    """NSX-T segments on VDS 7 are distributed port groups carrying the
    segment's logical switch uuid (vcsim's NSX-backed port groups)."""

    vcsim_options = {'nsx_portgroups': 1}

    def test_a_port_bound_to_a_segment_lands_on_its_port_group(self):
        found = self.admin.view_properties(
            self.admin.content.rootFolder,
            {
                vim.dvs.DistributedVirtualPortgroup: [
                    'key',
                    'config.backingType',
                    'config.logicalSwitchUuid',
                ]
            },
        )
        (segment,) = [
            props
            for props in found.values()
            if props.get('config.backingType') == 'nsx'
        ]
        port = self.neutron._ports[PORT_1]
        for key, value in (
            ('binding:vif_type', 'other'),
            (
                'binding:vif_details',
                {'nsx-logical-switch-id': segment['config.logicalSwitchUuid']},
            ),
        ):
            old = port[key]
            port[key] = value
            self.addCleanup(port.__setitem__, key, old)
        server = self._boot_active(networks=[{'port': PORT_1}])
        devices = self._vm_props(server, 'config.hardware.device')[
            'config.hardware.device'
        ]
        (card,) = [
            d
            for d in devices
            if isinstance(d, vim.vm.device.VirtualEthernetCard)
        ]
        self.assertIsInstance(
            card.backing,
            vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo,
        )
        self.assertEqual(segment['key'], card.backing.port.portgroupKey)


class ExtraDisksTest(api_base.VCenterAPITestCase):
    def test_the_flavors_ephemeral_and_swap_disks_are_created(self):
        flavor = self.api.post_flavor(
            {
                'flavor': {
                    'name': 'with-extras',
                    'ram': 128,
                    'vcpus': 1,
                    'disk': 1,
                    'OS-FLV-EXT-DATA:ephemeral': 2,
                    'swap': 512,
                }
            }
        )['id']
        server = self._boot_active(flavor_id=flavor)
        devices = self._vm_props(server, 'config.hardware.device')[
            'config.hardware.device'
        ]
        disks = {
            d.backing.fileName.rsplit('/', 1)[-1]: d.capacityInKB
            for d in devices
            if isinstance(d, vim.vm.device.VirtualDisk)
        }
        self.assertEqual(
            {
                f'{server["id"]}.vmdk': 1024 * 1024,
                'ephemeral_0.vmdk': 2 * 1024 * 1024,
                'swap.vmdk': 512 * 1024,
            },
            disks,
        )
        self._delete_server(server)


class BootFromVolumeTest(api_base.VCenterAPITestCase):
    compute_errors_expected = True

    def test_a_boot_volume_vsphere_cannot_attach_fails_cleanly(self):
        """The fixture's volume is of type ``fake``, not ``vmdk``: ERROR
        with a reason, nothing created."""
        self.flags(max_attempts=1, group='scheduler')
        server = self._build_server(networks='none')
        server.pop('imageRef', None)
        server['block_device_mapping_v2'] = [
            {
                'boot_index': 0,
                'uuid': nova_fixtures.CinderFixture.IMAGE_BACKED_VOL,
                'source_type': 'volume',
                'destination_type': 'volume',
            }
        ]
        created = self.api.post_server({'server': server})
        found = self._wait_for_state_change(created, 'ERROR')
        self.assertTrue(found['fault']['message'])
        self.assertIsNone(self._vm(found))
