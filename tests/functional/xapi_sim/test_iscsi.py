"""The ``iscsi`` SR type against a simulated array over a real portal.

Each test names the behaviour of xapi's storage manager it follows
(xapi-project/sm ``drivers/ISCSISR.py``, error codes from
``drivers/XE_SR_ERRORCODES.xml``; written from memory of those sources,
not re-read in this session).
"""

from __future__ import annotations

import pytest

from nova_hypervisors.simulators import iscsi_target
from tests.functional.xapi_sim.helpers import attach
from tests.functional.xapi_sim.helpers import create_vm
from tests.functional.xapi_sim.helpers import failure_of
from tests.functional.xapi_sim.helpers import login

IQN = 'iqn.2026-12.org.example:array'
CHAP = ('user', 'secret')
GIB = 1 << 30


@pytest.fixture
def array(tmp_path):
    array = iscsi_target.StorageArray(tmp_path / 'array').start()
    array.add_target(IQN, chap=CHAP)
    array.create_lun(IQN, 1, GIB)
    yield array
    array.stop()


def config(array, **changes):
    values = {
        'target': array.address,
        'port': str(array.port),
        'targetIQN': IQN,
        'chapuser': CHAP[0],
        'chappassword': CHAP[1],
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def host_of(xapi):
    return xapi.host.get_all()[0]


def introduce(xapi, array, **changes):
    sr = xapi.SR.introduce('', 'volumes', '', 'iscsi', '', True, {})
    pbd = xapi.PBD.create(
        {
            'host': host_of(xapi),
            'SR': sr,
            'device_config': config(array, **changes),
            'other_config': {},
        }
    )
    return sr, pbd


def test_probe_without_scsiid_lists_the_luns(xapi, array):
    """ISCSISR: a probe lacking SCSIid fails with 107 and the LUN XML."""
    details = failure_of(
        xapi.SR.probe, host_of(xapi), config(array), 'iscsi', {}
    )
    assert details[0] == 'SR_BACKEND_FAILURE_107'
    scsi_id = array.lun(IQN, 1)['scsi_id']
    assert '<LUNid>1</LUNid>' in details[3]
    assert '<SCSIid>%s</SCSIid>' % scsi_id in details[3]


def test_an_unreachable_portal_is_backend_failure_141(xapi, array):
    """ISCSISR: no TCP connection to the portal is ``ISCSITarget``."""
    dead = config(array)
    array.stop()
    details = failure_of(xapi.SR.probe, host_of(xapi), dead, 'iscsi', {})
    assert details[0] == 'SR_BACKEND_FAILURE_141'


def test_wrong_chap_is_a_login_failure_and_the_pbd_stays_unplugged(
    xapi, array
):
    sr, pbd = introduce(xapi, array, chappassword='wrong')
    details = failure_of(xapi.PBD.plug, pbd)
    assert details[0] == 'SR_BACKEND_FAILURE_68'
    assert not xapi.PBD.get_currently_attached(pbd)
    assert array.logins[-1] == (IQN, CHAP[0], False)
    assert xapi.SR.get_VDIs(sr) == []


def test_an_unknown_iqn_is_backend_failure_96(xapi, array):
    _, pbd = introduce(xapi, array, targetIQN='iqn.2026-12.org.example:no')
    assert failure_of(xapi.PBD.plug, pbd)[0] == 'SR_BACKEND_FAILURE_96'


def test_plug_makes_one_vdi_per_lun_found_by_scsi_id(xapi, array):
    sr, pbd = introduce(xapi, array)
    xapi.PBD.plug(pbd)
    (vdi,) = xapi.SR.get_VDIs(sr)
    record = xapi.VDI.get_record(vdi)
    assert record['sm_config']['SCSIid'] == array.lun(IQN, 1)['scsi_id']
    assert record['sm_config']['LUNid'] == '1'
    assert int(record['virtual_size']) == GIB
    # A second plug of an attached PBD changes nothing (xapi_pbd.ml).
    xapi.PBD.plug(pbd)
    assert xapi.SR.get_VDIs(sr) == [vdi]


def test_a_scan_sees_new_and_grown_luns(xapi, array):
    sr, pbd = introduce(xapi, array)
    xapi.PBD.plug(pbd)
    array.create_lun(IQN, 2, GIB)
    array.extend_lun(IQN, 1, 2 * GIB)
    xapi.SR.scan(sr)
    sizes = {
        xapi.VDI.get_sm_config(v)['LUNid']: int(xapi.VDI.get_virtual_size(v))
        for v in xapi.SR.get_VDIs(sr)
    }
    assert sizes == {'1': 2 * GIB, '2': GIB}


def test_luns_cannot_be_created_destroyed_or_resized_through_xapi(xapi, array):
    """LUNperVDI SRs lack VDI_CREATE/DELETE/RESIZE: a volume's LUN is never
    destroyed through xapi."""
    sr, pbd = introduce(xapi, array)
    xapi.PBD.plug(pbd)
    (vdi,) = xapi.SR.get_VDIs(sr)
    for call, args in (
        (xapi.VDI.destroy, (vdi,)),
        (xapi.VDI.resize, (vdi, str(4 * GIB))),
        (xapi.VDI.clone, (vdi, {})),
        (xapi.SR.destroy, (sr,)),
    ):
        assert failure_of(call, *args)[0] == 'SR_OPERATION_NOT_SUPPORTED'
    details = failure_of(
        xapi.VDI.create,
        {
            'name_label': 'x',
            'name_description': '',
            'SR': sr,
            'virtual_size': str(GIB),
            'type': 'user',
            'sharable': False,
            'read_only': False,
            'other_config': {},
            'xenstore_data': {},
            'sm_config': {},
            'tags': [],
        },
    )
    assert details[0] == 'SR_OPERATION_NOT_SUPPORTED'


def test_forget_keeps_the_lun_bytes_on_the_array(xapi, array):
    sr, pbd = introduce(xapi, array)
    xapi.PBD.plug(pbd)
    array.write(IQN, 1, b'persisted')
    xapi.PBD.unplug(pbd)
    xapi.SR.forget(sr)
    assert array.read(IQN, 1, 9) == b'persisted'
    sr, pbd = introduce(xapi, array)
    xapi.PBD.plug(pbd)
    assert len(xapi.SR.get_VDIs(sr)) == 1


def test_a_vm_needs_the_volume_sr_plugged_on_its_host(xapi, array):
    sr, pbd = introduce(xapi, array)
    xapi.PBD.plug(pbd)
    (vdi,) = xapi.SR.get_VDIs(sr)
    vm = create_vm(xapi)
    xapi.VBD.create(
        {
            'VM': vm,
            'VDI': vdi,
            'userdevice': '0',
            'bootable': True,
            'mode': 'RW',
            'type': 'Disk',
            'unpluggable': True,
            'empty': False,
            'other_config': {},
            'qos_algorithm_type': '',
            'qos_algorithm_params': {},
        }
    )
    xapi.PBD.unplug(pbd)
    details = failure_of(xapi.VM.start, vm, False, False)
    assert details[0] == 'VM_REQUIRES_SR'


def test_an_unknown_sr_type_is_refused_on_introduce(xapi):
    details = failure_of(
        xapi.SR.introduce, '', 'x', '', 'nosuchdriver', '', True, {}
    )
    assert details == ['SR_UNKNOWN_DRIVER', 'nosuchdriver']


def test_the_arrays_management_needs_its_secret(tmp_path):
    """What a Cinder driver does on the array (create, grow, delete LUNs)
    is refused without the admin secret."""
    array = iscsi_target.StorageArray(
        tmp_path / 'managed', admin_secret='s3cret'
    ).start()
    try:
        with pytest.raises(iscsi_target.ArrayError):
            iscsi_target.admin(
                array.address, array.port, 'wrong', 'add_target', iqn=IQN
            )
        iscsi_target.admin(
            array.address, array.port, 's3cret', 'add_target', iqn=IQN
        )
        created = iscsi_target.admin(
            array.address,
            array.port,
            's3cret',
            'create_lun',
            iqn=IQN,
            size=GIB,
        )
        assert created['lun'] == 1
        assert array.lun(IQN, 1)['scsi_id'] == created['scsi_id']
        iscsi_target.admin(
            array.address,
            array.port,
            's3cret',
            'extend_lun',
            iqn=IQN,
            lun=1,
            size=2 * GIB,
        )
        assert array.lun(IQN, 1)['size'] == 2 * GIB
        iscsi_target.admin(
            array.address, array.port, 's3cret', 'delete_lun', iqn=IQN, lun=1
        )
        with pytest.raises(KeyError):
            array.lun(IQN, 1)
    finally:
        array.stop()


def _introduce_as(xapi, array, sr_uuid):
    host = host_of(xapi)
    sr = xapi.SR.introduce(sr_uuid, 'volumes', '', 'iscsi', '', True, {})
    pbd = xapi.PBD.create(
        {
            'host': host,
            'SR': sr,
            'device_config': config(array),
            'other_config': {},
        }
    )
    return sr, pbd


def test_a_send_to_a_pool_that_sees_the_same_sr_copies_no_lun(sim, array):
    """A LUN's SR introduced in two pools under one uuid is the same
    storage: ``VM.migrate_send`` maps the VM's VDI to it and finds the
    destination's VDI of the same location, copying and destroying
    nothing, which Nova's last in-tree XenAPI driver relied on (nova 21
    ``vmops._call_live_migrate_command``).  Before the destination has
    found the VDI (its PBD unplugged, no scan), the send fails with
    ``VDI_LOCATION_MISSING`` and nothing moves."""
    source = login(sim.hosts[1]).xenapi
    dest = login(sim.hosts[2]).xenapi
    sr_uuid = '3f1d0c2e-1111-4222-8333-944455566677'
    source_sr, source_pbd = _introduce_as(source, array, sr_uuid)
    source.PBD.plug(source_pbd)
    (lun,) = source.SR.get_VDIs(source_sr)
    array.write(IQN, 1, b'volume bytes')
    vm = create_vm(source, 'traveller')
    attach(source, vm, lun, userdevice='1')
    source.VM.start(vm, False, False)
    dest_sr, dest_pbd = _introduce_as(dest, array, sr_uuid)
    dest_host = dest.host.get_all()[0]
    receipt = dest.host.migrate_receive(
        dest_host, dest.network.get_all()[0], {}
    )
    location = source.VDI.get_location(lun)
    assert failure_of(
        source.VM.migrate_send, vm, receipt, True, {lun: dest_sr}, {}, {}
    ) == ['VDI_LOCATION_MISSING', dest_sr, location]
    assert source.VM.get_power_state(vm) == 'Running'

    dest.PBD.plug(dest_pbd)
    new_vm = source.VM.migrate_send(vm, receipt, True, {lun: dest_sr}, {}, {})
    (vbd,) = dest.VM.get_VBDs(new_vm)
    moved = dest.VBD.get_VDI(vbd)
    assert dest.VDI.get_SR(moved) == dest_sr
    assert dest.VDI.get_location(moved) == location
    # The source's record of the LUN stays (its VM is gone), and the
    # array still has the bytes: nothing was copied or destroyed.
    assert source.VDI.get_SR(lun) == source_sr
    assert array.read(IQN, 1, 12) == b'volume bytes'
