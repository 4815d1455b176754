"""The main job, as a newcomer runs it: ``nova-hypervisors demo``."""

import os
import pathlib
import subprocess
import sys

import pytest

from nova_hypervisors.simulators import vcsim

SCRIPT = pathlib.Path(sys.executable).parent / 'nova-hypervisors'


def test_the_demo_tells_the_whole_story_and_exits_zero(tmp_path):
    if not vcsim.available() and os.environ.get('CI') != 'true':
        pytest.skip(f'vcsim unavailable here: {vcsim.INSTALL_HINT}')
    done = subprocess.run(
        [
            str(SCRIPT),
            'demo',
            '--xen-hosts', '2',
            '--esxi-hosts', '2',
            '--log-file', str(tmp_path / 'demo.log'),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    output = done.stdout
    assert done.returncode == 0, output[-4000:] + done.stderr[-4000:]
    summary = output[output.index('step  ') :]
    for step in (
        'the pool forms',
        'live-migrate pool-vm1',
        'snapshot pool-vm2',
        'attach a Cinder iSCSI volume to pool-vm2',
        'boot on the vCenter cluster node',
        'attach a Cinder vmdk volume to vc-vm1',
        'a flavor no single ESXi host can hold is refused',
        'nothing is left on either hypervisor',
    ):
        (line,) = [row for row in summary.splitlines() if step in row]
        assert ' ok ' in line, line
    assert 'FAILED' not in summary and 'skipped' not in summary
    assert 'connection_password = ********' in output
    assert 'demo-pool-secret' not in output
    assert 'demo-chap-secret' not in output
    log = (tmp_path / 'demo.log').read_text()
    assert 'demo-chap-secret' not in log
    assert 'No valid host' in output
