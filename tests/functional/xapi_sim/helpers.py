"""Helpers for the simulator tests: what a XenAPI driver would send."""

from __future__ import annotations

import http.client
import xmlrpc.client

import pytest
import XenAPI

MIB = 1024 * 1024
GIB = 1024 * MIB


def client(host) -> XenAPI.Session:
    """The PyPI client for a host's https URL, trusting the run's CA."""
    context = host.topology.tls.client_context()
    return XenAPI.Session(
        host.url, transport=xmlrpc.client.SafeTransport(context=context)
    )


def connect(host, timeout: float = 30) -> http.client.HTTPSConnection:
    """An https connection to a host's XenAPI port (disk transfers)."""
    return http.client.HTTPSConnection(
        host.address,
        host.port,
        timeout=timeout,
        context=host.topology.tls.client_context(),
    )


def login(host) -> XenAPI.Session:
    session = client(host)
    session.xenapi.login_with_password(
        host.username, host.password, '1.0', 'xapi-sim-tests'
    )
    return session


def failure_of(call, *args) -> list[str]:
    """The ErrorDescription a call fails with (the test fails if not)."""
    with pytest.raises(XenAPI.Failure) as info:
        call(*args)
    return list(info.value.details)


def vm_record(name: str, memory: int = 512 * MIB, vcpus: int = 1, **extra):
    """A complete record for ``VM.create``, as a driver would send."""
    record = {
        'name_label': name,
        'name_description': '',
        'user_version': '1',
        'is_a_template': False,
        'affinity': 'OpaqueRef:NULL',
        'memory_static_max': str(memory),
        'memory_dynamic_max': str(memory),
        'memory_dynamic_min': str(memory),
        'memory_static_min': str(memory),
        'VCPUs_params': {},
        'VCPUs_max': str(vcpus),
        'VCPUs_at_startup': str(vcpus),
        'actions_after_shutdown': 'destroy',
        'actions_after_reboot': 'restart',
        'actions_after_crash': 'destroy',
        'PV_bootloader': '',
        'PV_kernel': '',
        'PV_ramdisk': '',
        'PV_args': '',
        'PV_bootloader_args': '',
        'PV_legacy_args': '',
        'HVM_boot_policy': 'BIOS order',
        'HVM_boot_params': {'order': 'dc'},
        'platform': {'acpi': '1', 'apic': 'true'},
        'PCI_bus': '',
        'other_config': {},
        'recommendations': '',
    }
    record.update(extra)
    return record


def create_vm(xapi, name: str = 'vm', **kwargs) -> str:
    return xapi.VM.create(vm_record(name, **kwargs))


def default_sr(xapi) -> str:
    pool = xapi.pool.get_all()[0]
    return xapi.pool.get_default_SR(pool)


def local_sr(xapi, host_ref: str | None = None) -> str:
    for ref, rec in xapi.SR.get_all_records().items():
        if rec['type'] == 'ext':
            pbd_hosts = [xapi.PBD.get_host(p) for p in rec['PBDs']]
            if host_ref is None or host_ref in pbd_hosts:
                return ref
    raise AssertionError('no local SR')


def create_vdi(xapi, sr: str, size: int = 8 * MIB, name: str = 'disk'):
    return xapi.VDI.create(
        {
            'name_label': name,
            'name_description': '',
            'SR': sr,
            'virtual_size': str(size),
            'type': 'user',
            'sharable': False,
            'read_only': False,
            'other_config': {},
            'xenstore_data': {},
            'sm_config': {},
            'tags': [],
        }
    )


def attach(xapi, vm: str, vdi: str, userdevice: str = '0', **extra) -> str:
    record = {
        'VM': vm,
        'VDI': vdi,
        'userdevice': userdevice,
        'bootable': userdevice == '0',
        'mode': 'RW',
        'type': 'Disk',
        'empty': False,
        'other_config': {},
        'qos_algorithm_type': '',
        'qos_algorithm_params': {},
    }
    record.update(extra)
    return xapi.VBD.create(record)


def management_network(xapi) -> str:
    return xapi.network.get_by_name_label(
        'Pool-wide network associated with eth0'
    )[0]


def add_vif(xapi, vm: str, network: str, device: str = '0', mac: str = ''):
    return xapi.VIF.create(
        {
            'device': device,
            'network': network,
            'VM': vm,
            'MAC': mac,
            'MTU': '1500',
            'other_config': {},
            'qos_algorithm_type': '',
            'qos_algorithm_params': {},
        }
    )
