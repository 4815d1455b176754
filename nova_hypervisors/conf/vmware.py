"""Our additions to Nova's ``[vmware]`` option group.

Nova 34 still registers ``[vmware]`` for its in-tree driver (host_ip,
host_port, host_username, host_password, ca_file, insecure, cluster_name,
datastore_regex, use_linked_clone, cache_prefix, ...).  VCDriver reads those
as they are, so an operator switching drivers keeps nova.conf unchanged; this
module only adds what Nova lacks, under names Nova does not use, so there is
never a ``DuplicateOptError``.
"""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'vmware',
    title='VMware vCenter options',
    help='Options for VMware vCenter.',
)

extra_opts = [
    cfg.IntOpt(
        'operation_timeout',
        default=1800,
        min=1,
        help='Seconds to wait for one vCenter task (a clone, an upload, a '
        'relocation) before giving up on it.  Used by '
        'nova_hypervisors.vmwareapi.VCDriver.',
    ),
    cfg.IntOpt(
        'unreachable_grace',
        default=120,
        min=0,
        help='Seconds vCenter may stay unreachable before this compute '
        'service disables itself (its reason starts with "AUTO:"), so that '
        'the scheduler stops sending it instances; it enables itself again '
        'as soon as vCenter answers, unless an operator disabled it '
        'meanwhile.  0 turns this off.  Used by '
        'nova_hypervisors.vmwareapi.VCDriver.',
    ),
    cfg.IntOpt(
        'http_timeout',
        default=300,
        min=1,
        help='Socket timeout in seconds for one HTTP request to vCenter.  '
        'Used by nova_hypervisors.vmwareapi.VCDriver.',
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register our additions; Nova's own options come with nova.conf."""
    conf.register_group(GROUP)
    conf.register_opts(extra_opts, group=GROUP)


def list_opts() -> dict:
    return {GROUP: extra_opts}
