"""The messages xapi generates from the datamodel for every class.

``get_record``, ``get_all``, ``get_all_records``, ``get_all_records_where``,
``get_by_uuid``, ``get_by_name_label``, ``get_<field>``, ``set_<field>``,
``add_to_<map>``/``remove_from_<map>``, ``add_<set>``/``remove_<set>``,
``create`` and ``destroy``: one generic implementation each, driven by the
message and field descriptions, used unless a semantic module registered
its own (``VM.create`` must also create the VM's metrics, for instance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi.datamodel import Class
from nova_hypervisors.simulators.xapi.datamodel import Message
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.registry import CallContext

# Explicit messages of some classes (``message``) that have the generated
# shape all the same.
GENERIC_NAMES = frozenset(
    {
        'get_record',
        'get_all',
        'get_all_records',
        'get_all_records_where',
        'get_by_uuid',
        'get_by_name_label',
    }
)


def resolve(cls: Class, msg: Message) -> Callable[..., Any] | None:
    """The generic implementation of ``msg``, or None if it has none."""
    name = msg.name
    fixed = {
        'get_record': get_record,
        'get_all': get_all,
        'get_all_records': get_all_records,
        'get_all_records_where': get_all_records_where,
        'get_by_uuid': get_by_uuid,
        'get_by_name_label': get_by_name_label,
        'create': create,
        'destroy': destroy,
    }
    if name in fixed:
        return fixed[name]
    for prefix, make in (
        ('get_', _getter),
        ('set_', _setter),
        ('add_to_', _map_adder),
        ('remove_from_', _map_remover),
        ('add_', _set_adder),
        ('remove_', _set_remover),
    ):
        if name.startswith(prefix):
            field = cls.fields.get(name[len(prefix) :])
            if field is not None and _shape_fits(prefix, field, msg):
                return make(field.name)
    return None


def _shape_fits(prefix: str, field, msg: Message) -> bool:
    kinds = {
        'get_': (None, 1),
        'set_': (None, 2),
        'add_to_': ('map', 3),
        'remove_from_': ('map', 2),
        'add_': ('set', 2),
        'remove_': ('set', 2),
    }
    kind, count = kinds[prefix]
    if kind is not None and field.type.kind != kind:
        return False
    return len(msg.params) == count


# Results are returned in store form; the dispatcher marshals them with
# the message's result type, so a record is converted exactly once.


def get_record(ctx: CallContext, ref: str) -> dict:
    return ctx.store.get(_cls(ctx), ref)


def get_all(ctx: CallContext) -> list[str]:
    return ctx.store.refs(_cls(ctx))


def get_all_records(ctx: CallContext) -> dict[str, dict]:
    return dict(ctx.store.records(_cls(ctx)))


def get_all_records_where(ctx: CallContext, expr: str) -> dict[str, dict]:
    cls = _cls(ctx)
    records = ctx.store.records(cls)
    return {ref: records[ref] for ref in ctx.store.query(cls, expr)}


def get_by_uuid(ctx: CallContext, uuid: str) -> str:
    return ctx.store.by_uuid(_cls(ctx), uuid)


def get_by_name_label(ctx: CallContext, label: str) -> list[str]:
    return ctx.store.find(_cls(ctx), name_label=label)


def create(ctx: CallContext, record: dict) -> str:
    cls = _cls(ctx)
    return ctx.store.create(cls, constructor_values(ctx, cls, record))


def destroy(ctx: CallContext, ref: str) -> None:
    ctx.store.destroy(_cls(ctx), ref)


def constructor_values(
    ctx: CallContext, cls: str, record: dict
) -> dict[str, Any]:
    """Check a ``create`` struct the way xapi's generated server does.

    Every constructor field (RW or RO/constructor) without a default must
    be present; xapi then fails with its internal ``Dispatcher_FieldNotFound``
    exception.  Keys that are not constructor fields are ignored.
    """
    spec = ctx.store.model.classes[cls]
    values = {}
    for field in spec.fields.values():
        if not field.in_constructor:
            continue
        if field.name in record:
            values[field.name] = codec.unmarshal(
                field.type, record[field.name], field.name
            )
        elif not field.has_default:
            raise XapiFailure(
                'INTERNAL_ERROR',
                'Server_helpers.Dispatcher_FieldNotFound("%s")' % field.name,
            )
    return values


def _cls(ctx: CallContext) -> str:
    return ctx.method.partition('.')[0]


def _getter(name: str):
    def get(ctx: CallContext, ref: str) -> Any:
        return ctx.store.get(_cls(ctx), ref)[name]

    return get


def _setter(name: str):
    def set_(ctx: CallContext, ref: str, value: Any) -> None:
        ctx.store.set(_cls(ctx), ref, name, value)

    return set_


def _map_adder(name: str):
    def add_to(ctx: CallContext, ref: str, key: Any, value: Any) -> None:
        ctx.store.add_to_map(_cls(ctx), ref, name, key, value)

    return add_to


def _map_remover(name: str):
    def remove_from(ctx: CallContext, ref: str, key: Any) -> None:
        ctx.store.remove_from_map(_cls(ctx), ref, name, key)

    return remove_from


def _set_adder(name: str):
    def add(ctx: CallContext, ref: str, value: Any) -> None:
        cls = _cls(ctx)
        items = ctx.store.get(cls, ref)[name]
        if value not in items:
            ctx.store.set(cls, ref, name, items + [value])

    return add


def _set_remover(name: str):
    def remove(ctx: CallContext, ref: str, value: Any) -> None:
        cls = _cls(ctx)
        items = ctx.store.get(cls, ref)[name]
        if value in items:
            ctx.store.set(cls, ref, name, [i for i in items if i != value])

    return remove
