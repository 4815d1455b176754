"""The story the demo tells, step by step, through Nova's REST API.

A XenServer pool is built from a Nova host aggregate exactly as an operator
would (``hypervisor_pool=true``, master first, then the others); instances
boot on it, one live-migrates, one is snapshotted and booted from the
snapshot; a vCenter cluster serves as one node and a flavor that only the
cluster's *total* could hold is refused by scheduling; everything is
deleted and both hypervisors are shown empty.  Hypervisor-side facts are
read from the simulators' own view, not from Nova's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import tempfile
import time

from nova_hypervisors.demo import cloud
from nova_hypervisors.demo import nova_confs
from nova_hypervisors.demo.report import Report
from nova_hypervisors.demo.report import StepFailed

IMAGE_ID = '8d4f3c2a-1b5e-4e6f-9a0b-1c2d3e4f5a6b'
POOL_NAME = 'xenpool1'
POOL_ZONE = 'xenpool'
VOLUME_ID = 'a7c3e9d1-5b2f-4c8a-9e6d-0f1a2b3c4d5e'
VCENTER_VOLUME_ID = 'b8d4f0e2-6c3a-4d9b-8f7e-1a2b3c4d5e6f'
VOLUME_IQN = 'iqn.2010-10.org.openstack:demo-volumes'
VOLUME_BYTES = b'a Cinder volume on the simulated iSCSI array\n' * 1024
# 1 MiB of recognisable bytes, so a snapshot can be checked byte for byte.
DISK_BYTES = b''.join(hashlib.sha256(b'%d' % i).digest() for i in range(32768))


@dataclasses.dataclass
class Options:
    xen_hosts: int = 3
    vcenter: bool = True
    esxi_hosts: int = 3
    esxi_memory_mb: int = 4096
    pool_instances: int = 2
    serve: bool = False
    timeout: float = 60.0


class DemoCloud(cloud.InProcessNova):
    """The in-process Nova the demo drives (a harness test case)."""

    def run_demo(self) -> None:
        """Unused: the demo calls setUp and the steps itself."""


class Story:
    """Holds the clouds and tells the story one step at a time."""

    def __init__(self, options: Options, report: Report) -> None:
        self.options = options
        self.report = report
        self.state_dir = tempfile.mkdtemp(prefix='nova-hypervisors-demo-')
        self.xen = None
        self.vcsim = None
        self.nova: DemoCloud | None = None
        self.servers: dict[str, dict] = {}
        self.vcenter_reason = ''
        self.array = None

    # -- wait helper --------------------------------------------------

    def wait_until(self, what: str, predicate, timeout=None):
        """Wait (bounded) for ``predicate()`` to return something truthy."""
        deadline = time.monotonic() + (timeout or self.options.timeout)
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StepFailed(f'timed out waiting for {what}')
            time.sleep(0.2)

    # -- the clouds -----------------------------------------------------

    def start_xenserver(self) -> str:
        from nova_hypervisors.simulators.xapi import SimulatedPool

        self.xen = SimulatedPool(
            hosts=self.options.xen_hosts,
            state_dir=self.state_dir,
            pooled=False,
            port=0,
            # Members of a pool share its credentials; so do their computes.
            password='demo-pool-secret',
        )
        self.xen.start()
        return '\n'.join(
            f'{h.name}: {h.url} (standalone master of its own pool)'
            for h in self.xen.hosts
        )

    def start_vcsim(self) -> str:
        from nova_hypervisors.simulators import vcsim

        self.vcsim = vcsim.start(
            clusters=1,
            hosts_per_cluster=self.options.esxi_hosts,
            host_memory_mb=self.options.esxi_memory_mb,
            use_tls=True,
        )
        return (
            f'vCenter at {self.vcsim.url}, cluster DC0_C0 of '
            f'{self.options.esxi_hosts} ESXi hosts with '
            f'{self.options.esxi_memory_mb} MB each (TLS, own CA)'
        )

    def start_nova(self) -> str:
        self.nova = DemoCloud('run_demo')
        self.nova.setUp()
        self.nova.flags(pool_reconcile_interval=1, group='xenserver')
        self.nova.glance.create(
            None,
            {
                'id': IMAGE_ID,
                'name': 'demo-raw-disk',
                'status': 'active',
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': len(DISK_BYTES),
                'properties': {},
            },
            data=io.BytesIO(DISK_BYTES),
        )
        return 'nova-api, nova-conductor, nova-scheduler and placement up'

    def start_computes(self) -> str:
        lines = []
        for number, host in enumerate(self.xen.hosts, start=1):
            text = nova_confs.xenapi(f'xen{number}', host)
            self.nova.start_compute_from_conf(f'xen{number}', text)
            lines += [f'--- nova.conf of xen{number}', nova_confs.shown(text)]
        if self.vcsim:
            text = nova_confs.vmware('vcenter1', self.vcsim, 'DC0_C0')
            self.nova.start_compute_from_conf('vcenter1', text)
            lines += ['--- nova.conf of vcenter1', nova_confs.shown(text)]
        return '\n'.join(lines)

    # -- the pool ---------------------------------------------------------

    def api(self):
        return self.nova.api

    def create_aggregate(self) -> str:
        aggregate = self.api().post_aggregate(
            {'aggregate': {'name': POOL_NAME, 'availability_zone': POOL_ZONE}}
        )
        self.aggregate_id = aggregate['id']
        self.api().post_aggregate_action(
            self.aggregate_id,
            {
                'set_metadata': {
                    'metadata': {
                        'hypervisor_pool': 'true',
                        'operational_state': 'created',
                    }
                }
            },
        )
        return f'aggregate {POOL_NAME} (zone {POOL_ZONE}) created'

    def aggregate(self) -> dict:
        return (
            self.api()
            .api_get(f'/os-aggregates/{self.aggregate_id}')
            .body['aggregate']
        )

    def add_host(self, compute: str) -> None:
        self.api().post_aggregate_action(
            self.aggregate_id, {'add_host': {'host': compute}}
        )

    def pool_members(self) -> list[str]:
        """The master's pool, as the XenServer simulator sees it."""
        hosts = self.xen_db().get_all_records('host')
        return sorted(rec['address'] for rec in hosts.values())

    def xen_db(self):
        """The simulator's database of the pool the first host is in."""
        return self.xen.db(self.xen.hosts[0])

    def add_master(self) -> str:
        self.add_host('xen1')
        metadata = self.wait_until(
            'xen1 to become the pool master',
            lambda: (
                (m := self.aggregate()['metadata']).get('master_compute')
                == 'xen1'
                and m
            ),
        )
        (pool,) = self.xen_db().get_all_records('pool').values()
        return (
            f'aggregate metadata: master_compute={metadata["master_compute"]}'
            f' operational_state={metadata["operational_state"]}\n'
            f'XenServer pool of {self.xen.hosts[0].address} is named '
            f'{pool["name_label"]!r}'
        )

    def add_others(self) -> str:
        computes = [f'xen{n}' for n in range(2, len(self.xen.hosts) + 1)]
        for compute in computes:
            self.add_host(compute)
        wanted = len(self.xen.hosts)
        self.wait_until(
            f'all {wanted} hosts in the pool',
            lambda: (
                len(self.pool_members()) == wanted
                and all(c in self.aggregate()['metadata'] for c in computes)
            ),
        )
        metadata = self.aggregate()['metadata']
        if metadata.get('operational_state') != 'active':
            raise StepFailed(f'aggregate state {metadata}')
        return (
            f'the master now lists {wanted} pool members: '
            f'{", ".join(self.pool_members())}\n'
            f'aggregate: operational_state={metadata["operational_state"]}'
        )

    # -- instances --------------------------------------------------------

    def boot(
        self,
        name: str,
        zone: str | None,
        flavor_id: str,
        expect='ACTIVE',
        host: str | None = None,
    ):
        """Boot through the API into a zone, or asking for one host (the
        scheduler still decides whether that host can take it)."""
        server = self.nova._build_server(
            name=name,
            image_uuid=IMAGE_ID,
            flavor_id=flavor_id,
            networks='none',
            az=zone,
            host=host,
        )
        created = self.api().post_server({'server': server})
        return self.nova._wait_for_state_change(created, expect)

    def boot_on_pool(self) -> str:
        self.small_flavor = self.nova._create_flavor(
            name='demo.small', memory_mb=512, vcpu=1, disk=1
        )
        lines = []
        for number in range(1, self.options.pool_instances + 1):
            server = self.boot(
                f'pool-vm{number}', POOL_ZONE, self.small_flavor
            )
            self.servers[server['name']] = server
            lines.append(
                f'{server["name"]}: ACTIVE on {server["OS-EXT-SRV-ATTR:host"]}'
            )
        return '\n'.join(lines)

    def live_migrate(self) -> str:
        server = self.servers['pool-vm1']
        source = server['OS-EXT-SRV-ATTR:host']
        target = next(
            f'xen{n}'
            for n in range(1, len(self.xen.hosts) + 1)
            if f'xen{n}' != source
        )
        self.api().post_server_action(
            server['id'],
            {'os-migrateLive': {'host': target, 'block_migration': 'auto'}},
        )
        moved = self.wait_until(
            f'{server["name"]} on {target}',
            lambda: (
                (s := self.api().get_server(server['id']))[
                    'OS-EXT-SRV-ATTR:host'
                ]
                == target
                and s['status'] == 'ACTIVE'
                and s
            ),
        )
        self.servers[server['name']] = moved
        resident = self.resident_host(server['id'])
        return (
            f'{server["name"]}: {source} -> {target} through the Nova API; '
            f'the simulator runs the VM on {resident}'
        )

    def resident_host(self, server_id: str) -> str:
        db = self.xen_db()
        hosts = db.get_all_records('host')
        for rec in db.get_all_records('VM').values():
            if rec['other_config'].get('nova_uuid') == server_id:
                return hosts.get(rec['resident_on'], {}).get('address', '?')
        raise StepFailed(f'no VM of server {server_id} on the pool')

    def snapshot_and_boot(self) -> str:
        server = self.servers['pool-vm2']
        image_id = self.api().post_server_action(
            server['id'], {'createImage': {'name': 'pool-vm2-snapshot'}}
        )['image_id']
        self.wait_until(
            'the snapshot uploaded to Glance',
            lambda: (
                image_id in self.nova.glance._imagedata
                and self.nova.glance.show(None, image_id).get('disk_format')
            ),
        )
        uploaded = len(self.nova.glance._imagedata[image_id])
        clone = self.nova._build_server(
            name='from-snapshot',
            image_uuid=image_id,
            flavor_id=self.small_flavor,
            networks='none',
            az=POOL_ZONE,
        )
        created = self.api().post_server({'server': clone})
        booted = self.nova._wait_for_state_change(created, 'ACTIVE')
        self.servers[booted['name']] = booted
        if self.root_disk_bytes(booted['id']) != DISK_BYTES:
            raise StepFailed('the disk booted from the snapshot differs')
        return (
            f'image {image_id}: {uploaded} bytes uploaded (vhd)\n'
            f'from-snapshot: ACTIVE on {booted["OS-EXT-SRV-ATTR:host"]}, '
            'its disk holds the very bytes pool-vm2 booted with'
        )

    def root_disk_bytes(self, server_id: str) -> bytes:
        """The first bytes of a server's root disk, from the simulator."""
        db = self.xen_db()
        (vm,) = [
            rec
            for rec in db.get_all_records('VM').values()
            if rec['other_config'].get('nova_uuid') == server_id
        ]
        vbds = db.get_all_records('VBD')
        (vdi_ref,) = [
            vbds[ref]['VDI'] for ref in vm['VBDs']
            if vbds[ref]['userdevice'] == '0'
        ]  # fmt: skip
        vdi = db.get_record('VDI', vdi_ref)
        sr_uuid = db.get_record('SR', vdi['SR'])['uuid']
        path = self.xen.topology.disks.path(sr_uuid, vdi['uuid'])
        with open(path, 'rb') as disk:
            return disk.read(len(DISK_BYTES))

    def volume_on_pool(self) -> str:
        """A Cinder iSCSI volume, hot-plugged into pool-vm2 and removed.

        Cinder is Nova's fixture, answering with the connection data of a
        simulated iSCSI array (a real TCP portal on loopback, with CHAP);
        the simulated host logs in to it when the driver plugs the SR.
        """
        from nova_hypervisors.simulators import iscsi_target

        self.array = iscsi_target.StorageArray(
            f'{self.state_dir}/iscsi-array'
        ).start()
        self.array.add_target(VOLUME_IQN, chap=('demo', 'demo-chap-secret'))
        self.array.create_lun(VOLUME_IQN, 1, 1 << 30)
        self.array.write(VOLUME_IQN, 1, VOLUME_BYTES)
        self.nova.cinder.VOLUME_CONNECTION_INFO = dict(
            self.nova.cinder.VOLUME_CONNECTION_INFO,
            **{
                VOLUME_ID: {
                    'driver_volume_type': 'iscsi',
                    'data': {
                        'target_portal': self.array.portal,
                        'target_iqn': VOLUME_IQN,
                        'target_lun': 1,
                        'auth_method': 'CHAP',
                        'auth_username': 'demo',
                        'auth_password': 'demo-chap-secret',
                    },
                }
            },
        )
        server = self.servers['pool-vm2']
        self.api().post_server_volume(
            server['id'], {'volumeAttachment': {'volumeId': VOLUME_ID}}
        )
        vbd = self.wait_until('the volume VBD', self._volume_vbd)
        if not vbd['currently_attached']:
            raise StepFailed('the volume VBD is not plugged')
        db = self.xen_db()
        vdi = db.get_record('VDI', vbd['VDI'])
        sr = db.get_record('SR', vdi['SR'])
        path = self.xen.topology.disks.path(sr['uuid'], vdi['uuid'])
        with open(path, 'rb') as disk:
            if disk.read(len(VOLUME_BYTES)) != VOLUME_BYTES:
                raise StepFailed("the VBD's disk is not the LUN's bytes")
        lines = [
            f'attached: VBD {vbd["userdevice"]} plugged into pool-vm2, '
            f'its VDI LUN {vdi["sm_config"]["LUNid"]} (SCSI id '
            f'{vdi["sm_config"]["SCSIid"]}) of SR "{sr["name_label"]}"'
        ]
        # Nova detaches through the driver only where CONF.host is the
        # instance's host; in this one process it is the compute started
        # last (each real nova-compute has its own).
        host = self.api().get_server(server['id'])['OS-EXT-SRV-ATTR:host']
        self.nova.flags(host=host)
        self.api().delete_server_volume(server['id'], VOLUME_ID)
        self.wait_until(
            'the volume SR to be forgotten',
            lambda: not self._volume_vbd() and not self._volume_srs(),
        )
        lines.append(
            'detached: no VBD, no iscsi SR or PBD left; the LUN keeps '
            'its bytes on the array'
        )
        return '\n'.join(lines)

    def _volume_vbd(self) -> dict | None:
        for vbd in self.xen_db().get_all_records('VBD').values():
            if vbd['other_config'].get('nova_volume_id') == VOLUME_ID:
                return vbd
        return None

    def _volume_srs(self) -> list:
        return [
            sr
            for sr in self.xen_db().get_all_records('SR').values()
            if sr['type'] == 'iscsi'
        ]

    def boot_on_vcenter(self) -> str:
        server = self.boot('vc-vm1', None, self.small_flavor, host='vcenter1')
        self.servers[server['name']] = server
        return (
            f'vc-vm1: ACTIVE on node '
            f'{server["OS-EXT-SRV-ATTR:hypervisor_hostname"]}'
        )

    def volume_on_vcenter(self) -> str:
        """A Cinder vmdk volume (a shadow VM's disk, as Cinder's VMDK
        driver keeps it) added to vc-vm1 while it runs, then removed."""
        from nova_hypervisors.demo import vcenter_view

        volume_id = VCENTER_VOLUME_ID
        moref, path = vcenter_view.shadow_volume(
            self.vcsim, f'volume-{volume_id}'
        )
        self.nova.cinder.VOLUME_CONNECTION_INFO = dict(
            self.nova.cinder.VOLUME_CONNECTION_INFO,
            **{
                volume_id: {
                    'driver_volume_type': 'vmdk',
                    'data': {'volume': moref, 'volume_id': volume_id},
                }
            },
        )
        server = self.servers['vc-vm1']
        self.api().post_server_volume(
            server['id'], {'volumeAttachment': {'volumeId': volume_id}}
        )
        self.wait_until(
            'the volume disk on the VM',
            lambda: path in vcenter_view.disk_files(self.vcsim, server['id']),
        )
        lines = [f'attached: {path} (shadow VM {moref}) is a disk of vc-vm1']
        self.nova.flags(host='vcenter1')
        self.api().delete_server_volume(server['id'], volume_id)
        self.wait_until(
            'the volume disk to leave the VM',
            lambda: (
                path not in vcenter_view.disk_files(self.vcsim, server['id'])
            ),
        )
        lines.append('detached: the disk file stays with its shadow VM')
        return '\n'.join(lines)

    def too_big_for_any_esxi_host(self) -> str:
        per_host = self.options.esxi_memory_mb
        total = per_host * self.options.esxi_hosts
        memory = per_host + per_host // 2
        flavor = self.nova._create_flavor(
            name='demo.too-big', memory_mb=memory, vcpu=1, disk=1
        )
        server = self.boot(
            'vc-too-big', None, flavor, expect='ERROR', host='vcenter1'
        )
        fault = server.get('fault', {}).get('message', '')
        self.servers[server['name']] = server
        if 'No valid host' not in fault:
            raise StepFailed(f'expected NoValidHost, got {fault!r}')
        return (
            f'{memory} MB flavor: the cluster has {total} MB in all, but no '
            f'ESXi host has more than {per_host} MB -> refused by the '
            f'scheduler: {fault}'
        )

    def delete_everything(self) -> str:
        for server in self.servers.values():
            self.api().delete_server(server['id'])
        for server in self.servers.values():
            self.nova._wait_until_deleted(server)
        return f'{len(self.servers)} servers deleted'

    def nothing_left(self) -> str:
        db = self.xen_db()
        guests = [
            rec['name_label']
            for rec in db.get_all_records('VM').values()
            if not rec['is_control_domain']
            and not rec['is_a_template']
            and not rec['is_a_snapshot']
        ]
        vifs = db.get_all_records('VIF')
        vdis = db.get_all_records('VDI').values()
        disks = [
            v for v in vdis if v['other_config'].get('nova_instance_uuid')
        ]
        if guests or vifs or disks:
            raise StepFailed(
                f'left on XenServer: VMs {guests}, {len(vifs)} VIFs, '
                f'{len(disks)} instance disks'
            )
        lines = ['XenServer pool: no guest VM, no instance disk, no VIF']
        if self.vcsim:
            from nova_hypervisors.demo import vcenter_view

            vms = vcenter_view.instance_vms(self.vcsim)
            if vms:
                raise StepFailed(f'left in vCenter: {vms}')
            lines.append('vCenter: no instance VM')
        return '\n'.join(lines)

    def service_errors(self, lines: int = 12) -> str:
        """The last error lines the in-process services logged."""
        if self.nova is None or not hasattr(self.nova, 'stdlog'):
            return ''
        output = self.nova.stdlog.logger.output.splitlines()
        errors = [line for line in output if ' ERROR ' in line]
        return '\n'.join(errors[-lines:] or output[-lines:])

    # -- teardown ---------------------------------------------------------

    def stop(self) -> None:
        if self.nova is not None:
            # Nova reports each of its thread pools shutting down; the
            # story is over, so spare the terminal those lines.
            logging.getLogger('nova.thread_pool_factory').setLevel(
                logging.WARNING
            )
            self.nova.doCleanups()
        for running in (self.vcsim, self.xen, self.array):
            if running is not None:
                running.stop()
