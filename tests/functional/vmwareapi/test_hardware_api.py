"""What the flavor and the image ask for, on the VM, as in-tree does.

Image properties and flavor extra specs of Nova's in-tree VMware driver
(vmware_ostype, hw_firmware_type, vmware_adaptertype, hw_vif_model,
vmware:hw_version, hw:cpu_*, quota:*) reach the VM's configuration.
"""

import io
from unittest import mock

from pyVmomi import vim

from nova_hypervisors.vmwareapi import session as vc_session
from tests.functional.vmwareapi import api_base

IMAGE_ID = '2b9e7a0c-5f3d-4f0e-9f61-0d2d7c1a4e21'
PORT_1 = 'ce531f90-199f-48c0-816c-13e38010b442'


class HardwareTest(api_base.VCenterAPITestCase):
    def _image(self, **properties) -> str:
        self.glance.create(
            None,
            {
                'id': IMAGE_ID,
                'name': 'windows-like',
                'status': 'active',
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': 1024 * 1024,
                'visibility': 'public',
                'properties': properties,
            },
            data=io.BytesIO(b'\0' * 1024 * 1024),
        )
        return IMAGE_ID

    def _devices(self, server: dict) -> list:
        return self._vm_props(server, 'config.hardware.device')[
            'config.hardware.device'
        ]

    def test_image_and_flavor_shape_the_vm(self):
        image = self._image(
            vmware_ostype='windows9Server64Guest',
            hw_firmware_type='uefi',
            vmware_adaptertype='lsiLogicsas',
            hw_vif_model='e1000e',
        )
        flavor = self._flavor('shaped', 256, vcpus=2, disk=1)
        self.api.post_extra_spec(
            flavor,
            {
                'extra_specs': {
                    'hw:cpu_sockets': '1',
                    'vmware:hw_version': 'vmx-13',
                    'quota:cpu_limit': '2000',
                    'quota:cpu_reservation': '500',
                    'quota:memory_shares_level': 'custom',
                    'quota:memory_shares_share': '4000',
                    'quota:disk_io_limit': '300',
                    'quota:disk_io_reservation': '100',
                    'quota:vif_limit': '1000',
                    'quota:vif_shares_level': 'high',
                }
            },
        )
        port = self.neutron._ports[PORT_1]
        for key, value in (
            ('binding:vif_type', 'dvs'),
            ('binding:vif_details', {'dvs_port_group_name': 'DC0_DVPG0'}),
        ):
            self.addCleanup(port.__setitem__, key, port[key])
            port[key] = value
        server = self._boot_active(
            image=image, flavor_id=flavor, networks=[{'port': PORT_1}]
        )
        props = self._vm_props(
            server,
            'config.guestId',
            'config.firmware',
            'config.version',
            'config.hardware.numCoresPerSocket',
            'config.cpuAllocation',
            'config.memoryAllocation',
            'config.extraConfig',
        )
        self.assertEqual('windows9Server64Guest', props['config.guestId'])
        self.assertEqual('efi', props['config.firmware'])
        self.assertEqual('vmx-13', props['config.version'])
        self.assertEqual(2, props['config.hardware.numCoresPerSocket'])
        cpu = props['config.cpuAllocation']
        self.assertEqual((2000, 500), (cpu.limit, cpu.reservation))
        memory = props['config.memoryAllocation']
        self.assertEqual(
            ('custom', 4000), (memory.shares.level, memory.shares.shares)
        )
        extra = {o.key: o.value for o in props['config.extraConfig']}
        self.assertEqual('true', extra['disk.EnableUUID'])
        devices = self._devices(server)
        self.assertTrue(
            any(
                isinstance(d, vim.vm.device.VirtualLsiLogicSASController)
                for d in devices
            )
        )
        (card,) = [
            d
            for d in devices
            if isinstance(d, vim.vm.device.VirtualEthernetCard)
        ]
        self.assertIsInstance(card, vim.vm.device.VirtualE1000e)
        # quota:vif_* on every card, quota:disk_io_* on every disk (IOPS),
        # as in-tree's _create_vif_spec and _create_virtual_disk_spec.
        self.assertEqual(1000, card.resourceAllocation.limit)
        self.assertEqual('high', card.resourceAllocation.share.level)
        (disk,) = [
            d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)
        ]
        self.assertEqual(
            (300, 100),
            (
                disk.storageIOAllocation.limit,
                disk.storageIOAllocation.reservation,
            ),
        )

    def test_an_ide_root_disk(self):
        # ESXi gives a new VM its IDE controllers; their keys are not the
        # CreateVM spec's to assume (review C5).  As in-tree, the IDE disk
        # and CD-ROM are added once the VM exists, on the controllers it
        # has: the CreateVM spec refers to no controller it does not add.
        specs = []
        invoke = vc_session.VCenterSession.invoke

        def recording(session, managed_object, method, *args, **kwargs):
            if method == 'CreateVM_Task':
                specs.append(kwargs['config'])
            return invoke(session, managed_object, method, *args, **kwargs)

        image = self._image(vmware_adaptertype='ide')
        with mock.patch.object(vc_session.VCenterSession, 'invoke', recording):
            server = self._boot_active(image=image, config_drive=True)
        # The instance's VM, and the seed VM of the thin copy that sizes
        # the image (thin_copy.ThinCopier): neither refers to a controller
        # it does not add.
        self.assertIn(
            f'{server["name"]} ({server["id"]})', [spec.name for spec in specs]
        )
        for spec in specs:
            added = {change.device.key for change in spec.deviceChange}
            for change in spec.deviceChange:
                if change.device.controllerKey is not None:
                    self.assertIn(change.device.controllerKey, added)
        devices = self._devices(server)
        ide = {
            d.key
            for d in devices
            if isinstance(d, vim.vm.device.VirtualIDEController)
        }
        root = next(
            d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)
        )
        cdrom = next(
            d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)
        )
        self.assertIn(root.controllerKey, ide)
        self.assertIn(cdrom.controllerKey, ide)
        self.assertNotEqual(
            (root.controllerKey, root.unitNumber),
            (cdrom.controllerKey, cdrom.unitNumber),
        )

    def test_an_unknown_nic_model_is_refused_before_anything_is_made(self):
        self.flags(max_attempts=1, group='scheduler')
        image = self._image(hw_vif_model='rtl8139')
        server = self._wait_for_state_change(self._boot(image=image), 'ERROR')
        self.assertIn('rtl8139', server['fault']['message'])
        self.assertIsNone(self._vm(server))

    compute_errors_expected = True
