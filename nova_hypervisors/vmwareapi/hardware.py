"""A VM's virtual hardware, from what the flavor and the image ask for.

The same properties and extra specs as Nova's in-tree VMware driver
(``vmops._get_extra_specs``, ``vm_util.get_vm_create_spec``,
``images.VMwareImage.from_image``), so images and flavors made for it
boot alike here:

* image ``vmware_ostype`` (``os_distro``): the guest id;
* image ``hw_firmware_type``: ``efi`` or ``bios`` firmware;
* image ``vmware_adaptertype`` / ``hw_disk_bus`` + ``hw_scsi_model``: the
  root disk's controller;
* image ``hw_vif_model``: the network cards' model;
* flavor ``vmware:hw_version``: the virtual hardware version;
* flavor and image ``hw:cpu_*``: cores per socket;
* flavor ``quota:cpu_*``, ``quota:memory_*``, ``quota:disk_io_*`` (on
  every disk) and ``quota:vif_*`` (on every network card): limits,
  reservations and shares.

Defaults differ from in-tree on two points: the guest id is
``otherGuest64`` and NICs are vmxnet3, which today's images expect.
"""

from __future__ import annotations

from typing import Any

from nova import exception
from nova.virt import hardware as nova_hardware
from pyVmomi import vim

DEFAULT_GUEST_ID = 'otherGuest64'
DEFAULT_ADAPTER = 'lsiLogic'
IDE = 'ide'
#: hw_scsi_model -> vSphere adapter type (in-tree images.from_image).
SCSI_MODELS = {
    'lsilogic': 'lsiLogic',
    'lsisas1068': 'lsiLogicsas',
    'buslogic': 'busLogic',
    'vmpvscsi': 'paraVirtual',
}
#: vSphere adapter type -> controller device class.
CONTROLLERS = {
    'lsiLogic': vim.vm.device.VirtualLsiLogicController,
    'lsiLogicsas': vim.vm.device.VirtualLsiLogicSASController,
    'busLogic': vim.vm.device.VirtualBusLogicController,
    'paraVirtual': vim.vm.device.ParaVirtualSCSIController,
}
#: hw_vif_model -> network card class (in-tree vm_util.convert_vif_model).
VIF_MODELS = {
    'e1000': vim.vm.device.VirtualE1000,
    'e1000e': vim.vm.device.VirtualE1000e,
    'pcnet': vim.vm.device.VirtualPCNet32,
    'vmxnet': vim.vm.device.VirtualVmxnet,
    'vmxnet3': vim.vm.device.VirtualVmxnet3,
}
DEFAULT_VIF_MODEL = 'vmxnet3'
SHARES_LEVELS = ('low', 'normal', 'high', 'custom')


def _prop(image_meta: Any, name: str) -> Any:
    if 'properties' not in image_meta:
        return None
    return image_meta.properties.get(name)


def guest_id(image_meta: Any) -> str:
    return _prop(image_meta, 'os_distro') or DEFAULT_GUEST_ID


def firmware(image_meta: Any) -> str | None:
    kind = _prop(image_meta, 'hw_firmware_type')
    return {'uefi': 'efi', 'bios': 'bios'}.get(kind)


def adapter_type(image_meta: Any) -> str:
    """``ide``, or the SCSI adapter type of the root disk's controller."""
    bus = _prop(image_meta, 'hw_disk_bus')
    if bus == IDE:
        return IDE
    model = _prop(image_meta, 'hw_scsi_model')
    if bus not in (None, 'scsi'):
        raise exception.ImageUnacceptable(
            image_id=getattr(image_meta, 'id', None),
            reason=f'hw_disk_bus {bus!r} is not supported on vSphere '
            '(ide or scsi)',
        )
    if model and model not in SCSI_MODELS:
        raise exception.ImageUnacceptable(
            image_id=getattr(image_meta, 'id', None),
            reason=f'SCSI model {model!r} is not supported on vSphere '
            f'({", ".join(sorted(SCSI_MODELS))})',
        )
    return SCSI_MODELS.get(model, DEFAULT_ADAPTER)


def scsi_controller(adapter: str, key: int) -> Any:
    """A SCSI controller of the adapter type (LSI Logic for ``ide``)."""
    kind = CONTROLLERS.get(adapter, CONTROLLERS[DEFAULT_ADAPTER])
    return kind(key=key, busNumber=0, sharedBus='noSharing')


def vif_model(image_meta: Any) -> type:
    model = _prop(image_meta, 'hw_vif_model') or DEFAULT_VIF_MODEL
    if model not in VIF_MODELS:
        raise exception.ImageUnacceptable(
            image_id=getattr(image_meta, 'id', None),
            reason=f'hw_vif_model {model!r} is not supported on vSphere '
            f'({", ".join(sorted(VIF_MODELS))})',
        )
    return VIF_MODELS[model]


def cores_per_socket(flavor: Any, image_meta: Any) -> int:
    topology = nova_hardware.get_best_cpu_topology(
        flavor, image_meta, allow_threads=False
    )
    return int(topology.cores)


def _limits(flavor: Any, resource: str) -> tuple | None:
    """``quota:<resource>_{limit,reservation,shares_level,shares_share}``
    as (limit, reservation, SharesInfo), or None when the flavor sets
    none (in-tree vmops._get_extra_specs reads the same keys)."""
    specs = flavor.extra_specs or {}
    values = {
        key: specs.get(f'quota:{resource}_{key}')
        for key in ('limit', 'reservation', 'shares_level', 'shares_share')
    }
    if not any(values.values()):
        return None
    level = values['shares_level'] or 'normal'
    if level not in SHARES_LEVELS:
        raise exception.InvalidInput(
            reason=f'quota:{resource}_shares_level must be one of '
            f'{", ".join(SHARES_LEVELS)}, not {level!r}'
        )
    shares = vim.SharesInfo(
        level=level,
        shares=int(values['shares_share'] or 0) if level == 'custom' else 0,
    )
    return (
        int(values['limit'] or -1),
        int(values['reservation'] or 0),
        shares,
    )


def _allocation(flavor: Any, resource: str) -> Any | None:
    """A CPU or memory ResourceAllocationInfo, or None."""
    limits = _limits(flavor, resource)
    if limits is None:
        return None
    limit, reservation, shares = limits
    return vim.ResourceAllocationInfo(
        limit=limit, reservation=reservation, shares=shares
    )


def disk_io_allocation(flavor: Any) -> Any | None:
    """``quota:disk_io_*`` as a disk's ``storageIOAllocation`` (IOPS), or
    None (in-tree vm_util._create_virtual_disk_spec)."""
    limits = _limits(flavor, 'disk_io')
    if limits is None:
        return None
    limit, reservation, shares = limits
    return vim.StorageResourceManager.IOAllocationInfo(
        limit=limit, reservation=reservation, shares=shares
    )


def vif_allocation(flavor: Any) -> Any | None:
    """``quota:vif_*`` as a card's ``resourceAllocation`` (Mbit/s), or
    None (in-tree vm_util._create_vif_spec)."""
    limits = _limits(flavor, 'vif')
    if limits is None:
        return None
    limit, reservation, shares = limits
    return vim.vm.device.VirtualEthernetCard.ResourceAllocation(
        limit=limit, reservation=reservation, share=shares
    )


def apply(spec: Any, flavor: Any, image_meta: Any) -> None:
    """Set what the flavor and the image ask for on a VM ConfigSpec."""
    spec.guestId = guest_id(image_meta)
    spec.numCoresPerSocket = cores_per_socket(flavor, image_meta)
    kind = firmware(image_meta)
    if kind:
        spec.firmware = kind
    version = (flavor.extra_specs or {}).get('vmware:hw_version')
    if version:
        spec.version = version
    cpu = _allocation(flavor, 'cpu')
    if cpu is not None:
        spec.cpuAllocation = cpu
    memory = _allocation(flavor, 'memory')
    if memory is not None:
        spec.memoryAllocation = memory
