"""An ML2 mechanism driver binding the vCenter compute's ports to a DVS.

Nova's VMware driver (Nova 34's in-tree one and ours) attaches a port whose
binding has ``vif_type`` ``dvs`` to the distributed port group its details
name (``dvs_port_group_name``).  That is how networking-vsphere's DVS driver
bound ports; this driver does the same for the stack, against the stack's
vcsim:

* a network's port group, named after the network's id, is made on the
  distributed switch when the first port of that network is bound on one of
  the vCenter compute hosts, with the segment's VLAN id (VLAN 0 for a flat
  network), and it is destroyed with the network;
* the binding is ``dvs`` with ``dvs_port_group_name`` and is ACTIVE at
  once: no agent runs on an ESXi host, the switch is vCenter's.

Loaded by ML2 under the name ``nova_hypervisors_vcenter`` (this package's
``neutron.ml2.mechanism_drivers`` entry point); configured in
``[ml2_vcenter]`` of ``ml2_conf.ini``.  It speaks pyVmomi directly: Nova's
modules register their options on the same global configuration Neutron
uses, so nothing of Nova is imported here.
"""

from __future__ import annotations

import ssl
import threading

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg
from oslo_log import log as logging
from pyVim import connect
from pyVmomi import vim

LOG = logging.getLogger(__name__)

VIF_TYPE_DVS = 'dvs'
GROUP = 'ml2_vcenter'
OPTS = [
    cfg.HostAddressOpt('host', default='127.0.0.1', help='vCenter address'),
    cfg.PortOpt('port', default=443, help='vCenter HTTPS port'),
    cfg.StrOpt('username', help='vCenter user'),
    cfg.StrOpt('password', secret=True, help="the user's password"),
    cfg.StrOpt('ca_file', help="CA bundle that signed vCenter's certificate"),
    cfg.StrOpt('dvs_name', help='the distributed switch of the port groups'),
    cfg.ListOpt(
        'compute_hosts',
        default=[],
        help="Nova compute hosts whose ports go to vCenter's switch",
    ),
]
SEGMENT_TYPES = (constants.TYPE_VLAN, constants.TYPE_FLAT)
VMWARE_DVS = vim.dvs.VmwareDistributedVirtualSwitch


class VCenterDVSMechanismDriver(api.MechanismDriver):
    """Ports of vCenter computes on a port group per network."""

    def initialize(self) -> None:
        cfg.CONF.register_opts(OPTS, GROUP)
        self.conf = cfg.CONF[GROUP]
        self._service_instance = None
        self._lock = threading.Lock()

    # -- ML2 --------------------------------------------------------------

    def bind_port(self, context) -> None:
        if context.host not in self.conf.compute_hosts:
            return
        for segment in context.segments_to_bind:
            if segment[api.NETWORK_TYPE] not in SEGMENT_TYPES:
                continue
            name = self._ensure_portgroup(
                context.network.current['id'],
                segment.get(api.SEGMENTATION_ID) or 0,
            )
            context.set_binding(
                segment[api.ID],
                VIF_TYPE_DVS,
                {
                    'dvs_port_group_name': name,
                    portbindings.CAP_PORT_FILTER: False,
                },
                status=constants.PORT_STATUS_ACTIVE,
            )
            return

    def delete_network_postcommit(self, context) -> None:
        name = context.current['id']
        with self._lock:
            group = self._find(vim.dvs.DistributedVirtualPortgroup, name)
            if group is None:
                return
            self._wait(group.Destroy_Task())
        LOG.info('port group %s destroyed with its network', name)

    # -- vCenter ----------------------------------------------------------

    def _ensure_portgroup(self, name: str, vlan: int) -> str:
        with self._lock:
            if self._find(vim.dvs.DistributedVirtualPortgroup, name):
                return name
            switch = self._find(
                vim.DistributedVirtualSwitch, self.conf.dvs_name
            )
            if switch is None:
                raise RuntimeError(
                    f'[{GROUP}] dvs_name: no distributed switch named '
                    f'{self.conf.dvs_name!r} in vCenter {self.conf.host}'
                )
            spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
                name=name,
                type='earlyBinding',
                numPorts=8,
                defaultPortConfig=VMWARE_DVS.VmwarePortConfigPolicy(
                    vlan=VMWARE_DVS.VlanIdSpec(
                        vlanId=int(vlan), inherited=False
                    )
                ),
            )
            self._wait(switch.AddDVPortgroup_Task([spec]))
        LOG.info('port group %s made on %s (VLAN %s)', name, switch.name, vlan)
        return name

    def _content(self):
        if self._service_instance is not None:
            try:
                return self._service_instance.RetrieveContent()
            except vim.fault.NotAuthenticated:
                self._service_instance = None
        context = ssl.create_default_context(cafile=self.conf.ca_file)
        self._service_instance = connect.SmartConnect(
            host=self.conf.host,
            port=self.conf.port,
            user=self.conf.username,
            pwd=self.conf.password,
            sslContext=context,
        )
        return self._service_instance.RetrieveContent()

    def _find(self, kind: type, name: str):
        content = self._content()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [kind], True
        )
        try:
            return next((o for o in view.view if o.name == name), None)
        finally:
            view.DestroyView()

    @staticmethod
    def _wait(task) -> None:
        while task.info.state not in ('success', 'error'):
            threading.Event().wait(0.1)
        if task.info.state == 'error':
            raise RuntimeError(f'vCenter task failed: {task.info.error.msg}')
