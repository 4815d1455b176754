"""The event.from loop: task waits without polling, lifecycle events."""

import queue

from nova import exception
from nova.compute import power_state
from nova.virt import event as virtevent
import testtools

from nova_hypervisors.common import lifecycle
from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import events
from nova_hypervisors.xenapi import instances
from tests.unit.xenapi import fakewire
from tests.unit.xenapi.fakewire import XapiFailure

HOST = 'OpaqueRef:host-0'


def vm(state, host=HOST, nova_uuid='inst-1'):
    return {
        'power_state': state,
        'resident_on': host,
        'affinity': host,
        'is_a_template': False,
        'is_control_domain': False,
        'is_a_snapshot': False,
        'other_config': {'nova_uuid': nova_uuid},
    }


class WatcherTestCase(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.wire = self.useFixture(fakewire.FakeWire())
        fakewire.standard_pool(self.wire)
        self.session = fakewire.make_session()
        self.session.connect()
        self.batches = queue.Queue()
        self.tasks = {}
        self.wire.on('event.from', self.event_from)
        self.wire.on('task.get_record', lambda s, t: self.tasks[t])
        self.wire.on('task.destroy', lambda s, t: self.tasks.pop(t) and '')
        self.wire.on('task.cancel', self.cancel)
        self.emitted = []
        tracker = lifecycle.PowerStateTracker(self.emitted.append)
        self.table = instances.InstanceTable(lambda: HOST, tracker)
        self.watcher = events.EventWatcher(
            self.session, self.table.on_vm_event, self.table.on_vm_snapshot
        )
        self.batches.put([])
        self.watcher.start()
        self.addCleanup(self.watcher.stop)
        self.assertTrue(self.watcher.ready.wait(5))

    def event_from(self, session_ref, classes, token, timeout):
        try:
            batch = self.batches.get(timeout=min(float(timeout), 0.2))
        except queue.Empty:
            batch = []
        return {
            'events': batch,
            'token': str(int(token or 0) + 1),
            'valid_ref_counts': {},
        }

    def cancel(self, session_ref, task):
        self.tasks[task]['status'] = 'cancelled'
        return ''

    def finish(self, task, status, result='', error_info=()):
        self.tasks[task].update(
            status=status, result=result, error_info=list(error_info)
        )
        self.batches.put(
            [
                {
                    'class': 'task',
                    'operation': 'mod',
                    'ref': task,
                    'snapshot': dict(self.tasks[task]),
                }
            ]
        )

    def async_call(self, method, outcome):
        def handler(*params):
            self.tasks['OpaqueRef:task'] = {
                'status': 'pending',
                'result': '',
                'error_info': [],
            }
            self.wire.on('task.get_record', self.first_look(outcome))
            return 'OpaqueRef:task'

        self.wire.on('Async.' + method, handler)

    def first_look(self, outcome):
        def get_record(session_ref, task):
            record = dict(self.tasks[task])
            if outcome is not None:
                outcome()
            return record

        return get_record


class TestTasks(WatcherTestCase):
    def test_a_finished_task_returns_its_parsed_result_and_is_destroyed(self):
        self.async_call(
            'VDI.snapshot',
            lambda: self.finish(
                'OpaqueRef:task', 'success', '<value>OpaqueRef:vdi</value>'
            ),
        )
        result = events.run_async(
            self.session, self.watcher, 'VDI.snapshot', 'OpaqueRef:root', {}
        )
        self.assertEqual('OpaqueRef:vdi', result)
        self.assertNotIn('OpaqueRef:task', self.tasks)

    def test_a_failed_task_raises_its_error_and_is_destroyed(self):
        self.async_call(
            'VM.start_on',
            lambda: self.finish(
                'OpaqueRef:task',
                'failure',
                error_info=['HOST_NOT_ENOUGH_FREE_MEMORY', '2048', '1024'],
            ),
        )
        exc = self.assertRaises(
            exception.ComputeResourcesUnavailable,
            events.run_async,
            self.session,
            self.watcher,
            'VM.start_on',
            'vm',
            HOST,
            False,
            False,
        )
        self.assertEqual('HOST_NOT_ENOUGH_FREE_MEMORY', errors.code_of(exc))
        self.assertIn('2048, 1024', str(exc))
        self.assertNotIn('OpaqueRef:task', self.tasks)

    def test_a_task_past_its_timeout_is_cancelled_and_destroyed(self):
        self.async_call('VM.clean_shutdown', None)
        self.assertRaises(
            errors.XenAPIError,
            events.run_async,
            self.session,
            self.watcher,
            'VM.clean_shutdown',
            'vm',
            timeout=0.3,
        )
        self.assertIn('task.cancel', self.wire.methods())
        self.assertNotIn('OpaqueRef:task', self.tasks)

    def test_waiting_never_polls_the_task(self):
        self.async_call('VM.suspend', None)
        import threading

        threading.Timer(
            0.3,
            self.finish,
            ('OpaqueRef:task', 'success'),
        ).start()
        events.run_async(self.session, self.watcher, 'VM.suspend', 'vm')
        self.assertEqual(1, self.wire.counts['task.get_record'])

    def test_parse_task_result(self):
        self.assertEqual('', events.parse_task_result(''))
        self.assertEqual(
            'OpaqueRef:x',
            events.parse_task_result('<value>OpaqueRef:x</value>'),
        )


class TestLifecycle(WatcherTestCase):
    def put_vm(self, record, op='mod', ref='OpaqueRef:vm'):
        self.batches.put(
            [{'class': 'vm', 'operation': op, 'ref': ref, 'snapshot': record}]
        )

    def wait_for(self, count):
        import time

        deadline = time.monotonic() + 5
        while len(self.emitted) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def test_a_guest_shutting_itself_down_emits_stopped(self):
        self.put_vm(vm('Running'))
        self.wait_for(1)
        self.put_vm(vm('Halted', host='OpaqueRef:NULL'))
        self.wait_for(2)
        transitions = [e.get_transition() for e in self.emitted]
        self.assertEqual(
            [
                virtevent.EVENT_LIFECYCLE_STARTED,
                virtevent.EVENT_LIFECYCLE_STOPPED,
            ],
            transitions,
        )
        self.assertEqual('inst-1', self.emitted[1].get_instance_uuid())

    def test_other_hosts_vms_emit_nothing(self):
        self.put_vm(vm('Running', host='OpaqueRef:other'))
        self.put_vm(vm('Running'), ref='OpaqueRef:mine')
        self.wait_for(1)
        self.assertEqual(1, len(self.emitted))

    def test_the_table_answers_get_info_without_calls(self):
        self.put_vm(vm('Paused'))
        self.wait_for(1)
        ref, record = self.table.get('inst-1')
        self.assertEqual('OpaqueRef:vm', ref)
        self.assertEqual(
            virtevent.EVENT_LIFECYCLE_PAUSED, self.emitted[0].get_transition()
        )


class TestTransitions(testtools.TestCase):
    def test_resume_from_pause_is_resumed(self):
        self.assertEqual(
            virtevent.EVENT_LIFECYCLE_RESUMED,
            lifecycle.transition(power_state.PAUSED, power_state.RUNNING),
        )

    def test_no_change_no_event(self):
        self.assertIsNone(
            lifecycle.transition(power_state.RUNNING, power_state.RUNNING)
        )

    def test_a_new_halted_vm_is_no_news(self):
        emitted = []
        tracker = lifecycle.PowerStateTracker(emitted.append)
        self.assertFalse(tracker.observe('x', power_state.SHUTDOWN))
        self.assertEqual([], emitted)


class TestFailures(testtools.TestCase):
    def test_session_invalid_hides_the_session(self):
        exc = errors.translate(
            'VM.get_record', ['SESSION_INVALID', 'OpaqueRef:s'], set()
        )
        self.assertNotIn('OpaqueRef:s', str(exc))

    def test_storage_errors_are_storage_errors(self):
        self.assertIsInstance(
            errors.translate('VDI.create', ['SR_FULL', '1', '2'], set()),
            exception.StorageError,
        )

    def test_unknown_codes_keep_code_and_args(self):
        exc = errors.translate('VM.x', ['WEIRD', 'a', 'b'], set())
        self.assertIn('WEIRD [a, b] in VM.x', str(exc))


class TestWatcherRecovers(WatcherTestCase):
    def test_a_refused_token_restarts_from_an_empty_token(self):
        calls = []

        def lost(session_ref, classes, token, timeout):
            calls.append(token)
            if len(calls) == 1:
                raise XapiFailure('EVENT_FROM_TOKEN_PARSE_FAILURE', token)
            return self.event_from(session_ref, classes, token, timeout)

        self.wire.on('event.from', lost)
        import time

        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual('', calls[1])


class _Availability:
    def __init__(self):
        self.calls = queue.Queue()

    def lost(self, why):
        self.calls.put(why)

    def back(self):
        self.calls.put('back')


class TestOwnHostLiveness(WatcherTestCase):
    """The master answers, but it no longer hears our host: the compute
    must be reported unavailable all the same."""

    def metrics_event(self, live):
        return {
            'class': 'host_metrics',
            'operation': 'mod',
            'ref': 'OpaqueRef:metrics-' + HOST,
            'snapshot': {'live': live, 'memory_free': '0'},
        }

    def next_report(self, availability, wanted):
        while True:
            report = availability.calls.get(timeout=5)
            if wanted in report:
                return report

    def test_a_host_the_pool_marks_not_live_is_reported_lost(self):
        self.watcher.stop()
        self.watcher._thread.join(5)
        availability = _Availability()
        watcher = events.EventWatcher(self.session, availability=availability)
        watcher.start()
        self.addCleanup(watcher.stop)
        self.next_report(availability, 'back')
        self.batches.put([self.metrics_event(False)])
        report = self.next_report(availability, 'not live')
        self.assertIn(self.session.host_name, report)
        self.batches.put([self.metrics_event(True)])
        self.next_report(availability, 'back')

    def test_other_hosts_metrics_change_nothing(self):
        self.watcher.stop()
        self.watcher._thread.join(5)
        availability = _Availability()
        watcher = events.EventWatcher(self.session, availability=availability)
        watcher.start()
        self.addCleanup(watcher.stop)
        other = self.metrics_event(False)
        other['ref'] = 'OpaqueRef:metrics-of-another-host'
        self.batches.put([other])
        for _ in range(3):
            self.assertEqual('back', availability.calls.get(timeout=5))
