"""``nova-hypervisors xapi-sim``: simulated XenServer hosts, in the foreground.

Prints one JSON line (every host's name, URL, username and password, and
the fault-injection control URL), then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from nova_hypervisors.cmd import _password as password

COMMAND = 'xapi-sim'
HELP = (
    'Run simulated XenServer hosts (XenAPI over HTTP on 127.0.0.x) '
    'until interrupted.'
)
MAX_HOSTS = 250


def _bounded_int(low: int, high: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                '%s must be a whole number, not %r' % (what, text)
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                '%s must be between %d and %d, not %d'
                % (what, low, high, value)
            )
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--hosts',
        type=_bounded_int(1, MAX_HOSTS, 'the number of hosts'),
        default=1,
        help='how many hosts, on 127.0.0.1, 127.0.0.2, ... (default 1)',
    )
    parser.add_argument(
        '--pooled',
        action='store_true',
        help="join every host to the first host's pool at start",
    )
    parser.add_argument(
        '--state-dir',
        help='where VDI bytes are kept (default: a temporary directory '
        'removed at exit)',
    )
    parser.add_argument(
        '--port',
        type=_bounded_int(0, 65535, 'the port'),
        default=0,
        help='the port every host listens on (default: a free one)',
    )
    parser.add_argument(
        '--host-memory-mib',
        type=_bounded_int(1024, 1 << 24, 'the host memory'),
        default=16384,
        help='memory of each host in MiB (default 16384)',
    )
    passwords = parser.add_mutually_exclusive_group()
    passwords.add_argument(
        '--password',
        help='one root password for every host (default: one per host)',
    )
    password.add_argument(passwords)
    parser.add_argument(
        '--ovsdb',
        action='append',
        default=[],
        metavar='HOST=SOCKET',
        help="a host's Open vSwitch database socket (repeatable): that "
        "host's plugged VIFs become ports of its switch, as xapi's vif "
        'script makes them',
    )
    parser.add_argument(
        '--local-storage-only',
        action='store_true',
        help='no shared SR: every host has only its local SR, and the '
        "pool's default SR is the master's local storage, as on a "
        'freshly made pool',
    )


def run(args: argparse.Namespace) -> int:
    from nova_hypervisors.simulators.xapi import switches

    if args.state_dir:
        try:
            os.makedirs(args.state_dir, exist_ok=True)
        except OSError as exc:
            print(
                'xapi-sim: cannot use --state-dir %s: %s'
                % (args.state_dir, exc.strerror),
                file=sys.stderr,
            )
            return 2
        if not os.access(args.state_dir, os.W_OK):
            print(
                'xapi-sim: --state-dir %s is not writable' % args.state_dir,
                file=sys.stderr,
            )
            return 2
    ovsdb = {}
    for item in args.ovsdb:
        host, _, socket_path = item.partition('=')
        if not host or not socket_path:
            print(
                'xapi-sim: --ovsdb takes HOST=SOCKET, not %r' % item,
                file=sys.stderr,
            )
            return 2
        ovsdb[host] = socket_path
    try:
        sim = _simulator(args, ovsdb)
    except ValueError as exc:
        print('xapi-sim: %s' % exc, file=sys.stderr)
        return 2
    try:
        sim.start()
    except (OSError, switches.SwitchError) as exc:
        print('xapi-sim: %s' % exc, file=sys.stderr)
        sim.stop()
        return 1
    stop = threading.Event()

    def request_stop(_signum, _frame) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, request_stop)
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        print(json.dumps(sim.describe()), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _simulator(args: argparse.Namespace, ovsdb: dict[str, str]):
    from nova_hypervisors.simulators.xapi import SimulatedPool

    return SimulatedPool(
        hosts=args.hosts,
        state_dir=args.state_dir,
        pooled=args.pooled,
        port=args.port,
        host_memory_mib=args.host_memory_mib,
        password=args.password or password.read(args.password_file),
        shared_sr=not args.local_storage_only,
        ovsdb=ovsdb,
    )
