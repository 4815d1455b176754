"""The virtualenv the OpenStack services run from.

Keystone, glance, placement, nova, the ``openstack`` CLI, gunicorn and
PyMySQL are installed from PyPI into one virtualenv, together with this
project, so that nova-compute loads ``nova_hypervisors.xenapi.XenAPIDriver``
by name exactly as on an operator's machine.

Where it is: ``--venv DIR``, else ``$NOVA_HYPERVISORS_STACK_VENV``, else
``$XDG_CACHE_HOME/nova-hypervisors/stack-venv`` (``~/.cache/...``).  It is a
cache, not state: it holds nothing that cannot be installed again, so it
lives outside the state directory and several stacks (and test runs) share
it.  A stamp file records what was installed; the expensive step
(requirements, ~1.5 min from an empty pip cache) reruns only when the
requirement list changes, and the project (a few seconds) only when its
sources change.

The project goes in as a wheel built from the checkout, as operators
install it, so the ``nova/virt/nova_hypervisors`` shim really sits inside
the installed Nova.  pbr builds that wheel from the files git knows, so a
data file not yet added to git is missing from it; ``editable`` mode (an
editable install plus a copy of the shim into Nova) serves a developer
whose work is not committed yet.
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

from nova_hypervisors.stack import StackError

# One release series, as found to work together (shared/STACK.md);
# SQLAlchemy is capped as OpenStack's upper constraints cap it.
REQUIREMENTS = (
    'nova>=34.0.0,<35',
    'keystone>=30.0.0,<31',
    'glance>=33.0.0,<34',
    'openstack-placement>=16.0.0,<17',
    'cinder>=29.0.0,<30',
    'neutron>=29.0.0,<30',
    'python-openstackclient>=10.5.0',
    # "openstack resource provider ...": what placement was told.
    'osc-placement>=4.0.0',
    'gunicorn>=23',
    'PyMySQL>=1.1',
    'SQLAlchemy<2.1',
    # To build this project's wheel without build isolation.
    'setuptools>=70.1',
    'wheel',
)
STAMP = 'nova-hypervisors-stack.json'
MODES = ('wheel', 'editable')
# What decides whether the project must be installed again.
_PROJECT_FILES = (
    'setup.cfg',
    'setup.py',
    'pyproject.toml',
    'requirements.txt',
)
_PROJECT_TREES = ('nova_hypervisors', 'nova')
_SKIP_SUFFIXES = ('.pyc', '.pyo')


def default_path() -> pathlib.Path:
    explicit = os.environ.get('NOVA_HYPERVISORS_STACK_VENV')
    if explicit:
        return pathlib.Path(explicit)
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache')
    return pathlib.Path(cache) / 'nova-hypervisors' / 'stack-venv'


def find_checkout(explicit: str | None = None) -> pathlib.Path | None:
    """The source tree to install: explicit, else the one we run from."""
    if explicit:
        path = pathlib.Path(explicit).absolute()
        if not (path / 'setup.cfg').exists():
            raise StackError(f'{path} is not a nova-hypervisors checkout')
        return path
    here = pathlib.Path(__file__).resolve().parents[2]
    if (here / 'setup.cfg').exists() and (here / 'nova_hypervisors').is_dir():
        return here
    return None


def project_requirements(checkout: pathlib.Path) -> list[str]:
    lines = (checkout / 'requirements.txt').read_text().splitlines()
    return [
        line.split('#')[0].strip()
        for line in lines
        if line.split('#')[0].strip()
    ]


def source_hash(checkout: pathlib.Path) -> str:
    """A digest of everything that ends up in the project's wheel."""
    digest = hashlib.sha256()
    paths = [checkout / name for name in _PROJECT_FILES]
    for tree in _PROJECT_TREES:
        for root, dirs, files in os.walk(checkout / tree):
            dirs[:] = sorted(d for d in dirs if d != '__pycache__')
            paths += [
                pathlib.Path(root) / name
                for name in sorted(files)
                if not name.endswith(_SKIP_SUFFIXES)
            ]
    for path in paths:
        if path.is_file():
            digest.update(str(path.relative_to(checkout)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class Venv:
    """One services virtualenv and its stamp."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path.absolute()
        self.bin = self.path / 'bin'
        self.python = self.bin / 'python'
        self.log = self.path / 'stack-install.log'

    def script(self, name: str) -> str:
        return str(self.bin / name)

    def stamp(self) -> dict:
        try:
            return json.loads((self.path / STAMP).read_text())
        except (OSError, ValueError):
            return {}

    def _write_stamp(self, stamp: dict) -> None:
        (self.path / STAMP).write_text(json.dumps(stamp, indent=2) + '\n')

    def exists(self) -> bool:
        return self.python.exists() and bool(self.stamp().get('requirements'))

    def site_packages(self) -> pathlib.Path:
        found = sorted(self.path.glob('lib/python3*/site-packages'))
        if not found:
            raise StackError(f'{self.path} has no site-packages')
        return found[-1]

    def versions(self) -> dict[str, str]:
        """Installed versions of the OpenStack pieces (for status)."""
        return self.stamp().get('versions', {})

    def ensure(
        self,
        checkout: pathlib.Path | None,
        mode: str = 'wheel',
        report=print,
    ) -> bool:
        """Create or update the virtualenv; True if anything was installed."""
        if mode not in MODES:
            raise StackError(f'install mode must be one of {MODES}')
        stamp = self.stamp()
        if checkout is None and stamp.get('project'):
            # Run from the copy installed here: its source is recorded.
            recorded = pathlib.Path(stamp['project'])
            if (recorded / 'setup.cfg').exists():
                checkout = recorded
        if checkout is None:
            if not self.exists():
                raise StackError(
                    'this nova-hypervisors is not a source checkout; pass '
                    '--project DIR (a checkout) to install it into '
                    f'{self.path}'
                )
            return False
        requirements = list(REQUIREMENTS) + project_requirements(checkout)
        wanted = hashlib.sha256('\n'.join(requirements).encode()).hexdigest()
        changed = False
        if not self.python.exists() or stamp.get('requirements') != wanted:
            started = time.monotonic()
            report(
                f'installing the OpenStack services into {self.path} '
                '(pip; about 1.5 min)'
            )
            if not self.python.exists():
                self._run([sys.executable, '-m', 'venv', str(self.path)])
            self._pip('install', '--upgrade', 'pip')
            self._pip('install', *requirements)
            stamp = {
                'requirements': wanted,
                'versions': self._read_versions(),
                'requirements_seconds': round(time.monotonic() - started, 1),
            }
            self._write_stamp(stamp)
            changed = True
        project_hash = source_hash(checkout)
        if (
            stamp.get('project_hash') != project_hash
            or stamp.get('mode') != mode
            or stamp.get('project') != str(checkout)
        ):
            started = time.monotonic()
            report(f'installing nova-hypervisors from {checkout} ({mode})')
            self._install_project(checkout, mode)
            stamp.update(
                project=str(checkout),
                project_hash=project_hash,
                mode=mode,
                project_seconds=round(time.monotonic() - started, 1),
            )
            self._write_stamp(stamp)
            changed = True
        return changed

    def _install_project(self, checkout: pathlib.Path, mode: str) -> None:
        shim = self.site_packages() / 'nova' / 'virt' / 'nova_hypervisors'
        # pip replaced earlier builds of another version number without
        # removing their metadata; entry points (ML2's mechanism driver)
        # would then be read from a stale one.
        for stale in self.site_packages().glob('nova_hypervisors-*.dist-info'):
            shutil.rmtree(stale)
        if mode == 'wheel':
            self._pip(
                'install',
                '--no-deps',
                '--no-build-isolation',
                '--force-reinstall',
                str(checkout),
            )
        else:
            self._pip(
                'install',
                '--no-deps',
                '--no-build-isolation',
                '--editable',
                str(checkout),
            )
            # What the wheel would have put inside the installed Nova.
            shutil.rmtree(shim, ignore_errors=True)
            shutil.copytree(
                checkout / 'nova' / 'virt' / 'nova_hypervisors',
                shim,
                ignore=shutil.ignore_patterns('__pycache__'),
            )
        self._run(
            [
                str(self.python),
                '-c',
                'import nova.virt.nova_hypervisors.xenapi, '
                'nova.virt.nova_hypervisors.vmwareapi',
            ]
        )

    def _read_versions(self) -> dict[str, str]:
        names = [
            'nova',
            'keystone',
            'glance',
            'openstack-placement',
            'python-openstackclient',
            'gunicorn',
        ]
        code = (
            'import importlib.metadata as m, json, sys; '
            'print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))'
        )
        done = subprocess.run(
            [str(self.python), '-c', code, *names],
            capture_output=True,
            text=True,
        )
        try:
            return json.loads(done.stdout)
        except ValueError:
            return {}

    def _pip(self, *args: str) -> None:
        self._run([str(self.python), '-m', 'pip', '--quiet', *args])

    def _run(self, argv: list[str]) -> None:
        """Run an install step, its output kept in ``stack-install.log``."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log, 'a') as log:
            log.write(f'$ {" ".join(argv)}\n')
            log.flush()
            done = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if done.returncode:
            tail = self.log.read_text(errors='replace').splitlines()[-30:]
            raise StackError(
                f'{" ".join(argv[:4])} ... failed (exit {done.returncode}):\n'
                + '\n'.join(
                    '    ' + line for line in tail if 'is ignored' not in line
                )
                + f'\n    (full log: {self.log})'
            )
