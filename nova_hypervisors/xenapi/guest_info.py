"""What a guest shows: VNC console, console log, diagnostics.

Read-only views of a running VM, apart from the operations that change it.
"""

from __future__ import annotations

import base64
import urllib.parse
import zlib

from nova.compute import power_state
from nova.console import type as ctype
from nova.objects import diagnostics as nova_diagnostics

from nova import exception
from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vm_utils

MIB = 1024**2


def vnc_console(
    session: xsession.XenAPISession, instance, console_port: int
) -> ctype.ConsoleVNC:
    """Where Nova's proxy reaches the VM's VNC console.

    xapi serves ``/console`` only on the host the VM runs on
    (xen-api ``ocaml/xapi/console.ml``, ``check_vm_is_running_here``) and
    only with a session (``xapi_http.ml``, ``with_context``).  Nova's proxy
    sends a plaintext ``CONNECT <path>`` on a raw socket, so the port is
    the hosts' plain-HTTP one, as the old in-tree driver did
    (nova 21.2.3 ``vmops.get_vnc_console``).
    """
    vm_ref, record = vm_utils.lookup(session, instance)
    if record['power_state'] != 'Running':
        raise exception.InstanceNotReady(instance_id=instance.uuid)
    for console_ref in record.get('consoles', []):
        console = session.call_xenapi('console.get_record', console_ref)
        if console['protocol'] != 'rfb':
            continue
        address = session.call_xenapi(
            'host.get_address', record['resident_on']
        )
        location = urllib.parse.urlsplit(console['location'])
        query = urllib.parse.parse_qsl(location.query)
        query.append(('session_id', session.handle))
        return ctype.ConsoleVNC(
            host=address,
            port=console_port,
            internal_access_path='%s?%s'
            % (location.path or '/console', urllib.parse.urlencode(query)),
        )
    raise exception.ConsoleTypeUnavailable(console_type='vnc')


def console_output(session: xsession.XenAPISession, instance) -> bytes:
    """The guest console log, through dom0's ``console`` plugin."""
    vm_ref, record = vm_utils.lookup(session, instance)
    dom_id = record.get('domid')
    if record['power_state'] != 'Running' or dom_id in (None, '-1', -1):
        raise exception.ConsoleNotAvailable()
    try:
        encoded = session.call_xenapi(
            'host.call_plugin',
            session.host_ref,
            'console',
            'get_console_log',
            {'dom_id': str(dom_id)},
        )
    except errors.XenAPIError as exc:
        raise exception.ConsoleNotAvailable() from exc
    return zlib.decompress(base64.b64decode(encoded))


def _metrics(session: xsession.XenAPISession, instance) -> tuple[dict, dict]:
    vm_ref, record = vm_utils.lookup(session, instance)
    metrics = session.call_xenapi('VM_metrics.get_record', record['metrics'])
    return record, metrics


def diagnostics(session: xsession.XenAPISession, instance) -> dict:
    record, metrics = _metrics(session, instance)
    result = {
        'memory_actual': int(metrics.get('memory_actual') or 0),
        'vcpus': int(metrics.get('VCPUs_number') or 0),
    }
    for cpu, value in (metrics.get('VCPUs_utilisation') or {}).items():
        result['cpu%s_utilisation' % cpu] = float(value)
    return result


def instance_diagnostics(
    session: xsession.XenAPISession, instance
) -> nova_diagnostics.Diagnostics:
    record, metrics = _metrics(session, instance)
    diags = nova_diagnostics.Diagnostics(
        state=power_state.STATE_MAP[vm_utils.to_power_state(record)],
        driver='xenapi',
        hypervisor='xen',
        hypervisor_os='linux',
        config_drive=False,
    )
    diags.memory_details = nova_diagnostics.MemoryDiagnostics(
        maximum=int(record.get('memory_static_max') or 0) // MIB,
        used=int(metrics.get('memory_actual') or 0) // MIB,
    )
    for cpu, value in sorted((metrics.get('VCPUs_utilisation') or {}).items()):
        diags.add_cpu(id=int(cpu), utilisation=int(float(value) * 100))
    for _ in record.get('VBDs', []):
        diags.add_disk()
    for _ in record.get('VIFs', []):
        diags.add_nic()
    return diags
