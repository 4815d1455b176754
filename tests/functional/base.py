"""A reusable base for tests that drive our drivers through the Nova API.

Everything a user meets is real and in one process: nova-api (through
wsgi-intercept), the conductor, the scheduler, the compute manager and
placement.  Glance, Neutron and Cinder are Nova's own fixtures.  Compute
services load our drivers *by name*, the way nova.conf names them, so the
``nova.virt.nova_hypervisors`` shim is exercised on every boot.

Subclasses set ``compute_driver`` and start their compute services with
:meth:`NovaAPITestCase.start_compute`, passing that service's own
``[xenserver]`` or ``[vmware]`` settings: drivers read their settings when
they are constructed, so each service keeps the values it started with.
"""

import importlib.metadata
import pathlib

from nova.tests.functional import integrated_helpers

XENAPI_DRIVER = 'nova_hypervisors.xenapi.XenAPIDriver'
VMWARE_DRIVER = 'nova_hypervisors.vmwareapi.VCDriver'


def nova_api_paste_ini() -> str:
    """The api-paste.ini that the installed Nova wheel ships."""
    dist = importlib.metadata.distribution('nova')
    for entry in dist.files or ():
        if str(entry).endswith('etc/nova/api-paste.ini'):
            return str(pathlib.Path(dist.locate_file(entry)).resolve())
    raise RuntimeError('the installed nova ships no etc/nova/api-paste.ini')


class NovaAPITestCase(integrated_helpers._IntegratedTestBase):
    """Nova's API, conductor, scheduler and placement; computes on demand."""

    ADMIN_API = True
    microversion = 'latest'
    #: Name of the driver as an operator writes it in nova.conf.
    compute_driver: str = ''

    def setUp(self) -> None:
        if not self.compute_driver:
            raise TypeError(f'{type(self).__name__} sets no compute_driver')
        self.flags(compute_driver=self.compute_driver)
        super().setUp()

    def _setup_services(self) -> None:
        # ConfFixture points api_paste_config at a path that only exists in
        # a source tree of Nova; the wheel installs it under <prefix>/etc.
        self.flags(api_paste_config=nova_api_paste_ini(), group='wsgi')
        super()._setup_services()

    def _setup_compute_service(self) -> None:
        """Start no compute here: each test starts its own, configured."""
        return None

    def start_compute(self, host: str, **groups: dict):
        """Start nova-compute on ``host`` with per-service option groups.

        ``start_compute('xen1', xenserver={'connection_url': url})`` sets
        those options, starts the service (the driver reads them then) and
        returns it.
        """
        for group, values in groups.items():
            self.flags(group=group, **values)
        return self._start_compute(host)

    def boot_server(self, **kwargs) -> dict:
        """Boot through the REST API and wait for ACTIVE."""
        server = self._build_server(networks='none', **kwargs)
        created = self.api.post_server({'server': server})
        return self._wait_for_state_change(created, 'ACTIVE')
