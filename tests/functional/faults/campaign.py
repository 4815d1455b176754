"""What every fault campaign does: trace an operation, then fail each
hypervisor call of the trace in turn and check that the hypervisor holds
exactly what it held before.

:class:`StepCampaign` is the driver-neutral part; :class:`XenAPICampaign`
injects through the XenServer simulator (``self.sim.faults``), and the
vCenter campaign through its own injector (``test_vcenter_steps``).
"""

import logging
import re
import time

from nova.tests.functional.api import client

from tests.functional.faults import table

#: XenAPI calls of other loops than the operation's: the event watcher's
#: long-poll and logins.
NOT_STEPS = ('event.from', 'session.')
#: What a XenServer pool must not gain from a failed operation.
COUNTED = ('VM', 'VDI', 'VBD', 'VIF', 'network', 'task')
#: Server states an operation settles in (anything but a transition).
SETTLED = ('ACTIVE', 'ERROR', 'SHUTOFF', 'RESCUE', 'VERIFY_RESIZE')


class _KeptLog(logging.Handler):
    """Every log line of the test, DEBUG included, with tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter('%(name)s %(message)s'))
        self.lines: list[str] = []

    def emit(self, record) -> None:
        self.lines.append(self.format(record))


class StepCampaign:
    """Subclasses say how to trace, inject and count (the hooks below)."""

    #: The driver's name in the fault table.
    driver = ''
    #: What ``inject`` makes the call fail with.
    FAULT = ''

    def setUp(self):
        super().setUp()
        self.kept_log = _KeptLog()
        root = logging.getLogger()
        root.addHandler(self.kept_log)
        self.addCleanup(root.removeHandler, self.kept_log)

    # -- hooks ---------------------------------------------------------------

    def start_trace(self) -> None:
        raise NotImplementedError

    def stop_trace(self) -> list[str]:
        """The methods called since start_trace, in order."""
        raise NotImplementedError

    def inject(self, method: str, after: int) -> None:
        """Fail the call of ``method`` after ``after`` more of them."""
        raise NotImplementedError

    def clear_injected(self) -> None:
        raise NotImplementedError

    def pool_state(self) -> dict:
        """{kind: set of objects} of what an operation can leave behind."""
        raise NotImplementedError

    def secrets(self) -> set[str]:
        """Passwords and every session id the hypervisor handed out."""
        raise NotImplementedError

    # -- the campaign ------------------------------------------------------

    def assert_no_secret_logged(self) -> None:
        """No password and no session id is in the logs (a session id is
        root on the pool, or vCenter)."""
        text = '\n'.join(self.kept_log.lines)
        self.assertIn('injected', text)  # the log did see the campaign
        secrets = self.secrets()
        self.assertGreater(len(secrets), 1)
        leaked = sorted(secret for secret in secrets if secret in text)
        self.assertEqual([], leaked)

    def traced_steps(self, operation) -> list[tuple[str, int]]:
        """(method, earlier calls of it) for each call ``operation`` makes."""
        self.start_trace()
        operation()
        trace = self.stop_trace()
        seen: dict[str, int] = {}
        steps = []
        for method in trace:
            steps.append((method, seen.get(method, 0)))
            seen[method] = seen.get(method, 0) + 1
        return steps

    def is_read(self, method: str) -> bool:
        """Whether ``method`` only reads."""
        raise NotImplementedError

    def changes_and_first_reads(self, steps) -> list[tuple[str, int]]:
        """Every call that changes something, and each kind of read once:
        for the operations beyond a boot, a delete and a live migration,
        whose every step is failed, this keeps the campaign's time in
        bounds (a repeated read fails the same way its first one does)."""
        return [
            (method, earlier)
            for method, earlier in steps
            if earlier == 0 or not self.is_read(method)
        ]

    def fail_each_step(self, steps, prepare, operation, check=None) -> dict:
        """For each step: ``prepare()`` a server, fail that step once
        while ``operation(server)`` runs, ``check`` the
        settled server, delete it (twice if the first delete fails, as an
        operator would), and compare the pool with how it was before.
        Returns step -> (the server's status after the operation, seconds
        until it settled)."""
        before = self.pool_state()
        outcomes = {}
        for method, earlier in steps:
            step = f'{method} #{earlier + 1}'
            with self.subTest(step=step):
                server = prepare()
                self.inject(method, earlier)
                started = time.monotonic()
                try:
                    operation(server)
                except client.OpenStackApiException:
                    pass  # the harness runs some of Nova's casts as calls
                settled = self.settled(server)
                seconds = time.monotonic() - started
                self.clear_injected()
                status = settled['status'] if settled else 'DELETED'
                outcomes[step] = (status, round(seconds, 1))
                if settled is not None:
                    if check is not None:
                        check(settled)
                    self.delete_for_good(settled)
                after = self.pool_state()
                table.record(
                    self.driver,
                    self.operation_name(),
                    f'{self.FAULT} at {step}',
                    status,
                    sum(len(before[kind] ^ after[kind]) for kind in before),
                    seconds,
                    step=True,
                )
                self.assertEqual(before, after, step)
        print('CAMPAIGN', outcomes)
        return outcomes

    def operation_name(self) -> str:
        """'live migration' of test_a_failure_at_any_step_of_a_live_...."""
        found = re.search(r'step_of_an?_(\w+?)_leaves', self._testMethodName)
        return found.group(1).replace('_', ' ') if found else 'operation'

    def settled(self, server, timeout=60) -> dict | None:
        """The server once no task runs on it any more (None: deleted)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = self.api.get_server(server['id'])
            except client.OpenStackApiNotFoundException:
                return None
            if (
                found['status'] in SETTLED
                and found.get('OS-EXT-STS:task_state') is None
            ):
                return found
            time.sleep(0.1)
        self.fail(
            'server %s did not settle: %s/%s'
            % (
                server['id'],
                found['status'],
                found.get('OS-EXT-STS:task_state'),
            )
        )

    def delete_for_good(self, server) -> None:
        """Delete; a delete that fails is retried once."""
        for _attempt in range(2):
            try:
                self.api.delete_server(server['id'])
            except client.OpenStackApiNotFoundException:
                return
            except client.OpenStackApiException:
                pass
            if self.gone_or_error(server) is None:
                return
        self.fail('server %s could not be deleted' % server['id'])

    def gone_or_error(self, server, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = self.api.get_server(server['id'])
            except client.OpenStackApiNotFoundException:
                return None
            if found['status'] == 'ERROR' and not found.get(
                'OS-EXT-STS:task_state'
            ):
                return found
            time.sleep(0.1)
        self.fail('server %s neither gone nor in error' % server['id'])


class XenAPICampaign(StepCampaign):
    """Faults injected by the XenServer simulator: the call is answered
    with INTERNAL_ERROR, as xapi answers a failure it did not expect (an
    ``Async.`` call fails its task)."""

    driver = 'xenapi'
    FAULT = 'INTERNAL_ERROR'

    def start_trace(self) -> None:
        self.sim.faults.start_trace()

    def stop_trace(self) -> list[str]:
        trace = self.sim.faults.stop_trace()
        return [method for method in trace if not method.startswith(NOT_STEPS)]

    def inject(self, method: str, after: int) -> None:
        self.sim.faults.fail_next(
            method, 1, ['INTERNAL_ERROR', 'injected'], after=after
        )

    def clear_injected(self) -> None:
        self.sim.faults.clear()

    def is_read(self, method: str) -> bool:
        # XenAPI's reads are the generated getters (get_record, get_uuid,
        # get_all_records_where, get_by_uuid, ...).
        return method.partition('.')[2].startswith('get')

    def pool_state(self) -> dict:
        db = self.sim.db(self.sim.hosts[0])
        return {cls: set(db.get_all_records(cls)) for cls in COUNTED}

    def secrets(self) -> set[str]:
        return {xen.password for xen in self.sim.hosts} | (
            self.sim.faults.sessions_seen()
        )
