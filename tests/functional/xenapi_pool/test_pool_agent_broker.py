"""The pool agent over a real RabbitMQ: Nova's notification, then the pool.

Nova's API publishes its versioned notifications to a real broker (as with
``[oslo_messaging_notifications] driver = messagingv2``); the pool agent
listens there and wakes the compute services, whose periodic
reconciliation is set far too slow (60 s) to explain what the test sees.
"""

import time

import fixtures
from nova import rpc
import nova.conf
import oslo_messaging as messaging

from nova_hypervisors.xenapi.pool import agent
from tests.functional.xenapi_pool import broker
from tests.functional.xenapi_pool import test_pool_workflow

CONF = nova.conf.CONF


class TestPoolAgentOverRabbitMQ(test_pool_workflow.PoolTestCase):
    reconcile_interval = 60
    # The agent's fan-out is a cast, as in production; the harness would
    # otherwise turn every cast into a call.
    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        rabbit = broker.Broker(self.useFixture(fixtures.TempDir()).path)
        url = rabbit.start()
        self.addCleanup(rabbit.stop)
        transport = messaging.get_notification_transport(CONF, url=url)
        self.addCleanup(transport.cleanup)
        # nova-api's versioned notifier, as messagingv2 on the broker.
        self.stub_out(
            'nova.rpc.NOTIFIER',
            messaging.Notifier(
                transport,
                publisher_id='nova-api',
                driver='messagingv2',
                topics=['versioned_notifications'],
                serializer=rpc.NOTIFIER._serializer,
            ),
        )
        listener, self.agent = agent.build_listener(transport, rpc.TRANSPORT)
        listener.start()
        self.addCleanup(listener.wait)
        self.addCleanup(listener.stop)

    def test_adding_hosts_changes_the_pool_within_a_second_or_so(self):
        aggregate_id = self.create_pool_aggregate()
        for reconcile in self.pools():
            self.wait_until('the first reconciliation', lambda r=reconcile:
                            r.last_decision is not None)  # fmt: skip

        asked = time.monotonic()
        self.add_host(aggregate_id, 'xen1')
        self.wait_until(
            'xen1 recorded as master',
            lambda: (
                self.aggregate(aggregate_id)['metadata'].get('master_compute')
                == 'xen1'
            ),
            timeout=20,
        )
        master_after = time.monotonic() - asked

        asked = time.monotonic()
        self.add_host(aggregate_id, 'xen2')
        xen2 = self.sim.hosts[1].address
        self.wait_until(
            'xen2 in the pool',
            lambda: xen2 in self.pool_of(self.sim.hosts[0])[1],
            timeout=20,
        )
        joined_after = time.monotonic() - asked
        print(
            f'\npool agent over RabbitMQ: master recorded '
            f'{master_after:.2f} s, host joined {joined_after:.2f} s '
            'after the API call'
        )
        uuid = self.aggregate(aggregate_id)['uuid']
        self.assertIn(uuid, self.agent.woken)
        # Far below the 60 s interval: only the agent's wake-up explains it.
        self.assertLess(master_after, 2)
        self.assertLess(joined_after, 2)

    def pools(self):
        return [
            compute.manager.driver._pool_service.pool
            for compute in self.computes.values()
        ]
