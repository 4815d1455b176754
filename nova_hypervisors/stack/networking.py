"""Neutron with Open vSwitch: how the stack's networking is wired.

* **neutron API** (``neutron.wsgi.api`` under gunicorn, port 9696) and
  **neutron-rpc-server** (the agents' and Nova's RPC), Neutron 29 from
  PyPI, with the ML2 plugin: ``flat``, ``vlan`` and ``vxlan`` type drivers,
  ``vlan`` project networks on ``physnet1`` (VLANs 100-199), and the
  ``openvswitch`` mechanism driver; the ``vcenter_dvs`` one of
  :mod:`.vcenter_dvs` binds the vCenter compute's ports.  It reports port
  status changes to Nova (``network-vif-plugged``).
* **One Open vSwitch per simulated XenServer host**, as each host's dom0
  has its own (:mod:`nova_hypervisors.simulators.openvswitch`): its own
  ovsdb-server and ovs-vswitchd on the userspace datapath, ``br-int``
  (made by the agent) and ``br-phys`` for ``physnet1``.
* **One neutron-openvswitch-agent per XenServer host**, named like the host
  (its ``host`` is the compute's, so ML2 binds that compute's ports to
  it), talking to that host's ovsdb socket and listening for its switch's
  OpenFlow connection on a port of its own.  Security groups are accepted
  by the API and not enforced (``firewall_driver = noop``).
* The simulator puts each plugged VIF on its host's ``br-int`` as xapi's
  vif script does; the agent sees the port's ``iface-id``, wires it and
  reports it up, Neutron marks the port ACTIVE and tells Nova.

No DHCP agent: subnets are made with ``--no-dhcp``.  No packet leaves a
switch: the switches' ports are userspace ones and ``br-phys`` has no
uplink.
"""

from __future__ import annotations

import pathlib

from nova_hypervisors.simulators import openvswitch
from nova_hypervisors.stack import configs
from nova_hypervisors.stack import inifile
from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import mariadb
from nova_hypervisors.stack import rabbitmq

PHYSNET = 'physnet1'
PHYSNET_BRIDGE = 'br-phys'
INTEGRATION_BRIDGE = 'br-int'
VLAN_RANGE = '100:199'
#: Each agent's OpenFlow listener: this port plus the host's index.
OPENFLOW_PORT_NAME = 'openflow'

API = 'neutron-api'
RPC_SERVER = 'neutron-rpc-server'
AGENT_PREFIX = 'neutron-openvswitch-agent-'
OVSDB_PREFIX = 'ovsdb-server-'
VSWITCHD_PREFIX = 'ovs-vswitchd-'


#: This package's ML2 driver for the vCenter compute (:mod:`.vcenter_dvs`).
VCENTER_DRIVER = 'nova_hypervisors_vcenter'
#: vcsim's distributed switch, to which every host of its clusters belongs.
VCSIM_DVS = 'DVS0'


def vcenter_section(vcenter: dict, compute_host: str) -> dict[str, object]:
    """``[ml2_vcenter]`` from the facts vcsim printed."""
    return {
        'host': vcenter['host'],
        'port': vcenter['port'],
        'username': vcenter['username'],
        'password': vcenter['password'],
        'ca_file': vcenter.get('ca_file'),
        'dvs_name': VCSIM_DVS,
        'compute_hosts': compute_host,
    }


def agent_service(host: str) -> str:
    return f'{AGENT_PREFIX}{host}'


def switch(layout: stack_layout.Layout, host: str) -> openvswitch.Switch:
    """The Open vSwitch of one simulated host (files under run/ovs)."""
    return openvswitch.Switch(layout.run / 'ovs' / host)


def write_server(
    layout: stack_layout.Layout,
    spec: stack_layout.Spec,
    secrets: dict[str, str],
    venv_etc: pathlib.Path,
    vcenter: dict[str, object] | None = None,
) -> list[pathlib.Path]:
    """neutron.conf and ml2_conf.ini of the API and the RPC server;
    with ``vcenter`` (an ``[ml2_vcenter]`` section) the vCenter compute's
    ports are bound too."""
    mechanism_drivers = ['openvswitch'] + ([VCENTER_DRIVER] if vcenter else [])
    etc = layout.etc_dir('neutron')
    data = layout.data_dir('neutron')
    paste = (venv_etc / 'neutron' / 'api-paste.ini').read_text()
    (etc / 'api-paste.ini').write_text(paste)
    neutron_conf = inifile.write(
        etc / 'neutron.conf',
        {
            'DEFAULT': {
                'debug': False,
                'core_plugin': 'ml2',
                'service_plugins': '',
                'auth_strategy': 'keystone',
                'transport_url': rabbitmq.transport_url(spec, secrets),
                'host': 'neutron',
                'state_path': data,
                'api_paste_config': etc / 'api-paste.ini',
                'rpc_workers': 1,
                'rpc_state_report_workers': 1,
                '#1': 'No DHCP agent runs: subnets are made with --no-dhcp.',
                'dhcp_agent_notification': False,
                'notify_nova_on_port_status_changes': True,
                'notify_nova_on_port_data_changes': True,
            },
            'database': {
                'connection': mariadb.url(layout, spec, secrets, 'neutron')
            },
            'keystone_authtoken': configs.authtoken(spec, secrets, 'neutron'),
            'nova': configs.service_auth(spec, secrets, 'neutron'),
            'oslo_concurrency': {'lock_path': data / 'locks'},
        },
        configs.HEADER,
    )
    ml2_conf = inifile.write(
        etc / 'ml2_conf.ini',
        {
            'ml2': {
                'type_drivers': ['flat', 'vlan', 'vxlan'],
                'tenant_network_types': 'vlan',
                'mechanism_drivers': mechanism_drivers,
                'extension_drivers': 'port_security',
            },
            'ml2_type_flat': {'flat_networks': PHYSNET},
            'ml2_type_vlan': {
                'network_vlan_ranges': f'{PHYSNET}:{VLAN_RANGE}'
            },
            'ml2_type_vxlan': {'vni_ranges': '1000:1999'},
            'securitygroup': {'enable_security_group': True},
            **({'ml2_vcenter': vcenter} if vcenter else {}),
        },
        configs.HEADER,
    )
    for service in (API, RPC_SERVER):
        inifile.write(
            etc / f'{service}.conf',
            {'DEFAULT': {'log_file': layout.log / f'{service}.log'}},
            configs.HEADER,
        )
    return [neutron_conf, ml2_conf]


def write_agent(
    layout: stack_layout.Layout,
    spec: stack_layout.Spec,
    secrets: dict[str, str],
    host: str,
    index: int,
    venv_bin: pathlib.Path,
) -> pathlib.Path:
    """The whole file of one host's agent: broker, switch, mappings.

    Like a compute's, it holds no database credentials.
    """
    state = layout.data_dir(agent_service(host))
    privsep = {'helper_command': f'{venv_bin / "privsep-helper"}'}
    return inifile.write(
        layout.etc_dir('neutron') / f'{agent_service(host)}.ini',
        {
            'DEFAULT': {
                'debug': False,
                'host': host,
                'transport_url': rabbitmq.transport_url(spec, secrets),
                'state_path': state,
                'log_file': layout.log / f'{agent_service(host)}.log',
            },
            'agent': {
                '#1': 'The stack runs as root: commands need no sudo.',
                'root_helper': '',
                'tunnel_types': '',
            },
            'ovs': {
                'integration_bridge': INTEGRATION_BRIDGE,
                'bridge_mappings': f'{PHYSNET}:{PHYSNET_BRIDGE}',
                'datapath_type': 'netdev',
                'ovsdb_connection': switch(layout, host).db_url,
                'of_listen_address': stack_layout.LOOPBACK,
                'of_listen_port': spec.port(OPENFLOW_PORT_NAME) + index,
            },
            'securitygroup': {'firewall_driver': 'noop'},
            'oslo_concurrency': {'lock_path': state / 'locks'},
            **{
                section: privsep
                for section in (
                    'privsep',
                    'privsep_ovs_vsctl',
                    'privsep_link',
                    'privsep_namespace',
                    'privsep_conntrack',
                )
            },
        },
        configs.HEADER,
    )
