"""``stack down`` and ``stack status``.

``down`` stops every recorded process by its PID file, computes first and
the database last, then proves the point: no recorded process is left and
none of the stack's ports is still listening.  ``status`` shows each
service, its PID and the loopback ports its processes listen on.
"""

import concurrent.futures
import dataclasses
import time

from nova_hypervisors.stack import StackError
from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import ports
from nova_hypervisors.stack import procs
from nova_hypervisors.stack import services as names


def down(layout: stack_layout.Layout, report=print) -> list[str]:
    """Stop everything; returns the names that were running."""
    supervisor = procs.Supervisor(layout.run, layout.log)
    stopped = []
    recorded = [record.name for record in supervisor.records()]

    def stop(name: str) -> None:
        started = time.monotonic()
        if supervisor.stop(name):
            stopped.append(name)
            report(f'stopped {name} ({time.monotonic() - started:.1f} s)')

    for wave in names.stop_waves(recorded):
        with concurrent.futures.ThreadPoolExecutor(len(wave)) as pool:
            for future in [pool.submit(stop, name) for name in wave]:
                future.result()
    leftovers = leftover_listeners(layout)
    if leftovers:
        raise StackError(
            'still listening after stack down:\n'
            + '\n'.join(f'  {line}' for line in leftovers)
        )
    return stopped


def leftover_listeners(layout: stack_layout.Layout) -> list[str]:
    """The stack's own ports that something still listens on."""
    spec = layout.load_spec() or stack_layout.Spec()
    wanted = set(spec.ports.values())
    return [
        f'{address}:{port} held by {ports.describe_pid(pid)}'
        for address, port, pid in ports.listeners()
        if port in wanted and (address.startswith('127.') or address == '::1')
    ]


@dataclasses.dataclass
class ServiceStatus:
    name: str
    pid: int
    running: bool
    listening: list[str]


def status(layout: stack_layout.Layout) -> list[ServiceStatus]:
    """Every recorded service, with what its process group listens on."""
    supervisor = procs.Supervisor(layout.run, layout.log)
    listening = ports.listeners()
    found = []
    for record in supervisor.records():
        running = procs.alive(record.pid, record.start_time)
        pids = set(procs.group_members(record.pid)) if running else set()
        pids |= {
            pid
            for pid, started in record.extra_pids
            if procs.alive(pid, started)
        }
        found.append(
            ServiceStatus(
                name=record.name,
                pid=record.pid,
                running=running,
                listening=sorted(
                    {
                        f'[{address}]:{port}'
                        if ':' in address
                        else f'{address}:{port}'
                        for address, port, pid in listening
                        if pid in pids
                    }
                ),
            )
        )
    return found
