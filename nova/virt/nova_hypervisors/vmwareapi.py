"""``compute_driver = nova_hypervisors.vmwareapi.VCDriver``."""

from nova_hypervisors.vmwareapi import VCDriver

__all__ = ['VCDriver']
