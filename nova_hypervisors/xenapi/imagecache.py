"""A per-SR cache of Glance images as base VDIs.

The first boot of an image on an SR imports it into a base VDI kept for
later; every boot then clones that base (a copy-on-write child on real
SRs), so the second boot of an image transfers nothing.  Base VDIs are
found by name, in one indexed query.
"""

from __future__ import annotations

from nova import exception
from oslo_concurrency import lockutils
from oslo_log import log as logging

from nova_hypervisors.xenapi import disks
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import transfers
from nova_hypervisors.xenapi import vm_utils

LOG = logging.getLogger(__name__)

CACHE_KEY = 'nova_image_cache'
#: On every VDI cloned from a cached base: the base's image id.
CLONED_FROM = 'nova_cloned_from'


def cache_name(image_id: str) -> str:
    return 'Glance image %s' % image_id


def should_cache(mode: str, image_meta) -> bool:
    """``[xenserver] cache_images``: all, some (by image property), none."""
    if mode == 'all':
        return True
    if mode == 'some':
        props = getattr(image_meta, 'properties', None)
        flag = None
        if props is not None and 'img_cache_in_nova' in props.fields:
            flag = props.get('img_cache_in_nova')
        return str(flag).lower() in ('true', '1', 'yes')
    return False


def find_cached(
    session: xsession.XenAPISession, sr_ref: str, image_id: str
) -> str | None:
    records = session.get_all_records_where(
        'VDI', 'field "name__label"=%s' % vm_utils.quote(cache_name(image_id))
    )
    for ref, rec in records.items():
        other = rec.get('other_config') or {}
        if rec.get('SR') == sr_ref and other.get(CACHE_KEY) == image_id:
            return ref
    return None


def base_vdi(
    session: xsession.XenAPISession,
    importer: transfers.Transfers,
    context,
    image_meta,
    sr_ref: str,
) -> str:
    """The cached base VDI of an image on an SR, imported if missing."""
    image_id = image_meta.id
    with lockutils.lock('xenapi-image-%s-%s' % (sr_ref, image_id)):
        cached = find_cached(session, sr_ref, image_id)
        if cached:
            LOG.debug('Image %s is cached on SR %s', image_id, sr_ref)
            return cached
        return importer.import_image(
            context,
            image_meta,
            sr_ref,
            cache_name(image_id),
            {CACHE_KEY: image_id},
        )


def cached_images(
    session: xsession.XenAPISession, sr_ref: str
) -> tuple[dict[str, str], set[str]]:
    """({image_id: base VDI ref}, {image ids some VDI was cloned from}).

    One read of the SR's VDIs, whichever compute made them.
    """
    records = session.get_all_records_where(
        'VDI', 'field "SR"=%s' % vm_utils.quote(sr_ref)
    )
    bases = {}
    cloned = set()
    for ref, rec in records.items():
        other = rec.get('other_config') or {}
        if other.get(CACHE_KEY):
            bases[other[CACHE_KEY]] = ref
        if other.get(CLONED_FROM):
            cloned.add(other[CLONED_FROM])
    return bases, cloned


def remove_unused(
    session: xsession.XenAPISession, sr_ref: str, used_image_ids: set[str]
) -> list[str]:
    """Destroy base VDIs of images no disk on the SR was cloned from.

    Nova hands a compute only its own instances, but the pool's shared SR
    holds the bases that every compute's instances were cloned from: a
    base goes only when no VDI of any compute carries its image id
    (``nova_cloned_from``, set at each clone), and none of Nova's
    instances here uses it.  A spawn that loses the race with this removal
    imports the image again (see :func:`clone_base`).
    """
    removed = []
    bases, cloned = cached_images(session, sr_ref)
    for image_id, vdi_ref in bases.items():
        if image_id in used_image_ids or image_id in cloned:
            continue
        with lockutils.lock('xenapi-image-%s-%s' % (sr_ref, image_id)):
            disks.destroy_vdi(session, vdi_ref)
        removed.append(image_id)
    return removed


def clone_base(
    session: xsession.XenAPISession,
    importer: transfers.Transfers,
    context,
    image_meta,
    sr_ref: str,
) -> str:
    """A new VDI cloned from the image's base, tagged with its image id.

    Another compute of the pool may remove an unused base between our
    lookup and the clone (HANDLE_INVALID): the base is then found or
    imported again, once.
    """
    base = base_vdi(session, importer, context, image_meta, sr_ref)
    try:
        return session.call_xenapi('VDI.clone', base, {})
    except exception.NotFound:
        LOG.info('Cached image %s vanished; fetching again', image_meta.id)
    base = base_vdi(session, importer, context, image_meta, sr_ref)
    return session.call_xenapi('VDI.clone', base, {})
