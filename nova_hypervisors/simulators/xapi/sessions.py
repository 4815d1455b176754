"""Logging in: only a pool master accepts logins.

``session.login_with_password`` on a slave fails with ``HOST_IS_SLAVE
[master address]`` before the password is even looked at, like xapi;
the client must reconnect to that address itself.  Only the master
authenticates API logins, so a pool member's API password is its master's.
``slave_local_login_with_password`` checks the host's own root password and
gives a session known only to that host, good for the emergency calls a
slave takes when its master is gone.
"""

from __future__ import annotations

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.registry import CallContext
from nova_hypervisors.simulators.xapi.registry import message
from nova_hypervisors.simulators.xapi.store import new_ref


@message('session.login_with_password')
def login_with_password(
    ctx: CallContext, uname: str, pwd: str, version: str, originator: str
) -> str:
    endpoint = ctx.endpoint
    if not endpoint.is_master:
        raise XapiFailure('HOST_IS_SLAVE', endpoint.master_address)
    if uname != endpoint.username or pwd != ctx.pool.password:
        raise XapiFailure('SESSION_AUTHENTICATION_FAILED')
    now = codec.now()
    return ctx.store.create(
        'session',
        {
            'this_host': endpoint.host_ref,
            'last_active': now,
            'validation_time': now,
            'is_local_superuser': True,
            'auth_user_name': uname,
            'originator': originator,
        },
    )


@message('session.slave_local_login_with_password')
def slave_local_login_with_password(
    ctx: CallContext, uname: str, pwd: str
) -> str:
    endpoint = ctx.endpoint
    if uname != endpoint.username or pwd != endpoint.local_password:
        raise XapiFailure('SESSION_AUTHENTICATION_FAILED')
    session = new_ref()
    endpoint.local_sessions.add(session)
    return session


@message('session.local_logout')
def local_logout(ctx: CallContext) -> None:
    ctx.endpoint.local_sessions.discard(ctx.session)


@message('session.logout')
def logout(ctx: CallContext) -> None:
    ctx.store.destroy('session', ctx.session)


@message('session.get_all_subject_identifiers')
def get_all_subject_identifiers(ctx: CallContext) -> list[str]:
    return []


@message('session.change_password')
def change_password(ctx: CallContext, old_pwd: str, new_pwd: str) -> None:
    if old_pwd != ctx.pool.password:
        raise XapiFailure('CHANGE_PASSWORD_REJECTED', 'Authentication failure')
    for member in ctx.pool.members:
        member.password = new_pwd
        member.local_password = new_pwd


def expire_all(store) -> int:
    """Drop every session of a pool, as a restarted xapi would."""
    sessions = store.refs('session')
    for session in sessions:
        store.destroy('session', session)
    return len(sessions)
