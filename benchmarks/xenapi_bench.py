"""XenAPI calls and wall time of XenAPIDriver operations, by VM count.

For 10 and 1,000 Nova VMs on one host it prints, per operation, the number
of XenAPI calls the driver made (logins included, the event watcher's
``event.from`` excepted) and the wall time:

* ``spawn`` and ``destroy`` of one more instance;
* ``get_available_resource`` and ``update_provider_tree`` (every 60 s);
* ``list_instances`` (cleanup periodic task);
* the power-state sync (every 600 s): ``get_num_instances`` plus
  ``get_info`` on every instance, as Nova's ``_sync_power_states`` does.

Periodic work must cost a constant number of calls whatever the VM count.

Run: ``python benchmarks/xenapi_bench.py [--counts 10 1000]``.  The
XenServer simulator is used (real HTTP, real XenAPI client).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from unittest import mock
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nova.compute import provider_tree  # noqa: E402
from nova.tests.unit import fake_instance  # noqa: E402
import XenAPI  # noqa: E402

from nova import config as nova_config  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import objects  # noqa: E402
from nova_hypervisors import conf  # noqa: E402
from nova_hypervisors.simulators.xapi import SimulatedPool  # noqa: E402
from nova_hypervisors.xenapi import driver as xdriver  # noqa: E402

IMAGE = b'\x5a' * (1 << 20)


def _instance(ctx, flavor):
    instance = fake_instance.fake_instance_obj(
        ctx,
        flavor=flavor,
        config_drive='',
        uuid=str(uuid.uuid4()),
        image_ref='bench-image',
    )
    instance.metadata = {}
    instance.system_metadata = {}
    return instance


def _image_meta():
    return objects.ImageMeta.from_dict(
        {
            'id': 'bench-image',
            'disk_format': 'raw',
            'container_format': 'bare',
            'size': len(IMAGE),
            'properties': {},
        }
    )


def _download(context, image_id, data=None, **kwargs):
    data.write(IMAGE)


def _populate(sim, count: int, host_ref: str) -> list[str]:
    """``count`` halted Nova VMs on the host, made directly over XenAPI."""
    session = XenAPI.Session(sim.master.url)
    session.login_with_password(
        sim.hosts[0].username, sim.hosts[0].password, '1.0', 'bench'
    )
    uuids = []
    try:
        for i in range(count):
            instance_uuid = str(uuid.uuid4())
            session.xenapi.VM.create(
                {
                    'name_label': 'instance-bench-%05d' % i,
                    'affinity': host_ref,
                    'memory_static_max': str(256 << 20),
                    'memory_dynamic_max': str(256 << 20),
                    'memory_dynamic_min': str(256 << 20),
                    'memory_static_min': '0',
                    'VCPUs_max': '1',
                    'VCPUs_at_startup': '1',
                    'other_config': {'nova_uuid': instance_uuid},
                    'is_a_template': False,
                }
            )
            uuids.append(instance_uuid)
    finally:
        session.xenapi.session.logout()
    return uuids


def _measure(drv, label: str, fn, rows: list) -> object:
    session = drv._session
    before = session.call_count
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    rows.append((label, session.call_count - before, elapsed))
    return result


def run(count: int) -> list:
    conf.CONF([], project='nova', default_config_files=[])
    with tempfile.TemporaryDirectory() as state_dir:
        sim = SimulatedPool(
            hosts=1,
            state_dir=state_dir,
            pooled=False,
            port=0,
            host_memory_mib=65536,
        )
        sim.start()
        try:
            host = sim.hosts[0]
            conf.CONF.set_override('connection_url', host.url, 'xenserver')
            conf.CONF.set_override(
                'connection_password', host.password, 'xenserver'
            )
            conf.CONF.set_override(
                'connection_username', host.username, 'xenserver'
            )
            uuids = _populate(sim, count - 1, host.host_ref)
            drv = xdriver.XenAPIDriver(mock.Mock())
            drv.init_host('bench')
            drv._table.ready.wait(30)
            ctx = nova_context.get_admin_context()
            flavor = objects.Flavor(
                memory_mb=256,
                vcpus=1,
                root_gb=0,
                ephemeral_gb=0,
                swap=0,
                flavorid='b',
                name='bench',
                extra_specs={},
            )
            rows: list = []
            instance = _instance(ctx, flavor)
            with mock.patch(
                'nova_hypervisors.common.images.IMAGE_API.download', _download
            ):
                _measure(
                    drv,
                    'spawn',
                    lambda: drv.spawn(
                        ctx, instance, _image_meta(), [], None, {}, []
                    ),
                    rows,
                )
            node = drv.get_available_nodes()[0]
            _measure(
                drv,
                'get_available_resource',
                lambda: drv.get_available_resource(node),
                rows,
            )
            tree = provider_tree.ProviderTree()
            tree.new_root(node, drv._session.host_uuid)
            _measure(
                drv,
                'update_provider_tree',
                lambda: drv.update_provider_tree(tree, node),
                rows,
            )
            _measure(drv, 'list_instances', drv.list_instances, rows)
            instances = [instance] + [
                fake_instance.fake_instance_obj(ctx, uuid=u, name='instance-x')
                for u in uuids
            ]
            time.sleep(0.5)  # let the watcher see the spawn's events

            def sync():
                drv.get_num_instances()
                for inst in instances:
                    drv.get_info(inst)

            _measure(drv, 'power-state sync', sync, rows)
            _measure(
                drv, 'destroy', lambda: drv.destroy(ctx, instance, []), rows
            )
            drv.cleanup_host('bench')
            return rows
        finally:
            sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--counts', type=int, nargs='+', default=[10, 1000])
    args = parser.parse_args()
    nova_config.parse_args([], default_config_files=[])
    print('%-26s %8s %10s %12s' % ('operation', 'VMs', 'calls', 'seconds'))
    for count in args.counts:
        for label, calls, seconds in run(count):
            print('%-26s %8d %10d %12.3f' % (label, count, calls, seconds))


if __name__ == '__main__':
    sys.exit(main())

_ = io
