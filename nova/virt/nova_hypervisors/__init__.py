"""Import shim so Nova's loader finds our drivers.

Nova 34 loads ``'nova.virt.' + CONF.compute_driver`` and nothing else, so
``compute_driver = nova_hypervisors.xenapi.XenAPIDriver`` resolves to
``nova.virt.nova_hypervisors.xenapi.XenAPIDriver``.  The modules here only
re-export the real classes from the top-level ``nova_hypervisors`` package.
"""
