"""Out-of-tree Nova virt drivers for XenServer/XCP-ng and VMware vCenter."""
