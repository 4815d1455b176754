"""A Cinder volume driver for the stack's simulated iSCSI array.

cinder-volume loads it by name (``volume_driver`` in ``cinder.conf``), as
it loads any out-of-tree driver.  It keeps every volume as one LUN of one
target with CHAP on :mod:`nova_hypervisors.simulators.iscsi_target`, which
the stack runs as a process; the array's management interface (allowed
with its admin secret) creates, grows and deletes LUNs, as an array's own
management API would.  ``initialize_connection`` answers with Cinder's
usual ``iscsi`` connection data (portal, IQN, LUN, CHAP), which Nova's
XenServer driver turns into an ``iscsi`` SR whose PBD logs in to the
portal.

This stands in for Cinder's LVM driver, which needs device-mapper and an
in-kernel iSCSI target (LIO), neither of which these machines' kernel has.
Only this module imports Cinder: it runs inside cinder-volume.
"""

from __future__ import annotations

from cinder import exception as cinder_exception
from cinder import interface
from cinder.common import constants
from cinder.volume import driver
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units

from nova_hypervisors.simulators import iscsi_target

LOG = logging.getLogger(__name__)

OPTS = [
    cfg.HostAddressOpt(
        'array_address', default='127.0.0.1', help='the portal address'
    ),
    cfg.PortOpt('array_port', help='the portal port'),
    cfg.StrOpt(
        'array_admin_secret',
        secret=True,
        help="the array's management secret",
    ),
    cfg.StrOpt('array_target_iqn', help='the one target of every volume'),
    cfg.StrOpt('array_chap_username', help='CHAP user of the target'),
    cfg.StrOpt(
        'array_chap_password', secret=True, help='CHAP secret of the target'
    ),
]


@interface.volumedriver
class SimulatedArrayISCSIDriver(driver.VolumeDriver):
    """Volumes as LUNs of the simulated array, attached over iSCSI."""

    VERSION = '1.0.0'
    CI_WIKI_NAME = 'nova_hypervisors'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(OPTS)

    # -- the array ---------------------------------------------------------

    def _admin(self, action: str, **arguments) -> dict:
        config = self.configuration
        try:
            return iscsi_target.admin(
                config.array_address,
                config.array_port,
                config.array_admin_secret,
                action,
                iqn=config.array_target_iqn,
                **arguments,
            )
        except (OSError, iscsi_target.ArrayError) as exc:
            raise cinder_exception.VolumeBackendAPIException(
                data=f'the iSCSI array at {config.array_address}:'
                f'{config.array_port}: {exc}'
            ) from exc

    @staticmethod
    def _lun(volume) -> int:
        location = volume.provider_location or ''
        try:
            return int(location.rsplit(' ', 1)[-1])
        except ValueError:
            raise cinder_exception.VolumeBackendAPIException(
                data=f'volume {volume.id} has no LUN ({location!r})'
            ) from None

    # -- setup and stats ---------------------------------------------------

    def do_setup(self, context):
        config = self.configuration
        self._admin(
            'add_target',
            chap=[config.array_chap_username, config.array_chap_password],
        )

    def check_for_setup_error(self):
        self._admin('stats')

    def _update_volume_stats(self):
        stats = self._admin('stats')
        self._stats = {
            'volume_backend_name': self.configuration.safe_get(
                'volume_backend_name'
            )
            or 'simulated-iscsi-array',
            'vendor_name': 'nova_hypervisors',
            'driver_version': self.VERSION,
            'storage_protocol': constants.ISCSI,
            'total_capacity_gb': stats['total'] // units.Gi,
            'free_capacity_gb': stats['free'] // units.Gi,
            'reserved_percentage': 0,
            'thin_provisioning_support': True,
            'thick_provisioning_support': False,
            'max_over_subscription_ratio': 20.0,
            'provisioned_capacity_gb': stats['allocated'] // units.Gi,
            'multiattach': False,
        }

    # -- volumes -----------------------------------------------------------

    def create_volume(self, volume):
        created = self._admin('create_lun', size=volume.size * units.Gi)
        LOG.info(
            'Volume %s is LUN %d (SCSI id %s)',
            volume.id,
            created['lun'],
            created['scsi_id'],
        )
        return {
            'provider_location': '%s %d'
            % (self.configuration.array_target_iqn, created['lun'])
        }

    def delete_volume(self, volume):
        if not volume.provider_location:
            return
        self._admin('delete_lun', lun=self._lun(volume))

    def extend_volume(self, volume, new_size):
        self._admin(
            'extend_lun', lun=self._lun(volume), size=new_size * units.Gi
        )

    def copy_image_to_volume(
        self, context, volume, image_service, image_id, disable_sparse=False
    ):
        """A raw image's bytes, written into the LUN's file."""
        meta = image_service.show(context, image_id)
        if meta.get('disk_format') not in ('raw', None):
            raise cinder_exception.ImageUnacceptable(
                image_id=image_id,
                reason='this array takes raw images only',
            )
        path = self._admin('lun_path', lun=self._lun(volume))['path']
        with open(path, 'r+b') as lun:
            image_service.download(context, image_id, lun)

    # -- exports and connections ------------------------------------------

    def create_export(self, context, volume, connector):
        return None

    def ensure_export(self, context, volume):
        return None

    def remove_export(self, context, volume):
        return None

    def initialize_connection(self, volume, connector):
        config = self.configuration
        return {
            'driver_volume_type': 'iscsi',
            'data': {
                'target_discovered': False,
                'target_portal': f'{config.array_address}:{config.array_port}',
                'target_iqn': config.array_target_iqn,
                'target_lun': self._lun(volume),
                'volume_id': volume.id,
                'auth_method': 'CHAP',
                'auth_username': config.array_chap_username,
                'auth_password': config.array_chap_password,
                'discard': False,
            },
        }

    def terminate_connection(self, volume, connector, **kwargs):
        return None
