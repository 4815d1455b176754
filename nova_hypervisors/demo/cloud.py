"""Nova 34 in one process: API, conductor, scheduler, placement, computes.

This is Nova's own functional-test harness (``_IntegratedTestBase``), which
the Nova wheel ships: the REST API (through wsgi-intercept), conductor,
scheduler, compute manager and placement are all real; Glance, Neutron and
Cinder are Nova's fixtures.  The demo drives it outside any test runner and
the functional tests (``tests/functional/base.py``) inside pytest.

Compute services are started one by one, each from a nova.conf text as an
operator would write it, so every service loads its driver *by name*
through the ``nova.virt.nova_hypervisors`` shim with its own settings.
"""

import nova.tests.functional  # noqa: F401,I001 - eventlet patching first

import configparser
import importlib.metadata
import pathlib

import fixtures
from nova.tests.functional import integrated_helpers
import nova.virt.node

from nova_hypervisors import conf  # noqa: F401 - registers our options

# pyVmomi reads os.uname() when imported, which Nova's harness forbids once
# a test has set up: import the drivers now, before any service starts.
import nova_hypervisors.vmwareapi  # noqa: F401,E402
import nova_hypervisors.xenapi  # noqa: F401,E402

XENAPI_DRIVER = 'nova_hypervisors.xenapi.XenAPIDriver'
VMWARE_DRIVER = 'nova_hypervisors.vmwareapi.VCDriver'


def nova_api_paste_ini() -> str:
    """The api-paste.ini that the installed Nova wheel ships."""
    dist = importlib.metadata.distribution('nova')
    for entry in dist.files or ():
        if str(entry).endswith('etc/nova/api-paste.ini'):
            return str(pathlib.Path(dist.locate_file(entry)).resolve())
    raise RuntimeError('the installed nova ships no etc/nova/api-paste.ini')


def parse_nova_conf(text: str) -> dict[str, dict[str, str]]:
    """``{group: {option: value}}`` of a nova.conf text (DEFAULT too)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    groups = {'DEFAULT': dict(parser.defaults())}
    for section in parser.sections():
        groups[section] = {
            key: value
            for key, value in parser.items(section)
            if key not in parser.defaults()
        }
    return groups


class InProcessNova(integrated_helpers._IntegratedTestBase):
    """Nova's control plane; compute services started on demand."""

    ADMIN_API = True
    microversion = 'latest'
    #: The driver compute services get unless their nova.conf names one.
    compute_driver: str = XENAPI_DRIVER

    def setUp(self) -> None:
        self.flags(compute_driver=self.compute_driver)
        super().setUp()
        self._keep_uploaded_image_bytes()

    def _keep_uploaded_image_bytes(self) -> None:
        """Nova's Glance fixture drops the data of an image update; keep
        it, so a snapshot's bytes can be compared and booted again."""
        glance = self.glance
        update = glance.update

        def update_keeping_data(
            context, image_id, metadata, data=None, purge_props=False
        ):
            image = update(
                context, image_id, metadata, purge_props=purge_props
            )
            if data is not None:
                payload = (
                    data.read() if hasattr(data, 'read') else b''.join(data)
                )
                glance._imagedata[image_id] = payload
                image['size'] = len(payload)
                image['status'] = 'active'
            return image

        self.useFixture(
            fixtures.MockPatchObject(glance, 'update', update_keeping_data)
        )

    def _setup_services(self) -> None:
        # ConfFixture points api_paste_config at a path that only exists in
        # a source tree of Nova; the wheel installs it under <prefix>/etc.
        self.flags(api_paste_config=nova_api_paste_ini(), group='wsgi')
        super()._setup_services()

    def _setup_compute_service(self) -> None:
        """Start no compute here: each is started with its own config."""
        return None

    def start_compute(self, host: str, **groups: dict):
        """Start nova-compute on ``host`` with per-service option groups.

        ``start_compute('xen1', xenserver={'connection_url': url})`` sets
        those options (``DEFAULT={'compute_driver': ...}`` included),
        starts the service -- its driver reads them then -- and returns it.
        """
        for group, values in groups.items():
            self.flags(group=None if group == 'DEFAULT' else group, **values)
        # Each service of this process is its own node: forget the local
        # node uuid Nova caches for drivers that use it (the VMware one).
        nova.virt.node.LOCAL_NODE_UUID = None
        return self._start_compute(host)

    def start_compute_from_conf(self, host: str, nova_conf: str):
        """Start nova-compute configured by a nova.conf text."""
        groups = parse_nova_conf(nova_conf)
        groups.setdefault('DEFAULT', {}).pop('host', None)
        return self.start_compute(host, **groups)
