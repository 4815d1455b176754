"""vcsim, VMware's vCenter simulator, built and started for our tests.

``start()`` returns a running :class:`Vcsim`; ``build()`` only builds it.
Drivers never import this package: it is test and demo tooling.
"""

from nova_hypervisors.simulators.vcsim.builder import INSTALL_HINT
from nova_hypervisors.simulators.vcsim.builder import VcsimUnavailable
from nova_hypervisors.simulators.vcsim.builder import available
from nova_hypervisors.simulators.vcsim.builder import build
from nova_hypervisors.simulators.vcsim.launcher import Vcsim
from nova_hypervisors.simulators.vcsim.launcher import start

__all__ = [
    'INSTALL_HINT',
    'Vcsim',
    'VcsimUnavailable',
    'available',
    'build',
    'start',
]
