"""Which network a port's card is put on (in-tree vif.get_network_ref)."""

from nova import exception
import pytest
from pyVmomi import vim

from nova_hypervisors.vmwareapi import network

PORTGROUP = vim.dvs.DistributedVirtualPortgroup('dvportgroup-1')
STANDARD = vim.Network('network-1')
SWITCH = vim.DistributedVirtualSwitch('dvs-1')
NETWORKS = {
    PORTGROUP: {
        'name': 'tenant-net',
        'key': 'dvportgroup-1',
        'config.distributedVirtualSwitch': SWITCH,
    },
    STANDARD: {'name': 'VM Network'},
}
SWITCHES = {SWITCH: '50 1a 2b'}


def vif(**details):
    return {'network': {'bridge': 'tenant-net'}, 'details': details}


def test_a_distributed_port_group_is_found_by_the_networks_name():
    backing = network._backing(vif(), NETWORKS, SWITCHES)
    assert backing.port.portgroupKey == 'dvportgroup-1'
    assert backing.port.switchUuid == '50 1a 2b'
    assert backing.port.portKey is None


def test_the_bindings_dvs_port_key_picks_the_port():
    backing = network._backing(vif(dvs_port_key='17'), NETWORKS, SWITCHES)
    assert backing.port.portKey == '17'


def test_a_network_the_cluster_lacks_is_an_error_naming_it():
    with pytest.raises(exception.NetworkNotFoundForBridge) as caught:
        network._backing(
            {'network': {'bridge': 'elsewhere'}}, NETWORKS, SWITCHES
        )
    assert 'elsewhere' in str(caught.value)
