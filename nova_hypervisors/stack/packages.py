"""The Debian programs the stack runs, and what to install when one lacks.

Checked before anything starts, so a missing package is one clear message
naming every package to install instead of a half-started stack.
"""

import pathlib
import shutil

from nova_hypervisors.stack import StackError

# program -> (Debian package, where Debian installs it)
PROGRAMS = {
    'mariadbd': ('mariadb-server', '/usr/sbin/mariadbd'),
    'mariadb-install-db': ('mariadb-server', '/usr/bin/mariadb-install-db'),
    'mariadb': ('mariadb-client', '/usr/bin/mariadb'),
    'epmd': ('erlang-base', '/usr/bin/epmd'),
    # The real start script, not the /usr/sbin wrapper that su's to the
    # rabbitmq user and writes to /var/log/rabbitmq.
    'rabbitmq-server': (
        'rabbitmq-server',
        '/usr/lib/rabbitmq/bin/rabbitmq-server',
    ),
    'rabbitmqctl': ('rabbitmq-server', '/usr/lib/rabbitmq/bin/rabbitmqctl'),
    # Each simulated XenServer host's switch (dom0's Open vSwitch).
    'ovsdb-tool': ('openvswitch-switch', '/usr/bin/ovsdb-tool'),
    'ovsdb-server': ('openvswitch-switch', '/usr/sbin/ovsdb-server'),
    'ovs-vswitchd': ('openvswitch-switch', '/usr/sbin/ovs-vswitchd'),
    'ovs-vsctl': ('openvswitch-switch', '/usr/bin/ovs-vsctl'),
}

INSTALL_HINT = (
    'install them with: apt-get install -y {packages}  (as root; with '
    "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d first, so the "
    'packages do not start system-wide servers)'
)


def find(program: str) -> str | None:
    """Absolute path of ``program`` (Debian's place first), or None."""
    package_path = PROGRAMS[program][1]
    if pathlib.Path(package_path).exists():
        return package_path
    return shutil.which(program)


def require(programs: list[str]) -> dict[str, str]:
    """Paths of ``programs``, or a StackError naming every missing package."""
    found, missing = {}, []
    for program in programs:
        path = find(program)
        if path:
            found[program] = path
        else:
            missing.append(program)
    if missing:
        packages = sorted({PROGRAMS[p][0] for p in missing})
        raise StackError(
            f'missing programs: {", ".join(missing)} (Debian packages '
            f'{", ".join(packages)}); '
            + INSTALL_HINT.format(packages=' '.join(packages))
        )
    return found
