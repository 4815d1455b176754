"""Unit tests: Cinder connection data and device numbers for volumes."""

from nova import exception
import pytest

from nova_hypervisors.xenapi import volume_srs
from nova_hypervisors.xenapi import volumeops

ISCSI = {
    'driver_volume_type': 'iscsi',
    'data': {
        'target_portal': '192.0.2.10:3261',
        'target_iqn': 'iqn.2010-10.org.openstack:volume-1',
        'target_lun': 3,
        'volume_id': 'vol-1',
        'auth_method': 'CHAP',
        'auth_username': 'user',
        'auth_password': 'the-chap-secret',
    },
}


@pytest.mark.parametrize(
    'mountpoint, number',
    [
        ('/dev/xvdb', 1),
        ('/dev/vdc', 2),
        ('/dev/sde', 4),
        ('hdf', 5),
        ('7', 7),
        ('/dev/nvme0n1', None),
        (None, None),
    ],
)
def test_mountpoints_name_userdevices(mountpoint, number):
    assert volumeops.mountpoint_to_number(mountpoint) == number


def test_iscsi_connection_data_becomes_a_target():
    target = volume_srs.ISCSITarget.from_connection_info(ISCSI)
    assert (target.address, target.port, target.lun) == ('192.0.2.10', 3261, 3)
    assert target.device_config() == {
        'target': '192.0.2.10',
        'port': '3261',
        'targetIQN': 'iqn.2010-10.org.openstack:volume-1',
        'chapuser': 'user',
        'chappassword': 'the-chap-secret',
    }
    # The CHAP secret never shows in a log line that prints the target.
    assert 'the-chap-secret' not in repr(target)


def test_a_portal_without_port_uses_3260_and_ipv6_brackets_go():
    data = dict(ISCSI['data'], target_portal='[2001:db8::1]')
    target = volume_srs.ISCSITarget.from_connection_info(
        {'driver_volume_type': 'iscsi', 'data': data}
    )
    assert (target.address, target.port) == ('2001:db8::1', 3260)
    data = dict(ISCSI['data'], target_portal='[2001:db8::1]:3262')
    target = volume_srs.ISCSITarget.from_connection_info(
        {'driver_volume_type': 'iscsi', 'data': data}
    )
    assert (target.address, target.port) == ('2001:db8::1', 3262)


def test_every_compute_derives_the_same_sr_for_a_target():
    one = volume_srs.ISCSITarget.from_connection_info(ISCSI)
    other_lun = dict(ISCSI['data'], target_lun=4, auth_password='x')
    two = volume_srs.ISCSITarget.from_connection_info(
        {'driver_volume_type': 'iscsi', 'data': other_lun}
    )
    assert one.sr_uuid == two.sr_uuid
    moved = dict(ISCSI['data'], target_portal='192.0.2.11:3261')
    three = volume_srs.ISCSITarget.from_connection_info(
        {'driver_volume_type': 'iscsi', 'data': moved}
    )
    assert three.sr_uuid != one.sr_uuid


def test_other_connection_types_are_refused_by_name():
    with pytest.raises(exception.VolumeDriverNotFound) as info:
        volume_srs.ISCSITarget.from_connection_info(
            {'driver_volume_type': 'rbd', 'data': {}}
        )
    assert 'rbd' in str(info.value)


def test_incomplete_iscsi_data_is_a_storage_error():
    with pytest.raises(exception.StorageError):
        volume_srs.ISCSITarget.from_connection_info(
            {'driver_volume_type': 'iscsi', 'data': {'target_lun': 1}}
        )
