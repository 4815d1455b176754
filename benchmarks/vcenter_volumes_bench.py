"""Requests and wall time of attaching and detaching Cinder vmdk volumes.

One VCDriver on vcsim (TLS, one cluster of 2 hosts), one running instance;
volumes are shadow VMs with one disk each, as Cinder's VMDK driver keeps
them.  For 1 and 20 volumes already attached it prints the requests, bytes
and time of ``attach_volume`` of one more and of its ``detach_volume``.

Run: ``python benchmarks/vcenter_volumes_bench.py`` (half a minute; needs
vcsim, see ``nova-hypervisors vcsim --help``).
"""

import nova.tests.functional  # noqa: F401,I001 - Nova's monkey patching first

import os
import sys
import time
from unittest import mock
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nova import context as nova_context  # noqa: E402
from nova import objects  # noqa: E402
from nova.image import glance  # noqa: E402
from pyVmomi import vim  # noqa: E402
import vcsim_bench  # noqa: E402

from nova_hypervisors.demo import vcenter_view  # noqa: E402
from nova_hypervisors.simulators import vcsim  # noqa: E402
from nova_hypervisors.vmwareapi import VCDriver  # noqa: E402


def shadow_vm(driver, index: int) -> dict:
    """A powered-off VM with one thin disk: a Cinder vmdk volume."""
    session, node = driver._session, driver._node
    folder = session.properties(
        [node.datacenter], vim.Datacenter, ['vmFolder']
    )[node.datacenter]['vmFolder']
    name = f'volume-{index}'
    spec, _ = vcenter_view.shadow_vm_spec(name)
    task = session.invoke(
        folder, 'CreateVM_Task', config=spec, pool=node.resource_pool
    )
    shadow = session.wait_for_task(task)
    return {
        'driver_volume_type': 'vmdk',
        'data': {'volume': shadow._moId, 'volume_id': name, 'name': name},
    }


def run(existing: int) -> dict:
    results: dict = {}
    with vcsim.start(clusters=1, hosts_per_cluster=2, use_tls=True) as sim:
        vcsim_bench.configure(sim)
        driver = VCDriver(mock.Mock())
        driver.init_host('bench')
        ctx = nova_context.get_admin_context()
        node = driver.get_available_nodes()[0]
        image_meta = objects.ImageMeta.from_dict(
            {
                'id': str(uuid.uuid4()),
                'disk_format': 'raw',
                'container_format': 'bare',
                'size': len(vcsim_bench.IMAGE_BYTES),
                'properties': {},
            }
        )
        instance = vcsim_bench.new_instance(ctx, node)
        with mock.patch.object(
            glance.API, 'download', vcsim_bench.fake_download
        ):
            driver.spawn(ctx, instance, image_meta, [], None, {})
        volumes = [shadow_vm(driver, i) for i in range(existing + 1)]
        for info in volumes[:existing]:
            driver.attach_volume(ctx, info, instance, None)
        with vcsim_bench.measured('attach one more', results):
            driver.attach_volume(ctx, volumes[-1], instance, None)
        with vcsim_bench.measured('detach it', results):
            driver.detach_volume(ctx, volumes[-1], instance, None)
        driver.cleanup_host('bench')
    return results


def main() -> None:
    objects.register_all()
    started = time.perf_counter()
    by_count = {count: run(count) for count in (1, 20)}
    print(
        f'{"":20} {"1 volume attached":>30} {"20 volumes attached":>30}\n'
        f'{"":20} {"requests":>9} {"bytes":>9} {"ms":>10} '
        f'{"requests":>9} {"bytes":>9} {"ms":>10}'
    )
    for label in by_count[1]:
        one, many = by_count[1][label], by_count[20][label]
        print(
            f'{label:20} {one[1]:9d} {one[2]:9d} {one[0]:10.1f} '
            f'{many[1]:9d} {many[2]:9d} {many[0]:10.1f}'
        )
    print(f'\ntotal {time.perf_counter() - started:.1f} s')


if __name__ == '__main__':
    main()
