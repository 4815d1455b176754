"""Cinder iSCSI volumes through the Nova API on a simulated XenServer host.

Cinder is Nova's CinderFixture, answering with the connection data of a
simulated iSCSI array (:mod:`nova_hypervisors.simulators.iscsi_target`):
a real TCP portal on loopback, a target with CHAP, and LUNs whose bytes
live on the array.  The simulated host logs in to the portal when its PBD
is plugged, as a real host's initiator does.
"""

import hashlib
import time
import urllib.parse

import fixtures
from nova.tests.functional.api import client as api_client

from nova_hypervisors.simulators import iscsi_target
from tests.functional.xapi_sim import helpers as sim_helpers
from tests.functional.xenapi import test_lifecycle
from tests.functional.xenapi import volumes

IQN = volumes.IQN
CHAP = volumes.CHAP
GIB = volumes.GIB
VOLUME_A = 'a0a0a0a0-0000-4000-8000-00000000000a'
VOLUME_B = 'b0b0b0b0-0000-4000-8000-00000000000b'
DATA = b''.join(hashlib.sha256(b'v%d' % i).digest() for i in range(2048))


class VolumeTestCase(volumes.ISCSIVolumes, test_lifecycle.XenAPITestCase):
    """A host, an iSCSI array, and Cinder's fixture pointing at it."""

    def setUp(self):
        super().setUp()
        self.start_array()

    def volume_vbds(self, server):
        _, vm = self.vm_of(server)
        vbds = self.records('VBD')
        return {
            vbds[ref]['other_config']['nova_volume_id']: vbds[ref]
            for ref in vm['VBDs']
            if vbds[ref]['other_config'].get('osvol')
        }

    def volume_srs(self):
        return {
            ref: rec
            for ref, rec in self.records('SR').items()
            if rec['type'] == 'iscsi'
        }

    def assert_no_volume_left(self):
        self.assertEqual({}, self.volume_srs())
        for pbd in self.records('PBD').values():
            self.assertNotEqual('iscsi', self.records('SR')[pbd['SR']]['type'])
        for vbd in self.records('VBD').values():
            self.assertNotIn('osvol', vbd['other_config'])

    def upload(self, vdi_ref, data):
        session = self.xapi()
        conn = sim_helpers.connect(self.sim.master)
        conn.request(
            'PUT',
            '/import_raw_vdi?'
            + urllib.parse.urlencode(
                {
                    'vdi': vdi_ref,
                    'format': 'raw',
                    'session_id': session._session,
                }
            ),
            body=data,
        )
        response = conn.getresponse()
        response.read()
        conn.close()
        self.assertEqual(200, response.status)

    def wait_for_task_state(self, server, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.api.get_server(server['id'])
            if found['OS-EXT-STS:task_state'] is None:
                return found
            time.sleep(0.1)
        self.fail('the server stays busy')


class TestAttachDetach(VolumeTestCase):
    def test_a_volume_is_hot_plugged_into_a_running_server(self):
        server = self.boot()
        self.volume(VOLUME_A)
        self.array.write(IQN, self.luns[VOLUME_A], DATA)
        self.attach(server, VOLUME_A)
        vbd = self.volume_vbds(server)[VOLUME_A]
        self.assertTrue(vbd['currently_attached'])
        self.assertGreaterEqual(int(vbd['userdevice']), 4)
        vdi = self.records('VDI')[vbd['VDI']]
        self.assertEqual(GIB, vdi['virtual_size'])
        self.assertEqual(DATA, self.disk_bytes(vbd['VDI'], len(DATA)))
        (sr,) = self.volume_srs().values()
        self.assertTrue(sr['shared'])
        (pbd,) = (self.records('PBD')[p] for p in sr['PBDs'])
        self.assertEqual(self.xen.host_ref, pbd['host'])
        self.assertEqual(CHAP[0], pbd['device_config']['chapuser'])
        # The host logged in to the array with CHAP.
        self.assertIn((IQN, CHAP[0], True), self.array.logins)
        self.detach(server, VOLUME_A)
        self.assertEqual({}, self.volume_vbds(server))
        self.assert_no_volume_left()
        # The LUN and its bytes stay on the array.
        self.assertEqual(DATA, self.array.read(IQN, 1, len(DATA)))
        self.assertNotIn(CHAP[1], self.log.output)

    def test_a_stopped_server_gets_the_volume_at_its_next_start(self):
        server = self.boot()
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self.wait_for_power(server, 'SHUTOFF')
        self.attach(server, self.volume(VOLUME_A))
        vbd = self.volume_vbds(server)[VOLUME_A]
        self.assertFalse(vbd['currently_attached'])
        self.api.post_server_action(server['id'], {'os-start': None})
        self.wait_for_power(server, 'ACTIVE')
        self.assertTrue(
            self.volume_vbds(server)[VOLUME_A]['currently_attached']
        )
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self.wait_for_power(server, 'SHUTOFF')
        self.detach(server, VOLUME_A)
        self.assert_no_volume_left()

    def test_bytes_written_through_one_server_are_read_by_another(self):
        first = self.boot()
        second = self.boot()
        self.api.post_server_action(first['id'], {'os-stop': None})
        self.wait_for_power(first, 'SHUTOFF')
        self.attach(first, self.volume(VOLUME_A))
        vbd = self.volume_vbds(first)[VOLUME_A]
        self.upload(vbd['VDI'], DATA)
        self.detach(first, VOLUME_A)
        self.assert_no_volume_left()
        self.assertEqual(DATA, self.array.read(IQN, 1, len(DATA)))
        self.attach(second, VOLUME_A)
        vbd = self.volume_vbds(second)[VOLUME_A]
        self.assertEqual(DATA, self.disk_bytes(vbd['VDI'], len(DATA)))

    def test_two_volumes_of_one_target_share_one_sr(self):
        server = self.boot()
        self.attach(server, self.volume(VOLUME_A))
        self.attach(server, self.volume(VOLUME_B))
        vbds = self.volume_vbds(server)
        self.assertEqual({VOLUME_A, VOLUME_B}, set(vbds))
        self.assertNotEqual(
            vbds[VOLUME_A]['userdevice'], vbds[VOLUME_B]['userdevice']
        )
        self.assertEqual(1, len(self.volume_srs()))
        self.detach(server, VOLUME_A)
        # B still uses the SR: it stays.
        self.assertEqual(1, len(self.volume_srs()))
        self.detach(server, VOLUME_B)
        self.assert_no_volume_left()

    def test_deleting_a_server_with_volumes_leaves_the_luns_only(self):
        server = self.boot()
        self.attach(server, self.volume(VOLUME_A))
        self.array.write(IQN, 1, DATA)
        self._delete_server(server)
        self.assert_nothing_left(server['id'])
        self.assert_no_volume_left()
        self.assertEqual(DATA, self.array.read(IQN, 1, len(DATA)))
        self.assertEqual(
            [], list(self.cinder.volume_ids_for_instance(server['id']))
        )

    def test_extend_rescans_the_lun(self):
        server = self.boot()
        self.attach(server, self.volume(VOLUME_A))
        self.array.extend_lun(IQN, 1, 2 * GIB)
        self.volume_extended(server, VOLUME_A, 2)
        vbd = self.volume_vbds(server)[VOLUME_A]
        self.assertEqual(
            2 * GIB, self.records('VDI')[vbd['VDI']]['virtual_size']
        )


class TestBootFromVolume(VolumeTestCase):
    def test_the_root_disk_is_the_volume_and_no_image_is_imported(self):
        self.volume(VOLUME_A)
        self.array.write(IQN, 1, DATA)
        server = self._build_server(
            image_uuid='', flavor_id=self.flavor_id, networks='none'
        )
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
        _, vm = self.vm_of(server)
        self.assertEqual('Running', vm['power_state'])
        root = self.volume_vbds(server)[VOLUME_A]
        self.assertEqual('0', root['userdevice'])
        self.assertTrue(root['bootable'])
        self.assertEqual(DATA, self.disk_bytes(root['VDI'], len(DATA)))
        # No disk of the instance's own: nothing was imported.
        self.assertEqual(
            [],
            [
                rec
                for rec in self.records('VDI').values()
                if rec['other_config'].get('nova_instance_uuid')
                == server['id']
            ],
        )
        self._delete_server(server)
        self.assert_nothing_left(server['id'])
        self.assert_no_volume_left()
        self.assertEqual(DATA, self.array.read(IQN, 1, len(DATA)))


class TestVolumeFaults(VolumeTestCase):
    def test_an_unreachable_portal_fails_the_attach_and_leaves_nothing(self):
        server = self.boot()
        # A loopback port nothing listens on.
        dead = iscsi_target.StorageArray(
            self.useFixture(fixtures.TempDir()).path
        ).start()
        portal = dead.portal
        dead.stop()
        self.volume(VOLUME_A, portal=portal)
        self.attach(server, VOLUME_A, expect='error')
        self.assertEqual([], self.api.get_server_volumes(server['id']))
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])
        self.assert_no_volume_left()
        self.assertIn('SR_BACKEND_FAILURE_141', self.log.output)
        self.assertNotIn(CHAP[1], self.log.output)

    def test_wrong_chap_credentials_fail_the_attach_clearly(self):
        server = self.boot()
        self.array.remove_target(IQN)
        self.array.add_target(IQN, chap=('cinder-chap', 'another-secret'))
        self.attach(server, self.volume(VOLUME_A), expect='error')
        self.assertEqual([], self.api.get_server_volumes(server['id']))
        self.assert_no_volume_left()
        self.assertIn('SR_BACKEND_FAILURE_68', self.log.output)
        self.assertNotIn(CHAP[1], self.log.output)

    def test_a_volume_the_guest_holds_busy_stays_attached(self):
        server = self.boot()
        self.attach(server, self.volume(VOLUME_A))
        vbd_ref = next(
            ref
            for ref, rec in self.records('VBD').items()
            if rec['other_config'].get('nova_volume_id') == VOLUME_A
        )
        self.sim.faults.fail_next(
            'VBD.unplug',
            1,
            ['DEVICE_DETACH_REJECTED', 'VBD', vbd_ref, 'device busy'],
        )
        # The harness runs RPC casts as calls, so the compute's error
        # reaches this request; a real nova-api answers 202 and the
        # volume goes back to in-use.
        self.assertRaises(
            api_client.OpenStackApiException,
            self.api.delete_server_volume,
            server['id'],
            VOLUME_A,
        )
        self._wait_for_instance_action_event(
            server, 'detach_volume', 'compute_detach_volume', 'Error'
        )
        self.assertIn('the guest refused to release the disk', self.log.output)
        # Still attached, in Nova and on the host.
        self.api.get_server_volume(server['id'], VOLUME_A)
        self.assertTrue(
            self.volume_vbds(server)[VOLUME_A]['currently_attached']
        )
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])
        self.detach(server, VOLUME_A)
        self.assert_no_volume_left()
