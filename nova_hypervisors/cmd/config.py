"""``nova-hypervisors config``: print our options as a nova.conf sample."""

import argparse
import sys

from oslo_config import generator

COMMAND = 'config'
HELP = 'Print a sample nova.conf section for every option of ours.'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--output-file', help='write the sample here instead of stdout'
    )


def run(args: argparse.Namespace) -> int:
    argv = ['--namespace', 'nova_hypervisors']
    if args.output_file:
        argv += ['--output-file', args.output_file]
    conf = generator.cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    conf(argv, project='nova_hypervisors')
    generator.generate(conf, sys.stdout if not args.output_file else None)
    return 0
