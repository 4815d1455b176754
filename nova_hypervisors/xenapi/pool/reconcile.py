"""ResourcePool: keeps this compute's XenServer host in its aggregate's pool.

Each XenAPI nova-compute runs one.  It reads its hypervisor_pool aggregate
through Nova's objects (which go through the conductor), looks at its own
host's pool with two XenAPI calls, lets :func:`membership.decide` pick the
one next step for its *own* host, and carries it out.  Doing only its own
part is what makes the reconciliation idempotent and safe when every
compute of the pool runs it at the same time; the aggregate's metadata is
the record they share.  Credentials come from this compute's nova.conf:
``pool.join`` uses ``[xenserver] connection_username/password``, which a
pool's members share.
"""

from __future__ import annotations

import contextlib
import threading
import time

from nova import context as nova_context
from nova import exception
from nova import objects
from oslo_log import log as logging

from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi.pool import membership
from nova_hypervisors.xenapi.pool.membership import Action

LOG = logging.getLogger(__name__)

#: Seconds between two looks at a running pool.join (see _await_join).
JOIN_POLL_SECONDS = 1.0


class ResourcePool:
    """The pool membership of one compute's XenServer host."""

    def __init__(
        self,
        session,
        compute_host: str,
        username: str,
        password: str,
        use_join_force: bool = True,
        interval: float = 10.0,
    ) -> None:
        self._session = session
        self._compute = compute_host
        self._username = username
        self._password = password
        self._join_method = (
            'pool.join_force' if use_join_force else 'pool.join'
        )
        self._interval = interval
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: The last decision taken, for status and tests.
        self.last_decision: membership.Decision | None = None

    # -- running ---------------------------------------------------------

    def start(self) -> None:
        """Reconcile now and then every ``interval`` seconds, or on wake."""
        self._thread = threading.Thread(
            target=self._run, name='xenapi-pool-reconcile', daemon=True
        )
        self._thread.start()

    def wake(self, aggregate_uuid: str | None = None) -> None:
        """Reconcile at once (the pool agent's RPC ends up here)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.reconcile(nova_context.get_admin_context())
            except Exception:
                LOG.exception('XenServer pool reconciliation failed')
            self._wake.wait(self._interval)
            self._wake.clear()

    # -- one pass --------------------------------------------------------

    def reconcile(self, context) -> membership.Decision:
        """Take the one next step for this compute's host, if any."""
        with self._lock:
            aggregates = {
                agg.uuid: agg
                for agg in objects.AggregateList.get_by_host(
                    context, self._compute, key=membership.HYPERVISOR_POOL
                )
            }
            host = self.host_view()
            decision = membership.decide(
                self._compute,
                [_view(agg) for agg in aggregates.values()],
                host,
            )
            if decision.action not in (Action.NOTHING, Action.WAIT):
                LOG.info('XenServer pool of %s: %s', self._compute,
                         decision.action.value)  # fmt: skip
            self._carry_out(context, decision, aggregates, host)
            self.last_decision = decision
            return decision

    def host_view(self) -> membership.HostView:
        """This host and its pool now: two calls, whatever the pool size."""
        session = self._session
        pools = session.call_xenapi('pool.get_all_records')
        hosts = session.call_xenapi('host.get_all_records')
        pool = next(iter(pools.values()))
        own = hosts[session.host_ref]
        master = hosts.get(pool['master'], {})
        return membership.HostView(
            uuid=own['uuid'],
            address=own['address'],
            is_master=pool['master'] == session.host_ref,
            member_count=len(hosts),
            master_address=master.get('address', ''),
            pool_aggregate=pool['other_config'].get(
                membership.POOL_AGGREGATE_KEY
            ),
        )

    def _carry_out(self, context, decision, aggregates, host) -> None:
        action = decision.action
        if action is Action.ERROR:
            targets = list(aggregates.values()) or self._pool_aggregate(
                context, host
            )
            self._set_error(targets, decision.reason)
            return
        if action is Action.LEAVE:
            self._leave(context, host)
            return
        if action in (Action.NOTHING, Action.WAIT):
            return
        (aggregate,) = [a for a in aggregates.values() if _view(a).is_pool]
        try:
            if action is Action.BECOME_MASTER:
                self._become_master(context, aggregate, host)
            elif action is Action.JOIN:
                self._join(aggregate)
            self._record_member(aggregate)
        except (exception.NovaException, OSError) as exc:
            self._set_error([aggregate], self._reason(action, exc))

    # -- the steps ---------------------------------------------------------

    def _become_master(self, context, aggregate, host) -> None:
        """Claim the master role in the metadata, then name the pool."""
        if aggregate.metadata.get(membership.MASTER) != self._compute:
            _update(aggregate, {membership.MASTER: self._compute})
            claimed = objects.Aggregate.get_by_uuid(context, aggregate.uuid)
            if claimed.metadata.get(membership.MASTER) != self._compute:
                return  # another compute claimed it at the same moment
        session = self._session
        pool_ref = next(iter(session.call_xenapi('pool.get_all')))
        session.call_xenapi('pool.set_name_label', pool_ref, aggregate.name)
        if host.pool_aggregate != aggregate.uuid:
            key = membership.POOL_AGGREGATE_KEY
            if host.pool_aggregate is not None:
                session.call_xenapi(
                    'pool.remove_from_other_config', pool_ref, key
                )
            session.call_xenapi(
                'pool.add_to_other_config', pool_ref, key, aggregate.uuid
            )
        _update(aggregate, {membership.MASTER_ADDRESS: host.address})

    def _join(self, aggregate) -> None:
        """``pool.join`` on our own (standalone) host, then follow.

        The join exchanges certificates, copies the master's database and
        restarts the joiner's toolstack (xen-api ocaml/xapi/xapi_pool.ml,
        ``join_common``): it runs as a task, and is not bound by a socket
        timeout.
        """
        master_address = aggregate.metadata[membership.MASTER_ADDRESS]
        _update(aggregate, {membership.STATE: 'changing'})
        task = self._session.call_xenapi(
            'Async.' + self._join_method,
            master_address,
            self._username,
            self._password,
        )
        self._await_join(task, master_address)

    def _await_join(self, task: str, master_address: str) -> None:
        """The join's outcome; raises its failure.

        The task lives on the joiner, whose toolstack restarts into the
        pool when the join succeeds and so forgets it; event.from cannot
        follow that, so the task is polled, and a vanished task (or a
        joiner gone silent) is judged by whether the master's pool now
        has our host.  Whatever happens, the session ends up following
        the pool our host is in, with its new host record.
        """
        session = self._session
        deadline = time.monotonic() + session.operation_timeout
        while True:
            try:
                record = session.call_xenapi('task.get_record', task)
            except exception.NovaException:
                record = None
            if record is not None and record['status'] != 'pending':
                with contextlib.suppress(exception.NovaException):
                    session.call_xenapi('task.destroy', task)
                if record['status'] == 'success':
                    session.follow_master(master_address)
                    return
                raise errors.translate(
                    self._join_method,
                    list(record.get('error_info') or ['TASK_CANCELLED']),
                    session.secrets,
                )
            if record is None and session.member_of(master_address):
                return
            if time.monotonic() >= deadline:
                raise errors.XenAPIError(
                    message='%s to %s did not finish within %d s'
                    % (
                        self._join_method,
                        master_address,
                        session.operation_timeout,
                    )
                )
            time.sleep(JOIN_POLL_SECONDS)

    def _record_member(self, aggregate) -> None:
        host = self.host_view()
        _update(
            aggregate,
            {
                self._compute: host.uuid,
                membership.STATE: membership.STATE_ACTIVE,
                membership.REASON: None,
            },
        )

    def _leave(self, context, host) -> None:
        """Removed from the aggregate: eject our host, unless that loses
        instances Nova still has on it."""
        aggregates = self._pool_aggregate(context, host)
        instances = objects.InstanceList.get_by_host(context, self._compute)
        if instances:
            self._set_error(
                aggregates,
                f'cannot eject {self._compute} from the XenServer pool: '
                f'{len(instances)} instance(s) still on it '
                f'({", ".join(i.uuid for i in instances[:5])}); migrate or '
                'delete them and it is ejected at the next reconciliation',
            )
            return
        try:
            self._session.call_xenapi('pool.eject', self._session.host_ref)
        except exception.NovaException as exc:
            self._set_error(aggregates, self._reason(Action.LEAVE, exc))
            return
        # xapi resets the ejected host and reboots it (xen-api
        # ocaml/xapi/xapi_pool.ml, eject_self): it comes back, minutes
        # later, as the standalone master of a fresh pool.
        self._session.forget_pool()
        for aggregate in aggregates:
            _update(
                aggregate,
                {
                    self._compute: None,
                    membership.STATE: membership.STATE_ACTIVE,
                    membership.REASON: None,
                },
            )
        self._session.await_standalone(self._session.operation_timeout)
        LOG.info(
            'XenServer host %s is back as a standalone host',
            self._session.host_address,
        )

    # -- helpers -----------------------------------------------------------

    def _pool_aggregate(self, context, host) -> list:
        """The aggregate our host's pool belongs to, found by its uuid."""
        if not host.pool_aggregate:
            return []
        try:
            aggregate = objects.Aggregate.get_by_uuid(
                context, host.pool_aggregate
            )
        except exception.AggregateNotFound:
            return []
        return [aggregate]

    def _set_error(self, aggregates, reason: str) -> None:
        reason = reason.replace(self._password, '<password>')[:255]
        LOG.warning('XenServer pool of %s: %s', self._compute, reason)
        for aggregate in aggregates:
            _update(
                aggregate,
                {
                    membership.STATE: membership.STATE_ERROR,
                    membership.REASON: reason,
                },
            )

    def _reason(self, action: Action, exc: BaseException) -> str:
        code = errors.code_of(exc)
        hint = _HINTS.get(code or '', '')
        text = f'{self._compute} could not {action.value}: {exc}'
        return f'{text}. {hint}' if hint else text


_HINTS = {
    'JOINING_HOST_CANNOT_HAVE_RUNNING_OR_SUSPENDED_VMS': 'Stop or move the '
    'VMs running on the joining host; it joins at the next reconciliation',
    'JOINING_HOST_CANNOT_HAVE_RUNNING_VMS': 'Stop or move the VMs running on '
    'the joining host; it joins at the next reconciliation',
    'JOINING_HOST_CANNOT_HAVE_VMS_WITH_CURRENT_OPERATIONS': 'Wait for the '
    "joining host's VM operations to finish",
    'JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS': 'Detach the shared SRs of the '
    'joining host first',
    'JOINING_HOST_CONNECTION_FAILED': 'The joining host cannot reach the '
    'master: check the network between them and master_address',
    'POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION': 'Upgrade the hosts to '
    'the same XenServer version',
    'POOL_JOINING_HOST_MUST_HAVE_SAME_PRODUCT_VERSION': 'Upgrade the hosts '
    'to the same XenServer version',
    'SESSION_AUTHENTICATION_FAILED': 'Members of a pool share its '
    'credentials: give this compute the connection_password of the master',
    'JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS': 'The joining host is '
    'the master of a pool of its own: eject its members first',
    'LICENCE_RESTRICTION': 'The licence of the pool limits its size or '
    'this feature: license the hosts, or keep the pool smaller',
    'POOL_JOINING_HOST_MUST_HAVE_SAME_DB_SCHEMA': 'Upgrade the hosts to the '
    'same XenServer version',
    'LICENSE_DOES_NOT_SUPPORT_POOLING': 'The licence of the joining host '
    'does not allow pools: license it first',
    'LICENSE_HOST_POOL_MISMATCH': 'The joining host and the pool have '
    'different licences: give them the same edition',
    'HOST_IS_SLAVE': 'The joining host already belongs to another pool: '
    'eject it from that pool first',
}


def _view(aggregate) -> membership.AggregateView:
    return membership.AggregateView(
        uuid=aggregate.uuid,
        name=aggregate.name,
        hosts=tuple(aggregate.hosts or ()),
        metadata=dict(aggregate.metadata or {}),
    )


def _update(aggregate, updates: dict) -> None:
    """Write only what differs: every write notifies and wakes the pool."""
    current = aggregate.metadata or {}
    changes = {
        key: value
        for key, value in updates.items()
        if ((key in current) if value is None else current.get(key) != value)
    }
    if changes:
        aggregate.update_metadata(changes)
