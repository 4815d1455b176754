"""Fixtures for the XenServer simulator's conformance tests.

Every test talks to the simulator through the unmodified ``XenAPI`` client
from PyPI over real HTTP, as a driver would; ``sim.db(...)`` is only used
to assert what the client cannot see.
"""

from __future__ import annotations

import contextlib

import pytest

from nova_hypervisors.simulators.xapi import SimulatedPool
from tests.functional.xapi_sim.helpers import login


@pytest.fixture
def sim(tmp_path):
    """Three standalone hosts; host 1 has the shared NFS SR."""
    with SimulatedPool(hosts=3, state_dir=str(tmp_path / 'state')) as pool:
        yield pool


@pytest.fixture
def pooled(tmp_path):
    """Three hosts in one pool, host 1 its master."""
    with SimulatedPool(
        hosts=3, state_dir=str(tmp_path / 'state'), pooled=True
    ) as pool:
        yield pool


@pytest.fixture
def session(sim):
    """A session on host 1, logged out at the end."""
    client = login(sim.hosts[0])
    yield client
    with contextlib.suppress(Exception):
        client.xenapi.session.logout()


@pytest.fixture
def xapi(session):
    return session.xenapi
