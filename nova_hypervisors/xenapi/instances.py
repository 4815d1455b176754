"""This host's Nova VMs as the event watcher sees them.

The watcher's ``event.from`` stream keeps a table of every Nova VM of the
pool up to date at no extra cost, so the power-state sync (``get_info`` on
every instance) and listings read memory instead of making one XenAPI call
per VM; and changes of this host's VMs become Nova lifecycle events.
"""

from __future__ import annotations

from collections.abc import Callable
import threading

from nova_hypervisors.common import lifecycle
from nova_hypervisors.xenapi import vm_utils


class InstanceTable:
    """{nova uuid: (VM ref, record)} fed by the event watcher."""

    def __init__(
        self,
        host_ref: Callable[[], str | None],
        tracker: lifecycle.PowerStateTracker,
    ) -> None:
        # Read at each use: pool.join gives our host a new record (and ref)
        # in the master's database, and an eject a fresh database
        # (xen-api ocaml/xapi/xapi_pool.ml, join_common, eject).
        self._host_ref = host_ref
        self._tracker = tracker
        self._by_ref: dict[str, dict] = {}
        # nova uuid -> VM ref, so get_info on every instance stays O(1).
        self._ref_of: dict[str, str] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()

    # -- fed by the watcher --------------------------------------------------

    def on_vm_snapshot(self, records: dict[str, dict]) -> None:
        """The whole VM table, when the watcher (re)starts."""
        nova_vms = {
            ref: rec
            for ref, rec in records.items()
            if vm_utils.is_nova_vm(rec)
        }
        with self._lock:
            self._by_ref = nova_vms
            self._ref_of = {
                rec['other_config'][vm_utils.NOVA_UUID]: ref
                for ref, rec in nova_vms.items()
            }
        self._tracker.prime(
            {
                rec['other_config'][
                    vm_utils.NOVA_UUID
                ]: vm_utils.to_power_state(rec)
                for rec in nova_vms.values()
                if vm_utils.belongs_to_host(rec, self._host_ref())
            }
        )
        self.ready.set()

    def on_vm_event(
        self, ref: str, operation: str, record: dict | None
    ) -> None:
        if operation == 'del' or record is None:
            with self._lock:
                old = self._by_ref.pop(ref, None)
                if old is not None:
                    uuid = old['other_config'][vm_utils.NOVA_UUID]
                    if self._ref_of.get(uuid) == ref:
                        del self._ref_of[uuid]
            if old is not None:
                self._tracker.forget(old['other_config'][vm_utils.NOVA_UUID])
            return
        if not vm_utils.is_nova_vm(record):
            return
        instance_uuid = record['other_config'][vm_utils.NOVA_UUID]
        with self._lock:
            self._by_ref[ref] = record
            self._ref_of[instance_uuid] = ref
        # A VM halted elsewhere loses resident_on; it is still ours if we
        # knew it (it was running here before).
        if vm_utils.belongs_to_host(
            record, self._host_ref()
        ) or self._tracker.knows(instance_uuid):
            self._tracker.observe(
                instance_uuid, vm_utils.to_power_state(record)
            )

    # -- read by the driver ---------------------------------------------

    def get(self, instance_uuid: str) -> tuple[str, dict] | None:
        with self._lock:
            ref = self._ref_of.get(instance_uuid)
            if ref is None or ref not in self._by_ref:
                return None
            return ref, self._by_ref[ref]

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_ref)
