"""``nova-hypervisors vcsim``: build and run VMware's vCenter simulator.

Prints one JSON line (URL, credentials, CA file with ``--tls``) and serves
until interrupted, so a shell or a test harness can start it and read how to
connect from the first line of output.
"""

import argparse
import json
import signal
import sys
import threading

from nova_hypervisors.cmd import _password as password

COMMAND = 'vcsim'
HELP = (
    "Build (if needed) and start vcsim, govmomi's vCenter simulator, on "
    'loopback; print one JSON line describing how to connect.'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--clusters', type=int, default=1, metavar='N')
    parser.add_argument(
        '--hosts-per-cluster', type=int, default=3, metavar='N'
    )
    parser.add_argument(
        '--vms',
        type=int,
        default=0,
        metavar='N',
        help='VMs in each cluster (powered on)',
    )
    parser.add_argument(
        '--host-memory-mb', type=int, default=4096, metavar='MB'
    )
    parser.add_argument('--host-cpus', type=int, default=2, metavar='N')
    parser.add_argument(
        '--tls',
        action='store_true',
        help='serve HTTPS with a freshly generated CA (its file is printed)',
    )
    password.add_argument(parser)
    parser.add_argument(
        '--build-only',
        action='store_true',
        help='build the binary, print its path and exit',
    )


def run(args: argparse.Namespace) -> int:
    from nova_hypervisors.simulators import vcsim

    try:
        if args.build_only:
            print(json.dumps({'binary': str(vcsim.build())}), flush=True)
            return 0
        server = vcsim.start(
            clusters=args.clusters,
            hosts_per_cluster=args.hosts_per_cluster,
            vms=args.vms,
            use_tls=args.tls,
            host_memory_mb=args.host_memory_mb,
            host_cpus=args.host_cpus,
            password=password.read(args.password_file) or 'pass',
        )
    except vcsim.VcsimUnavailable as error:
        print(f'nova-hypervisors vcsim: {error}', file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        print(json.dumps(server.describe()), flush=True)
        try:
            while not stop.wait(3600):
                if server.process.poll() is not None:
                    return 1
        except KeyboardInterrupt:
            pass
    return 0
