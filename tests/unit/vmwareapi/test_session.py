"""The session's retry policy and task waiter, with only the wire mocked."""

import ssl
import tempfile
import unittest
from unittest import mock

from pyVmomi import vim

from nova_hypervisors.simulators.xapi import tls
from nova_hypervisors.vmwareapi import session as vc_session


def make_session():
    settings = vc_session.Settings(
        host='vc.example', port=443, username='u', password='secret'
    )
    session = vc_session.VCenterSession(settings)
    session.content = mock.Mock()
    session._stub = mock.Mock(cookie='vmware_soap_session="abc"; Path=/')
    return session


class TestRetryPolicy(unittest.TestCase):
    def test_expired_session_logs_in_again_once_and_retries(self):
        session = make_session()
        target = mock.Mock()
        target.PowerOnVM_Task.side_effect = [
            vim.fault.NotAuthenticated(),
            'task-1',
        ]
        self.assertEqual('task-1', session.invoke(target, 'PowerOnVM_Task'))
        session.content.sessionManager.Login.assert_called_once_with(
            'u', 'secret'
        )
        self.assertEqual(1, session.generation)

    def test_a_second_refusal_is_raised(self):
        session = make_session()
        target = mock.Mock()
        target.Destroy_Task.side_effect = vim.fault.NotAuthenticated()
        self.assertRaises(
            vim.fault.NotAuthenticated, session.invoke, target, 'Destroy_Task'
        )

    def test_a_read_is_sent_again_after_a_dropped_connection(self):
        session = make_session()
        target = mock.Mock()
        target.RetrievePropertiesEx.side_effect = [
            ConnectionResetError(),
            'result',
        ]
        self.assertEqual(
            'result', session.invoke(target, 'RetrievePropertiesEx')
        )

    def test_a_tls_connection_closed_under_a_read_is_sent_again(self):
        """Over TLS a connection the server closed fails the next request
        with an EOF of the TLS layer, not a reset."""
        session = make_session()
        target = mock.Mock()
        target.RetrievePropertiesEx.side_effect = [
            ssl.SSLEOFError(8, 'EOF occurred in violation of protocol'),
            'result',
        ]
        self.assertEqual(
            'result', session.invoke(target, 'RetrievePropertiesEx')
        )

    def test_a_task_is_never_sent_twice_after_a_dropped_connection(self):
        """CreateVM_Task may have run before the connection dropped."""
        session = make_session()
        target = mock.Mock()
        target.CreateVM_Task.side_effect = [ConnectionResetError(), 'task']
        self.assertRaises(
            ConnectionResetError, session.invoke, target, 'CreateVM_Task'
        )
        self.assertEqual(1, target.CreateVM_Task.call_count)
        self.assertFalse(vc_session.safe_to_repeat('MakeDirectory'))
        self.assertFalse(vc_session.safe_to_repeat('UnregisterVM'))
        # A long-poll's lost answer may have carried a change: its callers
        # watch anew with a new collector instead.
        self.assertFalse(vc_session.safe_to_repeat('WaitForUpdatesEx'))

    def test_wrong_credentials_name_the_options(self):
        session = make_session()
        session.content.sessionManager.Login.side_effect = (
            vim.fault.InvalidLogin()
        )
        with self.assertRaises(vc_session.ConfigurationError) as caught:
            session._login()
        self.assertIn('host_username/host_password', str(caught.exception))
        self.assertNotIn('secret', str(caught.exception))

    def test_password_is_not_in_the_settings_repr(self):
        session = make_session()
        self.assertNotIn('secret', repr(session.settings))

    def test_cookie_is_only_the_session_pair(self):
        self.assertEqual('vmware_soap_session="abc"', make_session().cookie())


class TestTaskWaiter(unittest.TestCase):
    def test_a_finished_task_costs_one_read(self):
        session = make_session()
        with (
            mock.patch.object(
                session,
                'properties',
                return_value={
                    'task': {'info.state': 'success', 'info.result': 'vm-1'}
                },
            ) as read,
            mock.patch.object(session, '_watch') as watch,
        ):
            self.assertEqual('vm-1', session.wait_for_task('task'))
        read.assert_called_once()
        watch.assert_not_called()

    def test_a_failed_task_raises_with_the_fault(self):
        session = make_session()
        error = mock.Mock(
            fault=vim.fault.FileNotFound(), localizedMessage='no file'
        )
        with mock.patch.object(
            session,
            'properties',
            return_value={
                'task': {'info.state': 'error', 'info.error': error}
            },
        ):
            with self.assertRaises(vc_session.TaskFailed) as caught:
                session.wait_for_task('task')
        self.assertIn('FileNotFound', str(caught.exception))
        self.assertIn('no file', str(caught.exception))

    def test_a_running_task_is_watched_not_polled(self):
        session = make_session()
        states = iter(
            [
                {'task': {'info.state': 'running'}},
                {'task': {'info.state': 'success', 'info.result': 'ok'}},
            ]
        )
        with (
            mock.patch.object(
                session, 'properties', side_effect=lambda *a: next(states)
            ),
            mock.patch.object(
                session, '_watch', return_value='success'
            ) as watch,
            mock.patch('time.sleep') as sleep,
        ):
            self.assertEqual('ok', session.wait_for_task('task'))
        watch.assert_called_once()
        sleep.assert_not_called()


class TestTLS(unittest.TestCase):
    def _settings(self, **kw):
        return vc_session.Settings(
            host='127.0.0.1', port=443, username='u', password='p', **kw
        )

    def test_verification_is_on_by_default(self):
        context = vc_session.ssl_context(self._settings())
        self.assertEqual(ssl.CERT_REQUIRED, context.verify_mode)

    def test_insecure_turns_it_off(self):
        context = vc_session.ssl_context(self._settings(insecure=True))
        self.assertEqual(ssl.CERT_NONE, context.verify_mode)

    def test_ca_file_wins_over_insecure(self):
        """nova/conf/vmware.py: insecure "is ignored if 'ca_file' is set"."""
        with tempfile.TemporaryDirectory() as folder:
            ca_file = tls.Credentials(folder, ['127.0.0.1']).ca_file
            context = vc_session.ssl_context(
                self._settings(insecure=True, ca_file=ca_file)
            )
        self.assertEqual(ssl.CERT_REQUIRED, context.verify_mode)
        self.assertEqual(1, len(context.get_ca_certs()))


class TestVNCSupport(unittest.TestCase):
    def test_esxi_7_and_later_have_no_vnc_server(self):
        from nova_hypervisors.vmwareapi import console

        self.assertTrue(console.vnc_supported('6.7.0'))
        self.assertFalse(console.vnc_supported('7.0.3'))
        self.assertFalse(console.vnc_supported('8.0.2'))
        self.assertFalse(console.vnc_supported('unknown'))


class TestTaskTimeout(unittest.TestCase):
    def test_a_task_that_overran_is_cancelled_first(self):
        session = make_session()
        task = mock.Mock()
        states = iter([{'info.state': 'running'}])
        with (
            mock.patch.object(
                session, '_task_info', side_effect=lambda t: next(states)
            ),
            mock.patch.object(session, '_watch', return_value=None),
        ):
            with self.assertRaises(vc_session.TaskTimeout) as caught:
                session.wait_for_task(task)
        task.CancelTask.assert_called_once_with()
        self.assertIn('cancelled', str(caught.exception))


class TestVCenterCheck(unittest.TestCase):
    """vSphere API, AboutInfo: apiType is VirtualCenter on vCenter and
    HostAgent on ESXi; the version is vCenter's."""

    def about(self, api_type='VirtualCenter', version='7.0.3'):
        return mock.Mock(
            apiType=api_type,
            version=version,
            fullName=f'{api_type} {version}',
        )

    def test_a_supported_vcenter_passes(self):
        vc_session.check_vcenter(self.about(), 'vc:443')
        vc_session.check_vcenter(self.about(version='8.0.2'), 'vc:443')

    def test_an_esxi_host_is_named_as_such(self):
        with self.assertRaises(vc_session.ConfigurationError) as caught:
            vc_session.check_vcenter(self.about('HostAgent'), 'esx:443')
        self.assertIn('not a vCenter Server', str(caught.exception))
        self.assertIn('[vmware] host_ip', str(caught.exception))

    def test_a_vcenter_too_old_is_refused_with_the_minimum(self):
        with self.assertRaises(vc_session.ConfigurationError) as caught:
            vc_session.check_vcenter(self.about(version='6.5.0'), 'vc:443')
        self.assertIn('6.5.0', str(caught.exception))
        self.assertIn(vc_session.MIN_VCENTER_VERSION, str(caught.exception))
