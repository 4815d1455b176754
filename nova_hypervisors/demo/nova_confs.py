"""The nova.conf of each demo compute service, as an operator writes it.

The demo starts every compute service from exactly this text; it prints
the same text with the passwords masked.
"""

from __future__ import annotations

import re

XENAPI_CONF = """\
[DEFAULT]
host = {host}
compute_driver = nova_hypervisors.xenapi.XenAPIDriver

[xenserver]
connection_url = {url}
connection_username = {username}
connection_password = {password}
ca_file = {ca_file}
sr_matching_filter = default-sr:true
pool_reconcile_interval = 1
"""

VMWARE_CONF = """\
[DEFAULT]
host = {host}
compute_driver = nova_hypervisors.vmwareapi.VCDriver

[vmware]
host_ip = {address}
host_port = {port}
host_username = {username}
host_password = {password}
ca_file = {ca_file}
cluster_name = {cluster}
"""


def xenapi(compute: str, xen_host) -> str:
    """nova.conf of the compute service managing one XenServer host."""
    return XENAPI_CONF.format(
        host=compute,
        url=xen_host.url,
        username=xen_host.username,
        password=xen_host.password,
        ca_file=xen_host.topology.tls.ca_file,
    )


def vmware(compute: str, vcsim, cluster: str) -> str:
    """nova.conf of the compute service managing one vCenter cluster."""
    return VMWARE_CONF.format(
        host=compute,
        address=vcsim.host,
        port=vcsim.port,
        username=vcsim.username,
        password=vcsim.password,
        ca_file=vcsim.ca_file,
        cluster=cluster,
    )


def shown(text: str) -> str:
    """The text with every password option's value masked."""
    return re.sub(
        r'^(\w*password\s*=\s*).*$', r'\1********', text, flags=re.MULTILINE
    )
