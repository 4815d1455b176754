"""A real OpenStack on one machine for our drivers: ``nova-hypervisors stack``.

MariaDB and RabbitMQ from Debian, keystone, glance, placement and nova-api
under gunicorn, nova-conductor, nova-scheduler, one nova-compute per
simulated hypervisor host, the simulators and the pool agent: every process a
child of this tooling, recorded by PID under one state directory and bound to
127.0.0.1.  See doc/source/stack.rst.

Nothing in this package imports OpenStack at module level: the tooling runs
from any Python 3.11, the services run from their own virtualenv
(:mod:`nova_hypervisors.stack.venv`).
"""


class StackError(Exception):
    """A condition the operator has to fix; the message says what and how."""
