"""VIFs: one per Neutron port, on the XenServer network of its bridge.

Networks Nova creates are unmanaged (the bridge is Open vSwitch's, not
xapi's).  The port id is recorded in the VIF's ``other_config`` as
``nicira-iface-id`` (what xapi's vif scripts hand to Open vSwitch as the
interface id, so the Neutron agent binds the port) and ``neutron-port-id``.
A network the driver had to create for a bridge is tagged, and destroyed
again when its last VIF goes.
"""

from __future__ import annotations

from nova import exception
from oslo_concurrency import lockutils
from oslo_log import log as logging

from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vm_utils

LOG = logging.getLogger(__name__)

CREATED_BY_NOVA = 'nova_created_for_bridge'


def bridge_of(vif, default_bridge: str) -> str:
    network = vif.get('network') or {}
    return network.get('bridge') or default_bridge


def network_of_bridge(
    session: xsession.XenAPISession, bridge: str
) -> str | None:
    records = session.get_all_records_where(
        'network', 'field "bridge"=%s' % vm_utils.quote(bridge)
    )
    if not records:
        records = session.get_all_records_where(
            'network', 'field "name__label"=%s' % vm_utils.quote(bridge)
        )
    return next(iter(records), None)


def find_or_create_network(
    session: xsession.XenAPISession, bridge: str, created: list[str]
) -> str:
    """The XenServer network for ``bridge``; created (and noted) if none.

    The bridge belongs to Open vSwitch (Neutron's integration bridge), not
    to xapi, so the network is *unmanaged*: xapi then only checks that the
    bridge exists (``BRIDGE_NOT_AVAILABLE`` otherwise) and never destroys
    it when its last VIF goes, as it would a managed one (xen-api
    ``ocaml/xapi/xapi_network.ml``).  Two spawns may race to create it,
    here or on another compute of the pool: xapi refuses the second
    (``BRIDGE_NAME_EXISTS``), which then uses the winner's network.
    """
    with lockutils.lock('xenapi-network-%s' % bridge):
        found = network_of_bridge(session, bridge)
        if found is not None:
            return found
        try:
            ref = session.call_xenapi(
                'network.create',
                {
                    'name_label': bridge,
                    'name_description': 'Created by Nova for bridge %s'
                    % bridge,
                    'MTU': '1500',
                    'other_config': {CREATED_BY_NOVA: bridge},
                    'tags': [],
                    'bridge': bridge,
                    'managed': False,
                },
            )
        except exception.NovaException as exc:
            if errors.code_of(exc) != 'BRIDGE_NAME_EXISTS':
                raise
            found = network_of_bridge(session, bridge)
            if found is None:
                raise
            return found
    created.append(ref)
    return ref


def create_vif(
    session: xsession.XenAPISession,
    vm_ref: str,
    vif,
    device: int,
    default_bridge: str,
    created_networks: list[str],
) -> str:
    """One VIF for a port, at ``device``, on its bridge's network."""
    network_ref = find_or_create_network(
        session, bridge_of(vif, default_bridge), created_networks
    )
    network = vif.get('network') or {}
    mtu = network.get_meta('mtu') if hasattr(network, 'get_meta') else None
    return session.call_xenapi(
        'VIF.create',
        {
            'device': str(device),
            'network': network_ref,
            'VM': vm_ref,
            'MAC': vif['address'],
            'MTU': str(mtu or 1500),
            'other_config': {
                'nicira-iface-id': vif['id'],
                'neutron-port-id': vif['id'],
            },
            'qos_algorithm_type': '',
            'qos_algorithm_params': {},
            'locking_mode': 'network_default',
            'ipv4_allowed': [],
            'ipv6_allowed': [],
        },
    )


def create_vifs(
    session: xsession.XenAPISession,
    vm_ref: str,
    network_info,
    default_bridge: str,
    created_networks: list[str],
    created_vifs: list[str],
) -> None:
    """One VIF per port, device numbers in port order."""
    for device, vif in enumerate(network_info or []):
        created_vifs.append(
            create_vif(
                session, vm_ref, vif, device, default_bridge, created_networks
            )
        )


def vif_of_port(
    session: xsession.XenAPISession, vm_ref: str, vif
) -> str | None:
    """The VM's VIF of a port: by the port id we recorded, else its MAC."""
    records = session.get_all_records_where(
        'VIF', 'field "VM"=%s' % vm_utils.quote(vm_ref)
    )
    for ref, record in records.items():
        if (record.get('other_config') or {}).get('neutron-port-id') == vif[
            'id'
        ]:
            return ref
    for ref, record in records.items():
        if (record.get('MAC') or '').lower() == (vif['address'] or '').lower():
            return ref
    return None


def attach(
    session: xsession.XenAPISession, vm_ref: str, vif, default_bridge: str
) -> str:
    """Hot-plug a port's VIF: ``VIF.create`` at the first device xapi
    allows (``VM.get_allowed_VIF_devices``), ``VIF.plug`` when the VM runs
    (a halted VM gets it at its next start).  A failure leaves no VIF and
    no network Nova made for it."""
    allowed = session.call_xenapi('VM.get_allowed_VIF_devices', vm_ref)
    if not allowed:
        raise exception.InterfaceAttachFailed(instance_uuid=vm_ref)
    device = min(int(d) for d in allowed)
    created: list[str] = []
    ref = None
    try:
        ref = create_vif(session, vm_ref, vif, device, default_bridge, created)
        if session.call_xenapi('VM.get_power_state', vm_ref) == 'Running':
            session.call_xenapi('VIF.plug', ref)
    except Exception:
        if ref is not None:
            destroy_vifs(session, [ref])
        for network_ref in created:
            destroy_network_if_unused(session, network_ref)
        raise
    return ref


def detach(session: xsession.XenAPISession, vm_ref: str, vif) -> bool:
    """Unplug (when attached) and destroy a port's VIF; False if none."""
    ref = vif_of_port(session, vm_ref, vif)
    if ref is None:
        return False
    if session.call_xenapi('VIF.get_currently_attached', ref):
        session.call_xenapi('VIF.unplug', ref)
    destroy_vifs(session, [ref])
    return True


def destroy_network_if_unused(
    session: xsession.XenAPISession, network_ref: str
) -> None:
    """Destroy a network Nova created, once no VIF uses it."""
    record = session.get_rec('network', network_ref)
    if not record or CREATED_BY_NOVA not in (record.get('other_config') or {}):
        return
    if record.get('VIFs'):
        return
    try:
        session.call_xenapi('network.destroy', network_ref)
    except exception.NotFound:
        pass


def destroy_vifs(session: xsession.XenAPISession, vif_refs: list[str]) -> None:
    """Destroy VIFs, then any network Nova created that they leave empty."""
    networks = set()
    for ref in vif_refs:
        record = session.get_rec('VIF', ref)
        if record is None:
            continue
        networks.add(record['network'])
        try:
            session.call_xenapi('VIF.destroy', ref)
        except exception.NotFound:
            pass
    for network_ref in networks:
        destroy_network_if_unused(session, network_ref)
