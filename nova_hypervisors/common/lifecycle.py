"""Power-state changes seen on a hypervisor, as Nova lifecycle events.

A driver that watches its hypervisor for VM changes (XenAPI ``event.from``,
a vSphere property collector) feeds every observed power state here; the
tracker emits a :class:`nova.virt.event.LifecycleEvent` only when an
instance's state really changed, so Nova learns at once that a guest shut
itself down instead of waiting for the ten-minute power-state sync.
"""

from __future__ import annotations

from collections.abc import Callable
import threading

from nova.compute import power_state
from nova.virt import event as virtevent
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_TRANSITIONS = {
    power_state.RUNNING: virtevent.EVENT_LIFECYCLE_STARTED,
    power_state.SHUTDOWN: virtevent.EVENT_LIFECYCLE_STOPPED,
    power_state.CRASHED: virtevent.EVENT_LIFECYCLE_STOPPED,
    power_state.PAUSED: virtevent.EVENT_LIFECYCLE_PAUSED,
    power_state.SUSPENDED: virtevent.EVENT_LIFECYCLE_SUSPENDED,
}


def transition(old: int | None, new: int) -> int | None:
    """The lifecycle transition from ``old`` to ``new`` power state."""
    if old == new:
        return None
    if new == power_state.RUNNING and old in (
        power_state.PAUSED,
        power_state.SUSPENDED,
    ):
        return virtevent.EVENT_LIFECYCLE_RESUMED
    return _TRANSITIONS.get(new)


class PowerStateTracker:
    """Last known power state per instance; emits events on changes."""

    def __init__(self, emit: Callable[[virtevent.Event], None]) -> None:
        self._emit = emit
        self._states: dict[str, int] = {}
        self._lock = threading.Lock()

    def prime(self, states: dict[str, int]) -> None:
        """Record the current states without emitting anything."""
        with self._lock:
            self._states = dict(states)

    def observe(self, instance_uuid: str, state: int) -> bool:
        """Record ``state``; emit a lifecycle event if it changed.

        :returns: whether an event was emitted.
        """
        with self._lock:
            old = self._states.get(instance_uuid)
            self._states[instance_uuid] = state
        change = transition(old, state)
        if change is None or old is None and state == power_state.SHUTDOWN:
            # A VM first seen halted (just created) is no news to Nova.
            return False
        LOG.debug(
            'Power state of %s went from %s to %s', instance_uuid, old, state
        )
        self._emit(virtevent.LifecycleEvent(instance_uuid, change))
        return True

    def forget(self, instance_uuid: str) -> None:
        """The instance is gone; its next appearance starts afresh."""
        with self._lock:
            self._states.pop(instance_uuid, None)

    def knows(self, instance_uuid: str) -> bool:
        with self._lock:
            return instance_uuid in self._states


class EventDispatcher:
    """Hands events to Nova from a thread of its own.

    Nova's handler reads the database and may call back into the driver;
    the hypervisor watcher must never wait for it (it also wakes task
    waiters), so events go through a queue.  Under eventlet the thread is
    a green thread, as Nova's ``emit_event`` expects.
    """

    def __init__(self, emit: Callable[[virtevent.Event], None]) -> None:
        import queue

        self._emit = emit
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name='lifecycle-events', daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)

    def put(self, event: virtevent.Event) -> None:
        self._queue.put(event)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self._emit(event)
            except Exception:
                LOG.exception('Delivering %s to Nova failed', event)
