"""Moving VMs: ``VM.pool_migrate`` and ``host.migrate_receive`` +
``VM.migrate_send``.

``pool_migrate`` moves a running VM to another member of its pool; its
disks must be on SRs the destination sees (a shared SR), or it fails with
``VM_REQUIRES_SR`` as in xapi.  ``migrate_receive`` on the destination
returns the map a source needs (``session_id``, ``host``, ``master``,
``xenops``, ``SM``); ``migrate_send`` on the source moves the VM there,
copying each disk to the SR ``vdi_map`` names and re-plugging each VIF on
the network ``vif_map`` names.  Inside one pool this is storage migration;
to another pool every disk and VIF must be mapped (``VDI_NOT_IN_MAP``,
``VIF_NOT_IN_MAP``) and the VM keeps its UUID but gets a new ref there.
"""

from __future__ import annotations

import urllib.parse

from nova_hypervisors.simulators.xapi import bootstrap
from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi import host as host_ops
from nova_hypervisors.simulators.xapi import storage
from nova_hypervisors.simulators.xapi import vm as vm_ops
from nova_hypervisors.simulators.xapi import vm_copy
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.errors import bad_power_state
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message
from nova_hypervisors.simulators.xapi.store import new_uuid


@message('VM.pool_migrate', long_running=True)
def vm_pool_migrate(
    ctx: CallContext, vm: str, host: str, options: dict
) -> None:
    with vm_ops.vm_operation(ctx, vm, 'pool_migrate'):
        same_host = ctx.store.get('VM', vm)['resident_on'] == host
        vm_ops.assert_can_boot_here(ctx, vm, host, check_memory=not same_host)
        vm_ops.move_resident(ctx, vm, host)


@message('host.migrate_receive')
def host_migrate_receive(
    ctx: CallContext, host: str, network: str, options: dict
) -> dict[str, str]:
    store = ctx.store
    if not host_ops.is_live(store, host):
        raise XapiFailure('HOST_OFFLINE', host)
    address = store.get('host', host)['address']
    session = store.create(
        'session',
        {
            'this_host': host,
            'last_active': codec.now(),
            'is_local_superuser': True,
            'auth_user_name': 'root',
            'originator': 'migrate_receive',
        },
    )
    port = ctx.topology.port
    master = ctx.pool.master.address
    return {
        'session_id': session,
        'host': host,
        'master': 'http://%s:%d/' % (master, port),
        'xenops': 'http://%s:%d/services/xenops?session_id=%s'
        % (address, port, session),
        'SM': 'http://%s:%d/services/SM?session_id=%s'
        % (address, port, session),
    }


class _Plan:
    """What a migrate_send will do, checked before anything changes."""

    def __init__(self, ctx, vm, dest, vdi_map, vif_map):
        self.ctx = ctx
        self.vm = vm
        store = ctx.store
        record = store.get('VM', vm)
        self.state = record['power_state']
        self.target = _destination_pool(ctx, dest)
        self.cross_pool = self.target is not ctx.pool
        target_store = self.target.store
        self.host = dest.get('host', '')
        if not target_store.exists('host', self.host):
            raise XapiFailure('HANDLE_INVALID', 'host', self.host)
        self.disks = vm_copy._disks(store, vm)
        self.vdi_map = dict(vdi_map)
        self.moves: dict[str, str] = {}
        #: source VDI -> the same VDI as the destination pool knows it.
        self.same_storage: dict[str, str] = {}
        for vdi in self.disks:
            sr = vdi_map.get(vdi)
            if sr is None:
                if self.cross_pool:
                    raise XapiFailure('VDI_NOT_IN_MAP', vdi)
                continue
            if not target_store.exists('SR', sr):
                raise XapiFailure('HANDLE_INVALID', 'SR', sr)
            if self.cross_pool and _same_sr(store, vdi, target_store, sr):
                self.same_storage[vdi] = _same_vdi(
                    store, vdi, target_store, sr
                )
            elif sr != store.get('VDI', vdi)['SR'] or self.cross_pool:
                self.moves[vdi] = sr
        self.networks: dict[str, str] = {}
        for vif in record['VIFs']:
            net = vif_map.get(vif)
            if net is None:
                if self.cross_pool:
                    raise XapiFailure('VIF_NOT_IN_MAP', vif)
                continue
            if not target_store.exists('network', net):
                raise XapiFailure('HANDLE_INVALID', 'network', net)
            self.networks[vif] = net
        if self.cross_pool and self.state not in (
            vm_ops.HALTED,
            vm_ops.RUNNING,
        ):
            raise bad_power_state(vm, ['Halted', 'Running'], self.state)

    def check_space(self) -> None:
        needed: dict[str, int] = {}
        for vdi, sr in self.moves.items():
            size = self.ctx.store.get('VDI', vdi)['virtual_size']
            needed[sr] = needed.get(sr, 0) + size
        for sr, size in needed.items():
            storage.assert_fits(self.target.store, sr, size)

    def check_memory(self) -> None:
        if self.state != vm_ops.RUNNING:
            return
        store = self.ctx.store
        if not self.cross_pool:
            if store.get('VM', self.vm)['resident_on'] != self.host:
                host_ops.assert_enough_memory(store, self.vm, self.host)
            return
        needed = host_ops.footprint(store.get('VM', self.vm))
        available = host_ops.free_memory(self.target.store, self.host)
        if needed > available:
            raise XapiFailure('HOST_NOT_ENOUGH_FREE_MEMORY', needed, available)


def _same_sr(store, vdi: str, target_store, sr: str) -> bool:
    """Whether ``sr`` of the destination pool is the VDI's own SR: the
    same storage introduced in both pools under the same uuid (a Cinder
    LUN's SR, which Nova's XenAPI driver names by the target)."""
    source_sr = store.get('VDI', vdi)['SR']
    return (
        store.get('SR', source_sr)['uuid']
        == target_store.get('SR', sr)['uuid']
    )


def _same_vdi(store, vdi: str, target_store, sr: str) -> str:
    """The destination pool's record of the VDI: same SR, same location.

    Nothing is copied or destroyed: both pools see the one LUN.  Nova's
    last in-tree XenAPI driver relied on this (nova 21,
    ``vmops._call_live_migrate_command``: volume VDIs mapped to the SR of
    the same uuid that ``pre_live_migration`` connected on the
    destination).  A VDI the destination has not found fails the send
    with ``VDI_LOCATION_MISSING`` before anything moves.
    """
    location = store.get('VDI', vdi)['location']
    for ref in target_store.get('SR', sr)['VDIs']:
        if target_store.get('VDI', ref)['location'] == location:
            return ref
    raise XapiFailure('VDI_LOCATION_MISSING', sr, location)


def _destination_pool(ctx: CallContext, dest: dict):
    for key in ('master', 'xenops', 'SM'):
        url = dest.get(key)
        if url:
            address = urllib.parse.urlsplit(url).hostname or ''
            target = ctx.topology.pool_of_address(address)
            if target is not None:
                session = dest.get('session_id', '')
                if session not in target.store.tables['session']:
                    raise XapiFailure('SESSION_INVALID', session)
                return target
    raise XapiFailure('VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED')


@message('VM.assert_can_migrate')
def vm_assert_can_migrate(
    ctx: CallContext,
    vm: str,
    dest: dict,
    live: bool,
    vdi_map: dict,
    vif_map: dict,
    options: dict,
    vgpu_map: dict,
) -> None:
    vm_ops.assert_operation(ctx.store, vm, 'migrate_send')
    plan = _Plan(ctx, vm, dest, vdi_map, vif_map)
    plan.check_space()
    plan.check_memory()


@message('VM.migrate_send', long_running=True)
def vm_migrate_send(
    ctx: CallContext,
    vm: str,
    dest: dict,
    live: bool,
    vdi_map: dict,
    vif_map: dict,
    options: dict,
    vgpu_map: dict,
) -> str:
    with vm_ops.vm_operation(ctx, vm, 'migrate_send'):
        plan = _Plan(ctx, vm, dest, vdi_map, vif_map)
        plan.check_space()
        plan.check_memory()
        if not plan.cross_pool:
            return _migrate_within_pool(ctx, plan)
        with plan.target.store.lock:
            new_vm = _migrate_to_pool(ctx, plan)
    _destroy_source(ctx, vm, list(plan.moves))
    return new_vm


def _eject_cds(ctx: CallContext, plan: _Plan) -> None:
    """CDs are never mirrored; xapi ejects those whose SR is not mapped.

    xen-api ocaml/xapi/xapi_vm_migrate.ml: ``vdi_filter`` leaves CD VBDs
    out of the mirror, and ``find_cds_to_eject`` ejects every CD whose
    VDI is not in the ``vdi_map`` to its own SR.
    """
    store = ctx.store
    for vbd in store.get('VM', plan.vm)['VBDs']:
        rec = store.get('VBD', vbd)
        if rec['type'] != 'CD' or rec['empty']:
            continue
        vdi = rec['VDI']
        if plan.vdi_map.get(vdi) != store.get('VDI', vdi)['SR']:
            # As VBD.eject: the drive stays, without its disc.
            store.update('VBD', vbd, VDI=NULL_REF, empty=True)


def _migrate_within_pool(ctx: CallContext, plan: _Plan) -> str:
    store = ctx.store
    _eject_cds(ctx, plan)
    for vbd in store.get('VM', plan.vm)['VBDs']:
        old = store.get('VBD', vbd)['VDI']
        if old in plan.moves:
            new = storage.vdi_copy(
                ctx, old, plan.moves[old], NULL_REF, NULL_REF
            )
            store.set('VBD', vbd, 'VDI', new)
            storage.destroy_vdi(ctx, old)
    for vif, net in plan.networks.items():
        store.set('VIF', vif, 'network', net)
    if plan.state == vm_ops.RUNNING:
        vm_ops.move_resident(ctx, plan.vm, plan.host)
    return plan.vm


def _migrate_to_pool(ctx: CallContext, plan: _Plan) -> str:
    """Recreate the VM in the destination pool's database."""
    source = ctx.store
    target = plan.target.store
    disks = ctx.topology.disks
    record = source.get('VM', plan.vm)
    backrefs = source.model.backref_sets.get('VM', ())
    values = {
        name: value
        for name, value in record.items()
        if name not in vm_copy.NOT_INHERITED and name not in backrefs
    }
    values.update(
        uuid=record['uuid'],
        power_state=vm_ops.HALTED,
        domid=-1,
        affinity=NULL_REF,
        suspend_SR=NULL_REF,
        protection_policy=NULL_REF,
        snapshot_schedule=NULL_REF,
        appliance=NULL_REF,
        metrics=bootstrap.create_vm_metrics(target),
    )
    new_vm = target.create('VM', values)
    for vbd in record['VBDs']:
        rec = source.get('VBD', vbd)
        vdi = rec['VDI']
        if vdi in plan.same_storage:
            vdi = plan.same_storage[vdi]
        elif vdi in plan.moves:
            src_vdi = source.get('VDI', vdi)
            sr = plan.moves[vdi]
            uuid = new_uuid()
            disks.copy(
                (source.get('SR', src_vdi['SR'])['uuid'], src_vdi['uuid']),
                (target.get('SR', sr)['uuid'], uuid),
                src_vdi['virtual_size'],
            )
            fields = {n: src_vdi[n] for n in storage.COPIED_VDI_FIELDS}
            vdi = target.create(
                'VDI',
                {
                    **fields,
                    'uuid': uuid,
                    'SR': sr,
                    'location': uuid,
                    'managed': True,
                    'virtual_size': src_vdi['virtual_size'],
                    'physical_utilisation': src_vdi['virtual_size'],
                },
            )
            storage.refresh_sr(target, sr)
        elif rec['type'] == 'CD' or rec['empty']:
            vdi = NULL_REF
        fields = {n: rec[n] for n in vm_copy.VBD_COPIED}
        if vdi == NULL_REF:
            fields.update(empty=True)
        target.create(
            'VBD',
            {
                **fields,
                'VM': new_vm,
                'VDI': vdi,
                'metrics': target.create('VBD_metrics', {}),
            },
        )
    for vif in record['VIFs']:
        rec = source.get('VIF', vif)
        fields = {n: rec[n] for n in vm_copy.VIF_COPIED}
        fields.update(network=plan.networks[vif], MAC=rec['MAC'])
        target.create(
            'VIF',
            {
                **fields,
                'VM': new_vm,
                'metrics': target.create('VIF_metrics', {}),
            },
        )
    target.set(
        'VM',
        new_vm,
        'memory_overhead',
        host_ops.memory_overhead(target.get('VM', new_vm)),
    )
    if plan.state == vm_ops.RUNNING:
        target_ctx = _context_for(ctx, plan.target)
        vm_ops.create_domain(target_ctx, new_vm, plan.host, vm_ops.RUNNING)
    vm_ops.update_allowed_operations(target, new_vm)
    return new_vm


def _context_for(ctx: CallContext, state) -> CallContext:
    return CallContext(
        topology=ctx.topology,
        endpoint=state.master,
        pool=state,
        method=ctx.method,
        protocol=ctx.protocol,
        session=None,
    )


def _destroy_source(ctx: CallContext, vm: str, moved: list[str]) -> None:
    store = ctx.store
    if store.get('VM', vm)['power_state'] != vm_ops.HALTED:
        vm_ops.destroy_domain(ctx, vm)
    vm_ops.vm_destroy(ctx, vm)
    for vdi in moved:
        if store.exists('VDI', vdi):
            storage.destroy_vdi(ctx, vdi)
