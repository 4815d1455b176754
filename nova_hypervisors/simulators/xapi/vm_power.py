"""VM messages beyond create/destroy: power operations and settings.

Each power operation runs inside :func:`vm.vm_operation`, so it is checked
in xapi's order and shows in ``current_operations`` while it runs; the
domain bookkeeping itself lives in :mod:`vm`.
"""

from __future__ import annotations

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi import host as host_ops
from nova_hypervisors.simulators.xapi import storage
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.errors import operation_not_allowed
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message
from nova_hypervisors.simulators.xapi.vm import PAUSED
from nova_hypervisors.simulators.xapi.vm import RUNNING
from nova_hypervisors.simulators.xapi.vm import SUSPENDED
from nova_hypervisors.simulators.xapi.vm import assert_can_boot_here
from nova_hypervisors.simulators.xapi.vm import assert_operation
from nova_hypervisors.simulators.xapi.vm import check_memory_constraints
from nova_hypervisors.simulators.xapi.vm import choose_host
from nova_hypervisors.simulators.xapi.vm import create_domain
from nova_hypervisors.simulators.xapi.vm import destroy_domain
from nova_hypervisors.simulators.xapi.vm import destroy_guest_metrics
from nova_hypervisors.simulators.xapi.vm import destroy_suspend_vdi
from nova_hypervisors.simulators.xapi.vm import next_domid
from nova_hypervisors.simulators.xapi.vm import update_allowed_operations
from nova_hypervisors.simulators.xapi.vm import vm_operation


@message('VM.start', long_running=True)
def vm_start(ctx: CallContext, vm: str, start_paused: bool, force: bool):
    with vm_operation(ctx, vm, 'start'):
        host_ref = choose_host(ctx, vm)
        create_domain(ctx, vm, host_ref, PAUSED if start_paused else RUNNING)


@message('VM.start_on', long_running=True)
def vm_start_on(
    ctx: CallContext, vm: str, host: str, start_paused: bool, force: bool
):
    with vm_operation(ctx, vm, 'start_on'):
        create_domain(ctx, vm, host, PAUSED if start_paused else RUNNING)


def _halt(op: str):
    def halt(ctx: CallContext, vm: str) -> None:
        with vm_operation(ctx, vm, op):
            destroy_domain(ctx, vm)

    return halt


for _op in ('clean_shutdown', 'hard_shutdown', 'shutdown'):
    message('VM.%s' % _op, long_running=True)(_halt(_op))


def _reboot(op: str):
    def reboot(ctx: CallContext, vm: str) -> None:
        with vm_operation(ctx, vm, op):
            store = ctx.store
            store.update(
                'VM',
                vm,
                power_state=RUNNING,
                domid=next_domid(ctx),
            )
            metrics = store.get('VM', vm)['metrics']
            if store.exists('VM_metrics', metrics):
                store.set('VM_metrics', metrics, 'start_time', codec.now())

    return reboot


for _op in ('clean_reboot', 'hard_reboot'):
    message('VM.%s' % _op, long_running=True)(_reboot(_op))


@message('VM.pause', long_running=True)
def vm_pause(ctx: CallContext, vm: str) -> None:
    with vm_operation(ctx, vm, 'pause'):
        ctx.store.set('VM', vm, 'power_state', PAUSED)


@message('VM.unpause', long_running=True)
def vm_unpause(ctx: CallContext, vm: str) -> None:
    with vm_operation(ctx, vm, 'unpause'):
        ctx.store.set('VM', vm, 'power_state', RUNNING)


@message('VM.suspend', long_running=True)
def vm_suspend(ctx: CallContext, vm: str) -> None:
    store = ctx.store
    with vm_operation(ctx, vm, 'suspend'):
        rec = store.get('VM', vm)
        sr = rec['suspend_SR']
        if not store.exists('SR', sr):
            sr = store.get('pool', ctx.pool_ref)['suspend_image_SR']
        if not store.exists('SR', sr):
            raise XapiFailure('VM_NO_SUSPEND_SR', vm)
        suspend_vdi = storage.new_vdi(
            ctx,
            sr,
            rec['memory_static_max'] + 4 * 1024 * 1024,
            name_label='Suspend image',
            vdi_type='suspend',
        )
        host_ref = rec['resident_on']
        store.update(
            'VM',
            vm,
            power_state=SUSPENDED,
            suspend_VDI=suspend_vdi,
            resident_on=NULL_REF,
            domid=-1,
        )
        for console in list(rec['consoles']):
            store.destroy('console', console)
        destroy_guest_metrics(store, vm)
        host_ops.refresh_memory(store, host_ref)


def _resume(ctx: CallContext, vm: str, host_ref: str | None, paused: bool):
    host_ref = host_ref or choose_host(ctx, vm)
    create_domain(ctx, vm, host_ref, PAUSED if paused else RUNNING)
    destroy_suspend_vdi(ctx, vm)


@message('VM.resume', long_running=True)
def vm_resume(ctx: CallContext, vm: str, start_paused: bool, force: bool):
    with vm_operation(ctx, vm, 'resume'):
        _resume(ctx, vm, None, start_paused)


@message('VM.resume_on', long_running=True)
def vm_resume_on(
    ctx: CallContext, vm: str, host: str, start_paused: bool, force: bool
):
    with vm_operation(ctx, vm, 'resume_on'):
        _resume(ctx, vm, host, start_paused)


@message('VM.power_state_reset')
def vm_power_state_reset(ctx: CallContext, vm: str) -> None:
    if ctx.store.get('VM', vm)['is_control_domain']:
        raise operation_not_allowed('Cannot reset the control domain')
    destroy_domain(ctx, vm)
    update_allowed_operations(ctx.store, vm)


@message('VM.assert_can_boot_here')
def vm_assert_can_boot_here(ctx: CallContext, vm: str, host: str) -> None:
    assert_can_boot_here(ctx, vm, host)


@message('VM.get_possible_hosts')
def vm_get_possible_hosts(ctx: CallContext, vm: str) -> list[str]:
    possible = []
    for host_ref in ctx.store.refs('host'):
        try:
            assert_can_boot_here(ctx, vm, host_ref)
        except XapiFailure:
            continue
        possible.append(host_ref)
    return possible


@message('VM.compute_memory_overhead')
def vm_compute_memory_overhead(ctx: CallContext, vm: str) -> int:
    return host_ops.memory_overhead(ctx.store.get('VM', vm))


@message('VM.get_allowed_VBD_devices')
def vm_allowed_vbd_devices(ctx: CallContext, vm: str) -> list[str]:
    used = {ctx.store.get('VBD', v)['userdevice'] for v in _vbds(ctx, vm)}
    return [str(i) for i in range(255) if str(i) not in used]


@message('VM.get_allowed_VIF_devices')
def vm_allowed_vif_devices(ctx: CallContext, vm: str) -> list[str]:
    vifs = ctx.store.get('VM', vm)['VIFs']
    used = {ctx.store.get('VIF', v)['device'] for v in vifs}
    return [str(i) for i in range(7) if str(i) not in used]


@message('VM.get_cooperative')
def vm_get_cooperative(ctx: CallContext, vm: str) -> bool:
    ctx.store.get('VM', vm)
    return True


@message('VM.set_is_a_template')
def vm_set_is_a_template(ctx: CallContext, vm: str, value: bool) -> None:
    if value:
        assert_operation(ctx.store, vm, 'make_into_template')
    ctx.store.set('VM', vm, 'is_a_template', value)
    update_allowed_operations(ctx.store, vm)


def _vbds(ctx: CallContext, vm: str) -> list[str]:
    return ctx.store.get('VM', vm)['VBDs']


def _memory_setter(fields: tuple[str, ...], op: str):
    def set_memory(ctx: CallContext, vm: str, *values: int) -> None:
        store = ctx.store
        assert_operation(store, vm, op)
        if len(fields) == 4 and len(values) == 1:
            values = values * 4
        updates = dict(zip(fields, values, strict=True))
        check_memory_constraints({**store.get('VM', vm), **updates})
        store.update('VM', vm, **updates)
        rec = store.get('VM', vm)
        store.set('VM', vm, 'memory_overhead', host_ops.memory_overhead(rec))

    return set_memory


_STATIC = 'changing_static_range'
_DYNAMIC = 'changing_dynamic_range'
for _name, _fields, _op in (
    ('set_memory_static_max', ('memory_static_max',), _STATIC),
    ('set_memory_static_min', ('memory_static_min',), _STATIC),
    ('set_memory_dynamic_max', ('memory_dynamic_max',), _DYNAMIC),
    ('set_memory_dynamic_min', ('memory_dynamic_min',), _DYNAMIC),
    (
        'set_memory_static_range',
        ('memory_static_min', 'memory_static_max'),
        _STATIC,
    ),
    (
        'set_memory_dynamic_range',
        ('memory_dynamic_min', 'memory_dynamic_max'),
        _DYNAMIC,
    ),
    (
        'set_memory_limits',
        (
            'memory_static_min',
            'memory_static_max',
            'memory_dynamic_min',
            'memory_dynamic_max',
        ),
        'changing_memory_limits',
    ),
    (
        'set_memory',
        (
            'memory_static_min',
            'memory_static_max',
            'memory_dynamic_min',
            'memory_dynamic_max',
        ),
        'changing_memory_limits',
    ),
):
    message('VM.%s' % _name)(_memory_setter(_fields, _op))


def _vcpu_setter(field: str):
    def set_vcpus(ctx: CallContext, vm: str, value: int) -> None:
        store = ctx.store
        assert_operation(store, vm, 'changing_VCPUs')
        values = {**store.get('VM', vm), field: value}
        if value < 1:
            raise XapiFailure('VM_NO_VCPUS', vm)
        check_memory_constraints(values)
        store.set('VM', vm, field, value)
        rec = store.get('VM', vm)
        store.set('VM', vm, 'memory_overhead', host_ops.memory_overhead(rec))

    return set_vcpus


message('VM.set_VCPUs_max')(_vcpu_setter('VCPUs_max'))
message('VM.set_VCPUs_at_startup')(_vcpu_setter('VCPUs_at_startup'))
