"""Simulators of the hypervisors our drivers manage, for tests and demos."""
