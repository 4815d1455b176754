"""vCenter faults through Nova's API: compute1 reaches vcsim through a TCP
fault proxy of ours (``tests/functional/faultproxy.py``) that can refuse
connections and cut the open ones, as a vCenter restart or a network blip
does."""

import io
import os
import time
from unittest import mock

from pyVmomi import vim

from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import session as vc_session
from tests.functional import faultproxy
from tests.functional.faults import table
from tests.functional.vmwareapi import api_base
from tests.functional.vmwareapi import vcsim_fixture


class VCenterFaultsTest(api_base.VCenterAPITestCase):
    vmware_options = {'unreachable_grace': 1}
    #: The tests power a VM off behind Nova's back.
    external_power_changes = True
    #: The compute logs its lost vCenter.
    compute_errors_expected = True

    def setUp(self) -> None:
        super().setUp()
        self.api.microversion = '2.74'  # boots on a named host

    def _start_cluster(self, host: str, cluster_name: str):
        if host != 'compute1':
            return super()._start_cluster(host, cluster_name)
        self.proxy = faultproxy.FaultProxy(self.sim.host, self.sim.port)
        self.addCleanup(self.proxy.stop)
        options = vcsim_fixture.vmware_flags(self.sim, cluster_name)
        options.update(self.vmware_options, host_port=self.proxy.port)
        return self.start_compute(host, vmware=options)

    def test_a_compute_without_vcenter_disables_itself_and_comes_back(self):
        """Past [vmware] unreachable_grace the service is disabled with an
        AUTO: reason (the scheduler skips it); when vCenter answers again
        it is enabled, and boots land there again."""
        self.proxy.down()
        service = self.wait_for_service('compute1', 'disabled')
        self.assertTrue(service['disabled_reason'].startswith('AUTO: '))
        self.assertIn('vCenter', service['disabled_reason'])
        self.proxy.up()
        back = time.monotonic()
        self.wait_for_service('compute1', 'enabled')
        seconds = time.monotonic() - back
        server = self._boot_active(host='compute1')
        self.assertEqual('poweredOn', self._power_state(server))
        table.record(
            'vmware',
            'idle compute',
            'vCenter unreachable past the grace',
            'disabled (AUTO:), enabled again, boots',
            0,
            seconds,
        )

    def test_a_power_change_while_vcenter_was_away_still_reaches_nova(self):
        """The watch is re-created after the outage and keeps what it
        knew: a VM powered off meanwhile gets its STOPPED event."""
        server = self._boot_active(host='compute1')
        # The watch has confirmed the boot's own power-on (until then a
        # change is taken for the driver's own step, by design).
        states = self.compute1.driver._states
        deadline = time.monotonic() + 15
        while states.get(server['id']) != 'poweredOn':
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.proxy.down()
        self.admin.wait_for_task(
            self.admin.invoke(self._vm(server), 'PowerOffVM_Task')
        )
        self.proxy.up()
        # No lost event is the point, not its latency: under CI's load the
        # watch may still be in its restart pause.
        self._wait_for_server_parameter(
            server, {'status': 'SHUTOFF'}, max_retries=60
        )
        self.assertEqual('poweredOff', self._power_state(server))

    def test_a_vcenter_restart_loses_no_power_event(self):
        """A vCenter restart: every connection cut, every session gone
        (with the watch's PropertyCollector filter), vCenter away for a
        while, and a VM powered off meanwhile.  The driver logs in again,
        re-creates its watch, Nova gets the STOPPED event, and boots work
        again."""
        server = self._boot_active(host='compute1')
        states = self.compute1.driver._states
        deadline = time.monotonic() + 15
        while states.get(server['id']) != 'poweredOn':
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.proxy.down()
        manager = self.admin.content.sessionManager
        mine = manager.currentSession.key
        others = [s.key for s in manager.sessionList if s.key != mine]
        self.assertTrue(others)
        manager.TerminateSession(sessionId=others)
        self.admin.wait_for_task(
            self.admin.invoke(self._vm(server), 'PowerOffVM_Task')
        )
        self.proxy.up()
        back = time.monotonic()
        # No lost event is the point, not its latency: under CI's load the
        # watch may still be in its restart pause.
        self._wait_for_server_parameter(
            server, {'status': 'SHUTOFF'}, max_retries=60
        )
        seconds = time.monotonic() - back
        again = self._boot_active(host='compute1')
        self.assertEqual('poweredOn', self._power_state(again))
        # The boot ran on a new session: the old ones are gone for good.
        live = {s.key for s in manager.sessionList}
        self.assertEqual(set(), live & set(others))
        table.record(
            'vmware',
            'running server',
            'vCenter restart: sessions gone, power-off meanwhile',
            'SHUTOFF reached Nova, boots again',
            0,
            seconds,
        )

    def test_a_connection_cut_in_the_middle_of_an_upload(self):
        """The image upload to the datastore is cut half-way: the boot
        ends ACTIVE (on a retry) or in ERROR, and the image cache holds
        no half image: only whole disks, never a ``-partial`` one."""
        self.flags(max_attempts=1, group='scheduler')
        data = os.urandom(4 * 1024 * 1024)
        image_id = 'c0ffee00-0000-4000-8000-00000000f00d'
        self.glance.create(
            None,
            {
                'id': image_id,
                'name': 'four-mib',
                'status': 'active',
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': len(data),
                'visibility': 'public',
                'properties': {},
            },
            data=io.BytesIO(data),
        )
        self.proxy.cut_after(1024 * 1024)
        started = time.monotonic()
        created = self._boot(image=image_id, host='compute1')
        server = self.api.get_server(created['id'])
        deadline = time.monotonic() + 120
        while server['status'] == 'BUILD' or server['OS-EXT-STS:task_state']:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)
            server = self.api.get_server(server['id'])
        self.assertEqual(1, self.proxy.cuts)
        self.assertIn(server['status'], ('ACTIVE', 'ERROR'))
        cached = []
        for directory, _, names in os.walk(self.sim.workdir):
            for name in names:
                self.assertNotIn('partial', name)
                if name.startswith(image_id) and name.endswith('-flat.vmdk'):
                    cached.append(os.path.join(directory, name))
        for path in cached:
            self.assertEqual(len(data), os.path.getsize(path))
        if server['status'] == 'ACTIVE':
            self.assertEqual('poweredOn', self._power_state(server))
        else:
            self.assertIsNone(self._vm(server))
        self._delete_server(server)
        table.record(
            'vmware',
            'boot, image not cached',
            'connection cut after 1 MiB of a 4 MiB upload',
            server['status'],
            0,
            time.monotonic() - started,
        )

    def test_a_connection_cut_in_the_middle_of_a_task_wait(self):
        """Every task of a boot has been started and the driver waits for
        it: right then every connection is cut.  The wait reads the task
        again on a new connection (reads are safe to repeat), and the boot
        ends ACTIVE with exactly one VM."""
        task_info = vc_session.VCenterSession._task_info
        compute_session = self.compute1.driver._session
        waits = []

        def cut_then_read(session, task):
            if session is compute_session:
                waits.append(task)
                self.proxy.cut()
            return task_info(session, task)

        started = time.monotonic()
        with mock.patch.object(
            vc_session.VCenterSession, '_task_info', cut_then_read
        ):
            server = self._boot_active(host='compute1')
        self.assertGreater(len(waits), 2)
        self.assertEqual('poweredOn', self._power_state(server))
        vms = self.admin.view_properties(
            self.admin.content.rootFolder,
            {vim.VirtualMachine: ['config.instanceUuid']},
        )
        uuids = [props.get('config.instanceUuid') for props in vms.values()]
        self.assertEqual(1, uuids.count(server['id']))
        table.record(
            'vmware',
            'boot',
            f'every connection cut in each of its {len(waits)} task waits',
            'ACTIVE',
            0,
            time.monotonic() - started,
        )

    def test_cut_connections_during_a_boot_leave_a_whole_server(self):
        """Every open connection is cut while a boot runs; the driver's
        reads are sent again and the boot ends ACTIVE, or it fails and
        leaves no VM behind."""
        self.proxy.latency(0.05)
        started = time.monotonic()
        server = self._boot(host='compute1')
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.proxy.cut()
            found = self.api.get_server(server['id'])
            if found['status'] != 'BUILD':
                break
            time.sleep(0.3)
        self.proxy.latency(0)
        found = self.api.get_server(server['id'])
        if found['status'] == 'ACTIVE':
            self.assertEqual('poweredOn', self._power_state(found))
        else:
            self.assertEqual('ERROR', found['status'])
            self.assertIsNone(self._vm(found))
        vms = self.admin.view_properties(
            self.admin.content.rootFolder,
            {vim.VirtualMachine: ['config.instanceUuid']},
        )
        uuids = [props.get('config.instanceUuid') for props in vms.values()]
        self.assertLessEqual(uuids.count(server['id']), 1)
        table.record(
            'vmware',
            'boot',
            'every connection cut each 0.3 s',
            found['status'],
            0,
            time.monotonic() - started,
        )

    def test_twenty_concurrent_boots_through_a_slow_network(self):
        """20 servers at once, compute1's vCenter traffic delayed: all
        ACTIVE, each with its one VM; then all gone, with no VM left."""
        self.proxy.latency(0.005)
        started = time.monotonic()
        self.flags(instances=-1, cores=-1, ram=-1, group='quota')
        server = self._build_server(
            image_uuid=api_base.RAW_IMAGE,
            flavor_id=self._flavor('small', 128, disk=1),
            networks='none',
        )
        server['min_count'] = 20
        self.api.post_server({'server': server})
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            servers = self.api.get_servers()
            if len(servers) == 20 and all(
                s['status'] != 'BUILD' for s in servers
            ):
                break
            time.sleep(0.5)
        self.assertEqual(['ACTIVE'] * 20, [s['status'] for s in servers])
        for found in servers:
            self.assertEqual('poweredOn', self._power_state(found))
        for found in servers:
            self._delete_server(found)
        self.proxy.latency(0)
        for compute in (self.compute1, self.compute2):
            node = compute.driver._node
            self.assertEqual({}, lookup.cluster_vms(self.admin, node.cluster))
        table.record(
            'vmware',
            '20 concurrent boots, then deletes',
            '5 ms added to every vCenter round trip',
            '20/20 ACTIVE',
            0,
            time.monotonic() - started,
        )
