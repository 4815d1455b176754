"""Hosts: memory accounting, enable/disable, evacuation.

Memory follows xapi's static accounting (``Memory_check`` with the
``Static_max`` policy): a host's free memory is its total, less what Xen
keeps (``host.memory_overhead``), less ``memory_static_max +
memory_overhead`` of every domain resident or scheduled on it, the control
domain included.  ``host_metrics.memory_free`` is kept equal to
``host.compute_free_memory``, so what a driver reports is what ``VM.start``
enforces with ``HOST_NOT_ENOUGH_FREE_MEMORY [needed, available]``.
"""

from __future__ import annotations

import math
import time

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message
from nova_hypervisors.simulators.xapi.store import ObjectStore
from nova_hypervisors.simulators.xapi.topology import MIB

ACTIVE_STATES = ('Running', 'Paused')


def is_hvm(vm: dict) -> bool:
    if vm['domain_type'] == 'unspecified':
        return vm['HVM_boot_policy'] != ''
    return vm['domain_type'] == 'hvm'


def memory_overhead(vm: dict) -> int:
    """Bytes a domain needs beyond its RAM, after xapi's memory model.

    HVM guests need shadow memory for their page tables: 256 pages per vCPU
    plus two pages per MiB of guest RAM (p2m and shadow), times the shadow
    multiplier; every domain needs about one MiB for Xen's own records.
    """
    if vm['is_control_domain']:
        return 0
    static_max_mib = math.ceil(vm['memory_static_max'] / MIB)
    if is_hvm(vm):
        pages = 256 * max(1, vm['VCPUs_max']) + 2 * static_max_mib
        shadow_mib = math.ceil(pages / 256 * vm['HVM_shadow_multiplier'])
        return (1 + shadow_mib) * MIB
    return (1 + math.ceil(static_max_mib / 512)) * MIB


def footprint(vm: dict) -> int:
    return vm['memory_static_max'] + vm['memory_overhead']


def free_memory(store: ObjectStore, host_ref: str) -> int:
    host = store.get('host', host_ref)
    metrics = store.get('host_metrics', host['metrics'])
    free = metrics['memory_total'] - host['memory_overhead']
    vms = store.tables['VM']
    counted = set()
    for vm_ref in host['resident_VMs']:
        vm = vms.get(vm_ref)
        if vm is not None and vm['power_state'] in ACTIVE_STATES:
            free -= footprint(vm)
            counted.add(vm_ref)
    for vm_ref, vm in vms.items():
        if (
            vm['scheduled_to_be_resident_on'] == host_ref
            and vm_ref not in counted
        ):
            free -= footprint(vm)
    return free


def refresh_memory(store: ObjectStore, host_ref: str) -> None:
    """Publish the host's free memory in its host_metrics."""
    if host_ref == NULL_REF or not store.exists('host', host_ref):
        return
    metrics = store.get('host', host_ref)['metrics']
    store.update(
        'host_metrics',
        metrics,
        memory_free=free_memory(store, host_ref),
        last_updated=codec.now(),
    )


def assert_enough_memory(
    store: ObjectStore, vm_ref: str, host_ref: str
) -> None:
    vm = store.get('VM', vm_ref)
    needed = footprint(vm)
    available = free_memory(store, host_ref)
    if needed > available:
        raise XapiFailure('HOST_NOT_ENOUGH_FREE_MEMORY', needed, available)


def is_live(store: ObjectStore, host_ref: str) -> bool:
    host = store.get('host', host_ref)
    return store.get('host_metrics', host['metrics'])['live']


def set_live(store: ObjectStore, host_ref: str, live: bool) -> None:
    host = store.get('host', host_ref)
    store.update(
        'host_metrics', host['metrics'], live=live, last_updated=codec.now()
    )


def management_pif(store: ObjectStore, host_ref: str) -> str:
    for pif in store.get('host', host_ref)['PIFs']:
        if store.get('PIF', pif)['management']:
            return pif
    return NULL_REF


def guest_vms(store: ObjectStore, host_ref: str) -> list[str]:
    """Guests (not the control domain) running or paused on the host."""
    vms = store.tables['VM']
    return [
        ref
        for ref in store.get('host', host_ref)['resident_VMs']
        if ref in vms
        and not vms[ref]['is_control_domain']
        and vms[ref]['power_state'] in ACTIVE_STATES
    ]


@message('host.compute_free_memory')
def compute_free_memory(ctx: CallContext, host: str) -> int:
    return free_memory(ctx.store, host)


@message('host.compute_memory_overhead')
def compute_memory_overhead(ctx: CallContext, host: str) -> int:
    return ctx.store.get('host', host)['memory_overhead']


@message('host.disable')
def disable(ctx: CallContext, host: str) -> None:
    ctx.store.set('host', host, 'enabled', False)


@message('host.enable')
def enable(ctx: CallContext, host: str) -> None:
    if not is_live(ctx.store, host):
        raise XapiFailure('HOST_OFFLINE', host)
    ctx.store.set('host', host, 'enabled', True)


@message('host.get_management_interface')
def get_management_interface(ctx: CallContext, host: str) -> str:
    return management_pif(ctx.store, host)


@message('host.get_servertime')
def get_servertime(ctx: CallContext, host: str) -> str:
    return codec.now()


@message('host.get_server_localtime')
def get_server_localtime(ctx: CallContext, host: str) -> str:
    return time.strftime('%Y%m%dT%H:%M:%S', time.localtime())


@message('host.get_vms_which_prevent_evacuation')
def get_vms_which_prevent_evacuation(
    ctx: CallContext, host: str
) -> dict[str, list[str]]:
    plan, problems = evacuation_plan(ctx, host)
    return problems


@message('host.assert_can_evacuate')
def assert_can_evacuate(ctx: CallContext, host: str) -> None:
    _plan, problems = evacuation_plan(ctx, host)
    _raise_evacuation_problems(problems)


@message('host.evacuate')
def evacuate(
    ctx: CallContext, host: str, network: str, evacuate_batch_size: int
) -> None:
    from nova_hypervisors.simulators.xapi import vm as vm_ops

    plan, problems = evacuation_plan(ctx, host)
    _raise_evacuation_problems(problems)
    for vm_ref, target in plan.items():
        vm_ops.move_resident(ctx, vm_ref, target)


def _raise_evacuation_problems(problems: dict[str, list[str]]) -> None:
    if problems:
        text = '|'.join(
            '%s:%s' % (vm, ','.join(error)) for vm, error in problems.items()
        )
        raise XapiFailure('CANNOT_EVACUATE_HOST', text)


def evacuation_plan(ctx: CallContext, host: str):
    """Where each guest of ``host`` would go, and which cannot go."""
    from nova_hypervisors.simulators.xapi import vm as vm_ops

    store = ctx.store
    store.get('host', host)
    plan: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    targets = [h for h in store.refs('host') if h != host]
    # Reserve memory as we plan, so two VMs are not put in the same hole.
    for vm_ref in guest_vms(store, host):
        last_error = ['NO_HOSTS_AVAILABLE']
        for target in targets:
            try:
                vm_ops.assert_can_boot_here(ctx, vm_ref, target)
            except XapiFailure as failure:
                last_error = failure.description
                continue
            plan[vm_ref] = target
            store.tables['VM'][vm_ref]['scheduled_to_be_resident_on'] = target
            break
        else:
            problems[vm_ref] = last_error
    for vm_ref in plan:
        store.tables['VM'][vm_ref]['scheduled_to_be_resident_on'] = NULL_REF
    return plan, problems


@message('host.call_plugin')
def host_call_plugin(
    ctx: CallContext, host: str, plugin: str, fn: str, args: dict
) -> str:
    """No dom0 plugin a driver might want is installed.

    A stock host ships only xapi's own plugins (xen-api ``python3/plugins``:
    no ``console``, none of os-xenapi's); xapi answers a missing one with
    ``XENAPI_MISSING_PLUGIN [name]`` (``ocaml/xapi/xapi_plugins.ml``).
    """
    ctx.store.get('host', host)
    raise XapiFailure('XENAPI_MISSING_PLUGIN', plugin)
