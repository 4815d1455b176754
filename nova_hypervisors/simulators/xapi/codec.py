"""Values between the wire and the object store, typed by the datamodel.

Inside the store values are plain Python: ``int`` for ``int``, ``str`` in
xapi's ``20240102T03:04:05Z`` form for ``datetime``, lists for sets and
dicts for maps.  On the wire xapi's conventions apply:

* XML-RPC: 64-bit ints as decimal strings, datetimes as
  ``dateTime.iso8601``, strings without a ``<string>`` tag, ``void`` as
  ``""``.
* JSON-RPC: ints as JSON numbers, datetimes as strings.

Converters are compiled once per type, so the hot path of
``get_all_records`` only touches the few fields that need changing.
"""

from __future__ import annotations

from collections.abc import Callable
import datetime as dt
import functools
import re
import time
from typing import Any
import xmlrpc.client

from nova_hypervisors.simulators.xapi.datamodel import XType
from nova_hypervisors.simulators.xapi.datamodel import load
from nova_hypervisors.simulators.xapi.errors import XapiFailure

XMLRPC = 'xmlrpc'
JSONRPC = 'jsonrpc'

_DATETIME_RE = re.compile(r'^\d{8}T\d{2}:\d{2}:\d{2}Z?$')
_DATETIME_DASHED_RE = re.compile(
    r'^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})'
)


def now() -> str:
    """The current time as xapi stores datetimes."""
    return time.strftime('%Y%m%dT%H:%M:%SZ', time.gmtime())


def datetime_value(value: Any) -> str | None:
    """Normalise an incoming datetime, or None if it is not one."""
    if isinstance(value, xmlrpc.client.DateTime):
        value = value.value
    if isinstance(value, dt.datetime):
        return value.strftime('%Y%m%dT%H:%M:%SZ')
    if not isinstance(value, str):
        return None
    if _DATETIME_RE.match(value):
        return value if value.endswith('Z') else value + 'Z'
    match = _DATETIME_DASHED_RE.match(value)
    if match:
        y, mo, d, h, mi, s = match.groups()
        return '%s%s%sT%s:%s:%sZ' % (y, mo, d, h, mi, s)
    return None


# -- incoming values ---------------------------------------------------------


def unmarshal(xtype: XType, value: Any, name: str) -> Any:
    """Check an incoming parameter and convert it to its store form.

    Wrong types give ``FIELD_TYPE_ERROR [name]``; an enum value that is not
    in the datamodel gives ``INVALID_VALUE [name, value]``.  Enum values are
    matched without regard to case, as xapi's unmarshallers do.
    """
    kind = xtype.kind
    if kind in ('string', 'ref'):
        if isinstance(value, str):
            return value
        raise XapiFailure('FIELD_TYPE_ERROR', name)
    if kind == 'int':
        if isinstance(value, bool):
            raise XapiFailure('FIELD_TYPE_ERROR', name)
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise XapiFailure('FIELD_TYPE_ERROR', name)
    if kind == 'float':
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise XapiFailure('FIELD_TYPE_ERROR', name)
    if kind == 'bool':
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ('true', 'false'):
            return value.lower() == 'true'
        raise XapiFailure('FIELD_TYPE_ERROR', name)
    if kind == 'datetime':
        text = datetime_value(value)
        if text is None:
            raise XapiFailure('FIELD_TYPE_ERROR', name)
        return text
    if kind == 'enum':
        if not isinstance(value, str):
            raise XapiFailure('FIELD_TYPE_ERROR', name)
        canonical = _enum_lookup(xtype)(value.lower())
        if canonical is None:
            raise XapiFailure('INVALID_VALUE', name, value)
        return canonical
    if kind == 'set':
        if not isinstance(value, (list, tuple)):
            raise XapiFailure('FIELD_TYPE_ERROR', name)
        return [unmarshal(xtype.elem, item, name) for item in value]
    if kind == 'map':
        if not isinstance(value, dict):
            raise XapiFailure('FIELD_TYPE_ERROR', name)
        return {
            unmarshal(xtype.key, key, name): unmarshal(xtype.elem, item, name)
            for key, item in value.items()
        }
    if kind == 'option':
        return (
            None if value in (None, '') else unmarshal(xtype.elem, value, name)
        )
    if kind == 'record':
        if not isinstance(value, dict):
            raise XapiFailure('FIELD_TYPE_ERROR', name)
        return value
    raise XapiFailure('FIELD_TYPE_ERROR', name)


@functools.cache
def _enum_lookup(xtype: XType) -> Callable[[str], str | None]:
    table = {v.lower(): v for v in xtype.values}
    return table.get


# -- outgoing values ---------------------------------------------------------


Converter = Callable[[Any], Any] | None


@functools.cache
def converter(xtype: XType, protocol: str) -> Converter:
    """A function turning a store value into its wire form, or None.

    None means the value goes on the wire as it is, which is the case for
    most fields (strings, refs, bools, string maps).
    """
    kind = xtype.kind
    if kind == 'int':
        return str if protocol == XMLRPC else None
    if kind == 'datetime':
        return xmlrpc.client.DateTime if protocol == XMLRPC else None
    if kind == 'void':
        return _void
    if kind == 'set':
        inner = converter(xtype.elem, protocol)
        if inner is None:
            return None
        return lambda items: [inner(i) for i in items]
    if kind == 'option':
        inner = converter(xtype.elem, protocol)
        if inner is None:
            return None
        return lambda item: None if item is None else inner(item)
    if kind == 'map':
        key = str if xtype.key.kind == 'int' else None
        inner = converter(xtype.elem, protocol)
        if key is None and inner is None:
            return None
        key = key or _same
        inner = inner or _same
        return lambda items: {key(k): inner(v) for k, v in items.items()}
    if kind == 'record':
        return record_converter(xtype.name, protocol)
    return None


def _void(_value: Any) -> str:
    return ''


def _same(value: Any) -> Any:
    return value


@functools.cache
def record_converter(cls: str, protocol: str) -> Callable[[dict], dict]:
    """Copy a stored record into its wire form."""
    fields = load().classes[cls].fields.values()
    changes = tuple(
        (f.name, conv)
        for f in fields
        if (conv := converter(f.type, protocol)) is not None
    )

    def convert(record: dict) -> dict:
        out = dict(record)
        for name, conv in changes:
            out[name] = conv(out[name])
        return out

    return convert


def marshal(xtype: XType, value: Any, protocol: str) -> Any:
    """Store value -> wire value."""
    conv = converter(xtype, protocol)
    return value if conv is None else conv(value)


# -- XML-RPC text ------------------------------------------------------------


def xmlrpc_value(value: Any) -> str:
    """One XML-RPC ``<value>`` in xapi's style (untyped strings).

    Used for responses and for ``task.result``, which xapi fills with the
    XML-RPC encoding of the result that callers parse themselves.
    """
    out: list[str] = []
    _write_value(value, out.append)
    return ''.join(out)


_ESCAPES = str.maketrans({'&': '&amp;', '<': '&lt;', '>': '&gt;'})


def _text(value: str) -> str:
    if '&' in value or '<' in value or '>' in value:
        return value.translate(_ESCAPES)
    return value


def _write_value(value: Any, write: Callable[[str], Any]) -> None:
    # The hot path of every response: most values are strings, then
    # structs; checks are ordered by frequency and strings go out in one
    # piece.
    kind = type(value)
    if kind is str:
        write('<value>' + _text(value) + '</value>')
    elif kind is dict:
        write('<value><struct>')
        for key, item in value.items():
            write('<member><name>' + _text(str(key)) + '</name>')
            if type(item) is str:
                write('<value>' + _text(item) + '</value>')
            else:
                _write_value(item, write)
            write('</member>')
        write('</struct></value>')
    elif kind is list or kind is tuple:
        write('<value><array><data>')
        for item in value:
            if type(item) is str:
                write('<value>' + _text(item) + '</value>')
            else:
                _write_value(item, write)
        write('</data></array></value>')
    elif kind is bool:
        write(
            '<value><boolean>1</boolean></value>'
            if value
            else ('<value><boolean>0</boolean></value>')
        )
    elif kind is int:
        write('<value><i4>%d</i4></value>' % value)
    elif kind is float:
        write('<value><double>%r</double></value>' % value)
    elif kind is xmlrpc.client.DateTime:
        write('<value><dateTime.iso8601>' + value.value)
        write('</dateTime.iso8601></value>')
    elif value is None:
        write('<value><nil/></value>')
    elif isinstance(value, str):
        _write_value(str(value), write)
    else:
        raise TypeError('cannot send %r over XML-RPC' % (value,))


def xmlrpc_response(struct: dict) -> bytes:
    """A whole ``methodResponse`` document for the envelope ``struct``."""
    out: list[str] = ["<?xml version='1.0'?>\n<methodResponse><params><param>"]
    _write_value(struct, out.append)
    out.append('</param></params></methodResponse>\n')
    return ''.join(out).encode('utf-8')


# -- the database's string form, for the query language ---------------------


@functools.cache
def db_string(xtype: XType) -> Callable[[Any], str]:
    """How xapi's database spells a value, which queries compare against."""
    kind = xtype.kind
    if kind == 'bool':
        return lambda v: 'true' if v else 'false'
    if kind in ('int',):
        return str
    if kind == 'float':
        return lambda v: '%0.16g' % v
    if kind == 'set':
        item = db_string(xtype.elem)
        return lambda items: (
            '(' + ' '.join(_sexpr(item(i)) for i in items) + ')'
        )
    if kind == 'map':
        key = db_string(xtype.key)
        val = db_string(xtype.elem)
        return lambda items: (
            '('
            + ' '.join(
                '(%s %s)' % (_sexpr(key(k)), _sexpr(val(v)))
                for k, v in items.items()
            )
            + ')'
        )
    return _same


def _sexpr(text: str) -> str:
    return "'%s'" % text.replace('\\', '\\\\').replace("'", "\\'")
