"""The SRs that carry Cinder volumes: one per iSCSI target.

The old in-tree driver (nova 21.2.3 ``virt/xenapi/volume_utils.py``)
introduced one SR per target, named by a uuid derived from
``<address>/<port>/<IQN>``, so every compute of a pool finds the same SR
for the same target.  The steps, and what real xapi does at each:

1. ``SR.probe`` with the portal and IQN but no ``SCSIid``: the host logs
   in to the target and fails with ``SR_BACKEND_FAILURE_107`` listing the
   target's LUNs with their SCSI ids (sm ``ISCSISR.py``).  An unreachable
   portal or refused CHAP fails here, before anything exists.
2. ``SR.introduce`` (type ``iscsi``, shared: a LUN is reachable from every
   host of the pool), unless the SR is known already.
3. ``PBD.create`` for this host with the ``device_config`` (target, port,
   targetIQN, CHAP) and ``PBD.plug``: the host logs in.
4. ``SR.scan``; the volume's VDI is the one whose ``sm_config`` carries
   the LUN's SCSI id.

:func:`release` undoes 3 and 2 once no VBD uses any VDI of the SR.  CHAP
secrets go to xapi in the PBD's ``device_config`` only; no log line here
carries connection data.
"""

from __future__ import annotations

import dataclasses
import uuid
from xml.etree import ElementTree

from nova import exception
from oslo_concurrency import lockutils
from oslo_log import log as logging

from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import vm_utils

LOG = logging.getLogger(__name__)

ISCSI = 'iscsi'
DEFAULT_PORT = 3260
#: Fixed, so every compute derives the same SR uuid for a target.
SR_NAMESPACE = uuid.UUID('3cca4135-a809-5cb3-af62-275fbfe5178a')
#: sm's answer to a probe without SCSIid: the LUNs, as XML.
PROBE_LISTS_LUNS = 'SR_BACKEND_FAILURE_107'


@dataclasses.dataclass(frozen=True)
class ISCSITarget:
    """What Cinder's ``iscsi`` connection data says about a LUN."""

    address: str
    port: int
    iqn: str
    lun: int
    chap: tuple[str, str] | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_connection_info(cls, connection_info: dict) -> ISCSITarget:
        kind = connection_info.get('driver_volume_type')
        if kind != ISCSI:
            raise exception.VolumeDriverNotFound(driver_type=kind)
        data = connection_info.get('data') or {}
        address, port = _split_portal(data.get('target_portal') or '')
        if not address or not data.get('target_iqn'):
            raise exception.StorageError(
                reason='iscsi connection data lacks target_portal or '
                'target_iqn'
            )
        chap = None
        if data.get('auth_method') == 'CHAP':
            chap = (data.get('auth_username'), data.get('auth_password'))
        return cls(
            address=address,
            port=int(port or DEFAULT_PORT),
            iqn=data['target_iqn'],
            lun=int(data.get('target_lun') or 0),
            chap=chap,
        )

    @property
    def sr_uuid(self) -> str:
        key = '%s/%d/%s' % (self.address, self.port, self.iqn)
        return str(uuid.uuid5(SR_NAMESPACE, key))

    @property
    def sr_label(self) -> str:
        return 'Cinder iSCSI %s on %s:%d' % (self.iqn, self.address, self.port)

    def device_config(self) -> dict:
        config = {
            'target': self.address,
            'port': str(self.port),
            'targetIQN': self.iqn,
        }
        if self.chap:
            config['chapuser'], config['chappassword'] = self.chap
        return config


def _split_portal(portal: str) -> tuple[str, str]:
    """``'192.0.2.1:3260'``, ``'[2001:db8::1]:3260'``, ``'host'``."""
    if portal.startswith('['):
        address, _, rest = portal[1:].partition(']')
        return address, rest.lstrip(':')
    if portal.count(':') == 1:
        address, _, port = portal.partition(':')
        return address, port
    return portal, ''


def _call(session, method: str, *args):
    return session.call_xenapi(method, *args)


def scsi_id_of(session, host_ref: str, target: ISCSITarget) -> str:
    """The LUN's SCSI id, from the host's probe of the target."""
    try:
        _call(session, 'SR.probe', host_ref, target.device_config(), ISCSI, {})
    except exception.StorageError as exc:
        if errors.code_of(exc) != PROBE_LISTS_LUNS:
            raise exception.StorageError(
                reason='iSCSI target %s on %s:%d cannot be used from this '
                'host: %s'
                % (
                    target.iqn,
                    target.address,
                    target.port,
                    _backend_text(exc),
                )
            ) from None
        listing = (getattr(exc, 'xenapi_args', None) or ['', '', ''])[-1]
    else:
        raise exception.StorageError(
            reason='SR.probe of %s listed no LUNs' % target.iqn
        )
    for lun in _luns(listing):
        if lun.get('LUNid') == str(target.lun):
            return lun['SCSIid']
    raise exception.StorageError(
        reason='iSCSI target %s has no LUN %d' % (target.iqn, target.lun)
    )


def _backend_text(exc: Exception) -> str:
    """``SR_BACKEND_FAILURE_141: Unable to connect ...``."""
    code = errors.code_of(exc) or ''
    args = [a for a in getattr(exc, 'xenapi_args', []) if a]
    return '%s: %s' % (code, args[0]) if args else code


def _luns(listing: str) -> list[dict]:
    try:
        root = ElementTree.fromstring(listing)
    except ElementTree.ParseError:
        return []
    return [
        {child.tag: (child.text or '').strip() for child in lun}
        for lun in root.iter('LUN')
    ]


def find_sr(session, target: ISCSITarget) -> str | None:
    try:
        return _call(session, 'SR.get_by_uuid', target.sr_uuid)
    except exception.NotFound:
        return None


def connect(session, host_ref: str, target: ISCSITarget) -> tuple[str, str]:
    """The SR (plugged on ``host_ref``) and VDI of the target's LUN.

    Serialised per target within this compute; a compute of the same pool
    introducing the same SR at the same moment is met by
    ``SR_UUID_EXISTS`` and the SR it made is used.
    """
    scsi_id = scsi_id_of(session, host_ref, target)
    with lockutils.lock('xenapi-sr-%s' % target.sr_uuid):
        sr_ref = find_sr(session, target)
        introduced = False
        if sr_ref is None:
            sr_ref, introduced = _introduce(session, target)
        try:
            plug_on(session, sr_ref, host_ref, target)
            _call(session, 'SR.scan', sr_ref)
            vdi_ref = _vdi_of_lun(session, sr_ref, scsi_id)
        except Exception:
            if introduced:
                release(session, sr_ref)
            raise
    return sr_ref, vdi_ref


def _introduce(session, target: ISCSITarget) -> tuple[str, bool]:
    try:
        sr_ref = _call(
            session,
            'SR.introduce',
            target.sr_uuid,
            target.sr_label,
            'Made by Nova for Cinder volumes',
            ISCSI,
            '',
            True,
            {},
        )
    except exception.StorageError as exc:
        if errors.code_of(exc) != 'SR_UUID_EXISTS':
            raise
        return _call(session, 'SR.get_by_uuid', target.sr_uuid), False
    return sr_ref, True


def plug_on(session, sr_ref: str, host_ref: str, target: ISCSITarget):
    """Make the SR usable on ``host_ref``: its PBD there, plugged."""
    pbd_ref = _pbd_of(session, sr_ref, host_ref)
    created = False
    if pbd_ref is None:
        pbd_ref = _call(
            session,
            'PBD.create',
            {
                'host': host_ref,
                'SR': sr_ref,
                'device_config': target.device_config(),
                'other_config': {},
            },
        )
        created = True
    try:
        _call(session, 'PBD.plug', pbd_ref)
    except Exception:
        if created:
            _call(session, 'PBD.destroy', pbd_ref)
        raise


def _pbd_of(session, sr_ref: str, host_ref: str) -> str | None:
    for pbd_ref in _call(session, 'SR.get_PBDs', sr_ref):
        if _call(session, 'PBD.get_host', pbd_ref) == host_ref:
            return pbd_ref
    return None


def _vdis_of(session, sr_ref: str) -> dict[str, dict]:
    """Every VDI record of the SR, in one call."""
    return session.get_all_records_where(
        'VDI', 'field "SR"=%s' % vm_utils.quote(sr_ref)
    )


def _vdi_of_lun(session, sr_ref: str, scsi_id: str) -> str:
    for vdi_ref, vdi in _vdis_of(session, sr_ref).items():
        if (vdi.get('sm_config') or {}).get('SCSIid') == scsi_id:
            return vdi_ref
    raise exception.StorageError(
        reason='no VDI for LUN %s after SR.scan' % scsi_id
    )


def in_use(session, sr_ref: str) -> bool:
    """Whether any VBD, of any VM of the pool, uses a VDI of the SR."""
    return any(vdi.get('VBDs') for vdi in _vdis_of(session, sr_ref).values())


def release(session, sr_ref: str) -> None:
    """Unplug and forget the SR once no VBD uses it; the LUNs stay."""
    try:
        if in_use(session, sr_ref):
            return
        pbds = _call(session, 'SR.get_PBDs', sr_ref)
        for pbd_ref in pbds:
            if _call(session, 'PBD.get_currently_attached', pbd_ref):
                _call(session, 'PBD.unplug', pbd_ref)
        _call(session, 'SR.forget', sr_ref)
    except exception.NotFound:
        LOG.debug('Volume SR already forgotten')


def unplug_from(session, sr_ref: str, host_ref: str) -> None:
    """Take the SR off one host once no VM of that host uses it.

    A VM is the host's while it runs there (``resident_on``) or, halted,
    while the host's compute owns it (``affinity``): it starts there.
    """
    pbd_ref = _pbd_of(session, sr_ref, host_ref)
    if pbd_ref is None:
        return
    vbds = {
        vbd
        for vdi in _vdis_of(session, sr_ref).values()
        for vbd in vdi['VBDs']
    }
    if vbds:
        host = vm_utils.quote(host_ref)
        vms = session.get_all_records_where(
            'VM',
            'field "resident_on"=%s or field "affinity"=%s' % (host, host),
        )
        for vm in vms.values():
            here = vm.get('resident_on') == host_ref or (
                vm.get('power_state') == 'Halted'
            )
            if here and vbds.intersection(vm.get('VBDs') or ()):
                return
    if _call(session, 'PBD.get_currently_attached', pbd_ref):
        _call(session, 'PBD.unplug', pbd_ref)
    _call(session, 'PBD.destroy', pbd_ref)
