"""get_info answers from the watch cache only when Nova allows it."""

from unittest import mock

from nova.compute import power_state

from nova_hypervisors.vmwareapi import vmops


def _vmops(cached_state):
    ops = vmops.VMOps.__new__(vmops.VMOps)
    ops._session = mock.sentinel.session
    ops._states = {'uuid-1': cached_state}
    ops.vm_properties = mock.Mock(
        return_value={'runtime.powerState': 'poweredOff'}
    )
    return ops


def test_the_cache_answers_the_periodic_sync():
    ops = _vmops('poweredOn')
    with mock.patch.object(vmops.lookup, 'get_vm') as get_vm:
        info = ops.get_info(mock.Mock(uuid='uuid-1'))
    assert info.state == power_state.RUNNING
    get_vm.assert_not_called()


def test_use_cache_false_asks_vcenter_even_when_the_cache_knows():
    """A lifecycle event may still be on its way: Nova acts on vCenter's
    answer, never on a cached one it asked us not to use."""
    ops = _vmops('poweredOn')
    with mock.patch.object(vmops.lookup, 'get_vm') as get_vm:
        info = ops.get_info(mock.Mock(uuid='uuid-1'), use_cache=False)
    assert info.state == power_state.SHUTDOWN
    get_vm.assert_called_once()
