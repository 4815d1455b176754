"""Fault injection, for reliability tests of XenAPI clients.

From Python (``sim.faults``) or over the loopback control endpoint:

* ``fail_next(method, count, error_list, after)``: after ``after`` more
  calls of ``method`` that pass, the next ``count`` ones (``'VM.start'``;
  an ``Async.`` call fails its task) fail with ``error_list``
  (``['HOST_OFFLINE', 'OpaqueRef:...']``), unchecked;
* ``calls(method)``: how many calls of ``method`` the pools have had;
* ``start_trace()`` / ``stop_trace()``: the methods called meanwhile, in
  order, so a test can trace an operation, then fail each of its calls in
  turn (``fail_next(method, after=<earlier calls of it>)``);
* ``latency(method_or_None, seconds)``: every call of ``method`` (or every
  call) takes that much longer; VM operations spend it while their
  ``current_operations`` show them, so concurrent calls meet
  ``OTHER_OPERATION_IN_PROGRESS``; ``seconds=0`` removes it;
* ``expire_sessions()``: every session of every pool becomes invalid;
* ``expire_sessions_on(method)``: the same, at the next call of ``method``
  (an XenAPI method, or the HTTP handlers ``import_raw_vdi`` and
  ``export_raw_vdi``), just before xapi checks that call's session;
* ``stop_host(name)`` / ``start_host(name)``: a host stops answering
  (connections refused, open connections cut) and comes back;
* ``kill_master()``: the master of the first host's pool dies;
* ``clear()``: no more injected failures or latency;
* ``sessions_seen()``: every session ref a call has carried so far, so a
  test can check that none of them reached a log;
* ``tasks_seen()``: the methods called as ``Async.`` tasks so far.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from nova_hypervisors.simulators.xapi.errors import XapiFailure

DEFAULT_ERROR = ('INTERNAL_ERROR', 'injected by the simulator')


class Faults:
    """Failures and delays the dispatcher consults before each call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, collections.deque] = {}
        self._latency: dict[str | None, float] = {}
        self._calls: collections.Counter = collections.Counter()
        self._expire_on: set[str] = set()
        self._trace: list[str] | None = None
        self._sessions: set[str] = set()
        self._tasks: set[str] = set()
        self._controller: Any = None

    def bind(self, controller: Any) -> None:
        """Attach the simulator that carries out host-level faults."""
        self._controller = controller

    # -- per-call faults ---------------------------------------------------

    def fail_next(
        self,
        method: str,
        count: int = 1,
        error_list: list[str] | tuple[str, ...] | None = None,
        after: int = 0,
    ) -> None:
        if count < 1:
            raise ValueError('count must be at least 1')
        if after < 0:
            raise ValueError('after cannot be negative')
        error = list(error_list or DEFAULT_ERROR)
        if not error:
            raise ValueError('error_list needs at least an error code')
        with self._lock:
            queue = self._failures.setdefault(method, collections.deque())
            # None: a call that passes.
            queue.extend([None] * after + [error] * count)

    def expire_sessions_on(self, method: str) -> None:
        with self._lock:
            self._expire_on.add(method)

    def start_trace(self) -> None:
        with self._lock:
            self._trace = []

    def stop_trace(self) -> list[str]:
        with self._lock:
            trace, self._trace = self._trace or [], None
            return trace

    def saw_session(self, session: str) -> None:
        with self._lock:
            self._sessions.add(session)

    def saw_task(self, method: str) -> None:
        with self._lock:
            self._tasks.add(method)

    def tasks_seen(self) -> set[str]:
        with self._lock:
            return set(self._tasks)

    def sessions_seen(self) -> set[str]:
        with self._lock:
            return set(self._sessions)

    def calls(self, method: str) -> int:
        """Calls of ``method`` so far (failed ones included)."""
        with self._lock:
            return self._calls[method]

    def latency(self, method: str | None, seconds: float) -> None:
        if seconds < 0:
            raise ValueError('latency cannot be negative')
        with self._lock:
            if seconds == 0:
                self._latency.pop(method, None)
            else:
                self._latency[method] = float(seconds)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._latency.clear()
            self._expire_on.clear()

    def before_call(self, endpoint, method: str) -> float:
        """Expire sessions or raise an injected failure for ``method``, or
        return its latency."""
        error = None
        with self._lock:
            self._calls[method] += 1
            if self._trace is not None:
                self._trace.append(method)
            expire = method in self._expire_on
            self._expire_on.discard(method)
            queue = self._failures.get(method)
            if queue:
                error = queue.popleft()
                if not queue:
                    del self._failures[method]
            latency = self._latency.get(method, 0.0) + self._latency.get(
                None, 0.0
            )
        if expire:
            self.expire_sessions()
        if error is not None:
            raise XapiFailure.raw(error)
        return latency

    # -- host-level faults -------------------------------------------------

    def expire_sessions(self) -> int:
        return self._controller.expire_sessions()

    def stop_host(self, name: str) -> None:
        self._controller.stop_host(name)

    def start_host(self, name: str) -> None:
        self._controller.start_host(name)

    def kill_master(self):
        return self._controller.kill_master()

    def restart_host(
        self, name: str, seconds: float, grace: float = 0.0
    ) -> None:
        """The host goes away for ``seconds`` (``grace`` seconds from
        now), then answers again."""
        if self._controller is not None and seconds > 0:
            self._controller.restart_host(name, seconds, grace)
