"""Async calls, tasks and event.from."""

from __future__ import annotations

import threading
import time
import xmlrpc.client

from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import login


def wait_task(xapi, task: str, timeout: float = 10.0) -> dict:
    """Wait for a task the way clients do: event.from on task/<ref>."""
    token = ''
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = xapi.task.get_record(task)
        if record['status'] not in ('pending', 'cancelling'):
            return record
        batch = event_from(xapi, ['task/%s' % task], token, 5.0)
        token = batch['token']
    raise AssertionError('task %s did not finish' % task)


def event_from(xapi, classes, token, timeout):
    """``event.from``: ``from`` is a Python keyword, hence getattr."""
    return getattr(xapi.event, 'from')(classes, token, timeout)


def parse_result(text: str):
    return xmlrpc.client.loads('<params><param>%s</param></params>' % text)[0][
        0
    ]


def test_async_call_returns_a_task_that_succeeds(xapi):
    vm = create_vm(xapi)
    task = xapi.Async.VM.clone(vm, 'async-clone')
    assert task.startswith('OpaqueRef:')
    record = wait_task(xapi, task)
    assert record['status'] == 'success'
    assert record['progress'] == 1.0
    assert record['result'].startswith('<value>OpaqueRef:')
    clone = parse_result(record['result'])
    assert xapi.VM.get_name_label(clone) == 'async-clone'
    assert record['name_label'] == 'Async.VM.clone'
    xapi.task.destroy(task)
    assert failure_of(xapi.task.get_record, task)[0] == 'HANDLE_INVALID'


def test_async_void_result_and_failures(xapi):
    vm = create_vm(xapi)
    done = wait_task(xapi, xapi.Async.VM.start(vm, False, False))
    assert done['status'] == 'success'
    assert parse_result(done['result']) == ''
    failed = wait_task(xapi, xapi.Async.VM.start(vm, False, False))
    assert failed['status'] == 'failure'
    assert failed['error_info'] == [
        'VM_BAD_POWER_STATE',
        vm,
        'halted',
        'running',
    ]


def test_task_cancel_before_it_ran(sim, xapi):
    vm = create_vm(xapi)
    sim.faults.latency('VM.start', 0.5)
    task = xapi.Async.VM.start(vm, False, False)
    xapi.task.cancel(task)
    record = wait_task(xapi, task)
    assert record['status'] == 'cancelled'
    assert record['error_info'] == ['TASK_CANCELLED', task]
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert xapi.VM.get_current_operations(vm) == {}
    assert failure_of(xapi.task.cancel, task)[0] == 'OPERATION_NOT_ALLOWED'


def test_task_create_for_http_transfers(xapi):
    task = xapi.task.create('import', 'an upload')
    record = xapi.task.get_record(task)
    assert record['status'] == 'pending'
    assert record['name_label'] == 'import'
    xapi.task.destroy(task)


def test_event_from_empty_token_returns_the_current_state(xapi):
    batch = event_from(xapi, ['vm'], '', 1.0)
    refs = {e['ref'] for e in batch['events']}
    assert refs == set(xapi.VM.get_all())
    assert all(e['operation'] == 'add' for e in batch['events'])
    assert all(e['class'] == 'vm' for e in batch['events'])
    assert batch['valid_ref_counts'] == {'vm': len(refs)}
    assert batch['token']


def test_event_from_blocks_until_a_change(xapi, sim):
    token = event_from(xapi, ['vm'], '', 1.0)['token']
    vm = create_vm(xapi, 'watched')
    batch = event_from(xapi, ['vm'], token, 5.0)
    ours = [e for e in batch['events'] if e['ref'] == vm]
    assert ours and ours[0]['operation'] == 'add'
    assert ours[0]['snapshot']['name_label'] == 'watched'
    token = batch['token']

    other_client = login(sim.hosts[0]).xenapi

    def later():
        time.sleep(0.2)
        other_client.VM.set_name_label(vm, 'renamed')

    worker = threading.Thread(target=later)
    start = time.monotonic()
    worker.start()
    batch = event_from(xapi, ['vm'], token, 5.0)
    waited = time.monotonic() - start
    worker.join()
    assert 0.1 < waited < 4.0
    (event,) = batch['events']
    assert event['operation'] == 'mod' and event['ref'] == vm
    assert event['snapshot']['name_label'] == 'renamed'


def test_event_from_times_out_with_no_events(xapi):
    token = event_from(xapi, ['vm'], '', 1.0)['token']
    start = time.monotonic()
    batch = event_from(xapi, ['vm'], token, 0.3)
    assert time.monotonic() - start >= 0.25
    assert batch['events'] == []
    assert batch['token'] == token


def test_event_from_filters_classes_and_reports_deletions(xapi):
    token = event_from(xapi, ['vm', 'network'], '', 1.0)['token']
    vm = create_vm(xapi)
    xapi.VM.destroy(vm)
    batch = event_from(xapi, ['vm'], token, 2.0)
    assert [e['operation'] for e in batch['events'] if e['ref'] == vm] == [
        'del'
    ]
    deleted = [e for e in batch['events'] if e['operation'] == 'del'][0]
    assert 'snapshot' not in deleted
    assert all(e['class'] == 'vm' for e in batch['events'])


def test_event_from_on_one_task(xapi):
    vm = create_vm(xapi)
    token = event_from(xapi, ['task'], '', 1.0)['token']
    other = xapi.Async.VM.clone(vm, 'noise')
    task = xapi.Async.VM.clone(vm, 'watched')
    wait_task(xapi, other)
    batch = event_from(xapi, ['task/%s' % task], token, 5.0)
    assert {e['ref'] for e in batch['events']} == {task}


def test_event_from_rejects_a_bad_token(xapi):
    assert failure_of(event_from, xapi, ['vm'], 'garbage', 1.0) == [
        'EVENT_FROM_TOKEN_PARSE_FAILURE',
        'garbage',
    ]


def test_event_from_returns_when_something_happened_meanwhile(xapi):
    token = event_from(xapi, ['*'], '', 1.0)['token']
    create_vm(xapi)
    start = time.monotonic()
    batch = event_from(xapi, ['*'], token, 10.0)
    assert time.monotonic() - start < 2.0
    classes = {e['class'] for e in batch['events']}
    assert {'vm', 'vm_metrics'} <= classes
    assert 'session' not in classes


def test_legacy_event_register_and_next(sim, xapi):
    assert failure_of(xapi.event.next)[0] == 'SESSION_NOT_REGISTERED'
    xapi.event.register(['vm'])
    vm = create_vm(xapi, 'legacy')
    events = xapi.event.next()
    assert {e['ref'] for e in events} >= {vm}
    assert all(e['class'] == 'vm' for e in events)
    xapi.event.unregister(['vm'])
