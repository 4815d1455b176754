"""A per-SR cache of Glance images as base VDIs.

The first boot of an image on an SR imports it into a base VDI kept for
later; every boot then clones that base (a copy-on-write child on real
SRs), so the second boot of an image transfers nothing.  Base VDIs are
found by name, in one indexed query.
"""

from __future__ import annotations

from oslo_concurrency import lockutils
from oslo_log import log as logging

from nova_hypervisors.xenapi import disks
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import transfers
from nova_hypervisors.xenapi import vm_utils

LOG = logging.getLogger(__name__)

CACHE_KEY = 'nova_image_cache'


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
) -> dict[str, str]:
    """{image_id: base VDI ref} of every cached image on the SR."""
    records = session.get_all_records_where(
        'VDI', 'field "SR"=%s' % vm_utils.quote(sr_ref)
    )
    result = {}
    for ref, rec in records.items():
        image_id = (rec.get('other_config') or {}).get(CACHE_KEY)
        if image_id:
            result[image_id] = ref
    return result


def remove_unused(
    session: xsession.XenAPISession, sr_ref: str, used_image_ids: set[str]
) -> list[str]:
    """Destroy base VDIs of images no instance of this host uses."""
    removed = []
    for image_id, vdi_ref in cached_images(session, sr_ref).items():
        if image_id in used_image_ids:
            continue
        with lockutils.lock('xenapi-image-%s-%s' % (sr_ref, image_id)):
            disks.destroy_vdi(session, vdi_ref)
        removed.append(image_id)
    return removed
