"""The hypervisors behind the stack's nova-computes.

* XenServer: ``nova-hypervisors xapi-sim`` serves N simulated hosts, and one
  nova-compute per host runs ``nova_hypervisors.xenapi.XenAPIDriver`` with
  that host's ``[xenserver] connection_url``; the compute's ``host`` is the
  simulated host's name, as an operator names computes after hypervisors.
* vCenter: ``nova-hypervisors vcsim --tls`` serves one cluster of three
  ESXi hosts, and one nova-compute runs ``nova_hypervisors.vmwareapi.VCDriver``
  for that cluster (``[vmware] cluster_name``).
* ``--compute-driver fake``: the same computes, same host names, on Nova's
  fake driver and with no simulator, to exercise the stack machinery alone.

Simulators are children of the stack like every other service; each prints
one JSON line saying how to reach it, which is kept (mode 0600, it holds
credentials) in ``run/<simulator>.connection.json`` for the compute
configuration and for tests that look behind Nova's back.
"""

import json
import os
import pathlib
import time
import urllib.parse

from nova_hypervisors.stack import StackError
from nova_hypervisors.stack import configs
from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import networking
from nova_hypervisors.stack import procs

XAPI_SIM = 'xapi-sim'
VCSIM = 'vcsim'
VCENTER_HOST = 'vcenter-1'
VCSIM_CLUSTER = 'DC0_C0'
VCSIM_HOSTS_PER_CLUSTER = 3


def fake_xen_host(index: int) -> str:
    return f'xenserver-{index}'


def simulators(spec: stack_layout.Spec) -> list[str]:
    """The simulator services this spec needs."""
    if spec.compute_driver == stack_layout.DRIVER_FAKE:
        return []
    return ([XAPI_SIM] if spec.xen_hosts else []) + (
        [VCSIM] if spec.vcenter else []
    )


def start_simulators(
    layout: stack_layout.Layout,
    spec: stack_layout.Spec,
    supervisor: procs.Supervisor,
    nova_hypervisors: str,
    env: dict[str, str],
) -> None:
    """Start the simulators that are not already running (in parallel)."""
    started = []
    if XAPI_SIM in simulators(spec) and not supervisor.running(XAPI_SIM):
        argv = [
            nova_hypervisors,
            'xapi-sim',
            '--hosts',
            str(spec.xen_hosts),
            '--state-dir',
            str(layout.data_dir('xapi-sim')),
            '--port',
            str(spec.port('xapi-sim')),
            # The members of a pool share its root credentials, so every
            # simulated host gets the same password (from secrets.json),
            # in a file only we can read: never on a command line.
            '--password-file',
            str(layout.secret_file('xenserver')),
        ]
        # Each host's plugged VIFs go onto its own Open vSwitch.
        for index in range(1, spec.xen_hosts + 1):
            host = fake_xen_host(index)
            socket = networking.switch(layout, host).socket
            argv += ['--ovsdb', f'{host}={socket}']
        started.append(supervisor.start(XAPI_SIM, argv, env=env))
    if VCSIM in simulators(spec) and not supervisor.running(VCSIM):
        argv = [
            nova_hypervisors,
            'vcsim',
            '--clusters',
            '1',
            '--hosts-per-cluster',
            str(VCSIM_HOSTS_PER_CLUSTER),
            '--tls',
            '--password-file',
            str(layout.secret_file('vcenter')),
        ]
        started.append(supervisor.start(VCSIM, argv, env=env))
    for record in started:
        facts = _first_json_line(record, supervisor, timeout=120)
        _save_facts(layout, record.name, facts)
        if record.name == VCSIM and facts.get('pid'):
            # vcsim's Go process runs in a session of its own.
            supervisor.add_extra_pid(VCSIM, int(facts['pid']))


def facts(layout: stack_layout.Layout, simulator: str) -> dict:
    """What a simulator printed when it started (URL, credentials)."""
    path = facts_file(layout, simulator)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise StackError(
            f'{simulator} is not running (no {path}); run stack up'
        ) from None


def xen_hosts(layout: stack_layout.Layout) -> list[dict]:
    """The simulated XenServer hosts: name, url, username, password."""
    described = facts(layout, XAPI_SIM)
    hosts = described['hosts'] if isinstance(described, dict) else described
    return list(hosts)


def plan(
    layout: stack_layout.Layout, spec: stack_layout.Spec
) -> list[configs.Compute]:
    """The nova-computes of this spec, master-to-be first."""
    computes = []
    if spec.compute_driver == stack_layout.DRIVER_FAKE:
        computes += [
            configs.Compute(
                fake_xen_host(index), 'xenserver', stack_layout.FAKE_DRIVER
            )
            for index in range(1, spec.xen_hosts + 1)
        ]
        if spec.vcenter:
            computes.append(
                configs.Compute(
                    VCENTER_HOST, 'vcenter', stack_layout.FAKE_DRIVER
                )
            )
        return computes
    if spec.xen_hosts:
        ca_file = facts(layout, XAPI_SIM).get('ca_file')
        for host in xen_hosts(layout):
            xenserver = {
                'connection_url': host['url'],
                'connection_username': host['username'],
                'connection_password': host['password'],
                # xapi's plain-http port, where Nova's VNC proxy goes.
                'console_port': urllib.parse.urlsplit(host['http_url']).port,
            }
            if ca_file:
                xenserver['ca_file'] = ca_file
            computes.append(
                configs.Compute(
                    host['name'],
                    'xenserver',
                    stack_layout.XENAPI_DRIVER,
                    {
                        'xenserver': xenserver,
                        'compute': {
                            '#1': "A VIF reaches the destination host's "
                            'switch only when the domain does, inside '
                            'VM.pool_migrate: Neutron cannot say it is '
                            'plugged before the migration starts.',
                            'live_migration_wait_for_vif_plug': False,
                        },
                    },
                )
            )
    if spec.vcenter:
        vcenter = facts(layout, VCSIM)
        vmware: dict[str, object] = {
            'host_ip': vcenter['host'],
            'host_port': vcenter['port'],
            'host_username': vcenter['username'],
            'host_password': vcenter['password'],
            'cluster_name': VCSIM_CLUSTER,
        }
        if vcenter.get('ca_file'):
            vmware['ca_file'] = vcenter['ca_file']
        computes.append(
            configs.Compute(
                VCENTER_HOST,
                'vcenter',
                stack_layout.VMWARE_DRIVER,
                {'vmware': vmware},
            )
        )
    return computes


def _first_json_line(
    record: procs.Record, supervisor: procs.Supervisor, timeout: float
) -> dict:
    """The JSON line a simulator prints once it listens."""
    path = supervisor.output_file(record.name)
    marker = f'starting {record.name}'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text(errors='replace').splitlines()
        starts = [i for i, line in enumerate(lines) if marker in line]
        for line in lines[starts[-1] + 1 if starts else 0 :]:
            if line.startswith(('{', '[')):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        if not procs.alive(record.pid, record.start_time):
            raise StackError(
                f'{record.name} exited before describing itself\n'
                f'{supervisor.tail(record.name)}'
            )
        time.sleep(0.1)
    raise StackError(
        f'{record.name} printed no JSON line within {timeout:.0f} s\n'
        f'{supervisor.tail(record.name)}'
    )


def facts_file(layout: stack_layout.Layout, name: str) -> pathlib.Path:
    return layout.run / f'{name}.connection.json'


def _save_facts(
    layout: stack_layout.Layout, name: str, described: dict
) -> None:
    fd = os.open(
        facts_file(layout, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
    )
    with os.fdopen(fd, 'w') as stream:
        json.dump(described, stream, indent=2)
