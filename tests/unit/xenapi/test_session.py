"""XenAPISession: login, the pool master, retries and secrets."""

import logging
import ssl
import time

import fixtures
from nova import exception
import testtools

from nova_hypervisors.simulators.xapi import tls
from nova_hypervisors.xenapi import session as xsession
from tests.unit.xenapi import fakewire
from tests.unit.xenapi.fakewire import XapiFailure


class SessionTestCase(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.wire = self.useFixture(fakewire.FakeWire())
        self.logs = self.useFixture(
            fixtures.FakeLogger(level=logging.DEBUG, format='%(message)s')
        )


class TestLogin(SessionTestCase):
    def test_login_at_the_master_finds_its_own_host(self):
        fakewire.standard_pool(self.wire, ('127.0.0.1', '127.0.0.2'))
        session = fakewire.make_session('http://127.0.0.2')
        session.connect()
        self.assertEqual('127.0.0.2', session.master_address)
        self.assertEqual('OpaqueRef:host-1', session.host_ref)
        self.assertEqual('host-uuid-1', session.host_uuid)
        self.assertEqual(['127.0.0.1', '127.0.0.2'], session.pool_addresses)

    def test_a_pool_member_leads_to_the_master_but_keeps_its_identity(self):
        fakewire.standard_pool(self.wire, ('127.0.0.1', '127.0.0.2'))

        def slave_login(*params):
            raise XapiFailure('HOST_IS_SLAVE', '127.0.0.1')

        self.wire.on(
            'session.login_with_password', slave_login, address='127.0.0.2'
        )
        session = fakewire.make_session('http://127.0.0.2')
        session.connect()
        self.assertEqual('127.0.0.1', session.master_address)
        self.assertEqual('OpaqueRef:host-1', session.host_ref)
        later = [
            a for a, m, _ in self.wire.calls if m == 'host.get_all_records'
        ]
        self.assertEqual(['127.0.0.1'], later)

    def test_wrong_credentials_name_the_options_to_fix(self):
        def refuse(*params):
            raise XapiFailure(
                'SESSION_AUTHENTICATION_FAILED',
                'root',
                'Authentication failure',
            )

        self.wire.on('session.login_with_password', refuse)
        session = fakewire.make_session()
        exc = self.assertRaises(
            exception.InvalidConfiguration, session.connect
        )
        self.assertIn('connection_password', str(exc))
        self.assertNotIn('s3cret-pw', str(exc))

    def test_an_unreachable_host_names_connection_url(self):
        def unreachable(*params):
            raise ConnectionRefusedError(111, 'refused')

        self.wire.on('session.login_with_password', unreachable)
        session = fakewire.make_session()
        exc = self.assertRaises(
            exception.HypervisorUnavailable, session.connect
        )
        self.assertIn('connection_url', str(exc))

    def test_a_host_not_in_the_pool_names_connection_url(self):
        fakewire.standard_pool(self.wire, ('127.0.0.1',))
        session = fakewire.make_session('http://127.0.0.9')
        exc = self.assertRaises(
            exception.InvalidConfiguration, session.connect
        )
        self.assertIn('connection_url', str(exc))

    def test_a_url_that_is_not_http_is_refused_before_any_connection(self):
        self.assertRaises(
            exception.InvalidConfiguration,
            xsession.XenAPISession,
            'ftp://x',
            'u',
            'p',
        )
        self.assertEqual([], self.wire.calls)


class TestRetries(SessionTestCase):
    def setUp(self):
        super().setUp()
        fakewire.standard_pool(self.wire, ('127.0.0.1', '127.0.0.2'))
        self.session = fakewire.make_session()
        self.session.connect()

    def test_a_busy_object_is_retried_until_free(self):
        answers = iter(
            [
                XapiFailure(
                    'OTHER_OPERATION_IN_PROGRESS',
                    'VM',
                    'OpaqueRef:vm',
                    'clean_shutdown',
                ),
                XapiFailure(
                    'OTHER_OPERATION_IN_PROGRESS',
                    'VM',
                    'OpaqueRef:vm',
                    'clean_shutdown',
                ),
                None,
            ]
        )

        def pause(session_ref, vm):
            answer = next(answers)
            if answer:
                raise answer
            return ''

        self.wire.on('VM.pause', pause)
        self.session.call_xenapi('VM.pause', 'OpaqueRef:vm')
        self.assertEqual(3, self.wire.counts['VM.pause'])

    def test_a_read_is_repeated_after_a_connection_reset(self):
        answers = iter([ConnectionResetError(104, 'reset'), None])

        def get_record(session_ref, ref):
            answer = next(answers)
            if answer:
                raise answer
            return {'power_state': 'Running'}

        self.wire.on('VM.get_record', get_record)
        record = self.session.call_xenapi('VM.get_record', 'OpaqueRef:vm')
        self.assertEqual('Running', record['power_state'])

    def test_the_session_of_a_broken_connection_is_logged_out(self):
        def create(session_ref, record):
            raise ConnectionResetError(104, 'reset')

        self.wire.on('VDI.create', create)
        before = self.wire.counts['session.logout']
        self.assertRaises(
            exception.HypervisorUnavailable,
            self.session.call_xenapi,
            'VDI.create',
            {},
        )
        deadline = time.monotonic() + 5
        while self.wire.counts['session.logout'] == before:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)

    def test_a_write_is_not_repeated_after_a_connection_reset(self):
        def create(session_ref, record):
            raise ConnectionResetError(104, 'reset')

        self.wire.on('VDI.create', create)
        self.assertRaises(
            exception.HypervisorUnavailable,
            self.session.call_xenapi,
            'VDI.create',
            {},
        )
        self.assertEqual(1, self.wire.counts['VDI.create'])

    def test_other_failures_carry_the_xenapi_code_and_arguments(self):
        def start(session_ref, vm, host, paused, force):
            raise XapiFailure(
                'VM_BAD_POWER_STATE', 'OpaqueRef:vm', 'halted', 'running'
            )

        self.wire.on('VM.start_on', start)
        exc = self.assertRaises(
            exception.InstanceInvalidState,
            self.session.call_xenapi,
            'VM.start_on',
            'OpaqueRef:vm',
            'OpaqueRef:host-0',
            False,
            False,
        )
        self.assertIn('VM_BAD_POWER_STATE', str(exc))
        self.assertIn('OpaqueRef:vm, halted, running', str(exc))
        self.assertEqual('VM_BAD_POWER_STATE', exc.xenapi_code)

    def test_not_enough_memory_is_a_resource_shortage(self):
        def start(*params):
            raise XapiFailure(
                'HOST_NOT_ENOUGH_FREE_MEMORY', '1073741824', '536870912'
            )

        self.wire.on('VM.start_on', start)
        self.assertRaises(
            exception.ComputeResourcesUnavailable,
            self.session.call_xenapi,
            'VM.start_on',
            'a',
            'b',
            False,
            False,
        )

    def test_a_new_master_is_found_among_remembered_addresses(self):
        """designate_new_master: the old master now answers HOST_IS_SLAVE."""

        def moved(*params):
            raise XapiFailure('HOST_IS_SLAVE', '127.0.0.2')

        self.wire.on('session.login_with_password', moved, address='127.0.0.1')
        self.wire.on('VM.get_record', moved, address='127.0.0.1')
        self.wire.on(
            'VM.get_record', lambda s, r: {'ok': True}, address='127.0.0.2'
        )
        record = self.session.call_xenapi('VM.get_record', 'OpaqueRef:vm')
        self.assertEqual({'ok': True}, record)
        self.assertEqual('127.0.0.2', self.session.master_address)

    def test_a_dead_master_is_replaced_by_a_remembered_member(self):
        """Emergency transition: the old master does not answer at all."""

        def dead(*params):
            raise ConnectionRefusedError(111, 'refused')

        self.wire.on('session.login_with_password', dead, address='127.0.0.1')
        self.wire.on('VM.get_record', dead, address='127.0.0.1')
        self.wire.on(
            'VM.get_record', lambda s, r: {'ok': True}, address='127.0.0.2'
        )
        self.assertEqual(
            {'ok': True},
            self.session.call_xenapi('VM.get_record', 'OpaqueRef:vm'),
        )
        self.assertEqual('127.0.0.2', self.session.master_address)

    def test_a_dead_master_without_an_open_session_is_replaced_too(self):
        """No pooled session left (they were dropped): the login at the
        old master fails, and the call path itself finds the new one; the
        message names the master, not connection_url, when none does."""

        def dead(*params):
            raise ConnectionRefusedError(111, 'refused')

        self.session._drain_idle()
        self.wire.on('session.login_with_password', dead, address='127.0.0.1')
        self.wire.on(
            'VM.get_record', lambda s, r: {'ok': True}, address='127.0.0.2'
        )
        self.assertEqual(
            {'ok': True},
            self.session.call_xenapi('VM.get_record', 'OpaqueRef:vm'),
        )
        self.assertEqual('127.0.0.2', self.session.master_address)

        self.session._drain_idle()
        self.wire.on('session.login_with_password', dead, address='127.0.0.2')
        self.wire.on('session.login_with_password', dead, address='127.0.0.3')
        error = self.assertRaises(
            exception.HypervisorUnavailable,
            self.session.call_xenapi,
            'VM.get_record',
            'OpaqueRef:vm',
        )
        self.assertIn('pool master 127.0.0.2 unreachable', str(error))
        self.assertNotIn('connection_url', str(error))

    def test_an_expired_session_is_renewed_transparently(self):
        expired = {'done': False}

        def get_record(session_ref, ref):
            if not expired['done']:
                expired['done'] = True
                raise XapiFailure('SESSION_INVALID', session_ref)
            return {'ok': True}

        self.wire.on('VM.get_record', get_record)
        self.assertEqual(
            {'ok': True},
            self.session.call_xenapi('VM.get_record', 'OpaqueRef:vm'),
        )


class TestSecrets(SessionTestCase):
    def test_no_password_or_session_ref_is_logged_or_raised(self):
        fakewire.standard_pool(self.wire)
        session = fakewire.make_session()
        session.connect()

        def invalid(session_ref, *args):
            raise XapiFailure('HANDLE_INVALID', 'session', session_ref)

        self.wire.on('VM.get_record', invalid)
        exc = self.assertRaises(
            exception.NotFound,
            session.call_xenapi,
            'VM.get_record',
            'OpaqueRef:vm',
        )
        handles = session.secrets
        self.assertTrue(handles)
        text = str(exc) + self.logs.output
        for secret in handles | {'s3cret-pw'}:
            self.assertNotIn(secret, text)


class TestPool(SessionTestCase):
    def test_at_most_concurrent_sessions_are_logged_in(self):
        fakewire.standard_pool(self.wire)
        session = fakewire.make_session(concurrent=2)
        session.connect()
        for _ in range(10):
            session.call_xenapi('host.get_all_records')
        self.assertLessEqual(self.wire.sessions, 2)

    def test_safe_to_repeat(self):
        self.assertTrue(xsession.is_safe_to_repeat('VM.get_record'))
        self.assertTrue(xsession.is_safe_to_repeat('event.from'))
        self.assertTrue(xsession.is_safe_to_repeat('VM.set_name_label'))
        self.assertFalse(xsession.is_safe_to_repeat('VM.start_on'))
        self.assertFalse(xsession.is_safe_to_repeat('Async.VM.get_record'))


class TestTLSSettings(testtools.TestCase):
    def test_verification_is_on_by_default(self):
        context = xsession.XenAPISession._make_ssl_context(None, False)
        self.assertEqual(ssl.CERT_REQUIRED, context.verify_mode)
        self.assertTrue(context.check_hostname)

    def test_insecure_turns_it_off(self):
        context = xsession.XenAPISession._make_ssl_context(None, True)
        self.assertEqual(ssl.CERT_NONE, context.verify_mode)

    def test_ca_file_wins_over_insecure(self):
        """As Nova documents for [vmware] insecure: ignored with ca_file."""
        folder = self.useFixture(fixtures.TempDir()).path
        ca_file = tls.Credentials(folder, ['127.0.0.1']).ca_file
        context = xsession.XenAPISession._make_ssl_context(ca_file, True)
        self.assertEqual(ssl.CERT_REQUIRED, context.verify_mode)
        self.assertEqual(1, len(context.get_ca_certs()))
