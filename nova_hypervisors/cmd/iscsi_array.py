"""``nova-hypervisors iscsi-array``: a simulated iSCSI array (foreground).

It serves one portal on a loopback address: SendTargets discovery and
logins for hosts, and a management interface (LUNs created, grown and
deleted) for a storage driver, allowed with the admin secret only.  Prints
one JSON line (portal), then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import signal
import sys
import threading

from nova_hypervisors.cmd import _password as password

COMMAND = 'iscsi-array'
HELP = (
    'Run a simulated iSCSI array (a portal on a loopback address, LUN '
    'files under --state-dir) until interrupted.'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--address', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument(
        '--state-dir',
        type=pathlib.Path,
        required=True,
        help='where LUN files and the array state are kept',
    )
    password.add_argument(parser)


def run(args: argparse.Namespace) -> int:
    from nova_hypervisors.simulators import iscsi_target

    secret = password.read(args.password_file)
    try:
        array = iscsi_target.StorageArray(
            args.state_dir, args.address, args.port, admin_secret=secret
        ).start()
    except (OSError, ValueError) as exc:
        print(f'iscsi-array: {exc}', file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        print(json.dumps({'portal': array.portal}), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        array.stop()
    return 0
