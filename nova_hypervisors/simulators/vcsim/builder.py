"""Build vcsim (govmomi's vCenter simulator) from Debian's packaged source.

Debian ships govmomi's source as ``golang-github-vmware-govmomi-dev`` under
/usr/share/gocode; with Debian's ``golang-go`` our ``main.go`` builds offline
in GOPATH mode, against a copy of govmomi's simulator package with our
patches (``patches/``) applied: each makes vcsim as strict as vCenter on one
point.  The binary is cached outside the repository, keyed by a hash
of main.go and the Go version, so it is built once per change, not per test
run, and concurrent builders (parallel test workers) wait on a file lock
instead of racing.
"""

import fcntl
import hashlib
import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile

GOCODE = pathlib.Path('/usr/share/gocode')
GOVMOMI_SIMULATOR = GOCODE / 'src/github.com/vmware/govmomi/simulator'
MAIN_GO = pathlib.Path(__file__).with_name('main.go')
#: Our changes to govmomi's simulator package, each one making vcsim refuse
#: or do what a real vCenter does; see the text at the top of each file.
PATCHES = pathlib.Path(__file__).with_name('patches')
SIMULATOR_IMPORT_PATH = 'github.com/vmware/govmomi/simulator'


def patches() -> list[pathlib.Path]:
    return sorted(PATCHES.glob('*.patch'))


INSTALL_HINT = (
    'vcsim needs the Go toolchain and govmomi source from Debian: '
    'apt-get install golang-go golang-github-vmware-govmomi-dev'
)


class VcsimUnavailable(RuntimeError):
    """The toolchain or source needed to build vcsim is missing."""


def cache_root() -> pathlib.Path:
    """Where built binaries live (never inside the repository).

    ``$NOVA_HYPERVISORS_VCSIM_CACHE`` wins, then ``$XDG_CACHE_HOME``, then
    ``.cache`` in the home directory of the account (from the password
    database, not ``$HOME``): test frameworks (oslotest) point ``$HOME`` at a
    fresh temporary directory for every test, and a cache there would cost a
    full Go build of vcsim (half a minute on two cores) per test.
    """
    explicit = os.environ.get('NOVA_HYPERVISORS_VCSIM_CACHE')
    if explicit:
        return pathlib.Path(explicit)
    base = os.environ.get('XDG_CACHE_HOME')
    if not base:
        base = os.path.join(pwd.getpwuid(os.getuid()).pw_dir, '.cache')
    return pathlib.Path(base) / 'nova-hypervisors' / 'vcsim'


def go_binary() -> str:
    """The ``go`` command, or VcsimUnavailable naming what to install."""
    go = shutil.which('go') or (
        '/usr/lib/go/bin/go' if os.path.exists('/usr/lib/go/bin/go') else None
    )
    if go is None:
        raise VcsimUnavailable(f'"go" not found. {INSTALL_HINT}')
    if not GOVMOMI_SIMULATOR.is_dir():
        raise VcsimUnavailable(
            f'{GOVMOMI_SIMULATOR} not found. {INSTALL_HINT}'
        )
    return go


def available() -> bool:
    """Whether vcsim can be built (or is already built) here."""
    try:
        go_binary()
    except VcsimUnavailable:
        return False
    return True


def _build_key(go: str) -> str:
    version = subprocess.run(
        [go, 'version'], capture_output=True, text=True, check=True
    ).stdout
    digest = hashlib.sha256(MAIN_GO.read_bytes() + version.encode())
    for patch in patches():
        digest.update(patch.read_bytes())
    return digest.hexdigest()[:16]


def _patched_simulator(gopath: str, env: dict) -> None:
    """A copy of govmomi's simulator package, patched, first in GOPATH.

    In GOPATH mode the first root that has an import path wins, so this
    copy shadows Debian's for ``github.com/vmware/govmomi/simulator``
    while every other govmomi package is Debian's, linked beside it.
    """
    target = pathlib.Path(gopath, 'src', SIMULATOR_IMPORT_PATH)
    # Go takes the first root with the directory, so the rest of govmomi
    # must be beside the copy: links to Debian's.
    govmomi = GOVMOMI_SIMULATOR.parent
    target.parent.mkdir(parents=True)
    for entry in govmomi.iterdir():
        if entry.name != 'simulator':
            (target.parent / entry.name).symlink_to(entry)
    shutil.copytree(GOVMOMI_SIMULATOR, target)
    for patch in patches():
        result = subprocess.run(
            ['git', 'apply', '-p1', str(patch)],
            cwd=target,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise VcsimUnavailable(
                f'patch {patch.name} does not apply to {GOVMOMI_SIMULATOR}:'
                f'\n{result.stderr.strip()}'
            )


def build(force: bool = False) -> pathlib.Path:
    """Return the path of the vcsim binary, building it if needed."""
    go = go_binary()
    target_dir = cache_root() / _build_key(go)
    binary = target_dir / 'vcsim'
    if binary.exists() and not force:
        return binary
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists() and not force:
            return binary
        with tempfile.TemporaryDirectory(prefix='vcsim-build-') as gopath:
            package = pathlib.Path(gopath, 'src', 'vcsimnh')
            package.mkdir(parents=True)
            shutil.copy(MAIN_GO, package / 'main.go')
            env = dict(
                os.environ,
                GOPATH=f'{gopath}:{GOCODE}',
                GO111MODULE='off',
                GOFLAGS='',
                GOCACHE=str(cache_root() / 'go-build'),
                CGO_ENABLED='0',
            )
            _patched_simulator(gopath, env)
            result = subprocess.run(
                [go, 'build', '-o', str(binary) + '.tmp', '.'],
                cwd=package,
                env=env,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise VcsimUnavailable(
                    f'building vcsim failed:\n{result.stderr.strip()}\n'
                    f'{INSTALL_HINT}'
                )
            os.replace(str(binary) + '.tmp', binary)
    return binary
