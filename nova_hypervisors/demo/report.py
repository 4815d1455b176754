"""Progress lines while the story runs, and the summary table at the end."""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import sys
import time
from typing import TextIO


@dataclasses.dataclass
class StepResult:
    title: str
    result: str  # 'ok', 'FAILED', 'skipped'
    seconds: float
    detail: str = ''


class StepFailed(Exception):
    """A step's outcome is not what the story promises."""


class Report:
    """Runs steps in order, prints a line per step, remembers results."""

    def __init__(self, total: int, out: TextIO = sys.stdout) -> None:
        self.total = total
        self.out = out
        #: Called after a failure for more detail (the services' errors).
        self.diagnose: Callable[[], str] | None = None
        self.results: list[StepResult] = []

    def say(self, text: str = '') -> None:
        print(text, file=self.out, flush=True)

    def step(self, title: str, action: Callable[[], str | None]) -> bool:
        """Run one step; its return value is a detail line for the log."""
        number = len(self.results) + 1
        self.say(f'[{number:2d}/{self.total}] {title} ...')
        started = time.monotonic()
        try:
            detail = action() or ''
            result = 'ok'
        except (Exception, SystemExit) as exc:  # report, do not crash
            detail = f'{type(exc).__name__}: {exc}'
            if self.diagnose is not None:
                detail += '\n' + self.diagnose()
            result = 'FAILED'
        seconds = time.monotonic() - started
        self.results.append(StepResult(title, result, seconds, detail))
        for line in detail.splitlines():
            self.say(f'        {line}')
        self.say(f'        -> {result} ({seconds:.1f} s)')
        return result == 'ok'

    def skip(self, title: str, why: str) -> None:
        self.results.append(StepResult(title, 'skipped', 0.0, why))
        number = len(self.results)
        self.say(f'[{number:2d}/{self.total}] {title} ... skipped: {why}')

    @property
    def succeeded(self) -> bool:
        return all(r.result != 'FAILED' for r in self.results)

    def summary(self) -> str:
        width = max(len(r.title) for r in self.results)
        lines = [
            f'{"step":<{width}}  {"result":<7}  {"time":>7}',
            f'{"-" * width}  {"-" * 7}  {"-" * 7}',
        ]
        lines += [
            f'{r.title:<{width}}  {r.result:<7}  {r.seconds:>6.1f}s'
            for r in self.results
        ]
        total = sum(r.seconds for r in self.results)
        lines.append(f'{"total":<{width}}  {"":<7}  {total:>6.1f}s')
        return '\n'.join(lines)
