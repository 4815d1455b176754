"""Messages generated from the datamodel: getters, setters, queries."""

from __future__ import annotations

import pytest

from nova_hypervisors.simulators.xapi import datamodel
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import failure_of


def test_every_class_with_get_all_records_answers_it(xapi):
    """Generated from the JSON: no class is missing, none is hand-listed."""
    model = datamodel.load()
    classes = [
        c.name
        for c in model.classes.values()
        if 'get_all_records' in c.messages
    ]
    assert len(classes) > 50
    for name in classes:
        records = getattr(xapi, name).get_all_records()
        assert isinstance(records, dict), name
        refs = getattr(xapi, name).get_all()
        assert sorted(refs) == sorted(records), name


def test_records_have_exactly_the_datamodel_fields(xapi):
    model = datamodel.load()
    for cls in ('VM', 'host', 'SR', 'pool', 'network', 'host_metrics'):
        record = next(iter(getattr(xapi, cls).get_all_records().values()))
        assert set(record) == set(model.classes[cls].fields), cls


def test_field_getters_match_the_record(xapi):
    host = xapi.host.get_all()[0]
    record = xapi.host.get_record(host)
    assert xapi.host.get_name_label(host) == record['name_label']
    assert xapi.host.get_API_version_minor(host) == record['API_version_minor']
    assert xapi.host.get_resident_VMs(host) == record['resident_VMs']


def test_read_only_fields_have_no_setter(xapi):
    vm = create_vm(xapi)
    assert failure_of(xapi.VM.set_power_state, vm, 'Running') == [
        'MESSAGE_METHOD_UNKNOWN',
        'VM.set_power_state',
    ]
    assert failure_of(xapi.VM.set_uuid, vm, 'x') == [
        'MESSAGE_METHOD_UNKNOWN',
        'VM.set_uuid',
    ]


def test_map_fields_get_add_to_and_remove_from(xapi):
    vm = create_vm(xapi)
    xapi.VM.add_to_other_config(vm, 'nova_uuid', 'abc')
    assert xapi.VM.get_other_config(vm) == {'nova_uuid': 'abc'}
    assert failure_of(xapi.VM.add_to_other_config, vm, 'nova_uuid', 'x') == [
        'MAP_DUPLICATE_KEY',
        'VM',
        'other_config',
        vm,
        'nova_uuid',
    ]
    xapi.VM.remove_from_other_config(vm, 'nova_uuid')
    xapi.VM.remove_from_other_config(vm, 'never-there')
    assert xapi.VM.get_other_config(vm) == {}
    xapi.VM.set_other_config(vm, {'a': '1', 'b': '2'})
    assert xapi.VM.get_other_config(vm) == {'a': '1', 'b': '2'}


def test_set_fields_add_and_remove(xapi):
    vm = create_vm(xapi)
    xapi.VM.add_tags(vm, 'gold')
    xapi.VM.add_tags(vm, 'gold')
    xapi.VM.add_tags(vm, 'fast')
    assert sorted(xapi.VM.get_tags(vm)) == ['fast', 'gold']
    xapi.VM.remove_tags(vm, 'gold')
    assert xapi.VM.get_tags(vm) == ['fast']


def test_get_by_uuid_and_by_name_label(xapi):
    vm = create_vm(xapi, 'findme')
    uuid = xapi.VM.get_uuid(vm)
    assert xapi.VM.get_by_uuid(uuid) == vm
    assert xapi.VM.get_by_name_label('findme') == [vm]
    assert xapi.VM.get_by_name_label('nobody') == []
    assert failure_of(xapi.VM.get_by_uuid, 'no-such-uuid') == [
        'UUID_INVALID',
        'VM',
        'no-such-uuid',
    ]


def test_get_all_records_where_speaks_the_query_language(xapi):
    a = create_vm(xapi, 'alpha')
    b = create_vm(xapi, 'beta')
    xapi.VM.set_is_a_template(b, True)
    where = xapi.VM.get_all_records_where
    assert set(where('field "name__label"="alpha"')) == {a}
    assert set(
        where('field "name__label"="beta" and field "is_a_template"="true"')
    ) == {b}
    both = 'field "name__label"="alpha" or field "name__label"="beta"'
    assert set(where(both)) == {a, b}
    assert set(where('(%s) and not field "is_a_template"="true"' % both)) == {
        a
    }
    assert set(where('field "memory__static_max"="%d"' % (512 << 20))) >= {
        a,
        b,
    }
    # xapi's grammar: "not" binds loosest, "and"/"or" associate left.
    assert a not in where(
        'not field "name__label"="alpha" and field "name__label"="alpha"'
    )
    assert b in where(
        'not field "name__label"="alpha" and field "name__label"="alpha"'
    )
    assert where('false') == {}
    assert len(where('true')) == len(xapi.VM.get_all())
    record = where('field "uuid"="%s"' % xapi.VM.get_uuid(a))[a]
    assert record['name_label'] == 'alpha'


def test_query_errors_are_xapis(xapi):
    detail = failure_of(xapi.VM.get_all_records_where, 'field "name__label"=')
    assert detail[:2] == ['INVALID_VALUE', 'field "name__label"=']
    detail = failure_of(xapi.VM.get_all_records_where, 'field "nope"="x"')
    assert detail[0] == 'INTERNAL_ERROR' and 'nope' in detail[1]
    # Inside the database the column is name__label, not name_label.
    detail = failure_of(
        xapi.VM.get_all_records_where, 'field "name_label"="x"'
    )
    assert detail[0] == 'INTERNAL_ERROR'


def test_explicit_messages_without_semantics_say_not_implemented(xapi):
    host = xapi.host.get_all()[0]
    assert failure_of(xapi.host.get_system_status_capabilities, host) == [
        'NOT_IMPLEMENTED',
        'host.get_system_status_capabilities',
    ]


def test_error_arities_follow_errors_json():
    with pytest.raises(ValueError, match='VM_BAD_POWER_STATE takes 3'):
        XapiFailure('VM_BAD_POWER_STATE', 'vm')
    assert XapiFailure('HOST_IS_SLAVE', '127.0.0.1').description == [
        'HOST_IS_SLAVE',
        '127.0.0.1',
    ]


def test_relations_are_kept_on_both_sides(xapi):
    vm = create_vm(xapi)
    network = xapi.network.get_all()[0]
    vif = xapi.VIF.create(
        {
            'device': '0',
            'network': network,
            'VM': vm,
            'MAC': '',
            'MTU': '1500',
            'other_config': {},
            'qos_algorithm_type': '',
            'qos_algorithm_params': {},
        }
    )
    assert xapi.VM.get_VIFs(vm) == [vif]
    assert vif in xapi.network.get_VIFs(network)
    xapi.VIF.destroy(vif)
    assert xapi.VM.get_VIFs(vm) == []
    assert vif not in xapi.network.get_VIFs(network)


def test_vm_create_needs_every_constructor_field(xapi):
    detail = failure_of(xapi.VM.create, {'name_label': 'incomplete'})
    assert detail[0] == 'INTERNAL_ERROR'
    assert 'Dispatcher_FieldNotFound' in detail[1]


def test_every_generated_setter_of_a_class_round_trips(xapi):
    """All RW fields of VM, from the JSON, through set_ then get_."""
    model = datamodel.load()
    vm_class = model.classes['VM']
    vm = create_vm(xapi)
    samples = {'string': 'sample', 'bool': True, 'int': '42'}
    checked = 0
    for field in vm_class.fields.values():
        setter = vm_class.messages.get('set_' + field.name)
        kind = field.type.kind
        if field.qualifier != 'RW' or setter is None or not setter.implicit:
            continue
        if kind in samples:
            value = samples[kind]
        elif kind == 'map' and field.type.key.kind == 'string':
            value = {'k': 'v'} if field.type.elem.kind == 'string' else {}
        elif kind == 'set' and field.type.elem.kind == 'string':
            value = ['a', 'b']
        else:
            continue
        getattr(xapi.VM, 'set_' + field.name)(vm, value)
        assert getattr(xapi.VM, 'get_' + field.name)(vm) == value, field.name
        checked += 1
    assert checked >= 15
