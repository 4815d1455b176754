"""Power states of the cluster's VMs, watched instead of polled.

One PropertyCollector filter over the cluster (traversal specs, so VMs that
migrate in are seen too) long-polls ``runtime.powerState`` with
``WaitForUpdatesEx``.  Every change becomes a Nova lifecycle event, so a VM
powered off in vCenter shows SHUTOFF in Nova within seconds, and the cache
answers Nova's power-state sync without a request per instance.

The cache never answers for a VM the driver itself has just changed until
the watch has confirmed the state the driver expects: an update still in
flight must not make Nova record a stale power state.  For the same reason
the watch emits no event for such a VM until then: the changes it sees are
the driver's own steps (a rescue powers off and on again; vcsim's reset is
an off and an on), which Nova already knows, and delivered late they would
make Nova "correct" a running instance to SHUTOFF.  An expectation holds
while the driver's operation runs (a clean shutdown may take Nova's 60 s
and more) and, once the operation has ended (:meth:`PowerStates.settle`),
lapses after ``CONFIRM_SECONDS`` if the watch never confirms it (vCenter's
own reset does not change the power state).

The watch also follows where each VM runs and what it holds (host, memory,
vCPUs), of every VM of the cluster, Nova's or not: that is what the hosts
have left (:meth:`PowerStates.host_usage`), so spawn and the periodic
reports read no VM at all.

A snapshot may come in several truncated updates; the cache vouches for
nothing until the last has arrived.  A watch that is re-created (a dropped
connection, a re-login, a restarted vCenter) starts a new snapshot and keeps
what it knew: a VM whose state changed while the watch was down gets its
event, and one that is gone meanwhile is forgotten when the snapshot is
complete.
"""

from collections.abc import Callable
import contextlib
import logging
import threading
import time
from typing import Any

from nova.compute import power_state
from nova.virt import event as virtevent
from pyVmomi import vim
from pyVmomi import vmodl

from nova_hypervisors.common import lifecycle
from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import inventory
from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import session as vc_session

LOG = logging.getLogger(__name__)

POWER_STATES = {
    'poweredOn': power_state.RUNNING,
    'poweredOff': power_state.SHUTDOWN,
    'suspended': power_state.SUSPENDED,
}
WATCH_PATHS = [
    'config.instanceUuid',
    'config.template',
    'config.managedBy',
    'runtime.connectionState',
] + cluster.VM_PATHS
#: Seconds between two attempts to restore a broken watch.
RESTART_DELAY = 1.0
#: Seconds an expectation holds while the driver's operation may still run
#: (longer than any task the driver waits for).
EXPECT_SECONDS = 900.0
#: Seconds an expectation still holds once the operation has ended: the
#: watch's update is then at most a long-poll away.
CONFIRM_SECONDS = 10.0


class PowerStates:
    """instanceUuid -> vSphere power state, fed by the watch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}
        self._uuids: dict[Any, str] = {}
        #: ref -> what the watch said of the VM's ownership paths
        self._props: dict[Any, dict] = {}
        #: uuid -> (states the driver's operations will bring, deadline)
        self._expected: dict[str, tuple[list[str], float]] = {}
        #: refs seen by the snapshot in progress, None when there is none
        self._seen: set | None = None
        self.synced = False

    def _pending(self, instance_uuid: str) -> list[str]:
        """Unconfirmed states the driver expects (lock held)."""
        entry = self._expected.get(instance_uuid)
        if entry is None:
            return []
        if entry[1] < time.monotonic():
            del self._expected[instance_uuid]
            return []
        return entry[0]

    def get(self, instance_uuid: str) -> str | None:
        """The watched state, or None when the cache cannot vouch for it."""
        with self._lock:
            if not self.synced or self._pending(instance_uuid):
                return None
            return self._states.get(instance_uuid)

    def last(self, instance_uuid: str) -> str | None:
        """The state the VM was last seen in or is being brought to, even
        unconfirmed: an answer for when vCenter cannot be asked."""
        with self._lock:
            pending = self._pending(instance_uuid)
            if pending:
                return pending[-1]
            return self._states.get(instance_uuid)

    def known(self) -> bool:
        return self.synced

    def count(self) -> int:
        with self._lock:
            return len(self._states)

    def uuids(self) -> list[str]:
        with self._lock:
            return list(self._states)

    def expect(self, instance_uuid: str, state: str | None) -> None:
        """The driver is changing this VM to ``state``: distrust the cache
        and stay silent about it until the watch confirms.  ``None``
        forgets the VM (it was destroyed or left the cluster)."""
        with self._lock:
            if state is None:
                self._expected.pop(instance_uuid, None)
                self._states.pop(instance_uuid, None)
                return
            pending = list(self._pending(instance_uuid))
            if not pending or pending[-1] != state:
                pending.append(state)
            deadline = time.monotonic() + EXPECT_SECONDS
            self._expected[instance_uuid] = (pending, deadline)

    def settle(self, instance_uuid: str) -> None:
        """The driver's operation on this VM has ended: what it brought is
        at most one update away, so an unconfirmed expectation lapses
        soon."""
        with self._lock:
            entry = self._expected.get(instance_uuid)
            if entry is not None:
                deadline = time.monotonic() + CONFIRM_SECONDS
                self._expected[instance_uuid] = (
                    entry[0],
                    min(entry[1], deadline),
                )

    @contextlib.contextmanager
    def changing(self, instance_uuid: str, state: str):
        """Expect ``state`` while the block runs; settle when it ends."""
        self.expect(instance_uuid, state)
        try:
            yield
        finally:
            self.settle(instance_uuid)

    def host_usage(self) -> cluster.Usage | None:
        """What the powered-on VMs hold per host, or None before the
        watch's first complete snapshot."""
        with self._lock:
            if not self.synced:
                return None
            return cluster.host_usage(self._props.values())

    def begin_snapshot(self) -> None:
        """A new watch: vouch for nothing until its snapshot is whole."""
        with self._lock:
            self.synced = False
            self._seen = set()

    def complete_snapshot(self) -> None:
        """The snapshot is whole: forget VMs it did not contain."""
        with self._lock:
            seen = self._seen or set()
            for ref in [ref for ref in self._props if ref not in seen]:
                del self._props[ref]
                uuid = self._uuids.pop(ref, None)
                if uuid:
                    self._states.pop(uuid, None)
            self._seen = None
            self.synced = True

    def retract(self, instance_uuid: str, state: str) -> None:
        """An operation that was to bring ``state`` changed nothing."""
        with self._lock:
            pending = self._pending(instance_uuid)
            if state in pending:
                pending.remove(state)
            if not pending:
                self._expected.pop(instance_uuid, None)

    def apply(self, ref: Any, props: dict, kind: str) -> tuple | None:
        """Record an update; return (uuid, old, new) when a state changed.

        Only Nova's VMs are followed (:func:`lookup.is_nova_vm`): a VM
        that is not, or stops being (orphaned, inaccessible), counts as
        gone.
        """
        with self._lock:
            if self._seen is not None and kind != 'leave':
                self._seen.add(ref)
            known = self._props.setdefault(ref, {})
            if kind == 'enter':
                known.clear()
            known.update(props)
            if kind == 'leave' or not lookup.is_nova_vm(known):
                if kind == 'leave':
                    self._props.pop(ref, None)
                uuid = self._uuids.pop(ref, None)
                if uuid:
                    self._states.pop(uuid, None)
                return None
            uuid = props.get('config.instanceUuid') or self._uuids.get(ref)
            if not uuid:
                return None
            self._uuids[ref] = uuid
            new = props.get('runtime.powerState')
            if new is None:
                return None
            old = self._states.get(uuid)
            self._states[uuid] = new
            pending = self._pending(uuid)
            if pending:
                # The driver's own step: it confirms the steps up to the
                # first that brings this state (vCenter may coalesce the
                # ones before it; later ones are still to come).
                if new in pending:
                    del pending[: pending.index(new) + 1]
                if not pending:
                    del self._expected[uuid]
                return None
            return (uuid, old, new) if old != new else None


class PowerStateWatcher:
    """Long-polls the cluster's power states and emits lifecycle events."""

    def __init__(
        self,
        session: vc_session.VCenterSession,
        cluster: Any,
        states: PowerStates,
        emit: Callable[[virtevent.LifecycleEvent], None],
        availability: Any = None,
    ) -> None:
        """``availability`` (a :class:`.common.availability.
        ServiceAvailability`) hears when vCenter stops answering and when
        it answers again."""
        self._session = session
        self._cluster = cluster
        self._states = states
        self._emit = emit
        self._availability = availability
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._collector = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name='vmware-power-watch', daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        collector = self._collector
        if collector is not None:
            try:
                self._session.invoke(collector, 'CancelWaitForUpdates')
            except Exception:  # noqa: BLE001 - shutting down anyway
                LOG.debug('Cancelling the power watch failed', exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch()
            except Exception:  # noqa: BLE001 - the watch must survive
                if self._stop.is_set():
                    return
                LOG.warning(
                    'Power-state watch interrupted; restarting',
                    exc_info=True,
                )
                if self._availability is not None:
                    self._availability.lost(
                        f'vCenter {self._session.settings.host} unreachable'
                    )
                self._stop.wait(RESTART_DELAY)

    def _watch(self) -> None:
        session = self._session
        generation = session.generation
        collector = session.invoke(
            session.content.propertyCollector, 'CreatePropertyCollector'
        )
        self._collector = collector
        try:
            session.invoke(
                collector,
                'CreateFilter',
                inventory.cluster_filter(
                    self._cluster, {vim.VirtualMachine: WATCH_PATHS}
                ),
                partialUpdates=True,
            )
            self._states.begin_snapshot()
            snapshot = True
            version = ''
            options = vmodl.query.PropertyCollector.WaitOptions(
                maxWaitSeconds=vc_session.MAX_WAIT_SECONDS
            )
            while not self._stop.is_set():
                if session.generation != generation:
                    return  # a re-login dropped our collector
                update = session.invoke(
                    collector,
                    'WaitForUpdatesEx',
                    version=version,
                    options=options,
                )
                if self._availability is not None:
                    self._availability.back()
                if update is None:
                    continue
                self._apply(update)
                version = update.version
                if snapshot and not update.truncated:
                    # The last part of the snapshot (a large inventory
                    # comes in several truncated updates).
                    self._states.complete_snapshot()
                    snapshot = False
        finally:
            self._collector = None
            if session.generation == generation and not self._stop.is_set():
                try:
                    session.invoke(collector, 'DestroyPropertyCollector')
                except Exception:  # noqa: BLE001
                    LOG.debug('Could not destroy collector', exc_info=True)

    def _apply(self, update: Any) -> None:
        now = time.time()
        for filter_update in update.filterSet or ():
            for object_update in filter_update.objectSet or ():
                props = {
                    change.name: change.val
                    for change in object_update.changeSet or ()
                    if change.op in ('assign', 'add')
                }
                changed = self._states.apply(
                    object_update.obj, props, object_update.kind
                )
                # A state the cache knew that changed (also while a new
                # watch was being set up); a VM first seen is no event.
                if changed and changed[1] is not None:
                    uuid, old, new = changed
                    LOG.debug('VM of instance %s is now %s', uuid, new)
                    # The transitions both drivers report (common.
                    # lifecycle): suspended to poweredOn is a resume.
                    event = lifecycle.transition(
                        POWER_STATES.get(old), POWER_STATES.get(new)
                    )
                    if event is not None:
                        self._emit(
                            virtevent.LifecycleEvent(
                                uuid, event, timestamp=now
                            )
                        )
