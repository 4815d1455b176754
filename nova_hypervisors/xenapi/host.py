"""This XenServer host's resources, as Nova and placement want them.

Every report costs the same few XenAPI calls whatever the number of VMs:
the host record, its metrics, the pool (for the default SR) and the SR.
"""

from __future__ import annotations

import json

from nova import conf as nova_conf
from nova.objects import fields
import os_resource_classes as orc
from oslo_utils import versionutils

from nova_hypervisors.xenapi import disks
from nova_hypervisors.xenapi import session as xsession

CONF = nova_conf.CONF

MIB = 1024**2
GIB = 1024**3
HYPERVISOR_TYPE = 'xen'


class HostState:
    """Resource figures of the host this nova-compute manages."""

    def __init__(
        self,
        session: xsession.XenAPISession,
        sr_matching_filter: str,
        allow_pv: bool = False,
    ) -> None:
        self._session = session
        self._sr_filter = sr_matching_filter
        # HVM only by default: XCP-ng 8.1+ boots no PV guests.
        self._vm_modes = [fields.VMMode.HVM] + (
            [fields.VMMode.XEN] if allow_pv else []
        )

    def _figures(self) -> dict:
        session = self._session
        host = session.call_xenapi('host.get_record', session.host_ref)
        metrics = session.call_xenapi(
            'host_metrics.get_record', host['metrics']
        )
        sr_ref = disks.find_sr(session, self._sr_filter)
        sr = session.call_xenapi('SR.get_record', sr_ref)
        cpu_info = host.get('cpu_info') or {}
        vcpus = int(
            cpu_info.get('cpu_count') or len(host.get('host_CPUs') or []) or 1
        )
        memory_total = int(metrics['memory_total'])
        memory_free = int(metrics['memory_free'])
        disk_total = int(sr.get('physical_size') or 0)
        disk_used = int(
            sr.get('virtual_allocation') or sr.get('physical_utilisation') or 0
        )
        version = (
            (host.get('software_version') or {}).get('product_version')
            or (host.get('software_version') or {}).get('platform_version')
            or '0.0.0'
        )
        return {
            'host': host,
            'vcpus': vcpus,
            'memory_mb': memory_total // MIB,
            'memory_mb_used': (memory_total - memory_free) // MIB,
            'local_gb': disk_total // GIB,
            'local_gb_used': disk_used // GIB,
            'version': version,
            'cpu_info': cpu_info,
            'vcpus_used': 0,
        }

    def available_resource(self) -> dict:
        """The dict ``get_available_resource`` returns."""
        fig = self._figures()
        host = fig['host']
        cpu_info = fig['cpu_info']
        return {
            'uuid': self._session.host_uuid,
            'vcpus': fig['vcpus'],
            'memory_mb': fig['memory_mb'],
            'local_gb': fig['local_gb'],
            'vcpus_used': fig['vcpus_used'],
            'memory_mb_used': fig['memory_mb_used'],
            'local_gb_used': fig['local_gb_used'],
            'hypervisor_type': HYPERVISOR_TYPE,
            'hypervisor_version': versionutils.convert_version_to_int(
                _numeric(fig['version'])
            ),
            'hypervisor_hostname': self._session.host_name,
            'cpu_info': json.dumps(
                {
                    'vendor': cpu_info.get('vendor'),
                    'model': cpu_info.get('modelname'),
                    'arch': fields.Architecture.X86_64,
                    'topology': {
                        'sockets': int(cpu_info.get('socket_count') or 1),
                        'cores': fig['vcpus'],
                        'threads': 1,
                    },
                    'features': [],
                }
            ),
            'disk_available_least': max(
                fig['local_gb'] - fig['local_gb_used'], 0
            ),
            'supported_instances': [
                (
                    fields.Architecture.X86_64,
                    fields.HVType.XEN,
                    mode,
                )
                for mode in self._vm_modes
            ],
            'numa_topology': None,
            'host_name_label': host.get('name_label'),
        }

    def inventory(self, ratios: dict, reserved_disk_gb: int) -> dict:
        """Placement inventory with Nova's allocation ratios and reserves."""
        fig = self._figures()
        return {
            orc.VCPU: {
                'total': fig['vcpus'],
                'min_unit': 1,
                'max_unit': fig['vcpus'],
                'step_size': 1,
                'allocation_ratio': ratios[orc.VCPU],
                'reserved': CONF.reserved_host_cpus,
            },
            orc.MEMORY_MB: {
                'total': fig['memory_mb'],
                'min_unit': 1,
                'max_unit': fig['memory_mb'],
                'step_size': 1,
                'allocation_ratio': ratios[orc.MEMORY_MB],
                'reserved': CONF.reserved_host_memory_mb,
            },
            orc.DISK_GB: {
                'total': fig['local_gb'],
                'min_unit': 1,
                'max_unit': max(fig['local_gb'], 1),
                'step_size': 1,
                'allocation_ratio': ratios[orc.DISK_GB],
                'reserved': reserved_disk_gb,
            },
        }


def _numeric(version: str) -> str:
    parts = []
    for part in version.split('.')[:3]:
        digits = ''.join(ch for ch in part if ch.isdigit())
        parts.append(digits or '0')
    return '.'.join(parts)
