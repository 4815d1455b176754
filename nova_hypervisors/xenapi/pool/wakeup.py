"""Waking the pool reconciliation of every XenAPI nova-compute over RPC.

The message carries only the aggregate's uuid: credentials come from each
compute's own nova.conf and never travel through RPC or notifications.
"""

from collections.abc import Callable

import oslo_messaging as messaging

#: Our own topic on Nova's RPC transport; every XenAPI compute listens.
TOPIC = 'nova_hypervisors_pool'
VERSION = '1.0'


class WakeupEndpoint:
    """RPC endpoint inside nova-compute: ``reconcile`` wakes the pool."""

    target = messaging.Target(version=VERSION)

    def __init__(self, wake: Callable[[str | None], None]):
        self._wake = wake

    def reconcile(self, context, aggregate_uuid: str | None = None) -> None:
        self._wake(aggregate_uuid)


def server_target(host: str) -> messaging.Target:
    """Where one compute listens: its own server on the shared topic."""
    return messaging.Target(topic=TOPIC, server=host, version=VERSION)


def wake_all(
    transport: messaging.Transport, context: dict, aggregate_uuid: str
) -> None:
    """Fan a wake-up out to every XenAPI compute (fire and forget)."""
    client = messaging.get_rpc_client(
        transport, messaging.Target(topic=TOPIC, fanout=True, version=VERSION)
    )
    client.cast(context, 'reconcile', aggregate_uuid=aggregate_uuid)
