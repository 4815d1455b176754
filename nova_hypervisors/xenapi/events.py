"""One ``event.from`` loop per driver: task completions and VM changes.

A single watcher, on its own XenAPI session (outside the pool, so it never
holds a slot the periodic tasks need), blocks in ``event.from`` on the
``task`` and ``vm`` classes.  It

* wakes whoever waits for a task (``Async.`` calls): no sleep-polling, and
  any number of concurrent waits cost one connection;
* turns power-state changes of this host's instances into Nova lifecycle
  events, so a guest shut down from inside shows SHUTOFF within seconds.

The loop runs in a ``threading.Thread``: a green thread when nova-compute
runs under eventlet (threading is monkey patched), a native one otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
import http.client
import threading
import time
from typing import Any
import xmlrpc.client

from nova import exception
from oslo_log import log as logging
import XenAPI

from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import session as xsession

LOG = logging.getLogger(__name__)

#: How long one ``event.from`` call may block, in seconds.
EVENT_TIMEOUT = 30.0

_DONE = ('success', 'failure', 'cancelled')


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.record: dict | None = None


VmCallback = Callable[[str, str, dict | None], None]


class EventWatcher:
    """The driver's one ``event.from`` loop."""

    def __init__(
        self,
        session: xsession.XenAPISession,
        on_vm_event: VmCallback | None = None,
        on_vm_snapshot: Callable[[dict], None] | None = None,
        availability: Any = None,
    ) -> None:
        """``on_vm_event(ref, operation, record)`` gets every VM change;
        ``on_vm_snapshot({ref: record})`` the whole VM table whenever the
        watcher (re)starts from an empty token; ``availability`` (a
        :class:`.common.availability.ServiceAvailability`) hears when the
        master stops answering and when it answers again."""
        self._session = session
        self._on_vm_event = on_vm_event
        self._on_vm_snapshot = on_vm_snapshot
        self._availability = availability
        self._waiters: dict[str, _Waiter] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn = None
        # Our host's host_metrics: its ``live`` says whether the pool
        # still hears the host (xapi marks a dead member not live).
        self._metrics_ref: str | None = None
        self._host_live = True
        self.ready = threading.Event()

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name='xenapi-events', daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        conn = self._conn
        if conn is not None:
            # Unblock a pending event.from by closing its socket.
            try:
                sock = conn.transport._connection[1].sock
                if sock is not None:
                    sock.shutdown(2)
            except Exception:  # noqa: S110 - best effort on shutdown
                pass

    # -- task waiting --------------------------------------------------------

    def wait_for_task(self, task_ref: str, timeout: float) -> dict:
        """Block until the task ends; return its record.

        :raises exception.InstanceDeployFailure: never; callers decide.
        :raises TimeoutError: when it is still pending after ``timeout``.
        """
        waiter = _Waiter()
        with self._lock:
            self._waiters[task_ref] = waiter
        try:
            # Close the race with a task that ended before we registered.
            record = self._session.call_xenapi('task.get_record', task_ref)
            if record['status'] in _DONE:
                return record
            if not waiter.done.wait(timeout):
                raise TimeoutError(task_ref)
            if waiter.record is None:
                raise exception.NotFound(
                    message='XenAPI task vanished while awaited'
                )
            return waiter.record
        finally:
            with self._lock:
                self._waiters.pop(task_ref, None)

    # -- the loop ----------------------------------------------------------

    def _run(self) -> None:
        token = ''
        delay = 0.5
        while not self._stopped.is_set():
            try:
                if self._conn is None:
                    self._conn = self._session.open_dedicated()
                    token = ''
                    if self._metrics_ref is None:
                        self._metrics_ref = self._conn.request(
                            'host.get_metrics',
                            (self._session.host_ref,),
                            self._session.call_timeout,
                        )
                result = self._conn.request(
                    'event.from',
                    (['task', 'vm', 'host_metrics'], token, EVENT_TIMEOUT),
                    EVENT_TIMEOUT + self._session.call_timeout,
                )
                self._session.event_calls += 1
                first = token == ''
                token = result['token']
                self._dispatch(result.get('events', []), first)
                self.ready.set()
                delay = 0.5
                self._report_host()
            except XenAPI.Failure as failure:
                code = failure.details[0] if failure.details else ''
                if code == 'EVENT_FROM_TOKEN_PARSE_FAILURE':
                    # event.from's only token complaint (xen-api
                    # ocaml/xapi/xapi_event.ml, from): start over.
                    token = ''
                    continue
                LOG.warning(
                    'XenAPI event.from failed with %s; reconnecting', code
                )
                self._reconnect(
                    code in errors.MASTER_CHANGING
                    and len(failure.details) > 1
                    and failure.details[1]
                    or None
                )
                delay = self._pause(delay)
            except (
                OSError,
                http.client.HTTPException,
                xmlrpc.client.ProtocolError,
                xmlrpc.client.Fault,
                exception.NovaException,
            ) as exc:
                if self._stopped.is_set():
                    break
                LOG.warning(
                    'XenAPI pool master %s unreachable (%s); trying the '
                    'pool members',
                    self._session.master_address,
                    exc.__class__.__name__,
                )
                self._reconnect(None)
                if self._availability is not None:
                    self._availability.lost(
                        'XenServer pool master %s unreachable'
                        % self._session.master_address
                    )
                delay = self._pause(delay)
            except Exception:
                if self._stopped.is_set():
                    # stop() closed the connection under event.from; over
                    # TLS that is a ValueError from the closed socket.
                    break
                LOG.exception('XenAPI event watcher failed; restarting')
                self._conn = None
                delay = self._pause(delay)
        self._logout()

    def _report_host(self) -> None:
        """The master answers; but is our own host still in the pool?"""
        if self._availability is None:
            return
        if self._host_live:
            self._availability.back()
        else:
            # A master that lost a member's heartbeat marks it not live
            # (xen-api ocaml/xapi/db_gc.ml, check_host_liveness); VMs
            # cannot start there, so the scheduler must not pick it.
            self._availability.lost(
                'XenServer host %s is not live in its pool'
                % self._session.host_name
            )

    def _logout(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.request('session.logout', (), self._session.login_timeout)
        except Exception:  # noqa: S110 - the master may be gone already
            pass

    def _pause(self, delay: float) -> float:
        self._stopped.wait(delay)
        return min(delay * 2, 8.0)

    def _reconnect(self, hint: str | None) -> None:
        self._conn = None
        self._session.follow_master(hint)

    def _dispatch(self, events: list[dict], first: bool) -> None:
        vm_snapshot: dict[str, dict] = {}
        for event in events:
            cls = event.get('class')
            ref = event.get('ref')
            op = event.get('operation')
            record = event.get('snapshot') or None
            if cls == 'task':
                self._task_event(ref, op, record)
            elif cls == 'host_metrics':
                if ref == self._metrics_ref and record:
                    self._host_live = bool(record.get('live'))
            elif cls == 'vm':
                if first:
                    if op != 'del' and record:
                        vm_snapshot[ref] = record
                elif self._on_vm_event is not None:
                    try:
                        self._on_vm_event(ref, op, record)
                    except Exception:
                        LOG.exception('Handling a VM event failed')
        if first and self._on_vm_snapshot is not None:
            try:
                self._on_vm_snapshot(vm_snapshot)
            except Exception:
                LOG.exception('Handling the VM snapshot failed')

    def _task_event(self, ref: str, op: str, record: dict | None) -> None:
        with self._lock:
            waiter = self._waiters.get(ref)
        if waiter is None:
            return
        if op == 'del':
            waiter.record = None
            waiter.done.set()
        elif record and record.get('status') in _DONE:
            waiter.record = record
            waiter.done.set()


def parse_task_result(result: str):
    """A task's ``result`` holds an XML-RPC value as a string."""
    if not result:
        return ''
    text = result.strip()
    if not text.startswith('<value'):
        return text
    params, _ = xmlrpc.client.loads(
        '<methodResponse><params><param>%s</param></params>'
        '</methodResponse>' % text
    )
    return params[0]


def run_async(
    session: xsession.XenAPISession,
    watcher: EventWatcher,
    method: str,
    *args,
    timeout: float | None = None,
):
    """Run ``Async.<method>`` and await its task; destroy the task after.

    A task that outlives ``timeout`` is cancelled, and its failure surfaces
    as the matching Nova exception with the XenAPI code and arguments.  A
    task that ends refused for a passing reason (:data:`errors.TRANSIENT`:
    another operation on the VM, a busy or still booting toolstack, which
    did nothing) is run again after a back-off, as many times as an
    ordinary call is retried; permanent failures raise at once.
    """
    delay = session.retry_delay
    attempt = 0
    while True:
        attempt += 1
        task = session.call_xenapi('Async.' + method, *args)
        try:
            return await_task(session, watcher, task, method, timeout)
        except exception.NovaException as exc:
            code = getattr(exc, 'xenapi_code', None)
            if code not in errors.TRANSIENT or (
                attempt >= session.retry_attempts
            ):
                raise
            LOG.info(
                'XenAPI %s ended %s; running it again in %.1f s',
                method,
                code,
                delay,
            )
        time.sleep(delay)
        delay = min(delay * 2, session.retry_delay_max)


def await_task(
    session: xsession.XenAPISession,
    watcher: EventWatcher,
    task: str,
    method: str,
    timeout: float | None = None,
):
    """Await a task we own, return its result, destroy it in any case."""
    timeout = timeout or session.operation_timeout
    started = time.monotonic()
    try:
        try:
            record = watcher.wait_for_task(task, timeout)
        except TimeoutError:
            try:
                session.call_xenapi('task.cancel', task)
            except exception.NovaException:
                pass
            raise errors.XenAPIError(
                message='XenAPI %s did not finish within %d s'
                % (method, timeout)
            ) from None
        if record['status'] == 'success':
            return parse_task_result(record.get('result', ''))
        details = list(record.get('error_info') or ['TASK_CANCELLED', task])
        raise errors.translate(method, details, session.secrets)
    finally:
        LOG.debug('XenAPI %s took %.2f s', method, time.monotonic() - started)
        destroy_task(session, task)


def destroy_task(session: xsession.XenAPISession, task: str) -> None:
    """Destroy a task of ours; one failure is tried again, since a task
    left behind stays in the pool's task list until the toolstack
    restarts."""
    for attempt in (1, 2):
        try:
            session.call_xenapi('task.destroy', task)
            return
        except exception.NotFound:
            return
        except exception.NovaException:
            if attempt == 2:
                LOG.warning('Could not destroy XenAPI task %s', task)
