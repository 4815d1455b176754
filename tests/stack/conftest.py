"""Lets a step fixture know how its test ended (tests/stack only).

The stack tests need no Nova in the test process, so tox's ``stack`` env
runs them with ``--confcutdir=tests/stack``: this file is then the only
conftest loaded.
"""

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f'rep_{report.when}', report)
