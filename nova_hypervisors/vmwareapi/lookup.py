"""The one way to find a Nova instance's VM: by ``config.instanceUuid``.

Only VMs Nova created are instances: they carry Nova's ``managedBy``.

VMs made by Nova's in-tree driver carry the instance's uuid in
``extraConfig["nvp.vm-uuid"]`` as well, and that is what in-tree finds them
by when their ``instanceUuid`` differs (vCenter gives a new one to a VM that
is registered again, imported or cloned over a duplicate).  At start-up
:func:`adopt_in_tree_vms` gives each such VM its instance's uuid as
``instanceUuid`` again, so every later lookup stays one request.

A single ``SearchIndex.FindByUuid`` request finds a VM by the uuid Nova gave
it, wherever it lives; listing the cluster's VMs is one traversal read
(:mod:`.inventory`).  Nothing here scans the whole inventory.
"""

import logging
from typing import Any

from nova import exception
from pyVmomi import vim

from nova_hypervisors.vmwareapi import inventory
from nova_hypervisors.vmwareapi import session as vc_session

LOG = logging.getLogger(__name__)

#: What marks a VM as Nova's: the in-tree driver sets the same
#: ``config.managedBy`` (nova/virt/vmwareapi/constants.py EXTENSION_KEY,
#: EXTENSION_TYPE_INSTANCE), so VMs it made stay instances after a switch.
NOVA_EXTENSION_KEY = 'org.openstack.compute'
NOVA_EXTENSION_TYPE = 'instance'
#: Connection states of VMs that are not listed, as in-tree
#: (vmops._get_valid_vms_from_retrieve_result).
UNLISTED_STATES = ('orphaned', 'inaccessible')
#: What in-tree writes the instance's uuid into (vm_util.get_vm_create_spec).
VM_UUID_KEY = 'nvp.vm-uuid'
#: A keyed path: the one option, not the whole extraConfig of every VM.
VM_UUID_PATH = f'config.extraConfig["{VM_UUID_KEY}"]'
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


def adopt_in_tree_vms(
    session: vc_session.VCenterSession, cluster: Any
) -> list[str]:
    """Give Nova's VMs whose ``instanceUuid`` is not the instance's uuid
    that uuid again; return the uuids of the VMs repaired.

    One read of the cluster's VMs (the keyed path brings one option per
    VM), then one ``ReconfigVM`` per VM to repair, which is none once a
    cluster has been adopted.  A VM that cannot take its uuid (another VM
    has it) is named in a warning and left as it is.
    """
    found = inventory.read_cluster(
        session, cluster, {vim.VirtualMachine: LIST_PATHS + [VM_UUID_PATH]}
    )[vim.VirtualMachine]
    repaired = []
    for ref, props in found.items():
        wanted = getattr(props.get(VM_UUID_PATH), 'value', None)
        if (
            not wanted
            or not is_nova_vm(props)
            or props.get('config.instanceUuid') == wanted
        ):
            continue
        try:
            session.wait_for_task(
                session.invoke(
                    ref,
                    'ReconfigVM_Task',
                    spec=vim.vm.ConfigSpec(instanceUuid=wanted),
                )
            )
        except Exception as error:  # noqa: BLE001 - one VM must not stop us
            LOG.warning(
                'VM %s belongs to instance %s (its %s) but could not take '
                'that uuid as its instanceUuid (%s); Nova will not find it',
                ref._moId,
                wanted,
                VM_UUID_KEY,
                error,
            )
            continue
        LOG.info(
            'VM %s of instance %s had instanceUuid %s; set to the '
            "instance's uuid, as Nova's in-tree driver would have found it",
            ref._moId,
            wanted,
            props.get('config.instanceUuid'),
        )
        repaired.append(wanted)
    return repaired
