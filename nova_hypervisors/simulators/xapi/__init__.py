"""A wire-level simulated XenServer pool (see ``simulator.SimulatedPool``)."""

from nova_hypervisors.simulators.xapi.simulator import SimulatedPool

__all__ = ['SimulatedPool']
