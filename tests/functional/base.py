"""A reusable base for tests that drive our drivers through the Nova API.

Everything a user meets is real and in one process: nova-api (through
wsgi-intercept), the conductor, the scheduler, the compute manager and
placement; Glance, Neutron and Cinder are Nova's own fixtures.  Compute
services load our drivers *by name*, the way nova.conf names them, so the
``nova.virt.nova_hypervisors`` shim is exercised on every boot.

Subclasses set ``compute_driver`` and start their compute services with
``start_compute(host, xenserver={...})`` or ``vmware={...}``: drivers read
their settings when they are constructed, so each service keeps the values
it started with.  The same harness runs the demo
(:mod:`nova_hypervisors.demo.cloud`).
"""

import time

from nova.tests.functional.api import client as api_client
from nova.volume import cinder as nova_cinder

from nova_hypervisors.demo import cloud

XENAPI_DRIVER = cloud.XENAPI_DRIVER
VMWARE_DRIVER = cloud.VMWARE_DRIVER
nova_api_paste_ini = cloud.nova_api_paste_ini


class NovaAPITestCase(cloud.InProcessNova):
    """Nova's API, conductor, scheduler and placement; computes on demand."""

    #: Name of the driver as an operator writes it in nova.conf.
    compute_driver: str = ''

    def setUp(self) -> None:
        if not self.compute_driver:
            raise TypeError(f'{type(self).__name__} sets no compute_driver')
        super().setUp()

    #: How many times Nova's wait helpers ask the API, 0.5 s apart, before
    #: they give up.  Nova's default, 10, is 5 s; CI runs two test
    #: processes on two cores, where a resize on vcsim can take longer.
    #: A wait that succeeds returns as soon as the state is reached.
    wait_polls = 60

    def _wait_for_server_parameter(
        self, server, expected_params, max_retries=10, **kwargs
    ):
        return super()._wait_for_server_parameter(
            server,
            expected_params,
            max_retries=max(max_retries, self.wait_polls),
            **kwargs,
        )

    def boot_server(self, **kwargs) -> dict:
        """Boot through the REST API and wait for ACTIVE."""
        server = self._build_server(networks='none', **kwargs)
        created = self.api.post_server({'server': server})
        return self._wait_for_state_change(created, 'ACTIVE')

    def compute_service(self, host: str) -> dict:
        """The os-services record of the nova-compute on ``host``."""
        (service,) = self.admin_api.get_services(
            binary='nova-compute', host=host
        )
        return service

    def wait_for_service(
        self, host: str, status: str, timeout: float = 30
    ) -> dict:
        """Wait until the compute on ``host`` is 'enabled' or 'disabled'."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            service = self.compute_service(host)
            if service['status'] == status:
                return service
            time.sleep(0.2)
        self.fail(f'{host} did not become {status}')

    def volume_extended(
        self, server: dict, volume_id: str, size_gb: int, result='Success'
    ) -> None:
        """Cinder grew ``volume_id`` to ``size_gb`` and tells Nova so (the
        ``volume-extended`` event Cinder's extend of an attached volume
        sends); waits for the compute's ``extend_volume`` to end with
        ``result``."""
        original = self.cinder.fake_get

        def get(context, wanted, microversion=None):
            volume = original(context, wanted, microversion)
            if wanted == volume_id:
                volume['size'] = size_gb
            return volume

        # The fixture's patch of API.get, restored by it at cleanup.
        nova_cinder.API.get.side_effect = get
        event = {
            'name': 'volume-extended',
            'server_uuid': server['id'],
            'tag': volume_id,
        }
        try:
            self.api.api_post(
                '/os-server-external-events', {'events': [event]}
            )
        except api_client.OpenStackApiException:
            # The harness runs RPC casts as calls: a compute's failure
            # reaches the API, which a real cloud's caller never sees.
            if result == 'Success':
                raise
        self._wait_for_instance_action_event(
            server, 'extend_volume', 'compute_extend_volume', result
        )
