"""The ``nova-hypervisors`` console script: one entry, many subcommands."""

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

import nova_hypervisors.cmd as cmd_package


def subcommand_modules() -> list[ModuleType]:
    """Every subcommand module of :mod:`nova_hypervisors.cmd`, by name."""
    modules = []
    for info in pkgutil.iter_modules(cmd_package.__path__):
        if info.name == 'main' or info.name.startswith('_'):
            continue
        module = importlib.import_module(f'{cmd_package.__name__}.{info.name}')
        if hasattr(module, 'COMMAND'):
            modules.append(module)
    return sorted(modules, key=lambda m: m.COMMAND)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='nova-hypervisors',
        description='Tools around the nova_hypervisors Nova virt drivers: '
        'simulators, the demo, the pool agent and a local OpenStack.',
    )
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    subparsers.required = True
    for module in subcommand_modules():
        sub = subparsers.add_parser(
            module.COMMAND, help=module.HELP, description=module.HELP
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
