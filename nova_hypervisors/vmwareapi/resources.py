"""The node's resources for Nova's resource tracker and Placement.

Reads the cluster's hosts and datastores once per call
(:func:`cluster.read_capacity`), takes what the VMs hold from the
power-state watch, and applies Nova's allocation ratios and reserved
amounts.
"""

from typing import Any

from nova import conf as nova_conf
from nova.compute import utils as compute_utils
from nova.virt import driver as virt_driver
import os_traits
from oslo_log import log as logging

from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import events
from nova_hypervisors.vmwareapi import session as vc_session

CONF = nova_conf.CONF
LOG = logging.getLogger(__name__)


class ClusterResources:
    """What the cluster node can take, as Nova wants to hear it."""

    def __init__(
        self,
        session: vc_session.VCenterSession,
        node: cluster.Node,
        datastore_regex: str | None,
        states: events.PowerStates,
    ) -> None:
        self._session = session
        self._node = node
        self._datastore_regex = datastore_regex
        self._states = states

    def capacity(self) -> cluster.Capacity:
        return cluster.read_capacity(
            self._session,
            self._node,
            self._datastore_regex,
            self._states.host_usage(),
        )

    def available_resource(self) -> dict:
        return cluster.available_resource(self.capacity(), self._node)

    def update_provider_tree(self, provider_tree: Any, nodename: str) -> None:
        inventory = placement_inventory(
            self.capacity(),
            provider_tree.data(nodename).inventory,
            self._datastore_regex,
        )
        provider_tree.update_inventory(nodename, inventory)
        provider_tree.add_traits(nodename, os_traits.HW_ARCH_X86_64)


def placement_inventory(
    capacity: cluster.Capacity, current: dict, datastore_regex: str | None
) -> dict[str, dict]:
    """The inventory Placement is told, with Nova's allocation ratios (as
    Nova resolves them against the ``current`` inventory) and reserved
    amounts; ``nova-hypervisors check`` shows the same."""
    ratios = virt_driver.ComputeDriver._get_allocation_ratios(current)
    reserved = {
        'VCPU': CONF.reserved_host_cpus,
        'MEMORY_MB': CONF.reserved_host_memory_mb,
        'DISK_GB': compute_utils.convert_mb_to_ceil_gb(
            CONF.reserved_host_disk_mb
        ),
    }
    return cluster.placement_inventory(
        capacity, ratios, reserved, datastore_regex
    )
