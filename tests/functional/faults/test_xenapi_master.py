"""The pool master changes while three nova-computes run, one per host.

Each compute's connection_url is its own host.  When the master moves, a
slave answers HOST_IS_SLAVE with the new master's address, and a dead
master leaves the computes to find the new one among the pool's hosts
they know (``XenAPISession``): no compute is restarted and no nova.conf
changes.
"""

import time

import XenAPI

from tests.functional.faults import table
from tests.functional.xapi_sim import helpers
from tests.functional.xenapi_pool import test_migrations


class PoolMasterChangeTest(test_migrations.PoolMigrationTestCase):
    xenserver_options = {'unreachable_grace': 1}

    def _boot_on_each(self, computes):
        servers = [self.boot(compute) for compute in computes]
        for compute, server in zip(computes, servers, strict=True):
            self.assertEqual((compute, compute), self.host_of_vm(server))
            self.assertEqual('Running', self.vm_of(server)[1]['power_state'])
        return servers

    def test_designate_new_master_keeps_every_compute_working(self):
        before = self._boot_on_each(['xen1', 'xen2', 'xen3'])
        old, new = self.sim.hosts[0], self.sim.hosts[1]
        xapi = helpers.client(old)
        xapi.login_with_password(old.username, old.password, '1.0', 'test')
        moved = time.monotonic()
        xapi.xenapi.pool.designate_new_master(new.host_ref)  # logs us out
        self.assertIs(new, self.sim.master)

        after = self._boot_on_each(['xen1', 'xen2', 'xen3'])
        seconds = time.monotonic() - moved
        for server in before + after:
            self.api.post_server_action(server['id'], {'os-stop': None})
            self._wait_for_state_change(server, 'SHUTOFF')
            self._delete_server(server)
        for compute in ('xen1', 'xen2', 'xen3'):
            self.assertEqual(
                'enabled', self.compute_service(compute)['status']
            )
        table.record(
            'xenapi',
            'pool of 3 computes',
            'pool.designate_new_master',
            'a boot on each host, none disabled',
            0,
            seconds,
        )

    def test_a_dead_master_then_an_emergency_transition(self):
        """The master dies: a pool without a master can do nothing, so
        every compute disables itself (the scheduler stops sending boots).
        An operator promotes a slave and recovers the other slave; both
        surviving computes find the new master by themselves, enable
        themselves and boot again, while the dead host's compute stays
        disabled."""
        server = self.boot('xen3')
        killed = self.sim.faults.kill_master()
        self.assertEqual(self.sim.hosts[0].name, killed.name)
        for compute in ('xen1', 'xen2', 'xen3'):
            service = self.wait_for_service(compute, 'disabled')
            self.assertTrue(service['disabled_reason'].startswith('AUTO: '))

        survivor = self.sim.hosts[1]
        local = helpers.client(survivor)
        local.slave_local_login_with_password(
            survivor.username, survivor.local_password
        )
        local.xenapi.pool.emergency_transition_to_master()
        local.logout()
        xapi = helpers.client(survivor)
        xapi.login_with_password(
            survivor.username, survivor.password, '1.0', 'test'
        )
        self.addCleanup(xapi.xenapi.session.logout)
        xapi.xenapi.pool.recover_slaves()
        promoted = time.monotonic()
        self.wait_for_service('xen2', 'enabled')
        self.wait_for_service('xen3', 'enabled')
        seconds = time.monotonic() - promoted

        self._boot_on_each(['xen2', 'xen3'])
        # The running VM on the surviving slave was never touched.
        self.assertEqual('Running', self.vm_of(server)[1]['power_state'])
        self.api.post_server_action(server['id'], {'os-stop': None})
        self._wait_for_state_change(server, 'SHUTOFF')
        self.assertEqual('disabled', self.compute_service('xen1')['status'])
        table.record(
            'xenapi',
            'pool of 3 computes',
            'master killed, then emergency_transition_to_master',
            'survivors enabled and booting; dead host disabled',
            0,
            seconds,
        )
        with self.assertRaises(XenAPI.Failure):
            # Nothing is served by the dead host any more.
            xapi.xenapi.pool.designate_new_master(self.sim.hosts[0].host_ref)
