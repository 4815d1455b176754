"""A real RabbitMQ on loopback for one test, from Debian's package.

Started with the stack's own RabbitMQ code (epmd and the broker's
distribution port kept on 127.0.0.1) in a temporary state directory, on a
port range of its own so it never meets a running stack.
"""

import contextlib
import pathlib
import random
import socket

from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import packages
from nova_hypervisors.stack import procs
from nova_hypervisors.stack import rabbitmq

SERVICES = ('rabbitmq', 'epmd', 'rabbitmq-dist')


def _free(port: int) -> bool:
    with contextlib.closing(socket.socket()) as probe:
        try:
            probe.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def _free_offset() -> int:
    for _ in range(50):
        offset = random.randrange(1000, 30000)
        spec = stack_layout.Spec(port_offset=offset)
        if all(_free(spec.port(name)) for name in SERVICES):
            return offset
    raise RuntimeError('no free port range for RabbitMQ on 127.0.0.1')


class Broker:
    """``Broker(path).start()`` -> transport URL; ``stop()`` by PID."""

    def __init__(self, state_dir: pathlib.Path) -> None:
        self.layout = stack_layout.Layout(state_dir)
        self.spec = stack_layout.Spec(port_offset=_free_offset())
        self.supervisor = procs.Supervisor(self.layout.run, self.layout.log)
        self.secrets = {'rabbitmq': 'broker-test-secret'}

    def start(self) -> str:
        self.layout.create()
        programs = packages.require(['epmd', 'rabbitmq-server'])
        rabbitmq.start(
            self.layout, self.spec, self.secrets, self.supervisor, programs
        )
        return rabbitmq.transport_url(self.spec, self.secrets)

    def stop(self) -> None:
        for name in (rabbitmq.NAME, rabbitmq.EPMD):
            self.supervisor.stop(name)
