"""Test-session setup shared by the unit and functional suites.

Nova's functional harness must see eventlet's monkey patching before any
other Nova module is imported, so ``nova.tests.functional`` is imported here,
first thing.  Set ``OS_NOVA_DISABLE_EVENTLET_PATCHING=1`` to run everything
with native threads instead, as nova-compute can run.
"""

import nova.tests.functional  # noqa: F401,I001  (monkey patching first)

import importlib.util
import os
import pathlib

import nova.test
import nova.virt

REPO = pathlib.Path(__file__).resolve().parent.parent


def _make_shim_importable() -> None:
    """Let a source checkout load drivers by name like an installed wheel.

    A wheel puts ``nova/virt/nova_hypervisors`` inside the installed Nova;
    an editable install or a bare checkout does not.  The wheel case itself
    is proven by tests/functional/test_wheel_install.py.
    """
    if importlib.util.find_spec('nova.virt.nova_hypervisors') is None:
        nova.virt.__path__.append(str(REPO / 'nova' / 'virt'))


def _keep_pytest_attributes() -> None:
    """nova.test.TestCase deletes public attributes pytest still needs."""
    nova.test.TestCase._clear_attrs = lambda self: None


_make_shim_importable()
_keep_pytest_attributes()
os.environ.setdefault('OS_TEST_PATH', str(REPO / 'tests'))
