"""XenAPIDriver: Nova's ComputeDriver for XenServer / XCP-ng.

A thin facade: every method hands off to the object that owns the concern.
"""

from nova.virt import driver
from nova_hypervisors import conf

CONF = conf.CONF


class XenAPIDriver(driver.ComputeDriver):
    """A XenServer host, managed through its pool master."""

    capabilities = dict(
        driver.ComputeDriver.capabilities,
        has_imagecache=True,
        supports_image_type_raw=True,
        supports_image_type_vhd=True,
    )

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        self._settings = CONF.xenserver
