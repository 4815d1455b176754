"""What a freshly installed XenServer host has in its database.

A host record with its metrics and CPUs, a control domain resident on it,
the management network and its PIF (``eth0`` on ``xenbr0``), the
host-internal management network, a local ``ext`` SR with its PBD, the SM
plugins and one default template.  The shared ``nfs`` SR of the simulator
is attached to the first host's pool from the start (the pool an operator
prepared for Nova, with the NFS SR as its default SR); other standalone
hosts look like fresh installs, whose default SR is their local storage.
A host joining the pool gets a PBD for the shared SR, as xapi creates
PBDs for a pool's shared SRs on a new member.
"""

from __future__ import annotations

import time

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi.datamodel import NULL_REF
from nova_hypervisors.simulators.xapi.store import ObjectStore
from nova_hypervisors.simulators.xapi.topology import API_VERSION
from nova_hypervisors.simulators.xapi.topology import MIB
from nova_hypervisors.simulators.xapi.topology import PoolState
from nova_hypervisors.simulators.xapi.topology import SimHost
from nova_hypervisors.simulators.xapi.topology import Topology

MANAGEMENT_BRIDGE = 'xenbr0'
INTERNAL_BRIDGE = 'xenapi'
SM_CAPABILITIES = [
    'SR_PROBE',
    'SR_UPDATE',
    'VDI_CREATE',
    'VDI_DELETE',
    'VDI_ATTACH',
    'VDI_DETACH',
    'VDI_UPDATE',
    'VDI_CLONE',
    'VDI_SNAPSHOT',
    'VDI_RESIZE',
    'VDI_MIRROR',
    'VDI_GENERATE_CONFIG',
    'VDI_ACTIVATE',
    'VDI_DEACTIVATE',
    'THIN_PROVISIONING',
]


def dom0_memory(host: SimHost) -> int:
    """Bytes the control domain uses: 1 GiB, less on small hosts."""
    return min(1024, max(256, host.memory_mib // 8)) * MIB


def host_overhead(host: SimHost) -> int:
    """Bytes Xen itself keeps (``host.memory_overhead``)."""
    return max(32, host.memory_mib // 128) * MIB


def new_pool(topology: Topology, host: SimHost, shared: bool) -> PoolState:
    """A standalone host: master of a pool of one."""
    state = PoolState(topology.model, host)
    host.pool = state
    host.master_address = host.address
    with state.store.lock:
        _populate(topology, state, host, shared)
    return state


def _populate(
    topology: Topology, state: PoolState, host: SimHost, shared: bool
) -> None:
    store = state.store
    install_sm(store)
    install_networks(store)
    host_ref = install_host(state, host)
    local_sr = create_local_sr(topology, store, host, host_ref)
    default_sr = local_sr
    if shared:
        default_sr = attach_shared_sr(topology, store, host_ref)
    state.pool_ref = store.create(
        'pool',
        {
            'name_label': '',
            'master': host_ref,
            'default_SR': default_sr,
            'suspend_image_SR': default_sr,
            'crash_dump_SR': default_sr,
            'other_config': {
                'memory-ratio-hvm': '0.25',
                'memory-ratio-pv': '0.25',
            },
            'ha_cluster_stack': 'xhad',
            'cpu_info': _cpu_info(host),
        },
    )
    install_templates(store)


def install_sm(store: ObjectStore) -> None:
    for sm_type, label in (('ext', 'Local EXT3 VHD'), ('nfs', 'NFS VHD')):
        if store.find('SM', type=sm_type):
            continue
        store.create(
            'SM',
            {
                'name_label': label,
                'type': sm_type,
                'vendor': 'Citrix Systems Inc',
                'version': '1.0',
                'required_api_version': '1.0',
                'capabilities': list(SM_CAPABILITIES),
                'features': {cap: 1 for cap in SM_CAPABILITIES},
                'driver_filename': '/opt/xensource/sm/%sSR' % sm_type.upper(),
            },
        )


def install_networks(store: ObjectStore) -> str:
    """The management network (created once per pool); returns it."""
    found = store.find('network', bridge=MANAGEMENT_BRIDGE)
    if found:
        return found[0]
    network = store.create(
        'network',
        {
            'name_label': 'Pool-wide network associated with eth0',
            'bridge': MANAGEMENT_BRIDGE,
            'MTU': 1500,
            'managed': True,
            'purpose': [],
        },
    )
    store.create(
        'network',
        {
            'name_label': 'Host internal management network',
            'name_description': 'Network on which guests will be assigned'
            ' a private link-local IP address',
            'bridge': INTERNAL_BRIDGE,
            'MTU': 1500,
            'managed': True,
            'other_config': {
                'is_guest_installer_network': 'true',
                'is_host_internal_management_network': 'true',
                'ip_begin': '169.254.0.1',
                'ip_end': '169.254.255.254',
                'netmask': '255.255.0.0',
            },
        },
    )
    return network


def install_host(state: PoolState, host: SimHost) -> str:
    """The host record and what hangs off it; returns the host ref."""
    store = state.store
    now = codec.now()
    metrics = store.create(
        'host_metrics',
        {
            'memory_total': host.memory_mib * MIB,
            'memory_free': 0,
            'live': True,
            'last_updated': now,
        },
    )
    host_ref = store.create(
        'host',
        {
            'uuid': host.uuid,
            'name_label': host.name,
            'name_description': 'Simulated XenServer host',
            'hostname': host.name,
            'address': host.address,
            'memory_overhead': host_overhead(host),
            'API_version_major': host.api_version[0],
            'API_version_minor': host.api_version[1],
            'API_version_vendor': 'XenSource',
            'enabled': True,
            'software_version': software_version(host),
            'capabilities': [
                'xen-3.0-x86_64',
                'hvm-3.0-x86_32',
                'hvm-3.0-x86_32p',
                'hvm-3.0-x86_64',
            ],
            'sched_policy': 'credit',
            'supported_bootloaders': ['pygrub', 'eliloader'],
            'cpu_info': _cpu_info(host),
            'cpu_configuration': {},
            'metrics': metrics,
            'edition': 'xenserver-premium',
            'license_params': {'sku_type': 'xenserver-premium'},
            'bios_strings': {
                'bios-vendor': 'Xen',
                'system-manufacturer': 'Simulated',
                'system-product-name': 'xapi-sim',
            },
            'iscsi_iqn': 'iqn.2025-01.org.example:%s' % host.name,
            'other_config': {
                'agent_start_time': '%d.' % _epoch(),
                'boot_time': '%d.' % _epoch(),
                'iscsi_iqn': 'iqn.2025-01.org.example:%s' % host.name,
            },
            'virtual_hardware_platform_versions': [0, 1, 2],
        },
    )
    for number in range(host.cpus):
        store.create(
            'host_cpu',
            {
                'host': host_ref,
                'number': number,
                'vendor': 'GenuineIntel',
                'speed': 2600,
                'modelname': 'Intel(R) Xeon(R) Simulated CPU @ 2.60GHz',
                'family': 6,
                'model': 85,
                'stepping': '4',
                'flags': 'fpu de tsc msr pae mce cx8 apic sep mtrr vmx',
                'features': '1fcbfbff-f7fa3223-2d93fbff-00000123',
                'utilisation': 0.0,
            },
        )
    dom0 = store.create(
        'VM',
        vm_values(
            name_label='Control domain on host: %s' % host.name,
            name_description='The domain which manages physical devices'
            ' and manages other domains',
            is_control_domain=True,
            power_state='Running',
            resident_on=host_ref,
            affinity=host_ref,
            memory=dom0_memory(host),
            vcpus=min(host.cpus, 16),
            domid=0,
            domain_type='pv',
            metrics=create_vm_metrics(store),
        ),
    )
    store.update(
        'VM_metrics',
        store.get('VM', dom0)['metrics'],
        memory_actual=dom0_memory(host),
        VCPUs_number=min(host.cpus, 16),
        start_time=now,
    )
    store.create(
        'console',
        {
            'protocol': 'rfb',
            'location': 'https://%s/console?uuid=%s'
            % (host.address, store.get('VM', dom0)['uuid']),
            'VM': dom0,
        },
    )
    store.set('host', host_ref, 'control_domain', dom0)
    network = install_networks(store)
    pif_metrics = store.create('PIF_metrics', {'carrier': True})
    store.create(
        'PIF',
        {
            'device': 'eth0',
            'network': network,
            'host': host_ref,
            'MAC': 'c2:5a:00:00:%02x:00' % (host.index + 1),
            'MTU': 1500,
            'VLAN': -1,
            'metrics': pif_metrics,
            'physical': True,
            'currently_attached': True,
            'ip_configuration_mode': 'Static',
            'IP': host.address,
            'netmask': '255.0.0.0',
            'management': True,
            'managed': True,
        },
    )
    return host_ref


def software_version(host: SimHost) -> dict[str, str]:
    return {
        'product_version': host.product_version,
        'product_version_text': host.product_version,
        'product_brand': 'XenServer',
        'platform_name': 'XCP',
        'platform_version': '3.4.0',
        'build_number': 'xapi-sim',
        'xapi': '%d.%d' % API_VERSION,
        'xen': '4.17.5-sim',
        'linux': '4.19.0+1',
        'hostname': host.name,
        'network_backend': 'openvswitch',
        'db_schema': '5.786',
    }


def create_local_sr(
    topology: Topology, store: ObjectStore, host: SimHost, host_ref: str
) -> str:
    topology.disks.sr_dir(host.local_sr_uuid)
    sr = store.create(
        'SR',
        {
            'uuid': host.local_sr_uuid,
            'name_label': 'Local storage',
            'name_description': 'Local storage of %s' % host.name,
            'type': 'ext',
            'content_type': 'user',
            'shared': False,
            'physical_size': topology.local_sr_size,
            'other_config': {'i18n-key': 'local-storage'},
            'sm_config': {'devserial': 'scsi-sim-%s' % host.name},
        },
    )
    store.create(
        'PBD',
        {
            'host': host_ref,
            'SR': sr,
            'device_config': {'device': '/dev/sda3'},
            'currently_attached': True,
        },
    )
    return sr


def attach_shared_sr(
    topology: Topology, store: ObjectStore, host_ref: str
) -> str:
    """Plug the simulator's NFS SR on ``host_ref`` (creating its record)."""
    sr = store.find_uuid('SR', topology.shared_sr_uuid)
    if sr is None:
        topology.disks.sr_dir(topology.shared_sr_uuid)
        sr = store.create(
            'SR',
            {
                'uuid': topology.shared_sr_uuid,
                'name_label': 'NFS storage',
                'name_description': 'Shared NFS storage of the simulator',
                'type': 'nfs',
                'content_type': 'user',
                'shared': True,
                'physical_size': topology.shared_sr_size,
            },
        )
    if not store.find('PBD', SR=sr, host=host_ref):
        store.create(
            'PBD',
            {
                'host': host_ref,
                'SR': sr,
                'device_config': {
                    'server': '127.0.0.1',
                    'serverpath': '/export/xapi-sim',
                    'nfsversion': '4',
                },
                'currently_attached': True,
            },
        )
    return sr


def create_vm_metrics(store: ObjectStore) -> str:
    return store.create(
        'VM_metrics',
        {'VCPUs_utilisation': {}, 'install_time': codec.now()},
    )


def vm_values(
    name_label: str,
    memory: int,
    vcpus: int,
    is_a_template: bool = False,
    domain_type: str = 'hvm',
    **fields,
) -> dict:
    """A complete VM record of the kind ``VM.create`` needs."""
    hvm = domain_type == 'hvm'
    values = {
        'name_label': name_label,
        'user_version': 1,
        'is_a_template': is_a_template,
        'affinity': NULL_REF,
        'memory_static_max': memory,
        'memory_dynamic_max': memory,
        'memory_dynamic_min': memory,
        'memory_static_min': memory,
        'memory_target': memory,
        'VCPUs_params': {},
        'VCPUs_max': vcpus,
        'VCPUs_at_startup': vcpus,
        'actions_after_shutdown': 'destroy',
        'actions_after_reboot': 'restart',
        'actions_after_crash': 'restart',
        'HVM_boot_policy': 'BIOS order' if hvm else '',
        'HVM_boot_params': {'order': 'dc'} if hvm else {},
        'platform': {'acpi': '1', 'apic': 'true', 'pae': 'true'},
        'domain_type': domain_type,
    }
    values.update(fields)
    return values


def install_templates(store: ObjectStore) -> None:
    if store.find('VM', name_label='Other install media'):
        return
    store.create(
        'VM',
        vm_values(
            name_label='Other install media',
            name_description='Template for installing from install media',
            memory=256 * MIB,
            vcpus=1,
            is_a_template=True,
            is_default_template=True,
            other_config={
                'default_template': 'true',
                'install-methods': 'cdrom',
            },
            metrics=create_vm_metrics(store),
        ),
    )


def _cpu_info(host: SimHost) -> dict[str, str]:
    return {
        'cpu_count': str(host.cpus),
        'socket_count': str(max(1, host.cpus // 4)),
        'threads_per_core': '1',
        'vendor': 'GenuineIntel',
        'speed': '2600.000',
        'modelname': 'Intel(R) Xeon(R) Simulated CPU @ 2.60GHz',
        'family': '6',
        'model': '85',
        'stepping': '4',
        'flags': 'fpu de tsc msr pae mce cx8 apic sep mtrr vmx',
        'features': '1fcbfbff-f7fa3223-2d93fbff-00000123',
        'features_pv': '1fc9cbf5-f6f83203-2991cbf5-00000123',
        'features_hvm': '1fcbfbff-f7fa3223-2d93fbff-00000123',
    }


def _epoch() -> int:
    return int(time.time())
