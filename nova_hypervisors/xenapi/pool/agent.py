"""The pool agent: Nova's aggregate notifications become pool wake-ups.

It listens on Nova's ``versioned_notifications`` topic in a listener pool of
its own (so it never takes messages from other consumers of that topic) and,
for ``aggregate.add_host.end``, ``aggregate.remove_host.end`` and
``aggregate.update_metadata.end`` of aggregates with
``hypervisor_pool=true``, wakes every XenAPI compute's reconciliation.
"""

import logging

import oslo_messaging as messaging

from nova_hypervisors.xenapi.pool import wakeup

LOG = logging.getLogger(__name__)

EVENT_TYPES = r'^aggregate\.(add_host|remove_host|update_metadata)\.end$'
LISTENER_POOL = 'nova-hypervisors-pool-agent'


def aggregate_from_payload(payload: dict) -> dict:
    """The aggregate fields of a versioned AggregatePayload."""
    return payload.get('nova_object.data', payload)


def is_hypervisor_pool(aggregate: dict) -> bool:
    metadata = aggregate.get('metadata') or {}
    return str(metadata.get('hypervisor_pool', '')).lower() == 'true'


class AggregateNotificationEndpoint:
    """Turns one aggregate notification into one fan-out wake-up."""

    filter_rule = messaging.NotificationFilter(event_type=EVENT_TYPES)

    def __init__(self, rpc_transport: messaging.Transport):
        self._rpc_transport = rpc_transport
        self.woken: list[str] = []

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        aggregate = aggregate_from_payload(payload)
        if not is_hypervisor_pool(aggregate):
            LOG.debug('Ignoring %s of aggregate %s: not a hypervisor pool',
                      event_type, aggregate.get('name'))  # fmt: skip
            return None
        LOG.info('%s for pool aggregate %s (hosts %s): waking computes',
                 event_type, aggregate.get('name'),
                 ', '.join(aggregate.get('hosts') or []))  # fmt: skip
        wakeup.wake_all(self._rpc_transport, {}, aggregate['uuid'])
        self.woken.append(aggregate['uuid'])
        return messaging.NotificationResult.HANDLED


def build_listener(
    notification_transport: messaging.Transport,
    rpc_transport: messaging.Transport,
    executor: str = 'threading',
) -> tuple[
    messaging.notify.NotificationServerBase, AggregateNotificationEndpoint
]:
    """The notification listener and its endpoint, not yet started."""
    endpoint = AggregateNotificationEndpoint(rpc_transport)
    listener = messaging.get_notification_listener(
        notification_transport,
        [messaging.Target(topic='versioned_notifications')],
        [endpoint],
        executor=executor,
        pool=LISTENER_POOL,
    )
    return listener, endpoint
