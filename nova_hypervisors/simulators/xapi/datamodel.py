"""The XenAPI datamodel, loaded from the JSON xapi publishes.

Everything the simulator knows about classes, fields, messages, enums and
error arities comes from ``data/datamodel.json`` and ``data/errors.json``:
nothing here lists fields or getters by hand.  Three small tables do remain,
because the published JSON dropped the information while xapi's own IDL
(``ocaml/idl/datamodel*.ml``) has it:

* ``RELATIONS``: which reference field is mirrored by which set field on
  the other side (``VBD.VM`` <-> ``VM.VBDs``), xapi's ``all_relations``;
* ``PARAM_DEFAULTS``: trailing parameters that xapi lets a client omit
  (``login_with_password(user, password)`` is valid on the wire);
* ``NAMESPACES``: the database column of a field is its namespaced name
  (``name__label``), which is what the query language of
  ``get_all_records_where`` addresses.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import re
from typing import Any

NULL_REF = 'OpaqueRef:NULL'
EPOCH = '19700101T00:00:00Z'

# (child class, child field, parent class, parent set field)
RELATIONS = (
    ('VBD', 'VM', 'VM', 'VBDs'),
    ('VBD', 'VDI', 'VDI', 'VBDs'),
    ('VIF', 'VM', 'VM', 'VIFs'),
    ('VIF', 'network', 'network', 'VIFs'),
    ('PIF', 'host', 'host', 'PIFs'),
    ('PIF', 'network', 'network', 'PIFs'),
    ('VDI', 'SR', 'SR', 'VDIs'),
    ('VM', 'resident_on', 'host', 'resident_VMs'),
    ('PBD', 'host', 'host', 'PBDs'),
    ('PBD', 'SR', 'SR', 'PBDs'),
    ('host_cpu', 'host', 'host', 'host_CPUs'),
    ('crashdump', 'VM', 'VM', 'crash_dumps'),
    ('crashdump', 'VDI', 'VDI', 'crash_dumps'),
    ('console', 'VM', 'VM', 'consoles'),
    ('VM', 'snapshot_of', 'VM', 'snapshots'),
    ('VDI', 'snapshot_of', 'VDI', 'snapshots'),
    ('VM', 'parent', 'VM', 'children'),
    ('task', 'subtask_of', 'task', 'subtasks'),
    ('VTPM', 'VM', 'VM', 'VTPMs'),
    ('VUSB', 'VM', 'VM', 'VUSBs'),
    ('VGPU', 'VM', 'VM', 'VGPUs'),
    ('host_crashdump', 'host', 'host', 'crashdumps'),
    ('host_patch', 'host', 'host', 'patches'),
    ('VM', 'appliance', 'VM_appliance', 'VMs'),
    ('VM', 'protection_policy', 'VMPP', 'VMs'),
    ('VM', 'snapshot_schedule', 'VMSS', 'VMs'),
    ('PGPU', 'host', 'host', 'PGPUs'),
    ('PCI', 'host', 'host', 'PCIs'),
    ('PUSB', 'host', 'host', 'PUSBs'),
    ('Bond', 'master', 'PIF', 'bond_master_of'),
    ('PIF', 'bond_slave_of', 'Bond', 'slaves'),
    ('VLAN', 'tagged_PIF', 'PIF', 'VLAN_slave_of'),
    ('VGPU', 'GPU_group', 'GPU_group', 'VGPUs'),
    ('PGPU', 'GPU_group', 'GPU_group', 'PGPUs'),
    ('Cluster_host', 'cluster', 'Cluster', 'cluster_hosts'),
    ('Certificate', 'host', 'host', 'certificates'),
)

# Trailing parameters with a default in xapi's IDL, per (class, message).
PARAM_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ('session', 'login_with_password'): {'version': '1.1', 'originator': ''},
    ('VM', 'snapshot'): {'ignore_vdis': []},
    ('VM', 'migrate_send'): {'vgpu_map': {}},
    ('VM', 'assert_can_migrate'): {'vgpu_map': {}},
    ('host', 'evacuate'): {'network': NULL_REF, 'evacuate_batch_size': 0},
    ('VDI', 'copy'): {'base_vdi': NULL_REF, 'into_vdi': NULL_REF},
    ('VDI', 'snapshot'): {'driver_params': {}},
    ('VDI', 'clone'): {'driver_params': {}},
    ('SR', 'create'): {'sm_config': {}},
    ('SR', 'introduce'): {'sm_config': {}},
    ('VDI', 'introduce'): {
        'xenstore_data': {},
        'sm_config': {},
        'managed': True,
        'virtual_size': 0,
        'physical_utilisation': 0,
        'metadata_of_pool': NULL_REF,
        'is_a_snapshot': False,
        'snapshot_time': EPOCH,
        'snapshot_of': NULL_REF,
    },
}

# Field-name prefixes that are xapi namespaces, and the classes having them.
NAMESPACES = {
    'name': None,  # every class
    'memory': {'VM', 'host', 'host_metrics', 'VM_metrics'},
    'VCPUs': {'VM', 'VM_metrics'},
    'actions': {'VM'},
    'PV': {'VM'},
    'HVM': {'VM'},
    'API_version': {'host'},
    'io': {'VIF_metrics', 'VBD_metrics', 'PIF_metrics'},
}

# Messages xapi generates for every class with get_all_records but which
# the published datamodel hides from the documentation.
HIDDEN_IMPLICIT = ('get_all_records_where',)


@dataclasses.dataclass(frozen=True)
class XType:
    """A XenAPI type: how a value is checked and put on the wire."""

    kind: str  # string int float bool datetime void ref enum set map
    #           record option event_batch any_record
    name: str = ''  # class of ref/record, name of enum
    elem: XType | None = None  # set/option element, map value
    key: XType | None = None  # map key
    values: tuple[str, ...] = ()  # enum values

    def __str__(self) -> str:
        if self.kind in ('ref', 'record'):
            return '%s %s' % (self.name, self.kind)
        if self.kind == 'enum':
            return 'enum %s' % self.name
        if self.kind in ('set', 'option'):
            return '%s %s' % (self.elem, self.kind)
        if self.kind == 'map':
            return '(%s -> %s) map' % (self.key, self.elem)
        return self.kind


@dataclasses.dataclass
class Field:
    """One field of a class, with its database column and default."""

    name: str
    type: XType
    qualifier: str  # RW, RO/constructor, RO/runtime
    default: Any
    has_default: bool
    column: str

    @property
    def in_constructor(self) -> bool:
        """Fields a ``create`` record carries (xapi: RW and StaticRO)."""
        return self.qualifier != 'RO/runtime'


@dataclasses.dataclass
class Param:
    name: str
    type: XType


@dataclasses.dataclass
class Message:
    """One message; ``params`` excludes the leading session."""

    cls: str
    name: str
    params: list[Param]
    result: XType
    implicit: bool
    errors: list[str]
    takes_session: bool
    defaults: dict[str, Any]

    @property
    def wire_name(self) -> str:
        return '%s.%s' % (self.cls, self.name)

    @property
    def mandatory(self) -> int:
        return len(self.params) - len(self.defaults)


@dataclasses.dataclass
class Class:
    name: str
    fields: dict[str, Field]
    messages: dict[str, Message]
    columns: dict[str, str]  # db column -> field name

    @property
    def event_name(self) -> str:
        return self.name.lower()


class Datamodel:
    """All classes, enums and errors, with type parsing."""

    def __init__(self, classes_json: list[dict], errors_json: dict) -> None:
        self.enums: dict[str, tuple[str, ...]] = {}
        for cls in classes_json:
            for enum in cls.get('enums', []):
                self.enums[enum['name']] = tuple(enum['values'])
        self.class_names = {cls['name'] for cls in classes_json}
        self.errors = {
            code: tuple(spec['params']) for code, spec in errors_json.items()
        }
        self.classes: dict[str, Class] = {}
        for cls in classes_json:
            self.classes[cls['name']] = self._load_class(cls)
        self.relations = self._check_relations()
        # child (class, field) -> (parent class, parent set field)
        self.child_links: dict[tuple[str, str], tuple[str, str]] = {
            (c, f): (p, s) for c, f, p, s in self.relations
        }
        # class -> list of (child field, parent class, parent set field)
        self.links_of: dict[str, list[tuple[str, str, str]]] = {}
        for c, f, p, s in self.relations:
            self.links_of.setdefault(c, []).append((f, p, s))
        # parent class -> set fields maintained as back-references
        self.backref_sets: dict[str, set[str]] = {}
        for _c, _f, p, s in self.relations:
            self.backref_sets.setdefault(p, set()).add(s)
        self.by_event_name = {c.event_name: c for c in self.classes.values()}

    # -- types -----------------------------------------------------------

    @functools.cache  # noqa: B019 (lives for the process)
    def parse_type(self, text: str) -> XType:
        """Parse a datamodel type string such as ``(VM ref -> int) map``."""
        text = text.strip()
        simple = ('string', 'int', 'float', 'bool', 'datetime', 'void')
        if text in simple:
            return XType(text)
        if text == 'an event batch':
            return XType('event_batch')
        if text == '<class> record':
            return XType('any_record')
        match = re.fullmatch(r'\((.+?) -> (.+)\) map', text)
        if match:
            return XType(
                'map',
                key=self.parse_type(match.group(1)),
                elem=self.parse_type(match.group(2)),
            )
        for suffix in ('set', 'option'):
            if text.endswith(' ' + suffix):
                inner = self.parse_type(text[: -len(suffix) - 1])
                return XType(suffix, elem=inner)
        if text.startswith('enum '):
            name = text[5:]
            return XType('enum', name=name, values=self.enums[name])
        if text.endswith(' ref'):
            return XType('ref', name=text[:-4])
        if text.endswith(' record'):
            return XType('record', name=text[:-7])
        raise ValueError('unknown XenAPI type %r' % text)

    def parse_default(self, ftype: XType, text: str) -> Any:
        """A field default as written in the datamodel JSON."""
        if ftype.kind == 'string':
            return json.loads(text) if text.startswith('"') else text
        if ftype.kind == 'int':
            return int(text)
        if ftype.kind == 'float':
            return float(text)
        if ftype.kind == 'bool':
            return text == 'true'
        if ftype.kind == 'datetime':
            return text
        if ftype.kind == 'ref':
            return NULL_REF if text in ('Null', '') else text
        if ftype.kind == 'enum':
            return text
        if ftype.kind == 'set':
            inner = text.strip()[1:-1].strip()
            if not inner:
                return []
            items = [i.strip() for i in inner.split(',')]
            return [self.parse_default(ftype.elem, i) for i in items]
        if ftype.kind == 'map':
            inner = text.strip()[1:-1].strip()
            result = {}
            for pair in re.findall(r'"([^"]*)"\s*->\s*"([^"]*)"', inner):
                result[pair[0]] = pair[1]
            return result
        return None

    @staticmethod
    def zero(ftype: XType) -> Any:
        """The value of a field that was never set and has no default."""
        kind = ftype.kind
        if kind == 'string':
            return ''
        if kind == 'int':
            return 0
        if kind == 'float':
            return 0.0
        if kind == 'bool':
            return False
        if kind == 'datetime':
            return EPOCH
        if kind == 'ref':
            return NULL_REF
        if kind == 'enum':
            return ftype.values[0]
        if kind == 'set':
            return []
        if kind == 'map':
            return {}
        return None

    # -- loading ---------------------------------------------------------

    def _column(self, cls: str, field: str) -> str:
        for prefix, owners in NAMESPACES.items():
            if owners is not None and cls not in owners:
                continue
            if field.startswith(prefix + '_') and len(field) > len(prefix) + 1:
                return prefix + '__' + field[len(prefix) + 1 :]
        return field

    def _load_class(self, spec: dict) -> Class:
        name = spec['name']
        fields: dict[str, Field] = {}
        for fspec in spec['fields']:
            ftype = self.parse_type(fspec['type'])
            has_default = 'default' in fspec
            default = (
                self.parse_default(ftype, fspec['default'])
                if has_default
                else None
            )
            fields[fspec['name']] = Field(
                name=fspec['name'],
                type=ftype,
                qualifier=fspec['qualifier'],
                default=default,
                has_default=has_default,
                column=self._column(name, fspec['name']),
            )
        messages: dict[str, Message] = {}
        for mspec in spec['messages']:
            message = self._load_message(name, mspec)
            messages[message.name] = message
        if 'get_all_records' in messages:
            for hidden in HIDDEN_IMPLICIT:
                messages[hidden] = Message(
                    cls=name,
                    name=hidden,
                    params=[Param('expr', XType('string'))],
                    result=messages['get_all_records'].result,
                    implicit=True,
                    errors=[],
                    takes_session=True,
                    defaults={},
                )
        columns = {f.column: f.name for f in fields.values()}
        return Class(name, fields, messages, columns)

    def _load_message(self, cls: str, spec: dict) -> Message:
        params = [
            Param(p['name'], self.parse_type(p['type']))
            for p in spec['params']
        ]
        takes_session = bool(params) and (
            params[0].name == 'session_id'
            and params[0].type == XType('ref', name='session')
        )
        if takes_session:
            params = params[1:]
        defaults = dict(PARAM_DEFAULTS.get((cls, spec['name']), {}))
        names = [p.name for p in params]
        if defaults and names[-len(defaults) :] != list(defaults):
            raise ValueError(
                'defaults of %s.%s must be its trailing parameters'
                % (cls, spec['name'])
            )
        return Message(
            cls=cls,
            name=spec['name'],
            params=params,
            result=self.parse_type(spec['result']),
            implicit=spec['implicit'],
            errors=list(spec['errors']),
            takes_session=takes_session,
            defaults=defaults,
        )

    def _check_relations(self) -> tuple[tuple[str, str, str, str], ...]:
        """Keep the relations this datamodel version really has."""
        valid = []
        for child, field, parent, set_field in RELATIONS:
            cfield = self.classes.get(child, None)
            pfield = self.classes.get(parent, None)
            if cfield is None or pfield is None:
                continue
            one = cfield.fields.get(field)
            many = pfield.fields.get(set_field)
            if one is None or many is None:
                continue
            if one.type != XType('ref', name=parent):
                raise ValueError('relation %s.%s is no ref' % (child, field))
            if many.type != XType('set', elem=XType('ref', name=child)):
                raise ValueError(
                    'relation %s.%s is no ref set' % (parent, set_field)
                )
            valid.append((child, field, parent, set_field))
        return tuple(valid)

    # -- lookups ---------------------------------------------------------

    def message(self, wire_name: str) -> Message | None:
        """``'VM.start'`` -> its Message, or None when xapi has no such."""
        cls_name, _, msg_name = wire_name.partition('.')
        cls = self.classes.get(cls_name)
        if cls is None or not msg_name:
            return None
        return cls.messages.get(msg_name)

    def error_arity(self, code: str) -> int | None:
        params = self.errors.get(code)
        return None if params is None else len(params)

    def new_record(self, cls: str) -> dict[str, Any]:
        """A record with every field at its default (or zero)."""
        record = {}
        for field in self.classes[cls].fields.values():
            value = field.default if field.has_default else None
            if value is None:
                value = self.zero(field.type)
            record[field.name] = _copy_value(value)
        return record


def _copy_value(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


@functools.lru_cache(maxsize=1)
def load() -> Datamodel:
    """The datamodel shipped with this package (loaded once)."""
    data = importlib.resources.files(__package__) / 'data'
    classes = json.loads((data / 'datamodel.json').read_text())
    errors = json.loads((data / 'errors.json').read_text())
    return Datamodel(classes, errors)
