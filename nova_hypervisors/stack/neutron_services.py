"""Starting the stack's networking: each XenServer host's Open vSwitch,
Neutron's RPC server and API, and one Open vSwitch agent per host.  How it
is wired, and its configuration, are in :mod:`.networking`."""

import time

from nova_hypervisors.stack import StackError
from nova_hypervisors.stack import computes as stack_computes
from nova_hypervisors.stack import keystone_api
from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import networking
from nova_hypervisors.stack import phase
from nova_hypervisors.stack import services as names


def xen_hosts(spec: stack_layout.Spec) -> list[str]:
    """The simulated XenServer hosts' names (xapi-sim names them so)."""
    return [
        stack_computes.fake_xen_host(index)
        for index in range(1, spec.xen_hosts + 1)
    ]


def start_switches(ctx: phase.Context) -> None:
    """Each XenServer host's Open vSwitch: database, then switch."""
    hosts = xen_hosts(ctx.spec)
    for host in hosts:
        switch = networking.switch(ctx.layout, host)
        env = dict(ctx.env, **switch.environment())
        server = networking.OVSDB_PREFIX + host
        if not ctx.supervisor.running(server):
            switch.create()
            record = ctx.supervisor.start(
                server, switch.ovsdb_server_argv(), env=env
            )
            phase.wait_path(ctx, record, switch.socket, timeout=30)
            switch.vsctl('init', wait=False)
        vswitchd = networking.VSWITCHD_PREFIX + host
        if not ctx.supervisor.running(vswitchd):
            ctx.supervisor.start(vswitchd, switch.vswitchd_argv(), env=env)
        # br-int is the agent's to make; physnet1's bridge is the host's.
        switch.add_bridge(networking.PHYSNET_BRIDGE)
    if hosts:
        ctx.report(f'Open vSwitch running for {", ".join(hosts)}')


def start_neutron(ctx: phase.Context) -> None:
    """neutron-rpc-server, then the neutron API under gunicorn.

    With vcsim running, ml2_conf.ini gets the vCenter compute's binding
    (vcsim's connection facts exist only now).
    """
    etc = ctx.layout.etc / 'neutron'
    neutron = (names.NEUTRON_API, names.NEUTRON_RPC)
    if names.VCSIM in stack_computes.simulators(ctx.spec) and not any(
        ctx.supervisor.running(service) for service in neutron
    ):
        networking.write_server(
            ctx.layout,
            ctx.spec,
            ctx.secrets,
            ctx.venv.path / 'etc',
            vcenter=networking.vcenter_section(
                stack_computes.facts(ctx.layout, names.VCSIM),
                stack_computes.VCENTER_HOST,
            ),
        )
    if not ctx.supervisor.running(names.NEUTRON_RPC):
        ctx.supervisor.start(
            names.NEUTRON_RPC,
            [
                ctx.venv.script('neutron-rpc-server'),
                '--config-file',
                str(etc / 'neutron.conf'),
                '--config-file',
                str(etc / 'ml2_conf.ini'),
                '--config-file',
                str(etc / f'{names.NEUTRON_RPC}.conf'),
            ],
            env=ctx.env,
        )
    phase.start_api(ctx, names.NEUTRON_API)
    phase.wait_consumers(ctx, ['q-plugin'], [names.NEUTRON_RPC])
    ctx.report('neutron-rpc-server consuming')


def start_agents(ctx: phase.Context, client: keystone_api.Client) -> None:
    """One Open vSwitch agent per XenServer host; wait until each is
    alive in Neutron (it reported its state over RPC)."""
    hosts = xen_hosts(ctx.spec)
    for host in hosts:
        service = networking.agent_service(host)
        if ctx.supervisor.running(service):
            continue
        # The agent also runs ovs-vsctl and ovsdb-client without naming
        # a database (neutron ovsdb_monitor, ovsdbapp helpers): they find
        # the host's switch through OVS_RUNDIR, as on the host itself.
        switch = networking.switch(ctx.layout, host)
        ctx.supervisor.start(
            service,
            [
                ctx.venv.script('neutron-openvswitch-agent'),
                '--config-file',
                str(ctx.layout.etc / 'neutron' / f'{service}.ini'),
            ],
            env=dict(ctx.env, **switch.environment()),
        )
    if not hosts:
        return
    url = phase.api_url(ctx, names.NEUTRON_API) + '/v2.0/agents'
    deadline = time.monotonic() + 120
    while True:
        agents = client.request('GET', url)['agents']
        alive = {
            agent['host']
            for agent in agents
            if agent['alive']
            and agent['binary'] == 'neutron-openvswitch-agent'
        }
        if alive >= set(hosts):
            break
        for host in hosts:
            service = networking.agent_service(host)
            if not ctx.supervisor.running(service):
                raise StackError(
                    f'{service} exited during start-up\n'
                    f'{ctx.supervisor.tail(service)}'
                )
        if time.monotonic() > deadline:
            raise StackError(
                f'Open vSwitch agents not alive within 120 s: '
                f'{", ".join(sorted(set(hosts) - alive))}'
            )
        time.sleep(0.5)
    ctx.report(f'Open vSwitch agents alive on {", ".join(hosts)}')
