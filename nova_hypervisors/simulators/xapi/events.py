"""``event.from``: block until something changed, then report it.

Subscriptions are lower-case class names (``vm``), ``*`` for every class,
or ``class/ref`` for one object (``task/OpaqueRef:...``, which is how a
client waits for one task).  The empty token means "everything that exists
now", reported as ``add`` events; later tokens report each object changed
since, once, with its current record (``del`` events carry no snapshot).
The token is xapi's ``"%020d,%020d"`` of the database generation.
"""

from __future__ import annotations

import time

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message
from nova_hypervisors.simulators.xapi.store import SILENT_CLASSES


def make_token(generation: int) -> str:
    return '%020d,%020d' % (generation, 0)


def parse_token(token: str) -> int:
    if token == '':
        return -1
    head = token.split(',', 1)[0]
    if not head.isdigit():
        raise XapiFailure('EVENT_FROM_TOKEN_PARSE_FAILURE', token)
    return int(head)


def parse_subscription(ctx: CallContext, classes: list[str]):
    """-> (class names or None for all, {class: {refs}} object filters)."""
    by_event_name = ctx.store.model.by_event_name
    names: set[str] = set()
    objects: dict[str, set[str]] = {}
    everything = False
    for entry in classes:
        if entry == '*':
            everything = True
            continue
        cls_name, _, ref = entry.partition('/')
        cls = by_event_name.get(cls_name.lower())
        if cls is None:
            continue  # xapi ignores classes it does not know
        if ref:
            objects.setdefault(cls.name, set()).add(ref)
        else:
            names.add(cls.name)
    if everything:
        return None, {}
    return names, objects


@message('event.from')
def event_from(
    ctx: CallContext, classes: list[str], token: str, timeout: float
) -> dict:
    store = ctx.store
    since = parse_token(token)
    # xen-api ocaml/xapi/xapi_event.ml (from) never raises EVENTS_LOST
    # (event.next does): it compares each object's generation with the
    # token, so a token older than the kept history gets every object.
    if 0 <= since < store.lost_before:
        since = -1
    names, objects = parse_subscription(ctx, classes)
    watched = None if names is None else names | set(objects)
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        if since < 0:
            changes = store.all_as_added(watched)
        else:
            changes = store.changes_since(since, watched)
        if objects:
            changes = [
                c
                for c in changes
                if c.cls in (names or ()) or c.ref in objects.get(c.cls, ())
            ]
        remaining = deadline - time.monotonic()
        if changes or since < 0 or remaining <= 0:
            break
        store.changed.wait(remaining)
    return {
        'events': [_event(ctx, change) for change in changes],
        'valid_ref_counts': _counts(ctx, watched),
        'token': make_token(store.generation),
    }


def _event(ctx: CallContext, change) -> dict:
    event = {
        'id': str(change.generation),
        'timestamp': '%.6f' % change.timestamp,
        'class': ctx.store.model.classes[change.cls].event_name,
        'operation': change.operation,
        'ref': change.ref,
    }
    if change.operation != 'del':
        record = ctx.store.tables[change.cls][change.ref]
        convert = codec.record_converter(change.cls, ctx.protocol)
        event['snapshot'] = convert(record)
    return event


def _counts(ctx: CallContext, watched) -> dict[str, int]:
    model = ctx.store.model
    names = model.classes if watched is None else watched
    return {
        model.classes[name].event_name: len(ctx.store.tables[name])
        for name in names
        if name not in SILENT_CLASSES
    }


@message('event.get_current_id')
def get_current_id(ctx: CallContext) -> int:
    return ctx.store.generation


@message('event.inject')
def inject(ctx: CallContext, cls_name: str, ref: str) -> str:
    cls = ctx.store.model.by_event_name.get(cls_name.lower())
    if cls is None:
        raise XapiFailure('EVENT_SUBSCRIPTION_PARSE_FAILURE', cls_name)
    ctx.store.touch(cls.name, ref)
    return make_token(ctx.store.generation)


# -- the older event.register / event.next API ------------------------------
#
# A session registers classes, then each event.next blocks until one of
# them changed and returns those changes (as a list of event records).


def _subscriptions(ctx: CallContext) -> dict:
    """session -> (registered class names or None for all, generation)."""
    return ctx.store.event_subscriptions


@message('event.register')
def register(ctx: CallContext, classes: list[str]) -> None:
    subscriptions = _subscriptions(ctx)
    names, _objects = parse_subscription(ctx, classes)
    known, since = subscriptions.get(ctx.session, (set(), None))
    if since is None:
        since = ctx.store.generation
    if names is None or known is None:
        subscriptions[ctx.session] = (None, since)
    else:
        subscriptions[ctx.session] = (known | names, since)


@message('event.unregister')
def unregister(ctx: CallContext, classes: list[str]) -> None:
    subscriptions = _subscriptions(ctx)
    if ctx.session not in subscriptions:
        return
    known, since = subscriptions[ctx.session]
    names, _objects = parse_subscription(ctx, classes)
    if names is None or known is None:
        known = set()
    else:
        known = known - names
    subscriptions[ctx.session] = (known, since)


@message('event.next')
def next_events(ctx: CallContext) -> list[dict]:
    store = ctx.store
    subscriptions = _subscriptions(ctx)
    if ctx.session not in subscriptions:
        raise XapiFailure('SESSION_NOT_REGISTERED', ctx.session)
    while True:
        if ctx.session not in store.tables['session']:
            raise XapiFailure('SESSION_INVALID', ctx.session)
        known, since = subscriptions.get(ctx.session, (set(), 0))
        changes = store.changes_since(since, known)
        if changes:
            subscriptions[ctx.session] = (known, store.generation)
            return [_event(ctx, change) for change in changes]
        store.changed.wait(1.0)
