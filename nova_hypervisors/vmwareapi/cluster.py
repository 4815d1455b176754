"""The vCenter cluster as one Nova node: where it is and what it can take.

Capacity is read in one PropertyCollector round trip (the cluster's DRS
flag, its hosts and datastores together) and turned into Nova's resources by
pure functions, so the arithmetic is tested without a wire.  What the hosts'
running VMs hold comes from the power-state watch, which follows every VM of
the cluster anyway (:meth:`.events.PowerStates.host_usage`), so neither spawn
nor the periodic reports read a single VM; only before the watch's first
snapshot are the VMs read as well.  ``max_unit`` is what
the largest single host can still take, never the cluster total: Placement
must not offer the cluster for a flavor that no host can run.
"""

from collections.abc import Iterable
import dataclasses
import logging
import re
from typing import Any

from nova import exception
from nova.objects import fields
from oslo_utils import units
from oslo_utils import versionutils
from pyVmomi import vim

from nova_hypervisors.vmwareapi import inventory
from nova_hypervisors.vmwareapi import session as vc_session

LOG = logging.getLogger(__name__)

HYPERVISOR_TYPE = 'VMware vCenter Server'
#: The cluster's DRS flag.  The deprecated ``configuration`` is read rather
#: than ``configurationEx``: a path must be valid for a property's declared
#: type (``configuration`` is a ClusterConfigInfo, which has drsConfig;
#: ``configurationEx`` is the base ComputeResourceConfigInfo, which has not),
#: and the whole ``configurationEx`` carries every per-VM DRS and HA
#: override and every VM group, which grows with the VM count.  vCenter 7
#: and 8 still serve ``configuration`` (vSphere API, ClusterComputeResource).
CLUSTER_PATHS = ['configuration.drsConfig.enabled']
HOST_PATHS = [
    'name',
    'summary.hardware.memorySize',
    'summary.hardware.numCpuThreads',
    'runtime.connectionState',
    'runtime.inMaintenanceMode',
    'datastore',
]
VM_PATHS = [
    'runtime.host',
    'runtime.powerState',
    'summary.config.memorySizeMB',
    'summary.config.numCpu',
]
DATASTORE_PATHS = [
    'summary.name',
    'summary.capacity',
    'summary.freeSpace',
    'summary.accessible',
    'summary.type',
    'summary.maintenanceMode',
    # The hosts that mount it, of every cluster: a datastore shared with
    # other clusters is counted in part (Datastore.share).
    'host',
]
#: Datastore types the driver writes to: VMFS and NFS.  In-tree accepts
#: vsan too, for streamOptimized images only (ds_util._is_datastore_valid,
#: get_allowed_datastore_types); this driver copies flat disks and makes
#: top-level directories with FileManager, neither of which a vSAN or vVol
#: datastore takes.
WRITABLE_DATASTORE_TYPES = ('VMFS', 'NFS', 'NFS41')


@dataclasses.dataclass(frozen=True)
class Node:
    """Where the cluster lives in vCenter, found once at init_host."""

    cluster: Any
    cluster_name: str
    resource_pool: Any
    datacenter: Any
    datacenter_name: str
    #: The inventory path (``/folder?dcPath=``): the name, inside folders.
    datacenter_path: str
    vm_folder: Any
    vcenter_uuid: str
    vcenter_version: str

    @property
    def nodename(self) -> str:
        """``<cluster moref>.<vCenter instanceUuid>``, as Nova's in-tree
        driver names it, so compute nodes and instances carry over."""
        return f'{self.cluster._moId}.{self.vcenter_uuid}'


@dataclasses.dataclass(frozen=True)
class HostCapacity:
    name: str
    memory_mb: int
    cpus: int
    usable: bool
    used_memory_mb: int = 0
    used_vcpus: int = 0
    ref: Any = None
    #: The datastores the host mounts (``HostSystem.datastore``).
    datastores: frozenset = frozenset()


@dataclasses.dataclass(frozen=True)
class Datastore:
    ref: Any
    name: str
    capacity_gb: int
    free_gb: int
    free_bytes: int
    #: The part of the datastore this cluster counts: its own hosts among
    #: every host that mounts it (1.0 when only this cluster's do).
    share: float = 1.0

    @property
    def counted_gb(self) -> int:
        """The capacity this cluster reports: its share."""
        return int(self.capacity_gb * self.share)

    @property
    def counted_used_gb(self) -> int:
        return int((self.capacity_gb - self.free_gb) * self.share)


@dataclasses.dataclass(frozen=True)
class Capacity:
    """The cluster's hosts (with what their running VMs hold) and the
    datastores matching ``datastore_regex``."""

    hosts: list[HostCapacity]
    datastores: list[Datastore]
    #: Whether DRS places new VMs (else the client must name a host).
    drs_enabled: bool = True

    @property
    def usable_hosts(self) -> list[HostCapacity]:
        return [host for host in self.hosts if host.usable]


def find_node(session: vc_session.VCenterSession, cluster_name: str) -> Node:
    """Locate ``[vmware] cluster_name``; the error lists what exists."""
    content = session.content
    if not cluster_name:
        raise vc_session.ConfigurationError('[vmware] cluster_name is not set')
    clusters = session.view_properties(
        content.rootFolder,
        {vim.ClusterComputeResource: ['name', 'parent', 'resourcePool']},
    )
    found = [
        (ref, props)
        for ref, props in clusters.items()
        if props.get('name') == cluster_name or ref._moId == cluster_name
    ]
    if not found:
        names = sorted(props.get('name', '?') for props in clusters.values())
        raise vc_session.ConfigurationError(
            f'[vmware] cluster_name {cluster_name!r} matches no cluster of '
            f'vCenter {session.settings.host} (clusters: '
            f'{", ".join(names) or "none"})'
        )
    if len(found) > 1:
        # Cluster names are unique per datacenter only; never pick one of
        # several silently.
        places = ', '.join(
            f'{ref._moId} in {_datacenter_of(session, p["parent"])[1]["path"]}'
            for ref, p in found
        )
        raise vc_session.ConfigurationError(
            f'[vmware] cluster_name {cluster_name!r} names {len(found)} '
            f'clusters of vCenter {session.settings.host} ({places}); set '
            'it to the moref of the one this compute manages'
        )
    cluster, props = found[0]
    datacenter, dc_props = _datacenter_of(session, props['parent'])
    return Node(
        cluster=cluster,
        cluster_name=props['name'],
        resource_pool=props['resourcePool'],
        datacenter=datacenter,
        datacenter_name=dc_props['name'],
        datacenter_path=dc_props['path'],
        vm_folder=dc_props['vmFolder'],
        vcenter_uuid=content.about.instanceUuid,
        vcenter_version=content.about.version,
    )


def _datacenter_of(session, parent):
    """The cluster's datacenter, with its inventory path in ``path``.

    ``/folder?dcPath=`` wants the datacenter's inventory path, which is
    its name only when it sits at the root: large vCenters keep
    datacenters in folders (govmomi ``object/datastore.go`` builds the
    path from the datacenter's ancestors; in-tree falls back to
    ``vim_util.get_inventory_path``).
    """
    while not isinstance(parent, vim.Datacenter):
        parent = session.properties([parent], type(parent), ['parent'])[
            parent
        ]['parent']
    props = session.properties(
        [parent], vim.Datacenter, ['name', 'vmFolder', 'parent']
    )[parent]
    names = [props['name']]
    folder = props.get('parent')
    root = session.content.rootFolder
    while folder is not None and folder != root:
        found = session.properties([folder], vim.Folder, ['name', 'parent'])[
            folder
        ]
        names.append(found['name'])
        folder = found.get('parent')
    return parent, dict(props, path='/'.join(reversed(names)))


Usage = dict[Any, tuple[int, int]]


def read_capacity(
    session: vc_session.VCenterSession,
    node: Node,
    datastore_regex: str | None,
    usage: Usage | None = None,
) -> Capacity:
    """The DRS flag, hosts and datastores of the cluster in one round trip.

    ``usage`` is what the running VMs hold per host (:func:`host_usage`),
    as the power-state watch knows it; without it, the same request reads
    the cluster's VMs too.
    """
    wanted = {
        vim.ClusterComputeResource: CLUSTER_PATHS,
        vim.HostSystem: HOST_PATHS,
        vim.Datastore: DATASTORE_PATHS,
    }
    if usage is None:
        wanted[vim.VirtualMachine] = VM_PATHS
    found = inventory.read_cluster(session, node.cluster, wanted)
    if usage is None:
        usage = host_usage(found[vim.VirtualMachine].values())
    capacity = capacity_from_properties(
        found[vim.HostSystem],
        usage,
        list(found[vim.Datastore].items()),
        datastore_regex,
    )
    own = found[vim.ClusterComputeResource].get(node.cluster, {})
    return dataclasses.replace(
        capacity,
        drs_enabled=bool(own.get('configuration.drsConfig.enabled')),
    )


def host_usage(vms: Iterable[dict]) -> Usage:
    """Pure: {host: (memory MB, vCPUs)} the powered-on VMs hold."""
    usage: dict[Any, tuple[int, int]] = {}
    for vm in vms:
        host = vm.get('runtime.host')
        if host is None or vm.get('runtime.powerState') != 'poweredOn':
            continue
        memory, vcpus = usage.get(host, (0, 0))
        usage[host] = (
            memory + (vm.get('summary.config.memorySizeMB') or 0),
            vcpus + (vm.get('summary.config.numCpu') or 0),
        )
    return usage


def capacity_from_properties(
    hosts: dict, usage: Usage, datastores: list, datastore_regex: str | None
) -> Capacity:
    """Pure: PropertyCollector results to :class:`Capacity`."""
    host_capacities = [
        HostCapacity(
            name=props.get('name') or str(ref),
            memory_mb=(props.get('summary.hardware.memorySize') or 0)
            // units.Mi,
            cpus=props.get('summary.hardware.numCpuThreads') or 0,
            usable=props.get('runtime.connectionState') == 'connected'
            and not props.get('runtime.inMaintenanceMode'),
            used_memory_mb=usage.get(ref, (0, 0))[0],
            used_vcpus=usage.get(ref, (0, 0))[1],
            ref=ref,
            datastores=frozenset(props.get('datastore') or ()),
        )
        for ref, props in hosts.items()
    ]
    pattern = re.compile(datastore_regex) if datastore_regex else None
    matching = []
    for ref, props in datastores:
        name = props.get('summary.name', '')
        if not usable_datastore(props):
            continue
        if pattern is not None and not pattern.match(name):
            continue
        free = props.get('summary.freeSpace') or 0
        matching.append(
            Datastore(
                ref=ref,
                name=name,
                capacity_gb=(props.get('summary.capacity') or 0) // units.Gi,
                free_gb=free // units.Gi,
                free_bytes=free,
                share=_share(props.get('host'), set(hosts)),
            )
        )
    return Capacity(hosts=host_capacities, datastores=matching)


def _share(mounts: list | None, own_hosts: set) -> float:
    """This cluster's part of a datastore: its hosts among all that mount
    it.

    A datastore shared by several clusters would otherwise be counted in
    full by each of their nova-computes, and Placement would see its space
    several times.  Nova cannot take DISK_GB from a sharing provider
    (its documented limitation, bug 1784020), so each cluster reports the
    part that its hosts make of the datastore's mounts; the parts of all
    clusters add up to the datastore once.  ``mounts`` is
    ``Datastore.host`` (DatastoreHostMount: key, mountInfo).
    """
    mounted = {
        mount.key
        for mount in mounts or ()
        if getattr(mount.mountInfo, 'mounted', True) is not False
    }
    ours = mounted & own_hosts
    if not mounted or not ours:
        return 1.0
    return len(ours) / len(mounted)


def pick_host(
    capacity: Capacity, memory_mb: int, datastores: list[Datastore]
) -> HostCapacity | None:
    """The usable host with the most memory left that mounts every one of
    ``datastores`` and can hold ``memory_mb``; None when none can.

    vCenter runs a VM only on a host that mounts its datastores
    (in-tree: vmops._find_esx_host(cluster, datastore)).
    """
    fitting = [
        host
        for host in capacity.usable_hosts
        if host.memory_mb - host.used_memory_mb >= memory_mb
        and all(ds.ref in host.datastores for ds in datastores)
    ]
    if not fitting:
        return None
    return max(fitting, key=lambda h: h.memory_mb - h.used_memory_mb)


def usable_datastore(props: dict) -> bool:
    """Accessible, not in maintenance (it is being evacuated: the emptiest,
    so it would win every time), and of a type the driver can write."""
    return (
        props.get('summary.accessible', True)
        and props.get('summary.maintenanceMode', 'normal') == 'normal'
        and props.get('summary.type') in WRITABLE_DATASTORE_TYPES
    )


def best_datastore(capacity: Capacity, needed_bytes: int = 0) -> Datastore:
    """The matching datastore with the most free space."""
    candidates = [
        ds for ds in capacity.datastores if ds.free_bytes >= needed_bytes
    ]
    if not candidates:
        raise exception.DatastoreNotFound(
            _no_datastore_message(capacity, needed_bytes)
        )
    return max(candidates, key=lambda ds: ds.free_bytes)


def _no_datastore_message(capacity: Capacity, needed_bytes: int) -> str:
    if not capacity.datastores:
        return (
            'no accessible datastore of the cluster matches '
            '[vmware] datastore_regex'
        )
    return (
        'no datastore matching [vmware] datastore_regex has '
        f'{needed_bytes // units.Gi} GB free'
    )


def placement_inventory(
    capacity: Capacity,
    ratios: dict[str, float],
    reserved: dict[str, int],
    datastore_regex: str | None,
) -> dict[str, dict]:
    """Placement inventory of the cluster.

    Totals are the cluster's usable hosts and matching datastores.
    ``max_unit``:

    * VCPU: the largest host's thread count.  No VM can have more vCPUs
      than one host has threads, and vCPUs are overcommitted (Nova's
      default ratio is 4.0), so the vCPUs already running say nothing of
      what still fits: at 3,000 one-vCPU VMs on 64-thread hosts a 2-vCPU
      flavor still fits anywhere.  (In-tree reports a host's threads too.)
    * MEMORY_MB: what the largest single host can still take, with the
      allocation ratio applied (capacity times ratio minus its powered-on
      VMs).
    * DISK_GB: the largest matching datastore's free space.

    DISK_GB's total counts each matching datastore once across clusters:
    this cluster's share of it (:func:`_share`).
    """
    hosts = capacity.usable_hosts
    result = {}
    if hosts:
        vcpu_ratio = ratios['VCPU']
        memory_ratio = ratios['MEMORY_MB']
        result['VCPU'] = _entry(
            total=sum(host.cpus for host in hosts),
            reserved=reserved['VCPU'],
            max_unit=max(host.cpus for host in hosts),
            ratio=vcpu_ratio,
        )
        result['MEMORY_MB'] = _entry(
            total=sum(host.memory_mb for host in hosts),
            reserved=reserved['MEMORY_MB'],
            max_unit=max(
                int(host.memory_mb * memory_ratio) - host.used_memory_mb
                for host in hosts
            ),
            ratio=memory_ratio,
        )
    else:
        LOG.warning(
            'Cluster has no connected host outside maintenance mode; '
            'reporting no VCPU or MEMORY_MB'
        )
    if capacity.datastores:
        result['DISK_GB'] = _entry(
            total=sum(ds.counted_gb for ds in capacity.datastores),
            reserved=reserved['DISK_GB'],
            max_unit=max(ds.free_gb for ds in capacity.datastores),
            ratio=ratios['DISK_GB'],
        )
    else:
        LOG.warning(
            'No accessible datastore of the cluster matches [vmware] '
            'datastore_regex %r; reporting no DISK_GB, so instances with '
            'a root disk cannot be scheduled here',
            datastore_regex,
        )
    return result


def _entry(total: int, reserved: int, max_unit: int, ratio: float) -> dict:
    total = max(total, 1)
    return {
        'total': total,
        'reserved': min(reserved, total),
        'min_unit': 1,
        'max_unit': max(1, min(max_unit, int(total * ratio))),
        'step_size': 1,
        'allocation_ratio': ratio,
    }


def available_resource(capacity: Capacity, node: Node) -> dict:
    """The dict Nova's resource tracker expects from the driver."""
    hosts = capacity.usable_hosts
    memory_total = sum(host.memory_mb for host in hosts)
    return {
        'vcpus': sum(host.cpus for host in hosts),
        'memory_mb': memory_total,
        'memory_mb_used': sum(host.used_memory_mb for host in hosts),
        'local_gb': sum(ds.counted_gb for ds in capacity.datastores),
        'local_gb_used': sum(ds.counted_used_gb for ds in capacity.datastores),
        'vcpus_used': 0,
        'hypervisor_type': HYPERVISOR_TYPE,
        'hypervisor_version': versionutils.convert_version_to_int(
            node.vcenter_version
        ),
        'hypervisor_hostname': node.nodename,
        'cpu_info': None,
        'supported_instances': [
            (fields.Architecture.I686, 'vmware', fields.VMMode.HVM),
            (fields.Architecture.X86_64, 'vmware', fields.VMMode.HVM),
        ],
        'numa_topology': None,
    }
