"""Importing this module registers every semantic message handler.

Messages not registered by one of these modules are served by the generic
implementations in :mod:`implicit` when the datamodel generates them, and
answer ``NOT_IMPLEMENTED`` otherwise.
"""

from nova_hypervisors.simulators.xapi import events  # noqa: F401
from nova_hypervisors.simulators.xapi import host  # noqa: F401
from nova_hypervisors.simulators.xapi import migration  # noqa: F401
from nova_hypervisors.simulators.xapi import network  # noqa: F401
from nova_hypervisors.simulators.xapi import pool  # noqa: F401
from nova_hypervisors.simulators.xapi import sessions  # noqa: F401
from nova_hypervisors.simulators.xapi import storage  # noqa: F401
from nova_hypervisors.simulators.xapi import tasks  # noqa: F401
from nova_hypervisors.simulators.xapi import vbd  # noqa: F401
from nova_hypervisors.simulators.xapi import vm  # noqa: F401
from nova_hypervisors.simulators.xapi import vm_copy  # noqa: F401
from nova_hypervisors.simulators.xapi import vm_power  # noqa: F401
