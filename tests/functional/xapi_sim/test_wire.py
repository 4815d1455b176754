"""The wire protocol: envelopes, encodings and protocol-level errors."""

from __future__ import annotations

import json
import urllib.parse
import xmlrpc.client

from tests.functional.xapi_sim.helpers import client as xapi_client
from tests.functional.xapi_sim.helpers import connect
from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import login


def post(host, path: str, body: bytes, content_type: str):
    conn = connect(host, timeout=10)
    conn.request('POST', path, body, {'Content-Type': content_type})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def xmlrpc_call(host, path: str, method: str, *params):
    body = xmlrpc.client.dumps(params, method, allow_none=True).encode()
    status, data = post(host, path, body, 'text/xml')
    assert status == 200
    return data, xmlrpc.client.loads(data)[0][0]


def jsonrpc_call(host, method: str, params: list, version2=True):
    request = {'method': method, 'params': params, 'id': 7}
    if version2:
        request['jsonrpc'] = '2.0'
    status, data = post(host, '/jsonrpc', json.dumps(request).encode(), 'a/j')
    assert status == 200
    return json.loads(data)


def raw_login(host, path='/'):
    _raw, reply = xmlrpc_call(
        host,
        path,
        'session.login_with_password',
        host.username,
        host.password,
        '1.0',
        'raw',
    )
    assert reply['Status'] == 'Success'
    return reply['Value']


def test_success_envelope_carries_the_value_on_both_paths(sim):
    """XML-RPC is served on / and /RPC2 with Status/Value structs."""
    host = sim.hosts[0]
    for path in ('/', '/RPC2'):
        session = raw_login(host, path)
        assert session.startswith('OpaqueRef:')
        _raw, reply = xmlrpc_call(host, path, 'pool.get_all', session)
        assert reply['Status'] == 'Success'
        assert len(reply['Value']) == 1


def test_failure_envelope_is_an_error_description_array(sim):
    _raw, reply = xmlrpc_call(sim.hosts[0], '/', 'VM.get_all', 'bogus')
    assert reply == {
        'Status': 'Failure',
        'ErrorDescription': ['SESSION_INVALID', 'bogus'],
    }


def test_ints_travel_as_strings_and_datetimes_as_iso8601(sim):
    """64-bit ints are decimal strings; datetimes are dateTime.iso8601."""
    host = sim.hosts[0]
    session = raw_login(host)
    _raw, reply = xmlrpc_call(host, '/', 'host.get_all', session)
    host_ref = reply['Value'][0]
    _raw, reply = xmlrpc_call(host, '/', 'host.get_metrics', session, host_ref)
    raw, reply = xmlrpc_call(
        host, '/', 'host_metrics.get_record', session, reply['Value']
    )
    metrics = reply['Value']
    assert metrics['memory_total'] == str(16384 * 1024 * 1024)
    assert b'<value>17179869184</value>' in raw
    assert isinstance(metrics['last_updated'], xmlrpc.client.DateTime)
    assert b'<dateTime.iso8601>' in raw
    assert metrics['last_updated'].value.endswith('Z')
    assert metrics['live'] is True


def test_enums_null_refs_and_void_are_spelled_like_xapi(xapi, sim):
    vm = create_vm(xapi, 'wire')
    record = xapi.VM.get_record(vm)
    assert record['power_state'] == 'Halted'
    assert record['actions_after_crash'] == 'destroy'
    assert record['resident_on'] == 'OpaqueRef:NULL'
    assert record['uuid'] and record['VBDs'] == []
    host = sim.hosts[0]
    session = raw_login(host)
    _raw, reply = xmlrpc_call(
        host, '/', 'VM.set_name_label', session, vm, 'renamed'
    )
    assert reply == {'Status': 'Success', 'Value': ''}


def test_jsonrpc_v2_success_and_error_objects(sim):
    host = sim.hosts[0]
    reply = jsonrpc_call(
        host,
        'session.login_with_password',
        [host.username, host.password, '1.0', 'json'],
    )
    assert reply['jsonrpc'] == '2.0' and reply['id'] == 7
    session = reply['result']
    reply = jsonrpc_call(host, 'host.get_all_records', [session])
    record = next(iter(reply['result'].values()))
    assert record['API_version_major'] == 2  # a JSON number
    assert isinstance(record['other_config'], dict)
    reply = jsonrpc_call(
        host, 'host_metrics.get_record', [session, record['metrics']]
    )
    assert reply['result']['memory_total'] == 16384 * 1024 * 1024
    assert reply['result']['last_updated'].endswith('Z')  # a string
    reply = jsonrpc_call(host, 'VM.get_record', [session, 'OpaqueRef:x'])
    assert reply['error'] == {
        'code': 1,
        'message': 'HANDLE_INVALID',
        'data': ['VM', 'OpaqueRef:x'],
    }
    assert 'result' not in reply


def test_jsonrpc_v1_error_is_an_array(sim):
    reply = jsonrpc_call(sim.hosts[0], 'VM.get_all', ['nope'], version2=False)
    assert reply == {
        'result': None,
        'error': ['SESSION_INVALID', 'nope'],
        'id': 7,
    }


def test_malformed_requests_get_http_500(sim):
    host = sim.hosts[0]
    status, _ = post(host, '/', b'<methodCall><oops', 'text/xml')
    assert status == 500
    status, _ = post(host, '/jsonrpc', b'{"method": "x"}', 'a/j')
    assert status == 500


def test_unknown_method_and_wrong_parameter_count(xapi):
    assert failure_of(xapi.VM.reboot_softly) == [
        'MESSAGE_METHOD_UNKNOWN',
        'VM.reboot_softly',
    ]
    assert failure_of(xapi.VM.start, 'OpaqueRef:NULL') == [
        'MESSAGE_PARAMETER_COUNT_MISMATCH',
        'VM.start',
        '3',
        '1',
    ]
    assert failure_of(xapi.Async.VM.clone, 'x') == [
        'MESSAGE_PARAMETER_COUNT_MISMATCH',
        'VM.clone',
        '2',
        '1',
    ]


def test_trailing_parameters_with_xapi_defaults_may_be_left_out(sim):
    """login_with_password(user, pwd) and VDI.copy(vdi, sr) are valid."""
    host = sim.hosts[0]
    client = xapi_client(host)
    client.xenapi.login_with_password(host.username, host.password)
    assert client.xenapi.pool.get_all()
    assert failure_of(client.xenapi.VM.snapshot, 'OpaqueRef:nope') == [
        'MESSAGE_PARAMETER_COUNT_MISMATCH',
        'VM.snapshot',
        '2',
        '1',
    ]


def test_unknown_refs_are_handle_invalid_with_the_class(xapi):
    assert failure_of(xapi.VM.get_record, 'OpaqueRef:gone') == [
        'HANDLE_INVALID',
        'VM',
        'OpaqueRef:gone',
    ]
    assert failure_of(xapi.SR.scan, 'OpaqueRef:gone') == [
        'HANDLE_INVALID',
        'SR',
        'OpaqueRef:gone',
    ]


def test_bad_types_and_enum_values_are_refused(xapi):
    vm = create_vm(xapi)
    assert failure_of(xapi.VM.set_VCPUs_max, vm, 'many') == [
        'FIELD_TYPE_ERROR',
        'value',
    ]
    assert failure_of(xapi.VM.set_actions_after_reboot, vm, 'explode') == [
        'INVALID_VALUE',
        'value',
        'explode',
    ]
    assert failure_of(xapi.VM.set_name_label, vm, ['not', 'a', 'string']) == [
        'FIELD_TYPE_ERROR',
        'value',
    ]
    # Enum values are matched regardless of case and stored canonically.
    xapi.VM.set_actions_after_reboot(vm, 'DESTROY')
    assert xapi.VM.get_actions_after_reboot(vm) == 'destroy'


def test_client_logs_in_again_on_session_invalid(sim):
    """The PyPI client's own retry: expired sessions are transparent."""
    client = login(sim.hosts[0])
    first = client._session
    assert sim.faults.expire_sessions() >= 1
    assert client.xenapi.pool.get_all()
    assert client._session != first


def test_wrong_password_is_session_authentication_failed(sim):
    client = xapi_client(sim.hosts[0])
    assert failure_of(
        client.xenapi.login_with_password, 'root', 'wrong', '1.0', 't'
    ) == ['SESSION_AUTHENTICATION_FAILED']


def test_each_host_has_its_own_endpoint_and_credentials(sim):
    urls = {h.url for h in sim.hosts}
    assert len(urls) == 3
    assert len({h.address for h in sim.hosts}) == 3
    assert len({urllib.parse.urlsplit(u).port for u in urls}) == 1
    for host in sim.hosts:
        client = login(host)
        host_ref = client.xenapi.session.get_this_host(client._session)
        assert client.xenapi.host.get_address(host_ref) == host.address
        assert host_ref == host.host_ref
    client = xapi_client(sim.hosts[1])
    assert failure_of(
        client.xenapi.login_with_password, 'root', sim.hosts[0].password
    ) == ['SESSION_AUTHENTICATION_FAILED']
