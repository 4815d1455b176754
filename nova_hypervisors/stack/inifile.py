"""Write INI files the way OpenStack's own samples look.

configparser cannot write comments; an operator opening a generated file
should see where it came from and why a value is what it is.
"""

import os
import pathlib

Sections = dict[str, dict[str, object]]


def render(sections: Sections, header: str = '') -> str:
    """INI text: ``[section]`` then ``key = value``, booleans lower-case."""
    lines = [f'# {line}'.rstrip() for line in header.splitlines()]
    if lines:
        lines.append('')
    for section, options in sections.items():
        lines.append(f'[{section}]')
        for key, value in options.items():
            if value is None:
                continue
            if key.startswith('#'):
                lines.append(f'# {value}')
                continue
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            elif isinstance(value, (list, tuple)):
                value = ','.join(str(item) for item in value)
            lines.append(f'{key} = {value}')
        lines.append('')
    return '\n'.join(lines)


def write(
    path: pathlib.Path, sections: Sections, header: str = '', mode: int = 0o600
) -> pathlib.Path:
    """Write the file with ``mode`` from the start (it holds passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'w') as stream:
        stream.write(render(sections, header))
    os.chmod(path, mode)
    return path
