"""VCDriver's cost against vcsim inventories of about 4, 400 and 3000 VMs.

Prints, per inventory: driver start-up (init_host), get_available_resource,
update_provider_tree, list_instances, the power-state sync (get_num_instances
plus get_info of every instance), spawn (first, which caches the image on the
datastore, then with the image cached) and destroy, as wall time, HTTP round
trips and bytes received (every request on the wire, SOAP and /folder alike:
requests counted at ``http.client.HTTPConnection.putrequest``, bytes at
``socket.SocketIO.readinto``, which every response is read through, TLS
included; the power-state watch's long-polls run in their own thread and are
not counted: they are one standing request, not work per operation).

A summary then divides each operation's round trips and bytes at the
largest inventory by those at the smallest: spawn and the periodic work
must stay at 1.0 (constant), while the power-state sync's wall time may
grow with the number of instances it is asked about.

With ``--in-tree``, Nova 34's own VMware driver (``nova.virt.vmwareapi``,
which needs ``pip install oslo.vmware``) does the same on the same vcsim in
the same run, and a last table gives in-tree's time over ours for each
operation.  oslo.vmware speaks SOAP through suds, which needs the vSphere
WSDL: vCenter serves it, vcsim does not, so ``simulators/vcsim/wsdl.py``
writes one from pyVmomi's type registry.  Two things are skipped for
in-tree: registering its vCenter extension (vcsim has
``ExtensionManager`` since our patch 0019) and Nova's RPC client, which its
constructor makes for rescue.  Every request of in-tree's is counted,
its task polls (another green thread) included.

    python benchmarks/vcsim_bench.py [--sizes 4,400,3000] [--in-tree]
"""

import nova.tests.functional  # noqa: F401,I001 - Nova's monkey patching first

import argparse
import contextlib
import http.client
import pathlib
import socket
import tempfile
import threading
import time
from unittest import mock
import uuid

from nova import context as nova_context
from nova import objects
from nova.compute import provider_tree
from nova.image import glance
from nova.tests.unit import fake_instance
from nova.virt import node as virt_node
from oslo_config import cfg

from nova_hypervisors.simulators import vcsim
from nova_hypervisors.vmwareapi import VCDriver

CONF = cfg.CONF
REQUESTS = [0]
RECEIVED = [0]
#: What Glance serves for the benchmark's image: 1 MiB of raw disk.
IMAGE_BYTES = b'\0' * (1024 * 1024)
PERIODIC = (
    'get_available_resource',
    'update_provider_tree',
    'list_instances',
    'power-state sync',
)
#: What must cost the same whatever the VM count, in requests and bytes.
CONSTANT = ('get_available_resource', 'update_provider_tree', 'spawn')


@contextlib.contextmanager
def measured(label: str, results: dict, every_thread: bool = False):
    """Time the block, and count its requests and bytes received: in this
    thread only, or in every thread."""
    original = http.client.HTTPConnection.putrequest
    original_read = socket.SocketIO.readinto
    caller = threading.get_ident()

    def counted() -> bool:
        return every_thread or threading.get_ident() == caller

    def counting(self, *args, **kwargs):
        if counted():
            REQUESTS[0] += 1
        return original(self, *args, **kwargs)

    def reading(self, buffer):
        count = original_read(self, buffer)
        if count and counted():
            RECEIVED[0] += count
        return count

    REQUESTS[0] = RECEIVED[0] = 0
    with (
        mock.patch.object(http.client.HTTPConnection, 'putrequest', counting),
        mock.patch.object(socket.SocketIO, 'readinto', reading),
    ):
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
    results[label] = (elapsed * 1000, REQUESTS[0], RECEIVED[0])


def fake_download(self, context, image_id, data=None, **kwargs):
    """Glance, as far as the image cache needs it: the bytes written to
    ``data``, or as chunks when there is none (GlanceImageServiceV2)."""
    if data is None:
        return iter([IMAGE_BYTES])
    data.write(IMAGE_BYTES)


def new_instance(ctx, node: str):
    instance = fake_instance.fake_instance_obj(
        ctx, uuid=str(uuid.uuid4()), display_name='bench', node=node
    )
    instance.config_drive = ''
    instance.system_metadata = {}
    return instance


def configure(sim) -> None:
    CONF.set_override('host_ip', sim.host, 'vmware')
    CONF.set_override('host_port', sim.port, 'vmware')
    CONF.set_override('host_username', sim.username, 'vmware')
    CONF.set_override('host_password', sim.password, 'vmware')
    CONF.set_override('ca_file', sim.ca_file, 'vmware')
    CONF.set_override('cluster_name', 'DC0_C0', 'vmware')
    # What nova-compute reads from its compute_id file.
    virt_node.LOCAL_NODE_UUID = str(uuid.uuid4())


def operations(driver, results: dict, in_tree: bool) -> None:
    """The periodic reports, listing, the power-state sync, two spawns and
    a destroy, measured into ``results``; every thread's requests are
    counted for in-tree, whose task polls run in a thread of their own."""
    every_thread = in_tree
    node = driver.get_available_nodes()[0]
    with measured('get_available_resource', results, every_thread):
        driver.get_available_resource(node)
    tree = provider_tree.ProviderTree()
    tree.new_root(node, 'c0ffee00-0000-0000-0000-000000000000')
    with measured('update_provider_tree', results, every_thread):
        driver.update_provider_tree(tree, node)
    with measured('list_instances', results, every_thread):
        uuids = driver.list_instance_uuids()
    ctx = nova_context.get_admin_context()
    instances = [
        fake_instance.fake_instance_obj(ctx, uuid=uuid) for uuid in uuids
    ]
    with measured('power-state sync', results, every_thread):
        driver.get_num_instances()
        for instance in instances:
            driver.get_info(instance)
    image_meta = objects.ImageMeta.from_dict(
        {
            'id': str(uuid.uuid4()),
            # In-tree takes only vmdk (or iso) images; the bytes are the
            # same raw extent either way.
            'disk_format': 'vmdk' if in_tree else 'raw',
            'container_format': 'bare',
            'size': len(IMAGE_BYTES),
            'properties': (
                {'vmware_disktype': 'preallocated'} if in_tree else {}
            ),
        }
    )
    with mock.patch.object(glance.API, 'download', fake_download):
        for label in ('spawn (first: caches image)', 'spawn'):
            instance = new_instance(ctx, node)
            with measured(label, results, every_thread):
                driver.spawn(ctx, instance, image_meta, [], None, {})
    with measured('destroy', results, every_thread):
        driver.destroy(ctx, instance, [])


def ours(sim) -> dict:
    results: dict = {}
    configure(sim)
    driver = VCDriver(mock.Mock())
    with measured('start-up (init_host)', results):
        driver.init_host('bench')
    # Steady state: the power-state watch has its first snapshot (it
    # comes within a second of start-up; before it, the reports read
    # the VMs themselves).
    for _ in range(600):
        if driver._states.known():
            break
        time.sleep(0.05)
    operations(driver, results, in_tree=False)
    driver.cleanup_host('bench')
    return results


def in_tree(sim, wsdl: pathlib.Path) -> dict:
    """The same with Nova's own driver (oslo.vmware, suds)."""
    from nova.virt.vmwareapi import driver as in_tree_driver
    from nova.virt.vmwareapi import session as in_tree_session
    from nova.virt.vmwareapi import vm_util
    from oslo_vmware import vim as oslo_vim

    results: dict = {}
    configure(sim)
    vim_init = oslo_vim.Vim.__init__

    def with_wsdl(self, *args, **kwargs):
        kwargs['wsdl_url'] = wsdl.as_uri()
        return vim_init(self, *args, **kwargs)

    driver_class = in_tree_driver.VMwareVCDriver
    # In-tree's session takes its settings as default arguments, read from
    # nova.conf when the module was first imported: this vcsim's, anew.
    group = CONF.vmware
    settings = (
        group.host_ip,
        group.host_port,
        group.host_username,
        group.host_password,
        group.api_retry_count,
        'https',
        group.ca_file,
        group.insecure,
        group.connection_pool_size,
    )
    session_init = in_tree_session.VMwareAPISession.__init__
    # Its caches of VM and folder references are per process: an earlier
    # vcsim's mean nothing here.
    vm_util.vm_refs_cache_reset()
    vm_util._FOLDER_PATH_REF_MAPPING.clear()
    with (
        mock.patch.object(session_init, '__defaults__', settings),
        mock.patch.object(oslo_vim.Vim, '__init__', with_wsdl),
        mock.patch.object(driver_class, '_register_openstack_extension'),
        mock.patch('nova.compute.api.API'),
    ):
        with measured('start-up (init_host)', results, every_thread=True):
            driver = driver_class(mock.Mock())
            driver.init_host('bench')
        operations(driver, results, in_tree=True)
        driver.cleanup_host('bench')
    return results


def table(title: str, results: dict) -> None:
    print(f'\n== {title} ==')
    print(
        f'{"operation":32} {"wall ms":>10} {"HTTP requests":>14} '
        f'{"bytes received":>15}'
    )
    for label, (ms, requests, received) in results.items():
        print(f'{label:32} {ms:10.1f} {requests:14d} {received:15d}')


def bench(total_vms: int, wsdl: pathlib.Path | None) -> dict:
    """Our results (and in-tree's, when ``wsdl`` is given) at one size."""
    objects.register_all()
    by_driver = {}
    with vcsim.start(
        clusters=1, hosts_per_cluster=4, vms=total_vms, use_tls=True
    ) as sim:
        by_driver['ours'] = ours(sim)
        if wsdl is not None:
            by_driver['in-tree'] = in_tree(sim, wsdl)
    for name, results in by_driver.items():
        table(f'{name}, vcsim with {total_vms} VMs', results)
    if 'in-tree' in by_driver:
        compare(total_vms, by_driver['ours'], by_driver['in-tree'])
    return by_driver['ours']


def compare(total_vms: int, ours: dict, theirs: dict) -> None:
    print(f'\n== in-tree / ours at {total_vms} VMs ==')
    print(
        f'{"operation":32} {"ours ms":>9} {"in-tree ms":>11} {"ratio":>7} '
        f'{"requests":>13} {"bytes":>19}'
    )
    for label, (ms, requests, received) in ours.items():
        t_ms, t_requests, t_received = theirs[label]
        print(
            f'{label:32} {ms:9.1f} {t_ms:11.1f} '
            f'{t_ms / max(ms, 0.001):7.1f} {requests:>5}/{t_requests:<7} '
            f'{received:>9}/{t_received:<9}'
        )


def summary(by_size: dict[int, dict]) -> None:
    sizes = sorted(by_size)
    small, large = sizes[0], sizes[-1]
    print(f'\n== {large} VMs vs {small} VMs ==')
    print(
        f'{"operation":32} {"requests":>11} {"ratio":>6} '
        f'{"bytes":>17} {"ratio":>6} {"wall ms":>9} {"ratio":>6}'
    )
    for label in by_size[small]:
        ms_s, req_s, bytes_s = by_size[small][label]
        ms_l, req_l, bytes_l = by_size[large][label]
        marker = ' (periodic)' if label in PERIODIC else ''
        print(
            f'{label:32} {req_s:>5}->{req_l:<5} {req_l / max(req_s, 1):6.2f} '
            f'{bytes_s:>8}->{bytes_l:<8} {bytes_l / max(bytes_s, 1):6.2f} '
            f'{ms_l:9.1f} {ms_l / max(ms_s, 0.001):6.2f}{marker}'
        )
    for label in CONSTANT:
        requests = {by_size[size][label][1] for size in sizes}
        received = [by_size[size][label][2] for size in sizes]
        print(
            f'{label}: requests constant: {len(requests) == 1}; bytes '
            f'{large}/{small} VMs: {received[-1] / max(received[0], 1):.2f}'
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--sizes', default='4,400,3000')
    parser.add_argument(
        '--in-tree',
        action='store_true',
        help="also run Nova's in-tree VMware driver (needs oslo.vmware)",
    )
    args = parser.parse_args()
    # As nova-compute does before a driver loads (in-tree's spawn reads
    # the release file through it).
    CONF([], project='nova', default_config_files=[])
    wsdl = None
    if args.in_tree:
        from nova_hypervisors.simulators.vcsim import wsdl as vim_wsdl

        wsdl = vim_wsdl.write(pathlib.Path(tempfile.mkdtemp()))
    by_size = {}
    started = time.perf_counter()
    for size in args.sizes.split(','):
        by_size[int(size)] = bench(int(size), wsdl)
    if len(by_size) > 1:
        summary(by_size)
    print(f'\ntotal {time.perf_counter() - started:.1f} s')


if __name__ == '__main__':
    main()
