"""VM records: finding an instance's VM, building one, reading its state.

The one VM lookup of the driver lives here.  A VM belongs to Nova when its
``other_config`` holds ``nova_uuid``; its ``name_label`` is the instance
name, which makes the single-instance lookup one indexed query instead of a
scan of every VM in the pool.
"""

from __future__ import annotations

import re

from nova import exception
from nova.compute import power_state

from nova_hypervisors.xenapi import session as xsession

NOVA_UUID = 'nova_uuid'
NOVA_RESCUE = 'nova_rescue_of'

POWER_STATES = {
    'Halted': power_state.SHUTDOWN,
    'Running': power_state.RUNNING,
    'Paused': power_state.PAUSED,
    'Suspended': power_state.SUSPENDED,
    'Crashed': power_state.CRASHED,
}

MIB = 1024 * 1024
XENSTORE_PAYLOAD_MAX = 4096
_XENSTORE_UNSAFE = re.compile(r'[^A-Za-z0-9\-_@]')


def quote(value: str) -> str:
    """A string literal for the xapi query language."""
    return '"%s"' % str(value).replace('\\', '\\\\').replace('"', '\\"')


def to_power_state(record: dict) -> int:
    return POWER_STATES.get(record.get('power_state'), power_state.NOSTATE)


def is_nova_vm(record: dict) -> bool:
    return (
        not record.get('is_a_template')
        and not record.get('is_control_domain')
        and not record.get('is_a_snapshot')
        and NOVA_UUID in (record.get('other_config') or {})
    )


def find_vm(
    session: xsession.XenAPISession, instance, rescue: bool = False
) -> tuple[str, dict] | None:
    """(ref, record) of the instance's VM, or None; one XenAPI call."""
    name = rescue_name(instance) if rescue else instance.name
    records = session.get_all_records_where(
        'VM', 'field "name__label"=%s' % quote(name)
    )
    for ref, record in records.items():
        other = record.get('other_config') or {}
        if record.get('is_a_template') or record.get('is_a_snapshot'):
            continue
        key = NOVA_RESCUE if rescue else NOVA_UUID
        if other.get(key) == instance.uuid:
            return ref, record
    return None


def lookup(
    session: xsession.XenAPISession, instance, rescue: bool = False
) -> tuple[str, dict]:
    """Like :func:`find_vm`, but a missing VM is InstanceNotFound."""
    found = find_vm(session, instance, rescue=rescue)
    if found is None:
        raise exception.InstanceNotFound(instance_id=instance.uuid)
    return found


def all_nova_vms(session: xsession.XenAPISession) -> dict[str, dict]:
    """Every Nova VM of the pool (halted ones included), in one call."""
    records = session.get_all_records_where(
        'VM',
        'field "is_a_template"="false" and field "is_control_domain"="false"',
    )
    return {ref: rec for ref, rec in records.items() if is_nova_vm(rec)}


def belongs_to_host(record: dict, host_ref: str) -> bool:
    """Whether this compute's host runs, or is meant to run, the VM."""
    return host_ref in (record.get('resident_on'), record.get('affinity'))


def rescue_name(instance) -> str:
    return '%s-rescue' % instance.name


def check_image(image_meta, allow_pv: bool) -> None:
    """Refuse, before anything is created, an image this pool cannot boot.

    * Only ``bare`` containers: the old in-tree driver wrote
      ``container_format=ovf`` images as a tgz of a VHD chain (nova 21.2.3
      ``image/vdi_stream.py``), which xapi's ``import_raw_vdi`` cannot take.
    * PV guests (``hw_vm_mode=xen``) only where ``allow_pv_guests`` is on.
    """
    # A boot from volume has image metadata without id or formats.
    image_id = image_meta.id if 'id' in image_meta else None
    container = (
        image_meta.container_format
        if 'container_format' in image_meta
        else None
    ) or 'bare'
    if container != 'bare':
        raise exception.ImageUnacceptable(
            image_id=image_id,
            reason='container format %r is not supported: XenServer '
            'imports bare raw or VHD images only' % container,
        )
    props = image_meta.properties if 'properties' in image_meta else None
    vm_mode = props.get('hw_vm_mode') if props is not None else None
    if vm_mode == 'xen' and not allow_pv:
        raise exception.ImageUnacceptable(
            image_id=image_id,
            reason='hw_vm_mode=xen asks for a PV guest; this pool offers '
            'HVM guests only ([xenserver] allow_pv_guests)',
        )


def boot_settings(image_meta) -> dict:
    """Boot mode fields from image properties (HVM BIOS by default)."""
    props = image_meta.properties
    firmware = props.get('hw_firmware_type') if props else None
    vm_mode = props.get('hw_vm_mode') if props else None
    if vm_mode == 'xen':
        return {
            'HVM_boot_policy': '',
            'HVM_boot_params': {},
            'PV_bootloader': 'pygrub',
            'domain_type': 'pv',
        }
    params = {'order': 'dc'}
    if firmware == 'uefi':
        params['firmware'] = 'uefi'
    return {
        'HVM_boot_policy': 'BIOS order',
        'HVM_boot_params': params,
        'PV_bootloader': '',
        'domain_type': 'hvm',
    }


def vm_record(
    instance, image_meta, host_ref: str, rescue: bool = False
) -> dict:
    """The ``VM.create`` record for an instance, from flavor and image."""
    flavor = instance.flavor
    memory = str(int(flavor.memory_mb) * MIB)
    vcpus = str(int(flavor.vcpus))
    # A rescue VM is not an instance of its own: it carries only the
    # rescued instance's uuid under another key, so listings skip it.
    if rescue:
        other_config = {NOVA_RESCUE: instance.uuid}
    else:
        other_config = {NOVA_UUID: instance.uuid}
    record = {
        'name_label': rescue_name(instance) if rescue else instance.name,
        'name_description': 'Nova instance %s' % instance.uuid,
        'user_version': '0',
        'is_a_template': False,
        'affinity': host_ref,
        'memory_static_min': '0',
        'memory_static_max': memory,
        'memory_dynamic_min': memory,
        'memory_dynamic_max': memory,
        'memory_target': memory,
        'VCPUs_params': {},
        'VCPUs_max': vcpus,
        'VCPUs_at_startup': vcpus,
        'actions_after_shutdown': 'destroy',
        'actions_after_reboot': 'restart',
        'actions_after_crash': 'destroy',
        'PV_kernel': '',
        'PV_ramdisk': '',
        'PV_args': '',
        'PV_bootloader_args': '',
        'PV_legacy_args': '',
        'platform': {
            'acpi': 'true',
            'apic': 'true',
            'pae': 'true',
            'viridian': 'true',
            'timeoffset': '0',
        },
        'PCI_bus': '',
        'other_config': other_config,
        'recommendations': '',
        'xenstore_data': {},
        'tags': [],
        'blocked_operations': {},
        'ha_restart_priority': '',
    }
    record.update(boot_settings(image_meta))
    return record


def sanitize_xenstore_key(key: str) -> str:
    """A metadata key as one xenstore path element.

    xenstored accepts only ``[A-Za-z0-9-/_@]`` in a path (Xen
    ``docs/misc/xenstore.txt``) and refuses the domain build otherwise; the
    old in-tree driver mapped every other character to ``_``
    (nova 21.2.3 ``vmops._sanitize_xenstore_key``).  ``/`` is mapped too,
    so a key never reaches outside ``user-metadata/``.
    """
    return _XENSTORE_UNSAFE.sub('_', key) or '_'


def xenstore_metadata(instance) -> dict[str, str]:
    """Instance metadata for the guest, under ``vm-data/`` in xenstore."""
    data = {
        'vm-data/nova/uuid': instance.uuid,
        'vm-data/nova/name': instance.display_name or '',
        'vm-data/nova/hostname': instance.hostname or '',
    }
    for key, value in (instance.metadata or {}).items():
        path = 'vm-data/user-metadata/%s' % sanitize_xenstore_key(key)
        data[path] = str(value)
    # One xenstore message carries path and value in at most
    # XENSTORE_PAYLOAD_MAX bytes (xen/include/public/io/xs_wire.h).
    for path, value in data.items():
        room = XENSTORE_PAYLOAD_MAX - len(path.encode()) - 2
        encoded = value.encode()
        if len(encoded) > room:
            data[path] = encoded[:room].decode('utf-8', 'ignore')
    return data
