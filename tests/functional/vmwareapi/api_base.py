"""The Nova API harness with two vcsim clusters as two compute nodes.

Two clusters of one vCenter are two nodes (two nova-compute services); every
server action goes through the API, the conductor, the scheduler, Placement
and the compute manager, and ends in real pyVmomi calls to vcsim.  A vSphere
client of the test's own looks behind the driver's back.
"""

import re
from typing import Any

import fixtures
from pyVmomi import vim

from nova_hypervisors.vmwareapi import session as vc_session
from tests.functional import base
from tests.functional.vmwareapi import vcsim_fixture

#: A log line of an error in a compute service or in the driver.
COMPUTE_ERROR = r' ERROR \[(nova\.compute|nova_hypervisors)'
#: Nova's GlanceFixture image 1: raw, with no bytes.
RAW_IMAGE = '155d900f-4e14-4e4c-a73d-069cbf4541e6'
#: Nova's default flavor m1.tiny (512 MB, 1 GB disk).  Named by id: the
#: API lists flavors by id, and one a test creates gets a random uuid,
#: which sorts before '1' one time in sixteen.
DEFAULT_FLAVOR = '1'


class VCenterAPITestCase(base.NovaAPITestCase):
    compute_driver = base.VMWARE_DRIVER
    #: More [vmware] options for both compute services.
    vmware_options: dict = {}
    #: Whether the test itself changes power states behind Nova's back;
    #: otherwise Nova "correcting" a power state means a stale event.
    external_power_changes = False
    #: Whether the test makes the compute service fail on purpose.
    compute_errors_expected = False
    #: More vcsim topology (datastores, dc_in_folder, ...).
    vcsim_options: dict = {}

    def setUp(self) -> None:
        super().setUp()
        self._glance_as_in_production()
        self.sim = vcsim_fixture.start(
            clusters=2, hosts_per_cluster=2, **self.vcsim_options
        )
        self.addCleanup(self.sim.stop)
        self.flags(allow_resize_to_same_host=False)
        self.compute1 = self._start_cluster('compute1', 'DC0_C0')
        self.compute2 = self._start_cluster('compute2', 'DC0_C1')
        self.admin = self._admin_session()
        self.addCleanup(self._assert_compute_log_clean)

    def _glance_as_in_production(self) -> None:
        """Nova's Glance fixture, on two points as Glance and Nova's image
        API really are, which the driver's streamed image upload relies on:

        * an image's ``size`` is the length of its data (Glance sets it
          from the data; the fixture makes up 74185822 for every image);
        * asked for the data without a file to write it to, the image API
          returns it as chunks (glance.GlanceImageServiceV2.download; the
          fixture returns nothing).
        """
        glance = self.glance
        show = glance.show
        download = glance.download

        def show_with_real_size(context, image_id, *args, **kwargs):
            image = show(context, image_id, *args, **kwargs)
            image['size'] = len(glance._imagedata.get(str(image_id), b''))
            return image

        def download_as_chunks(
            context, image_id, data=None, dst_path=None, trusted_certs=None
        ):
            if data is None and dst_path is None:
                show(context, image_id)
                return iter([glance._imagedata.get(str(image_id), b'')])
            return download(
                context,
                image_id,
                data=data,
                dst_path=dst_path,
                trusted_certs=trusted_certs,
            )

        self.useFixture(
            fixtures.MockPatchObject(glance, 'show', show_with_real_size)
        )
        self.useFixture(
            fixtures.MockPatchObject(glance, 'download', download_as_chunks)
        )

    def _start_cluster(self, host: str, cluster_name: str) -> Any:
        options = vcsim_fixture.vmware_flags(self.sim, cluster_name)
        options.update(self.vmware_options)
        return self.start_compute(host, vmware=options)

    def _assert_compute_log_clean(self) -> None:
        """No error from the compute services or the driver, and no power
        state that Nova had to correct, went unnoticed by the test."""
        problems = [
            line
            for line in self.stdlog.logger.output.splitlines()
            if (
                not self.compute_errors_expected
                and re.search(
                    r' ERROR \[(nova\.compute|nova_hypervisors)', line
                )
            )
            or (
                not self.external_power_changes
                and 'shutdown by itself' in line
            )
        ]
        self.assertEqual([], problems, 'compute log')

    def _admin_session(self) -> vc_session.VCenterSession:
        """A vSphere client of our own, to look behind the driver's back."""
        settings = vc_session.Settings(
            host=self.sim.host,
            port=self.sim.port,
            username=self.sim.username,
            password=self.sim.password,
            ca_file=self.sim.ca_file,
        )
        session = vc_session.VCenterSession(settings)
        session.connect()
        self.addCleanup(session.disconnect)
        return session

    def _vm(self, server: dict) -> Any:
        return self.admin.invoke(
            self.admin.content.searchIndex,
            'FindByUuid',
            datacenter=None,
            uuid=server['id'],
            vmSearch=True,
            instanceUuid=True,
        )

    def _vm_props(self, server: dict, *paths: str) -> dict:
        vm = self._vm(server)
        return self.admin.properties([vm], vim.VirtualMachine, list(paths))[vm]

    def _power_state(self, server: dict) -> str:
        return self._vm_props(server, 'runtime.powerState')[
            'runtime.powerState'
        ]

    def _root_disk(self, server: dict) -> Any:
        devices = self._vm_props(server, 'config.hardware.device')[
            'config.hardware.device'
        ]
        return next(
            d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)
        )

    def _cluster_of(self, server: dict) -> str:
        pool = self._vm_props(server, 'resourcePool')['resourcePool']
        owner = self.admin.properties([pool], vim.ResourcePool, ['owner'])[
            pool
        ]['owner']
        return self.admin.properties(
            [owner], vim.ClusterComputeResource, ['name']
        )[owner]['name']

    def _boot(
        self,
        flavor_id: str | None = None,
        image: str = RAW_IMAGE,
        config_drive: bool = False,
        **kwargs,
    ) -> dict:
        server = self._build_server(
            image_uuid=image,
            flavor_id=flavor_id or DEFAULT_FLAVOR,
            networks=kwargs.pop('networks', 'none'),
            **kwargs,
        )
        if config_drive:
            server['config_drive'] = True
        return self.api.post_server({'server': server})

    def _boot_active(self, **kwargs) -> dict:
        return self._wait_for_state_change(self._boot(**kwargs), 'ACTIVE')

    def _flavor(
        self, name: str, memory_mb: int, vcpus: int = 1, disk: int = 1
    ) -> str:
        flavor = {
            'flavor': {
                'name': name,
                'ram': memory_mb,
                'vcpus': vcpus,
                'disk': disk,
            }
        }
        return self.api.post_flavor(flavor)['id']

    def _snapshot(self, server: dict, name: str = 'snapshot') -> dict:
        """createImage through the API; the image once the upload ended."""
        image_id = self.api.post_server_action(
            server['id'], {'createImage': {'name': name}}
        )['image_id']
        self._wait_for_server_parameter(
            server, {'OS-EXT-STS:task_state': None}
        )
        return self.glance.show(None, image_id)
