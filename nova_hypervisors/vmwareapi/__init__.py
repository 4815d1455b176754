"""VMware vCenter clusters through pyVmomi."""

from nova_hypervisors.vmwareapi.driver import VCDriver

__all__ = ['VCDriver']
