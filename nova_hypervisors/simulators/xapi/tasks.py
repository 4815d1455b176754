"""Tasks: the handles of ``Async.`` calls and of HTTP transfers.

A task moves ``pending`` -> ``success`` | ``failure`` | ``cancelled``
(through ``cancelling`` when a client cancels it before it ran).  On
success ``result`` holds the XML-RPC text of the value, which clients parse
themselves; on failure ``error_info`` holds the error list.  Tasks stay
until a client destroys them, as xapi keeps them.
"""

from __future__ import annotations

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.errors import operation_not_allowed
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message

FINISHED = frozenset({'success', 'failure', 'cancelled'})


def create_task(ctx: CallContext, label: str, description: str = '') -> str:
    """A pending task resident on the host that took the call."""
    return ctx.store.create(
        'task',
        {
            'name_label': label,
            'name_description': description,
            'status': 'pending',
            'progress': 0.0,
            'created': codec.now(),
            'resident_on': ctx.endpoint.host_ref,
            'allowed_operations': ['cancel'],
        },
    )


def cancel_requested(ctx: CallContext, task: str) -> bool:
    record = ctx.store.tables['task'].get(task)
    return record is not None and record['status'] == 'cancelling'


def complete(ctx: CallContext, task: str, result_text: str) -> None:
    if not ctx.store.exists('task', task):
        return  # destroyed while running: nothing to report to
    ctx.store.update(
        'task',
        task,
        status='success',
        progress=1.0,
        result=result_text,
        finished=codec.now(),
        allowed_operations=[],
    )


def fail(ctx: CallContext, task: str, failure: XapiFailure) -> None:
    if not ctx.store.exists('task', task):
        return
    status = 'cancelled' if failure.code == 'TASK_CANCELLED' else 'failure'
    ctx.store.update(
        'task',
        task,
        status=status,
        progress=1.0,
        error_info=failure.description,
        finished=codec.now(),
        allowed_operations=[],
    )


@message('task.create')
def task_create(ctx: CallContext, label: str, description: str) -> str:
    return create_task(ctx, label, description)


@message('task.cancel')
def task_cancel(ctx: CallContext, task: str) -> None:
    record = ctx.store.get('task', task)
    if record['status'] != 'pending':
        raise operation_not_allowed(
            'task %s is %s and cannot be cancelled' % (task, record['status'])
        )
    ctx.store.update('task', task, status='cancelling', allowed_operations=[])


@message('task.destroy')
def task_destroy(ctx: CallContext, task: str) -> None:
    ctx.store.get('task', task)
    for sub in ctx.store.get('task', task)['subtasks']:
        if ctx.store.exists('task', sub):
            ctx.store.set('task', sub, 'subtask_of', NULL_REF)
    ctx.store.destroy('task', task)
