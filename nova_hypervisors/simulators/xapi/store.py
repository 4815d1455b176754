"""One pool's database: objects, back-references and the event log.

Like xapi's in-memory database, every change bumps one generation counter;
``event.from`` asks for everything whose generation is newer than its token.
Set fields that mirror a reference on the other side (``VM.VBDs`` for
``VBD.VM``) are kept here, so no handler can forget one.

Values are copy-on-write: a list or dict inside a record is replaced, never
changed in place, so a record copied under the lock stays consistent while
it is marshalled outside it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from collections.abc import Iterable
import threading
import time
from typing import Any
import uuid as uuidlib

from nova_hypervisors.simulators.xapi import query
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.datamodel import Datamodel
from nova_hypervisors.simulators.xapi.errors import XapiFailure

# Classes whose changes xapi does not publish as events (session refs are
# secrets; event is not a table).
SILENT_CLASSES = frozenset({'session', 'event'})
TOMBSTONES = 200_000


def new_ref() -> str:
    return 'OpaqueRef:%s' % uuidlib.uuid4()


def new_uuid() -> str:
    return str(uuidlib.uuid4())


class Change:
    """One object changed since a token, as ``event.from`` reports it."""

    __slots__ = ('generation', 'cls', 'ref', 'operation', 'timestamp')

    def __init__(self, generation, cls, ref, operation, timestamp):
        self.generation = generation
        self.cls = cls
        self.ref = ref
        self.operation = operation
        self.timestamp = timestamp


class ObjectStore:
    """Tables of records keyed by opaque reference, with one lock."""

    def __init__(self, model: Datamodel) -> None:
        self.model = model
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.tables: dict[str, dict[str, dict[str, Any]]] = {
            name: {} for name in model.classes
        }
        self._uuids: dict[str, dict[str, str]] = {
            name: {} for name in model.classes
        }
        self.generation = 0
        # class -> ref -> (generation, time) of the last change, oldest first
        self._modified: dict[str, collections.OrderedDict] = {
            name: collections.OrderedDict() for name in model.classes
        }
        self._created: dict[str, dict[str, int]] = {
            name: {} for name in model.classes
        }
        self._deleted: collections.deque = collections.deque()
        self.lost_before = 0  # tokens older than this missed deletions
        # event.register/event.next state, per session (see events.py)
        self.event_subscriptions: dict[str, tuple] = {}

    # -- reading ---------------------------------------------------------

    def exists(self, cls: str, ref: str) -> bool:
        return ref in self.tables[cls]

    def get(self, cls: str, ref: str) -> dict[str, Any]:
        """The live record; raises ``HANDLE_INVALID [cls, ref]``."""
        try:
            return self.tables[cls][ref]
        except KeyError:
            raise XapiFailure('HANDLE_INVALID', cls, ref) from None

    def records(self, cls: str) -> dict[str, dict[str, Any]]:
        return self.tables[cls]

    def refs(self, cls: str) -> list[str]:
        return list(self.tables[cls])

    def by_uuid(self, cls: str, uuid: str) -> str:
        try:
            return self._uuids[cls][uuid]
        except KeyError:
            raise XapiFailure('UUID_INVALID', cls, uuid) from None

    def find_uuid(self, cls: str, uuid: str) -> str | None:
        return self._uuids[cls].get(uuid)

    def where(self, cls: str, predicate: Callable[[dict], bool]) -> list[str]:
        return [r for r, rec in self.tables[cls].items() if predicate(rec)]

    def find(self, cls: str, **equals: Any) -> list[str]:
        """Refs whose fields equal the given values (test convenience)."""
        items = tuple(equals.items())
        return self.where(cls, lambda rec: all(rec[k] == v for k, v in items))

    def query(self, cls: str, expr: str) -> list[str]:
        predicate = query.compile_filter(self.model.classes[cls], expr)
        return self.where(cls, predicate)

    # -- writing ---------------------------------------------------------

    def create(
        self, cls: str, values: dict[str, Any], ref: str | None = None
    ) -> str:
        """Add an object; unknown field names are a programming error."""
        record = self.model.new_record(cls)
        fields = self.model.classes[cls].fields
        for name, value in values.items():
            if name not in fields:
                raise KeyError('%s has no field %s' % (cls, name))
            record[name] = value
        for set_field in self.model.backref_sets.get(cls, ()):
            record[set_field] = []
        if 'uuid' in fields and not record['uuid']:
            record['uuid'] = new_uuid()
        ref = ref or new_ref()
        self.tables[cls][ref] = record
        if 'uuid' in fields:
            self._uuids[cls][record['uuid']] = ref
        generation = self._touch(cls, ref)
        self._created[cls][ref] = generation
        for field, parent_cls, set_field in self.model.links_of.get(cls, ()):
            self._link(parent_cls, record[field], set_field, ref)
        return ref

    def destroy(self, cls: str, ref: str) -> None:
        record = self.get(cls, ref)
        for field, parent_cls, set_field in self.model.links_of.get(cls, ()):
            self._unlink(parent_cls, record[field], set_field, ref)
        del self.tables[cls][ref]
        if 'uuid' in record:
            self._uuids[cls].pop(record['uuid'], None)
        self._modified[cls].pop(ref, None)
        self._created[cls].pop(ref, None)
        self.generation += 1
        if cls not in SILENT_CLASSES:
            self._deleted.append((self.generation, cls, ref, time.time()))
            if len(self._deleted) > TOMBSTONES:
                self.lost_before = self._deleted.popleft()[0]
        self.changed.notify_all()

    def set(self, cls: str, ref: str, name: str, value: Any) -> None:
        self.update(cls, ref, **{name: value})

    def update(self, cls: str, ref: str, **values: Any) -> None:
        """Set several fields at once: one generation, one event."""
        record = self.get(cls, ref)
        links = self.model.child_links
        for name, value in values.items():
            if name not in record:
                raise KeyError('%s has no field %s' % (cls, name))
            link = links.get((cls, name))
            if link is not None and record[name] != value:
                self._unlink(link[0], record[name], link[1], ref)
                self._link(link[0], value, link[1], ref)
            record[name] = value
        self._touch(cls, ref)

    def add_to_map(
        self, cls: str, ref: str, name: str, key: Any, value: Any
    ) -> None:
        record = self.get(cls, ref)
        if key in record[name]:
            raise XapiFailure('MAP_DUPLICATE_KEY', cls, name, ref, key)
        self.update(cls, ref, **{name: {**record[name], key: value}})

    def remove_from_map(self, cls: str, ref: str, name: str, key: Any) -> None:
        record = self.get(cls, ref)
        if key in record[name]:
            items = dict(record[name])
            del items[key]
            self.update(cls, ref, **{name: items})

    def touch(self, cls: str, ref: str) -> None:
        """Publish an event for ``ref`` without changing a field."""
        self.get(cls, ref)
        self._touch(cls, ref)

    def _touch(self, cls: str, ref: str) -> int:
        self.generation += 1
        if cls not in SILENT_CLASSES:
            modified = self._modified[cls]
            modified[ref] = (self.generation, time.time())
            modified.move_to_end(ref)
        self.changed.notify_all()
        return self.generation

    def _link(self, parent_cls: str, parent: str, set_field: str, ref: str):
        record = self.tables[parent_cls].get(parent)
        if record is not None and ref not in record[set_field]:
            record[set_field] = record[set_field] + [ref]
            self._touch(parent_cls, parent)

    def _unlink(self, parent_cls: str, parent: str, set_field: str, ref: str):
        if parent == NULL_REF:
            return
        record = self.tables[parent_cls].get(parent)
        if record is not None and ref in record[set_field]:
            record[set_field] = [r for r in record[set_field] if r != ref]
            self._touch(parent_cls, parent)

    def rebuild_backrefs(self) -> None:
        """Recompute every mirrored set (after a bulk import of objects)."""
        for cls, sets in self.model.backref_sets.items():
            for record in self.tables[cls].values():
                for set_field in sets:
                    record[set_field] = []
        for child, field, parent_cls, set_field in self.model.relations:
            parents = self.tables[parent_cls]
            for ref, record in self.tables[child].items():
                parent = parents.get(record[field])
                if parent is not None:
                    parent[set_field] = parent[set_field] + [ref]

    # -- events ----------------------------------------------------------

    def changes_since(
        self, since: int, classes: Iterable[str] | None
    ) -> list[Change]:
        """Objects changed after generation ``since``, oldest first.

        ``classes`` are datamodel class names (None: all).  Like xapi, one
        object changed several times is reported once, with its latest
        state; deletions are reported as such.
        """
        names = self.model.classes if classes is None else classes
        changes = []
        for cls in names:
            if cls in SILENT_CLASSES:
                continue
            created = self._created[cls]
            for ref, (generation, stamp) in reversed(
                self._modified[cls].items()
            ):
                if generation <= since:
                    break
                operation = 'add' if created.get(ref, 0) > since else 'mod'
                changes.append(Change(generation, cls, ref, operation, stamp))
        wanted = None if classes is None else set(names)
        for generation, cls, ref, stamp in reversed(self._deleted):
            if generation <= since:
                break
            if wanted is None or cls in wanted:
                changes.append(Change(generation, cls, ref, 'del', stamp))
        changes.sort(key=lambda change: change.generation)
        return changes

    def all_as_added(self, classes: Iterable[str] | None) -> list[Change]:
        """Every current object, as ``event.from`` with an empty token."""
        names = self.model.classes if classes is None else classes
        changes = []
        for cls in names:
            if cls in SILENT_CLASSES:
                continue
            for ref, (generation, stamp) in self._modified[cls].items():
                changes.append(Change(generation, cls, ref, 'add', stamp))
        changes.sort(key=lambda change: change.generation)
        return changes
