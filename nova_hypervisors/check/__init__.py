"""``nova-hypervisors check``: the configured hypervisor, checked before
nova-compute starts, from the same nova.conf, without changing anything."""
