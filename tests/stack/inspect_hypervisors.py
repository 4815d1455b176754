"""Look behind Nova's back: what the simulated hypervisors really hold.

Run with the stack's virtualenv Python (it has the XenAPI and pyVmomi
clients); prints one JSON document.  Used by test_stack_e2e.py, which itself
needs neither client::

    python inspect_hypervisors.py xen-pool <run/xapi-sim.connection.json>
    python inspect_hypervisors.py xen-vms <run/xapi-sim.connection.json>
    python inspect_hypervisors.py xen-volumes <run/xapi-sim.connection.json>
    python inspect_hypervisors.py xen-vifs <run/xapi-sim.connection.json>
    python inspect_hypervisors.py vcenter-vms <run/vcsim.connection.json>
"""

import json
import ssl
import sys

#: What the VCDriver (and Nova's in-tree driver) set as config.managedBy.
NOVA_EXTENSION_KEY = 'org.openstack.compute'


def _xen_login(host: dict, ca_file: str | None):
    import xmlrpc.client

    import XenAPI

    transport = None
    if ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        transport = xmlrpc.client.SafeTransport(context=context)
    session = XenAPI.Session(host['url'], transport=transport)
    session.xenapi.login_with_password(
        host['username'], host['password'], '1.0', 'stack-e2e'
    )
    return session


def xen_pool(facts: dict) -> dict:
    """Each host's view: its pool's master and members, or HOST_IS_SLAVE."""
    import XenAPI

    views = {}
    for host in facts['hosts']:
        try:
            session = _xen_login(host, facts.get('ca_file'))
        except XenAPI.Failure as failure:
            # A pool member refuses logins and names its master.
            views[host['name']] = {'slave_of': failure.details[1:2]}
            continue
        try:
            api = session.xenapi
            pool_ref = api.pool.get_all()[0]
            master_ref = api.pool.get_master(pool_ref)
            views[host['name']] = {
                'master': api.host.get_name_label(master_ref),
                'members': sorted(
                    api.host.get_name_label(ref) for ref in api.host.get_all()
                ),
            }
        finally:
            session.xenapi.session.logout()
    return views


def xen_vms(facts: dict) -> dict:
    """Guest VMs (not templates, snapshots or dom0) seen by each master."""
    import XenAPI

    found = {}
    for host in facts['hosts']:
        try:
            session = _xen_login(host, facts.get('ca_file'))
        except XenAPI.Failure:
            continue  # a pool member: its master answers for it
        try:
            records = session.xenapi.VM.get_all_records()
            found[host['name']] = sorted(
                record['name_label']
                for record in records.values()
                if not record['is_a_template']
                and not record['is_control_domain']
                and not record.get('is_a_snapshot')
            )
        finally:
            session.xenapi.session.logout()
    return found


def xen_volumes(facts: dict) -> dict:
    """Cinder volumes as the pool sees them: iscsi SRs (with the hosts
    whose PBD is plugged) and the VBDs carrying a Nova volume id."""
    import XenAPI

    for host in facts['hosts']:
        try:
            session = _xen_login(host, facts.get('ca_file'))
        except XenAPI.Failure:
            continue
        try:
            api = session.xenapi
            srs = {}
            for sr in api.SR.get_all_records().values():
                if sr['type'] != 'iscsi':
                    continue
                srs[sr['name_label']] = sorted(
                    api.host.get_name_label(api.PBD.get_host(pbd))
                    for pbd in sr['PBDs']
                    if api.PBD.get_currently_attached(pbd)
                )
            vbds = {}
            for vbd in api.VBD.get_all_records().values():
                volume = vbd['other_config'].get('nova_volume_id')
                if volume:
                    vbds[volume] = {
                        'vm': api.VM.get_name_label(vbd['VM']),
                        'userdevice': vbd['userdevice'],
                        'attached': vbd['currently_attached'],
                        'size': int(api.VDI.get_virtual_size(vbd['VDI'])),
                    }
            return {'srs': srs, 'vbds': vbds}
        finally:
            session.xenapi.session.logout()
    return {}


def xen_vifs(facts: dict) -> dict:
    """Every guest VIF of the pool: its VM, device, MAC, port id, whether
    plugged, and the host the VM runs on."""
    import XenAPI

    for host in facts['hosts']:
        try:
            session = _xen_login(host, facts.get('ca_file'))
        except XenAPI.Failure:
            continue
        try:
            api = session.xenapi
            vifs = []
            for vif in api.VIF.get_all_records().values():
                vm = api.VM.get_record(vif['VM'])
                if vm['is_control_domain']:
                    continue
                resident = vm['resident_on']
                vifs.append(
                    {
                        'vm': vm['name_label'],
                        'server': vm['other_config'].get('nova_uuid'),
                        'device': vif['device'],
                        'mac': vif['MAC'],
                        'port': vif['other_config'].get('neutron-port-id'),
                        'attached': vif['currently_attached'],
                        'host': api.host.get_name_label(resident)
                        if resident != 'OpaqueRef:NULL'
                        else None,
                    }
                )
            return {'vifs': vifs}
        finally:
            session.xenapi.session.logout()
    return {}


def vcenter_vms(facts: dict) -> dict:
    from pyVim import connect
    from pyVmomi import vim

    context = ssl.create_default_context(cafile=facts.get('ca_file'))
    if not facts.get('ca_file'):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    service = connect.SmartConnect(
        host=facts['host'],
        port=int(facts['port']),
        user=facts['username'],
        pwd=facts['password'],
        sslContext=context,
    )
    try:
        content = service.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        groups = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.dvs.DistributedVirtualPortgroup], True
        )
        portgroups = {group.key: group.name for group in groups.view}
        groups.Destroy()
        # Nova's VMs carry Nova's managedBy; the others (the cluster's
        # agent VMs) are not Nova's to create or delete.
        nova, others, disks, disk_kb, nics = [], [], {}, {}, {}
        for vm in view.view:
            owner = getattr(vm.config, 'managedBy', None)
            mine = getattr(owner, 'extensionKey', None) == NOVA_EXTENSION_KEY
            (nova if mine else others).append(vm.name)
            if mine:
                # Named "<display name> (<uuid>)": keyed by display name.
                disks[vm.name.rsplit(' (', 1)[0]] = [
                    device.backing.fileName
                    for device in vm.config.hardware.device
                    if isinstance(device, vim.vm.device.VirtualDisk)
                ]
                disk_kb[vm.name.rsplit(' (', 1)[0]] = {
                    device.backing.fileName: device.capacityInKB
                    for device in vm.config.hardware.device
                    if isinstance(device, vim.vm.device.VirtualDisk)
                }
                nics[vm.name.rsplit(' (', 1)[0]] = [
                    {
                        'mac': device.macAddress,
                        'portgroup': portgroups.get(
                            getattr(
                                getattr(device.backing, 'port', None),
                                'portgroupKey',
                                None,
                            )
                        ),
                    }
                    for device in vm.config.hardware.device
                    if isinstance(device, vim.vm.device.VirtualEthernetCard)
                ]
        view.Destroy()
        return {
            'vms': sorted(nova),
            'others': sorted(others),
            'disks': disks,
            'disk_kb': disk_kb,
            'nics': nics,
            'portgroups': sorted(portgroups.values()),
        }
    finally:
        connect.Disconnect(service)


def main() -> int:
    action, facts_file = sys.argv[1:3]
    with open(facts_file) as stream:
        facts = json.load(stream)
    handler = {
        'xen-pool': xen_pool,
        'xen-vms': xen_vms,
        'xen-volumes': xen_volumes,
        'xen-vifs': xen_vifs,
        'vcenter-vms': vcenter_vms,
    }[action]
    print(json.dumps(handler(facts)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
