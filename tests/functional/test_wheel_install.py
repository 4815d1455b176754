"""The built wheel, installed beside Nova 34, loads by name through Nova.

This is the operator's path: ``pip install nova-hypervisors`` into the
environment that holds Nova, then ``compute_driver = ...`` in nova.conf.
Nova only imports ``'nova.virt.' + compute_driver``, so the wheel must put
the shim package inside the installed ``nova.virt`` -- which an editable
checkout never proves.  The environment is built from nothing: Nova at the
version the test suite pins, then our wheel with its declared dependencies
(so a missing dependency fails here too).
"""

import importlib.metadata
import json
import pathlib
import subprocess
import sys
import venv
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

LOAD_BOTH_DRIVERS = """
import json, sys
import nova.conf
from nova.virt import driver
nova.conf.CONF([], project='nova')
found = {}
for name in sys.argv[1:]:
    loaded = driver.load_compute_driver(None, name)
    cls = type(loaded)
    found[name] = {
        'class': cls.__module__ + '.' + cls.__qualname__,
        'is_compute_driver': isinstance(loaded, driver.ComputeDriver),
        'file': sys.modules[cls.__module__].__file__,
    }
import nova.virt.nova_hypervisors as shim
found['shim'] = shim.__file__
found['nova_version'] = __import__('importlib.metadata').metadata.version(
    'nova')
print(json.dumps(found))
"""


def _run(*argv: str, cwd: pathlib.Path) -> str:
    done = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp('wheel')
    _run(
        sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q',
        '-w', str(out), str(REPO), cwd=out,
    )  # fmt: skip
    (built,) = out.glob('nova_hypervisors-*.whl')
    return built


@pytest.fixture(scope='module')
def fresh_env(wheel, tmp_path_factory) -> pathlib.Path:
    """A new virtualenv holding the pinned Nova, then our wheel."""
    root = tmp_path_factory.mktemp('venv')
    venv.create(root, with_pip=True)
    python = root / 'bin' / 'python'
    nova_version = importlib.metadata.version('nova')
    _run(
        str(python), '-m', 'pip', 'install', '-q',
        f'nova=={nova_version}', cwd=root,
    )  # fmt: skip
    _run(str(python), '-m', 'pip', 'install', '-q', str(wheel), cwd=root)
    return root


def test_wheel_ships_the_shim_and_never_novas_own_init_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert 'nova/virt/nova_hypervisors/__init__.py' in names
    assert 'nova/virt/nova_hypervisors/xenapi.py' in names
    assert 'nova/virt/nova_hypervisors/vmwareapi.py' in names
    assert 'nova/__init__.py' not in names
    assert 'nova/virt/__init__.py' not in names
    assert not [n for n in names if n.startswith('nova/') and
                not n.startswith('nova/virt/nova_hypervisors/')]  # fmt: skip


def test_wheel_does_not_require_nova(wheel):
    """Installing us must never replace or upgrade the operator's Nova."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [
            n for n in archive.namelist() if n.endswith('.dist-info/METADATA')
        ]
        requires = [
            line.split(':', 1)[1].strip().lower()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith('Requires-Dist:')
        ]
    assert requires, 'the wheel declares no dependencies at all'
    assert not [r for r in requires if r.split()[0].startswith('nova')]


def test_nova_loads_both_drivers_by_name_from_the_installed_wheel(
    fresh_env,
):
    python = fresh_env / 'bin' / 'python'
    names = [
        'nova_hypervisors.xenapi.XenAPIDriver',
        'nova_hypervisors.vmwareapi.VCDriver',
    ]
    found = json.loads(
        _run(str(python), '-c', LOAD_BOTH_DRIVERS, *names, cwd=fresh_env)
        .strip()
        .splitlines()[-1]
    )
    site = str(fresh_env)
    assert found['shim'].startswith(site)
    assert found['nova_version'] == importlib.metadata.version('nova')
    assert found[names[0]]['class'] == (
        'nova_hypervisors.xenapi.driver.XenAPIDriver'
    )
    assert found[names[1]]['class'] == (
        'nova_hypervisors.vmwareapi.driver.VCDriver'
    )
    for name in names:
        assert found[name]['is_compute_driver']
        assert found[name]['file'].startswith(site), found[name]['file']


def test_installing_the_wheel_left_nova_as_it_was(fresh_env):
    python = fresh_env / 'bin' / 'python'
    listed = _run(
        str(python), '-m', 'pip', 'list', '--format=json', cwd=fresh_env
    )
    versions = {p['name'].lower(): p['version'] for p in json.loads(listed)}
    assert versions['nova'] == importlib.metadata.version('nova')
    assert 'nova-hypervisors' in versions
