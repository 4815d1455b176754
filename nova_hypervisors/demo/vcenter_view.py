"""What vCenter itself holds, read behind the driver's back with pyVmomi."""

from __future__ import annotations

from pyVmomi import vim

from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import session as vc_session


def _connect(vcsim) -> vc_session.VCenterSession:
    session = vc_session.VCenterSession(
        vc_session.Settings(
            host=vcsim.host,
            port=vcsim.port,
            username=vcsim.username,
            password=vcsim.password,
            ca_file=vcsim.ca_file,
        )
    )
    session.connect()
    return session


GIB_KB = 1024 * 1024


def shadow_vm_spec(
    name: str,
    datastore: str = 'LocalDS_0',
    controller_key: int | None = None,
    size_gb: int = 1,
) -> tuple:
    """The CreateVM spec of a Cinder vmdk volume as Cinder's VMDK driver
    keeps one: a powered-off VM named after the volume with one thin disk
    of ``size_gb``, on a new LSI Logic controller unless ``controller_key``
    names one.  (spec, the disk's path)."""
    path = f'[{datastore}] {name}/{name}.vmdk'
    changes = []
    if controller_key is None:
        controller_key = -100
        changes.append(
            vim.vm.device.VirtualDeviceSpec(
                operation='add',
                device=vim.vm.device.VirtualLsiLogicController(
                    key=-100, busNumber=0, sharedBus='noSharing'
                ),
            )
        )
    changes.append(
        vim.vm.device.VirtualDeviceSpec(
            operation='add',
            fileOperation='create',
            device=vim.vm.device.VirtualDisk(
                key=-101,
                controllerKey=controller_key,
                unitNumber=0,
                capacityInKB=size_gb * GIB_KB,
                backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                    fileName=path, diskMode='persistent', thinProvisioned=True
                ),
            ),
        )
    )
    spec = vim.vm.ConfigSpec(
        name=name,
        numCPUs=1,
        memoryMB=128,
        guestId='otherGuest',
        files=vim.vm.FileInfo(vmPathName=f'[{datastore}] {name}/{name}.vmx'),
        deviceChange=changes,
    )
    return spec, path


def shadow_volume(
    vcsim, name: str, cluster: str = 'DC0_C0', size_gb: int = 1
) -> tuple:
    """A Cinder vmdk volume as Cinder's VMDK driver keeps one: a
    powered-off VM with one thin disk.  (moref id, disk path)."""
    session = _connect(vcsim)
    try:
        found = session.view_properties(
            session.content.rootFolder,
            {
                vim.ClusterComputeResource: ['name', 'resourcePool'],
                vim.Datacenter: ['vmFolder'],
            },
        )
        pool = next(
            p['resourcePool']
            for p in found.values()
            if p.get('name') == cluster
        )
        folder = next(p['vmFolder'] for p in found.values() if 'vmFolder' in p)
        spec, path = shadow_vm_spec(name, size_gb=size_gb)
        task = session.invoke(folder, 'CreateVM_Task', config=spec, pool=pool)
        return session.wait_for_task(task)._moId, path
    finally:
        session.disconnect()


def destroy_vm(vcsim, moref: str) -> None:
    """Destroy a VM and its disks (Cinder's VMDK driver deletes a
    volume's shadow VM so)."""
    session = _connect(vcsim)
    try:
        vm = session.moref(vim.VirtualMachine, moref)
        session.wait_for_task(session.invoke(vm, 'Destroy_Task'))
    finally:
        session.disconnect()


def disk_files(vcsim, instance_uuid: str) -> list[str]:
    """The disk files of the instance's VM."""
    session = _connect(vcsim)
    try:
        vm = lookup.find_vm(session, instance_uuid)
        devices = session.properties(
            [vm], vim.VirtualMachine, ['config.hardware.device']
        )[vm]['config.hardware.device']
        return [
            d.backing.fileName
            for d in devices
            if isinstance(d, vim.vm.device.VirtualDisk)
        ]
    finally:
        session.disconnect()


def instance_vms(vcsim) -> list[str]:
    """Names of the VMs in vCenter that Nova made (Nova's managedBy);
    the cluster's own agent VMs are not Nova's to delete."""
    session = _connect(vcsim)
    try:
        content = session.content
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        try:
            return sorted(
                vm.name
                for vm in view.view
                if vm.config is not None
                and vm.config.instanceUuid
                and vm.config.template is False
                and getattr(vm.config.managedBy, 'extensionKey', None)
                == lookup.NOVA_EXTENSION_KEY
            )
        finally:
            view.Destroy()
    finally:
        session.disconnect()
