"""Storage: SRs, PBDs and VDIs with real bytes (VBDs are in :mod:`vbd`).

An SR's capacity is its ``physical_size``; every VDI counts with its full
virtual size in ``physical_utilisation`` and ``virtual_allocation``, so a
VDI that does not fit fails with ``SR_FULL [requested, maximum]`` (the
maximum being what is left), whatever the sparse files really use on the
host.  VDI sizes are kept exactly as requested (real SMs round up to their
block size) so that what is imported exports back with the same length.

A VDI with an attached VBD can be neither destroyed nor resized
(``VDI_IN_USE [vdi, operation]``); destroying a VDI also destroys its
unplugged VBDs, as xapi does rather than leave them to its GC.
"""

from __future__ import annotations

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi import implicit
from nova_hypervisors.simulators.xapi import iscsi
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.errors import operation_not_allowed
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message
from nova_hypervisors.simulators.xapi.store import ObjectStore
from nova_hypervisors.simulators.xapi.store import new_uuid

SR_TYPES = {'ext': False, 'nfs': True, 'lvm': False, 'iso': False}
#: Types an SR can be introduced with (sm drivers a real host has).
INTRODUCIBLE_TYPES = set(SR_TYPES) | {iscsi.SR_TYPE}
#: SR types whose VDIs xapi cannot create, delete, resize, clone or
#: snapshot (their capabilities lack VDI_CREATE, VDI_DELETE, ...).
FIXED_VDI_TYPES = {iscsi.SR_TYPE}
COPIED_VDI_FIELDS = (
    'name_label',
    'name_description',
    'type',
    'sharable',
    'read_only',
    'other_config',
    'xenstore_data',
    'sm_config',
    'tags',
)


# -- SR accounting ------------------------------------------------------------


def sr_free(store: ObjectStore, sr: str) -> int:
    record = store.get('SR', sr)
    return record['physical_size'] - record['physical_utilisation']


def assert_fits(store: ObjectStore, sr: str, size: int) -> None:
    free = sr_free(store, sr)
    if size > free:
        raise XapiFailure('SR_FULL', size, max(free, 0))


def refresh_sr(store: ObjectStore, sr: str) -> None:
    """Recompute what an SR's VDIs use."""
    if not store.exists('SR', sr):
        return
    vdis = store.tables['VDI']
    used = sum(
        vdis[v]['physical_utilisation']
        for v in store.get('SR', sr)['VDIs']
        if v in vdis
    )
    allocated = sum(
        vdis[v]['virtual_size']
        for v in store.get('SR', sr)['VDIs']
        if v in vdis
    )
    store.update(
        'SR', sr, physical_utilisation=used, virtual_allocation=allocated
    )


def assert_sr_can_change_vdis(store: ObjectStore, sr: str) -> None:
    """``SR_OPERATION_NOT_SUPPORTED`` on an SR of fixed VDIs (LUNs)."""
    if store.get('SR', sr)['type'] in FIXED_VDI_TYPES:
        raise XapiFailure('SR_OPERATION_NOT_SUPPORTED', sr)


def assert_sr_attached(store: ObjectStore, sr: str) -> None:
    pbds = store.get('SR', sr)['PBDs']
    if not any(store.get('PBD', p)['currently_attached'] for p in pbds):
        raise XapiFailure('SR_HAS_NO_PBDS', sr)


# -- VDIs ---------------------------------------------------------------------


def new_vdi(
    ctx: CallContext,
    sr: str,
    size: int,
    name_label: str = '',
    vdi_type: str = 'user',
    copy_from: str | None = None,
    **fields,
) -> str:
    """A VDI with a backing file; bytes copied from ``copy_from`` if given."""
    store = ctx.store
    if size < 0:
        raise XapiFailure('INVALID_VALUE', 'virtual_size', size)
    assert_sr_attached(store, sr)
    assert_sr_can_change_vdis(store, sr)
    assert_fits(store, sr, size)
    uuid = new_uuid()
    sr_uuid = store.get('SR', sr)['uuid']
    if copy_from is None:
        ctx.disks.create(sr_uuid, uuid, size)
    else:
        source = store.get('VDI', copy_from)
        source_sr = store.get('SR', source['SR'])['uuid']
        ctx.disks.copy((source_sr, source['uuid']), (sr_uuid, uuid), size)
    values = {
        'uuid': uuid,
        'name_label': name_label,
        'SR': sr,
        'virtual_size': size,
        'physical_utilisation': size,
        'type': vdi_type,
        'location': uuid,
        'managed': True,
        'allowed_operations': [
            'clone',
            'copy',
            'resize',
            'snapshot',
            'destroy',
            'forget',
        ],
    }
    values.update(fields)
    vdi = store.create('VDI', values)
    refresh_sr(store, sr)
    return vdi


def destroy_vdi(ctx: CallContext, vdi: str) -> None:
    """Remove a VDI, its unplugged VBDs and its bytes."""
    store = ctx.store
    record = store.get('VDI', vdi)
    for vbd in list(record['VBDs']):
        if store.exists('VBD', vbd):
            destroy_vbd_record(store, vbd)
    sr = record['SR']
    if store.exists('SR', sr):
        ctx.disks.destroy(store.get('SR', sr)['uuid'], record['uuid'])
    store.destroy('VDI', vdi)
    refresh_sr(store, sr)


def attached_vbds(store: ObjectStore, vdi: str) -> list[str]:
    vbds = store.tables['VBD']
    return [
        v
        for v in store.get('VDI', vdi)['VBDs']
        if v in vbds and vbds[v]['currently_attached']
    ]


def assert_vdi_not_in_use(store: ObjectStore, vdi: str, op: str) -> None:
    if attached_vbds(store, vdi):
        raise XapiFailure('VDI_IN_USE', vdi, op)


@message('VDI.create')
def vdi_create(ctx: CallContext, record: dict) -> str:
    values = implicit.constructor_values(ctx, 'VDI', record)
    sr = values.pop('SR')
    if not ctx.store.exists('SR', sr):
        raise XapiFailure('HANDLE_INVALID', 'SR', sr)
    size = values.pop('virtual_size')
    return new_vdi(
        ctx,
        sr,
        size,
        name_label=values.pop('name_label', ''),
        vdi_type=values.pop('type', 'user'),
        **values,
    )


@message('VDI.destroy')
def vdi_destroy(ctx: CallContext, vdi: str) -> None:
    assert_sr_can_change_vdis(ctx.store, ctx.store.get('VDI', vdi)['SR'])
    assert_vdi_not_in_use(ctx.store, vdi, 'destroy')
    destroy_vdi(ctx, vdi)


@message('VDI.forget')
def vdi_forget(ctx: CallContext, vdi: str) -> None:
    store = ctx.store
    assert_vdi_not_in_use(store, vdi, 'forget')
    sr = store.get('VDI', vdi)['SR']
    for vbd in list(store.get('VDI', vdi)['VBDs']):
        destroy_vbd_record(store, vbd)
    store.destroy('VDI', vdi)
    refresh_sr(store, sr)


def _copy_fields(record: dict) -> dict:
    return {name: record[name] for name in COPIED_VDI_FIELDS}


@message('VDI.copy')
def vdi_copy(
    ctx: CallContext, vdi: str, sr: str, base_vdi: str, into_vdi: str
) -> str:
    store = ctx.store
    source = store.get('VDI', vdi)
    if into_vdi != NULL_REF:
        target = store.get('VDI', into_vdi)
        if target['virtual_size'] < source['virtual_size']:
            raise XapiFailure(
                'VDI_TOO_SMALL', into_vdi, source['virtual_size']
            )
        target_sr = store.get('SR', target['SR'])['uuid']
        source_sr = store.get('SR', source['SR'])['uuid']
        ctx.disks.copy(
            (source_sr, source['uuid']),
            (target_sr, target['uuid']),
            target['virtual_size'],
        )
        return into_vdi
    if sr == NULL_REF:
        raise XapiFailure('HANDLE_INVALID', 'SR', sr)
    fields = _copy_fields(source)
    return new_vdi(
        ctx,
        sr,
        source['virtual_size'],
        name_label=fields.pop('name_label'),
        vdi_type=fields.pop('type'),
        copy_from=vdi,
        **fields,
    )


@message('VDI.clone')
def vdi_clone(ctx: CallContext, vdi: str, driver_params: dict) -> str:
    source = ctx.store.get('VDI', vdi)
    fields = _copy_fields(source)
    return new_vdi(
        ctx,
        source['SR'],
        source['virtual_size'],
        name_label=fields.pop('name_label'),
        vdi_type=fields.pop('type'),
        copy_from=vdi,
        **fields,
    )


def snapshot_vdi(ctx: CallContext, vdi: str) -> str:
    source = ctx.store.get('VDI', vdi)
    fields = _copy_fields(source)
    return new_vdi(
        ctx,
        source['SR'],
        source['virtual_size'],
        name_label=fields.pop('name_label'),
        vdi_type=fields.pop('type'),
        copy_from=vdi,
        is_a_snapshot=True,
        snapshot_of=vdi,
        snapshot_time=codec.now(),
        **fields,
    )


@message('VDI.snapshot')
def vdi_snapshot(ctx: CallContext, vdi: str, driver_params: dict) -> str:
    return snapshot_vdi(ctx, vdi)


@message('VDI.resize')
def vdi_resize(ctx: CallContext, vdi: str, size: int) -> None:
    store = ctx.store
    record = store.get('VDI', vdi)
    assert_sr_can_change_vdis(store, record['SR'])
    assert_vdi_not_in_use(store, vdi, 'resize')
    if size < record['virtual_size']:
        raise XapiFailure.raw(
            [
                'SR_BACKEND_FAILURE_79',
                '',
                'VDI Invalid size [opterr=shrinking not allowed]',
                '',
            ]
        )
    assert_fits(store, record['SR'], size - record['virtual_size'])
    sr_uuid = store.get('SR', record['SR'])['uuid']
    ctx.disks.resize(sr_uuid, record['uuid'], size)
    store.update('VDI', vdi, virtual_size=size, physical_utilisation=size)
    refresh_sr(store, record['SR'])


@message('VDI.introduce')
def vdi_introduce(
    ctx: CallContext,
    uuid: str,
    name_label: str,
    name_description: str,
    sr: str,
    vdi_type: str,
    sharable: bool,
    read_only: bool,
    other_config: dict,
    location: str,
    xenstore_data: dict,
    sm_config: dict,
    managed: bool,
    virtual_size: int,
    physical_utilisation: int,
    metadata_of_pool: str,
    is_a_snapshot: bool,
    snapshot_time: str,
    snapshot_of: str,
) -> str:
    store = ctx.store
    uuid = uuid or new_uuid()
    if store.find_uuid('VDI', uuid) is not None:
        raise operation_not_allowed('VDI %s is already known' % uuid)
    sr_uuid = store.get('SR', sr)['uuid']
    if not ctx.disks.exists(sr_uuid, uuid):
        raise XapiFailure('VDI_LOCATION_MISSING', sr, location)
    vdi = store.create(
        'VDI',
        {
            'uuid': uuid,
            'name_label': name_label,
            'name_description': name_description,
            'SR': sr,
            'type': vdi_type,
            'sharable': sharable,
            'read_only': read_only,
            'other_config': other_config,
            'location': location or uuid,
            'xenstore_data': xenstore_data,
            'sm_config': sm_config,
            'managed': managed,
            'virtual_size': virtual_size,
            'physical_utilisation': physical_utilisation or virtual_size,
            'is_a_snapshot': is_a_snapshot,
            'snapshot_time': snapshot_time,
            'snapshot_of': snapshot_of,
        },
    )
    refresh_sr(store, sr)
    return vdi


# -- SRs and PBDs -------------------------------------------------------------


@message('SR.create')
def sr_create(
    ctx: CallContext,
    host: str,
    device_config: dict,
    physical_size: int,
    name_label: str,
    name_description: str,
    sr_type: str,
    content_type: str,
    shared: bool,
    sm_config: dict,
) -> str:
    store = ctx.store
    if sr_type not in SR_TYPES:
        raise XapiFailure('SR_UNKNOWN_DRIVER', sr_type)
    if shared and not SR_TYPES[sr_type]:
        raise XapiFailure('SR_NOT_SHARABLE', NULL_REF, host)
    if physical_size <= 0:
        physical_size = (
            ctx.topology.shared_sr_size
            if shared
            else ctx.topology.local_sr_size
        )
    sr = store.create(
        'SR',
        {
            'name_label': name_label,
            'name_description': name_description,
            'type': sr_type,
            'content_type': content_type,
            'shared': shared,
            'physical_size': physical_size,
            'sm_config': sm_config,
        },
    )
    ctx.disks.sr_dir(store.get('SR', sr)['uuid'])
    hosts = store.refs('host') if shared else [host]
    for host_ref in hosts:
        store.create(
            'PBD',
            {
                'host': host_ref,
                'SR': sr,
                'device_config': device_config,
                'currently_attached': True,
            },
        )
    return sr


@message('SR.introduce')
def sr_introduce(
    ctx: CallContext,
    uuid: str,
    name_label: str,
    name_description: str,
    sr_type: str,
    content_type: str,
    shared: bool,
    sm_config: dict,
) -> str:
    store = ctx.store
    if sr_type not in INTRODUCIBLE_TYPES:
        raise XapiFailure('SR_UNKNOWN_DRIVER', sr_type)
    if uuid and store.find_uuid('SR', uuid) is not None:
        raise XapiFailure('SR_UUID_EXISTS', uuid)
    sr = store.create(
        'SR',
        {
            'uuid': uuid or new_uuid(),
            'name_label': name_label,
            'name_description': name_description,
            'type': sr_type,
            'content_type': content_type,
            'shared': shared,
            'sm_config': sm_config,
            'physical_size': (
                ctx.topology.shared_sr_size
                if shared
                else ctx.topology.local_sr_size
            ),
        },
    )
    ctx.disks.sr_dir(store.get('SR', sr)['uuid'])
    return sr


@message('SR.forget')
def sr_forget(ctx: CallContext, sr: str) -> None:
    store = ctx.store
    for pbd in store.get('SR', sr)['PBDs']:
        if store.get('PBD', pbd)['currently_attached']:
            raise XapiFailure('SR_HAS_PBD', sr)
    for pbd in list(store.get('SR', sr)['PBDs']):
        store.destroy('PBD', pbd)
    for vdi in list(store.get('SR', sr)['VDIs']):
        for vbd in list(store.get('VDI', vdi)['VBDs']):
            destroy_vbd_record(store, vbd)
        store.destroy('VDI', vdi)
    if store.get('SR', sr)['type'] in FIXED_VDI_TYPES:
        # Only the links to the array's LUNs; their bytes stay there.
        ctx.disks.destroy_sr(store.get('SR', sr)['uuid'])
    _unset_pool_srs(ctx, sr)
    store.destroy('SR', sr)


@message('SR.destroy')
def sr_destroy(ctx: CallContext, sr: str) -> None:
    store = ctx.store
    assert_sr_attached(store, sr)
    assert_sr_can_change_vdis(store, sr)
    for vdi in store.get('SR', sr)['VDIs']:
        assert_vdi_not_in_use(store, vdi, 'destroy')
    for vdi in list(store.get('SR', sr)['VDIs']):
        destroy_vdi(ctx, vdi)
    for pbd in list(store.get('SR', sr)['PBDs']):
        store.destroy('PBD', pbd)
    ctx.disks.destroy_sr(store.get('SR', sr)['uuid'])
    _unset_pool_srs(ctx, sr)
    store.destroy('SR', sr)


def _unset_pool_srs(ctx: CallContext, sr: str) -> None:
    pool = ctx.store.get('pool', ctx.pool_ref)
    for field in ('default_SR', 'suspend_image_SR', 'crash_dump_SR'):
        if pool[field] == sr:
            ctx.store.set('pool', ctx.pool_ref, field, NULL_REF)


@message('SR.scan')
def sr_scan(ctx: CallContext, sr: str) -> None:
    assert_sr_attached(ctx.store, sr)
    if ctx.store.get('SR', sr)['type'] == iscsi.SR_TYPE:
        iscsi.scan(ctx, sr)
        return
    refresh_sr(ctx.store, sr)


@message('SR.probe')
def sr_probe(
    ctx: CallContext,
    host: str,
    device_config: dict,
    sr_type: str,
    sm_config: dict,
) -> str:
    ctx.store.get('host', host)
    if sr_type not in INTRODUCIBLE_TYPES:
        raise XapiFailure('SR_UNKNOWN_DRIVER', sr_type)
    if sr_type != iscsi.SR_TYPE:
        raise XapiFailure('SR_OPERATION_NOT_SUPPORTED', NULL_REF)
    return iscsi.probe(device_config)


@message('SR.update')
def sr_update(ctx: CallContext, sr: str) -> None:
    refresh_sr(ctx.store, sr)


@message('PBD.create')
def pbd_create(ctx: CallContext, record: dict) -> str:
    store = ctx.store
    values = implicit.constructor_values(ctx, 'PBD', record)
    sr, host = values['SR'], values['host']
    store.get('SR', sr)
    store.get('host', host)
    existing = store.find('PBD', SR=sr, host=host)
    if existing:
        raise XapiFailure('PBD_EXISTS', sr, host, existing[0])
    values['currently_attached'] = False
    return store.create('PBD', values)


@message('PBD.plug')
def pbd_plug(ctx: CallContext, pbd: str) -> None:
    store = ctx.store
    record = store.get('PBD', pbd)
    sr = store.get('SR', record['SR'])
    if not sr['shared']:
        for other in sr['PBDs']:
            other_rec = store.get('PBD', other)
            if other != pbd and other_rec['currently_attached']:
                raise XapiFailure(
                    'SR_NOT_SHARABLE', record['SR'], record['host']
                )
    if record['currently_attached']:
        return
    if sr['type'] == iscsi.SR_TYPE:
        iscsi.attach(ctx, pbd)
    store.set('PBD', pbd, 'currently_attached', True)


@message('PBD.unplug')
def pbd_unplug(ctx: CallContext, pbd: str) -> None:
    store = ctx.store
    record = store.get('PBD', pbd)
    for vdi in store.get('SR', record['SR'])['VDIs']:
        for vbd in attached_vbds(store, vdi):
            vm = store.get('VBD', vbd)['VM']
            if store.get('VM', vm)['resident_on'] == record['host']:
                raise XapiFailure('VDI_IN_USE', vdi, 'unplug')
    store.set('PBD', pbd, 'currently_attached', False)


@message('PBD.destroy')
def pbd_destroy(ctx: CallContext, pbd: str) -> None:
    if ctx.store.get('PBD', pbd)['currently_attached']:
        raise operation_not_allowed('PBD is currently attached')
    ctx.store.destroy('PBD', pbd)


def destroy_vbd_record(store: ObjectStore, vbd: str) -> None:
    metrics = store.get('VBD', vbd)['metrics']
    store.destroy('VBD', vbd)
    if store.exists('VBD_metrics', metrics):
        store.destroy('VBD_metrics', metrics)
