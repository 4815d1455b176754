"""Ageing the image cache: Nova's ``manage_image_cache`` for vCenter.

As Nova's in-tree driver does (``imagecache.ImageCacheManager``), an
image folder of the cache that no instance of this node uses gets a
``ts-<UTC time>`` folder; one whose mark is older than ``[image_cache]
remove_unused_original_minimum_age_seconds`` is removed, and an image in
use again loses its mark.  ``[image_cache] remove_unused_base_images``
turns it off.

One more condition than in-tree: an image folder goes only when no VM on
that datastore links to it.  Several nova-computes share a cache folder
when their clusters share a datastore, and a VM that migrated to another
cluster keeps its linked-clone parent where it was: the instances of this
node alone cannot tell that an image is unused.  Every linked clone names
its parent's folder in ``extraConfig["nova.image.parent"]`` (spawn writes
it), and one keyed read over the datastore's VMs brings just that option
(vSphere keyed property paths, as in-tree reads ``nvp.vm-uuid``), only
when some image is old enough to go.
"""

import datetime
import logging
from typing import Any

from pyVmomi import vim
from pyVmomi import vmodl

from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import datastore as ds_util
from nova_hypervisors.vmwareapi import session as vc_session

LOG = logging.getLogger(__name__)

#: In-tree's mark (nova/virt/vmwareapi/imagecache.py TIMESTAMP_PREFIX and
#: TIMESTAMP_FORMAT), so caches carry over between the drivers.
TIMESTAMP_PREFIX = 'ts-'
TIMESTAMP_FORMAT = '%Y-%m-%d-%H-%M-%S'
#: The extraConfig key naming a linked clone's parent folder.
PARENT_KEY = 'nova.image.parent'
PARENT_PATH = f'config.extraConfig["{PARENT_KEY}"]'

PC = vmodl.query.PropertyCollector


def parent_option(folder: str) -> vim.option.OptionValue:
    """What spawn writes into a linked clone's extraConfig."""
    return vim.option.OptionValue(key=PARENT_KEY, value=folder)


def mark_name(now: datetime.datetime) -> str:
    return TIMESTAMP_PREFIX + now.strftime(TIMESTAMP_FORMAT)


def marked_at(name: str) -> datetime.datetime | None:
    """When a mark was made; None for a name that is no mark."""
    if not name.startswith(TIMESTAMP_PREFIX):
        return None
    try:
        return datetime.datetime.strptime(
            name[len(TIMESTAMP_PREFIX) :].rstrip('/'), TIMESTAMP_FORMAT
        ).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


class ImageAging:
    """One pass over the cache folder of every datastore of the node."""

    def __init__(
        self,
        session: vc_session.VCenterSession,
        node: cluster.Node,
        files: ds_util.DatastoreFiles,
        folder: str,
        datastore_regex: str | None,
    ) -> None:
        self._session = session
        self._node = node
        self._files = files
        self._folder = folder
        self._datastore_regex = datastore_regex

    def run(
        self,
        instances: list,
        max_age_seconds: int,
        now: datetime.datetime | None = None,
    ) -> list[str]:
        """Age the cache; return the image folders removed."""
        now = now or datetime.datetime.now(datetime.UTC)
        used = {
            instance.image_ref for instance in instances if instance.image_ref
        }
        capacity = cluster.read_capacity(
            self._session, self._node, self._datastore_regex, usage={}
        )
        removed = []
        for store in capacity.datastores:
            removed += self._age(store, used, max_age_seconds, now)
        return removed

    def _age(self, store, used, max_age_seconds, now) -> list[str]:
        root = ds_util.path(store.name, self._folder)
        expired = []
        for name in self._files.names(store.ref, root):
            image_id = name.rstrip('/')
            folder = f'{root}/{image_id}'
            marks = [
                entry
                for entry in self._files.names(store.ref, folder)
                if marked_at(entry) is not None
            ]
            if image_id in used:
                for mark in marks:
                    self._files.delete(f'{folder}/{mark.rstrip("/")}')
            elif not marks:
                self._files.make_directory(f'{folder}/{mark_name(now)}')
                LOG.info(
                    'Image %s is no longer used by this node; it goes '
                    'when unused for %d s',
                    image_id,
                    max_age_seconds,
                )
            elif (now - min(map(marked_at, marks))).total_seconds() >= (
                max_age_seconds
            ):
                expired.append(folder)
        if not expired:
            return []
        linked = self._linked_folders(store.ref)
        removed = []
        for folder in expired:
            if folder in linked:
                LOG.debug('%s is unused here but still linked', folder)
                continue
            LOG.info('Removing unused cached image %s', folder)
            self._files.delete(folder)
            removed.append(folder)
        return removed

    def _linked_folders(self, datastore: Any) -> set[str]:
        """The parent folders the VMs on ``datastore`` link to."""
        spec = PC.FilterSpec(
            objectSet=[
                PC.ObjectSpec(
                    obj=datastore,
                    skip=True,
                    selectSet=[
                        PC.TraversalSpec(
                            name='vms', type=vim.Datastore, path='vm'
                        )
                    ],
                )
            ],
            propSet=[
                PC.PropertySpec(type=vim.VirtualMachine, pathSet=[PARENT_PATH])
            ],
        )
        linked = set()
        for content in self._session.retrieve([spec]):
            option = vc_session.as_dict(content).get(PARENT_PATH)
            if getattr(option, 'value', None):
                linked.add(option.value)
        return linked
