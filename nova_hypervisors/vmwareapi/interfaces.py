"""Network cards added to and removed from a VM, and their NSX index.

As Nova's in-tree driver (``vmops.attach_interface`` and
``detach_interface``, ``vm_util.get_attach_port_index`` and
``get_vm_detach_port_index``), every port of a VM has an extraConfig
``nvp.iface-id.<n>`` holding its id, which NSX's agents read to bind the
card to the port: the cards made at spawn take 0, 1, ...; a card added
later takes the first index that is not allocated; a removed card's index
is set to ``free`` and is given out again.
"""

from __future__ import annotations

import logging
from typing import Any

from pyVmomi import vim

from nova_hypervisors.vmwareapi import hardware as vm_hardware
from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import network
from nova_hypervisors.vmwareapi import session as vc_session

LOG = logging.getLogger(__name__)

IFACE_ID = 'nvp.iface-id.%d'
IFACE_PREFIX = 'nvp.iface-id.'
FREE = 'free'


def spawn_options(network_info: list) -> list:
    """``nvp.iface-id.<n>`` of the cards a VM is created with."""
    return [
        vim.option.OptionValue(key=IFACE_ID % index, value=vif['id'])
        for index, vif in enumerate(network_info or [])
    ]


def allocated(extra_config: list) -> dict[int, str]:
    """Index -> port id of every ``nvp.iface-id.<n>`` in use."""
    found = {}
    for option in extra_config or []:
        key = option.key or ''
        if not key.startswith(IFACE_PREFIX):
            continue
        try:
            index = int(key[len(IFACE_PREFIX) :])
        except ValueError:
            continue
        if option.value and option.value != FREE:
            found[index] = option.value
    return found


def first_free(extra_config: list) -> int:
    used = allocated(extra_config)
    return next(index for index in range(len(used) + 1) if index not in used)


class Interfaces:
    """Hot-plug of ports into the cluster's VMs."""

    def __init__(self, session: vc_session.VCenterSession, node: Any) -> None:
        self._session = session
        self._node = node

    def _props(self, vm: Any) -> dict:
        return self._session.properties(
            [vm],
            vim.VirtualMachine,
            ['config.hardware.device', 'config.extraConfig'],
        )[vm]

    def _reconfigure(self, vm: Any, spec: Any) -> None:
        task = self._session.invoke(vm, 'ReconfigVM_Task', spec=spec)
        self._session.wait_for_task(task)

    def attach(self, instance: Any, image_meta: Any, vif: Any) -> None:
        """A card for the port on its network (vSphere hot-adds network
        cards to a running VM), with its ``nvp.iface-id`` index."""
        vm = lookup.get_vm(self._session, instance)
        props = self._props(vm)
        (card,) = network.nic_specs(
            self._session,
            self._node.cluster,
            [vif],
            vm_hardware.vif_model(image_meta),
            vm_hardware.vif_allocation(instance.flavor),
        )
        index = first_free(props.get('config.extraConfig'))
        LOG.info(
            'Adding a card for port %s (nvp.iface-id.%d) to %s',
            vif['id'],
            index,
            instance.uuid,
        )
        self._reconfigure(
            vm,
            vim.vm.ConfigSpec(
                deviceChange=[card],
                extraConfig=[
                    vim.option.OptionValue(
                        key=IFACE_ID % index, value=vif['id']
                    )
                ],
            ),
        )

    def detach(self, instance: Any, vif: Any) -> bool:
        """Remove the port's card (found by its MAC) and free its index;
        False when the VM has no such card."""
        vm = lookup.find_vm(self._session, instance.uuid)
        if vm is None:
            return False
        props = self._props(vm)
        mac = (vif.get('address') or '').lower()
        card = next(
            (
                device
                for device in props.get('config.hardware.device') or []
                if isinstance(device, vim.vm.device.VirtualEthernetCard)
                and (device.macAddress or '').lower() == mac
            ),
            None,
        )
        if card is None:
            return False
        options = [
            vim.option.OptionValue(key=IFACE_ID % index, value=FREE)
            for index, port in allocated(
                props.get('config.extraConfig')
            ).items()
            if port == vif['id']
        ]
        self._reconfigure(
            vm,
            vim.vm.ConfigSpec(
                deviceChange=[
                    vim.vm.device.VirtualDeviceSpec(
                        operation='remove', device=card
                    )
                ],
                extraConfig=options,
            ),
        )
        return True
