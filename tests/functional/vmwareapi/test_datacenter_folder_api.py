"""A datacenter inside a folder: ``dcPath`` is its inventory path.

Large vCenters keep datacenters in folders; our vcsim can too
(``dc_in_folder``).  With the datacenter's bare name as ``dcPath`` every
``/folder`` request is a 404, so no image could be uploaded.
"""

from tests.functional.vmwareapi import api_base


class DatacenterInFolderTest(api_base.VCenterAPITestCase):
    vcsim_options = {'dc_in_folder': True}

    def test_images_are_uploaded_and_servers_boot(self):
        node = self.compute1.driver._node
        self.assertNotEqual(node.datacenter_name, node.datacenter_path)
        self.assertTrue(
            node.datacenter_path.endswith('/' + node.datacenter_name)
        )
        server = self._boot_active()
        self.assertEqual('poweredOn', self._power_state(server))
