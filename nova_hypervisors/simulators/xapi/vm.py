"""VMs: the power-state machine and everything that follows a domain.

Checks run in xapi's order (``Xapi_vm_lifecycle.check_operation_error``):
an operation blocked by ``blocked_operations`` (``OPERATION_BLOCKED``),
then the power state (``VM_BAD_POWER_STATE [vm, expected, actual]`` with
lower-case states, ``expected`` listing every state the operation allows),
then another operation in progress (``OTHER_OPERATION_IN_PROGRESS``), then
the template flag (``VM_IS_TEMPLATE``).

Starting a VM places it like xapi does: the affinity host first, then the
host with most free memory among those that can run it; when none has the
memory, the start is attempted anyway so the client sees the real reason,
``HOST_NOT_ENOUGH_FREE_MEMORY [needed, available]``.  A running VM's VBDs
and VIFs are attached, it has a domid, a console and guest metrics;
halting it undoes all of that.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import re

from nova_hypervisors.simulators.xapi import bootstrap
from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi import host as host_ops
from nova_hypervisors.simulators.xapi import implicit
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.errors import bad_power_state
from nova_hypervisors.simulators.xapi.errors import operation_not_allowed
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message
from nova_hypervisors.simulators.xapi.store import new_ref

HALTED, PAUSED, SUSPENDED, RUNNING = 'Halted', 'Paused', 'Suspended', 'Running'
ALL_STATES = (HALTED, PAUSED, SUSPENDED, RUNNING)

# Power states each operation is allowed in, in xapi's order.
ALLOWED_STATES = {
    'start': (HALTED,),
    'start_on': (HALTED,),
    'provision': (HALTED,),
    'make_into_template': (HALTED,),
    'changing_static_range': (HALTED,),
    'changing_VCPUs': (HALTED,),
    'changing_memory_limits': (HALTED,),
    'changing_dynamic_range': (HALTED, RUNNING),
    'unpause': (PAUSED,),
    'resume': (SUSPENDED,),
    'resume_on': (SUSPENDED,),
    'clean_reboot': (RUNNING,),
    'clean_shutdown': (RUNNING,),
    'pause': (RUNNING,),
    'suspend': (RUNNING,),
    'pool_migrate': (RUNNING,),
    'hard_reboot': (PAUSED, RUNNING),
    'hard_shutdown': (PAUSED, SUSPENDED, RUNNING),
    'shutdown': (PAUSED, SUSPENDED, RUNNING),
    'checkpoint': (PAUSED, SUSPENDED, RUNNING),
    'clone': (HALTED,),
    'copy': (HALTED,),
    'destroy': (HALTED, SUSPENDED),
    'export': (HALTED, SUSPENDED),
    'migrate_send': (HALTED, SUSPENDED, RUNNING),
    'snapshot': ALL_STATES,
    'revert': ALL_STATES,
    'power_state_reset': ALL_STATES,
}
# Operations a template (or snapshot) refuses with VM_IS_TEMPLATE.
NOT_FOR_TEMPLATES = frozenset(
    {
        'start',
        'start_on',
        'resume',
        'resume_on',
        'pause',
        'unpause',
        'clean_reboot',
        'clean_shutdown',
        'hard_reboot',
        'hard_shutdown',
        'shutdown',
        'suspend',
        'pool_migrate',
        'checkpoint',
        'snapshot',
    }
)
# Operations on the control domain that xapi refuses.
NOT_FOR_CONTROL_DOMAIN = NOT_FOR_TEMPLATES | {'destroy', 'clone', 'copy'}


def check_operation(store, vm_ref: str, op: str) -> XapiFailure | None:
    """The error xapi would give for ``op`` now, or None."""
    vm = store.get('VM', vm_ref)
    blocked = vm['blocked_operations'].get(op)
    if blocked is not None:
        return XapiFailure('OPERATION_BLOCKED', vm_ref, blocked)
    allowed = ALLOWED_STATES.get(op, ALL_STATES)
    if op in ('clone', 'copy') and vm['is_a_snapshot']:
        allowed = (HALTED, SUSPENDED)
    if vm['power_state'] not in allowed:
        return bad_power_state(vm_ref, list(allowed), vm['power_state'])
    if vm['current_operations']:
        task, running = next(iter(vm['current_operations'].items()))
        return XapiFailure(
            'OTHER_OPERATION_IN_PROGRESS', 'VM', vm_ref, running, task
        )
    if vm['is_a_template'] and op in NOT_FOR_TEMPLATES:
        return XapiFailure('VM_IS_TEMPLATE', vm_ref)
    if vm['is_control_domain'] and op in NOT_FOR_CONTROL_DOMAIN:
        return operation_not_allowed(
            'Operation %s is not allowed on a control domain' % op
        )
    if op in CLEAN_OPERATIONS and lacks_feature(store, vm, CLEAN_FEATURES[op]):
        return XapiFailure('VM_LACKS_FEATURE', vm_ref)
    return None


# A clean shutdown or reboot asks the guest: an HVM guest must advertise it
# (xen-api ocaml/xapi/xapi_vm_lifecycle.ml, check_op_for_feature).
CLEAN_FEATURES = {
    'clean_shutdown': ('feature-shutdown', 'feature-poweroff'),
    'clean_reboot': ('feature-shutdown', 'feature-reboot'),
}
CLEAN_OPERATIONS = frozenset(CLEAN_FEATURES)


def lacks_feature(store, vm: dict, features: tuple[str, ...]) -> bool:
    """A running HVM guest whose tools advertise none of ``features``."""
    if vm['power_state'] != RUNNING or not host_ops.is_hvm(vm):
        return False
    metrics = vm['guest_metrics']
    if not store.exists('VM_guest_metrics', metrics):
        return True
    other = store.get('VM_guest_metrics', metrics)['other']
    return not any(other.get(f) == '1' for f in features)


def assert_operation(store, vm_ref: str, op: str) -> None:
    failure = check_operation(store, vm_ref, op)
    if failure is not None:
        raise failure


def update_allowed_operations(store, vm_ref: str) -> None:
    allowed = [
        op
        for op in ALLOWED_STATES
        if check_operation(store, vm_ref, op) is None
    ]
    store.set('VM', vm_ref, 'allowed_operations', allowed)


@contextlib.contextmanager
def vm_operation(ctx: CallContext, vm_ref: str, op: str) -> Iterator[None]:
    """Run ``op`` with the VM's current_operations showing it.

    Injected latency is spent inside, with the database unlocked, so that a
    concurrent call sees ``OTHER_OPERATION_IN_PROGRESS`` as on a real host
    where starting a VM takes time.
    """
    store = ctx.store
    assert_operation(store, vm_ref, op)
    key = ctx.task or new_ref()
    store.add_to_map('VM', vm_ref, 'current_operations', key, op)
    update_allowed_operations(store, vm_ref)
    try:
        ctx.spend_latency()
        yield
    finally:
        if store.exists('VM', vm_ref):
            store.remove_from_map('VM', vm_ref, 'current_operations', key)
            update_allowed_operations(store, vm_ref)


# -- placement -------------------------------------------------------------


def required_srs(store, vm_ref: str) -> list[str]:
    srs = []
    for vbd in store.get('VM', vm_ref)['VBDs']:
        rec = store.tables['VBD'].get(vbd)
        if rec is None or rec['empty'] or rec['type'] == 'CD':
            continue
        vdi = store.tables['VDI'].get(rec['VDI'])
        if vdi is not None and vdi['SR'] not in srs:
            srs.append(vdi['SR'])
    return srs


def sr_visible_from(store, sr: str, host_ref: str) -> bool:
    for pbd in store.get('SR', sr)['PBDs']:
        rec = store.get('PBD', pbd)
        if rec['host'] == host_ref and rec['currently_attached']:
            return True
    return False


def network_visible_from(store, network: str, host_ref: str) -> bool:
    pifs = store.get('network', network)['PIFs']
    if not pifs:
        return True  # an internal network exists on every host
    return any(store.get('PIF', pif)['host'] == host_ref for pif in pifs)


def assert_can_boot_here(
    ctx: CallContext, vm_ref: str, host_ref: str, check_memory: bool = True
) -> None:
    store = ctx.store
    vm = store.get('VM', vm_ref)
    host = store.get('host', host_ref)
    if not host_ops.is_live(store, host_ref):
        raise XapiFailure('HOST_NOT_LIVE')
    if not host['enabled'] and not vm['is_control_domain']:
        raise XapiFailure('HOST_DISABLED', host_ref)
    for sr in required_srs(store, vm_ref):
        if not sr_visible_from(store, sr, host_ref):
            raise XapiFailure('VM_REQUIRES_SR', vm_ref, sr)
    for vif in vm['VIFs']:
        network = store.get('VIF', vif)['network']
        if store.exists('network', network) and not network_visible_from(
            store, network, host_ref
        ):
            raise XapiFailure('VM_REQUIRES_NETWORK', vm_ref, network)
        assert_bridge_exists(ctx, network, host_ref)
    pcpus = len(host['host_CPUs'])
    if vm['VCPUs_at_startup'] > pcpus:
        raise XapiFailure(
            'HOST_NOT_ENOUGH_PCPUS', vm['VCPUs_at_startup'], pcpus
        )
    if check_memory:
        host_ops.assert_enough_memory(store, vm_ref, host_ref)


def assert_bridge_exists(ctx: CallContext, network: str, host_ref: str):
    """An unmanaged network's bridge must already exist on the host.

    xen-api ocaml/xapi/xapi_network.ml (attach/check for ``managed =
    false``): xapi never creates such a bridge, and answers
    ``BRIDGE_NOT_AVAILABLE`` where it is missing.
    """
    store = ctx.store
    if not store.exists('network', network):
        return
    record = store.get('network', network)
    if record['managed'] or record['PIFs']:
        return
    host = ctx.topology.host_by_address(store.get('host', host_ref)['address'])
    if host is None:
        return
    switches = ctx.topology.switches
    if switches is not None and host.name in switches.ovsdb:
        # The host's real switch decides, as dom0's does.
        found = switches.bridge_exists(host.name, record['bridge'])
    else:
        found = record['bridge'] in host.external_bridges
    if not found:
        raise XapiFailure('BRIDGE_NOT_AVAILABLE', record['bridge'])


def choose_host(ctx: CallContext, vm_ref: str) -> str:
    """xapi's placement without WLB: affinity first, then most free memory."""
    store = ctx.store
    hosts = sorted(
        store.refs('host'),
        key=lambda h: -host_ops.free_memory(store, h),
    )
    affinity = store.get('VM', vm_ref)['affinity']
    if affinity in hosts:
        hosts.remove(affinity)
        hosts.insert(0, affinity)
    for check_memory in (True, False):
        for host_ref in hosts:
            try:
                assert_can_boot_here(ctx, vm_ref, host_ref, check_memory)
            except XapiFailure:
                continue
            return host_ref
    if len(hosts) == 1:
        assert_can_boot_here(ctx, vm_ref, hosts[0])  # the specific reason
    raise XapiFailure('NO_HOSTS_AVAILABLE')


# -- domains ------------------------------------------------------------------


def next_domid(ctx: CallContext) -> int:
    """A new domain id: they only grow, as on a Xen host."""
    ctx.topology.next_domid += 1
    return ctx.topology.next_domid


def create_domain(ctx: CallContext, vm_ref: str, host_ref: str, state: str):
    """The VM now runs (or is paused) on ``host_ref``."""
    store = ctx.store
    assert_can_boot_here(ctx, vm_ref, host_ref)
    assert_vdis_free(store, vm_ref)
    vm = store.get('VM', vm_ref)
    assert_xenstore_paths(vm)
    now = codec.now()
    store.update(
        'VM',
        vm_ref,
        power_state=state,
        resident_on=host_ref,
        scheduled_to_be_resident_on=NULL_REF,
        domid=next_domid(ctx),
        memory_target=vm['memory_static_max'],
    )
    metrics = vm['metrics']
    if store.exists('VM_metrics', metrics):
        store.update(
            'VM_metrics',
            metrics,
            memory_actual=vm['memory_static_max'],
            VCPUs_number=vm['VCPUs_at_startup'],
            start_time=now,
            last_updated=now,
            hvm=host_ops.is_hvm(vm),
            current_domain_type=vm['domain_type'],
            state=[],
        )
    for vbd in vm['VBDs']:
        rec = store.get('VBD', vbd)
        if not rec['empty']:
            store.update(
                'VBD', vbd, currently_attached=True, device=device_name(rec)
            )
    for vif in vm['VIFs']:
        store.set('VIF', vif, 'currently_attached', True)
    if not vm['consoles']:
        store.create(
            'console',
            {
                'protocol': 'rfb' if host_ops.is_hvm(vm) else 'vt100',
                'location': 'https://%s/console?uuid=%s'
                % (store.get('host', host_ref)['address'], vm['uuid']),
                'VM': vm_ref,
            },
        )
    _create_guest_metrics(store, vm_ref, ctx.topology.guest_tools)
    host_ops.refresh_memory(store, host_ref)


# Characters xenstored accepts in a path (Xen docs/misc/xenstore.txt);
# anything else is refused with EINVAL.
_XENSTORE_PATH = re.compile(r'[A-Za-z0-9\-/_@]+')


def assert_xenstore_paths(vm: dict) -> None:
    """xenopsd writes ``xenstore_data`` into the domain at build time.

    xen-api: ocaml/xenopsd/xc/domain.ml (``make``/``build``) writes
    ``xsdata`` in the domain-build transaction; xenstored answers EINVAL
    for a path with any other character, and the start fails.
    """
    for key in vm['xenstore_data']:
        if not _XENSTORE_PATH.fullmatch(key):
            raise XapiFailure(
                'INTERNAL_ERROR',
                'xenopsd internal error: Xs_protocol.Error("EINVAL") '
                'writing xenstore path %s' % key,
            )


def destroy_domain(ctx: CallContext, vm_ref: str) -> None:
    """The VM's domain is gone: it is halted."""
    store = ctx.store
    vm = store.get('VM', vm_ref)
    host_ref = vm['resident_on']
    if vm['power_state'] == SUSPENDED:
        destroy_suspend_vdi(ctx, vm_ref)
    store.update(
        'VM',
        vm_ref,
        power_state=HALTED,
        resident_on=NULL_REF,
        scheduled_to_be_resident_on=NULL_REF,
        domid=-1,
    )
    for vbd in vm['VBDs']:
        store.set('VBD', vbd, 'currently_attached', False)
    for vif in vm['VIFs']:
        store.set('VIF', vif, 'currently_attached', False)
    for console in list(vm['consoles']):
        store.destroy('console', console)
    destroy_guest_metrics(store, vm_ref)
    if store.exists('VM_metrics', vm['metrics']):
        store.update('VM_metrics', vm['metrics'], memory_actual=0, state=[])
    host_ops.refresh_memory(store, host_ref)


def move_resident(ctx: CallContext, vm_ref: str, host_ref: str) -> None:
    """A live migration inside the pool: same domain state, new host."""
    store = ctx.store
    source = store.get('VM', vm_ref)['resident_on']
    store.update(
        'VM',
        vm_ref,
        resident_on=host_ref,
        domid=next_domid(ctx),
        scheduled_to_be_resident_on=NULL_REF,
    )
    vm = store.get('VM', vm_ref)
    for console in list(vm['consoles']):
        store.set(
            'console',
            console,
            'location',
            'https://%s/console?uuid=%s'
            % (store.get('host', host_ref)['address'], vm['uuid']),
        )
    host_ops.refresh_memory(store, source)
    host_ops.refresh_memory(store, host_ref)


def assert_vdis_free(store, vm_ref: str) -> None:
    """A non-sharable VDI is attached to one running VM at a time."""
    for vbd in store.get('VM', vm_ref)['VBDs']:
        rec = store.get('VBD', vbd)
        if rec['empty'] or not store.exists('VDI', rec['VDI']):
            continue
        vdi = store.get('VDI', rec['VDI'])
        if vdi['sharable']:
            continue
        for other in vdi['VBDs']:
            other_rec = store.tables['VBD'].get(other)
            if (
                other != vbd
                and other_rec is not None
                and other_rec['currently_attached']
                and other_rec['VM'] != vm_ref
                and (other_rec['mode'] == 'RW' or rec['mode'] == 'RW')
            ):
                raise XapiFailure('VDI_IN_USE', rec['VDI'], 'attach')


def device_name(vbd: dict) -> str:
    user = vbd['userdevice']
    if user.isdigit():
        return 'xvd%s' % chr(ord('a') + int(user))
    return user


def _create_guest_metrics(store, vm_ref: str, tools: bool) -> None:
    """What the guest's tools report; a guest without tools reports
    nothing, and has no guest metrics at all."""
    vm = store.get('VM', vm_ref)
    if not tools or store.exists('VM_guest_metrics', vm['guest_metrics']):
        return
    networks = {}
    for vif in vm['VIFs']:
        device = store.get('VIF', vif)['device']
        index = len(networks) + 1
        networks['%s/ip' % device] = '10.%d.%d.%d' % (
            (vm['domid'] >> 8) & 255,
            vm['domid'] & 255,
            index,
        )
    metrics = store.create(
        'VM_guest_metrics',
        {
            'os_version': {
                'name': 'Simulated Linux',
                'distro': 'xapi-sim',
                'major': '1',
                'minor': '0',
            },
            'PV_drivers_version': {
                'major': '9',
                'minor': '4',
                'micro': '0',
                'build': '1',
            },
            'PV_drivers_up_to_date': True,
            'PV_drivers_detected': True,
            'networks': networks,
            'memory': {},
            'disks': {},
            'other': {'feature-shutdown': '1', 'has-vendor-device': '0'},
            'last_updated': codec.now(),
            'live': True,
            'can_use_hotplug_vbd': 'yes',
            'can_use_hotplug_vif': 'yes',
        },
    )
    store.set('VM', vm_ref, 'guest_metrics', metrics)


def destroy_guest_metrics(store, vm_ref: str) -> None:
    metrics = store.get('VM', vm_ref)['guest_metrics']
    store.set('VM', vm_ref, 'guest_metrics', NULL_REF)
    if store.exists('VM_guest_metrics', metrics):
        store.destroy('VM_guest_metrics', metrics)


def destroy_suspend_vdi(ctx: CallContext, vm_ref: str) -> None:
    from nova_hypervisors.simulators.xapi import storage

    vdi = ctx.store.get('VM', vm_ref)['suspend_VDI']
    ctx.store.set('VM', vm_ref, 'suspend_VDI', NULL_REF)
    if ctx.store.exists('VDI', vdi):
        storage.destroy_vdi(ctx, vdi)


# -- messages ----------------------------------------------------------------


@message('VM.create')
def vm_create(ctx: CallContext, record: dict) -> str:
    values = implicit.constructor_values(ctx, 'VM', record)
    check_memory_constraints(values)
    values.update(
        power_state=HALTED,
        domid=-1,
        resident_on=NULL_REF,
        is_control_domain=False,
        metrics=bootstrap.create_vm_metrics(ctx.store),
    )
    if values.get('domain_type', 'unspecified') == 'unspecified':
        hvm = values.get('HVM_boot_policy', '') != ''
        values['domain_type'] = 'hvm' if hvm else 'pv'
    vm_ref = ctx.store.create('VM', values)
    vm = ctx.store.get('VM', vm_ref)
    ctx.store.set(
        'VM', vm_ref, 'memory_overhead', host_ops.memory_overhead(vm)
    )
    update_allowed_operations(ctx.store, vm_ref)
    return vm_ref


def check_memory_constraints(values: dict) -> None:
    """static_min <= dynamic_min <= dynamic_max <= static_max."""
    order = [
        values.get(k, 0)
        for k in (
            'memory_static_min',
            'memory_dynamic_min',
            'memory_dynamic_max',
            'memory_static_max',
        )
    ]
    if order != sorted(order):
        raise XapiFailure('MEMORY_CONSTRAINT_VIOLATION_ORDER')
    if values.get('VCPUs_at_startup', 1) > values.get('VCPUs_max', 1):
        raise XapiFailure(
            'INVALID_VALUE',
            'VCPU values must satisfy: 0 < VCPUs_at_startup <= VCPUs_max',
            str(values.get('VCPUs_at_startup')),
        )


@message('VM.destroy')
def vm_destroy(ctx: CallContext, vm_ref: str) -> None:
    store = ctx.store
    assert_operation(store, vm_ref, 'destroy')
    vm = store.get('VM', vm_ref)
    if vm['power_state'] == SUSPENDED:
        destroy_suspend_vdi(ctx, vm_ref)
    for vbd in list(vm['VBDs']):
        metrics = store.get('VBD', vbd)['metrics']
        store.destroy('VBD', vbd)
        if store.exists('VBD_metrics', metrics):
            store.destroy('VBD_metrics', metrics)
    for vif in list(vm['VIFs']):
        metrics = store.get('VIF', vif)['metrics']
        store.destroy('VIF', vif)
        if store.exists('VIF_metrics', metrics):
            store.destroy('VIF_metrics', metrics)
    for console in list(vm['consoles']):
        store.destroy('console', console)
    for vtpm in list(vm['VTPMs']):
        store.destroy('VTPM', vtpm)
    destroy_guest_metrics(store, vm_ref)
    if store.exists('VM_metrics', vm['metrics']):
        store.destroy('VM_metrics', vm['metrics'])
    store.destroy('VM', vm_ref)
