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
XenServer simulator is used (real HTTP, real XenAPI client).  Like
nova-compute, it runs under eventlet unless
``OS_NOVA_DISABLE_EVENTLET_PATCHING=1`` asks for native threads.
"""

# Monkey patching (or not) must come before any other import.
from nova import monkey_patch  # noqa: I001

monkey_patch.patch()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from unittest import mock  # noqa: E402
import uuid  # noqa: E402
import xmlrpc.client  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nova import config as nova_config  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import objects  # noqa: E402
from nova.compute import provider_tree  # noqa: E402
from nova.tests.unit import fake_instance  # noqa: E402
import XenAPI  # noqa: E402

from nova_hypervisors import conf  # noqa: E402
from nova_hypervisors.simulators.xapi import SimulatedPool  # noqa: E402
from nova_hypervisors.xenapi import driver as xdriver  # noqa: E402
from nova_hypervisors.xenapi import vm_utils  # noqa: E402

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


def _flavor():
    return objects.Flavor(
        memory_mb=256,
        vcpus=1,
        root_gb=0,
        ephemeral_gb=0,
        swap=0,
        flavorid='b',
        name='bench',
        extra_specs={},
    )


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


def _populate(sim, instances, host_ref: str) -> None:
    """Halted Nova VMs for ``instances``, made directly over XenAPI."""
    session = XenAPI.Session(
        sim.master.url,
        transport=xmlrpc.client.SafeTransport(context=sim.client_context()),
    )
    session.login_with_password(
        sim.hosts[0].username, sim.hosts[0].password, '1.0', 'bench'
    )
    try:
        for instance in instances:
            session.xenapi.VM.create(
                vm_utils.vm_record(instance, _image_meta(), host_ref)
            )
    finally:
        session.xenapi.session.logout()


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
            conf.CONF.set_override('ca_file', sim.ca_file, 'xenserver')
            conf.CONF.set_override(
                'connection_password', host.password, 'xenserver'
            )
            conf.CONF.set_override(
                'connection_username', host.username, 'xenserver'
            )
            ctx = nova_context.get_admin_context()
            others = [_instance(ctx, _flavor()) for _ in range(count - 1)]
            _populate(sim, others, host.host_ref)
            drv = xdriver.XenAPIDriver(mock.Mock())
            # The pool reconciler (another issue) runs beside the driver
            # on its own interval; keep its calls out of these figures.
            with (
                mock.patch(
                    'nova_hypervisors.xenapi.pool.service.PoolService.start'
                ),
                mock.patch('nova.virt.node.write_local_node_uuid'),
            ):
                drv.init_host('bench')
            drv._table.ready.wait(30)
            rows: list = []
            instance = _instance(ctx, _flavor())
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
            instances = [instance] + others
            time.sleep(0.5)  # let the watcher see the spawn's events

            def sync():
                drv.get_num_instances()
                for inst in instances:
                    drv.get_info(inst)

            _measure(drv, 'power-state sync', sync, rows)
            _measure(
                drv, 'destroy', lambda: drv.destroy(ctx, instance, []), rows
            )
            with mock.patch(
                'nova_hypervisors.xenapi.pool.service.PoolService.stop'
            ):
                drv.cleanup_host('bench')
            return rows
        finally:
            sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--counts', type=int, nargs='+', default=[10, 1000])
    args = parser.parse_args()
    nova_config.parse_args([], default_config_files=[])
    objects.register_all()
    print('%-26s %8s %10s %12s' % ('operation', 'VMs', 'calls', 'seconds'))
    for count in args.counts:
        for label, calls, seconds in run(count):
            print('%-26s %8d %10d %12.3f' % (label, count, calls, seconds))


if __name__ == '__main__':
    sys.exit(main())
