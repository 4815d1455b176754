"""``nova-hypervisors demo``: the whole story on embedded simulators."""

import argparse

COMMAND = 'demo'
HELP = (
    'Build a XenServer pool from a Nova aggregate, boot, live-migrate and '
    'snapshot instances, and use a vCenter cluster as one Nova node -- all '
    'on embedded simulators, through the Nova REST API.'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--xen-hosts', type=int, default=3, metavar='N',
        help='simulated XenServer hosts in the pool (2..8, default 3)',
    )  # fmt: skip
    parser.add_argument(
        '--esxi-hosts', type=int, default=3, metavar='N',
        help='ESXi hosts in the vCenter cluster (default 3)',
    )  # fmt: skip
    parser.add_argument(
        '--no-vcenter', action='store_true',
        help='leave out the vCenter part',
    )  # fmt: skip
    parser.add_argument(
        '--serve', action='store_true',
        help='afterwards keep the clouds running and serve the Nova REST '
        'API on a local port until Ctrl-C',
    )  # fmt: skip
    parser.add_argument(
        '--log-file', default='nova-hypervisors-demo.log',
        help='where the services log (default: %(default)s)',
    )  # fmt: skip
    parser.add_argument(
        '--port', type=int, default=0,
        help='port for --serve (default: any free port)',
    )  # fmt: skip


def _quiet_logs(path: str) -> None:
    """Services log to a file; the terminal shows the story."""
    import logging
    import warnings

    warnings.simplefilter('ignore')
    logging.basicConfig(
        filename=path,
        level=logging.INFO,
        format='%(asctime)s %(levelname)s %(name)s %(message)s',
    )


def run(args: argparse.Namespace) -> int:
    if not 2 <= args.xen_hosts <= 8:
        raise SystemExit('--xen-hosts must be between 2 and 8')
    if not 1 <= args.esxi_hosts <= 8:
        raise SystemExit('--esxi-hosts must be between 1 and 8')
    _quiet_logs(args.log_file)
    from nova_hypervisors.demo import main

    print(f'(logs of every service: {args.log_file})', flush=True)
    return main.run(
        xen_hosts=args.xen_hosts,
        esxi_hosts=args.esxi_hosts,
        vcenter=not args.no_vcenter,
        serve=args.serve,
        port=args.port,
    )
