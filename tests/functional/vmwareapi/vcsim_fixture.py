"""Starting vcsim for tests: skipped locally without Go, failing in CI."""

import os

import pytest

from nova_hypervisors.simulators import vcsim


def require_vcsim() -> None:
    """Skip when vcsim cannot be built here, unless CI says it must."""
    if vcsim.available():
        return
    message = f'vcsim unavailable: {vcsim.INSTALL_HINT}'
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
        pytest.fail(message)
    pytest.skip(message)


def start(**kwargs) -> vcsim.Vcsim:
    require_vcsim()
    kwargs.setdefault('use_tls', True)
    return vcsim.start(**kwargs)


def vmware_flags(sim: vcsim.Vcsim, cluster_name: str = 'DC0_C0') -> dict:
    """The [vmware] section an operator would write for this vcsim."""
    return {
        'host_ip': sim.host,
        'host_port': sim.port,
        'host_username': sim.username,
        'host_password': sim.password,
        'ca_file': sim.ca_file,
        'insecure': False,
        'cluster_name': cluster_name,
    }
