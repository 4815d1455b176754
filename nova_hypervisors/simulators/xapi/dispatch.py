"""From a decoded call to a result: xapi's generated server, in Python.

The order of checks is xapi's (``gen_server.ml``): the method must exist
(``MESSAGE_METHOD_UNKNOWN``), the parameter count must fit
(``MESSAGE_PARAMETER_COUNT_MISMATCH`` counting parameters after the
session), every parameter is unmarshalled by its type, then the session is
checked (``SESSION_INVALID``), then the implementation runs.  ``Async.``
calls return a task at once and run the implementation in a thread that
completes the task with the XML-RPC text of the result.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi import handlers  # noqa: F401
from nova_hypervisors.simulators.xapi import implicit
from nova_hypervisors.simulators.xapi import registry
from nova_hypervisors.simulators.xapi import tasks as task_ops
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.datamodel import Message
from nova_hypervisors.simulators.xapi.datamodel import XType
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.registry import CallContext

LOG = logging.getLogger(__name__)

ASYNC_PREFIX = 'Async.'

# Calls a session from slave_local_login_with_password may make.
LOCAL_SESSION_METHODS = frozenset(
    {
        'pool.emergency_transition_to_master',
        'pool.emergency_reset_master',
        'session.local_logout',
    }
)


class Dispatcher:
    """Serves calls for every host of a :class:`Topology`."""

    def __init__(self, topology) -> None:
        self.topology = topology
        self.model = topology.model

    def call(
        self, endpoint, method: str, params: list, protocol: str
    ) -> tuple[bool, Any]:
        """``(True, wire value)`` or ``(False, [CODE, args...])``."""
        try:
            return True, self._call(endpoint, method, list(params), protocol)
        except XapiFailure as failure:
            return False, failure.description
        except Exception as exc:  # a bug here must still answer
            LOG.exception('simulator error in %s', method)
            return False, ['INTERNAL_ERROR', '%s: %s' % (type(exc), exc)]

    # -- the pipeline ----------------------------------------------------

    def _call(self, endpoint, method: str, params: list, protocol: str):
        is_async = method.startswith(ASYNC_PREFIX)
        name = method[len(ASYNC_PREFIX) :] if is_async else method
        latency = 0.0
        if not is_async:
            latency = self.topology.faults.before_call(endpoint, name)
        msg = self.model.message(name)
        if msg is None:
            raise XapiFailure('MESSAGE_METHOD_UNKNOWN', name)
        received = len(params) - (1 if msg.takes_session else 0)
        if not msg.mandatory <= received <= len(msg.params):
            raise XapiFailure(
                'MESSAGE_PARAMETER_COUNT_MISMATCH',
                name,
                msg.mandatory,
                received,
            )
        session = None
        if msg.takes_session:
            session = codec.unmarshal(XType('string'), params[0], 'session_id')
            params = params[1:]
            self.topology.faults.saw_session(session)
        args = self._unmarshal(msg, params)
        pool = endpoint.pool
        ctx = CallContext(
            topology=self.topology,
            endpoint=endpoint,
            pool=pool,
            method=name,
            protocol=protocol,
            session=session,
        )
        if msg.takes_session:
            self._check_session(ctx)
        handler = self._handler(msg)
        if is_async:
            return self._start_task(ctx, msg, handler, args)
        self._apply_latency(ctx, handler, latency)
        with pool.store.lock:
            if endpoint.pool is not pool:  # moved by a concurrent join
                raise XapiFailure('SESSION_INVALID', session or '')
            self._check_refs(ctx, msg, args)
            result = handler(ctx, *args)
            answer = self._marshal(msg, result, protocol)
        self._sync_switches()
        return answer

    def _sync_switches(self) -> None:
        """Plugged VIFs onto the hosts' Open vSwitches (when the run has
        them) before the caller hears the answer, as xapi's hotplug script
        runs before ``VM.start`` or ``VIF.plug`` returns."""
        switches = self.topology.switches
        if switches is not None:
            switches.sync(self.topology)

    @staticmethod
    def _apply_latency(ctx: CallContext, handler, latency: float) -> None:
        """Wait now, or let a long-running handler wait where it is busy."""
        if getattr(handler, 'long_running', False):
            ctx.latency = latency
        elif latency > 0:
            time.sleep(latency)

    def _unmarshal(self, msg: Message, params: list) -> list:
        args = []
        for param, value in zip(msg.params, params, strict=False):
            args.append(codec.unmarshal(param.type, value, param.name))
        for param in msg.params[len(params) :]:
            args.append(msg.defaults[param.name])
        return args

    def _check_session(self, ctx: CallContext) -> None:
        endpoint = ctx.endpoint
        if ctx.session in endpoint.local_sessions:
            if ctx.method not in LOCAL_SESSION_METHODS:
                raise XapiFailure('HOST_IS_SLAVE', endpoint.master_address)
            return
        if not endpoint.is_master:
            master = self.topology.host_by_address(endpoint.master_address)
            if master is None or not master.answering:
                raise XapiFailure(
                    'CANNOT_CONTACT_HOST', endpoint.master_address
                )
        if ctx.session not in ctx.store.tables['session']:
            raise XapiFailure('SESSION_INVALID', ctx.session)

    def _handler(self, msg: Message):
        handler = registry.HANDLERS.get(msg.wire_name)
        if handler is not None:
            return handler
        cls = self.model.classes[msg.cls]
        if (
            msg.implicit
            or msg.name.startswith('set_')
            or msg.name in implicit.GENERIC_NAMES
        ):
            handler = implicit.resolve(cls, msg)
            if handler is not None:
                return handler
        raise XapiFailure('NOT_IMPLEMENTED', msg.wire_name)

    def _check_refs(self, ctx: CallContext, msg: Message, args: list):
        """Referenced objects must exist: ``HANDLE_INVALID [class, ref]``.

        Refs to other pools (a ``session_to``) and NULL refs are left to the
        handler, which knows whether NULL means "default" or is an error.
        """
        tables = ctx.store.tables
        for param, value in zip(msg.params, args, strict=True):
            ptype = param.type
            if (
                ptype.kind == 'ref'
                and ptype.name != 'session'
                and value != NULL_REF
                and ptype.name in tables
                and value not in tables[ptype.name]
            ):
                raise XapiFailure('HANDLE_INVALID', ptype.name, value)

    @staticmethod
    def _marshal(msg: Message, result: Any, protocol: str) -> Any:
        result_type = msg.result
        if result_type.kind in ('event_batch', 'any_record') or (
            result_type.kind == 'set' and result_type.elem.name == 'event'
        ):
            return result  # events are built in wire form by events.py
        return codec.marshal(msg.result, result, protocol)

    # -- Async ------------------------------------------------------------

    def _start_task(self, ctx: CallContext, msg: Message, handler, args):
        with ctx.store.lock:
            task = task_ops.create_task(ctx, ASYNC_PREFIX + msg.wire_name)
        ctx.task = task
        worker = threading.Thread(
            target=self._run_task,
            args=(ctx, msg, handler, args),
            name='xapi-sim-task',
            daemon=True,
        )
        worker.start()
        return codec.marshal(XType('ref', name='task'), task, ctx.protocol)

    def _run_task(self, ctx: CallContext, msg: Message, handler, args):
        store = ctx.store
        try:
            faults = self.topology.faults
            faults.saw_task(msg.wire_name)
            latency = faults.before_call(ctx.endpoint, msg.wire_name)
            self._apply_latency(ctx, handler, latency)
            with store.lock:
                if task_ops.cancel_requested(ctx, ctx.task):
                    raise XapiFailure('TASK_CANCELLED', ctx.task)
                self._check_refs(ctx, msg, args)
                result = handler(ctx, *args)
                text = codec.xmlrpc_value(
                    self._marshal(msg, result, codec.XMLRPC)
                )
            self._sync_switches()
            with store.lock:
                task_ops.complete(ctx, ctx.task, text)
        except XapiFailure as failure:
            with store.lock:
                task_ops.fail(ctx, ctx.task, failure)
        except Exception as exc:  # keep the task honest about a bug
            LOG.exception('simulator error in Async.%s', msg.wire_name)
            with store.lock:
                task_ops.fail(
                    ctx,
                    ctx.task,
                    XapiFailure('INTERNAL_ERROR', '%s' % (exc,)),
                )
