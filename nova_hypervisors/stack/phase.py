"""What every phase of ``stack up`` shares: the context it runs in, how
an API is started and known to answer, and how a phase waits for a
service (RPC consumers, a line of output, a file)."""

from collections.abc import Callable
import dataclasses
import pathlib
import subprocess
import threading
import time

from nova_hypervisors.stack import StackError
from nova_hypervisors.stack import configs
from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import probe
from nova_hypervisors.stack import procs
from nova_hypervisors.stack import rabbitmq
from nova_hypervisors.stack import services as names
from nova_hypervisors.stack import venv as stack_venv
from nova_hypervisors.stack import wsgi


class Clock:
    """Prints each step with the seconds since ``stack up`` began."""

    def __init__(self, emit: Callable[[str], None] = print) -> None:
        self.started = time.monotonic()
        self._emit = emit
        # Steps report from several threads; one line at a time.
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, message: str) -> None:
        with self._lock:
            self._emit(f'[{self.elapsed():6.1f}s] {message}')


@dataclasses.dataclass
class Context:
    layout: stack_layout.Layout
    spec: stack_layout.Spec
    secrets: dict[str, str]
    venv: stack_venv.Venv
    supervisor: procs.Supervisor
    programs: dict[str, str]
    env: dict[str, str]
    report: Clock


def api_url(ctx: Context, name: str) -> str:
    urls = configs.service_urls(ctx.spec)
    return {
        names.GLANCE: urls['image'],
        names.PLACEMENT: urls['placement'],
        names.NOVA_API: urls['compute'].rsplit('/', 1)[0],
        names.CINDER_API: urls['volumev3'].rsplit('/', 1)[0],
        names.NEUTRON_API: urls['network'],
    }[name]


def start_api(ctx: Context, name: str) -> None:
    """Start one gunicorn API (unless running) and wait for its answer."""
    record = ctx.supervisor.running(name) or wsgi.start(
        wsgi.services(ctx.layout)[name],
        ctx.layout,
        ctx.spec,
        ctx.supervisor,
        ctx.venv.script('gunicorn'),
        ctx.env,
    )
    url = api_url(ctx, name)
    wsgi.wait_answering(record, url, ctx.supervisor)
    ctx.report(f'{name} answering at {url}')


def wait_consumers(
    ctx: Context,
    queues: list[str],
    services: list[str] | None = None,
    timeout: float = 120,
) -> None:
    """Wait for consumers on RPC queues, failing fast if a service dies."""
    env = dict(
        ctx.env,
        NOVA_HYPERVISORS_TRANSPORT_URL=rabbitmq.transport_url(
            ctx.spec, ctx.secrets
        ),
    )
    waiter = subprocess.Popen(
        [
            str(ctx.venv.python),
            # This tool's own copy: it always matches the caller.
            probe.__file__,
            '--timeout',
            str(timeout),
            *queues,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watched = services or [
        names.CONDUCTOR if queue == 'conductor' else names.SCHEDULER
        for queue in queues
    ]
    while waiter.poll() is None:
        for service in watched:
            if not ctx.supervisor.running(service):
                waiter.kill()
                waiter.wait()
                raise StackError(
                    f'{service} exited during start-up\n'
                    f'{ctx.supervisor.tail(service)}'
                )
        time.sleep(0.3)
    if waiter.returncode:
        output = waiter.stdout.read() if waiter.stdout else ''
        details = '\n'.join(ctx.supervisor.tail(s, 10) for s in watched)
        raise StackError(f'{output.strip()}\n{details}')


def wait_output(
    ctx: Context, record: procs.Record, text: str, timeout: float
) -> None:
    path = ctx.supervisor.output_file(record.name)
    deadline = time.monotonic() + timeout
    offset = 0
    with open(path, 'rb') as stream:
        while time.monotonic() < deadline:
            stream.seek(offset)
            chunk = stream.read()
            if text.encode() in chunk:
                return
            if not procs.alive(record.pid, record.start_time):
                raise StackError(
                    f'{record.name} exited during start-up\n'
                    f'{ctx.supervisor.tail(record.name)}'
                )
            time.sleep(0.2)
    raise StackError(
        f'{record.name} did not say {text!r} within {timeout:.0f} s\n'
        f'{ctx.supervisor.tail(record.name)}'
    )


def wait_path(
    ctx: Context, record: procs.Record, path: pathlib.Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if not procs.alive(record.pid, record.start_time):
            raise StackError(
                f'{record.name} exited during start-up\n'
                f'{ctx.supervisor.tail(record.name)}'
            )
        if time.monotonic() > deadline:
            raise StackError(f'{record.name} made no {path} in {timeout} s')
        time.sleep(0.05)
