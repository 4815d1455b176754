"""XenAPISession: connection, retry and task waiting, and nothing else.

The session talks to the **pool master** (all XenAPI calls go there) while
remembering which host *this* nova-compute manages (``connection_url``):
that host scopes ``VM.start_on``, ``resident_on`` and resource reports.

* ``connection_concurrent`` logged-in XenAPI sessions are pooled, so that a
  long call on one never starves the periodic tasks.
* Every pool member's address is remembered at login, so when the master
  moves (``pool.designate_new_master``, an emergency transition) the
  session finds the new one without a restart.
* One retry policy: a call refused because something else is busy, or
  because the master is moving, was not performed and is repeated; after a
  broken connection only calls that are safe to repeat are.
* Long operations run as ``Async.`` calls whose tasks are awaited through
  ``event.from`` (see :mod:`tasks`), never by sleep-polling.
* Session refs are secrets (whoever holds one is root on the pool): they
  never appear in a log line or an exception message.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import http.client
import queue
import socket
import ssl
import threading
import time
from typing import Any
import urllib.parse
import xmlrpc.client

from nova import exception
from oslo_log import log as oslo_logging
import XenAPI

from nova_hypervisors.xenapi import errors

LOG = oslo_logging.getLogger(__name__)

ORIGINATOR = 'nova-compute'
API_VERSION = '1.0'

# Calls that read, or set a field to a given value: repeating them after a
# broken connection cannot do anything twice.
_SAFE_MESSAGE_PREFIXES = (
    'get_',
    'set_',
    'add_to_',
    'remove_from_',
)
_SAFE_METHODS = frozenset({'event.from', 'task.cancel', 'task.destroy'})

# Errors that mean the connection broke or the host did not answer.
_CONNECTION_ERRORS = (
    OSError,
    http.client.HTTPException,
    xmlrpc.client.ProtocolError,
)


def is_safe_to_repeat(method: str) -> bool:
    """Whether ``method`` may be sent again after a broken connection."""
    if method in _SAFE_METHODS:
        return True
    if method.startswith('Async.'):
        return False
    message = method.rpartition('.')[2]
    return message.startswith(_SAFE_MESSAGE_PREFIXES)


class _Transport(xmlrpc.client.Transport):
    """XML-RPC over HTTP with a socket timeout we can change per call."""

    timeout: float | None = None

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        if conn.sock is not None:
            conn.sock.settimeout(self.timeout)
        return conn


class _SafeTransport(xmlrpc.client.SafeTransport):
    """XML-RPC over HTTPS with a socket timeout we can change per call."""

    timeout: float | None = None

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        if conn.sock is not None:
            conn.sock.settimeout(self.timeout)
        return conn


class _Connection:
    """One logged-in XenAPI session to one address."""

    def __init__(
        self,
        client: XenAPI.Session,
        transport,
        address: str,
        generation: int,
        remember: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.transport = transport
        self.address = address
        self.generation = generation
        self._remember = remember

    @property
    def handle(self) -> str:
        return self.client._session or ''

    def request(self, method: str, args: tuple, timeout: float) -> Any:
        self.transport.timeout = timeout
        try:
            return self.client.xenapi_request(method, args)
        finally:
            # XenAPI's client logs in again by itself on SESSION_INVALID
            # (XenAPI.py, Session.xenapi_request): that new session ref is
            # a secret too, to be scrubbed from logs and faults.
            if self._remember is not None:
                self._remember(self.handle)


class XenAPISession:
    """The pool master, reached on behalf of one XenServer host."""

    #: How often a busy or moving-master failure is retried.
    retry_attempts = 6
    #: First back-off delay in seconds; doubles on each attempt.
    retry_delay = 0.5
    #: Longest single back-off delay in seconds.
    retry_delay_max = 8.0
    #: Socket timeout of an ordinary (short) XenAPI call, in seconds.
    call_timeout = 120.0

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        concurrent: int = 5,
        login_timeout: float = 10,
        operation_timeout: float = 1800,
        ca_file: str | None = None,
        insecure: bool = False,
    ) -> None:
        """Remember the settings; nothing here touches the network."""
        parsed = urllib.parse.urlparse(url or '')
        if parsed.scheme not in ('http', 'https') or not parsed.hostname:
            raise exception.InvalidConfiguration(
                message='[xenserver] connection_url %r is not an http(s) URL '
                'of a XenServer host' % url
            )
        self.url = url
        self.scheme = parsed.scheme
        self.port = parsed.port
        self.host_address = parsed.hostname
        self._username = username
        self._password = password
        self.concurrent = concurrent
        self.login_timeout = float(login_timeout)
        self.operation_timeout = float(operation_timeout)
        self._ssl_context = self._make_ssl_context(ca_file, insecure)

        self.master_address: str | None = None
        self.pool_addresses: list[str] = []
        self.host_ref: str | None = None
        self.host_uuid: str | None = None
        self.host_name: str | None = None
        self.pool_ref: str | None = None

        self._lock = threading.Lock()
        self._generation = 0
        self._idle: queue.LifoQueue[_Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(concurrent)
        self._handles: set[str] = set()
        #: XenAPI calls made (logins included), the watcher's excepted.
        self.call_count = 0
        #: ``event.from`` calls of the event watcher.
        self.event_calls = 0

    # -- settings ---------------------------------------------------------

    @staticmethod
    def _make_ssl_context(ca_file, insecure) -> ssl.SSLContext:
        """Verification is on unless ``insecure`` and no ``ca_file``.

        As with Nova's ``[vmware]`` options, ``insecure`` is ignored when
        ``ca_file`` is set: a migrated nova.conf often carries both.
        """
        if ca_file:
            return ssl.create_default_context(cafile=ca_file)
        if insecure:
            return ssl._create_unverified_context()
        return ssl.create_default_context()

    def _url_for(self, address: str) -> str:
        host = '[%s]' % address if ':' in address else address
        if self.port:
            host = '%s:%d' % (host, self.port)
        return '%s://%s' % (self.scheme, host)

    @property
    def master_url(self) -> str:
        return self._url_for(self.master_address or self.host_address)

    # -- login and master discovery --------------------------------------

    def connect(self) -> None:
        """Log in, follow the master and find this compute's own host.

        Failures name the option an operator must fix.
        """
        try:
            conn = self._login_following_master(self.host_address)
        except errors.XenAPIError as exc:
            raise exception.InvalidConfiguration(message=str(exc)) from exc
        self._idle.put(conn)
        self._learn_pool()

    def _new_client(self, address: str):
        if self.scheme == 'https':
            transport = _SafeTransport(context=self._ssl_context)
        else:
            transport = _Transport()
        transport.timeout = self.login_timeout
        client = XenAPI.Session(self._url_for(address), transport=transport)
        return client, transport

    def _login(self, address: str) -> _Connection:
        """One login to one address; HOST_IS_SLAVE surfaces as Failure."""
        client, transport = self._new_client(address)
        try:
            client.login_with_password(
                self._username, self._password, API_VERSION, ORIGINATOR
            )
        except XenAPI.Failure as failure:
            code = failure.details[0] if failure.details else ''
            if code in ('SESSION_AUTHENTICATION_FAILED', 'AUTH_FAILED'):
                raise exception.InvalidConfiguration(
                    message='XenAPI refused the login of user %r at %s (%s): '
                    'fix [xenserver] connection_username and '
                    'connection_password'
                    % (self._username, self._url_for(address), code)
                ) from None
            raise
        except ssl.SSLCertVerificationError as exc:
            # Stock hosts serve a self-signed certificate (xen-api
            # ocaml/gencert/selfcert.ml), which no system store trusts.
            raise exception.InvalidConfiguration(
                message='The TLS certificate of the XenServer host at %s '
                'failed verification (%s): set [xenserver] ca_file to the '
                'CA that signed it (or to the host certificate itself), or '
                'set [xenserver] insecure = true to skip verification'
                % (self._url_for(address), exc.verify_message)
            ) from None
        except ssl.SSLError as exc:
            raise exception.HypervisorUnavailable(
                message='TLS with the XenServer host at %s failed (%s): '
                'check that [xenserver] connection_url names the https '
                'port' % (self._url_for(address), exc.reason)
            ) from None
        except _CONNECTION_ERRORS as exc:
            if address != self.host_address:
                # The pool master we learned, not the configured URL: the
                # operator's setting is fine, the master is what is gone.
                raise exception.HypervisorUnavailable(
                    message='XenServer pool master %s unreachable (%s); '
                    'trying the pool members %s'
                    % (
                        address,
                        exc.__class__.__name__,
                        ', '.join(self.pool_addresses) or self.host_address,
                    )
                ) from None
            raise exception.HypervisorUnavailable(
                message='Cannot reach the XenServer host at %s (%s): check '
                '[xenserver] connection_url, and that the host is up'
                % (self._url_for(address), exc.__class__.__name__)
            ) from None
        self.call_count += 1
        conn = _Connection(
            client, transport, address, self._generation, self._remember
        )
        self._remember(conn.handle)
        return conn

    def _remember(self, handle: str) -> None:
        """Keep every session ref ever issued to us, to scrub it."""
        if handle and handle not in self._handles:
            with self._lock:
                self._handles.add(handle)

    def _login_following_master(self, address: str) -> _Connection:
        """Log in at ``address``, or at the master it names."""
        try:
            conn = self._login(address)
        except XenAPI.Failure as failure:
            details = failure.details
            if details and details[0] == 'HOST_IS_SLAVE' and len(details) > 1:
                master = str(details[1])
                LOG.info(
                    'XenServer host %s is a pool member; its master is %s',
                    address,
                    master,
                )
                conn = self._login(master)
                address = master
            else:
                raise errors.translate(
                    'session.login_with_password', details, self._handles
                ) from None
        self.master_address = address
        return conn

    def _learn_pool(self) -> None:
        """Remember every pool member's address and find our own host."""
        hosts = self.call_xenapi('host.get_all_records')
        pools = self.call_xenapi('pool.get_all_records')
        self.pool_ref = next(iter(pools), None)
        self.pool_addresses = sorted(
            {rec['address'] for rec in hosts.values() if rec.get('address')}
        )
        wanted = {self.host_address}
        with contextlib.suppress(OSError):
            wanted.add(socket.gethostbyname(self.host_address))
        for ref, rec in hosts.items():
            names = {
                rec.get('address'),
                rec.get('hostname'),
                rec.get('name_label'),
            }
            if wanted & names:
                self.host_ref = ref
                self.host_uuid = rec['uuid']
                self.host_name = rec.get('hostname') or rec['name_label']
                break
        else:
            raise exception.InvalidConfiguration(
                message='No member of the XenServer pool of master %s has the '
                'address %s: fix [xenserver] connection_url'
                % (self.master_address, self.host_address)
            )

    def _find_new_master(self, hint: str | None = None) -> None:
        """After the master moved: log in wherever the master now is.

        A master counts only if its pool still has our host: after an
        eject, the old master answers logins but no longer knows us.
        """
        with self._lock:
            generation = self._generation
        candidates = [a for a in (hint, self.master_address) if a]
        candidates += [
            a
            for a in [*self.pool_addresses, self.host_address]
            if a not in candidates
        ]
        for address in candidates:
            try:
                conn = self._login_following_master(address)
            except (
                errors.XenAPIError,
                exception.HypervisorUnavailable,
                exception.NovaException,
                XenAPI.Failure,
            ):
                continue
            with self._lock:
                if self._generation == generation:
                    self._generation += 1
                    conn.generation = self._generation
                    self._drain_idle()
                else:
                    conn.generation = self._generation
            self._idle.put(conn)
            try:
                self._learn_pool()
            except exception.NovaException:
                LOG.info(
                    'XenServer host %s is not in the pool of %s',
                    self.host_address,
                    self.master_address,
                )
                with self._lock:
                    self._generation += 1
                    self._drain_idle()
                    generation = self._generation
                continue
            LOG.info('XenServer pool master is now %s', self.master_address)
            return
        raise exception.HypervisorUnavailable(
            message='No XenServer pool master of host %s answers at any of %s'
            % (self.host_address, ', '.join(candidates))
        )

    def forget_pool(self) -> None:
        """Our host left its pool (``pool.eject``): only it is left to try.

        xapi resets an ejected host and reboots it (xen-api
        ocaml/xapi/xapi_pool.ml, ``eject_self``); it comes back as the
        standalone master of a fresh pool, with a new host record.
        """
        with self._lock:
            self._generation += 1
            self._drain_idle()
            self.master_address = None
            self.pool_addresses = []
            self.pool_ref = None

    def await_standalone(self, timeout: float, poll: float = 2.0) -> None:
        """Wait until our host answers as a master (after an eject)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._find_new_master(self.host_address)
            except exception.HypervisorUnavailable:
                pass
            else:
                if self.master_address == self.host_address:
                    return
            if time.monotonic() >= deadline:
                raise exception.HypervisorUnavailable(
                    message='XenServer host %s did not come back as a '
                    'standalone host within %d s of leaving its pool'
                    % (self.host_address, timeout)
                )
            time.sleep(poll)

    def member_of(self, master_address: str) -> bool:
        """Whether the pool of ``master_address`` has our host now."""
        try:
            self._find_new_master(master_address)
        except exception.HypervisorUnavailable:
            return False
        return self.master_address == master_address

    def _drain_idle(self) -> None:
        while True:
            try:
                self._idle.get_nowait()
            except queue.Empty:
                return

    # -- the pool of sessions --------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[_Connection]:
        """Borrow one logged-in session; at most ``concurrent`` at once."""
        self._slots.acquire()
        conn = None
        try:
            while conn is None:
                try:
                    candidate = self._idle.get_nowait()
                except queue.Empty:
                    candidate = self._login(
                        self.master_address or self.host_address
                    )
                if candidate.generation == self._generation:
                    conn = candidate
            try:
                yield conn
            except XenAPI.Failure:
                # An answer: the connection is fine.
                self._idle.put(conn)
                raise
            except BaseException:
                self._drop(conn)
                raise
            self._idle.put(conn)
        finally:
            self._slots.release()

    def _drop(self, conn: _Connection) -> None:
        """Forget a connection that broke, logging its session out.

        xapi keeps a session until it is logged out or idles out, and
        caps the sessions one originator may hold: dropped ones would pile
        up.  The logout runs aside, bounded by ``login_timeout``, so a
        master that died costs the caller nothing.
        """

        def logout() -> None:
            with contextlib.suppress(Exception):
                conn.transport.timeout = self.login_timeout
                conn.client.xenapi.session.logout()

        threading.Thread(
            target=logout, name='xenapi-logout', daemon=True
        ).start()

    @property
    def handle(self) -> str:
        """A session ref, for HTTP handlers (import/export)."""
        with self._connection() as conn:
            return conn.handle

    def valid_handle(self) -> str:
        """A session ref xapi accepted just now, for an HTTP handler.

        xapi checks an HTTP handler's ``session_id`` itself and answers 401
        for one that expired (``Xapi_http.with_context``); nothing logs in
        again there.  A cheap call first does: the client logs in again on
        SESSION_INVALID, and the ref it then holds is valid.
        """
        with self._connection() as conn:
            self.call_count += 1
            conn.request('pool.get_all', (), self.call_timeout)
            return conn.handle

    @property
    def secrets(self) -> set[str]:
        return set(self._handles)

    # -- calls ------------------------------------------------------------

    def call_xenapi(
        self, method: str, *args: Any, timeout: float | None = None
    ) -> Any:
        """Call ``method`` on the master under the one retry policy."""
        delay = self.retry_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._connection() as conn:
                    self.call_count += 1
                    return conn.request(
                        method, args, timeout or self.call_timeout
                    )
            except XenAPI.Failure as failure:
                details = list(failure.details or ['UNKNOWN'])
                code = details[0]
                if attempt >= self.retry_attempts or code not in (
                    errors.BUSY | errors.MASTER_CHANGING
                ):
                    raise errors.translate(
                        method, details, self._handles
                    ) from None
                LOG.debug('XenAPI %s answered %s; retrying', method, code)
                if code in errors.MASTER_CHANGING:
                    hint = details[1] if len(details) > 1 else None
                    self._try_find_master(hint)
            except xmlrpc.client.Fault as fault:
                # The client raises Fault when re-login after
                # SESSION_INVALID fails: treat as a moving master.
                if attempt >= self.retry_attempts:
                    raise errors.XenAPIError(
                        message=errors.scrub(
                            'XenAPI fault %s in %s'
                            % (fault.faultString, method),
                            self._handles,
                        )
                    ) from None
                self._try_find_master(None)
            except exception.HypervisorUnavailable as exc:
                # No session could be opened to the master we know.  xapi
                # elects no new master by itself (without HA an operator
                # runs pool.emergency_transition_to_master on a member),
                # so the call path looks among the members it remembers
                # once, rather than waiting for the event watcher.
                if attempt > 1 or not self.pool_addresses:
                    raise
                try:
                    self._find_new_master(None)
                except exception.HypervisorUnavailable:
                    raise exc from None
                continue
            except _CONNECTION_ERRORS as exc:
                refused = isinstance(exc, ConnectionRefusedError)
                if attempt >= self.retry_attempts or not (
                    refused or is_safe_to_repeat(method)
                ):
                    raise exception.HypervisorUnavailable(
                        message='XenAPI %s to %s failed: %s'
                        % (method, self.master_address, exc.__class__.__name__)
                    ) from None
                LOG.debug(
                    'XenAPI %s: connection to %s broke (%s); retrying',
                    method,
                    self.master_address,
                    exc.__class__.__name__,
                )
                self._try_find_master(None)
            time.sleep(delay)
            delay = min(delay * 2, self.retry_delay_max)

    def _try_find_master(self, hint: str | None) -> None:
        with contextlib.suppress(exception.HypervisorUnavailable):
            self._find_new_master(hint)

    def follow_master(self, hint: str | None = None) -> None:
        """The master seems gone or moved: look for it (best effort)."""
        self._try_find_master(hint)

    def open_dedicated(self) -> _Connection:
        """A session outside the pool, for a caller that blocks long
        (the event watcher's ``event.from``)."""
        return self._login(self.master_address or self.host_address)

    def get_rec(self, cls: str, ref: str) -> dict | None:
        """A record, or None when the object is gone."""
        try:
            return self.call_xenapi('%s.get_record' % cls, ref)
        except exception.NotFound:
            return None

    def get_all_records_where(self, cls: str, expr: str) -> dict:
        return self.call_xenapi('%s.get_all_records_where' % cls, expr)

    def close(self) -> None:
        """Log every pooled session out (best effort)."""
        self._drain_idle_logout()

    def _drain_idle_logout(self) -> None:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):
                conn.transport.timeout = self.login_timeout
                conn.client.xenapi.session.logout()

    # -- HTTP handlers (disks) ------------------------------------------

    def http_connection(
        self, timeout: float | None = None, address: str | None = None
    ) -> http.client.HTTPConnection:
        """A plain HTTP(S) connection for VDI transfers.

        To ``address`` (a pool member holding the SR), or to the master.
        """
        address = address or self.master_address or self.host_address
        if self.scheme == 'https':
            return http.client.HTTPSConnection(
                address,
                self.port,
                timeout=timeout or self.call_timeout,
                context=self._ssl_context,
            )
        return http.client.HTTPConnection(
            address, self.port, timeout=timeout or self.call_timeout
        )
