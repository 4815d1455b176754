"""The one way to find a Nova instance's VM: by ``config.instanceUuid``.

Only VMs Nova created are instances: they carry Nova's ``managedBy``.

A single ``SearchIndex.FindByUuid`` request finds a VM by the uuid Nova gave
it, wherever it lives; listing the cluster's VMs is one traversal read
(:mod:`.inventory`).  Nothing here scans the whole inventory.
"""

from typing import Any

from pyVmomi import vim

from nova import exception
from nova_hypervisors.vmwareapi import inventory
from nova_hypervisors.vmwareapi import session as vc_session

#: What marks a VM as Nova's: the in-tree driver sets the same
#: ``config.managedBy`` (nova/virt/vmwareapi/constants.py EXTENSION_KEY,
#: EXTENSION_TYPE_INSTANCE), so VMs it made stay instances after a switch.
NOVA_EXTENSION_KEY = 'org.openstack.compute'
NOVA_EXTENSION_TYPE = 'instance'
#: Connection states of VMs that are not listed, as in-tree
#: (vmops._get_valid_vms_from_retrieve_result).
UNLISTED_STATES = ('orphaned', 'inaccessible')
LIST_PATHS = [
    'config.instanceUuid',
    'config.template',
    'config.managedBy',
    'runtime.connectionState',
    'runtime.powerState',
]


def managed_by() -> Any:
    """The ``managedBy`` every VM Nova creates carries."""
    return vim.ext.ManagedByInfo(
        extensionKey=NOVA_EXTENSION_KEY, type=NOVA_EXTENSION_TYPE
    )


def is_nova_vm(props: dict) -> bool:
    """Whether a VM's properties are those of a Nova instance.

    vCLS agents, appliances and customers' VMs share the cluster; none
    carries Nova's ``managedBy``.  Orphaned or inaccessible VMs are not
    listed either.
    """
    owner = props.get('config.managedBy')
    return (
        getattr(owner, 'extensionKey', None) == NOVA_EXTENSION_KEY
        and not props.get('config.template')
        and props.get('runtime.connectionState') not in UNLISTED_STATES
    )


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
    """{instanceUuid: properties} of the cluster's Nova VMs, in every
    resource pool of the cluster, in one round trip."""
    found = inventory.read_cluster(
        session, cluster, {vim.VirtualMachine: LIST_PATHS}
    )[vim.VirtualMachine]
    result = {}
    for ref, props in found.items():
        uuid = props.get('config.instanceUuid')
        if uuid and is_nova_vm(props):
            result[uuid] = dict(props, ref=ref)
    return result
