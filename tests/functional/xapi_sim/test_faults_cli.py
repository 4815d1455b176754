"""Fault injection (Python and HTTP control endpoint) and the CLI."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import xmlrpc.client

import pytest
import XenAPI

from tests.functional.xapi_sim.helpers import connect
from tests.functional.xapi_sim.helpers import create_vdi
from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import default_sr
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import login


def control(sim_or_url, path: str, body=None):
    url = getattr(sim_or_url, 'control_url', sim_or_url)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def test_fail_next_fails_exactly_that_many_calls(sim, xapi):
    sim.faults.fail_next('VM.get_all', 2, ['HOST_OFFLINE', 'OpaqueRef:h'])
    for _ in range(2):
        assert failure_of(xapi.VM.get_all) == ['HOST_OFFLINE', 'OpaqueRef:h']
    assert xapi.VM.get_all()
    sim.faults.fail_next('VM.clone')
    vm = create_vm(xapi)
    task = xapi.Async.VM.clone(vm, 'x')
    deadline = time.monotonic() + 5
    while xapi.task.get_status(task) == 'pending':
        assert time.monotonic() < deadline
        getattr(xapi.event, 'from')(['task/%s' % task], '', 1.0)
    assert xapi.task.get_error_info(task)[0] == 'INTERNAL_ERROR'


def test_latency_slows_calls_and_shows_operations_in_progress(sim, xapi):
    vm = create_vm(xapi)
    sim.faults.latency('VM.start', 0.6)
    other = login(sim.hosts[0]).xenapi
    started = threading.Thread(target=xapi.VM.start, args=(vm, False, False))
    begin = time.monotonic()
    started.start()
    deadline = time.monotonic() + 5
    while not other.VM.get_current_operations(vm):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # Checked after the power state, as xapi does: start is valid now.
    detail = failure_of(other.VM.start, vm, False, False)
    assert detail[:4] == ['OTHER_OPERATION_IN_PROGRESS', 'VM', vm, 'start']
    started.join()
    assert time.monotonic() - begin >= 0.55
    assert other.VM.get_power_state(vm) == 'Running'
    sim.faults.latency('VM.start', 0)
    sim.faults.latency(None, 0.2)
    begin = time.monotonic()
    other.pool.get_all()
    assert time.monotonic() - begin >= 0.18
    sim.faults.clear()


def test_stopped_hosts_refuse_connections_and_come_back(sim):
    host = sim.hosts[1]
    client = login(host)
    sim.faults.stop_host(host.name)
    with pytest.raises(OSError):
        client.xenapi.pool.get_all()
    sim.faults.start_host(host.name)
    assert login(host).xenapi.pool.get_all()


def test_control_endpoint_drives_the_same_faults(sim, xapi):
    hosts = control(sim, '/hosts')
    assert [h['url'] for h in hosts['hosts']] == [h.url for h in sim.hosts]
    control(
        sim,
        '/faults/fail_next',
        {'method': 'pool.get_all', 'count': 1, 'error_list': ['X_FAILED']},
    )
    assert failure_of(xapi.pool.get_all) == ['X_FAILED']
    assert control(sim, '/faults/expire_sessions', {})['expired'] >= 1
    assert xapi.pool.get_all()  # the client logged in again
    control(sim, '/faults/stop_host', {'name': sim.hosts[2].name})
    with pytest.raises(OSError):
        login(sim.hosts[2])
    control(sim, '/faults/start_host', {'name': sim.hosts[2].address})
    login(sim.hosts[2])
    with pytest.raises(urllib.error.HTTPError) as info:
        control(sim, '/faults/stop_host', {'name': 'no-such-host'})
    assert info.value.code == 400


def test_kill_master_over_http(pooled):
    killed = control(pooled, '/faults/kill_master', {})['killed']
    assert killed == pooled.hosts[0].name
    with pytest.raises(OSError):
        login(pooled.hosts[0])


def run_cli(*args):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.Popen(
        [sys.executable, '-m', 'nova_hypervisors.cmd.main', 'xapi-sim', *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_cli_prints_hosts_serves_and_stops_on_sigterm(tmp_path):
    process = run_cli(
        '--hosts', '2', '--pooled', '--state-dir', str(tmp_path / 'disks')
    )
    try:
        info = json.loads(process.stdout.readline())
        first, second = info['hosts']
        assert first['url'].startswith('https://127.0.0.1:')
        assert first['http_url'].startswith('http://127.0.0.1:')
        assert second['address'] == '127.0.0.2'
        assert second['pool_master'] == first['name']
        # Only the run's CA (its file in the JSON line) makes https work.
        context = ssl.create_default_context(cafile=info['ca_file'])
        client = XenAPI.Session(
            first['url'],
            transport=xmlrpc.client.SafeTransport(context=context),
        )
        client.xenapi.login_with_password(first['username'], first['password'])
        assert len(client.xenapi.host.get_all()) == 2
        assert control(info['control_url'], '/hosts')['ok'] is True
        assert (tmp_path / 'disks').is_dir()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_cli_takes_the_password_from_a_file_not_its_argv(tmp_path):
    """A command line is visible to every user (ps); --password-file keeps
    the hosts' password off it."""
    secret = tmp_path / 'xenserver.password'
    secret.write_text('s3cret-from-a-file\n')
    secret.chmod(0o600)
    process = run_cli('--hosts', '1', '--password-file', str(secret))
    try:
        info = json.loads(process.stdout.readline())
        (host,) = info['hosts']
        assert host['password'] == 's3cret-from-a-file'
        cmdline = pathlib.Path(f'/proc/{process.pid}/cmdline').read_bytes()
        assert b's3cret-from-a-file' not in cmdline
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_cli_rejects_bad_arguments():
    process = run_cli('--hosts', 'three')
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert 'the number of hosts must be a whole number' in err
    process = run_cli('--port', '70000')
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert 'the port must be between 0 and 65535' in err


def test_fail_next_after_lets_calls_pass_first_and_calls_counts(sim, xapi):
    """A traced operation's n-th call can be failed: fail it ``after``
    the calls before it (how the fault campaign reaches every step)."""
    start = sim.faults.calls('VM.get_all')
    sim.faults.fail_next('VM.get_all', 1, ['HOST_OFFLINE', 'OpaqueRef:h'], 2)
    xapi.VM.get_all()
    xapi.VM.get_all()
    assert failure_of(xapi.VM.get_all) == ['HOST_OFFLINE', 'OpaqueRef:h']
    assert xapi.VM.get_all() is not None
    assert sim.faults.calls('VM.get_all') - start == 4
    counted = control(sim, '/faults/calls', {'method': 'VM.get_all'})
    assert counted['calls'] == sim.faults.calls('VM.get_all')


def test_sessions_expire_at_an_http_handler(sim, session, xapi):
    """xapi checks an HTTP handler's session_id itself
    (ocaml/xapi/xapi_http.ml, with_context) and answers 401 for one that
    expired; ``expire_sessions_on`` makes that happen at the handler."""
    vdi = create_vdi(xapi, default_sr(xapi))
    control(sim, '/faults/expire_sessions_on', {'method': 'export_raw_vdi'})
    conn = connect(sim.hosts[0])
    query = {'vdi': vdi, 'format': 'raw', 'session_id': session._session}
    conn.request('GET', '/export_raw_vdi?' + urllib.parse.urlencode(query))
    assert conn.getresponse().status == 401
    conn.close()
    assert session._session not in sim.db(sim.hosts[0]).get_all_records(
        'session'
    )
