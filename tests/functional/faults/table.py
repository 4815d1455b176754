"""The campaign's results, for ``benchmarks/faults.py``.

When ``NOVA_HYPERVISORS_FAULT_TABLE`` names a file, every fault a test
injects appends one JSON line to it: the operation, the fault, the outcome
(the server's status once settled), the objects it leaked and the seconds
until the server settled.  Without the variable nothing is written.
"""

import json
import os

ENV = 'NOVA_HYPERVISORS_FAULT_TABLE'


def record(
    driver: str,
    operation: str,
    fault: str,
    outcome: str,
    leaked: int,
    seconds: float,
    step: bool = False,
) -> None:
    """``step``: one fault of a step campaign (one per traced call)."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps(
        {
            'driver': driver,
            'operation': operation,
            'fault': fault,
            'outcome': outcome,
            'leaked': leaked,
            'seconds': round(seconds, 2),
            'step': step,
        }
    )
    with open(path, 'a', encoding='utf-8') as out:
        out.write(line + '\n')
