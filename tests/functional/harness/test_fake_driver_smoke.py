from tests.functional import base


class TestHarnessWithFake(base.NovaAPITestCase):
    compute_driver = 'fake.SmallFakeDriver'

    def test_boot(self):
        self.start_compute('host1')
        server = self.boot_server()
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
