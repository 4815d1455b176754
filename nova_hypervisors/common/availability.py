"""A compute whose hypervisor is out of reach takes itself out of scheduling.

When the driver has lost its hypervisor (the XenServer pool master, or
vCenter) for longer than a grace period, the compute service is disabled
with a reason that says why and starts with ``AUTO:``; the scheduler's
ComputeFilter then skips it.  When the hypervisor answers again, the
service is enabled again, but only if the driver disabled it: a service an
operator disabled stays disabled.  The same convention as Nova's libvirt
driver for a lost connection (``LibvirtDriver._set_host_enabled``,
``DISABLE_PREFIX``), so operators and tools read it the same way.
"""

from __future__ import annotations

import threading
import time

from nova import context as nova_context
from nova import exception
from nova import objects
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: What starts the reason of a service this module disabled.
PREFIX = 'AUTO: '


class ServiceAvailability:
    """Disables and enables one compute service as its hypervisor goes."""

    def __init__(self, host: str, grace_seconds: float) -> None:
        self._host = host
        self._grace = grace_seconds
        self._lock = threading.Lock()
        self._lost_since: float | None = None
        self._disabled = False

    def lost(self, why: str) -> None:
        """The hypervisor did not answer; past the grace, say so to Nova."""
        with self._lock:
            now = time.monotonic()
            if self._lost_since is None:
                self._lost_since = now
            if self._disabled or now - self._lost_since < self._grace:
                return
            self._disabled = True
        LOG.warning(
            'Hypervisor unreachable for %d s (%s): disabling compute '
            'service %s until it answers again',
            self._grace,
            why,
            self._host,
        )
        self._set(disabled=True, reason=PREFIX + why)

    def back(self) -> None:
        """The hypervisor answered: enable the service if we disabled it."""
        with self._lock:
            self._lost_since = None
            if not self._disabled:
                return
            self._disabled = False
        LOG.info(
            'Hypervisor answers again: enabling compute service %s',
            self._host,
        )
        self._set(disabled=False, reason=None)

    def _set(self, disabled: bool, reason: str | None) -> None:
        try:
            service = objects.Service.get_by_compute_host(
                nova_context.get_admin_context(), self._host
            )
        except exception.NotFound:
            LOG.debug('No service record for %s yet', self._host)
            return
        except Exception:  # noqa: BLE001 - the watcher must go on
            LOG.warning('Could not read service %s', self._host, exc_info=True)
            return
        if service.disabled == disabled:
            return
        if not disabled and not (service.disabled_reason or '').startswith(
            PREFIX
        ):
            return  # an operator's decision, not ours
        service.disabled = disabled
        service.disabled_reason = reason
        try:
            service.save()
        except Exception:  # noqa: BLE001 - the watcher must go on
            LOG.warning(
                'Could not update service %s', self._host, exc_info=True
            )
