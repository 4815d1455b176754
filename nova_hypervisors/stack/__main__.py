"""``python -m nova_hypervisors.stack``: the stack command without the rest.

Runs from a bare checkout with any Python 3.11 (the stack tooling needs
only the standard library), which is how the services' virtualenv is first
created before ``nova-hypervisors`` itself is installed anywhere.
"""

import argparse
import sys

from nova_hypervisors.cmd import stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m nova_hypervisors.stack', description=stack.HELP
    )
    stack.add_arguments(parser)
    return stack.run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
