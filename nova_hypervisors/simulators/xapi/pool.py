"""Pool membership: join, eject, master hand-over and failover.

``pool.join`` runs on the joining host, logs in to the master over HTTP
(so an unreachable master or wrong credentials fail as on a real network)
and checks xapi's preconditions in xapi's order.  The joiner's database is
then merged into the master's: its host objects are recreated, its local
SRs, their VDIs, its VMs with their VBDs and VIFs come along with new refs
(same UUIDs); networks are merged by bridge; the pool's shared SRs get a
PBD on the new member.  The joiner's own database is gone: its sessions
and refs are no longer valid, and API logins now need the master's
password.  An ejected host restarts as a fresh standalone host with its
own password again.
"""

from __future__ import annotations

import xmlrpc.client

from nova_hypervisors.simulators.xapi import bootstrap
from nova_hypervisors.simulators.xapi import host as host_ops
from nova_hypervisors.simulators.xapi import sessions
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.errors import operation_not_allowed
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message
from nova_hypervisors.simulators.xapi.store import ObjectStore
from nova_hypervisors.simulators.xapi.store import new_ref
from nova_hypervisors.simulators.xapi.store import new_uuid
from nova_hypervisors.simulators.xapi.topology import PoolState
from nova_hypervisors.simulators.xapi.topology import SimHost
from nova_hypervisors.simulators.xapi.topology import Topology

REMOTE_TIMEOUT = 10.0


# -- pool.join --------------------------------------------------------------


@message('pool.join')
def pool_join(
    ctx: CallContext,
    master_address: str,
    master_username: str,
    master_password: str,
) -> None:
    _join(ctx, master_address, master_username, master_password, False)


@message('pool.join_force')
def pool_join_force(
    ctx: CallContext,
    master_address: str,
    master_username: str,
    master_password: str,
) -> None:
    _join(ctx, master_address, master_username, master_password, True)


def _join(ctx, address: str, username: str, password: str, force: bool):
    joiner = ctx.endpoint
    store = ctx.store
    if ctx.topology.pool_of_address(address) is ctx.pool:
        # xapi finds this out after logging in; here the login would wait
        # for the database lock this call holds.
        raise operation_not_allowed(
            'Host is already part of a pool'
            if len(store.tables['host']) > 1
            else 'Host cannot become slave of itself'
        )
    remote_session = _remote_login(ctx.topology, address, username, password)
    target = ctx.topology.pool_of_address(address)
    try:
        if len(store.tables['host']) > 1:
            raise XapiFailure('JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS')
        vms = store.tables['VM'].values()
        if any(
            not vm['is_control_domain']
            and vm['power_state'] in ('Running', 'Paused', 'Suspended')
            for vm in vms
        ):
            raise XapiFailure(
                'JOINING_HOST_CANNOT_HAVE_RUNNING_OR_SUSPENDED_VMS'
            )
        if any(vm['current_operations'] for vm in vms):
            raise XapiFailure(
                'JOINING_HOST_CANNOT_HAVE_VMS_WITH_CURRENT_OPERATIONS'
            )
        master = target.master
        if joiner.api_version != master.api_version:
            raise XapiFailure(
                'POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION',
                '%d.%d' % joiner.api_version,
                '%d.%d' % master.api_version,
            )
        if not force and joiner.product_version != master.product_version:
            raise XapiFailure(
                'POOL_JOINING_HOST_MUST_HAVE_SAME_PRODUCT_VERSION'
            )
        if any(sr['shared'] for sr in store.tables['SR'].values()):
            raise XapiFailure('JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS')
    finally:
        _remote_call(ctx.topology, address, 'session.logout', remote_session)
    join_pool(ctx.topology, joiner, target)
    # The joiner's toolstack restarts into the pool (xen-api
    # ocaml/xapi/xapi_pool.ml, join_common): it refuses calls a moment.
    ctx.topology.faults.restart_host(
        joiner.name, ctx.topology.join_restart_seconds, grace=JOIN_GRACE
    )


def _remote_call(topology: Topology, address: str, method: str, *params):
    # The joiner talks to the master over https, as xapi does.
    if topology.tls is not None:
        url = 'https://%s:%d/' % (address, topology.port)
        transport = _TimeoutSafeTransport(
            context=topology.tls.client_context()
        )
    else:
        url = 'http://%s:%d/' % (address, topology.port)
        transport = _TimeoutTransport()
    proxy = xmlrpc.client.ServerProxy(
        url, allow_none=True, transport=transport
    )
    try:
        reply = getattr(proxy, method)(*params)
    except (TimeoutError, OSError, xmlrpc.client.ProtocolError):
        raise XapiFailure('JOINING_HOST_CONNECTION_FAILED') from None
    if reply.get('Status') != 'Success':
        raise XapiFailure.raw(reply.get('ErrorDescription') or ['UNKNOWN'])
    return reply.get('Value')


def _remote_login(topology, address, username, password) -> str:
    return _remote_call(
        topology,
        address,
        'session.login_with_password',
        username,
        password,
        '1.0',
        'pool.join',
    )


class _TimeoutTransport(xmlrpc.client.Transport):
    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = REMOTE_TIMEOUT
        return conn


#: Seconds between a join's reply (from the joiner) and its restart.
JOIN_GRACE = 0.2


class _TimeoutSafeTransport(xmlrpc.client.SafeTransport):
    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = REMOTE_TIMEOUT
        return conn


def join_pool(topology: Topology, joiner: SimHost, target: PoolState) -> None:
    """Merge a standalone host into ``target`` (xapi's join, minus reboot)."""
    source = joiner.pool.store
    dest = target.store
    with dest.lock:
        old_host = joiner.host_ref
        new_host = bootstrap.install_host(target, joiner)
        mapping = {old_host: new_host}
        _import_objects(topology, source, dest, mapping, joiner)
        dest.rebuild_backrefs()
        for sr in list(dest.tables['SR']):
            if dest.get('SR', sr)['shared']:
                _plug_shared_sr(dest, sr, new_host)
        host_ops.refresh_memory(dest, new_host)
    joiner.pool = target
    joiner.master_address = target.master.address
    joiner.password = target.password
    joiner.local_sessions.clear()


def _plug_shared_sr(store: ObjectStore, sr: str, host_ref: str) -> None:
    if store.find('PBD', SR=sr, host=host_ref):
        return
    template = store.get('PBD', store.get('SR', sr)['PBDs'][0])
    store.create(
        'PBD',
        {
            'host': host_ref,
            'SR': sr,
            'device_config': dict(template['device_config']),
            'currently_attached': True,
        },
    )


def _import_objects(topology, source, dest, mapping, joiner) -> None:
    """Copy the joiner's storage, networks and VMs into the pool."""
    model = source.model
    plan: list[tuple[str, str]] = []
    srs = [r for r, sr in source.tables['SR'].items() if not sr['shared']]
    for sr in srs:
        plan.append(('SR', sr))
        plan.extend(('VDI', v) for v in source.get('SR', sr)['VDIs'])
        plan.extend(('PBD', p) for p in source.get('SR', sr)['PBDs'])
    for net_ref, net in source.tables['network'].items():
        existing = dest.find('network', bridge=net['bridge'])
        if existing:
            mapping[net_ref] = existing[0]
        else:
            plan.append(('network', net_ref))
    for vm_ref, vm in source.tables['VM'].items():
        if vm['is_control_domain'] or vm['is_default_template']:
            continue
        plan.append(('VM', vm_ref))
        for cls, field in (('VM_metrics', 'metrics'),):
            if source.exists(cls, vm[field]):
                plan.append((cls, vm[field]))
        for vbd in vm['VBDs']:
            plan.append(('VBD', vbd))
            metrics = source.get('VBD', vbd)['metrics']
            if source.exists('VBD_metrics', metrics):
                plan.append(('VBD_metrics', metrics))
        for vif in vm['VIFs']:
            plan.append(('VIF', vif))
            metrics = source.get('VIF', vif)['metrics']
            if source.exists('VIF_metrics', metrics):
                plan.append(('VIF_metrics', metrics))
    for _cls, ref in plan:
        mapping[ref] = new_ref()
    for cls, ref in plan:
        fields = model.classes[cls].fields
        record = source.get(cls, ref)
        values = {
            name: _remap(fields[name].type, value, mapping)
            for name, value in record.items()
            if name not in model.backref_sets.get(cls, ())
        }
        dest.create(cls, values, ref=mapping[ref])


def _remap(xtype, value, mapping):
    kind = xtype.kind
    if kind == 'ref':
        return mapping.get(value, NULL_REF)
    if kind == 'set' and xtype.elem.kind == 'ref':
        return [mapping[v] for v in value if v in mapping]
    if kind == 'map' and (xtype.key.kind == 'ref' or xtype.elem.kind == 'ref'):
        result = {}
        for key, item in value.items():
            if xtype.key.kind == 'ref':
                if key not in mapping:
                    continue
                key = mapping[key]
            if xtype.elem.kind == 'ref':
                if item not in mapping:
                    continue
                item = mapping[item]
            result[key] = item
        return result
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value


# -- pool.eject ---------------------------------------------------------------


@message('pool.eject')
def pool_eject(ctx: CallContext, host: str) -> None:
    store = ctx.store
    target = _sim_host(ctx, host)
    if target is ctx.pool.master:
        raise operation_not_allowed('Cannot eject the pool master')
    if not target.answering:
        raise XapiFailure('HOST_OFFLINE', host)
    if host_ops.guest_vms(store, host):
        raise operation_not_allowed('VM resident on host')
    eject_host(ctx.topology, ctx.pool, target)
    # xen-api ocaml/xapi/xapi_pool.ml (eject_self): the host is reset to
    # its first-boot state and rebooted; it is away for a while.
    ctx.topology.faults.restart_host(
        target.name, ctx.topology.eject_reboot_seconds
    )


def eject_host(topology: Topology, state: PoolState, target: SimHost) -> None:
    """Remove ``target`` from the pool; it restarts as a fresh standalone."""
    store = state.store
    host_ref = target.host_ref
    host = store.get('host', host_ref)
    for pbd in list(host['PBDs']):
        sr = store.get('PBD', pbd)['SR']
        store.destroy('PBD', pbd)
        if not store.get('SR', sr)['PBDs']:
            _forget_sr(store, sr)
    topology.disks.destroy_sr(target.local_sr_uuid)
    for pif in list(host['PIFs']):
        metrics = store.get('PIF', pif)['metrics']
        store.destroy('PIF', pif)
        if store.exists('PIF_metrics', metrics):
            store.destroy('PIF_metrics', metrics)
    for cpu in list(host['host_CPUs']):
        store.destroy('host_cpu', cpu)
    dom0 = host['control_domain']
    if store.exists('VM', dom0):
        for console in list(store.get('VM', dom0)['consoles']):
            store.destroy('console', console)
        metrics = store.get('VM', dom0)['metrics']
        store.destroy('VM', dom0)
        if store.exists('VM_metrics', metrics):
            store.destroy('VM_metrics', metrics)
    for vm_ref, vm in list(store.tables['VM'].items()):
        if vm['affinity'] == host_ref:
            store.set('VM', vm_ref, 'affinity', NULL_REF)
    if store.exists('host_metrics', host['metrics']):
        store.destroy('host_metrics', host['metrics'])
    store.destroy('host', host_ref)
    target.local_sessions.clear()
    target.password = target.local_password
    target.local_sr_uuid = new_uuid()
    fresh = bootstrap.new_pool(topology, target, shared=False)
    with fresh.store.lock:
        host_ops.refresh_memory(fresh.store, target.host_ref)


def _forget_sr(store: ObjectStore, sr: str) -> None:
    for vdi in list(store.get('SR', sr)['VDIs']):
        for vbd in list(store.get('VDI', vdi)['VBDs']):
            store.destroy('VBD', vbd)
        store.destroy('VDI', vdi)
    store.destroy('SR', sr)


def _sim_host(ctx: CallContext, host_ref: str) -> SimHost:
    uuid = ctx.store.get('host', host_ref)['uuid']
    for sim_host in ctx.topology.hosts:
        if sim_host.uuid == uuid and sim_host.pool is ctx.pool:
            return sim_host
    raise XapiFailure('HOST_UNKNOWN_TO_MASTER', host_ref)


# -- mastership ---------------------------------------------------------------


@message('pool.designate_new_master')
def designate_new_master(ctx: CallContext, host: str) -> None:
    target = _sim_host(ctx, host)
    if target is ctx.pool.master:
        return
    if not target.answering:
        raise XapiFailure('HOST_OFFLINE', host)
    become_master(ctx.pool, target)
    for member in ctx.pool.members:
        member.master_address = target.address


def become_master(state: PoolState, new_master: SimHost) -> None:
    """``new_master`` runs the pool now; every session is lost."""
    store = state.store
    state.master = new_master
    new_master.master_address = new_master.address
    store.set('pool', state.pool_ref, 'master', new_master.host_ref)
    sessions.expire_all(store)
    for member in state.members:
        member.local_sessions.clear()
        if not member.answering and member.host_ref is not None:
            host_ops.set_live(store, member.host_ref, False)


@message('pool.emergency_transition_to_master')
def emergency_transition_to_master(ctx: CallContext) -> None:
    endpoint = ctx.endpoint
    if endpoint.is_master and endpoint.master_address == endpoint.address:
        return
    become_master(ctx.pool, endpoint)


@message('pool.emergency_reset_master')
def emergency_reset_master(ctx: CallContext, master_address: str) -> None:
    if master_address == ctx.endpoint.address:
        raise XapiFailure('HOST_ITS_OWN_SLAVE')
    ctx.endpoint.master_address = master_address


@message('pool.recover_slaves')
def recover_slaves(ctx: CallContext) -> list[str]:
    me = ctx.endpoint
    recovered = []
    for member in ctx.pool.members:
        if member is me or not member.answering:
            continue
        if member.master_address != me.address:
            member.master_address = me.address
            recovered.append(member.host_ref)
    return recovered
