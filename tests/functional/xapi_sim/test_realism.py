"""Where xapi is strict, the simulator is too.

Each test names the xapi source (xapi-project/xen-api) whose behaviour it
holds the simulator to: a driver that gets past these tests gets past a
real XenServer 8 / XCP-ng 8.3 host on the same point.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
import urllib.parse

import pytest
import XenAPI

from nova_hypervisors.simulators.xapi import SimulatedPool
from tests.functional.xapi_sim.helpers import MIB
from tests.functional.xapi_sim.helpers import add_vif
from tests.functional.xapi_sim.helpers import attach
from tests.functional.xapi_sim.helpers import client
from tests.functional.xapi_sim.helpers import create_vdi
from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import default_sr
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import local_sr
from tests.functional.xapi_sim.helpers import login
from tests.functional.xapi_sim.helpers import management_network


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
    with socket.create_connection((host.address, host.http_port), 5) as sock:
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


def _put_head(host, query: dict, length: int) -> tuple[socket.socket, bytes]:
    """Send only the request head of an import; return what came back."""
    sock = socket.create_connection((host.address, host.port), 5)
    sock = host.topology.tls.client_context().wrap_socket(
        sock, server_hostname=host.address
    )
    sock.settimeout(5)
    sock.sendall(
        b'PUT /import_raw_vdi?%s HTTP/1.1\r\nHost: x\r\n'
        b'Content-Length: %d\r\n\r\n'
        % (urllib.parse.urlencode(query).encode(), length)
    )
    head = b''
    while b'\r\n\r\n' not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return sock, head


def test_import_answers_200_before_reading_and_fails_on_the_task(sim, session):
    """ocaml/xapi/import_raw_vdi.ml (localhost_handler): the 200 goes out
    before Vhd_tool_wrapper.receive; a short body fails the task only."""
    xapi = session.xenapi
    vdi = create_vdi(xapi, default_sr(xapi), MIB)
    task = xapi.task.create('import', '')
    query = {
        'vdi': vdi,
        'session_id': session._session,
        'format': 'raw',
        'task_id': task,
    }
    sock, head = _put_head(sim.hosts[0], query, MIB)
    assert head.startswith(b'HTTP/1.1 200')
    sock.sendall(b'x' * 1000)
    sock.close()  # a truncated upload
    _until(lambda: xapi.task.get_status(task) != 'pending')
    assert xapi.task.get_status(task) == 'failure'
    assert xapi.task.get_error_info(task)[0] == 'IMPORT_ERROR_PREMATURE_EOF'


def test_transfers_of_another_hosts_local_sr_are_redirected(pooled):
    """ocaml/xapi/importexport.ml (check_sr_availability,
    return_302_redirect): a host without a plugged PBD for the SR answers
    302 to one that has it, without reading an import's body."""
    session = login(pooled.master)
    xapi = session.xenapi
    member = pooled.hosts[1]
    vdi = create_vdi(xapi, local_sr(xapi, member.host_ref), MIB)
    query = {'vdi': vdi, 'session_id': session._session, 'format': 'raw'}
    sock, head = _put_head(pooled.master, query, MIB)
    sock.close()
    assert head.startswith(b'HTTP/1.1 302')
    location = re.search(rb'Location: (\S+)', head).group(1).decode()
    target = urllib.parse.urlsplit(location)
    assert target.hostname == member.address
    assert target.path == '/import_raw_vdi'
    assert dict(urllib.parse.parse_qsl(target.query)) == query
    # The member itself takes it.
    sock, head = _put_head(member, query, 4)
    sock.sendall(b'data')
    sock.close()
    assert head.startswith(b'HTTP/1.1 200')


def test_a_local_storage_pool_has_no_shared_sr(tmp_path):
    """A freshly made pool: each host was installed with a local SR as its
    default SR; ocaml/xapi/xapi_pool.ml (join) replaces the joiner's
    database with the master's, so the pool's default SR stays the
    master's local storage, and each local SR is plugged on its host
    only."""
    with SimulatedPool(
        hosts=3, state_dir=str(tmp_path), pooled=True, shared_sr=False
    ) as sim:
        xapi = login(sim.master).xenapi
        srs = xapi.SR.get_all_records()
        assert not [r for r in srs.values() if r['shared']]
        default = default_sr(xapi)
        assert default == local_sr(xapi, sim.master.host_ref)
        for host in sim.hosts:
            sr = local_sr(xapi, host.host_ref)
            plugged = [
                xapi.PBD.get_host(pbd)
                for pbd in srs[sr]['PBDs']
                if xapi.PBD.get_currently_attached(pbd)
            ]
            assert plugged == [host.host_ref]


def test_xenapi_is_https_with_the_runs_ca_only(sim):
    """Hosts serve XenAPI over TLS; a client that does not trust the
    certificate's CA is refused at the handshake, as with a real host."""
    host = sim.hosts[0]
    assert host.url.startswith('https://')
    with pytest.raises(ssl.SSLCertVerificationError):
        XenAPI.Session(host.url).xenapi.login_with_password(
            host.username, host.password
        )
    login(host).xenapi.pool.get_all()


def test_https_only_closes_the_plain_http_port(sim):
    """ocaml/idl/datamodel_host.ml (https_only): port 80 is closed."""
    host = sim.hosts[0]
    assert _console(host, '/console?uuid=x').startswith(b'HTTP/1.1 401')
    sim.set_https_only(host)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host.address, host.http_port), 5)
    login(host).xenapi.pool.get_all()
    sim.set_https_only(host, False)
    assert _console(host, '/console?uuid=x').startswith(b'HTTP/1.1 401')


def test_migrate_send_in_a_pool_ejects_cds_not_in_the_map(tmp_path):
    """ocaml/xapi/xapi_vm_migrate.ml: vdi_filter never mirrors a CD, and
    find_cds_to_eject ejects each CD whose VDI is not mapped to its SR; the
    read-only disk beside it moves."""
    with SimulatedPool(
        hosts=2, state_dir=str(tmp_path), pooled=True, shared_sr=False
    ) as sim:
        xapi = login(sim.master).xenapi
        source, dest = sim.hosts[0].host_ref, sim.hosts[1].host_ref
        vm = create_vm(xapi, 'traveller')
        root = create_vdi(xapi, local_sr(xapi, source), 2 * MIB)
        attach(xapi, vm, root)
        cd_vdi = create_vdi(xapi, local_sr(xapi, source), MIB, name='iso')
        cd = attach(xapi, vm, cd_vdi, '3', type='CD', mode='RO')
        ro_vdi = create_vdi(xapi, local_sr(xapi, source), MIB, name='ro')
        attach(xapi, vm, ro_vdi, '4', mode='RO')
        xapi.VM.start_on(vm, source, False, False)
        network = management_network(xapi)
        receipt = xapi.host.migrate_receive(dest, network, {})
        dest_sr = local_sr(xapi, dest)
        xapi.VM.migrate_send(
            vm, receipt, True, {root: dest_sr, ro_vdi: dest_sr}, {}, {}
        )
        assert xapi.VM.get_resident_on(vm) == dest
        assert xapi.VBD.get_empty(cd) is True
        assert xapi.VBD.get_VDI(cd) == 'OpaqueRef:NULL'
        disks = {
            xapi.VBD.get_userdevice(vbd): xapi.VBD.get_VDI(vbd)
            for vbd in xapi.VM.get_VBDs(vm)
            if xapi.VBD.get_type(vbd) == 'Disk'
        }
        assert {xapi.VDI.get_SR(vdi) for vdi in disks.values()} == {dest_sr}
        # The ejected CD's VDI stays behind on the source's SR.
        assert xapi.VDI.get_SR(cd_vdi) == local_sr(xapi, source)


def _network(xapi, bridge: str, managed: bool = True) -> str:
    return xapi.network.create(
        {
            'name_label': bridge,
            'name_description': '',
            'MTU': '1500',
            'other_config': {},
            'bridge': bridge,
            'managed': managed,
            'tags': [],
        }
    )


@pytest.mark.parametrize(
    'bridge',
    ['a-very-long-bridge', 'xenbr7', 'xapi3', 'vif1.0', 'tap2', 'eth1'],
)
def test_network_create_refuses_bridge_names_xapi_refuses(xapi, bridge):
    """ocaml/xapi/xapi_network.ml (create): at most 15 characters, none
    of xapi's own prefixes."""
    assert failure_of(_network, xapi, bridge) == [
        'INVALID_VALUE',
        'bridge',
        bridge,
    ]


def test_network_create_refuses_a_bridge_another_network_has(xapi):
    """ocaml/xapi/xapi_network.ml (create): BRIDGE_NAME_EXISTS."""
    _network(xapi, 'br-int', managed=False)
    assert failure_of(_network, xapi, 'br-int') == [
        'BRIDGE_NAME_EXISTS',
        'br-int',
    ]


def test_an_unmanaged_network_needs_its_bridge_on_the_host(xapi):
    """ocaml/xapi/xapi_network.ml: xapi never creates the bridge of an
    unmanaged network; a VM on a missing one does not start."""
    missing = _network(xapi, 'br-missing', managed=False)
    vm = create_vm(xapi)
    add_vif(xapi, vm, missing)
    assert failure_of(xapi.VM.start, vm, False, False) == [
        'BRIDGE_NOT_AVAILABLE',
        'br-missing',
    ]
    present = _network(xapi, 'br-int', managed=False)
    other = create_vm(xapi, 'other')
    add_vif(xapi, other, present)
    xapi.VM.start(other, False, False)


def test_event_from_refuses_a_bad_token_and_never_loses_events(sim, xapi):
    """ocaml/xapi/xapi_event.ml (from): a token it cannot parse is
    EVENT_FROM_TOKEN_PARSE_FAILURE; an old one is never EVENTS_LOST (that
    is event.next's): objects are compared by generation."""
    event_from = getattr(xapi.event, 'from')
    assert failure_of(event_from, ['vm'], 'not-a-token', 1.0) == [
        'EVENT_FROM_TOKEN_PARSE_FAILURE',
        'not-a-token',
    ]
    old = event_from(['vm'], '', 0.0)['token']
    kept = create_vm(xapi, 'kept')
    store = sim.db(sim.hosts[0]).store
    with store.lock:
        store.lost_before = store.generation  # the history is gone
    result = event_from(['vm'], old, 1.0)
    assert kept in {event['ref'] for event in result['events']}


def test_vcpu_utilisation_is_not_in_the_metrics_record(xapi):
    """ocaml/idl/datamodel.ml: VM_metrics.VCPUs_utilisation was removed
    (rel_tampa); the field remains, always empty."""
    vm = create_vm(xapi, vcpus=2)
    xapi.VM.start(vm, False, False)
    metrics = xapi.VM_metrics.get_record(xapi.VM.get_metrics(vm))
    assert metrics['VCPUs_utilisation'] == {}
    assert metrics['VCPUs_number'] == '2'


def test_a_plugin_a_stock_host_lacks_is_missing(xapi, sim):
    """ocaml/xapi/xapi_plugins.ml: XENAPI_MISSING_PLUGIN [name]; xapi
    ships no ``console`` plugin (python3/plugins)."""
    assert failure_of(
        xapi.host.call_plugin,
        sim.hosts[0].host_ref,
        'console',
        'get_console_log',
        {'dom_id': '1'},
    ) == ['XENAPI_MISSING_PLUGIN', 'console']


def _until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.05)


def _refuses(host) -> bool:
    try:
        socket.create_connection((host.address, host.port), 1).close()
    except OSError:
        return True
    return False


def test_an_ejected_host_reboots_and_comes_back_fresh(tmp_path):
    """ocaml/xapi/xapi_pool.ml (eject, eject_self): the host is reset to
    first-boot state and rebooted: away for a while, then a standalone
    master without the pool's VMs or its old local-SR data."""
    with SimulatedPool(
        hosts=2,
        state_dir=str(tmp_path),
        pooled=True,
        shared_sr=False,
        eject_reboot_seconds=1.0,
    ) as sim:
        member = sim.hosts[1]
        xapi = login(sim.master).xenapi
        old_sr = local_sr(xapi, member.host_ref)
        create_vdi(xapi, old_sr, MIB, name='lost on eject')
        halted = create_vm(xapi, 'halted here')
        xapi.VM.set_affinity(halted, member.host_ref)
        xapi.pool.eject(member.host_ref)
        _until(lambda: _refuses(member))
        _until(lambda: not _refuses(member))
        fresh = login(member).xenapi
        assert fresh.pool.get_master(fresh.pool.get_all()[0]) == (
            member.host_ref
        )
        assert [
            r['name_label']
            for r in fresh.VDI.get_all_records().values()
            if r['name_label'] == 'lost on eject'
        ] == []
        names = [
            r['name_label']
            for r in fresh.VM.get_all_records().values()
            if not r['is_control_domain'] and not r['is_a_template']
        ]
        assert names == []


def test_a_joiner_restarts_its_toolstack(tmp_path):
    """ocaml/xapi/xapi_pool.ml (join_common): the joiner's xapi restarts
    into the pool; for a moment it refuses calls, then it is a slave."""
    with SimulatedPool(
        hosts=2, state_dir=str(tmp_path), join_restart_seconds=1.0
    ) as sim:
        joiner = sim.hosts[1]
        login(joiner).xenapi.pool.join(
            sim.hosts[0].address, 'root', sim.hosts[0].password
        )
        _until(lambda: _refuses(joiner))
        _until(lambda: not _refuses(joiner))
        failure = failure_of(
            client(joiner).xenapi.login_with_password,
            'root',
            sim.hosts[0].password,
        )
        assert failure == ['HOST_IS_SLAVE', sim.hosts[0].address]


def test_a_guest_without_tools_has_no_metrics_and_no_clean_shutdown(
    tmp_path,
):
    """ocaml/xapi/xapi_vm_lifecycle.ml (check_op_for_feature): an HVM
    guest that advertises no feature-shutdown cannot be shut down or
    rebooted cleanly (VM_LACKS_FEATURE); only guest tools report guest
    metrics."""
    with SimulatedPool(
        hosts=1, state_dir=str(tmp_path), guest_tools=False
    ) as sim:
        xapi = login(sim.hosts[0]).xenapi
        vm = create_vm(xapi)
        xapi.VM.start(vm, False, False)
        assert xapi.VM.get_guest_metrics(vm) == 'OpaqueRef:NULL'
        for operation in (xapi.VM.clean_shutdown, xapi.VM.clean_reboot):
            assert failure_of(operation, vm) == ['VM_LACKS_FEATURE', vm]
        xapi.VM.hard_reboot(vm)
        xapi.VM.hard_shutdown(vm)
        assert xapi.VM.get_power_state(vm) == 'Halted'
