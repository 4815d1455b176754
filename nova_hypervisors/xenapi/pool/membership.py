"""What one compute must do to its own XenServer host's pool membership.

A pure decision, kept apart from the XenAPI and Nova calls that carry it
out, so every rule can be read and tested on its own.  The aggregate's
metadata is the shared record all compute services agree on:

``hypervisor_pool``     ``true`` marks an aggregate as a XenServer pool
``operational_state``   ``created`` -> ``active``, or ``error``
``operational_state_reason``  why the state is ``error``, for the operator
``master_compute``      the compute service whose host is the pool master
``master_address``      that host's management address (never credentials)
``<compute host>``      uuid of the XenServer host behind each member
"""

from __future__ import annotations

import dataclasses
import enum

HYPERVISOR_POOL = 'hypervisor_pool'
STATE = 'operational_state'
REASON = 'operational_state_reason'
MASTER = 'master_compute'
MASTER_ADDRESS = 'master_address'

STATE_CREATED = 'created'
STATE_ACTIVE = 'active'
STATE_ERROR = 'error'

#: The key in the XenServer pool's other_config naming its aggregate.
POOL_AGGREGATE_KEY = 'nova-aggregate-uuid'


class Action(enum.Enum):
    NOTHING = 'nothing'
    WAIT = 'wait for the master'
    BECOME_MASTER = 'become master'
    JOIN = 'join the master'
    RECORD_MEMBER = 'record membership'
    LEAVE = 'leave the pool'
    ERROR = 'report an error'


@dataclasses.dataclass(frozen=True)
class AggregateView:
    """The parts of a Nova aggregate that decide pool membership."""

    uuid: str
    name: str
    hosts: tuple[str, ...]
    metadata: dict

    @property
    def is_pool(self) -> bool:
        return str(self.metadata.get(HYPERVISOR_POOL, '')).lower() == 'true'


@dataclasses.dataclass(frozen=True)
class HostView:
    """This compute's XenServer host and the pool it is in now."""

    uuid: str
    address: str
    is_master: bool
    member_count: int
    master_address: str
    pool_aggregate: str | None


@dataclasses.dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ''


def is_pool_master_compute(compute: str, aggregate: AggregateView) -> bool:
    return aggregate.metadata.get(MASTER) == compute


def decide(
    compute: str, aggregates: list[AggregateView], host: HostView
) -> Decision:
    """The one step this compute takes next for its own host."""
    pools = [agg for agg in aggregates if agg.is_pool]
    if len(pools) > 1:
        names = ', '.join(sorted(agg.name for agg in pools))
        return Decision(
            Action.ERROR,
            f'compute {compute} is in several hypervisor_pool aggregates '
            f'({names}); a XenServer host can be in one pool only',
        )
    if not pools:
        if not host.pool_aggregate or host.member_count == 1:
            return Decision(Action.NOTHING)
        if host.is_master:
            return Decision(
                Action.ERROR,
                f'master compute {compute} was removed from the aggregate '
                f'while {host.member_count - 1} other host(s) are in its '
                'pool; add it back, remove the other hosts first, then it',
            )
        return Decision(Action.LEAVE)
    return _decide_member(compute, pools[0], host)


def _decide_member(
    compute: str, aggregate: AggregateView, host: HostView
) -> Decision:
    master = aggregate.metadata.get(MASTER)
    if master and master not in aggregate.hosts:
        if host.is_master and host.member_count == 1:
            # The old master was removed while alone: elect anew.
            master = None
        else:
            return Decision(
                Action.ERROR,
                f'master compute {master} was removed from the aggregate '
                f'while {compute} is still a member; remove the other '
                'hosts first, then the master',
            )
    if not master:
        if aggregate.hosts and aggregate.hosts[0] == compute:
            return _decide_master(compute, aggregate, host)
        return Decision(Action.WAIT)
    if master == compute:
        return _decide_master(compute, aggregate, host)
    master_address = aggregate.metadata.get(MASTER_ADDRESS)
    if not master_address:
        return Decision(Action.WAIT)
    if host.master_address == master_address and not host.is_master:
        if aggregate.metadata.get(compute) != host.uuid:
            return Decision(Action.RECORD_MEMBER)
        return Decision(Action.NOTHING)
    if not host.is_master:
        return Decision(
            Action.ERROR,
            f'the XenServer host of {compute} is a member of another pool '
            f'(master {host.master_address}); eject it there first',
        )
    return Decision(Action.JOIN)


def _decide_master(
    compute: str, aggregate: AggregateView, host: HostView
) -> Decision:
    if not host.is_master:
        return Decision(
            Action.ERROR,
            f'the XenServer host of {compute} is a member of the pool of '
            f'{host.master_address}, so it cannot be the master of '
            f'{aggregate.name}; eject it there first',
        )
    if host.pool_aggregate not in (None, aggregate.uuid):
        return Decision(
            Action.ERROR,
            f'the XenServer pool of {compute} belongs to aggregate '
            f'{host.pool_aggregate}',
        )
    recorded = (
        aggregate.metadata.get(MASTER) == compute
        and aggregate.metadata.get(MASTER_ADDRESS) == host.address
        and aggregate.metadata.get(compute) == host.uuid
        and host.pool_aggregate == aggregate.uuid
    )
    if recorded:
        return Decision(Action.NOTHING)
    return Decision(Action.BECOME_MASTER)
