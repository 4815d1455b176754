"""The ``iscsi`` SR type: one SR per target, one VDI per LUN.

It follows xapi's storage manager for raw iSCSI LUNs (xapi-project/sm,
``drivers/ISCSISR.py``, the ``LUNperVDI`` SR behind type ``iscsi``):

* ``device_config`` names the portal (``target``, ``port``, default 3260),
  the ``targetIQN``, and CHAP (``chapuser``, ``chappassword``).
* ``PBD.plug`` logs in to the target from the host, over TCP to the
  portal (:mod:`nova_hypervisors.simulators.iscsi_target`).  An
  unreachable portal, a target the portal does not have and a refused
  CHAP login fail with the ``SR_BACKEND_FAILURE_<n>`` codes of sm's
  ``drivers/XE_SR_ERRORCODES.xml``: 141 ``ISCSITarget``, 96
  ``ConfigTargetIQNMissing`` and 68 ``ISCSILogin``.
* ``SR.scan`` makes one VDI per LUN, whose uuid is derived from the LUN's
  SCSI id (sm's ``scsiutil.gen_uuid_from_string``) and whose ``sm_config``
  carries ``LUNid`` and ``SCSIid``; a grown LUN reports its new size.
* ``SR.probe`` without a ``SCSIid`` fails with ``SR_BACKEND_FAILURE_107``
  (``ConfigSCSIid``) carrying the target's LUNs as XML: that is how a
  client finds a LUN's SCSI id before it introduces anything.
* The SR cannot create, delete, resize, clone or snapshot VDIs (its
  capabilities have none of ``VDI_CREATE``, ``VDI_DELETE``, ...): xapi
  answers ``SR_OPERATION_NOT_SUPPORTED``.  A volume's LUN is never
  destroyed through xapi.

The error codes and the probe XML's shape were written from memory of
sm's sources; this session had no way to look them up again.
"""

from __future__ import annotations

import uuid
from xml.sax import saxutils

from nova_hypervisors.simulators import iscsi_target
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.registry import CallContext

SR_TYPE = 'iscsi'
DEFAULT_PORT = 3260
#: sm's ``gen_uuid_from_string`` hashes the SCSI id; any fixed namespace
#: gives the same property: one LUN, one VDI uuid, on every host.
VDI_NAMESPACE = uuid.UUID('3f0c4b8e-6a55-4c63-9e51-0f2a6c2f1a10')
LUN_VDI_FIELDS = {
    'type': 'user',
    'managed': True,
    'sharable': False,
    'read_only': False,
    'allowed_operations': ['forget'],
}


def backend_failure(code: int, text: str, detail: str = '') -> XapiFailure:
    """``SR_BACKEND_FAILURE_<code> [status, stdout, stderr]`` as sm sends
    it: the text in the second slot, details in the third."""
    return XapiFailure.raw(['SR_BACKEND_FAILURE_%d' % code, '', text, detail])


def login(device_config: dict) -> list[dict]:
    """Log in to the target ``device_config`` names; its LUNs."""
    address = device_config.get('target', '')
    iqn = device_config.get('targetIQN', '')
    if not address:
        raise backend_failure(
            95, 'The request is missing the target parameter'
        )
    if not iqn:
        raise backend_failure(
            96,
            'The request is missing or has an incorrect target IQN parameter',
        )
    try:
        port = int(device_config.get('port') or DEFAULT_PORT)
    except ValueError:
        raise backend_failure(
            141, 'Unable to connect to ISCSI service on target'
        ) from None
    chap = None
    if device_config.get('chapuser'):
        chap = (device_config['chapuser'], device_config.get('chappassword'))
    try:
        answer = iscsi_target.login(address, port, iqn, chap)
    except (OSError, ValueError):
        raise backend_failure(
            141, 'Unable to connect to ISCSI service on target'
        ) from None
    if answer.get('ok'):
        return answer['luns']
    if answer.get('error') == 'auth':
        raise backend_failure(
            68,
            'ISCSI login failed, verify CHAP credentials',
        )
    raise backend_failure(
        96, 'The request is missing or has an incorrect target IQN parameter'
    )


def luns_xml(luns: list[dict]) -> str:
    """The LUN list of a failed probe, as ISCSISR prints it."""
    items = ''.join(
        '<LUN><vendor>LIO-ORG</vendor><LUNid>%d</LUNid><size>%d</size>'
        '<SCSIid>%s</SCSIid></LUN>'
        % (lun['lun'], lun['size'], saxutils.escape(lun['scsi_id']))
        for lun in luns
    )
    return '<?xml version="1.0" ?><iscsi-target>%s</iscsi-target>' % items


def probe(device_config: dict) -> str:
    luns = login(device_config)
    scsi_id = device_config.get('SCSIid')
    if not scsi_id or scsi_id not in {lun['scsi_id'] for lun in luns}:
        raise backend_failure(
            107, 'The SCSIid parameter is missing or incorrect', luns_xml(luns)
        )
    return '<?xml version="1.0" ?><SRlist></SRlist>'


def vdi_uuid(scsi_id: str) -> str:
    return str(uuid.uuid5(VDI_NAMESPACE, scsi_id))


def plugged_config(ctx: CallContext, sr: str) -> dict | None:
    store = ctx.store
    for pbd in store.get('SR', sr)['PBDs']:
        record = store.get('PBD', pbd)
        if record['currently_attached']:
            return record['device_config']
    return None


def attach(ctx: CallContext, pbd: str) -> None:
    """``PBD.plug`` of an iscsi SR: log in, then scan."""
    record = ctx.store.get('PBD', pbd)
    luns = login(record['device_config'])
    _refresh(ctx, record['SR'], luns)


def scan(ctx: CallContext, sr: str) -> None:
    config = plugged_config(ctx, sr)
    if config is None:
        raise XapiFailure('SR_HAS_NO_PBDS', sr)
    _refresh(ctx, sr, login(config))


def _refresh(ctx: CallContext, sr: str, luns: list[dict]) -> None:
    """One VDI per LUN, its bytes the array's LUN file."""
    store = ctx.store
    sr_uuid = store.get('SR', sr)['uuid']
    seen = set()
    for lun in luns:
        uuid_ = vdi_uuid(lun['scsi_id'])
        seen.add(uuid_)
        ctx.disks.link(sr_uuid, uuid_, lun['path'])
        existing = store.find_uuid('VDI', uuid_)
        sm_config = {'LUNid': str(lun['lun']), 'SCSIid': lun['scsi_id']}
        if existing is not None:
            store.update(
                'VDI',
                existing,
                virtual_size=lun['size'],
                physical_utilisation=lun['size'],
                sm_config=sm_config,
            )
            continue
        store.create(
            'VDI',
            dict(
                LUN_VDI_FIELDS,
                uuid=uuid_,
                name_label='LUN %d' % lun['lun'],
                SR=sr,
                location=uuid_,
                virtual_size=lun['size'],
                physical_utilisation=lun['size'],
                sm_config=sm_config,
            ),
        )
    for vdi in list(store.get('SR', sr)['VDIs']):
        record = store.get('VDI', vdi)
        if record['uuid'] not in seen and not record['VBDs']:
            store.destroy('VDI', vdi)
            ctx.disks.unlink(sr_uuid, record['uuid'])
    size = sum(lun['size'] for lun in luns)
    store.update(
        'SR',
        sr,
        physical_size=size,
        physical_utilisation=size,
        virtual_allocation=size,
    )
