"""The pool agent turns aggregate notifications into compute wake-ups.

Runs over oslo.messaging's in-memory transport; the same code over a real
RabbitMQ is exercised by the functional pool tests.
"""

import threading

from oslo_config import cfg
import oslo_messaging as messaging
import pytest

from nova_hypervisors.xenapi.pool import agent
from nova_hypervisors.xenapi.pool import wakeup


def _aggregate_payload(metadata: dict, hosts=('xen1',)) -> dict:
    return {
        'nova_object.name': 'AggregatePayload',
        'nova_object.namespace': 'nova',
        'nova_object.version': '1.1',
        'nova_object.data': {
            'id': 1,
            'uuid': 'b9a5b2f6-0000-4000-8000-000000000001',
            'name': 'pool1',
            'hosts': list(hosts),
            'metadata': metadata,
        },
    }


@pytest.fixture
def wired():
    """An agent and one compute's wake-up server on one fake transport."""
    conf = cfg.CONF  # as in nova-compute and the agent: the global CONF
    transport = messaging.get_rpc_transport(conf, url='fake:/')
    notify_transport = messaging.get_notification_transport(conf, url='fake:/')
    woken: list[str | None] = []
    arrived = threading.Event()

    def wake(aggregate_uuid):
        woken.append(aggregate_uuid)
        arrived.set()

    server = messaging.get_rpc_server(
        transport,
        wakeup.server_target('xen1'),
        [wakeup.WakeupEndpoint(wake)],
        executor='threading',
    )
    listener, endpoint = agent.build_listener(notify_transport, transport)
    server.start()
    listener.start()
    notifier = messaging.Notifier(
        notify_transport,
        driver='messaging',
        topics=['versioned_notifications'],
        publisher_id='nova-api:controller',
    )
    yield notifier, woken, arrived, endpoint
    for running in (listener, server):
        running.stop()
        running.wait()


def test_add_host_to_a_pool_aggregate_wakes_the_computes(wired):
    notifier, woken, arrived, _ = wired
    payload = _aggregate_payload({'hypervisor_pool': 'true'})
    notifier.info({}, 'aggregate.add_host.end', payload)
    assert arrived.wait(10)
    assert woken == [payload['nova_object.data']['uuid']]


def test_other_aggregates_and_events_are_ignored(wired):
    notifier, woken, arrived, endpoint = wired
    notifier.info({}, 'aggregate.add_host.end', _aggregate_payload({}))
    notifier.info(
        {},
        'aggregate.add_host.start',
        _aggregate_payload({'hypervisor_pool': 'true'}),
    )
    notifier.info(
        {},
        'aggregate.update_metadata.end',
        _aggregate_payload({'hypervisor_pool': 'true'}),
    )
    assert arrived.wait(10)
    assert endpoint.woken == [
        _aggregate_payload({})['nova_object.data']['uuid']
    ]
    assert len(woken) == 1


def test_wakeups_carry_no_credentials(wired):
    """Only the aggregate uuid travels, whatever the metadata holds."""
    notifier, woken, arrived, _ = wired
    payload = _aggregate_payload(
        {'hypervisor_pool': 'true', 'master_compute': 'xen1'}
    )
    notifier.info({}, 'aggregate.remove_host.end', payload)
    assert arrived.wait(10)
    assert woken == ['b9a5b2f6-0000-4000-8000-000000000001']
