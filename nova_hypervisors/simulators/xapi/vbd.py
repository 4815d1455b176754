"""VBDs: a VM's disk and CD drives, with xapi's attachment rules.

From ``Xapi_vbd_helpers.valid_operations``: plug and unplug need a running
VM (``VM_BAD_POWER_STATE``), plugging twice is ``DEVICE_ALREADY_ATTACHED``
and unplugging twice ``DEVICE_ALREADY_DETACHED``, a non-sharable VDI that
is attached read-write elsewhere is ``VDI_IN_USE``, a read-only VDI cannot
be plugged read-write (``VDI_READONLY``), and an attached VBD cannot be
destroyed.  Device numbers are unique per VM; ``autodetect`` takes the
lowest free one.
"""

from __future__ import annotations

from nova_hypervisors.simulators.xapi import implicit
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.errors import bad_power_state
from nova_hypervisors.simulators.xapi.errors import operation_not_allowed
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message
from nova_hypervisors.simulators.xapi.storage import attached_vbds
from nova_hypervisors.simulators.xapi.storage import destroy_vbd_record
from nova_hypervisors.simulators.xapi.store import ObjectStore
from nova_hypervisors.simulators.xapi.vm import device_name


@message('VBD.create')
def vbd_create(ctx: CallContext, record: dict) -> str:
    store = ctx.store
    values = implicit.constructor_values(ctx, 'VBD', record)
    vm = store.get('VM', values['VM'])
    empty = values.get('empty', False)
    if not empty:
        store.get('VDI', values['VDI'])
    elif values['type'] != 'CD':
        raise XapiFailure('VBD_NOT_REMOVABLE_MEDIA', NULL_REF)
    if values['type'] == 'CD' and values['mode'] == 'RW':
        raise XapiFailure('VBD_CDS_MUST_BE_READONLY')
    used = {store.get('VBD', v)['userdevice'] for v in vm['VBDs']}
    userdevice = values['userdevice']
    if userdevice == 'autodetect':
        userdevice = next(str(i) for i in range(255) if str(i) not in used)
    elif not _valid_device(userdevice):
        raise XapiFailure('INVALID_DEVICE', userdevice)
    elif userdevice in used:
        raise XapiFailure('DEVICE_ALREADY_EXISTS', userdevice)
    values['userdevice'] = userdevice
    values['currently_attached'] = bool(
        values.get('currently_attached') and vm['is_control_domain']
    )
    if empty:
        values['VDI'] = NULL_REF
    values['metrics'] = store.create('VBD_metrics', {})
    values['allowed_operations'] = ['attach', 'plug']
    return store.create('VBD', values)


def _valid_device(device: str) -> bool:
    if device.isdigit():
        return 0 <= int(device) < 255
    for prefix in ('xvd', 'hd', 'sd'):
        rest = device[len(prefix) :]
        if device.startswith(prefix) and rest[:1].isalpha():
            return rest[1:] == '' or rest[1:].isdigit()
    return False


def _assert_vm_running(store: ObjectStore, vbd_or_vif: dict) -> None:
    vm = store.get('VM', vbd_or_vif['VM'])
    if vm['power_state'] != 'Running':
        raise bad_power_state(vbd_or_vif['VM'], ['Running'], vm['power_state'])


@message('VBD.plug')
def vbd_plug(ctx: CallContext, vbd: str) -> None:
    store = ctx.store
    record = store.get('VBD', vbd)
    _assert_vm_running(store, record)
    if record['currently_attached']:
        raise XapiFailure('DEVICE_ALREADY_ATTACHED', vbd)
    if not record['empty']:
        vdi = store.get('VDI', record['VDI'])
        if record['mode'] == 'RW' and vdi['read_only']:
            raise XapiFailure('VDI_READONLY', record['VDI'])
        if not vdi['sharable']:
            for other in attached_vbds(store, record['VDI']):
                other_rec = store.get('VBD', other)
                if other_rec['mode'] == 'RW' or record['mode'] == 'RW':
                    raise XapiFailure('VDI_IN_USE', record['VDI'], 'plug')
    store.update(
        'VBD', vbd, currently_attached=True, device=device_name(record)
    )


def _unplug(ctx: CallContext, vbd: str) -> None:
    store = ctx.store
    record = store.get('VBD', vbd)
    _assert_vm_running(store, record)
    if not record['unpluggable']:
        raise XapiFailure('VBD_NOT_UNPLUGGABLE', vbd)
    if not record['currently_attached']:
        raise XapiFailure('DEVICE_ALREADY_DETACHED', vbd)
    store.set('VBD', vbd, 'currently_attached', False)


@message('VBD.unplug')
def vbd_unplug(ctx: CallContext, vbd: str) -> None:
    _unplug(ctx, vbd)


@message('VBD.unplug_force')
def vbd_unplug_force(ctx: CallContext, vbd: str) -> None:
    _unplug(ctx, vbd)


@message('VBD.destroy')
def vbd_destroy(ctx: CallContext, vbd: str) -> None:
    store = ctx.store
    record = store.get('VBD', vbd)
    if record['currently_attached']:
        vm_uuid = store.tables['VM'].get(record['VM'], {}).get('uuid', '')
        raise operation_not_allowed(
            "VBD '%s' still attached to '%s'" % (record['uuid'], vm_uuid)
        )
    destroy_vbd_record(store, vbd)


@message('VBD.insert')
def vbd_insert(ctx: CallContext, vbd: str, vdi: str) -> None:
    store = ctx.store
    record = store.get('VBD', vbd)
    if record['type'] != 'CD':
        raise XapiFailure('VBD_NOT_REMOVABLE_MEDIA', vbd)
    if not record['empty']:
        raise XapiFailure('VBD_NOT_EMPTY', vbd)
    store.update('VBD', vbd, VDI=vdi, empty=False)


@message('VBD.eject')
def vbd_eject(ctx: CallContext, vbd: str) -> None:
    store = ctx.store
    record = store.get('VBD', vbd)
    if record['type'] != 'CD':
        raise XapiFailure('VBD_NOT_REMOVABLE_MEDIA', vbd)
    if record['empty']:
        raise XapiFailure('VBD_IS_EMPTY', vbd)
    store.update('VBD', vbd, VDI=NULL_REF, empty=True)
