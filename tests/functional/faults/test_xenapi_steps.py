"""The fault campaign for the XenAPI driver on one host: one injected
failure at every step of a boot, a delete, a rescue, an unrescue and a
snapshot, through Nova's API (the pool's moves: test_xenapi_pool_steps).

The steps are not written out by hand: each operation is traced in
the simulator (``sim.faults.start_trace``), and each XenAPI call of the
trace is then failed in turn with ``INTERNAL_ERROR``
(``fail_next(method, after=<earlier calls of that method>)``).  After each
faulty operation the server is deleted, and the pool must hold exactly what
it held before: no guest VM, VDI, VBD, VIF, network or task is left
(the image cache's base VDI is there before, and stays).
"""

import threading
import time

from tests.functional.faults import campaign
from tests.functional.faults import table
from tests.functional.xenapi import test_lifecycle


class XenAPIStepFaultsTest(
    campaign.XenAPICampaign, test_lifecycle.XenAPITestCase
):
    def setUp(self):
        # One attempt: the failure is the boot's, not a reschedule's.
        self.flags(max_attempts=1, group='scheduler')
        super().setUp()
        self.flavor_swap = self._create_flavor(
            memory_mb=512, vcpu=1, disk=0, ephemeral=1, swap=64
        )
        self.delete_for_good(self._boot())  # the image cache is warm now

    def _boot(self, expect=('ACTIVE',)):
        """A server with every kind of disk: root, ephemeral, swap and a
        config drive."""
        server = self._build_server(
            image_uuid=test_lifecycle.IMAGE_ID,
            flavor_id=self.flavor_swap,
            networks='none',
        )
        server['config_drive'] = True
        created = self.api.post_server({'server': server})
        settled = self.settled(created)
        self.assertIn(settled['status'], expect)
        return settled

    def _action(self, action):
        return lambda server: self.api.post_server_action(server['id'], action)

    def test_a_failure_at_any_step_of_a_boot_leaves_nothing(self):
        before = self.pool_state()
        traced = []
        steps = self.traced_steps(lambda: traced.append(self._boot()))
        self.delete_for_good(traced[0])
        self.assertEqual(before, self.pool_state())
        self.assertGreater(len(steps), 10)
        outcomes = self.fail_each_step(
            steps,
            prepare=lambda: {'id': None},
            operation=lambda server: server.update(
                self._boot(expect=('ACTIVE', 'ERROR'))
            ),
        )
        self.assertIn('ERROR', [status for status, _ in outcomes.values()])

    def test_a_failure_at_any_step_of_a_delete_leaves_nothing(self):
        server = self._boot()
        before_boot = self.pool_state()
        steps = self.traced_steps(lambda: self.delete_for_good(server))
        self.assertNotEqual(before_boot, self.pool_state())
        self.fail_each_step(
            steps,
            prepare=self._boot,
            operation=lambda server: self.api.delete_server(server['id']),
        )

    def test_a_failure_at_any_step_of_a_rescue_leaves_nothing(self):
        server = self._boot()
        steps = self.traced_steps(lambda: self._rescue_server(server))
        self.delete_for_good(server)
        outcomes = self.fail_each_step(
            self.changes_and_first_reads(steps),
            prepare=self._boot,
            operation=self._action({'rescue': {}}),
        )
        self.assertIn('RESCUE', [status for status, _ in outcomes.values()])

    def test_a_failure_at_any_step_of_an_unrescue_leaves_nothing(self):
        server = self._boot()
        self._rescue_server(server)
        steps = self.traced_steps(lambda: self._unrescue_server(server))
        self.delete_for_good(server)

        def rescued():
            server = self._boot()
            self._rescue_server(server)
            return server

        self.fail_each_step(
            self.changes_and_first_reads(steps),
            prepare=rescued,
            operation=self._action({'unrescue': None}),
        )

    def test_a_failure_at_any_step_of_a_snapshot_leaves_nothing(self):
        server = self._boot()
        snapshot = self._action({'createImage': {'name': 'snap'}})

        def traced():
            snapshot(server)
            self.settled(server)

        steps = self.traced_steps(traced)
        self.delete_for_good(server)
        self.fail_each_step(
            self.changes_and_first_reads(steps),
            prepare=self._boot,
            operation=snapshot,
        )
        # A failed snapshot's image is deleted by Nova; none is left half
        # made.
        self.assertEqual(
            [],
            [
                image['id']
                for image in self.glance.images.values()
                if image.get('status') not in ('active', 'deleted')
            ],
        )

    def test_sessions_expired_while_each_task_runs_are_survived(self):
        """Every session expires (a toolstack restart, a master change)
        while each XenAPI task of a boot and of a delete runs: the task is
        still awaited through a new session, the server ends ACTIVE, the
        delete removes everything."""
        before = self.pool_state()
        steps = self.traced_steps(lambda: self.delete_for_good(self._boot()))
        seen = self.sim.faults.tasks_seen()
        tasks = list(dict.fromkeys(m for m, _ in steps if m in seen))
        self.assertIn('VM.start_on', tasks)
        for method in tasks:
            with self.subTest(task=method):
                self.sim.faults.latency(method, 0.5)
                expired = []
                calls = self.sim.faults.calls(method)

                def expire_while_it_runs(
                    method=method, calls=calls, expired=expired
                ):
                    deadline = time.monotonic() + 60
                    while self.sim.faults.calls(method) == calls:
                        if time.monotonic() > deadline:
                            return
                        time.sleep(0.02)
                    time.sleep(0.1)  # the task is running now
                    expired.append(self.sim.faults.expire_sessions())

                expirer = threading.Thread(target=expire_while_it_runs)
                expirer.start()
                started = time.monotonic()
                self.delete_for_good(self._boot())
                expirer.join()
                self.sim.faults.clear()
                self.assertEqual(1, len(expired))
                self.assertGreater(expired[0], 0)
                table.record(
                    'xenapi',
                    'boot, then delete',
                    f'every session expired while {method} runs',
                    'ACTIVE, then deleted',
                    0,
                    time.monotonic() - started,
                )
                self.assertEqual(before, self.pool_state(), method)


class XenAPILoadFaultsTest(test_lifecycle.XenAPITestCase):
    host_memory_mib = 32768

    def test_twenty_concurrent_boots_with_xapi_like_latency(self):
        """20 servers at once, every XenAPI call 20 ms slower and VM
        operations visibly in progress (concurrent calls on one VM meet
        OTHER_OPERATION_IN_PROGRESS): all ACTIVE, then all gone, and
        nothing left."""
        before = {cls: set(self.records(cls)) for cls in campaign.COUNTED}
        self._delete_server(self.boot())  # the image cache is warm now
        warm = {cls: set(self.records(cls)) for cls in campaign.COUNTED}
        self.assertEqual(before['VM'], warm['VM'])
        self.sim.faults.latency(None, 0.02)
        started = time.monotonic()
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
            warm, {cls: set(self.records(cls)) for cls in campaign.COUNTED}
        )
        table.record(
            'xenapi',
            '20 concurrent boots, then deletes',
            '20 ms added to every XenAPI call',
            '20/20 ACTIVE',
            0,
            time.monotonic() - started,
        )
