"""Consoles on vCenter 7: MKS tickets, and no VNC set-up at all.

ESXi 7 removed its VNC server (vSphere 7.0 release notes); our vcsim
reports vCenter 7.0.3 and hands out tickets as vCenter does
(patches/0006-acquire-console-tickets.patch).
"""

import json

from nova import context as nova_context
from nova import objects

from tests.functional.vmwareapi import api_base


class ConsolesTest(api_base.VCenterAPITestCase):
    def setUp(self) -> None:
        self.flags(enabled=True, group='mks')
        super().setUp()

    def test_an_mks_console_through_the_api(self):
        server = self._boot_active()
        self.api.microversion = '2.8'
        console = self.api.api_post(
            '/servers/%s/remote-consoles' % server['id'],
            {'remote_console': {'protocol': 'mks', 'type': 'webmks'}},
        ).body['remote_console']
        self.assertEqual('mks', console['protocol'])
        ctx = nova_context.get_admin_context()
        instance = objects.Instance.get_by_uuid(ctx, server['id'])
        driver = (
            self.compute1
            if server['OS-EXT-SRV-ATTR:host'] == 'compute1'
            else self.compute2
        ).driver
        mks = driver.get_mks_console(ctx, instance)
        auth = json.loads(mks.internal_access_path)
        self.assertEqual({'ticket', 'cfgFile', 'thumbprint'}, set(auth))
        self.assertEqual(902, mks.port)
        self.assertTrue(mks.host)
        self.assertNotIn(':', auth['thumbprint'])

    def test_no_vnc_keys_are_written_on_vcenter_7(self):
        server = self._boot_active()
        options = self._vm_props(server, 'config.extraConfig')[
            'config.extraConfig'
        ]
        keys = {option.key for option in options}
        self.assertIn('nvp.vm-uuid', keys)
        self.assertEqual(
            set(), {k for k in keys if k.startswith('RemoteDisplay.vnc')}
        )


class VNCOnVCenter67Test(api_base.VCenterAPITestCase):
    """vCenter 6.7, whose ESXi hosts still have a VNC server: each VM gets
    a port of [vmware] vnc_port/vnc_port_total, as in-tree, and the port
    of a deleted VM is given again (review D: ports were never freed)."""

    vcsim_options = {'vcenter_version': '6.7.3'}
    vmware_options = {'vnc_port': 5950, 'vnc_port_total': 1}

    def setUp(self) -> None:
        self.flags(enabled=True, group='vnc')
        super().setUp()

    def _vnc_port(self, server: dict) -> str | None:
        options = self._vm_props(server, 'config.extraConfig')[
            'config.extraConfig'
        ]
        return {o.key: o.value for o in options}.get('RemoteDisplay.vnc.port')

    def test_a_deleted_vms_port_is_given_again(self):
        first = self._boot_active(az='nova:compute1')
        self.assertEqual('5950', self._vnc_port(first))
        self._delete_server(first)
        second = self._boot_active(az='nova:compute1')
        self.assertEqual('5950', self._vnc_port(second))
