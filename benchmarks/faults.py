"""The fault campaign's table: fault x outcome x leaked objects x seconds.

Runs the fault tests through Nova's API (XenAPI on the XenServer
simulator, VCDriver on vcsim behind our TCP fault proxy) with
``NOVA_HYPERVISORS_FAULT_TABLE`` set, so each injected fault leaves one
line (``tests/functional/faults/table.py``), then prints:

* per operation of the step campaign: the steps failed, the outcomes
  (the server's status once settled), the objects leaked (guest VMs,
  VDIs, VBDs, VIFs, networks, tasks left after the delete) and the
  seconds until the server settled (median and worst);
* every other fault on its own line: master changes, vCenter outages and
  restarts, cut connections, 20 concurrent boots.

A leak anywhere fails the tests themselves; the table shows the figures.

Run: ``python benchmarks/faults.py [--all-steps] [pytest args]``, from
the tox env (``.tox/py3/bin/python``) or any env with the test
requirements.  ``--all-steps`` also prints one line per injected step.
"""

import argparse
import collections
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = [
    'tests/functional/faults',
    'tests/functional/vmwareapi/test_faults_api.py',
]


def run_campaign(extra: list[str]) -> tuple[int, list[dict]]:
    with tempfile.TemporaryDirectory() as scratch:
        path = pathlib.Path(scratch) / 'faults.jsonl'
        env = dict(os.environ, NOVA_HYPERVISORS_FAULT_TABLE=str(path))
        command = [
            sys.executable,
            '-m',
            'pytest',
            '-q',
            '-p',
            'no:cacheprovider',
        ]
        code = subprocess.call(command + (extra or TESTS), cwd=ROOT, env=env)
        rows = []
        if path.exists():
            for line in path.read_text().splitlines():
                rows.append(json.loads(line))
    return code, rows


def print_table(rows: list[dict], all_steps: bool) -> None:
    steps = [r for r in rows if r.get('step')]
    others = [r for r in rows if not r.get('step')]
    by_operation = collections.defaultdict(list)
    for row in steps:
        by_operation[(row['driver'], row['operation'])].append(row)
    print()
    print(
        'One fault injected at each hypervisor call of a traced run '
        '(XenAPI: INTERNAL_ERROR; vCenter: SystemError):'
    )
    header = (
        f'{"driver":8} {"operation":15} {"steps":>5}  '
        f'{"outcomes":34} {"leaked":>6} {"median s":>8} {"worst s":>7}'
    )
    print(header)
    print('-' * len(header))
    for (driver, operation), group in sorted(by_operation.items()):
        outcomes = collections.Counter(r['outcome'] for r in group)
        text = ', '.join(f'{n} {s}' for s, n in outcomes.most_common())
        seconds = [r['seconds'] for r in group]
        print(
            f'{driver:8} {operation:15} {len(group):5}  {text:34} '
            f'{sum(r["leaked"] for r in group):6} '
            f'{statistics.median(seconds):8.1f} {max(seconds):7.1f}'
        )
    print()
    print('Other faults:')
    header = (
        f'{"driver":8} {"under":34} {"fault":52} {"outcome":50} '
        f'{"leaked":>6} {"s":>6}'
    )
    print(header)
    print('-' * len(header))
    for row in others:
        print(
            f'{row["driver"]:8} {row["operation"]:34} {row["fault"]:52} '
            f'{row["outcome"]:50} {row["leaked"]:6} {row["seconds"]:6.1f}'
        )
    total = sum(r['leaked'] for r in rows)
    print()
    print(
        f'{len(rows)} faults injected, {total} objects leaked, '
        f'{sum(1 for r in rows if r["outcome"] == "ERROR")} ended in ERROR'
    )
    if all_steps:
        print()
        for row in steps:
            print(
                f'{row["operation"]:15} {row["fault"]:60} '
                f'{row["outcome"]:14} {row["leaked"]:3} {row["seconds"]:5.1f}'
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--all-steps', action='store_true')
    args, extra = parser.parse_known_args()
    code, rows = run_campaign(extra)
    print_table(rows, args.all_steps)
    if code:
        print(f'\nThe fault tests FAILED (pytest exit {code}).')
    return code


if __name__ == '__main__':
    sys.exit(main())
