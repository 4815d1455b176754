"""Neutron ports as VM network cards.

Each VIF becomes one vmxnet3 card with the port's MAC, backed by the
network Neutron bound it to: a distributed port group (``vif_type`` dvs, or
a port group named like the bridge), an NSX opaque network (the binding's
``nsx-logical-switch-id``), or a standard port group named like the bridge.
The datacenter's networks are read once per call, in one round trip.
"""

from typing import Any

from pyVmomi import vim

from nova import exception
from nova_hypervisors.vmwareapi import session as vc_session

NETWORK_PATHS = {
    vim.Network: ['name'],
    vim.dvs.DistributedVirtualPortgroup: [
        'name',
        'key',
        'config.distributedVirtualSwitch',
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


def nic_specs(
    session: vc_session.VCenterSession, datacenter: Any, network_info: list
) -> list[vim.vm.device.VirtualDeviceSpec]:
    """Device specs adding one card per VIF, in Nova's order."""
    if not network_info:
        return []
    networks = session.view_properties(datacenter, NETWORK_PATHS)
    switch_uuids = _switch_uuids(session, networks)
    specs = []
    for index, vif in enumerate(network_info):
        card = vim.vm.device.VirtualVmxnet3(
            key=-(200 + index),
            addressType='manual',
            macAddress=vif['address'],
            backing=_backing(vif, networks, switch_uuids),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                startConnected=True, allowGuestControl=True, connected=True
            ),
            externalId=vif['id'],
        )
        specs.append(
            vim.vm.device.VirtualDeviceSpec(operation='add', device=card)
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


def _backing(vif: Any, networks: dict, switch_uuids: dict) -> Any:
    details = vif.get('details') or {}
    switch_id = details.get('nsx-logical-switch-id')
    if switch_id:
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
                port = vim.dvs.PortConnection(
                    portgroupKey=props['key'],
                    switchUuid=switch_uuids[
                        props['config.distributedVirtualSwitch']
                    ],
                )
                return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(  # noqa: E501
                    port=port
                )
            if isinstance(ref, vim.OpaqueNetwork):
                continue
            return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                deviceName=name, network=ref
            )
    raise exception.NetworkNotFoundForBridge(bridge=', '.join(names) or '?')
