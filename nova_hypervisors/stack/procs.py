"""Process supervision by PID files.

Every service is started in a session of its own, so its PID is also its
process group: stopping the group stops what the service forked (gunicorn
workers, Erlang helpers) without ever matching processes by name.  A PID file
(``run/<name>.pid``, the bare number operators expect) sits next to a JSON
record of the process's kernel start time, which tells a live service from an
unrelated process that reused the PID after a reboot or a crash.
"""

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import time

from nova_hypervisors.stack import StackError
from nova_hypervisors.stack import ports


@dataclasses.dataclass
class Record:
    """A started service as recorded in ``run/``."""

    name: str
    pid: int
    start_time: int
    argv: list[str]
    ports: list[int]
    # Processes in sessions of their own that the service started and that
    # must be stopped with it (vcsim's Go binary, for instance).
    extra_pids: list[list[int]] = dataclasses.field(default_factory=list)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None."""
    try:
        raw = pathlib.Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces.
    return raw[raw.rfind(')') + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None if gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return int(fields[19])


def alive(pid: int, started: int | None = None) -> bool:
    """True for a running (not zombie) process, the same one if ``started``.

    Zombies count as gone: a service whose parent already exited is
    reparented to init, which may reap it later than we look.
    """
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ('Z', 'X'):
        return False
    return started is None or int(fields[19]) == started


def group_members(pgid: int) -> list[int]:
    """Live PIDs whose process group is ``pgid``."""
    members = []
    for entry in os.scandir('/proc'):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] not in ('Z', 'X') and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class Supervisor:
    """Start, find and stop the processes of one stack."""

    def __init__(self, run_dir: pathlib.Path, log_dir: pathlib.Path) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir

    def _pid_file(self, name: str) -> pathlib.Path:
        return self.run_dir / f'{name}.pid'

    def _record_file(self, name: str) -> pathlib.Path:
        return self.run_dir / f'{name}.json'

    def output_file(self, name: str) -> pathlib.Path:
        """Where the process's stdout and stderr go."""
        return self.log_dir / f'{name}.out'

    def record(self, name: str) -> Record | None:
        path = self._record_file(name)
        if not path.exists():
            return None
        try:
            return Record(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            return None

    def records(self) -> list[Record]:
        """Every recorded service, running or not, oldest first."""
        found = []
        for path in self.run_dir.glob('*.json'):
            if path.with_suffix('.pid').exists():
                record = self.record(path.stem)
                if record:
                    found.append(record)
        return sorted(found, key=lambda r: (r.start_time, r.pid))

    def running(self, name: str) -> Record | None:
        """The service's record if its recorded process still runs."""
        record = self.record(name)
        if record and alive(record.pid, record.start_time):
            return record
        return None

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        cwd: pathlib.Path | None = None,
        listen: tuple[int, ...] = (),
    ) -> Record:
        """Start ``argv`` detached from us and record it under ``name``.

        The child gets no terminal and no stdin, and outlives the command
        that started it; ``stop`` finds it again through the PID file.
        """
        output = open(self.output_file(name), 'ab')
        try:
            output.write(
                f'--- {time.strftime("%Y-%m-%d %H:%M:%S")} starting '
                f'{name}\n'.encode()
            )
            output.flush()
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError as error:
            raise StackError(
                f'{name}: cannot run {argv[0]}: {error}'
            ) from None
        finally:
            output.close()
        record = Record(
            name=name,
            pid=process.pid,
            start_time=start_time(process.pid) or 0,
            argv=list(argv),
            ports=list(listen),
        )
        self._save(record)
        return record

    def add_extra_pid(self, name: str, pid: int) -> None:
        """Tie a process from another session to ``name``'s lifetime."""
        record = self.record(name)
        if record is None:
            return
        started = start_time(pid)
        if started is not None:
            record.extra_pids.append([pid, started])
            self._save(record)

    def _save(self, record: Record) -> None:
        self._pid_file(record.name).write_text(f'{record.pid}\n')
        self._record_file(record.name).write_text(
            json.dumps(dataclasses.asdict(record)) + '\n'
        )

    def forget(self, name: str) -> None:
        for path in (self._pid_file(name), self._record_file(name)):
            path.unlink(missing_ok=True)

    def wait_ready(
        self,
        record: Record,
        port: int,
        timeout: float,
        host: str = '127.0.0.1',
    ) -> None:
        """Wait until ``port`` accepts connections; fail if the service dies.

        The failure carries the end of the service's output, which is where
        a wrong option or a missing module shows.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ports.accepts(host, port):
                return
            if not alive(record.pid, record.start_time):
                raise StackError(
                    f'{record.name} exited before listening on '
                    f'{host}:{port}\n{self.tail(record.name)}'
                )
            time.sleep(0.1)
        raise StackError(
            f'{record.name} did not listen on {host}:{port} within '
            f'{timeout:.0f} s\n{self.tail(record.name)}'
        )

    def tail(self, name: str, lines: int = 25) -> str:
        """The end of a service's output, indented for an error message.

        OpenStack services write through oslo.log to ``log/<name>.log``,
        not to their output; its last ERROR and CRITICAL lines come too.
        """
        path = self.output_file(name)
        try:
            text = path.read_text(errors='replace').splitlines()[-lines:]
        except OSError:
            text = [f'(no output in {path})']
        shown = [f'    {line}' for line in text] + [f'    ({path})']
        oslo_log = self.log_dir / f'{name}.log'
        if oslo_log.exists():
            errors = [
                line
                for line in oslo_log.read_text(errors='replace').splitlines()
                if ' ERROR ' in line or ' CRITICAL ' in line
            ][-8:]
            shown += [f'    {line[:400]}' for line in errors]
            shown.append(f'    ({oslo_log})')
        return '\n'.join(shown)

    def stop(self, name: str, timeout: float = 15.0) -> bool:
        """Stop the service's process group: TERM, then KILL after timeout.

        Returns True if something was running.  The PID file goes only once
        nothing of the group is left.
        """
        record = self.record(name)
        if record is None:
            self.forget(name)
            return False
        targets = []
        if alive(record.pid, record.start_time):
            targets.append(record.pid)
        for pid, started in record.extra_pids:
            if alive(pid, started):
                targets.append(pid)
        # Members of the group may outlive its leader (gunicorn workers in a
        # graceful stop), so a dead leader is no proof that the group is gone.
        was_running = bool(targets) or bool(group_members(record.pid))
        for pid in targets:
            _signal_group(pid, signal.SIGTERM)
        if record.pid not in targets and group_members(record.pid):
            _signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        groups = {record.pid, *targets}
        while time.monotonic() < deadline:
            if not any(group_members(pgid) for pgid in groups):
                break
            time.sleep(0.1)
        else:
            for pgid in groups:
                _signal_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(
                group_members(pgid) for pgid in groups
            ):
                time.sleep(0.1)
        left = [pid for pgid in groups for pid in group_members(pgid)]
        if left:
            raise StackError(f'{name}: processes {left} survived SIGKILL')
        self.forget(name)
        return was_running


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
    except PermissionError as error:
        raise StackError(
            f'cannot signal process group {pgid}: {error}'
        ) from None
