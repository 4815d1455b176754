"""Names of the stack's processes, their order, and their environment."""

import os

from nova_hypervisors.stack import venv as stack_venv

MARIADB = 'mariadb'
EPMD = 'epmd'
RABBITMQ = 'rabbitmq'
NEUTRON_API = 'neutron-api'
NEUTRON_RPC = 'neutron-rpc-server'
KEYSTONE = 'keystone'
GLANCE = 'glance-api'
PLACEMENT = 'placement-api'
NOVA_API = 'nova-api'
CONDUCTOR = 'nova-conductor'
SCHEDULER = 'nova-scheduler'
POOL_AGENT = 'pool-agent'
XAPI_SIM = 'xapi-sim'
VCSIM = 'vcsim'
ISCSI_ARRAY = 'iscsi-array'
CINDER_API = 'cinder-api'
CINDER_SCHEDULER = 'cinder-scheduler'
CINDER_VOLUME = 'cinder-volume'
COMPUTE_PREFIX = 'nova-compute-'

# Stopped wave after wave, each wave in parallel: computes, Neutron's
# agents and the pool agent first, then the control plane and simulators,
# then the hosts' switches (the XenServer simulator takes its VIFs off
# them as it stops), then the broker, and the database last, so nothing
# loses a dependency while it still works.  A name ending in ``*`` stands
# for every service it begins.
STOP_WAVES = (
    (POOL_AGENT,),
    (CINDER_VOLUME,),
    (
        CINDER_API,
        CINDER_SCHEDULER,
        ISCSI_ARRAY,
        SCHEDULER,
        CONDUCTOR,
        NOVA_API,
        PLACEMENT,
        GLANCE,
        KEYSTONE,
        NEUTRON_API,
        NEUTRON_RPC,
        XAPI_SIM,
        VCSIM,
    ),
    ('ovs-vswitchd-*',),
    ('ovsdb-server-*',),
    (RABBITMQ,),
    (EPMD, MARIADB),
)


def stop_waves(names: list[str]) -> list[list[str]]:
    """``names`` grouped into waves; computes (and any name not listed in
    STOP_WAVES) stop with the pool agent, in the first wave."""
    waves = [
        sorted(name for name in names if any(_matches(name, p) for p in wave))
        for wave in STOP_WAVES
    ]
    placed = {name for wave in waves for name in wave}
    waves[0] = sorted(name for name in names if name not in placed) + waves[0]
    return [wave for wave in waves if wave]


def _matches(name: str, pattern: str) -> bool:
    if pattern.endswith('*'):
        return name.startswith(pattern[:-1])
    return name == pattern


def environment(services_venv: stack_venv.Venv) -> dict[str, str]:
    """The environment every OpenStack process of the stack runs with.

    An operator's sourced openrc (``OS_*``) must not reach the services,
    and neither may a PYTHONPATH pointing at a checkout: the services run
    what is installed in their virtualenv, as in production.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith('OS_')
        and key not in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME')
    }
    passthrough = os.environ.get('OS_NOVA_DISABLE_EVENTLET_PATCHING')
    if passthrough is not None:
        env['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = passthrough
    env['PATH'] = f'{services_venv.bin}:{env.get("PATH", "/usr/bin:/bin")}'
    env['PYTHONUNBUFFERED'] = '1'
    return env
