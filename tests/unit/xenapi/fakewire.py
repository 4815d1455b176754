"""The XenAPI wire, faked: the only thing the unit tests replace.

The real ``XenAPI`` client and our session code run unchanged; only the
transport's ``request`` is swapped for a function that decodes the XML-RPC
call, hands it to a per-method handler and encodes the answer exactly as
xapi does (``{"Status": "Success", "Value": ...}`` or a Failure).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
import xmlrpc.client

import fixtures

from nova_hypervisors.xenapi import session as xsession


class XapiFailure(Exception):
    """Raised by a handler to answer ``Status: Failure``."""

    def __init__(self, *details):
        super().__init__(*details)
        self.details = [str(d) for d in details]


class FakeWire(fixtures.Fixture):
    """Answers XenAPI calls per ``(address, method)`` from handlers.

    ``wire.on('VM.start', handler)`` answers that method at every address;
    ``wire.on('session.login_with_password', h, address='10.0.0.2')`` at
    one.  A handler gets the call's parameters (the session ref first,
    except for logins) and returns the value or raises XapiFailure or an
    OSError (a broken connection).
    """

    def __init__(self) -> None:
        super().__init__()
        self.handlers: dict[tuple[str | None, str], Callable] = {}
        self.calls: list[tuple[str, str, tuple]] = []
        self.sessions = 0
        self.counts = collections.Counter()

    def _setUp(self) -> None:
        wire = self

        def request(transport, host, handler, request_body, verbose=False):
            params, method = xmlrpc.client.loads(request_body)
            address = host.split(':')[0]
            return (wire.answer(address, method, params),)

        self.useFixture(
            fixtures.MonkeyPatch(
                'nova_hypervisors.xenapi.session._Transport.request', request
            )
        )
        self.on('session.login_with_password', self.login)
        self.on('session.logout', lambda *a: '')

    def on(
        self, method: str, handler: Callable, address: str | None = None
    ) -> None:
        self.handlers[(address, method)] = handler

    def login(self, *params) -> str:
        self.sessions += 1
        return 'OpaqueRef:session-%04d' % self.sessions

    def answer(self, address: str, method: str, params: tuple) -> dict:
        self.calls.append((address, method, params))
        self.counts[method] += 1
        handler = self.handlers.get((address, method)) or self.handlers.get(
            (None, method)
        )
        if handler is None:
            return {
                'Status': 'Failure',
                'ErrorDescription': ['MESSAGE_METHOD_UNKNOWN', method],
            }
        try:
            value = handler(*params)
        except XapiFailure as failure:
            return {'Status': 'Failure', 'ErrorDescription': failure.details}
        return {'Status': 'Success', 'Value': value}

    def methods(self) -> list[str]:
        return [method for _, method, _ in self.calls]


def pool_records(addresses=('127.0.0.1',), own=0) -> dict:
    """``host.get_all_records`` of a pool whose members have addresses."""
    return {
        'OpaqueRef:host-%d' % i: {
            'uuid': 'host-uuid-%d' % i,
            'name_label': 'xen%d' % i,
            'hostname': 'xen%d' % i,
            'address': address,
            'metrics': 'OpaqueRef:host-metrics-%d' % i,
        }
        for i, address in enumerate(addresses)
    }


def standard_pool(wire: FakeWire, addresses=('127.0.0.1',)) -> None:
    """Answers for the calls a session makes right after login."""
    hosts = pool_records(addresses)
    wire.on('host.get_all_records', lambda s: hosts)
    wire.on('host.get_metrics', lambda s, host: 'OpaqueRef:metrics-' + host)
    wire.on(
        'pool.get_all_records',
        lambda s: {
            'OpaqueRef:pool': {
                'master': 'OpaqueRef:host-0',
                'default_SR': 'OpaqueRef:sr',
            }
        },
    )


def make_session(url='http://127.0.0.1', **kwargs) -> xsession.XenAPISession:
    kwargs.setdefault('concurrent', 2)
    session = xsession.XenAPISession(url, 'root', 's3cret-pw', **kwargs)
    session.retry_delay = 0.001
    session.retry_delay_max = 0.001
    return session
