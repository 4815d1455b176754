"""``nova-hypervisors stack``: a real OpenStack on this machine, on loopback.

``stack up`` brings up MariaDB, RabbitMQ, keystone, glance, placement,
nova-api, nova-conductor, nova-scheduler, the simulators, one nova-compute
per simulated hypervisor host and the pool agent, and prints an openrc;
``stack down`` stops every process it started, by PID; ``stack status``
shows them; ``stack venv`` only prepares the services' virtualenv.  See
doc/source/stack.rst.
"""

import argparse
import json
import pathlib
import sys

COMMAND = 'stack'
HELP = (
    'Run keystone, glance, placement and nova with our drivers and '
    'simulators on 127.0.0.1: stack up | down | status | venv.'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from nova_hypervisors.stack import layout
    from nova_hypervisors.stack import venv

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        '--state-dir',
        type=pathlib.Path,
        default=None,
        metavar='DIR',
        help='where configuration, data, logs and PID files live (default: '
        f'$NOVA_HYPERVISORS_STACK_DIR or {layout.default_state_dir()})',
    )
    actions = parser.add_subparsers(dest='action', metavar='ACTION')
    actions.required = True

    up = actions.add_parser(
        'up',
        parents=[common],
        help='bring the stack up (or finish bringing it up)',
        description='Bring the stack up. Options not given keep the values '
        'of the previous stack up in this state directory.',
    )
    up.add_argument(
        '--xen-hosts',
        type=int,
        default=None,
        metavar='N',
        help='simulated XenServer hosts, one nova-compute each (default 2; '
        '0 for none)',
    )
    up.add_argument(
        '--vcenter',
        action=argparse.BooleanOptionalAction,
        default=None,
        help='run vcsim and one nova-compute for its cluster (default for '
        'a new stack on our drivers when vcsim can be built; --no-vcenter '
        'leaves it out)',
    )
    up.add_argument(
        '--compute-driver',
        choices=[layout.DRIVER_REAL, layout.DRIVER_FAKE],
        default=None,
        help='"real": our XenAPI and VMware drivers on the simulators '
        '(default); "fake": Nova\'s fake driver and no simulator, to test '
        'the stack machinery alone',
    )
    up.add_argument(
        '--port-offset',
        type=int,
        default=None,
        metavar='N',
        help='add N to every port (keystone 5000+N, ...) to run beside '
        'something that holds the usual ports',
    )
    _venv_arguments(up, venv)

    actions.add_parser(
        'down', parents=[common], help='stop every process of the stack'
    )
    status = actions.add_parser(
        'status', parents=[common], help='show the processes of the stack'
    )
    status.add_argument(
        '--json', action='store_true', help='print one JSON document'
    )
    prepare = actions.add_parser(
        'venv',
        help="create or update the services' virtualenv, and nothing else",
    )
    _venv_arguments(prepare, venv)


def _venv_arguments(parser: argparse.ArgumentParser, venv) -> None:
    parser.add_argument(
        '--venv',
        default=None,
        metavar='DIR',
        help="the services' virtualenv (default: $NOVA_HYPERVISORS_STACK_VENV "
        f'or {venv.default_path()})',
    )
    parser.add_argument(
        '--project',
        default=None,
        metavar='DIR',
        help='the nova-hypervisors checkout to install into it (default: '
        'the one this command runs from)',
    )
    parser.add_argument(
        '--install-mode',
        choices=list(venv.MODES),
        default='wheel',
        help='"wheel" (as operators install it) or "editable" (a '
        'developer checkout with uncommitted files)',
    )


def run(args: argparse.Namespace) -> int:
    from nova_hypervisors.stack import StackError

    try:
        return _ACTIONS[args.action](args)
    except StackError as error:
        print(
            f'nova-hypervisors stack {args.action}: {error}', file=sys.stderr
        )
        return 1


def _layout(args: argparse.Namespace):
    from nova_hypervisors.stack import layout

    return layout.Layout(args.state_dir or layout.default_state_dir())


def _up(args: argparse.Namespace) -> int:
    from nova_hypervisors.stack import phase
    from nova_hypervisors.stack import up

    state = _layout(args)
    spec = requested_spec(args, state)
    spec.venv = up.venv_path(args.venv, spec.venv)
    clock = phase.Clock(lambda line: print(line, flush=True))
    clock(f'stack up in {state.root}')
    try:
        timings = up.up(state, spec, args.project, args.install_mode, clock)
    except BaseException:
        print(
            'nova-hypervisors stack up: stopped part-way; what started is '
            'still running: see "nova-hypervisors stack status", stop it '
            'with "nova-hypervisors stack down"; logs in '
            f'{state.log}',
            file=sys.stderr,
        )
        raise
    print(f'\n# openrc ({state.openrc}):')
    print(state.openrc.read_text(), end='')
    print(f'# timings: {json.dumps(timings)}')
    return 0


def requested_spec(args: argparse.Namespace, state):
    """What this ``stack up`` asks for: the options given, else those of
    the previous ``stack up`` in this state directory, else the defaults
    (both of our drivers, when vcsim can be built here)."""
    from nova_hypervisors.stack import layout as stack_layout

    saved = state.load_spec()
    spec = saved or stack_layout.Spec()
    for option in ('xen_hosts', 'vcenter', 'compute_driver', 'port_offset'):
        value = getattr(args, option)
        if value is not None:
            setattr(spec, option, value)
    if saved is None and args.vcenter is None:
        spec.vcenter = default_vcenter(spec)
    return spec


def default_vcenter(spec) -> bool:
    """A new stack on our drivers runs the vCenter compute too, when
    vcsim can be built on this machine (Go and govmomi's source)."""
    from nova_hypervisors.simulators import vcsim
    from nova_hypervisors.stack import layout as stack_layout

    return spec.compute_driver == stack_layout.DRIVER_REAL and bool(
        vcsim.available()
    )


def _down(args: argparse.Namespace) -> int:
    from nova_hypervisors.stack import control

    state = _layout(args)
    if not state.run.exists():
        print(f'no stack in {state.root}')
        return 0
    stopped = control.down(state)
    print(
        f'stack down: stopped {len(stopped)} service(s); no process or '
        'port of the stack is left'
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from nova_hypervisors.stack import control

    state = _layout(args)
    found = control.status(state) if state.run.exists() else []
    spec = state.load_spec()
    if args.json:
        print(
            json.dumps(
                {
                    'state_dir': str(state.root),
                    'spec': spec.__dict__ if spec else None,
                    'openrc': str(state.openrc),
                    'services': [service.__dict__ for service in found],
                },
                indent=2,
            )
        )
        return 0
    if not found:
        print(f'no stack in {state.root}')
        return 0
    print(f'stack in {state.root}  (openrc: {state.openrc})')
    for service in found:
        state_word = 'running' if service.running else 'STOPPED'
        print(
            f'  {service.name:<34} {state_word:<8} pid {service.pid:<8} '
            f'{" ".join(service.listening)}'
        )
    return 0 if all(service.running for service in found) else 3


def _venv(args: argparse.Namespace) -> int:
    import time

    from nova_hypervisors.stack import up
    from nova_hypervisors.stack import venv

    started = time.monotonic()
    services_venv = venv.Venv(pathlib.Path(up.venv_path(args.venv, None)))
    changed = services_venv.ensure(
        venv.find_checkout(args.project), args.install_mode
    )
    print(
        f'venv {services_venv.path} '
        f'{"updated" if changed else "up to date"} in '
        f'{time.monotonic() - started:.1f} s'
    )
    return 0


_ACTIONS = {'up': _up, 'down': _down, 'status': _status, 'venv': _venv}
