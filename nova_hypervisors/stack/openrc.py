"""The openrc an operator sources to drive the stack with ``openstack``."""

import os
import pathlib

from nova_hypervisors.stack import configs
from nova_hypervisors.stack import layout as stack_layout


def render(
    spec: stack_layout.Spec, secrets: dict[str, str], venv_bin: str
) -> str:
    return (
        '# Source this file to use the nova-hypervisors stack as admin:\n'
        f'#   . {"<state-dir>/openrc"}\n'
        "# The openstack CLI is installed in the stack's virtualenv.\n"
        f'export PATH="{venv_bin}:$PATH"\n'
        f'export OS_AUTH_URL={configs.service_urls(spec)["identity"]}\n'
        'export OS_IDENTITY_API_VERSION=3\n'
        'export OS_AUTH_TYPE=password\n'
        'export OS_USERNAME=admin\n'
        f"export OS_PASSWORD='{secrets['admin']}'\n"
        'export OS_PROJECT_NAME=admin\n'
        'export OS_USER_DOMAIN_NAME=Default\n'
        'export OS_PROJECT_DOMAIN_NAME=Default\n'
        f'export OS_REGION_NAME={stack_layout.REGION}\n'
        'export OS_INTERFACE=public\n'
    )


def write(
    layout: stack_layout.Layout,
    spec: stack_layout.Spec,
    secrets: dict[str, str],
) -> pathlib.Path:
    venv_bin = str(pathlib.Path(spec.venv) / 'bin')
    text = render(spec, secrets, venv_bin).replace(
        '<state-dir>/openrc', str(layout.openrc)
    )
    fd = os.open(layout.openrc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as stream:
        stream.write(text)
    return layout.openrc


def environment(layout: stack_layout.Layout) -> dict[str, str]:
    """The ``OS_*`` variables the openrc exports (for tests and tools)."""
    found = {}
    for line in layout.openrc.read_text().splitlines():
        if line.startswith('export OS_') and '=' in line:
            key, value = line[len('export ') :].split('=', 1)
            found[key] = value.strip('\'"')
    return found
