"""XenServer / XCP-ng pools through XenAPI."""

from nova_hypervisors.xenapi.driver import XenAPIDriver

__all__ = ['XenAPIDriver']
