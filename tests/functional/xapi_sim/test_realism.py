"""Where xapi is strict, the simulator is too.

Each test names the xapi source (xapi-project/xen-api) whose behaviour it
holds the simulator to: a driver that gets past these tests gets past a
real XenServer 8 / XCP-ng 8.3 host on the same point.
"""

from __future__ import annotations

import socket

import pytest

from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import login


@pytest.mark.parametrize('key', ['vm-data/user-metadata/my.key', 'a b'])
def test_start_refuses_a_xenstore_path_xenstored_refuses(xapi, key):
    """ocaml/xenopsd/xc/domain.ml (build): ``xsdata`` goes to xenstored,
    which answers EINVAL outside ``[A-Za-z0-9-/_@]``."""
    vm = create_vm(xapi, xenstore_data={key: 'v'})
    failure = failure_of(xapi.VM.start, vm, False, False)
    assert failure[0] == 'INTERNAL_ERROR'
    assert 'EINVAL' in failure[1]
    assert xapi.VM.get_power_state(vm) == 'Halted'


def test_start_accepts_every_character_xenstored_accepts(xapi):
    vm = create_vm(
        xapi, xenstore_data={'vm-data/user-metadata/A-z_0@9': 'a b.c'}
    )
    xapi.VM.start(vm, False, False)
    assert xapi.VM.get_power_state(vm) == 'Running'


def _console(host, path: str) -> bytes:
    """What a host answers Nova's proxy: ``CONNECT <path>`` on a socket.

    The answer's head, and on 200 the first 12 bytes the VM's side sends.
    """
    with socket.create_connection((host.address, host.port), 5) as sock:
        sock.sendall(b'CONNECT %s HTTP/1.1\r\n\r\n' % path.encode())
        sock.settimeout(5)
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = sock.recv(1)
            if not chunk:
                return data
            data += chunk
        if data.startswith(b'HTTP/1.1 200'):
            while not data.endswith(b'\n') or data.endswith(b'\r\n'):
                data += sock.recv(1)
        return data


def _running_vm_on(session, host_ref: str) -> tuple[str, str]:
    xapi = session.xenapi
    vm = create_vm(xapi)
    xapi.VM.start_on(vm, host_ref, False, False)
    return vm, xapi.VM.get_uuid(vm)


def test_console_needs_a_session(pooled):
    """ocaml/xapi/console.ml (handler) runs in Xapi_http.with_context:
    without session_id the request is Unauthorised."""
    session = login(pooled.master)
    _, uuid = _running_vm_on(session, pooled.master.host_ref)
    answer = _console(pooled.master, '/console?uuid=%s' % uuid)
    assert answer.startswith(b'HTTP/1.1 401')


def test_console_is_served_only_by_the_vms_resident_host(pooled):
    """ocaml/xapi/console.ml (check_vm_is_running_here): 404 elsewhere; on
    the resident host 200, then the guest's VNC server speaks RFB."""
    session = login(pooled.master)
    member = pooled.hosts[1]
    _, uuid = _running_vm_on(session, member.host_ref)
    path = '/console?uuid=%s&session_id=%s' % (uuid, session._session)
    assert _console(pooled.master, path).startswith(b'HTTP/1.1 404')
    answer = _console(member, path)
    assert answer.startswith(b'HTTP/1.1 200')
    assert answer.endswith(b'\r\n\r\nRFB 003.008\n')


def test_console_of_a_halted_vm_is_missing(pooled):
    session = login(pooled.master)
    vm, uuid = _running_vm_on(session, pooled.master.host_ref)
    session.xenapi.VM.hard_shutdown(vm)
    path = '/console?uuid=%s&session_id=%s' % (uuid, session._session)
    assert _console(pooled.master, path).startswith(b'HTTP/1.1 404')
