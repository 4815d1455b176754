"""Options of nova_hypervisors, and ``list_opts`` for oslo-config-generator.

Drivers take their values from ``CONF`` when they are constructed or in
``init_host``, never at import time.
"""

from oslo_config import cfg

from nova_hypervisors.conf import vmware
from nova_hypervisors.conf import xenserver

CONF = cfg.CONF


def register_opts(conf: cfg.ConfigOpts = CONF) -> None:
    xenserver.register_opts(conf)
    vmware.register_opts(conf)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """Every option of ours by group (``oslo.config.opts`` entry point)."""
    return [
        (group, opts)
        for module in (xenserver, vmware)
        for group, opts in module.list_opts().items()
    ]


register_opts(CONF)
