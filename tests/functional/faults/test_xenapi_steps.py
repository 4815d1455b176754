"""The fault campaign for the XenAPI driver: one injected failure at every
step of a boot and of a delete, through Nova's API.

The steps are not written out by hand: a boot (and a delete) is traced in
the simulator (``sim.faults.start_trace``), and each XenAPI call of the
trace is then failed in turn with ``INTERNAL_ERROR``
(``fail_next(method, after=<earlier calls of that method>)``).  After each
faulty operation the server is deleted, and the pool must hold exactly what
it held before: no guest VM, VDI, VBD, VIF, network or task is left
(the image cache's base VDI is there before, and stays).
"""

import time

from nova.tests.functional.api import client

from tests.functional.xenapi import test_lifecycle

#: Calls of other loops than the operation's: the event watcher's
#: long-poll and logins.
NOT_STEPS = ('event.from', 'session.')
COUNTED = ('VM', 'VDI', 'VBD', 'VIF', 'network', 'task')


class XenAPIStepFaultsTest(test_lifecycle.XenAPITestCase):
    def setUp(self):
        # One attempt: the failure is the boot's, not a reschedule's.
        self.flags(max_attempts=1, group='scheduler')
        super().setUp()
        self.flavor_swap = self._create_flavor(
            memory_mb=512, vcpu=1, disk=0, ephemeral=1, swap=64
        )

    def _boot(self, expect=('ACTIVE',)):
        server = self._build_server(
            image_uuid=test_lifecycle.IMAGE_ID,
            flavor_id=self.flavor_swap,
            networks='none',
        )
        server['config_drive'] = True
        created = self.api.post_server({'server': server})
        settled = self._wait_until_settled(created)
        self.assertIn(settled['status'], expect)
        return settled

    def _wait_until_settled(self, server):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = self.api.get_server(server['id'])
            if found['status'] != 'BUILD':
                return found
            time.sleep(0.1)
        self.fail('server %s still building' % server['id'])

    def _pool_state(self) -> dict:
        return {cls: set(self.records(cls)) for cls in COUNTED}

    def _steps(self, operation) -> list[tuple[str, int]]:
        """(method, earlier calls of it) for each call ``operation`` makes."""
        self.sim.faults.start_trace()
        operation()
        trace = self.sim.faults.stop_trace()
        seen: dict[str, int] = {}
        steps = []
        for method in trace:
            if method.startswith(NOT_STEPS):
                continue
            steps.append((method, seen.get(method, 0)))
            seen[method] = seen.get(method, 0) + 1
        return steps

    def test_a_failure_at_any_step_of_a_boot_leaves_nothing(self):
        self._delete_server(self._boot())  # the image cache is warm now
        before = self._pool_state()
        traced = []
        steps = self._steps(lambda: traced.append(self._boot()))
        self._delete_server(traced[0])
        self.assertEqual(before, self._pool_state())
        self.assertGreater(len(steps), 10)
        outcomes = {}
        for method, earlier in steps:
            step = f'{method} #{earlier + 1}'
            with self.subTest(step=step):
                self.sim.faults.fail_next(
                    method, 1, ['INTERNAL_ERROR', 'injected'], after=earlier
                )
                server = self._boot(expect=('ACTIVE', 'ERROR'))
                self.sim.faults.clear()
                outcomes[step] = server['status']
                self._delete_server(server)
                self.assertEqual(before, self._pool_state(), step)
        self.assertIn('ERROR', outcomes.values())

    def test_a_failure_at_any_step_of_a_delete_leaves_nothing(self):
        self._delete_server(self._boot())
        before = self._pool_state()
        server = self._boot()
        steps = self._steps(lambda: self._delete_server(server))
        self.assertEqual(before, self._pool_state())
        for method, earlier in steps:
            step = f'{method} #{earlier + 1}'
            with self.subTest(step=step):
                server = self._boot()
                self.sim.faults.fail_next(
                    method, 1, ['INTERNAL_ERROR', 'injected'], after=earlier
                )
                try:
                    self.api.delete_server(server['id'])
                except client.OpenStackApiException:
                    pass  # the harness runs the cast synchronously
                found = self._wait_until_gone_or_error(server)
                self.sim.faults.clear()
                if found is not None:
                    # The delete failed: a second one (an operator's retry)
                    # removes everything.
                    self._delete_server(found)
                self.assertEqual(before, self._pool_state(), step)

    def _wait_until_gone_or_error(self, server):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                found = self.api.get_server(server['id'])
            except client.OpenStackApiNotFoundException:
                return None
            if found['status'] == 'ERROR':
                return found
            time.sleep(0.1)
        self.fail('server %s neither gone nor in error' % server['id'])


class XenAPILoadFaultsTest(test_lifecycle.XenAPITestCase):
    host_memory_mib = 32768

    def test_twenty_concurrent_boots_with_xapi_like_latency(self):
        """20 servers at once, every XenAPI call 20 ms slower and VM
        operations visibly in progress (concurrent calls on one VM meet
        OTHER_OPERATION_IN_PROGRESS): all ACTIVE, then all gone, and
        nothing left."""
        before = {cls: set(self.records(cls)) for cls in COUNTED}
        self._delete_server(self.boot())  # the image cache is warm now
        warm = {cls: set(self.records(cls)) for cls in COUNTED}
        self.assertEqual(before['VM'], warm['VM'])
        self.sim.faults.latency(None, 0.02)
        self.flags(instances=-1, cores=-1, ram=-1, group='quota')
        server = self._build_server(
            image_uuid=test_lifecycle.IMAGE_ID,
            flavor_id=self.flavor_id,
            networks='none',
        )
        server['min_count'] = 20
        self.api.post_server({'server': server})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            servers = self.api.get_servers()
            if len(servers) == 20 and all(
                s['status'] != 'BUILD' for s in servers
            ):
                break
            time.sleep(0.5)
        self.assertEqual(['ACTIVE'] * 20, [s['status'] for s in servers])
        running = [
            rec
            for rec in self.records('VM').values()
            if rec['power_state'] == 'Running' and not rec['is_control_domain']
        ]
        self.assertEqual(20, len(running))
        for found in servers:
            self._delete_server(found)
        self.sim.faults.clear()
        self.assertEqual(
            warm, {cls: set(self.records(cls)) for cls in COUNTED}
        )

    def test_sessions_expired_while_a_task_runs_are_survived(self):
        """Every session expires while the VM's start runs (a toolstack
        restart): the task is still awaited, through a new session."""
        self.sim.faults.latency('VM.start_on', 1.0)
        created = self.api.post_server(
            {
                'server': self._build_server(
                    image_uuid=test_lifecycle.IMAGE_ID,
                    flavor_id=self.flavor_id,
                    networks='none',
                )
            }
        )
        before = self.sim.faults.calls('VM.start_on')
        deadline = time.monotonic() + 30
        while self.sim.faults.calls('VM.start_on') == before:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.sim.faults.expire_sessions()
        server = self._wait_for_state_change(created, 'ACTIVE')
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])
        self._delete_server(server)
        self.assert_nothing_left(server['id'])
