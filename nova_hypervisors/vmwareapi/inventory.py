"""Reading a whole cluster in one PropertyCollector round trip.

Traversal specs walk from the cluster to its hosts, its datastores and,
through every (nested) resource pool, to its VMs.  Periodic work reads
through them, so its cost is one request whatever the inventory size, and a
watch built on them follows VMs that move into or out of the cluster.
"""

from typing import Any

from pyVmomi import vim
from pyVmomi import vmodl

from nova_hypervisors.vmwareapi import session as vc_session

PC = vmodl.query.PropertyCollector


def cluster_object_spec(cluster: Any) -> Any:
    """Start at the cluster, skip it, and visit hosts, datastores, VMs."""
    pools = PC.SelectionSpec(name='pools')
    vms = PC.SelectionSpec(name='vms')
    return PC.ObjectSpec(
        obj=cluster,
        skip=True,
        selectSet=[
            PC.TraversalSpec(
                name='hosts', type=vim.ClusterComputeResource, path='host'
            ),
            PC.TraversalSpec(
                name='datastores',
                type=vim.ClusterComputeResource,
                path='datastore',
            ),
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
        ],
    )


def cluster_filter(cluster: Any, wanted: dict[type, list[str]]) -> Any:
    return PC.FilterSpec(
        objectSet=[cluster_object_spec(cluster)],
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
