"""How fast is the XenServer simulator?  (So it never slows driver tests.)

Prints, with the unmodified ``XenAPI`` client over HTTP:

* calls per second of a cheap call (``VM.get_power_state``): one client
  against a simulator in another process, four concurrent clients, and
  the simulator's own cost per call without HTTP;
* latency of ``VM.get_all_records_where`` with 1,000 and 10,000 VMs, for a
  query matching one VM and one matching them all, and the 10k/1k ratios.

Run: ``python benchmarks/xapi_sim_bench.py`` (about 20 seconds).
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import ssl
import statistics
import subprocess
import sys
import time
import xmlrpc.client

import XenAPI

from nova_hypervisors.simulators.xapi import SimulatedPool
from nova_hypervisors.simulators.xapi import bootstrap
from nova_hypervisors.simulators.xapi import codec

MIB = 1024 * 1024
CALLS = 2000


def login(
    url: str, username: str, password: str, ca_file: str | None
) -> XenAPI.Session:
    """Over https, trusting the simulator's CA, as a driver is set up."""
    context = ssl.create_default_context(cafile=ca_file)
    session = XenAPI.Session(
        url, transport=xmlrpc.client.SafeTransport(context=context)
    )
    session.xenapi.login_with_password(username, password, '1.0', 'bench')
    return session


def sequential_rate(session: XenAPI.Session, calls: int) -> float:
    xapi = session.xenapi
    vm = xapi.VM.get_all()[0]
    start = time.perf_counter()
    for _ in range(calls):
        xapi.VM.get_power_state(vm)
    return calls / (time.perf_counter() - start)


def _client_process(host: dict, calls: int, barrier, results) -> None:
    session = login(
        host['url'], host['username'], host['password'], host['ca_file']
    )
    xapi = session.xenapi
    vm = xapi.VM.get_all()[0]
    barrier.wait()
    start = time.perf_counter()
    for _ in range(calls):
        xapi.VM.get_power_state(vm)
    results.put(time.perf_counter() - start)


def concurrent_rate(host: dict, clients: int, calls: int) -> float:
    """Calls/s of ``clients`` client processes at once (no shared GIL)."""
    context = multiprocessing.get_context('fork')
    barrier = context.Barrier(clients)
    results = context.Queue()
    workers = [
        context.Process(
            target=_client_process, args=(host, calls, barrier, results)
        )
        for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    elapsed = max(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join()
    return clients * calls / elapsed


def out_of_process_rates() -> tuple[float, float]:
    process = subprocess.Popen(
        [sys.executable, '-m', 'nova_hypervisors.cmd.main', 'xapi-sim'],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        described = json.loads(process.stdout.readline())
        host = dict(described['hosts'][0], ca_file=described['ca_file'])
        session = login(
            host['url'], host['username'], host['password'], host['ca_file']
        )
        sequential_rate(session, 200)  # warm up
        one = sequential_rate(session, CALLS)
        four = concurrent_rate(host, 4, CALLS // 2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    return one, four


def dispatcher_rate(sim: SimulatedPool) -> float:
    """The simulator's own cost: decode, dispatch, encode; no HTTP."""
    import xmlrpc.client

    host = sim.hosts[0]
    ok, session = sim.dispatcher.call(
        host,
        'session.login_with_password',
        [host.username, host.password],
        codec.XMLRPC,
    )
    assert ok
    vm = sim.db(host).get_all('VM')[0]
    body = xmlrpc.client.dumps((session, vm), 'VM.get_power_state')
    start = time.perf_counter()
    for _ in range(CALLS):
        params, method = xmlrpc.client.loads(body)
        ok, value = sim.dispatcher.call(host, method, params, codec.XMLRPC)
        codec.xmlrpc_response({'Status': 'Success', 'Value': value})
    return CALLS / (time.perf_counter() - start)


def seed_vms(sim: SimulatedPool, count: int) -> None:
    """Create ``count`` halted VMs straight in the database (fast)."""
    store = sim.db(sim.hosts[0]).store
    existing = sum(
        1
        for vm in store.records('VM').values()
        if vm['name_label'][:3] == 'vm-'
    )
    with store.lock:
        for index in range(existing, count):
            store.create(
                'VM',
                bootstrap.vm_values(
                    name_label='vm-%d' % index,
                    memory=512 * MIB,
                    vcpus=1,
                    metrics=bootstrap.create_vm_metrics(store),
                    other_config={'nova_uuid': 'instance-%d' % index},
                ),
            )


def simulator_latency(sim: SimulatedPool, expr: str) -> float:
    """ms the simulator itself spends on a query: dispatch and encoding."""
    host = sim.hosts[0]
    ok, session = sim.dispatcher.call(
        host,
        'session.login_with_password',
        [host.username, host.password],
        codec.XMLRPC,
    )
    start = time.perf_counter()
    ok, value = sim.dispatcher.call(
        host, 'VM.get_all_records_where', [session, expr], codec.XMLRPC
    )
    codec.xmlrpc_response({'Status': 'Success', 'Value': value})
    assert ok
    return (time.perf_counter() - start) * 1000


def query_latency(xapi, expr: str, repeat: int) -> tuple[float, int]:
    samples = []
    found = 0
    for _ in range(repeat):
        start = time.perf_counter()
        found = len(xapi.VM.get_all_records_where(expr))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000, found


def main() -> int:
    print('XenServer simulator benchmark (XenAPI client over HTTPS)')
    one, four = out_of_process_rates()
    with SimulatedPool(hosts=1) as sim:
        host = sim.hosts[0]
        session = login(host.url, host.username, host.password, sim.ca_file)
        sequential_rate(session, 200)
        in_process = sequential_rate(session, CALLS)
        own = dispatcher_rate(sim)
        print()
        print('calls/s, VM.get_power_state:')
        print('  1 client, simulator in another process  %8.0f' % one)
        print('  4 client processes, simulator in another  %8.0f' % four)
        print('  1 client, simulator in the same process %8.0f' % in_process)
        print('  simulator alone (no HTTP, no client)    %8.0f' % own)
        print(
            '  share of a call spent in the simulator  %8.0f%%'
            % (100.0 * one / own)
        )
        results = {}
        for count in (1000, 10000):
            seed_vms(sim, count)
            xapi = session.xenapi
            one_vm = 'field "name__label"="vm-%d"' % (count // 2)
            every = (
                'field "is_a_template"="false" and field '
                '"is_control_domain"="false"'
            )
            results[count] = (
                query_latency(xapi, one_vm, 20),
                query_latency(xapi, every, 3 if count < 10000 else 1),
                simulator_latency(sim, one_vm),
                simulator_latency(sim, every),
            )
        print()
        print('VM.get_all_records_where latency (median ms):')
        print(
            '  %-28s %10s %10s %8s'
            % ('query', '1,000 VMs', '10,000 VMs', 'ratio')
        )
        for label, index in (
            ('one VM by name__label', 0),
            ('all VMs (full records)', 1),
        ):
            small, _ = results[1000][index]
            large, found = results[10000][index]
            print(
                '  %-28s %10.1f %10.1f %7.1fx'
                % (label, small, large, large / small)
            )
            small = results[1000][index + 2]
            large = results[10000][index + 2]
            print(
                '  %-28s %10.1f %10.1f %7.1fx'
                % ('  of which the simulator', small, large, large / small)
            )
        print('  (the rest is HTTP and the XenAPI client parsing the XML)')
        assert results[10000][0][1] == 1
        assert results[10000][1][1] == 10000
    print()
    print('queries return the expected counts: 1 and 10000')
    return 0


if __name__ == '__main__':
    sys.exit(main())
