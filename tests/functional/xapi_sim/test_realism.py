"""Where xapi is strict, the simulator is too.

Each test names the xapi source (xapi-project/xen-api) whose behaviour it
holds the simulator to: a driver that gets past these tests gets past a
real XenServer 8 / XCP-ng 8.3 host on the same point.
"""

from __future__ import annotations

import pytest

from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import failure_of


@pytest.mark.parametrize('key', ['vm-data/user-metadata/my.key', 'a b'])
def test_start_refuses_a_xenstore_path_xenstored_refuses(xapi, key):
    """ocaml/xenopsd/xc/domain.ml (build): ``xsdata`` goes to xenstored,
    which answers EINVAL outside ``[A-Za-z0-9-/_@]``."""
    vm = create_vm(xapi, xenstore_data={key: 'v'})
    failure = failure_of(xapi.VM.start, vm, False, False)
    assert failure[0] == 'INTERNAL_ERROR'
    assert 'EINVAL' in failure[1]
    assert xapi.VM.get_power_state(vm) == 'Halted'


def test_start_accepts_every_character_xenstored_accepts(xapi):
    vm = create_vm(
        xapi, xenstore_data={'vm-data/user-metadata/A-z_0@9': 'a b.c'}
    )
    xapi.VM.start(vm, False, False)
    assert xapi.VM.get_power_state(vm) == 'Running'
