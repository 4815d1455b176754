"""Cinder iSCSI volumes for XenServer tests: an array and Cinder's answers.

Cinder is Nova's CinderFixture, answering with the connection data of a
simulated iSCSI array (:mod:`nova_hypervisors.simulators.iscsi_target`):
a real TCP portal on loopback, a target with CHAP, and LUNs whose bytes
live on the array.
"""

import logging

import fixtures
from nova.tests.functional.api import client as api_client

from nova_hypervisors.simulators import iscsi_target

IQN = 'iqn.2010-10.org.openstack:volumes'
CHAP = ('cinder-chap', 'chap-secret-never-logged')
GIB = 1 << 30


class ISCSIVolumes:
    """An iSCSI array, and Cinder's fixture answering with its LUNs.

    Mixed into a Nova API test case; ``start_array`` in its setUp.
    """

    def start_array(self):
        root = self.useFixture(fixtures.TempDir()).path
        self.array = iscsi_target.StorageArray(root).start()
        self.addCleanup(self.array.stop)
        self.array.add_target(IQN, chap=CHAP)
        self.luns = {}
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))

    def volume(self, volume_id, size=GIB, portal=None):
        """A LUN on the array, and the connection data Cinder gives."""
        lun = len(self.luns) + 1
        self.array.create_lun(IQN, lun, size)
        self.luns[volume_id] = lun
        self.cinder.VOLUME_CONNECTION_INFO = dict(
            self.cinder.VOLUME_CONNECTION_INFO,
            **{
                volume_id: {
                    'driver_volume_type': 'iscsi',
                    'data': {
                        'target_portal': portal or self.array.portal,
                        'target_iqn': IQN,
                        'target_lun': lun,
                        'target_discovered': False,
                        'auth_method': 'CHAP',
                        'auth_username': CHAP[0],
                        'auth_password': CHAP[1],
                    },
                }
            },
        )
        return volume_id

    def attach(self, server, volume_id, expect='end'):
        body = {'volumeAttachment': {'volumeId': volume_id}}
        if expect == 'end':
            self.api.post_server_volume(server['id'], body)
        else:
            # Casts run as calls in this harness: the compute's failure
            # reaches the request (a real nova-api has answered already).
            self.assertRaises(
                api_client.OpenStackApiException,
                self.api.post_server_volume,
                server['id'],
                body,
            )
        self.notifier.wait_for_versioned_notifications(
            'instance.volume_attach.' + expect
        )

    def detach(self, server, volume_id):
        self.api.delete_server_volume(server['id'], volume_id)
        self._wait_for_volume_detach(server['id'], volume_id)
