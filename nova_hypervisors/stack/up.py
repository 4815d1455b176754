"""``stack up``: bring the whole cloud up, or finish bringing it up.

The order is the one found to work (shared/STACK.md): database, broker,
the XenServer hosts' switches and the simulators first; schemas; keystone
and the catalog (placement must be in it before any nova service starts);
the other APIs, conductor and scheduler; nova-compute only once the
conductor consumes its queue; then ``discover_hosts``.  Neutron's RPC
server and API start once the simulators' facts exist, its agents once the
switches run (:mod:`.neutron_services`).  Whatever still runs from an
earlier ``stack up`` is left alone, so running ``stack up`` twice is
harmless.
"""

import concurrent.futures
import os
import pathlib
import time

from nova_hypervisors.stack import StackError
from nova_hypervisors.stack import bootstrap
from nova_hypervisors.stack import computes as stack_computes
from nova_hypervisors.stack import configs
from nova_hypervisors.stack import keystone_api
from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import mariadb
from nova_hypervisors.stack import networking
from nova_hypervisors.stack import neutron_services
from nova_hypervisors.stack import openrc
from nova_hypervisors.stack import packages
from nova_hypervisors.stack import phase
from nova_hypervisors.stack import ports
from nova_hypervisors.stack import procs
from nova_hypervisors.stack import rabbitmq
from nova_hypervisors.stack import services as names
from nova_hypervisors.stack import venv as stack_venv
from nova_hypervisors.stack import wsgi


def up(
    layout: stack_layout.Layout,
    spec: stack_layout.Spec,
    checkout: str | None,
    install_mode: str,
    report: phase.Clock,
) -> dict:
    """Bring the stack up; returns timings for the caller to print."""
    layout.create()
    programs = packages.require(list(packages.PROGRAMS))
    supervisor = procs.Supervisor(layout.run, layout.log)
    services_venv = stack_venv.Venv(pathlib.Path(spec.venv))
    anything_running = any(
        supervisor.running(record.name) for record in supervisor.records()
    )
    venv_started = time.monotonic()
    if anything_running and services_venv.exists():
        # Never reinstall under running services.
        report(f'venv {services_venv.path} in use by running services')
    else:
        services_venv.ensure(
            stack_venv.find_checkout(checkout), install_mode, report
        )
    venv_seconds = time.monotonic() - venv_started
    report(f'venv ready ({venv_seconds:.1f} s)')
    layout.save_spec(spec)
    secrets = layout.load_secrets()
    ctx = phase.Context(
        layout=layout,
        spec=spec,
        secrets=secrets,
        venv=services_venv,
        supervisor=supervisor,
        programs=programs,
        env=names.environment(services_venv),
        report=report,
    )
    services_started = time.monotonic()
    _check_ports(ctx)
    _write_configs(ctx)
    steps = bootstrap.Steps(
        layout, spec, secrets, services_venv, ctx.env, report
    )
    client = _start_services(ctx, steps)
    computes = _start_computes(ctx, client, steps)
    openrc.write(layout, spec, secrets)
    total = time.monotonic() - services_started
    report(
        f'stack up: {len(computes)} compute(s) in {total:.1f} s '
        f'(plus {venv_seconds:.1f} s for the venv)'
    )
    return {
        'venv_seconds': round(venv_seconds, 1),
        'services_seconds': round(total, 1),
        'computes': [compute.host for compute in computes],
    }


# -- preflight ---------------------------------------------------------------


def _check_ports(ctx: phase.Context) -> None:
    """Every port a service still to start needs must be free, up front."""
    owners = {
        'mariadb': [names.MARIADB],
        'epmd': [names.EPMD],
        'rabbitmq': [names.RABBITMQ],
        'rabbitmq-dist': [names.RABBITMQ],
        'keystone': [names.KEYSTONE],
        'glance': [names.GLANCE],
        'placement': [names.PLACEMENT],
        'nova-api': [names.NOVA_API],
        'neutron': [names.NEUTRON_API],
        'openflow': [
            networking.agent_service(host)
            for host in neutron_services.xen_hosts(ctx.spec)
        ],
        'xapi-sim': [names.XAPI_SIM],
        'cinder': [names.CINDER_API],
        'iscsi-array': [names.ISCSI_ARRAY],
    }
    if names.XAPI_SIM not in stack_computes.simulators(ctx.spec):
        owners.pop('xapi-sim')
    busy = []
    for port_name, services in owners.items():
        if any(ctx.supervisor.running(service) for service in services):
            continue
        port = ctx.spec.port(port_name)
        # The simulated XenServer hosts listen on 127.0.0.1, .2, ...
        hosts = (
            [f'127.0.0.{i}' for i in range(1, ctx.spec.xen_hosts + 1)]
            if port_name == 'xapi-sim'
            else [stack_layout.LOOPBACK]
        )
        wanted = [(port, host) for host in hosts]
        if port_name == 'openflow':  # one per agent
            wanted = [
                (port + i, stack_layout.LOOPBACK)
                for i in range(ctx.spec.xen_hosts)
            ]
        for port, host in wanted:
            if not ports.can_bind(port, host):
                held = ports.holder(port) or f'{host}:{port} is not free'
                busy.append(f'  {port_name} needs {host}:{port}: {held}')
    if busy:
        raise StackError(
            'ports in use:\n' + '\n'.join(busy) + '\nstop what holds them, '
            'or give this stack other ports with --port-offset N'
        )


def _write_configs(ctx: phase.Context) -> None:
    venv_etc = ctx.venv.path / 'etc'
    configs.write_keystone(ctx.layout, ctx.spec, ctx.secrets)
    configs.write_glance(ctx.layout, ctx.spec, ctx.secrets, venv_etc)
    configs.write_placement(ctx.layout, ctx.spec, ctx.secrets)
    configs.write_cinder(ctx.layout, ctx.spec, ctx.secrets, venv_etc)
    for service in (
        names.CINDER_API,
        names.CINDER_SCHEDULER,
        names.CINDER_VOLUME,
    ):
        configs.write_cinder_service(ctx.layout, service)
    networking.write_server(ctx.layout, ctx.spec, ctx.secrets, venv_etc)
    for index, host in enumerate(neutron_services.xen_hosts(ctx.spec)):
        networking.write_agent(
            ctx.layout, ctx.spec, ctx.secrets, host, index, ctx.venv.bin
        )
    configs.write_nova(ctx.layout, ctx.spec, ctx.secrets, venv_etc)
    for service in (names.NOVA_API, names.CONDUCTOR, names.SCHEDULER):
        configs.write_nova_service(ctx.layout, service)
    configs.write_pool_agent(ctx.layout)
    ctx.report(f'configuration written to {ctx.layout.etc}')


# -- phases ------------------------------------------------------------------


def _start_services(
    ctx: phase.Context, steps: bootstrap.Steps
) -> keystone_api.Client:
    """Everything but the computes, each as early as its dependencies allow.

    Each project's path (schema, then its API) runs as soon as MariaDB
    answers, so nova's long schema migration overlaps keystone's bootstrap
    and the other APIs' start.  Nova's services wait for the catalog on a
    first bring-up only (placement must be in it before they start).
    """
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        database = pool.submit(_start_database, ctx)
        broker = pool.submit(_start_broker, ctx)
        switches = pool.submit(neutron_services.start_switches, ctx)

        def simulators_after_switches() -> None:
            switches.result()  # xapi-sim puts VIFs on them from the start
            _start_simulators(ctx)

        simulators = pool.submit(simulators_after_switches)
        tasks = [database, broker, switches, simulators]
        catalog_known = steps.catalog_done()

        def keystone() -> keystone_api.Client:
            database.result()
            steps.keystone()
            return _start_keystone(ctx, steps)

        keystone_ready = pool.submit(keystone)

        def api(name: str, schema) -> None:
            database.result()
            schema()
            phase.start_api(ctx, name)

        def nova() -> None:
            database.result()
            steps.nova()
            broker.result()
            if not catalog_known:
                keystone_ready.result()
            _start_nova(ctx)

        def pool_agent() -> None:
            broker.result()
            _start_pool_agent(ctx)

        def neutron() -> None:
            database.result()
            steps.neutron()
            broker.result()
            simulators.result()  # vcsim's facts, for the vCenter binding
            neutron_services.start_neutron(ctx)
            switches.result()
            neutron_services.start_agents(ctx, keystone_ready.result())

        def cinder() -> None:
            database.result()
            steps.cinder()
            broker.result()
            simulators.result()
            _start_cinder(ctx)

        tasks += [
            keystone_ready,
            pool.submit(api, names.GLANCE, steps.glance),
            pool.submit(api, names.PLACEMENT, steps.placement),
            pool.submit(nova),
            pool.submit(pool_agent),
            pool.submit(cinder),
            pool.submit(neutron),
        ]
        _first_failure(tasks)
        return keystone_ready.result()


def _first_failure(tasks: list[concurrent.futures.Future]) -> None:
    """Wait for all; raise the first exception in completion order."""
    for future in concurrent.futures.as_completed(tasks):
        error = future.exception()
        if error is not None:
            raise error


def _start_database(ctx: phase.Context) -> None:
    if not ctx.supervisor.running(names.MARIADB):
        record = mariadb.start(
            ctx.layout, ctx.spec, ctx.supervisor, ctx.programs
        )
        ctx.report(
            f'mariadb listening on 127.0.0.1:{ctx.spec.port("mariadb")} '
            f'(pid {record.pid})'
        )
    mariadb.create_databases(ctx.layout, ctx.spec, ctx.secrets, ctx.programs)


def _start_broker(ctx: phase.Context) -> None:
    if ctx.supervisor.running(names.RABBITMQ):
        return
    record = rabbitmq.start(
        ctx.layout, ctx.spec, ctx.secrets, ctx.supervisor, ctx.programs
    )
    ctx.report(
        f'rabbitmq listening on 127.0.0.1:{ctx.spec.port("rabbitmq")} '
        f'(pid {record.pid})'
    )


def _start_simulators(ctx: phase.Context) -> None:
    wanted = stack_computes.simulators(ctx.spec)
    if not wanted:
        return
    stack_computes.start_simulators(
        ctx.layout,
        ctx.spec,
        ctx.supervisor,
        ctx.venv.script('nova-hypervisors'),
        ctx.env,
    )
    ctx.report(f'simulators ready: {", ".join(wanted)}')


def _start_keystone(
    ctx: phase.Context, steps: bootstrap.Steps
) -> keystone_api.Client:
    record = ctx.supervisor.running(names.KEYSTONE) or wsgi.start(
        wsgi.services(ctx.layout)[names.KEYSTONE],
        ctx.layout,
        ctx.spec,
        ctx.supervisor,
        ctx.venv.script('gunicorn'),
        ctx.env,
    )
    identity = configs.service_urls(ctx.spec)['identity']
    wsgi.wait_answering(record, identity, ctx.supervisor)
    ctx.report(f'keystone answering at {identity}')
    client = keystone_api.Client(
        configs.keystone_url(ctx.spec), ctx.secrets['admin']
    )
    client.login()
    if steps.catalog(client):
        client.login()  # a token whose catalog lists the new services
        ctx.report('catalog and service users registered')
    return client


def _start_nova(ctx: phase.Context) -> None:
    """nova-conductor, nova-scheduler and nova-api."""
    nova_conf = str(ctx.layout.etc / 'nova' / 'nova.conf')
    for daemon in (names.CONDUCTOR, names.SCHEDULER):
        if not ctx.supervisor.running(daemon):
            ctx.supervisor.start(
                daemon,
                [
                    ctx.venv.script(daemon),
                    '--config-file',
                    nova_conf,
                    '--config-file',
                    str(ctx.layout.etc / 'nova' / f'{daemon}.conf'),
                ],
                env=ctx.env,
            )
    phase.start_api(ctx, names.NOVA_API)
    phase.wait_consumers(ctx, ['conductor', 'scheduler'])
    ctx.report('nova-conductor and nova-scheduler consuming')


def _start_cinder(ctx: phase.Context) -> None:
    """The simulated iSCSI array, then cinder-api, -scheduler, -volume.

    With vcsim running, cinder.conf gets the ``vcenter`` backend too (its
    connection facts exist only now) and the WSDL it needs.
    """
    if names.VCSIM in stack_computes.simulators(
        ctx.spec
    ) and not ctx.supervisor.running(names.CINDER_VOLUME):
        # pyVmomi is in the services' venv, where stack up runs; the
        # stack's own test env imports this module without it.
        from nova_hypervisors.simulators.vcsim import wsdl as vim_wsdl

        configs.write_cinder(
            ctx.layout,
            ctx.spec,
            ctx.secrets,
            ctx.venv.path / 'etc',
            vcenter=stack_computes.facts(ctx.layout, names.VCSIM),
            wsdl=vim_wsdl.write(ctx.layout.data_dir('cinder') / 'vim25'),
        )
    if not ctx.supervisor.running(names.ISCSI_ARRAY):
        array = ctx.supervisor.start(
            names.ISCSI_ARRAY,
            [
                ctx.venv.script('nova-hypervisors'),
                'iscsi-array',
                '--port',
                str(ctx.spec.port('iscsi-array')),
                '--state-dir',
                str(ctx.layout.data_dir('iscsi-array')),
                '--password-file',
                str(ctx.layout.secret_file('array')),
            ],
            env=ctx.env,
            listen=(ctx.spec.port('iscsi-array'),),
        )
        phase.wait_output(ctx, array, 'portal', timeout=60)
    cinder_conf = str(ctx.layout.etc / 'cinder' / 'cinder.conf')
    for daemon in (names.CINDER_SCHEDULER, names.CINDER_VOLUME):
        if not ctx.supervisor.running(daemon):
            ctx.supervisor.start(
                daemon,
                [
                    ctx.venv.script(daemon),
                    '--config-file',
                    cinder_conf,
                    '--config-file',
                    str(ctx.layout.etc / 'cinder' / f'{daemon}.conf'),
                ],
                env=ctx.env,
            )
    phase.start_api(ctx, names.CINDER_API)
    phase.wait_consumers(
        ctx,
        ['cinder-scheduler', 'cinder-volume'],
        [names.CINDER_SCHEDULER, names.CINDER_VOLUME],
    )
    backends = ['the simulated iSCSI array']
    if names.VCSIM in stack_computes.simulators(ctx.spec):
        backends.append("vcsim's cluster (Cinder's VMDK driver)")
    ctx.report(
        'cinder-scheduler and cinder-volume consuming (backends: '
        + ', '.join(backends)
        + ')'
    )


def _start_pool_agent(ctx: phase.Context) -> None:
    if ctx.supervisor.running(names.POOL_AGENT):
        return
    nova_conf = str(ctx.layout.etc / 'nova' / 'nova.conf')
    agent = ctx.supervisor.start(
        names.POOL_AGENT,
        [
            ctx.venv.script('nova-hypervisors'),
            'pool-agent',
            '--config-file',
            nova_conf,
            '--config-file',
            str(ctx.layout.etc / 'nova' / 'pool-agent.conf'),
        ],
        env=ctx.env,
    )
    phase.wait_output(ctx, agent, 'pool agent ready', timeout=120)
    ctx.report('pool agent listening to versioned notifications')


def _start_computes(
    ctx: phase.Context, client: keystone_api.Client, steps: bootstrap.Steps
) -> list[configs.Compute]:
    computes = stack_computes.plan(ctx.layout, ctx.spec)
    for compute in computes:
        path = configs.write_compute(
            ctx.layout, ctx.spec, ctx.secrets, compute
        )
        if ctx.supervisor.running(compute.service):
            continue
        ctx.supervisor.start(
            compute.service,
            [ctx.venv.script('nova-compute'), '--config-file', str(path)],
            env=ctx.env,
        )
    hosts = [compute.host for compute in computes]
    if not hosts:
        return computes
    phase.wait_consumers(
        ctx,
        [f'compute.{host}' for host in hosts],
        services=[compute.service for compute in computes],
        timeout=180,
    )
    ctx.report(f'nova-compute consuming for {", ".join(hosts)}')
    # A compute creates its node record before it consumes RPC, so every
    # node can be mapped now; the hypervisors API lists mapped nodes only.
    steps.discover_hosts(hosts)
    _wait_hypervisors(ctx, client, hosts)
    ctx.report('hypervisors registered')
    return computes


# -- waiting -----------------------------------------------------------------


def _wait_hypervisors(
    ctx: phase.Context,
    client: keystone_api.Client,
    hosts: list[str],
    timeout: float = 60,
) -> None:
    """Each compute host has a hypervisor record in its cell."""
    deadline = time.monotonic() + timeout
    missing = set(hosts)
    while time.monotonic() < deadline:
        found = client.compute('/os-hypervisors/detail')['hypervisors']
        missing = set(hosts) - {
            hypervisor['service']['host'] for hypervisor in found
        }
        if not missing:
            return
        time.sleep(1)
    raise StackError(
        f'no hypervisor registered for {", ".join(sorted(missing))} within '
        f'{timeout:.0f} s; see {ctx.layout.log}'
    )


def venv_path(explicit: str | None, saved: str | None) -> str:
    if explicit:
        return str(os.path.abspath(explicit))
    if saved:
        return saved
    return str(stack_venv.default_path())
