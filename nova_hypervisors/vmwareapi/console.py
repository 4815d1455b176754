"""Consoles and diagnostics of an instance's VM.

The MKS console is a ticket from ``AcquireTicket``, as Nova's in-tree driver
hands out; the VNC console is the ESXi host's VNC server on the port spawn
put in the VM's ``RemoteDisplay.vnc.port``, before ESXi 7 only (which
removed it).
"""

from typing import Any

from nova import exception
from nova.compute import power_state
from nova.console import type as console_type
from nova.objects import diagnostics as nova_diagnostics
from nova.virt import configdrive
from oslo_serialization import jsonutils
from pyVmomi import vim

from nova_hypervisors.vmwareapi import events
from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import session as vc_session
from nova_hypervisors.vmwareapi import vmops as vm_ops

DIAGNOSTIC_PATHS = [
    'runtime.powerState',
    'summary.config.numCpu',
    'summary.config.memorySizeMB',
    'summary.quickStats.uptimeSeconds',
    'summary.quickStats.overallCpuUsage',
    'summary.quickStats.guestMemoryUsage',
]


#: The first ESXi without a built-in VNC server.
NO_VNC_FROM = (7, 0)


def vnc_supported(vcenter_version: str) -> bool:
    """Whether the hosts behind this vCenter can serve VNC consoles."""
    try:
        major_minor = tuple(int(p) for p in vcenter_version.split('.')[:2])
    except (AttributeError, ValueError):
        return False
    return major_minor < NO_VNC_FROM


class Console:
    def __init__(
        self, session: vc_session.VCenterSession, vmops: vm_ops.VMOps
    ) -> None:
        self._session = session
        self._vmops = vmops

    def vnc(self, instance: Any) -> console_type.ConsoleVNC:
        vm = lookup.get_vm(self._session, instance)
        props = self._vmops.vm_properties(
            vm, ['config.extraConfig', 'runtime.host']
        )
        port = None
        for option in props.get('config.extraConfig') or ():
            if option.key == vm_ops.VNC_KEY:
                port = int(option.value)
        host = props.get('runtime.host')
        if port is None or host is None:
            raise exception.ConsoleTypeUnavailable(console_type='vnc')
        host_name = self._session.properties([host], vim.HostSystem, ['name'])[
            host
        ]['name']
        return console_type.ConsoleVNC(host=host_name, port=port)

    def mks(self, instance: Any) -> console_type.ConsoleMKS:
        """An MKS ticket for the VM, as in-tree (vmops.get_mks_console):
        Nova's MKS proxy connects to the ESXi host with it."""
        vm = lookup.get_vm(self._session, instance)
        try:
            ticket = self._session.invoke(
                vm, 'AcquireTicket', ticketType='mks'
            )
        except vim.fault.InvalidPowerState:
            raise exception.InstanceNotReady(
                instance_id=instance.uuid
            ) from None
        auth = {
            'ticket': ticket.ticket,
            'cfgFile': ticket.cfgFile,
            'thumbprint': (ticket.sslThumbprint or '')
            .replace(':', '')
            .lower(),
        }
        return console_type.ConsoleMKS(
            host=ticket.host,
            port=ticket.port,
            internal_access_path=jsonutils.dumps(auth),
        )

    def _read(self, instance: Any) -> dict:
        vm = lookup.get_vm(self._session, instance)
        return self._vmops.vm_properties(vm, DIAGNOSTIC_PATHS)

    def diagnostics(self, instance: Any) -> dict:
        """The legacy free-form diagnostics: vSphere's quick stats."""
        props = self._read(instance)
        return {
            path.rsplit('.', 1)[-1]: value for path, value in props.items()
        }

    def instance_diagnostics(
        self, instance: Any
    ) -> nova_diagnostics.Diagnostics:
        props = self._read(instance)
        state = events.POWER_STATES.get(props.get('runtime.powerState'), 0)
        diags = nova_diagnostics.Diagnostics(
            state=power_state.STATE_MAP[state],
            driver='vmwareapi',
            hypervisor='vmware',
            hypervisor_os='esxi',
            uptime=props.get('summary.quickStats.uptimeSeconds') or 0,
            # Whether the instance has one (Nova's own rule, as libvirt).
            config_drive=configdrive.required_by(instance),
        )
        diags.memory_details = nova_diagnostics.MemoryDiagnostics(
            maximum=props.get('summary.config.memorySizeMB') or 0,
            used=props.get('summary.quickStats.guestMemoryUsage') or 0,
        )
        for _ in range(props.get('summary.config.numCpu') or 0):
            diags.add_cpu()
        return diags
