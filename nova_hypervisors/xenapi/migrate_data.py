"""Live-migration data that travels only between our own computes.

What ``check_can_live_migrate_*`` return crosses nova-conductor, which
never imports this package, so those checks return Nova's own
``HyperVLiveMigrateData`` (``is_shared_instance_path`` meaning "same pool,
disks on a shared SR": ``VM.pool_migrate``).  What the destination's
``pre_live_migration`` returns goes straight back to the source compute
(and on to ``rollback_live_migration_at_destination``), and both load this
driver, so a block migration may carry the ``host.migrate_receive`` token
in a class of our own.  It subclasses the Hyper-V one so that Nova's
post-migration cleanup treats both alike.
"""

from __future__ import annotations

from nova.objects import base as obj_base
from nova.objects import fields
from nova.objects import migrate_data
from oslo_utils import versionutils
from oslo_versionedobjects import fields as ovo_fields


class _SecretDict(ovo_fields.Dict):
    """A dict of strings that never shows its values in a log line.

    The ``host.migrate_receive`` token holds a session ref of the
    destination pool (in ``session_id`` and inside the ``xenops``/``SM``
    URLs), and Nova logs migrate_data objects at debug level.
    """

    def stringify(self, value) -> str:
        return '{%s}' % ','.join('%s=<secret>' % key for key in sorted(value))


class SecretDictOfStringsField(ovo_fields.AutoTypedField):
    AUTO_TYPE = _SecretDict(ovo_fields.String())


@obj_base.NovaObjectRegistry.register
class XenAPILiveMigrateData(migrate_data.HyperVLiveMigrateData):
    """A block migration's destination, from ``pre_live_migration``."""

    # Version 1.0: Initial version
    # Version 1.1: volume_srs
    VERSION = '1.1'

    fields = {
        # What host.migrate_receive on the destination answered: the
        # ``dest`` argument of VM.migrate_send.
        'migrate_receive': SecretDictOfStringsField(),
        # The destination's SR for the instance's disks.
        'dest_sr': fields.StringField(),
        # VIF MAC -> the destination pool's network for it.
        'vif_networks': fields.DictOfStringsField(),
        # Whether the destination is another pool (the VM gets a new
        # record there, and a failed send may leave a halted copy).
        'cross_pool': fields.BooleanField(),
        # Volume SR uuid -> that SR as the destination pool knows it,
        # connected there by pre_live_migration (another pool only).
        'volume_srs': fields.DictOfStringsField(),
    }

    def obj_make_compatible(self, primitive, target_version) -> None:
        # Our versions are our own; skip Hyper-V's version history.
        migrate_data.LiveMigrateData.obj_make_compatible(
            self, primitive, target_version
        )
        if versionutils.convert_version_to_tuple(target_version) < (1, 1):
            primitive.pop('volume_srs', None)

    @classmethod
    def from_base(
        cls, base: migrate_data.LiveMigrateData
    ) -> XenAPILiveMigrateData:
        """A copy of ``base`` with every field it has set."""
        result = cls()
        for name in base.fields:
            if name in cls.fields and base.obj_attr_is_set(name):
                setattr(result, name, getattr(base, name))
        return result
