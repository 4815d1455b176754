"""XenAPI calls and wall time of attaching and detaching Cinder volumes.

On one simulated XenServer host with a simulated iSCSI array (real TCP
portal, CHAP), one running VM gets volumes of one target through
:class:`nova_hypervisors.xenapi.volumeops.VolumeOps`, the code behind
``attach_volume`` and ``detach_volume``.  For 1 and 20 volumes already on
the host it prints the calls and time of attaching one more volume and
of detaching it again, and the first attach of a target (which also
introduces its SR) and the last detach (which forgets it).

Run: ``python benchmarks/xenapi_volumes_bench.py`` (a few seconds).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nova_hypervisors.simulators import iscsi_target  # noqa: E402
from nova_hypervisors.simulators.xapi import SimulatedPool  # noqa: E402
from nova_hypervisors.xenapi import session as xsession  # noqa: E402
from nova_hypervisors.xenapi import volumeops  # noqa: E402
from tests.functional.xapi_sim import helpers as sim_helpers  # noqa: E402

IQN = 'iqn.2026-12.org.example:bench'
CHAP = ('bench', 'bench-secret')
GIB = 1 << 30


def connection_info(array, lun: int) -> dict:
    return {
        'driver_volume_type': 'iscsi',
        'data': {
            'target_portal': array.portal,
            'target_iqn': IQN,
            'target_lun': lun,
            'volume_id': 'volume-%d' % lun,
            'auth_method': 'CHAP',
            'auth_username': CHAP[0],
            'auth_password': CHAP[1],
        },
    }


def running_vm(session) -> str:
    record = sim_helpers.vm_record('bench', affinity=session.host_ref)
    vm = session.call_xenapi('VM.create', record)
    session.call_xenapi('VM.start_on', vm, session.host_ref, False, False)
    return vm


def measure(session, fn) -> tuple[int, float]:
    before = session.call_count
    started = time.perf_counter()
    fn()
    return session.call_count - before, time.perf_counter() - started


def run(existing: int) -> list[tuple[str, int, float]]:
    with tempfile.TemporaryDirectory() as state:
        sim = SimulatedPool(
            hosts=1, state_dir=os.path.join(state, 'xen'), port=0
        )
        sim.start()
        array = iscsi_target.StorageArray(os.path.join(state, 'array'))
        array.start()
        array.add_target(IQN, chap=CHAP)
        for lun in range(1, existing + 2):
            array.create_lun(IQN, lun, GIB)
        xen = sim.hosts[0]
        session = xsession.XenAPISession(
            xen.url, xen.username, xen.password, ca_file=sim.ca_file
        )
        session.connect()
        try:
            ops = volumeops.VolumeOps(session)
            vm = running_vm(session)
            rows = []
            first = connection_info(array, 1)
            calls, took = measure(session, lambda: ops.attach(vm, first, None))
            rows.append(('first attach (introduces the SR)', calls, took))
            for lun in range(2, existing + 1):
                ops.attach(vm, connection_info(array, lun), None)
            extra = connection_info(array, existing + 1)
            calls, took = measure(session, lambda: ops.attach(vm, extra, None))
            rows.append(('attach one more', calls, took))
            calls, took = measure(session, lambda: ops.detach(vm, extra))
            rows.append(('detach it', calls, took))
            for lun in range(existing, 1, -1):
                ops.detach(vm, connection_info(array, lun))
            calls, took = measure(session, lambda: ops.detach(vm, first))
            rows.append(('last detach (forgets the SR)', calls, took))
            return rows
        finally:
            session.close()
            array.stop()
            sim.stop()


def main() -> None:
    results = {count: run(count) for count in (1, 20)}
    print('%-34s %18s %18s' % ('', '1 volume on host', '20 volumes'))
    print('%-34s %9s %8s %9s %8s' % ('', 'calls', 'ms', 'calls', 'ms'))
    for index, (label, _, _) in enumerate(results[1]):
        one = results[1][index]
        many = results[20][index]
        print(
            '%-34s %9d %8.1f %9d %8.1f'
            % (label, one[1], one[2] * 1e3, many[1], many[2] * 1e3)
        )


if __name__ == '__main__':
    main()
