"""``compute_driver = nova_hypervisors.xenapi.XenAPIDriver``."""

from nova_hypervisors.xenapi import XenAPIDriver

__all__ = ['XenAPIDriver']
