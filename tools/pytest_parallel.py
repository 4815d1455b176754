"""Run the test suite as two pytest processes side by side.

CI machines have two cores, and the XenAPI fault campaign
(tests/functional/faults) takes about as long as everything else
together, so it runs beside the rest.  Each process has its own Nova
harness, simulators and eventlet hub; they share nothing but the
machine (every simulator listens on a free loopback port).  The output of
each is printed once it is done, then the wall time of both.

With arguments, this is plain ``pytest <arguments>``, one process.
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import time

CAMPAIGN = 'tests/functional/faults'
GROUPS = {
    'the fault campaign': [CAMPAIGN],
    'everything else': [
        'tests',
        '--ignore=tests/stack/test_stack_e2e.py',
        f'--ignore={CAMPAIGN}',
    ],
}


def main(argv: list[str]) -> int:
    if argv:
        os.execvp(sys.executable, [sys.executable, '-m', 'pytest', *argv])
    logs = pathlib.Path(tempfile.mkdtemp(prefix='pytest-parallel-'))
    started = time.monotonic()
    running = {}
    for number, (name, args) in enumerate(GROUPS.items()):
        log = (logs / f'{number}.log').open('w')
        command = [sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider']
        running[name] = (
            subprocess.Popen(
                command + args, stdout=log, stderr=subprocess.STDOUT
            ),
            log,
            number,
        )
    print(f'pytest: {len(running)} processes, logs in {logs}', flush=True)
    results = {}
    while len(results) < len(running):
        for name, (process, log, number) in running.items():
            if name in results or process.poll() is None:
                continue
            log.close()
            results[name] = (process.returncode, time.monotonic() - started)
            print(f'\n===== {name} (exit {process.returncode}) =====')
            sys.stdout.write((logs / f'{number}.log').read_text())
            sys.stdout.flush()
        time.sleep(1)
    print()
    for name, (code, seconds) in results.items():
        state = 'passed' if code == 0 else f'FAILED ({code})'
        print(f'{name}: {state}, finished after {seconds:.0f} s')
    return max(code for code, _ in results.values())


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
