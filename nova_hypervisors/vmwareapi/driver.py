"""VCDriver: Nova's ComputeDriver for a VMware vCenter cluster.

A thin facade: every method hands off to the object that owns the concern.
"""

from nova.virt import driver
from nova_hypervisors import conf

CONF = conf.CONF


class VCDriver(driver.ComputeDriver):
    """A whole vCenter cluster as one Nova hypervisor node."""

    capabilities = dict(
        driver.ComputeDriver.capabilities,
        has_imagecache=True,
        supports_image_type_vmdk=True,
    )

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        self._settings = CONF.vmware
