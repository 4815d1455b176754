"""Pre-flight checks of a vCenter cluster for ``VCDriver``.

Only reads: a login, then the cluster, its hosts, datastores and networks,
as the driver reads them at start-up.  What Placement will be told is
computed by the driver's own code, from the same figures.
"""

import re
from typing import Any

from pyVmomi import vim

from nova_hypervisors.check import report as check_report
from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import inventory
from nova_hypervisors.vmwareapi import network
from nova_hypervisors.vmwareapi import resources
from nova_hypervisors.vmwareapi import session as vc_session

CLUSTER_PATHS = [
    'configuration.drsConfig.enabled',
    'configuration.dasConfig.enabled',
]
HOST_PATHS = ['name', 'runtime.connectionState', 'runtime.inMaintenanceMode']
DATASTORE_PATHS = cluster.DATASTORE_PATHS
NETWORK_KINDS = {
    vim.Network: 'standard',
    vim.dvs.DistributedVirtualPortgroup: 'distributed',
    vim.OpaqueNetwork: 'NSX (opaque)',
}


def run(group: Any) -> check_report.Report:
    """Check ``[vmware]`` (``group``) against its vCenter, changing
    nothing."""
    report = check_report.Report(
        f'vCenter at {group.host_ip or "(no host_ip)"}, cluster '
        f'{group.cluster_name or "(no cluster_name)"}'
    )
    session = _login(group, report)
    if session is None:
        return report
    try:
        _version(session, report)
        node = _cluster(session, group.cluster_name, report)
        if node is None:
            return report
        found = inventory.read_cluster(
            session,
            node.cluster,
            {
                vim.ClusterComputeResource: CLUSTER_PATHS,
                vim.HostSystem: HOST_PATHS,
                vim.Datastore: DATASTORE_PATHS,
            },
        )
        _drs_and_ha(
            found[vim.ClusterComputeResource].get(node.cluster), report
        )
        names = _hosts(found[vim.HostSystem], report)
        _datastores(found[vim.Datastore], names, group.datastore_regex, report)
        _networks(session, node, group.integration_bridge, report)
        _placement(session, node, group.datastore_regex, report)
    finally:
        session.disconnect()
    return report


def _login(group: Any, report: check_report.Report):
    if not group.cluster_name:
        report.fail(
            'settings',
            '[vmware] cluster_name is not set',
            'set it to the vCenter cluster this compute manages',
        )
        return None
    try:
        settings = vc_session.Settings.from_conf(group)
        session = vc_session.VCenterSession(settings)
        session.connect()
    except vc_session.ConfigurationError as error:
        report.fail('login', str(error))
        return None
    if settings.insecure and not settings.ca_file:
        report.warn(
            'login',
            f'logged in as {settings.username!r}, TLS without verification '
            '([vmware] insecure)',
            "set [vmware] ca_file to the CA of vCenter's certificate "
            "(VMCA's root on a default install) and drop insecure",
        )
    else:
        report.passed(
            'login', f'logged in as {settings.username!r}, TLS verified'
        )
    return session


def _version(session: vc_session.VCenterSession, report) -> None:
    about = session.content.about
    report.passed(
        'version',
        f'{about.fullName} (API {about.apiVersion}, {about.apiType})',
    )


def _cluster(session, cluster_name: str, report) -> Any:
    try:
        node = cluster.find_node(session, cluster_name)
    except vc_session.ConfigurationError as error:
        report.fail('cluster', str(error))
        return None
    report.passed(
        'cluster',
        f'{cluster_name!r} is {node.cluster._moId} in datacenter '
        f'{node.datacenter_path!r}, the only cluster of that name',
    )
    return node


def _drs_and_ha(props: dict | None, report) -> None:
    props = props or {}
    drs = bool(props.get('configuration.drsConfig.enabled'))
    ha = bool(props.get('configuration.dasConfig.enabled'))
    detail = f'DRS {"on" if drs else "off"}, HA {"on" if ha else "off"}'
    if drs:
        report.passed('DRS and HA', detail)
    else:
        report.warn(
            'DRS and HA',
            detail,
            "with DRS off the driver picks each VM's host itself (the one "
            'with the most free memory that mounts the datastore) and '
            'nothing rebalances later; turn DRS on for the cluster',
        )


def _hosts(hosts: dict, report) -> dict:
    """Check the hosts; return their names by reference."""
    names = {ref: props.get('name', ref._moId) for ref, props in hosts.items()}
    usable, unusable = [], []
    for ref, props in hosts.items():
        state = props.get('runtime.connectionState')
        if state != 'connected':
            unusable.append(f'{names[ref]} ({state})')
        elif props.get('runtime.inMaintenanceMode'):
            unusable.append(f'{names[ref]} (maintenance)')
        else:
            usable.append(names[ref])
    detail = f'{len(usable)} of {len(hosts)} host(s) usable'
    if unusable:
        detail += '; not: ' + ', '.join(sorted(unusable))
    if not usable:
        report.fail(
            'hosts',
            detail,
            'connect a host and take it out of maintenance mode',
        )
    elif unusable:
        report.warn(
            'hosts',
            detail,
            'capacity counts only connected hosts outside maintenance',
        )
    else:
        report.passed('hosts', detail + ': ' + ', '.join(sorted(usable)))
    return names


def _datastores(stores: dict, host_names: dict, regex: str | None, report):
    wanted = re.compile(regex) if regex else None
    lines, skipped = [], []
    for props in sorted(stores.values(), key=lambda p: p['summary.name']):
        name = props['summary.name']
        if wanted is not None and not wanted.match(name):
            continue
        if not cluster.usable_datastore(props):
            skipped.append(
                f'{name} ({props.get("summary.type")}, '
                f'{props.get("summary.maintenanceMode") or "inaccessible"})'
            )
            continue
        mounts = [mount.key for mount in props.get('host') or ()]
        own = [key for key in mounts if key in host_names]
        free_gb = (props.get('summary.freeSpace') or 0) // 1024**3
        where = f"on {len(own)} of the cluster's {len(host_names)} hosts"
        if len(mounts) > len(own):
            # Counted in DISK_GB by this cluster's share (cluster._share).
            where += f' and {len(mounts) - len(own)} other hosts'
        lines.append(
            f'{name} ({props.get("summary.type")}, {free_gb} GB free, {where})'
        )
    what = f'datastore_regex {regex!r}' if regex else 'no datastore_regex'
    detail = f'{what}: ' + ('; '.join(lines) or 'none usable')
    if skipped:
        detail += '; skipped: ' + ', '.join(skipped)
    if not lines:
        report.fail(
            'datastores',
            detail,
            'set [vmware] datastore_regex to match a VMFS or NFS datastore '
            'of the cluster that is accessible and not in maintenance',
        )
    else:
        report.passed('datastores', detail)


def _networks(session, node, integration_bridge: str | None, report):
    found = network.cluster_networks(session, node.cluster)
    counts: dict[str, int] = {}
    names = set()
    for ref, props in found.items():
        kind = NETWORK_KINDS.get(type(ref), 'other')
        counts[kind] = counts.get(kind, 0) + 1
        names.add(props.get('name'))
    detail = ', '.join(f'{n} {kind}' for kind, n in sorted(counts.items()))
    detail = f"the cluster's hosts have {detail or 'no networks'}"
    if integration_bridge and integration_bridge not in names:
        report.fail(
            'networks',
            detail + f'; none is named {integration_bridge!r}',
            "create the port group on the cluster's switch, or fix "
            '[vmware] integration_bridge',
        )
    elif not found:
        report.warn(
            'networks',
            detail,
            'servers with ports need their Neutron networks as port groups '
            "on the cluster's hosts (named as the network, or NSX segments)",
        )
    else:
        report.passed('networks', detail)


def _placement(session, node, regex: str | None, report) -> None:
    """What the periodic report will tell Placement, by the driver's own
    arithmetic (no allocation ratios set by the API are known here, so
    Nova's configured or initial ones apply)."""
    capacity = cluster.read_capacity(session, node, regex)
    inventory_ = resources.placement_inventory(capacity, {}, regex)
    parts = [
        f'{rc} total {entry["total"]}, largest request {entry["max_unit"]}'
        for rc, entry in sorted(inventory_.items())
    ]
    detail = '; '.join(parts) or 'nothing'
    if {'VCPU', 'MEMORY_MB', 'DISK_GB'} <= set(inventory_):
        report.passed(
            'placement',
            detail + " (MEMORY_MB: the largest host's free memory)",
        )
    else:
        report.fail(
            'placement',
            detail,
            'without usable hosts and datastores no server can be '
            'scheduled on this node',
        )
