"""The pool machinery one XenAPI nova-compute runs beside its driver.

A :class:`~.reconcile.ResourcePool` reconciling on its interval, and an RPC
server on our own topic through which the pool agent wakes it at once.
"""

from __future__ import annotations

from nova import rpc
from oslo_log import log as logging

from nova_hypervisors.xenapi.pool import reconcile
from nova_hypervisors.xenapi.pool import wakeup

LOG = logging.getLogger(__name__)


class PoolService:
    """Started by ``init_host``, stopped by ``cleanup_host``."""

    def __init__(self, session, compute_host: str, settings) -> None:
        self.pool = reconcile.ResourcePool(
            session,
            compute_host,
            settings.connection_username,
            settings.connection_password or '',
            use_join_force=settings.use_join_force,
            interval=settings.pool_reconcile_interval,
        )
        self._compute_host = compute_host
        self._server = None

    def start(self) -> None:
        self.pool.start()
        if rpc.TRANSPORT is None:
            LOG.warning(
                'No RPC transport: the pool agent cannot wake the '
                'reconciliation, which runs on its interval only'
            )
            return  # fmt: skip
        self._server = rpc.get_server(
            wakeup.server_target(self._compute_host),
            [wakeup.WakeupEndpoint(self.pool.wake)],
        )
        self._server.start()

    def stop(self) -> None:
        self.pool.stop()
        if self._server is not None:
            self._server.stop()
            self._server.wait()
            self._server = None
