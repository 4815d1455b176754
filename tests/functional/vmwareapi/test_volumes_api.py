"""Cinder ``vmdk`` volumes through the Nova API on vcsim.

Cinder's VMDK driver keeps a volume as the disk of a powered-off shadow
VM; the tests make such a VM with pyVmomi, as Cinder does
(``cinder/volume/drivers/vmware/volumeops.py``, ``create_backing``), and
Nova's CinderFixture hands its moref to the compute, as Cinder's
``initialize_connection`` does.
"""

import fixtures
from nova import context
from nova import objects
from nova.tests.functional.api import client as api_client
from pyVmomi import vim

from nova_hypervisors.demo import vcenter_view
from nova_hypervisors.simulators import iscsi_target
from nova_hypervisors.vmwareapi import lookup
from tests.functional.vmwareapi import api_base

VOLUME_A = 'a1a1a1a1-0000-4000-8000-00000000000a'
VOLUME_B = 'b1b1b1b1-0000-4000-8000-00000000000b'
ISCSI_IQN = 'iqn.2010-10.org.openstack:vcenter-volumes'


class VolumeTestCase(api_base.VCenterAPITestCase):
    def shadow_vm(self, volume_id, datastore='LocalDS_0', controller=None):
        """A powered-off VM with one thin disk, named after the volume."""
        node = self.compute1.driver._node
        admin = self.admin
        dc = admin.moref(vim.Datacenter, node.datacenter._moId)
        folder = admin.properties([dc], vim.Datacenter, ['vmFolder'])[dc][
            'vmFolder'
        ]
        name = 'volume-%s' % volume_id
        spec, path = vcenter_view.shadow_vm_spec(name, datastore, controller)
        pool = admin.moref(vim.ResourcePool, node.resource_pool._moId)
        task = admin.invoke(folder, 'CreateVM_Task', config=spec, pool=pool)
        shadow = admin.wait_for_task(task)
        self.cinder.VOLUME_CONNECTION_INFO = dict(
            self.cinder.VOLUME_CONNECTION_INFO,
            **{
                volume_id: {
                    'driver_volume_type': 'vmdk',
                    'data': {
                        'volume': shadow._moId,
                        'volume_id': volume_id,
                        'name': name,
                    },
                }
            },
        )
        return shadow, path

    def attach(self, server, volume_id):
        self.api.post_server_volume(
            server['id'], {'volumeAttachment': {'volumeId': volume_id}}
        )
        self.notifier.wait_for_versioned_notifications(
            'instance.volume_attach.end'
        )

    def detach(self, server, volume_id):
        # Nova detaches through the driver only where CONF.host is the
        # instance's host (block_device.DriverVolumeBlockDevice); in this
        # one process, CONF.host is the compute started last.  Each real
        # nova-compute has its own.
        host = self.api.get_server(server['id'])['OS-EXT-SRV-ATTR:host']
        self.flags(host=host)
        self.api.delete_server_volume(server['id'], volume_id)
        self._wait_for_volume_detach(server['id'], volume_id)

    def disks(self, server):
        devices = self._vm_props(server, 'config.hardware.device')[
            'config.hardware.device'
        ]
        return [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]

    def disk_files(self, server):
        return [d.backing.fileName for d in self.disks(server)]

    def volume_option(self, server, volume_id):
        key = 'volume-%s' % volume_id
        found = self._vm_props(server, 'config.extraConfig')[
            'config.extraConfig'
        ]
        return {o.key: o.value for o in found}.get(key)

    def file_exists(self, path):
        return self.compute1.driver._vmops._files.exists(path)


class TestAttachDetach(VolumeTestCase):
    def test_a_volume_is_hot_added_to_a_running_server_and_removed(self):
        server = self._boot_active()
        shadow, path = self.shadow_vm(VOLUME_A)
        self.attach(server, VOLUME_A)
        self.assertEqual('poweredOn', self._power_state(server))
        self.assertIn(path, self.disk_files(server))
        self.assertEqual(path, self.volume_option(server, VOLUME_A))
        self.detach(server, VOLUME_A)
        self.assertNotIn(path, self.disk_files(server))
        self.assertFalse(self.volume_option(server, VOLUME_A))
        # The volume's file and its shadow VM are Cinder's: untouched.
        self.assertTrue(self.file_exists(path))
        shadow_devices = self.admin.properties(
            [shadow], vim.VirtualMachine, ['config.hardware.device']
        )[shadow]['config.hardware.device']
        self.assertIn(
            path,
            [
                d.backing.fileName
                for d in shadow_devices
                if isinstance(d, vim.vm.device.VirtualDisk)
            ],
        )

    def test_a_stopped_server_gets_the_volume_too(self):
        server = self._boot_active()
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')
        _, path = self.shadow_vm(VOLUME_A)
        self.attach(server, VOLUME_A)
        self.assertIn(path, self.disk_files(server))
        self.api.post_server_action(server['id'], {'os-start': None})
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.detach(server, VOLUME_A)
        self.assertNotIn(path, self.disk_files(server))

    def test_two_volumes_take_two_units(self):
        server = self._boot_active()
        _, path_a = self.shadow_vm(VOLUME_A)
        _, path_b = self.shadow_vm(VOLUME_B)
        self.attach(server, VOLUME_A)
        self.attach(server, VOLUME_B)
        slots = {
            d.backing.fileName: (d.controllerKey, d.unitNumber)
            for d in self.disks(server)
        }
        self.assertNotEqual(slots[path_a], slots[path_b])
        self.assertEqual(3, len(slots))

    def test_deleting_a_server_keeps_its_volumes_files(self):
        server = self._boot_active()
        _, path = self.shadow_vm(VOLUME_A)
        self.attach(server, VOLUME_A)
        root = self._root_disk(server).backing.fileName
        self._delete_server(server)
        self.assertTrue(self.file_exists(path))
        self.assertFalse(self.file_exists(root))

    def test_the_connector_names_the_instances_vm(self):
        server = self._boot_active()
        vm = self._vm(server)
        instance = self._get_instance(server)
        connector = self.compute1.driver.get_volume_connector(instance)
        self.assertEqual(vm._moId, connector['instance'])

    def _get_instance(self, server):
        return objects.Instance.get_by_uuid(
            context.get_admin_context(), server['id']
        )


class TestIDEVolumes(VolumeTestCase):
    """vSphere adds and removes IDE disks only while a VM is off; SCSI
    disks it hot-removes without asking the guest, so no guest can hold
    one busy.  The driver says so before vCenter refuses."""

    compute_errors_expected = True

    def test_an_ide_volume_stays_on_the_running_server_until_it_stops(self):
        server = self._boot_active()
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')
        _, path = self.shadow_vm(VOLUME_A, controller=200)
        self.attach(server, VOLUME_A)
        self.api.post_server_action(server['id'], {'os-start': None})
        server = self._wait_for_state_change(server, 'ACTIVE')
        host = self.api.get_server(server['id'])['OS-EXT-SRV-ATTR:host']
        self.flags(host=host)
        try:
            self.api.delete_server_volume(server['id'], VOLUME_A)
        except api_client.OpenStackApiException:
            # The harness runs the compute's cast as a call.
            pass
        self.assertIn(
            'vSphere removes no IDE disk from a running VM',
            self.stdlog.logger.output,
        )
        self.assertIn(path, self.disk_files(server))
        self.assertEqual(
            [VOLUME_A],
            [v['volumeId'] for v in self.api.get_server_volumes(server['id'])],
        )
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')
        self.detach(server, VOLUME_A)
        self.assertNotIn(path, self.disk_files(server))


class TestBootFromVolume(VolumeTestCase):
    def test_the_volume_is_the_root_disk_and_stays_after_delete(self):
        _, path = self.shadow_vm(VOLUME_A)
        server = self._build_server(
            flavor_id=api_base.DEFAULT_FLAVOR, networks='none'
        )
        server.pop('imageRef', None)
        server['block_device_mapping_v2'] = [
            {
                'boot_index': 0,
                'uuid': VOLUME_A,
                'source_type': 'volume',
                'destination_type': 'volume',
            }
        ]
        server = self._wait_for_state_change(
            self.api.post_server({'server': server}), 'ACTIVE'
        )
        self.assertEqual('poweredOn', self._power_state(server))
        root = self._root_disk(server)
        self.assertEqual(path, root.backing.fileName)
        self.assertEqual(0, root.unitNumber)
        self._delete_server(server)
        self.assertTrue(self.file_exists(path))


class TestVolumeErrors(VolumeTestCase):
    compute_errors_expected = True

    def test_a_gone_shadow_vm_fails_the_attach_cleanly(self):
        server = self._boot_active()
        shadow, path = self.shadow_vm(VOLUME_A)
        self.admin.invoke(shadow, 'UnregisterVM')
        self.assertRaises(
            api_client.OpenStackApiException,
            self.api.post_server_volume,
            server['id'],
            {'volumeAttachment': {'volumeId': VOLUME_A}},
        )
        self.notifier.wait_for_versioned_notifications(
            'instance.volume_attach.error'
        )
        self.assertEqual([], self.api.get_server_volumes(server['id']))
        self.assertNotIn(path, self.disk_files(server))
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])


class TestVolumesMove(VolumeTestCase):
    """The VM moves between clusters with RelocateVM_Task; its volume disk
    stays where it is (both clusters mount the datastore), attached."""

    def assert_moves_with_volume(self, move):
        server = self._boot_active()
        source = self._cluster_of(server)
        _, path = self.shadow_vm(VOLUME_A)
        self.attach(server, VOLUME_A)
        server = move(server)
        self.assertNotEqual(source, self._cluster_of(server))
        self.assertIn(path, self.disk_files(server))
        self.assertEqual('poweredOn', self._power_state(server))
        self.detach(server, VOLUME_A)
        self.assertNotIn(path, self.disk_files(server))
        self.assertTrue(self.file_exists(path))

    def test_live_migration_keeps_the_volume(self):
        self.assert_moves_with_volume(self._live_migrate)

    def test_cold_migration_keeps_the_volume(self):
        self.assert_moves_with_volume(
            lambda server: self._confirm_resize(self._migrate_server(server))
        )

    def test_resize_keeps_the_volume(self):
        bigger = self._flavor('bigger', 256, vcpus=2, disk=2)
        self.assert_moves_with_volume(
            lambda server: self._confirm_resize(
                self._resize_server(server, bigger)
            )
        )


class ISCSIVolumeTestCase(VolumeTestCase):
    """Cinder ``iscsi`` volumes: LUNs of the simulated array, found by the
    hosts' software iSCSI adapters and attached as raw device mappings."""

    def setUp(self):
        super().setUp()
        root = self.useFixture(fixtures.TempDir()).path
        self.array = iscsi_target.StorageArray(root).start()
        self.addCleanup(self.array.stop)
        # vSphere's initiator is given no CHAP by Nova (in-tree neither).
        self.array.add_target(ISCSI_IQN)

    def iscsi_volume(self, volume_id, lun, portal=None):
        self.array.create_lun(ISCSI_IQN, lun, 1 << 30)
        self.cinder.VOLUME_CONNECTION_INFO = dict(
            self.cinder.VOLUME_CONNECTION_INFO,
            **{
                volume_id: {
                    'driver_volume_type': 'iscsi',
                    'data': {
                        'target_portal': portal or self.array.portal,
                        'target_iqn': ISCSI_IQN,
                        'target_lun': lun,
                        'volume_id': volume_id,
                    },
                }
            },
        )
        return self.array.lun(ISCSI_IQN, lun)['scsi_id']

    def rdms(self, server):
        return [
            d
            for d in self.disks(server)
            if isinstance(
                d.backing,
                vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo,
            )
        ]

    def send_targets(self):
        """{host name: [portal, ...]} of every host's iSCSI adapter."""
        hosts = self.admin.view_properties(
            self.admin.content.rootFolder,
            {
                vim.HostSystem: [
                    'name',
                    'config.storageDevice.hostBusAdapter',
                ]
            },
        )
        found = {}
        for props in hosts.values():
            for hba in props['config.storageDevice.hostBusAdapter']:
                if isinstance(hba, vim.host.InternetScsiHba):
                    found[props['name']] = [
                        '%s:%d' % (t.address, t.port)
                        for t in hba.configuredSendTarget or []
                    ]
        return found


class TestISCSIVolumes(ISCSIVolumeTestCase):
    def test_a_lun_is_attached_as_a_raw_device_mapping_and_removed(self):
        server = self._boot_active()
        scsi_id = self.iscsi_volume(VOLUME_A, 1)
        self.attach(server, VOLUME_A)
        (rdm,) = self.rdms(server)
        self.assertEqual(
            '/vmfs/devices/disks/naa.' + scsi_id[1:], rdm.backing.deviceName
        )
        self.assertEqual('physicalMode', rdm.backing.compatibilityMode)
        self.assertEqual(
            rdm.backing.lunUuid, self.volume_option(server, VOLUME_A)
        )
        # Every host of the server's cluster knows the portal: DRS may
        # move the VM to any of them.
        cluster_hosts = [
            portals for name, portals in self.send_targets().items() if portals
        ]
        self.assertEqual(2, len(cluster_hosts))
        for portals in cluster_hosts:
            self.assertEqual([self.array.portal], portals)
        self.detach(server, VOLUME_A)
        self.assertEqual([], self.rdms(server))
        self.assertFalse(self.volume_option(server, VOLUME_A))

    def test_the_connector_names_the_hosts_initiator(self):
        server = self._boot_active()
        instance = objects.Instance.get_by_uuid(
            context.get_admin_context(), server['id']
        )
        connector = self.compute1.driver.get_volume_connector(instance)
        self.assertTrue(
            connector['initiator'].startswith('iqn.1998-01.com.vmware:')
        )

    def test_boot_from_an_iscsi_volume_puts_the_lun_at_unit_0(self):
        self.iscsi_volume(VOLUME_A, 1)
        server = self._build_server(
            flavor_id=api_base.DEFAULT_FLAVOR, networks='none'
        )
        server.pop('imageRef', None)
        server['block_device_mapping_v2'] = [
            {
                'boot_index': 0,
                'uuid': VOLUME_A,
                'source_type': 'volume',
                'destination_type': 'volume',
            }
        ]
        server = self._wait_for_state_change(
            self.api.post_server({'server': server}), 'ACTIVE'
        )
        (rdm,) = self.rdms(server)
        self.assertEqual(0, rdm.unitNumber)
        self._delete_server(server)


class TestISCSIVolumesMove(ISCSIVolumeTestCase):
    """A server with a LUN moves to the other cluster: that cluster's
    hosts must see the LUN first (vSphere maps a raw device only on a
    host that found it), and the RDM goes along."""

    def assert_moves_with_lun(self, move):
        server = self._boot_active()
        source = self._cluster_of(server)
        scsi_id = self.iscsi_volume(VOLUME_A, 1)
        self.attach(server, VOLUME_A)
        server = move(server)
        self.assertNotEqual(source, self._cluster_of(server))
        (rdm,) = self.rdms(server)
        self.assertTrue(rdm.backing.lunUuid.endswith(scsi_id))
        # Every host of both clusters knows the portal now.
        self.assertEqual(
            [[self.array.portal]] * 4, list(self.send_targets().values())
        )
        self.detach(server, VOLUME_A)
        self.assertEqual([], self.rdms(server))

    def test_live_migration_keeps_the_lun(self):
        self.assert_moves_with_lun(self._live_migrate)

    def test_cold_migration_keeps_the_lun(self):
        self.assert_moves_with_lun(
            lambda server: self._confirm_resize(self._migrate_server(server))
        )

    def test_a_stopped_server_gets_the_lun_at_its_next_start(self):
        server = self._boot_active()
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')
        self.iscsi_volume(VOLUME_A, 1)
        self.attach(server, VOLUME_A)
        self.assertEqual(1, len(self.rdms(server)))
        self.api.post_server_action(server['id'], {'os-start': None})
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual(1, len(self.rdms(server)))

    def test_deleting_a_server_keeps_the_luns_bytes(self):
        server = self._boot_active()
        self.iscsi_volume(VOLUME_A, 1)
        self.array.write(ISCSI_IQN, 1, b'kept')
        self.attach(server, VOLUME_A)
        self._delete_server(server)
        self.assertEqual(b'kept', self.array.read(ISCSI_IQN, 1, 4))
        self.assertIsNone(lookup.find_vm(self.admin, server['id']))


class TestExtend(ISCSIVolumeTestCase):
    compute_errors_expected = True

    def lun_capacity(self, server, scsi_id):
        """Bytes of the LUN as the server's host sees it."""
        host = self._vm_props(server, 'runtime.host')['runtime.host']
        luns = self.admin.properties(
            [host], vim.HostSystem, ['config.storageDevice.scsiLun']
        )[host]['config.storageDevice.scsiLun']
        (lun,) = [
            lun for lun in luns if lun.uuid.endswith(scsi_id)
        ]  # fmt: skip
        return lun.capacity.block * lun.capacity.blockSize

    def test_a_vmdk_volume_grows_on_the_running_server(self):
        server = self._boot_active()
        _, path = self.shadow_vm(VOLUME_A)
        self.attach(server, VOLUME_A)
        self.volume_extended(server, VOLUME_A, 2)
        (disk,) = [d for d in self.disks(server) if d.backing.fileName == path]
        self.assertEqual(2 * vcenter_view.GIB_KB, disk.capacityInKB)
        self.assertEqual('poweredOn', self._power_state(server))

    def test_a_grown_lun_is_rescanned_on_every_host(self):
        server = self._boot_active()
        scsi_id = self.iscsi_volume(VOLUME_A, 1)
        self.attach(server, VOLUME_A)
        self.assertEqual(1 << 30, self.lun_capacity(server, scsi_id))
        self.array.extend_lun(ISCSI_IQN, 1, 2 << 30)
        self.volume_extended(server, VOLUME_A, 2)
        self.assertEqual(2 << 30, self.lun_capacity(server, scsi_id))
        (rdm,) = self.rdms(server)
        self.assertEqual(scsi_id, rdm.backing.lunUuid[-len(scsi_id) :])

    def test_a_lun_the_array_did_not_grow_fails_the_extend(self):
        server = self._boot_active()
        self.iscsi_volume(VOLUME_A, 1)
        self.attach(server, VOLUME_A)
        self.volume_extended(server, VOLUME_A, 2, result='Error')
        self.assertIn(
            'the LUN is 1073741824 bytes after a rescan, not 2147483648',
            self.stdlog.logger.output,
        )
        self.assertEqual(1, len(self.rdms(server)))


class TestISCSIVolumeFaults(ISCSIVolumeTestCase):
    compute_errors_expected = True

    def test_an_unreachable_portal_fails_the_attach_and_leaves_nothing(self):
        server = self._boot_active()
        dead = iscsi_target.StorageArray(
            self.useFixture(fixtures.TempDir()).path
        ).start()
        portal = dead.portal
        dead.stop()
        self.iscsi_volume(VOLUME_A, 1, portal=portal)
        self.assertRaises(
            api_client.OpenStackApiException,
            self.api.post_server_volume,
            server['id'],
            {'volumeAttachment': {'volumeId': VOLUME_A}},
        )
        self.notifier.wait_for_versioned_notifications(
            'instance.volume_attach.error'
        )
        self.assertEqual([], self.api.get_server_volumes(server['id']))
        self.assertEqual([], self.rdms(server))
        # The send targets this attach added are gone again.
        self.assertEqual(
            [[]] * len(self.send_targets()),
            list(self.send_targets().values()),
        )
        self.assertIn('was not found', self.stdlog.logger.output)

    def test_vcenter_moves_a_mapping_only_to_a_host_that_found_its_lun(self):
        """vSphere vMotion requirements: an RDM's LUN must be visible to
        the destination host, or vCenter refuses the relocation (vcsim
        patch 0021); nothing about the VM changes."""
        server = self._boot_active()
        self.iscsi_volume(VOLUME_A, 1)
        self.attach(server, VOLUME_A)
        vm = self._vm(server)
        before = self._vm_props(server, 'runtime.host')['runtime.host']
        cluster = self._cluster_of(server)
        other = (
            self.compute2 if cluster == 'DC0_C0' else self.compute1
        ).driver._node
        hosts = self.admin.properties(
            [other.cluster], vim.ComputeResource, ['host']
        )[other.cluster]['host']
        pool = self.admin.moref(vim.ResourcePool, other.resource_pool._moId)
        task = self.admin.invoke(
            vm,
            'RelocateVM_Task',
            spec=vim.vm.RelocateSpec(host=hosts[0], pool=pool),
        )
        with self.assertRaises(Exception) as caught:
            self.admin.wait_for_task(task)
        self.assertIn('InvalidDeviceBacking', repr(caught.exception))
        self.assertEqual(
            before, self._vm_props(server, 'runtime.host')['runtime.host']
        )
        self.assertEqual(cluster, self._cluster_of(server))

    def test_vcenter_refuses_a_mapping_of_a_lun_the_host_never_found(self):
        """vSphere API (VirtualMachine.ReconfigVM_Task with a raw device
        mapping): a device the VM's host does not have is refused with
        InvalidDeviceBacking (vcsim patch 0017)."""
        server = self._boot_active()
        vm = self._vm(server)
        rdm = vim.vm.device.VirtualDisk(
            key=-1,
            controllerKey=self._root_disk(server).controllerKey,
            unitNumber=5,
            backing=vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo(
                deviceName='/vmfs/devices/disks/naa.6001405nothere',
                compatibilityMode='physicalMode',
                diskMode='independent_persistent',
                fileName='',
            ),
        )
        task = self.admin.invoke(
            vm,
            'ReconfigVM_Task',
            spec=vim.vm.ConfigSpec(
                deviceChange=[
                    vim.vm.device.VirtualDeviceSpec(
                        operation='add', fileOperation='create', device=rdm
                    )
                ]
            ),
        )
        with self.assertRaises(Exception) as caught:
            self.admin.wait_for_task(task)
        self.assertIn('InvalidDeviceBacking', repr(caught.exception))
