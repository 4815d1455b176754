"""One authenticated pyVmomi connection to vCenter, and nothing else.

The session owns the connection, the retry policy (re-login once when vCenter
says ``NotAuthenticated``; reconnect once on a dropped keep-alive
connection), the task waiter (PropertyCollector ``WaitForUpdatesEx``, never
sleep-polling) and bulk property reads.  Operations modules speak vSphere
through it and never touch pyVmomi's stub directly.
"""

from collections.abc import Callable
from collections.abc import Iterable
import contextlib
import dataclasses
import http.client
import logging
import socket
import ssl
import threading
import time
from typing import Any

from oslo_utils import versionutils
from pyVim import connect
from pyVmomi import vim
from pyVmomi import vmodl

LOG = logging.getLogger(__name__)

#: Transport failures after which a request is sent once more on a fresh
#: connection (a pooled keep-alive connection closed by the server).  Over
#: TLS, vCenter's default, a connection closed under a request surfaces as
#: an EOF of the TLS layer as often as a reset.
TRANSIENT_ERRORS = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
#: Calls that change nothing in vCenter (reads, and the property
#: collector's own bookkeeping): the only ones sent again after a dropped
#: connection.  Anything else (every *_Task, MakeDirectory, UnregisterVM,
#: ...) may have been carried out before the connection dropped; sending
#: it again could create a second VM or fail on what the first did.  Nor is
#: a long-poll (WaitForUpdatesEx) sent again on the same collector: the
#: server may have answered the lost request, and the change in it is gone
#: for a repeat (seen on vcsim); its callers start over with a new
#: collector, whose first answer is the whole current state.
SAFE_TO_REPEAT_PREFIXES = (
    'Retrieve',
    'ContinueRetrieve',
    'CancelRetrieve',
    'Find',
    'Query',
    'CancelWaitForUpdates',
    'CreateFilter',
    'CreateContainerView',
    'CreatePropertyCollector',
    'DestroyPropertyCollector',
    'DestroyView',
    'CurrentTime',
    'AcquireTicket',
)
#: Seconds a cancelled task gets to end before cleanup goes on.
CANCEL_GRACE_SECONDS = 30.0
TASK_DONE = ('success', 'error')
TASK_PATHS = ['info.state', 'info.error', 'info.result', 'info.descriptionId']
#: Longest single WaitForUpdatesEx long-poll; the deadline is checked between.
MAX_WAIT_SECONDS = 60


class ConfigurationError(Exception):
    """vCenter refused the configured settings; the message names the option.

    Raised by :meth:`VCenterSession.connect` and the node lookup; the driver
    turns it into ``nova.exception.InvalidConfiguration`` in ``init_host``.
    """


#: The oldest vCenter the driver supports.  6.7 is the oldest whose API has
#: what the driver reads (AcquireTicket "webmks", the hardware versions and
#: guest ids of current images); 6.5 and older reached the end of general
#: support in 2022.  NSX segments on VDS 7 need 7.0.
MIN_VCENTER_VERSION = '6.7.0'


def check_vcenter(about: Any, where: str) -> None:
    """A vCenter (not an ESXi host) of a supported version, or an error
    naming [vmware] host_ip.  ``about.apiType`` is ``VirtualCenter`` on
    vCenter and ``HostAgent`` on ESXi (vSphere API, AboutInfo)."""
    api_type = getattr(about, 'apiType', None)
    if api_type != 'VirtualCenter':
        raise ConfigurationError(
            f'{where} is {getattr(about, "fullName", None) or api_type}, not '
            'a vCenter Server; [vmware] host_ip must name the vCenter that '
            'manages the cluster'
        )
    version = getattr(about, 'version', '') or ''
    try:
        too_old = versionutils.convert_version_to_int(
            version
        ) < versionutils.convert_version_to_int(MIN_VCENTER_VERSION)
    except (ValueError, TypeError, AttributeError):
        too_old = False  # an unknown format: let the calls themselves tell
    if too_old:
        raise ConfigurationError(
            f'vCenter {where} is version {version}; this driver needs '
            f'{MIN_VCENTER_VERSION} or later ([vmware] host_ip)'
        )


class TaskFailed(Exception):
    """A vCenter task ended in error; keeps the vSphere fault."""

    def __init__(self, task_name: str, fault: Any, message: str) -> None:
        self.task_name = task_name
        self.fault = fault
        self.fault_name = type(fault).__name__ if fault else 'unknown'
        super().__init__(f'{task_name} failed: {self.fault_name}: {message}')


class TaskTimeout(Exception):
    """A vCenter task did not finish within [vmware] operation_timeout."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the session needs from ``[vmware]``, read once at init_host."""

    host: str
    port: int
    username: str
    password: str = dataclasses.field(repr=False)
    ca_file: str | None = None
    insecure: bool = False
    http_timeout: int = 300
    operation_timeout: int = 1800
    pool_size: int = 10

    @classmethod
    def from_conf(cls, group: Any) -> 'Settings':
        """Build from ``CONF.vmware`` (Nova's options plus ours)."""
        if not group.host_ip:
            raise ConfigurationError('[vmware] host_ip is not set')
        if not group.host_username or group.host_password is None:
            raise ConfigurationError(
                '[vmware] host_username/host_password are not set'
            )
        return cls(
            host=group.host_ip,
            port=group.host_port,
            username=group.host_username,
            password=group.host_password,
            ca_file=group.ca_file,
            insecure=group.insecure,
            http_timeout=group.http_timeout,
            operation_timeout=group.operation_timeout,
            pool_size=group.connection_pool_size,
        )


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verify vCenter's certificate unless the operator opted out.

    An explicit context is always passed to pyVmomi, which would otherwise
    skip verification silently for 'localhost'.  ``insecure`` is ignored
    when ``ca_file`` is set, as Nova documents for ``[vmware] insecure``
    (nova/conf/vmware.py): migrated configurations often carry both.
    """
    if settings.insecure and not settings.ca_file:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=settings.ca_file)


class VCenterSession:
    """A logged-in vCenter session shared by every operation of a driver."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._generation = 0
        self._stub = None
        self.content: Any = None

    # -- connection --------------------------------------------------------

    @property
    def generation(self) -> int:
        """Increases with every login; server-side objects of an older
        generation (views, property collectors) no longer exist."""
        return self._generation

    def connect(self) -> None:
        """Open the connection and log in; errors name the option to fix."""
        settings = self.settings
        where = f'{settings.host}:{settings.port}'
        try:
            self._stub = connect.SmartStubAdapter(
                host=settings.host,
                port=settings.port,
                sslContext=ssl_context(settings),
                httpConnectionTimeout=settings.http_timeout,
                poolSize=settings.pool_size,
            )
        except ssl.SSLError as error:
            raise ConfigurationError(
                f'TLS verification of vCenter {where} failed ({error}); '
                'check [vmware] ca_file (or set [vmware] insecure)'
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise ConfigurationError(
                f'cannot reach vCenter at {where} ({error}); '
                'check [vmware] host_ip and host_port'
            ) from None
        except Exception as error:
            raise ConfigurationError(
                f'no vSphere API at {where} ({error}); '
                'check [vmware] host_ip and host_port'
            ) from None
        service_instance = vim.ServiceInstance('ServiceInstance', self._stub)
        content = service_instance.RetrieveContent()
        check_vcenter(content.about, where)
        self.content = content
        self._login()

    def _login(self) -> None:
        try:
            self.content.sessionManager.Login(
                self.settings.username, self.settings.password
            )
        except vim.fault.InvalidLogin:
            raise ConfigurationError(
                f'vCenter {self.settings.host} refused the login of '
                f'{self.settings.username!r}; check [vmware] '
                'host_username/host_password'
            ) from None
        self._generation += 1
        LOG.info(
            'Logged in to vCenter %s as %s',
            self.settings.host,
            self.settings.username,
        )

    def relogin(self, seen_generation: int) -> None:
        """Log in again unless another thread already did (an expired
        session: NotAuthenticated, or the file interface's 401)."""
        with self._lock:
            if self._generation == seen_generation:
                LOG.info('vCenter session expired; logging in again')
                self._login()

    def cookie(self) -> str:
        """The session cookie, for vCenter's HTTP file interface."""
        raw = getattr(self._stub, 'cookie', '') or ''
        return raw.split(';', 1)[0]

    def disconnect(self) -> None:
        """Log out; the session is dead for vCenter too."""
        if self.content is None:
            return
        try:
            self.content.sessionManager.Logout()
        except Exception:  # noqa: BLE001 - best effort at shutdown
            LOG.debug('Logout from vCenter failed', exc_info=True)
        self._stub.DropConnections()
        self.content = None

    # -- the one retry policy ---------------------------------------------

    def moref(self, kind: type, value: str) -> Any:
        """A managed object reference of ``kind`` by its id (a moref a
        caller was handed as text, as Cinder hands a volume's VM)."""
        return kind(value, self._stub)

    def invoke(
        self, managed_object: Any, method: str, *args: Any, **kwargs: Any
    ) -> Any:
        """Call a vSphere method; re-login once on an expired session."""
        attempts_left = 2
        while True:
            generation = self._generation
            attempts_left -= 1
            try:
                return getattr(managed_object, method)(*args, **kwargs)
            except vim.fault.NotAuthenticated:
                if attempts_left <= 0:
                    raise
                self.relogin(generation)
            except TRANSIENT_ERRORS:
                if attempts_left <= 0 or not safe_to_repeat(method):
                    raise
                LOG.debug('vCenter dropped the connection; retrying once')
                self._stub.DropConnections()

    def invoke_repeatable(
        self, managed_object: Any, method: str, **kwargs: Any
    ) -> Any:
        """Like :meth:`invoke`, for a call the caller knows it may send
        twice (a delete whose 'not found' it takes as done): sent once
        more after a dropped connection, although it changes something."""
        try:
            return self.invoke(managed_object, method, **kwargs)
        except TRANSIENT_ERRORS:
            LOG.debug(
                'vCenter dropped the connection; sending %s again', method
            )
            self._stub.DropConnections()
            return self.invoke(managed_object, method, **kwargs)

    def call(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` (pyVmomi calls) under the retry policy."""
        return self.invoke(function, '__call__')

    # -- tasks ------------------------------------------------------------

    def wait_for_task(self, task: vim.Task) -> Any:
        """Wait for a task through the PropertyCollector; return its result.

        A task that is already finished costs one read.  Otherwise a private
        PropertyCollector long-polls ``info`` so the wait returns as soon as
        vCenter reports the end, without sleeping.
        """
        deadline = time.monotonic() + self.settings.operation_timeout
        info = self._task_info(task)
        if info.get('info.state') not in TASK_DONE:
            state = self._watch(
                task,
                vim.Task,
                'info.state',
                lambda value: value in TASK_DONE,
                deadline,
            )
            if state is None:
                self._cancel(task)
                raise TaskTimeout(
                    f'task {task._moId} did not finish within '
                    f'{self.settings.operation_timeout}s '
                    '([vmware] operation_timeout) and was cancelled'
                )
            info = self._task_info(task)
        if info.get('info.state') == 'error':
            error = info.get('info.error')
            fault = getattr(error, 'fault', None) or error
            message = getattr(error, 'localizedMessage', None) or getattr(
                fault, 'msg', ''
            )
            name = info.get('info.descriptionId') or str(task)
            raise TaskFailed(name, fault, message)
        return info.get('info.result')

    def _cancel(self, task: vim.Task) -> None:
        """Cancel a task that overran, and give it a moment to end.

        Cleanup after a timeout must not delete what a task still running
        is writing (a copy into a directory being removed).
        """
        try:
            self.invoke(task, 'CancelTask')
        except Exception:  # noqa: BLE001 - not cancelable, or done already
            LOG.debug('Task %s could not be cancelled', task, exc_info=True)
            return
        self._watch(
            task,
            vim.Task,
            'info.state',
            lambda value: value in TASK_DONE,
            time.monotonic() + CANCEL_GRACE_SECONDS,
        )

    def _task_info(self, task: vim.Task) -> dict:
        # Only these fields: vcsim reports non-entity objects (FileManager)
        # in info.entity, which pyVmomi refuses to deserialize.
        return self.properties([task], vim.Task, TASK_PATHS)[task]

    def wait_for_value(
        self, obj: Any, obj_type: type, path: str, value: Any, timeout: float
    ) -> bool:
        """Whether ``path`` of ``obj`` becomes ``value`` within timeout."""
        deadline = time.monotonic() + timeout
        current = self.properties([obj], obj_type, [path])[obj].get(path)
        if current == value:
            return True
        found = self._watch(
            obj, obj_type, path, lambda v: v == value, deadline
        )
        return found is not None

    def _watch(
        self,
        obj: Any,
        obj_type: type,
        path: str,
        done: Callable[[Any], bool],
        deadline: float,
    ) -> Any:
        """Long-poll one property until ``done(value)``; None on timeout.

        If the session is renewed meanwhile (the collector died with it),
        or the long-poll's connection drops, the watch starts over with a
        new collector.
        """
        while True:
            generation = self._generation
            try:
                return self._watch_once(obj, obj_type, path, done, deadline)
            except vmodl.fault.ManagedObjectNotFound:
                if self._generation == generation:
                    raise
            except TRANSIENT_ERRORS:
                # The long-poll's connection dropped: a new collector's
                # first answer carries the current value, so nothing the
                # lost answer said is missed.
                if time.monotonic() >= deadline:
                    raise
                LOG.debug('vCenter dropped a watch; watching anew')
                self._stub.DropConnections()

    def _watch_once(self, obj, obj_type, path, done, deadline) -> Any:
        generation = self._generation
        collector = self.invoke(
            self.content.propertyCollector, 'CreatePropertyCollector'
        )
        try:
            self.invoke(
                collector,
                'CreateFilter',
                object_filter([obj], obj_type, [path]),
                partialUpdates=False,
            )
            version = ''
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                options = vmodl.query.PropertyCollector.WaitOptions(
                    maxWaitSeconds=max(
                        1, int(min(remaining, MAX_WAIT_SECONDS))
                    )
                )
                update = self.invoke(
                    collector,
                    'WaitForUpdatesEx',
                    version=version,
                    options=options,
                )
                if update is None:
                    continue
                version = update.version
                for filter_update in update.filterSet:
                    for object_update in filter_update.objectSet:
                        for change in object_update.changeSet:
                            if change.name == path and done(change.val):
                                return change.val
        finally:
            if self._generation == generation:
                with contextlib.suppress(vmodl.fault.ManagedObjectNotFound):
                    self.invoke(collector, 'DestroyPropertyCollector')

    # -- bulk reads ---------------------------------------------------------

    def retrieve(self, specs: list) -> list:
        """RetrievePropertiesEx with continuation: every ObjectContent."""
        collector = self.content.propertyCollector
        options = vmodl.query.PropertyCollector.RetrieveOptions()
        result = self.invoke(
            collector, 'RetrievePropertiesEx', specSet=specs, options=options
        )
        objects = []
        while result is not None:
            objects.extend(result.objects)
            if not result.token:
                break
            result = self.invoke(
                collector, 'ContinueRetrievePropertiesEx', token=result.token
            )
        return objects

    def properties(
        self, objects: Iterable[Any], obj_type: type, paths: list[str]
    ) -> dict[Any, dict[str, Any]]:
        """Read ``paths`` of known objects in one round trip."""
        objects = list(objects)
        if not objects:
            return {}
        contents = self.retrieve([object_filter(objects, obj_type, paths)])
        return {content.obj: as_dict(content) for content in contents}

    def view_properties(
        self, container: Any, wanted: dict[type, list[str]]
    ) -> dict[Any, dict[str, Any]]:
        """Properties of every object of the wanted types under container.

        The container view lives only for this read; periodic reads use
        traversal specs instead (see :mod:`.inventory`), which cost one
        round trip and follow objects that move between clusters.
        """
        view = self.invoke(
            self.content.viewManager,
            'CreateContainerView',
            container=container,
            type=list(wanted),
            recursive=True,
        )
        try:
            contents = self.retrieve([view_filter(view, wanted)])
        finally:
            self.invoke(view, 'DestroyView')
        return {content.obj: as_dict(content) for content in contents}


# -- PropertyCollector spec builders ------------------------------------------


def object_filter(objects: list, obj_type: type, paths: list[str]) -> Any:
    pc = vmodl.query.PropertyCollector
    return pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=obj) for obj in objects],
        propSet=[pc.PropertySpec(type=obj_type, pathSet=paths)],
    )


def view_filter(view: Any, wanted: dict[type, list[str]]) -> Any:
    pc = vmodl.query.PropertyCollector
    traverse = pc.TraversalSpec(
        name='view', path='view', skip=False, type=vim.view.ContainerView
    )
    return pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
        propSet=[
            pc.PropertySpec(type=obj_type, pathSet=paths)
            for obj_type, paths in wanted.items()
        ],
    )


def as_dict(content: Any) -> dict[str, Any]:
    """ObjectContent as {path: value}; unset properties are absent."""
    return {prop.name: prop.val for prop in content.propSet or ()}


def safe_to_repeat(method: str) -> bool:
    """Whether ``method`` may be sent again after a dropped connection."""
    return method.startswith(SAFE_TO_REPEAT_PREFIXES) and not method.endswith(
        '_Task'
    )


def is_unreachable(error: BaseException) -> bool:
    """Whether an error means vCenter could not be reached at all."""
    return isinstance(error, (OSError, socket.timeout, TRANSIENT_ERRORS))
