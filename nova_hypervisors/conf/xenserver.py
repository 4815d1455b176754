"""The ``[xenserver]`` option group.

Nova removed its in-tree XenAPI driver (and the group) in 2020, so the group
is ours.  Names the old driver used are kept wherever their meaning is the
same, so an operator's old nova.conf section still reads right.
"""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'xenserver',
    title='XenServer / XCP-ng options',
    help='Options for nova_hypervisors.xenapi.XenAPIDriver.',
)

connection_opts = [
    cfg.URIOpt(
        'connection_url',
        schemes=['http', 'https'],
        help='URL of the XenServer host this nova-compute manages, for '
        'example https://xenserver1 (XenServer 8 can close its plain-http '
        'port; https is the default to use).  If the host is a pool member '
        'rather than the master, the driver follows the master itself '
        'and still manages only this host.',
    ),
    cfg.StrOpt(
        'connection_username',
        default='root',
        help='User name for the XenAPI connection.',
    ),
    cfg.StrOpt(
        'connection_password',
        secret=True,
        help='Password for the XenAPI connection.  Never logged.',
    ),
    cfg.IntOpt(
        'connection_concurrent',
        default=5,
        min=1,
        help='Number of XenAPI sessions kept open and used concurrently, '
        'so that a long operation never starves the periodic tasks.',
    ),
    cfg.IntOpt(
        'login_timeout',
        default=10,
        min=1,
        help='Seconds to wait for the XenServer host to answer a login.',
    ),
    cfg.StrOpt(
        'ca_file',
        help="CA bundle used to verify the XenServer host's TLS "
        'certificate for https:// connection URLs.  Without it the '
        'system CA store is used.  A stock host serves a self-signed '
        'certificate: give its certificate here, or install one signed '
        'by your CA on every host of the pool.',
    ),
    cfg.BoolOpt(
        'insecure',
        default=False,
        help="Do not verify the XenServer host's TLS certificate.  "
        'Verification is on unless an operator turns it off here.  '
        'Ignored when ca_file is set.',
    ),
    cfg.IntOpt(
        'unreachable_grace',
        default=120,
        min=0,
        help='Seconds the pool master may stay unreachable before this '
        'compute service disables itself (its reason starts with "AUTO:"), '
        'so that the scheduler stops sending it instances; it enables '
        'itself again as soon as the master answers, unless an operator '
        'disabled it meanwhile.  0 turns this off.',
    ),
    cfg.IntOpt(
        'operation_timeout',
        default=1800,
        min=1,
        help='Seconds to wait for one asynchronous XenAPI task (an image '
        'import, a copy, a migration) before giving up on it.',
    ),
]

instance_opts = [
    cfg.StrOpt(
        'sr_matching_filter',
        default='default-sr:true',
        help='How to find the SR that holds instance disks: '
        '"default-sr:true" takes the pool\'s default SR, '
        '"other-config:<key>=<value>" the first SR whose other_config '
        'has that pair.',
    ),
    cfg.StrOpt(
        'cache_images',
        default='all',
        choices=[
            ('all', 'cache every image'),
            ('some', 'cache images whose "cache_in_nova" property is true'),
            ('none', 'never cache, import the image for every boot'),
        ],
        help='Keep a base VDI per image and SR so further boots clone it '
        'instead of importing the image again.',
    ),
    cfg.IntOpt(
        'running_timeout',
        default=60,
        min=1,
        deprecated_for_removal=True,
        deprecated_reason='VM.start is awaited as a task under '
        'operation_timeout, and returns once the VM runs; cancelling a '
        'start half-way could leave a half-built domain.',
        help='Unused: starts are bounded by operation_timeout.',
    ),
    cfg.IntOpt(
        'clean_reboot_timeout',
        default=120,
        min=1,
        help='Seconds a soft reboot may take before a hard reboot is done.',
    ),
    cfg.BoolOpt(
        'allow_pv_guests',
        default=False,
        help='Offer paravirtualised (PV) guests, for images with '
        'hw_vm_mode=xen.  XCP-ng dropped PV guests from 8.1 and removed '
        '32-bit PV in 8.2, and XenServer 8 boots HVM/UEFI guests: leave '
        'this off unless the pool still runs PV guests.',
    ),
    cfg.PortOpt(
        'console_port',
        default=80,
        help="Port of xapi's plain-HTTP console handler on every host of "
        'the pool.  Nova\'s noVNC proxy sends a plaintext "CONNECT '
        '/console?..." there, to the host the VM runs on, so this port '
        '(80 on XenServer and XCP-ng) must stay open to the proxy: do '
        'not set the hosts https_only when VNC consoles are wanted.',
    ),
    cfg.StrOpt(
        'ovs_integration_bridge',
        default='br-int',
        help='Name of the integration bridge used by Open vSwitch.',
    ),
]

pool_opts = [
    cfg.BoolOpt(
        'use_join_force',
        default=True,
        help='Join hosts to a pool with pool.join_force, which relaxes '
        'the CPU homogeneity checks of pool.join.',
    ),
    cfg.IntOpt(
        'pool_reconcile_interval',
        default=10,
        min=1,
        help='Seconds between two reconciliations of the XenServer pool '
        'with the Nova host aggregate that has hypervisor_pool=true.',
    ),
]

ALL_OPTS = connection_opts + instance_opts + pool_opts


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(ALL_OPTS, group=GROUP)


def list_opts() -> dict:
    return {GROUP: ALL_OPTS}
