"""Instances through the Nova REST API on a simulated XenServer host.

Everything a user meets is real: nova-api, conductor, scheduler, placement,
the compute manager, our driver loaded by name, the unmodified XenAPI
client over HTTP, and xapi's HTTP disk handlers on the simulator, which
keeps real disk bytes.  Each test checks the outcome on the simulator too:
what Nova says must be what the hypervisor holds.
"""

import hashlib
import io
import struct
import time
import types
from unittest import mock
import urllib.parse

import fixtures
from nova import exception
from nova.console import websocketproxy
from nova.tests.functional.api import client
import XenAPI

from nova_hypervisors.simulators.xapi import SimulatedPool
from nova_hypervisors.xenapi import vifs
from tests.functional import base
from tests.functional.xapi_sim import helpers as sim_helpers

# 1 MiB of recognisable bytes: a "disk" whose every block differs.
RAW = b''.join(hashlib.sha256(b'%d' % i).digest() for i in range(32768))
IMAGE_ID = '5e1f0000-0000-4000-8000-000000000001'


class XenAPITestCase(base.NovaAPITestCase):
    """One simulated XenServer host managed by one nova-compute."""

    compute_driver = base.XENAPI_DRIVER
    host_memory_mib = 8192
    #: False: the host has only its local SR (its default SR).
    shared_sr = True
    #: False: guests run no guest tools.
    guest_tools = True
    #: [xenserver] options of the compute service beyond the connection.
    xenserver_options: dict = {}

    def setUp(self):
        super().setUp()
        state_dir = self.useFixture(fixtures.TempDir()).path
        self.sim = SimulatedPool(
            hosts=1,
            state_dir=state_dir,
            pooled=False,
            port=0,
            host_memory_mib=self.host_memory_mib,
            shared_sr=self.shared_sr,
            guest_tools=self.guest_tools,
        )
        self.sim.start()
        self.addCleanup(self.sim.stop)
        self.xen = self.sim.hosts[0]
        self.flags(sync_power_state_interval=-1)
        self.compute = self.start_compute(
            'compute1',
            xenserver={
                'connection_url': self.xen.url,
                'connection_username': self.xen.username,
                'connection_password': self.xen.password,
                'ca_file': self.sim.ca_file,
                'running_timeout': 30,
                'clean_reboot_timeout': 5,
                # xapi's plain-HTTP port (80 on a real host).
                'console_port': self.xen.http_port,
                **self.xenserver_options,
            },
        )
        self.addCleanup(self.compute.stop)
        self.glance.create(
            None,
            {
                'id': IMAGE_ID,
                'name': 'raw-image',
                'status': 'active',
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': len(RAW),
                'properties': {},
            },
            data=io.BytesIO(RAW),
        )
        self._keep_uploaded_bytes()
        # disk=0: the root disk is the image's size, so byte comparisons
        # stay small (admin may boot zero-disk flavors).
        self.flavor_id = self._create_flavor(
            memory_mb=512, vcpu=1, disk=0, ephemeral=0
        )

    def _keep_uploaded_bytes(self):
        """Nova's Glance fixture drops the data of an update; keep it."""
        glance = self.glance
        original = glance.update

        def update(context, image_id, metadata, data=None, purge_props=False):
            image = original(
                context, image_id, metadata, purge_props=purge_props
            )
            if data is not None:
                payload = data.read()
                glance._imagedata[image_id] = payload
                image['size'] = len(payload)
                image['status'] = 'active'
            return image

        self.stub_out(
            'nova.tests.fixtures.GlanceFixture.update',
            lambda _self, *a, **kw: update(*a, **kw),
        )

    # -- helpers --------------------------------------------------------

    def boot(self, image_id=IMAGE_ID, expect='ACTIVE', **kw):
        server = self._build_server(
            image_uuid=image_id,
            flavor_id=kw.pop('flavor_id', self.flavor_id),
            networks=kw.pop('networks', 'none'),
        )
        created = self.api.post_server({'server': server})
        return self._wait_for_state_change(created, expect)

    def xapi(self) -> XenAPI.Session:
        session = sim_helpers.client(self.sim.master)
        session.login_with_password(
            self.xen.username, self.xen.password, '1.0', 'test'
        )
        self.addCleanup(session.xenapi.session.logout)
        return session

    def records(self, cls):
        return self.sim.db(self.xen).get_all_records(cls)

    def vm_of(self, server):
        for ref, rec in self.records('VM').items():
            if rec['other_config'].get('nova_uuid') == server['id']:
                return ref, rec
        return None

    def disk_bytes(self, vdi_ref, length):
        session = self.xapi()
        conn = sim_helpers.connect(self.sim.master)
        conn.request(
            'GET',
            '/export_raw_vdi?'
            + urllib.parse.urlencode(
                {
                    'vdi': vdi_ref,
                    'format': 'raw',
                    'session_id': session._session,
                }
            ),
        )
        response = conn.getresponse()
        self.assertEqual(200, response.status)
        data = response.read(length)
        conn.close()
        return data

    def _wait_for_image(self, name, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for image in self.glance.images.values():
                if (
                    image.get('name') == name
                    and image['id'] in self.glance._imagedata
                ):
                    return image
            time.sleep(0.1)
        self.fail('image %s never uploaded' % name)

    def root_vdi(self, vm_record):
        for vbd_ref in vm_record['VBDs']:
            vbd = self.records('VBD')[vbd_ref]
            if vbd['userdevice'] == '0':
                return vbd['VDI']
        self.fail('no root disk')

    def assert_nothing_left(self, server_id):
        """No VM, disk, VIF or task of the instance is left on the host."""
        for rec in self.records('VM').values():
            self.assertNotIn(server_id, rec['other_config'].values())
        for rec in self.records('VDI').values():
            self.assertNotEqual(
                server_id, rec['other_config'].get('nova_instance_uuid')
            )
        self.assertEqual({}, self.records('VIF'))
        self.assertEqual({}, self.records('task'))

    def wait_for_power(self, server, state, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.api.get_server(server['id'])
            if found['status'] == state:
                return found
            time.sleep(0.1)
        self.fail('server did not become %s, is %s' % (state, found['status']))


class TestServerLifecycle(XenAPITestCase):
    def test_boot_runs_the_vm_on_this_host_with_the_image_bytes(self):
        server = self.boot()
        _, vm = self.vm_of(server)
        self.assertEqual('Running', vm['power_state'])
        self.assertEqual(self.xen.host_ref, vm['resident_on'])
        self.assertEqual(512 << 20, int(vm['memory_static_max']))
        self.assertEqual(RAW, self.disk_bytes(self.root_vdi(vm), len(RAW)))
        self.assertEqual(
            self.xen.url.split('//')[1].split(':')[0], self.xen.address
        )

    def test_metadata_keys_xenstore_refuses_are_sanitised_and_boot(self):
        server = self._build_server(
            image_uuid=IMAGE_ID, flavor_id=self.flavor_id, networks='none'
        )
        server['metadata'] = {'my.key': 'a', 'with space': 'b', 'a:b': 'c'}
        created = self.api.post_server({'server': server})
        server = self._wait_for_state_change(created, 'ACTIVE')
        _, vm = self.vm_of(server)
        self.assertEqual('Running', vm['power_state'])
        user = {
            key.rpartition('/')[2]: value
            for key, value in vm['xenstore_data'].items()
            if key.startswith('vm-data/user-metadata/')
        }
        self.assertEqual({'my_key': 'a', 'with_space': 'b', 'a_b': 'c'}, user)

    def test_the_vnc_console_reaches_the_vm_through_novas_own_proxy(self):
        server = self.boot()
        self.api.microversion = '2.6'
        console = self.api.api_post(
            '/servers/%s/remote-consoles' % server['id'],
            {'remote_console': {'protocol': 'vnc', 'type': 'novnc'}},
        ).body['remote_console']
        query = urllib.parse.parse_qs(
            urllib.parse.urlsplit(console['url']).query
        )
        path = urllib.parse.urlsplit(query['path'][0])
        token = urllib.parse.parse_qs(path.query)['token'][0]

        # Nova's proxy handler, minus the browser's websocket: it checks the
        # token and the port with the compute service, connects to the
        # host, sends CONNECT and hands the socket to do_proxy.
        handler = websocketproxy.NovaProxyRequestHandler.__new__(
            websocketproxy.NovaProxyRequestHandler
        )
        handler._compute_rpcapi = None
        handler.path = '/?token=%s' % token
        handler.headers = {}
        handler.server = types.SimpleNamespace(security_proxy=None)
        handler.msg = handler.vmsg = lambda *args, **kwargs: None
        greeting = []

        def do_proxy(target):
            greeting.append(target.recv(12))
            target.close()

        handler.do_proxy = do_proxy
        # Only the eventlet hub reset of a forked proxy worker is skipped.
        with mock.patch.object(
            websocketproxy.utils,
            'concurrency_mode_threading',
            return_value=True,
        ):
            handler.new_websocket_client()
        self.assertEqual([b'RFB 003.008\n'], greeting)

    def test_power_actions_reach_the_vm(self):
        server = self.boot()
        ref, _ = self.vm_of(server)

        def power():
            return self.records('VM')[ref]['power_state']

        self._reboot_server(server)
        self._reboot_server(server, hard=True)
        self.assertEqual('Running', power())
        self._stop_server(server)
        self.assertEqual('Halted', power())
        self._start_server(server)
        self.assertEqual('Running', power())
        self.api.post_server_action(server['id'], {'pause': None})
        self._wait_for_state_change(server, 'PAUSED')
        self.assertEqual('Paused', power())
        self.api.post_server_action(server['id'], {'unpause': None})
        self._wait_for_state_change(server, 'ACTIVE')
        self._suspend_server(server)
        self.assertEqual('Suspended', power())
        self._resume_server(server)
        self.assertEqual('Running', power())

    def test_rescue_and_unrescue_keep_the_root_disk_bytes(self):
        server = self.boot()
        ref, vm = self.vm_of(server)
        root = self.root_vdi(vm)
        before = self.disk_bytes(root, len(RAW))
        self._rescue_server(server)
        self.assertEqual('Halted', self.records('VM')[ref]['power_state'])
        rescue = [
            r
            for r in self.records('VM').values()
            if r['other_config'].get('nova_rescue_of') == server['id']
        ]
        self.assertEqual(['Running'], [r['power_state'] for r in rescue])
        self._unrescue_server(server)
        vm = self.records('VM')[ref]
        self.assertEqual('Running', vm['power_state'])
        # The instance boots from its own root disk, bytes unchanged.
        self.assertEqual(root, self.root_vdi(vm))
        self.assertEqual(before, self.disk_bytes(root, len(RAW)))
        self.assertEqual(
            ['root'],
            [
                r['other_config']['nova_disk_type']
                for r in self.records('VDI').values()
                if r['other_config'].get('nova_instance_uuid') == server['id']
            ],
        )
        self.assertEqual(
            1,
            len(
                [
                    r
                    for r in self.records('VM').values()
                    if server['id'] in r['other_config'].values()
                ]
            ),
        )

    def test_an_image_of_a_server_boots_a_byte_identical_disk(self):
        server = self.boot()
        self._snapshot_server(server, 'snap')
        image = self._wait_for_image('snap')
        clone = self.boot(image_id=image['id'])
        _, vm = self.vm_of(clone)
        self.assertEqual(RAW, self.disk_bytes(self.root_vdi(vm), len(RAW)))

    def test_a_shutdown_made_on_the_host_reaches_nova_as_an_event(self):
        server = self.boot()
        ref, _ = self.vm_of(server)
        self.xapi().xenapi.VM.hard_shutdown(ref)
        self.wait_for_power(server, 'SHUTOFF', timeout=10)

    def test_delete_leaves_nothing_on_the_host(self):
        server = self.boot(networks=[{'port': self.neutron.port_1['id']}])
        _, vm = self.vm_of(server)
        self.assertEqual(1, len(vm['VIFs']))
        vif = self.records('VIF')[vm['VIFs'][0]]
        self.assertEqual(
            self.neutron.port_1['id'], vif['other_config']['nicira-iface-id']
        )
        self._delete_server(server)
        self.assert_nothing_left(server['id'])

    def test_the_integration_bridge_network_is_unmanaged(self):
        server = self.boot(networks=[{'port': self.neutron.port_1['id']}])
        _, vm = self.vm_of(server)
        vif = self.records('VIF')[vm['VIFs'][0]]
        network = self.records('network')[vif['network']]
        self.assertEqual('br-int', network['bridge'])
        # Open vSwitch owns br-int: xapi must never manage (destroy) it.
        self.assertFalse(network['managed'])

    def test_a_network_made_meanwhile_by_another_compute_is_used(self):
        """BRIDGE_NAME_EXISTS after our lookup: re-read, use theirs."""
        theirs = self.xapi().xenapi.network.create(
            {
                'name_label': 'br-int',
                'name_description': 'made by another compute',
                'MTU': '1500',
                'other_config': {},
                'bridge': 'br-int',
                'managed': False,
                'tags': [],
            }
        )
        real = vifs.network_of_bridge
        calls = []

        def stale_first(session, bridge):
            calls.append(bridge)
            return None if len(calls) == 1 else real(session, bridge)

        with mock.patch.object(vifs, 'network_of_bridge', stale_first):
            server = self.boot(networks=[{'port': self.neutron.port_1['id']}])
        _, vm = self.vm_of(server)
        self.assertEqual(theirs, self.records('VIF')[vm['VIFs'][0]]['network'])
        self._delete_server(server)
        # Not ours to destroy.
        self.assertIn(theirs, self.records('network'))

    def test_the_console_log_is_unavailable_without_the_dom0_plugin(self):
        server = self.boot()
        with self.assertRaises(client.OpenStackApiException) as caught:
            self.api.post_server_action(
                server['id'], {'os-getConsoleOutput': {'length': 10}}
            )
        self.assertIn(caught.exception.response.status_code, (404, 409))

    def test_diagnostics_report_what_the_records_carry(self):
        server = self.boot()
        self.api.microversion = '2.48'
        diags = self.api.api_get('/servers/%s/diagnostics' % server['id']).body
        self.assertEqual('running', diags['state'])
        self.assertEqual(
            [{'id': 0, 'time': None, 'utilisation': None}],
            diags['cpu_details'],
        )
        self.assertEqual(512, diags['memory_details']['maximum'])

    def test_the_hypervisor_reports_the_hosts_resources(self):
        hypervisors = self.api.api_get('/os-hypervisors/detail').body[
            'hypervisors'
        ]
        self.assertEqual(
            ['xenserver-1'], [h['hypervisor_hostname'] for h in hypervisors]
        )
        self.assertEqual(self.xen.uuid, hypervisors[0]['id'])
        inventories = self.placement.get(
            '/resource_providers/%s/inventories' % self.xen.uuid
        ).body
        memory = inventories['inventories']['MEMORY_MB']
        self.assertEqual(self.host_memory_mib, memory['total'])


class TestServerLifecycleOnLocalStorage(TestServerLifecycle):
    """The same, on a host whose only SR is its local storage."""

    shared_sr = False

    def test_the_instance_disks_are_on_the_local_sr(self):
        server = self.boot()
        _, vm = self.vm_of(server)
        sr = self.records('SR')[self.records('VDI')[self.root_vdi(vm)]['SR']]
        self.assertEqual('ext', sr['type'])
        self.assertFalse(sr['shared'])


class TestFailures(XenAPITestCase):
    host_memory_mib = 4096

    def setUp(self):
        # One attempt: the build failure itself becomes the server's fault.
        self.flags(max_attempts=1, group='scheduler')
        super().setUp()

    def test_a_bad_image_format_is_refused_before_anything_is_created(self):
        self.glance.create(
            None,
            {
                'id': '5e1f0000-0000-4000-8000-0000000000c2',
                'name': 'qcow',
                'status': 'active',
                'disk_format': 'qcow2',
                'container_format': 'bare',
                'size': 10,
                'properties': {},
            },
            data=io.BytesIO(b'QFI\xfb' + b'\0' * 6),
        )
        vdis = set(self.records('VDI'))
        server = self.boot(
            image_id='5e1f0000-0000-4000-8000-0000000000c2', expect='ERROR'
        )
        self.assertIn('qcow2', server['fault']['message'])
        self.assertEqual(vdis, set(self.records('VDI')))
        self.assert_nothing_left(server['id'])

    def _image(self, image_id, **fields):
        image = {
            'id': image_id,
            'name': image_id,
            'status': 'active',
            'disk_format': 'raw',
            'container_format': 'bare',
            'size': len(RAW),
            'properties': {},
        }
        image.update(fields)
        self.glance.create(None, image, data=io.BytesIO(RAW))
        return image_id

    def test_an_ovf_container_is_refused_before_anything_is_created(self):
        # What the old in-tree driver uploaded: a tgz of a VHD chain.
        image_id = self._image(
            '5e1f0000-0000-4000-8000-0000000000c4',
            disk_format='vhd',
            container_format='ovf',
        )
        vdis = set(self.records('VDI'))
        server = self.boot(image_id=image_id, expect='ERROR')
        self.assertIn('container format', server['fault']['message'])
        self.assertEqual(vdis, set(self.records('VDI')))
        self.assert_nothing_left(server['id'])

    def test_a_pv_image_is_not_booted_on_an_hvm_only_pool(self):
        image_id = self._image(
            '5e1f0000-0000-4000-8000-0000000000c5',
            properties={'hw_vm_mode': 'xen'},
        )
        server = self.boot(image_id=image_id, expect='ERROR')
        self.assert_nothing_left(server['id'])
        self.assertEqual(
            [],
            [
                rec
                for rec in self.records('VDI').values()
                if rec['other_config'].get('nova_image_cache') == image_id
            ],
        )

    def test_a_corrupt_vhd_fails_on_the_import_task_and_leaves_nothing(self):
        # xapi answers 200 before reading an import; only the task tells
        # that the VHD was refused.
        head = bytearray(512)
        head[:8] = b'conectix'
        struct.pack_into('>Q', head, 48, 1 << 20)
        data = bytes(head) + b'\xff' * 3584
        image_id = '5e1f0000-0000-4000-8000-0000000000c3'
        self.glance.create(
            None,
            {
                'id': image_id,
                'name': 'corrupt',
                'status': 'active',
                'disk_format': 'vhd',
                'container_format': 'bare',
                'size': len(data),
                'properties': {},
            },
            data=io.BytesIO(data),
        )
        server = self.boot(image_id=image_id, expect='ERROR')
        self.assertIn('IMPORT_ERROR', server['fault']['message'])
        self.assert_nothing_left(server['id'])
        self.assertEqual(
            [],
            [
                r
                for r in self.records('VDI').values()
                if r['other_config'].get('nova_image_cache') == image_id
            ],
        )

    def test_a_vm_the_host_cannot_fit_ends_in_error_and_leaves_nothing(self):
        # Placement believes in overcommit, the host does not.
        big = self._create_flavor(memory_mb=3000, vcpu=1, disk=0, ephemeral=0)
        self.flags(ram_allocation_ratio=4.0)
        self.boot(flavor_id=big)
        server = self.boot(flavor_id=big, expect='ERROR')
        self.assertIn(
            'HOST_NOT_ENOUGH_FREE_MEMORY',
            server['fault']['message'],
        )
        self.assert_nothing_left_but_one(server['id'])

    def assert_nothing_left_but_one(self, server_id):
        for rec in self.records('VM').values():
            self.assertNotIn(server_id, rec['other_config'].values())
        for rec in self.records('VDI').values():
            self.assertNotEqual(
                server_id, rec['other_config'].get('nova_instance_uuid')
            )
        self.assertEqual({}, self.records('task'))

    def test_faults_half_way_leave_nothing_behind(self):
        for method in ('VDI.clone', 'VM.create', 'VBD.create', 'VM.start_on'):
            with self.subTest(method=method):
                self.sim.faults.fail_next(
                    method, 1, ['INTERNAL_ERROR', 'injected']
                )
                server = self.boot(expect='ERROR')
                self.assertIn('INTERNAL_ERROR', server['fault']['message'])
                self.assert_nothing_left(server['id'])

    def test_a_busy_vm_is_tried_again_a_permanent_failure_is_not(self):
        """OTHER_OPERATION_IN_PROGRESS and TOO_BUSY end a task without
        doing anything: xapi means "try again shortly"
        (ocaml/xapi/xapi_vm_lifecycle.ml, check_operation_error), so the
        start runs again; a permanent failure ends the action at once."""
        server = self.boot()
        server = self._stop_server(server)
        ref, _ = self.vm_of(server)
        self.sim.faults.fail_next(
            'VM.start_on',
            1,
            ['OTHER_OPERATION_IN_PROGRESS', 'VM', ref, 'clean_reboot'],
        )
        self.sim.faults.fail_next('VM.start_on', 1, ['TOO_BUSY'])
        before = self.sim.faults.calls('VM.start_on')
        server = self._start_server(server)
        self.assertEqual(3, self.sim.faults.calls('VM.start_on') - before)
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])

        server = self._stop_server(server)
        self.sim.faults.fail_next(
            'VM.start_on', 1, ['VM_BAD_POWER_STATE', ref, 'halted', 'running']
        )
        before = self.sim.faults.calls('VM.start_on')
        # The harness runs the cast synchronously: the error comes back.
        with self.assertRaises(client.OpenStackApiException):
            self.api.post_server_action(server['id'], {'os-start': None})
        self.assertEqual(1, self.sim.faults.calls('VM.start_on') - before)
        self.assertEqual('Halted', self.vm_of(server)[1]['power_state'])

    def _boot_with_every_disk(self, flavor, expect='ACTIVE'):
        server = self._build_server(
            image_uuid=IMAGE_ID, flavor_id=flavor, networks='none'
        )
        server['config_drive'] = True
        created = self.api.post_server({'server': server})
        return self._wait_for_state_change(created, expect)

    def test_a_failure_after_the_start_halts_the_vm_and_leaves_nothing(self):
        """The undo halts the VM before anything else: xapi refuses to
        unplug or destroy the VBDs and VDIs of a running VM
        (OPERATION_NOT_ALLOWED, VDI_IN_USE), so a failure once the VM has
        started used to leave its root, swap, ephemeral and config drive
        disks behind.  The failure is in the wait for the start task (the
        last task a boot awaits), found by tracing a boot."""
        flavor = self._create_flavor(
            memory_mb=512, vcpu=1, disk=0, ephemeral=1, swap=64
        )
        # One boot fills the image cache, the next is traced.
        self._delete_server(self._boot_with_every_disk(flavor))
        before = self.sim.faults.calls('task.get_record')
        traced = self._boot_with_every_disk(flavor)
        awaited = self.sim.faults.calls('task.get_record') - before
        self._delete_server(traced)

        self.sim.faults.fail_next(
            'task.get_record',
            1,
            ['INTERNAL_ERROR', 'injected'],
            after=awaited - 1,
        )
        server = self._boot_with_every_disk(flavor, expect='ERROR')
        self.assertIn('INTERNAL_ERROR', server['fault']['message'])
        self.assert_nothing_left(server['id'])
        # The undo itself removed everything; Nova's destroy found nothing.
        log = self.stdlog.logger.output
        self.assertIn('removing what it created', log)
        self.assertNotIn('after a failed spawn failed', log)
        self.assertNotIn('left without a VM', log)

    def test_destroy_finds_disks_left_without_a_vm(self):
        """Disks are found by their tag, not only through the VM: a VM
        removed behind Nova's back leaves its disks, and deleting the
        server removes them."""
        flavor = self._create_flavor(
            memory_mb=512, vcpu=1, disk=0, ephemeral=1, swap=64
        )
        server = self._boot_with_every_disk(flavor)
        ref, _ = self.vm_of(server)
        xapi = self.xapi().xenapi
        xapi.VM.hard_shutdown(ref)
        xapi.VM.destroy(ref)
        tagged = [
            rec['name_label']
            for rec in self.records('VDI').values()
            if rec['other_config'].get('nova_instance_uuid') == server['id']
        ]
        self.assertEqual(4, len(tagged), tagged)
        self._delete_server(server)
        self.assert_nothing_left(server['id'])

    def test_sessions_expired_at_each_disk_transfer_are_survived(self):
        """xapi's HTTP handlers check session_id themselves and answer 401
        for an expired one (Xapi_http.with_context); nothing logs in again
        there.  Each transfer is made once more with a session xapi has
        just accepted: the image import, the config drive upload and the
        snapshot export."""
        # The image import (the image cache is cold).
        self.sim.faults.expire_sessions_on('import_raw_vdi')
        server = self.boot()
        _, vm = self.vm_of(server)
        self.assertEqual(RAW, self.disk_bytes(self.root_vdi(vm), len(RAW)))
        # The config drive upload (the image is cached by now).
        flavor = self._create_flavor(
            memory_mb=512, vcpu=1, disk=0, ephemeral=1, swap=64
        )
        self.sim.faults.expire_sessions_on('import_raw_vdi')
        with_drive = self._boot_with_every_disk(flavor)
        # The snapshot export.
        self.sim.faults.expire_sessions_on('export_raw_vdi')
        self._snapshot_server(server, 'snap-after-expiry')
        image = self._wait_for_image('snap-after-expiry')
        self.assertTrue(self.glance._imagedata[image['id']])
        self.assertEqual(
            3,
            self.stdlog.logger.output.count('refused a transfer session'),
        )
        for done in (server, with_drive):
            self._delete_server(done)
            self.assert_nothing_left(done['id'])

    def test_session_refs_of_automatic_logins_are_scrubbed(self):
        """A session ref is root on the pool: those of the XenAPI client's
        own logins after SESSION_INVALID are scrubbed from faults and logs
        like the first ones."""
        self.boot()
        self.sim.faults.expire_sessions()
        self.boot()  # the client logged in again by itself
        ours = [
            ref
            for ref, rec in self.records('session').items()
            if rec['originator'] == 'nova-compute'
        ]
        self.assertTrue(ours)
        self.sim.faults.fail_next(
            'VM.create', 1, ['INTERNAL_ERROR', 'sessions ' + ' '.join(ours)]
        )
        server = self.boot(expect='ERROR')
        self.assertIn('sessions', server['fault']['message'])
        for ref in ours:
            self.assertNotIn(ref, server['fault']['message'])
            self.assertNotIn(ref, self.stdlog.logger.output)

    def test_a_session_expiry_in_the_middle_of_a_boot_is_survived(self):
        self.sim.faults.expire_sessions()
        self.sim.faults.fail_next(
            'VM.create', 1, ['SESSION_INVALID', 'OpaqueRef:expired']
        )
        server = self.boot()
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])


class TestMasterLoss(XenAPITestCase):
    """A compute whose pool master is gone takes itself out of scheduling
    (the service disabled, its reason starting with "AUTO:", as Nova's
    libvirt driver does for a lost connection) and comes back by itself."""

    xenserver_options = {'unreachable_grace': 1}

    def test_the_service_is_disabled_while_the_master_is_gone(self):
        self.sim.faults.stop_host(self.xen.name)
        service = self.wait_for_service('compute1', 'disabled')
        self.assertTrue(service['disabled_reason'].startswith('AUTO: '))
        self.assertIn('unreachable', service['disabled_reason'])
        self.sim.faults.start_host(self.xen.name)
        self.wait_for_service('compute1', 'enabled')
        self.boot()

    def test_a_service_an_operator_disabled_stays_disabled(self):
        self.sim.faults.stop_host(self.xen.name)
        self.wait_for_service('compute1', 'disabled')
        self.admin_api.api_put(
            '/os-services/%s' % self.compute_service('compute1')['id'],
            {'status': 'disabled', 'disabled_reason': 'maintenance'},
        )
        self.sim.faults.start_host(self.xen.name)
        time.sleep(3)
        service = self.compute_service('compute1')
        self.assertEqual('disabled', service['status'])
        self.assertEqual('maintenance', service['disabled_reason'])


class TestGuestsWithoutTools(XenAPITestCase):
    """Guests that run no guest tools: xapi refuses clean operations."""

    guest_tools = False

    def test_soft_reboot_and_stop_fall_back_to_hard_ones(self):
        server = self.boot()
        ref, _ = self.vm_of(server)
        self._reboot_server(server)
        self.assertEqual('Running', self.records('VM')[ref]['power_state'])
        self._stop_server(server)
        self.assertEqual('Halted', self.records('VM')[ref]['power_state'])
        self._start_server(server)
        self.assertEqual('Running', self.records('VM')[ref]['power_state'])


class TestConfiguration(XenAPITestCase):
    def test_an_https_only_host_serves_everything_but_consoles(self):
        """XenServer 8 can close port 80 (host.https_only): boots,
        transfers and snapshots use https alone."""
        self.sim.set_https_only(self.xen)
        server = self.boot()
        _, vm = self.vm_of(server)
        self.assertEqual(RAW, self.disk_bytes(self.root_vdi(vm), len(RAW)))
        self._snapshot_server(server, 'snap-https-only')
        self._delete_server(server)
        self.assert_nothing_left(server['id'])

    def test_an_untrusted_certificate_fails_init_naming_ca_file(self):
        """Without ca_file the host's certificate is not trusted; the
        error says it is the certificate, and which options fix it."""
        with self.assertRaises(exception.InvalidConfiguration) as caught:
            self.start_compute(
                'compute-no-ca',
                xenserver={
                    'connection_url': self.xen.url,
                    'connection_username': self.xen.username,
                    'connection_password': self.xen.password,
                    'ca_file': None,
                },
            )
        message = str(caught.exception)
        self.assertIn('TLS certificate', message)
        self.assertIn('ca_file', message)
        self.assertIn('insecure', message)
        self.assertNotIn(self.xen.password, message)


class TestConfigDrive(XenAPITestCase):
    def test_a_requested_config_drive_is_a_read_only_iso_disk(self):
        server = self._build_server(
            image_uuid=IMAGE_ID, flavor_id=self.flavor_id, networks='none'
        )
        server['config_drive'] = True
        created = self.api.post_server({'server': server})
        server = self._wait_for_state_change(created, 'ACTIVE')
        _, vm = self.vm_of(server)
        vbds = self.records('VBD')
        (cd,) = [
            vbds[ref] for ref in vm['VBDs'] if vbds[ref]['userdevice'] == '3'
        ]
        # A read-only disk, not a CD: xapi ejects CDs on migrate_send.
        self.assertEqual(('Disk', 'RO'), (cd['type'], cd['mode']))
        vdi = self.records('VDI')[cd['VDI']]
        self.assertEqual('configdrive', vdi['other_config']['nova_disk_type'])
        iso = self.disk_bytes(cd['VDI'], int(vdi['virtual_size']))
        self.assertEqual(b'CD001', iso[0x8001:0x8006])  # ISO 9660
        self.assertIn(server['id'].encode(), iso)  # meta_data.json
        self._delete_server(server)
        self.assert_nothing_left(server['id'])
