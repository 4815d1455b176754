"""Where semantic modules register the messages they implement.

A handler is ``fn(ctx, *params)`` with parameters already checked against
the datamodel (types, enum values, referenced objects exist) and in store
form.  It runs with the pool database locked, like xapi's global database
lock around a call, and returns the result in store form.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import time
from typing import TYPE_CHECKING
from typing import Any

from nova_hypervisors.simulators.xapi.errors import XapiFailure

if TYPE_CHECKING:
    from nova_hypervisors.simulators.xapi.store import ObjectStore
    from nova_hypervisors.simulators.xapi.topology import PoolState
    from nova_hypervisors.simulators.xapi.topology import SimHost
    from nova_hypervisors.simulators.xapi.topology import Topology

Handler = Callable[..., Any]
HANDLERS: dict[str, Handler] = {}


def message(
    wire_name: str, long_running: bool = False
) -> Callable[[Handler], Handler]:
    """Register the implementation of ``Class.message``.

    A ``long_running`` handler spends injected latency itself, at the point
    where a real host would be busy (see :meth:`CallContext.spend_latency`);
    for the others the dispatcher waits before calling them.
    """

    def register(fn: Handler) -> Handler:
        if wire_name in HANDLERS:
            raise ValueError('%s is implemented twice' % wire_name)
        fn.long_running = long_running
        HANDLERS[wire_name] = fn
        return fn

    return register


@dataclasses.dataclass
class CallContext:
    """What a handler knows about the call it serves."""

    topology: Topology
    endpoint: SimHost  # the host whose address received the call
    pool: PoolState
    method: str  # wire name without Async.
    protocol: str
    session: str | None = None
    task: str | None = None
    latency: float = 0.0

    def spend_latency(self) -> None:
        """Wait out injected latency with the database unlocked.

        A task cancelled meanwhile stops here with ``TASK_CANCELLED``.
        """
        delay, self.latency = self.latency, 0.0
        if delay > 0:
            lock = self.store.lock
            lock.release()
            try:
                time.sleep(delay)
            finally:
                lock.acquire()
        if self.task is not None:
            record = self.store.tables['task'].get(self.task)
            if record is not None and record['status'] == 'cancelling':
                raise XapiFailure('TASK_CANCELLED', self.task)

    @property
    def store(self) -> ObjectStore:
        return self.pool.store

    @property
    def disks(self):
        return self.topology.disks

    @property
    def pool_ref(self) -> str:
        return self.pool.pool_ref
