"""Both drivers keep Nova's ComputeDriver interface exactly.

Nova's compute manager calls drivers by the base class's signatures; a
renamed argument or an extra public method is a bug Nova finds only at run
time, so these tests hold each driver against ``ComputeDriver``.
"""

import socket

import fixtures
from nova import test
from nova.virt import driver as nova_driver

from nova_hypervisors.vmwareapi import VCDriver
from nova_hypervisors.xenapi import XenAPIDriver

DRIVERS = (XenAPIDriver, VCDriver)


class TestDriverInterfaces(test.NoDBTestCase):
    def test_public_methods_keep_computedriver_signatures(self):
        base = nova_driver.ComputeDriver(None)
        for driver_class in DRIVERS:
            with self.subTest(driver=driver_class.__name__):
                self.assertPublicAPISignatures(base, driver_class(None))

    def test_capabilities_have_exactly_the_base_keys(self):
        base_keys = set(nova_driver.ComputeDriver.capabilities)
        for driver_class in DRIVERS:
            with self.subTest(driver=driver_class.__name__):
                self.assertEqual(base_keys, set(driver_class.capabilities))

    def test_capabilities_are_booleans(self):
        for driver_class in DRIVERS:
            for key, value in driver_class.capabilities.items():
                with self.subTest(driver=driver_class.__name__, key=key):
                    self.assertIsInstance(value, bool)

    def test_constructing_a_driver_touches_no_network(self):
        """init_host connects; the constructor must not (DESIGN.md)."""

        def refuse(*args, **kwargs):
            raise AssertionError('driver constructor opened a connection')

        self.useFixture(fixtures.MonkeyPatch('socket.socket.connect', refuse))
        self.useFixture(
            fixtures.MonkeyPatch('socket.create_connection', refuse)
        )
        self.assertRaises(
            AssertionError, socket.create_connection, ('127.0.0.1', 9)
        )
        for driver_class in DRIVERS:
            driver_class(None)
