"""What ``nova-hypervisors check`` found: one line per check.

Each check has passed, warns or failed; a warning or a failure says what
to change.  The exit status is 0 when every check passed, 1 when one
warns, 2 when one failed.
"""

import dataclasses
import json

PASSED = 'passed'
WARNING = 'warning'
FAILED = 'failed'
#: Exit status by the worst status seen.
EXIT_STATUS = {PASSED: 0, WARNING: 1, FAILED: 2}
LABELS = {PASSED: 'PASS', WARNING: 'WARN', FAILED: 'FAIL'}


@dataclasses.dataclass
class Result:
    check: str
    status: str
    detail: str
    fix: str = ''


class Report:
    """The results, in the order the checks ran."""

    def __init__(self, hypervisor: str) -> None:
        self.hypervisor = hypervisor
        self.results: list[Result] = []

    def passed(self, check: str, detail: str) -> None:
        self.results.append(Result(check, PASSED, detail))

    def warn(self, check: str, detail: str, fix: str = '') -> None:
        self.results.append(Result(check, WARNING, detail, fix))

    def fail(self, check: str, detail: str, fix: str = '') -> None:
        self.results.append(Result(check, FAILED, detail, fix))

    def status(self, check: str) -> str | None:
        """The status of ``check``, if it ran."""
        for result in self.results:
            if result.check == check:
                return result.status
        return None

    @property
    def exit_status(self) -> int:
        return max(
            (EXIT_STATUS[result.status] for result in self.results),
            default=0,
        )

    def as_text(self) -> str:
        lines = [f'{self.hypervisor}:']
        for result in self.results:
            line = f'{LABELS[result.status]}  {result.check}: {result.detail}'
            if result.fix:
                line += f'\n      fix: {result.fix}'
            lines.append(line)
        counts = {
            status: sum(1 for r in self.results if r.status == status)
            for status in (PASSED, WARNING, FAILED)
        }
        lines.append(
            f'{counts[PASSED]} passed, {counts[WARNING]} warnings, '
            f'{counts[FAILED]} failed'
        )
        return '\n'.join(lines)

    def as_json(self) -> str:
        return json.dumps(
            {
                'hypervisor': self.hypervisor,
                'exit_status': self.exit_status,
                'checks': [
                    dataclasses.asdict(result) for result in self.results
                ],
            },
            indent=2,
        )
