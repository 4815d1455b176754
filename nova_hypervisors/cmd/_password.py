"""Passwords for the simulator commands, from a file instead of argv.

A command line is visible to every user of the machine (``ps``), so the
stack hands the simulators their passwords in files only their owner can
read.
"""

import argparse
import pathlib


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--password-file',
        type=pathlib.Path,
        metavar='FILE',
        help='read the password from FILE (its first line), which keeps it '
        'off the command line that ps shows',
    )


def read(path: pathlib.Path | None) -> str | None:
    """The first line of ``path``, or None when no file was given."""
    if path is None:
        return None
    lines = path.read_text().splitlines()
    return lines[0] if lines else ''
