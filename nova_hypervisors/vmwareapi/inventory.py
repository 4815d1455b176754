"""Reading a whole cluster in one PropertyCollector round trip.

Traversal specs walk from the cluster to its hosts, its datastores and,
through every (nested) resource pool, to its VMs.  Periodic work reads
through them, so its cost is one request whatever the inventory size, and a
watch built on them follows VMs that move into or out of the cluster.  A
read that wants no VM does not walk the resource pools at all, so what
vCenter does and sends for it does not grow with the VM count.
"""

from typing import Any

from pyVmomi import vim
from pyVmomi import vmodl

from nova_hypervisors.vmwareapi import session as vc_session

PC = vmodl.query.PropertyCollector


def cluster_object_spec(
    cluster: Any, vms: bool = True, skip: bool = True
) -> Any:
    """Start at the cluster (``skip``: without its own properties) and
    visit its hosts, its datastores and, with ``vms``, its VMs."""
    select = [
        PC.TraversalSpec(
            name='hosts', type=vim.ClusterComputeResource, path='host'
        ),
        PC.TraversalSpec(
            name='datastores',
            type=vim.ClusterComputeResource,
            path='datastore',
        ),
    ]
    if vms:
        select += _vm_traversal()
    return PC.ObjectSpec(obj=cluster, skip=skip, selectSet=select)


def _vm_traversal() -> list:
    pools = PC.SelectionSpec(name='pools')
    vms = PC.SelectionSpec(name='vms')
    return [
        PC.TraversalSpec(
            name='rootPool',
            type=vim.ClusterComputeResource,
            path='resourcePool',
            selectSet=[pools, vms],
        ),
        PC.TraversalSpec(
            name='pools',
            type=vim.ResourcePool,
            path='resourcePool',
            selectSet=[pools, vms],
        ),
        PC.TraversalSpec(name='vms', type=vim.ResourcePool, path='vm'),
    ]


def cluster_filter(cluster: Any, wanted: dict[type, list[str]]) -> Any:
    """What ``wanted`` names of the cluster (when it names
    ``ClusterComputeResource``), its hosts, datastores and VMs."""
    spec = cluster_object_spec(
        cluster,
        vms=vim.VirtualMachine in wanted,
        skip=vim.ClusterComputeResource not in wanted,
    )
    return PC.FilterSpec(
        objectSet=[spec],
        propSet=[
            PC.PropertySpec(type=obj_type, pathSet=paths)
            for obj_type, paths in wanted.items()
        ],
    )


def read_cluster(
    session: vc_session.VCenterSession,
    cluster: Any,
    wanted: dict[type, list[str]],
) -> dict[type, dict[Any, dict[str, Any]]]:
    """{type: {ref: {path: value}}} for the wanted types of the cluster."""
    result: dict[type, dict[Any, dict[str, Any]]] = {t: {} for t in wanted}
    for content in session.retrieve([cluster_filter(cluster, wanted)]):
        for obj_type in wanted:
            if isinstance(content.obj, obj_type):
                result[obj_type][content.obj] = vc_session.as_dict(content)
                break
    return result
