"""What vCenter itself holds, read behind the driver's back with pyVmomi."""

from __future__ import annotations

from pyVmomi import vim

from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import session as vc_session


def instance_vms(vcsim) -> list[str]:
    """Names of the VMs in vCenter that Nova made (Nova's managedBy);
    the cluster's own agent VMs are not Nova's to delete."""
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
