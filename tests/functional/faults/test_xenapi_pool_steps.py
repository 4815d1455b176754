"""The fault campaign for moves inside a XenServer pool: one injected
failure at every step of a live migration, of a resize (with its confirm)
and of a revert, through Nova's API, with three computes on one pool.

As on one host (test_xenapi_steps), the steps come from a traced run of
the operation, and after each faulty run the server is deleted and the
pool must hold what it held before.  A failed move also leaves the server
usable: running on one of the hosts, where Nova says it is.
"""

from tests.functional.faults import campaign
from tests.functional.xenapi_pool import test_migrations


class PoolStepFaultsTest(
    campaign.XenAPICampaign, test_migrations.PoolMigrationTestCase
):
    def setUp(self):
        super().setUp()
        self.delete_for_good(self.boot('xen1'))  # the image cache is warm

    def _where(self, server):
        """(Nova's host, the VM's resident host, its power state)."""
        found = self.api.get_server(server['id'])
        _, rec = self.vm_of(found)
        resident, _owner = self.host_of_vm(found)
        return found['OS-EXT-SRV-ATTR:host'], resident, rec['power_state']

    def _live_migrate_to_xen2(self, server):
        self.api.post_server_action(
            server['id'],
            {'os-migrateLive': {'host': 'xen2', 'block_migration': 'auto'}},
        )

    def test_a_failure_at_any_step_of_a_live_migration_leaves_nothing(self):
        server = self.boot('xen1')
        steps = self.traced_steps(
            lambda: self._live_migrate(server, host='xen2')
        )
        self.delete_for_good(server)
        self.assertIn(('VM.pool_migrate', 0), steps)

        def usable(server):
            # Wherever the move stopped, Nova's host is the VM's host, and
            # an ACTIVE server runs.
            nova_host, resident, power = self._where(server)
            self.assertEqual(nova_host, resident)
            if server['status'] == 'ACTIVE':
                self.assertEqual('Running', power)

        self.fail_each_step(
            steps,
            prepare=lambda: self.boot('xen1'),
            operation=self._live_migrate_to_xen2,
            check=usable,
        )

    def test_a_failure_at_any_step_of_a_resize_leaves_nothing(self):
        server = self.boot('xen1')

        def resize_and_confirm(server):
            self._resize_server(server, self.large)
            self._confirm_resize(server)

        steps = self.traced_steps(lambda: resize_and_confirm(server))
        self.delete_for_good(server)

        def resize(server):
            self.api.post_server_action(
                server['id'], {'resize': {'flavorRef': self.large}}
            )
            settled = self.settled(server)
            if settled['status'] == 'VERIFY_RESIZE':
                self.api.post_server_action(
                    server['id'], {'confirmResize': None}
                )

        outcomes = self.fail_each_step(
            self.changes_and_first_reads(steps),
            prepare=lambda: self.boot('xen1'),
            operation=resize,
        )
        self.assertIn('ERROR', [status for status, _ in outcomes.values()])

    def test_a_failure_at_any_step_of_a_revert_leaves_nothing(self):
        def resized():
            server = self.boot('xen1')
            return self._resize_server(server, self.large)

        server = resized()
        steps = self.traced_steps(lambda: self._revert_resize(server))
        self.delete_for_good(server)
        self.fail_each_step(
            self.changes_and_first_reads(steps),
            prepare=resized,
            operation=lambda server: self.api.post_server_action(
                server['id'], {'revertResize': None}
            ),
        )
