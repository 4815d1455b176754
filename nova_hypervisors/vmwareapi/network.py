"""Neutron ports as VM network cards.

Each VIF becomes one card (vmxnet3 unless the image's ``hw_vif_model`` says
otherwise) with the port's MAC, backed by the
network Neutron bound it to: a distributed port group (``vif_type`` dvs, or
a port group named like the bridge), an NSX opaque network (the binding's
``nsx-logical-switch-id``), or a standard port group named like the bridge.
Only the cluster's own networks count (``ClusterComputeResource.network``),
read once per call.  NSX-T segments are found on a VDS 7 as distributed
port groups with the segment's logical switch uuid, or as opaque networks.
"""

from typing import Any

from nova import exception
from pyVmomi import vim

from nova_hypervisors.vmwareapi import session as vc_session

NETWORK_PATHS = {
    vim.Network: ['name'],
    vim.dvs.DistributedVirtualPortgroup: [
        'name',
        'key',
        'config.distributedVirtualSwitch',
        'config.backingType',
        'config.logicalSwitchUuid',
    ],
    vim.OpaqueNetwork: [
        'name',
        'summary.opaqueNetworkId',
        'summary.opaqueNetworkType',
    ],
}


def _wanted_names(vif: Any) -> list[str]:
    details = vif.get('details') or {}
    network = vif.get('network') or {}
    names = [details.get('dvs_port_group_name'), network.get('bridge')]
    names.append(network.get('label'))
    return [name for name in names if name]


def cluster_networks(
    session: vc_session.VCenterSession, cluster: Any
) -> dict[Any, dict]:
    """The networks the cluster's hosts have, with what a NIC needs.

    ``ClusterComputeResource.network`` lists only networks present on the
    cluster's hosts: a port group of the same name on another cluster's
    switch, or one this cluster does not have, is never picked.
    """
    refs = (
        session.properties([cluster], vim.ClusterComputeResource, ['network'])[
            cluster
        ].get('network')
        or []
    )
    result = {}
    for kind, paths in NETWORK_PATHS.items():
        # Exact types: a DVPG or an opaque network is a vim.Network too.
        wanted = [ref for ref in refs if type(ref) is kind]
        if wanted:
            result.update(session.properties(wanted, kind, paths))
    return result


def nic_specs(
    session: vc_session.VCenterSession,
    cluster: Any,
    network_info: list,
    card_class: type = vim.vm.device.VirtualVmxnet3,
    allocation: Any = None,
) -> list[vim.vm.device.VirtualDeviceSpec]:
    """Device specs adding one card per VIF, in Nova's order, each with
    ``allocation`` (the flavor's ``quota:vif_*``) when there is one."""
    if not network_info:
        return []
    networks = cluster_networks(session, cluster)
    switch_uuids = _switch_uuids(session, networks)
    specs = []
    for index, vif in enumerate(network_info):
        card = card_class(
            key=-(200 + index),
            addressType='manual',
            macAddress=vif['address'],
            backing=_backing(vif, networks, switch_uuids),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                startConnected=True, allowGuestControl=True, connected=True
            ),
            externalId=vif['id'],
        )
        if allocation is not None:
            card.resourceAllocation = allocation
        specs.append(
            vim.vm.device.VirtualDeviceSpec(operation='add', device=card)
        )
    return specs


def retarget_specs(
    session: vc_session.VCenterSession,
    cluster: Any,
    network_info: list,
    devices: list | None,
) -> list[vim.vm.device.VirtualDeviceSpec]:
    """Edit specs putting each card (found by its VIF's MAC) on the
    network its VIF has in ``cluster``, for a move between clusters.

    ``RelocateSpec.deviceChange`` is how a relocation changes a card's
    backing; without it vCenter refuses a vMotion to hosts that lack the
    card's current network ("network not accessible").  Nova's in-tree
    driver rebuilds every card's backing the same way
    (vmops.live_migration, vm_util.update_vif_spec).
    """
    if not network_info:
        return []
    cards = {
        device.macAddress.lower(): device
        for device in devices or ()
        if isinstance(device, vim.vm.device.VirtualEthernetCard)
        and device.macAddress
    }
    networks = cluster_networks(session, cluster)
    switch_uuids = _switch_uuids(session, networks)
    specs = []
    for vif in network_info:
        card = cards.get((vif.get('address') or '').lower())
        if card is None:
            continue
        card.backing = _backing(vif, networks, switch_uuids)
        specs.append(
            vim.vm.device.VirtualDeviceSpec(operation='edit', device=card)
        )
    return specs


def _switch_uuids(session, networks) -> dict:
    switches = {
        props.get('config.distributedVirtualSwitch')
        for ref, props in networks.items()
        if isinstance(ref, vim.dvs.DistributedVirtualPortgroup)
    } - {None}
    found = session.properties(
        switches, vim.DistributedVirtualSwitch, ['uuid']
    )
    return {ref: props.get('uuid') for ref, props in found.items()}


def _dvs_backing(props: dict, switch_uuids: dict, port_key=None) -> Any:
    port = vim.dvs.PortConnection(
        portgroupKey=props['key'],
        switchUuid=switch_uuids[props['config.distributedVirtualSwitch']],
    )
    if port_key:
        port.portKey = port_key
    return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
        port=port
    )


def _backing(vif: Any, networks: dict, switch_uuids: dict) -> Any:
    details = vif.get('details') or {}
    switch_id = details.get('nsx-logical-switch-id')
    if switch_id:
        # NSX-T segments on a VDS 7 are distributed port groups with the
        # segment's logical switch uuid (pyVmomi DVPortgroupConfigInfo
        # logicalSwitchUuid, backingType "nsx", vSphere 7.0); N-VDS ones
        # are opaque networks.
        for ref, props in networks.items():
            if (
                isinstance(ref, vim.dvs.DistributedVirtualPortgroup)
                and props.get('config.logicalSwitchUuid') == switch_id
            ):
                return _dvs_backing(props, switch_uuids)
        for props in networks.values():
            if props.get('summary.opaqueNetworkId') == switch_id:
                return (
                    vim.vm.device.VirtualEthernetCard.OpaqueNetworkBackingInfo(
                        opaqueNetworkId=switch_id,
                        opaqueNetworkType=props.get(
                            'summary.opaqueNetworkType'
                        ),
                    )
                )
        raise exception.NetworkNotFoundForBridge(bridge=switch_id)
    names = _wanted_names(vif)
    for name in names:
        for ref, props in networks.items():
            if props.get('name') != name:
                continue
            if isinstance(ref, vim.dvs.DistributedVirtualPortgroup):
                return _dvs_backing(
                    props, switch_uuids, details.get('dvs_port_key')
                )
            if isinstance(ref, vim.OpaqueNetwork):
                continue
            return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                deviceName=name, network=ref
            )
    raise exception.NetworkNotFoundForBridge(bridge=', '.join(names) or '?')
