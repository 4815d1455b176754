"""The one way to find a Nova instance's VM: by ``config.instanceUuid``.

A single ``SearchIndex.FindByUuid`` request finds a VM by the uuid Nova gave
it, wherever it lives; listing the cluster's VMs is one traversal read
(:mod:`.inventory`).  Nothing here scans the whole inventory.
"""

from typing import Any

from pyVmomi import vim

from nova import exception
from nova_hypervisors.vmwareapi import inventory
from nova_hypervisors.vmwareapi import session as vc_session

LIST_PATHS = ['config.instanceUuid', 'config.template', 'runtime.powerState']


def find_vm(
    session: vc_session.VCenterSession, instance_uuid: str
) -> Any | None:
    """The VM whose instanceUuid is the instance's uuid, or None."""
    return session.invoke(
        session.content.searchIndex,
        'FindByUuid',
        datacenter=None,
        uuid=instance_uuid,
        vmSearch=True,
        instanceUuid=True,
    )


def get_vm(session: vc_session.VCenterSession, instance: Any) -> Any:
    """The instance's VM; InstanceNotFound when vCenter has none."""
    vm = find_vm(session, instance.uuid)
    if vm is None:
        raise exception.InstanceNotFound(instance_id=instance.uuid)
    return vm


def cluster_vms(
    session: vc_session.VCenterSession, cluster: Any
) -> dict[str, dict[str, Any]]:
    """{instanceUuid: properties} of the cluster's VMs (templates skipped),
    in every resource pool of the cluster, in one round trip."""
    found = inventory.read_cluster(
        session, cluster, {vim.VirtualMachine: LIST_PATHS}
    )[vim.VirtualMachine]
    result = {}
    for ref, props in found.items():
        uuid = props.get('config.instanceUuid')
        if uuid and not props.get('config.template'):
            result[uuid] = dict(props, ref=ref)
    return result
