"""What a guest shows: VNC console, console log, diagnostics.

Read-only views of a running VM, apart from the operations that change it.
"""

from __future__ import annotations

import base64
import urllib.parse
import zlib

from nova import exception
from nova.compute import power_state
from nova.console import type as ctype
from nova.objects import diagnostics as nova_diagnostics
from oslo_log import log as logging

from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vm_utils

LOG = logging.getLogger(__name__)
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


CONSOLE_PLUGIN = 'console'


def console_output(session: xsession.XenAPISession, instance) -> bytes:
    """The guest console log, through dom0's ``console`` plugin.

    xapi ships no such plugin (xen-api ``python3/plugins``); it came with
    os-xenapi's dom0 plugins, which an operator installs in
    ``/etc/xapi.d/plugins`` on every host.  Without it there is no log,
    and the operator is told why.
    """
    vm_ref, record = vm_utils.lookup(session, instance)
    dom_id = record.get('domid')
    if record['power_state'] != 'Running' or dom_id in (None, '-1', -1):
        raise exception.ConsoleNotAvailable()
    try:
        encoded = session.call_xenapi(
            'host.call_plugin',
            session.host_ref,
            CONSOLE_PLUGIN,
            'get_console_log',
            {'dom_id': str(dom_id)},
        )
    except exception.NovaException as exc:
        if errors.code_of(exc) == 'XENAPI_MISSING_PLUGIN':
            LOG.warning(
                'No console log: XenServer host %s lacks the dom0 plugin '
                '%r (os-xenapi), which xapi does not ship',
                session.host_name,
                CONSOLE_PLUGIN,
            )
        raise exception.ConsoleNotAvailable() from exc
    return zlib.decompress(base64.b64decode(encoded))


def _metrics(session: xsession.XenAPISession, instance) -> tuple[dict, dict]:
    vm_ref, record = vm_utils.lookup(session, instance)
    metrics = session.call_xenapi('VM_metrics.get_record', record['metrics'])
    return record, metrics


# CPU utilisation is not in the VM's records any more: xapi removed
# VM_metrics.VCPUs_utilisation (xen-api ocaml/idl/datamodel.ml, removed in
# rel_tampa; the field stays, always empty) in favour of RRD data sources.
# Diagnostics report what the records still carry.


def diagnostics(session: xsession.XenAPISession, instance) -> dict:
    record, metrics = _metrics(session, instance)
    return {
        'memory_actual': int(metrics.get('memory_actual') or 0),
        'vcpus': int(metrics.get('VCPUs_number') or 0),
    }


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
    for cpu in range(int(metrics.get('VCPUs_number') or 0)):
        diags.add_cpu(id=cpu)
    for _ in record.get('VBDs', []):
        diags.add_disk()
    for _ in record.get('VIFs', []):
        diags.add_nic()
    return diags
