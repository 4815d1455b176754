"""``nova-hypervisors check`` against both simulators, configured well and
wrongly, run as an operator runs it: the console script on a nova.conf.
"""

import json
import os
import pathlib
import secrets
import subprocess
import sys

import pytest

from nova_hypervisors.simulators.xapi import SimulatedPool
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vifs
from tests.functional.vmwareapi import vcsim_fixture

XENAPI_DRIVER = 'nova_hypervisors.xenapi.XenAPIDriver'
VC_DRIVER = 'nova_hypervisors.vmwareapi.VCDriver'


def check(tmp_path, sections: dict, *extra: str) -> tuple[int, dict, str]:
    """Write nova.conf, run the check (json, then text); return the exit
    status, the json report and the text report."""
    conf = tmp_path / 'nova.conf'
    lines = []
    for section, options in sections.items():
        lines.append(f'[{section}]')
        lines += [f'{key} = {value}' for key, value in options.items()]
    conf.write_text('\n'.join(lines) + '\n')
    outputs = []
    for fmt in ('json', 'text'):
        done = subprocess.run(
            [
                sys.executable,
                '-m',
                'nova_hypervisors.cmd.main',
                'check',
                '--config-file',
                str(conf),
                '--format',
                fmt,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONWARNINGS='ignore'),
        )
        outputs.append(done)
    as_json, as_text = outputs
    assert as_json.returncode == as_text.returncode, as_text.stderr
    return as_json.returncode, json.loads(as_json.stdout), as_text.stdout


def statuses(report: dict) -> dict:
    return {c['check']: c['status'] for c in report['checks']}


def detail(report: dict, name: str) -> str:
    (found,) = [c for c in report['checks'] if c['check'] == name]
    return found['detail'] + ' ' + found['fix']


# -- XenServer ---------------------------------------------------------------


@pytest.fixture(scope='module')
def pool():
    """Two hosts in a pool on a shared default SR, with the integration
    bridge's network that a running compute makes."""
    sim = SimulatedPool(hosts=2, pooled=True, port=0)
    sim.start()
    master = sim.hosts[0]
    session = xsession.XenAPISession(
        master.url, master.username, master.password, ca_file=sim.ca_file
    )
    session.connect()
    vifs.find_or_create_network(session, 'br-int', [])
    session.close()
    yield sim
    sim.stop()


def xen_options(sim, host=None, **overrides) -> dict:
    host = host or sim.hosts[0]
    options = {
        'connection_url': host.url,
        'connection_username': host.username,
        'connection_password': host.password,
        'ca_file': sim.ca_file,
        'sr_matching_filter': 'default-sr:true',
    }
    options.update(overrides)
    return {
        'DEFAULT': {'compute_driver': XENAPI_DRIVER},
        'compute': {'live_migration_wait_for_vif_plug': 'false'},
        'xenserver': options,
    }


def test_a_well_configured_pool_member_passes_every_check(tmp_path, pool):
    status, report, text = check(tmp_path, xen_options(pool, pool.hosts[1]))
    assert status == 0, text
    assert set(statuses(report).values()) == {'passed'}
    assert set(statuses(report)) == {
        'login',
        'pool role',
        'version',
        'storage',
        'pool',
        'clock',
        'integration bridge',
        'live migration',
    }
    assert f'its master is {pool.hosts[0].address}' in detail(
        report, 'pool role'
    )
    assert 'XenAPI 2.' in detail(report, 'version')
    assert 'shared by the pool' in detail(report, 'storage')
    assert '2 host(s)' in detail(report, 'pool')
    # One line per check, and the summary.
    assert text.count('PASS  ') == 8
    assert '8 passed, 0 warnings, 0 failed' in text


def test_a_wrong_password_fails_naming_the_options(tmp_path, pool):
    status, report, text = check(
        tmp_path, xen_options(pool, connection_password='wrong')
    )
    assert status == 2
    assert statuses(report) == {'login': 'failed'}
    assert 'connection_password' in detail(report, 'login')
    assert 'wrong' not in text
    assert pool.hosts[0].password not in text


def test_an_untrusted_certificate_fails_naming_ca_file(tmp_path, pool):
    options = xen_options(pool)
    del options['xenserver']['ca_file']
    status, report, _ = check(tmp_path, options)
    assert status == 2
    assert 'ca_file' in detail(report, 'login')


def test_a_filter_no_plugged_sr_matches_fails(tmp_path, pool):
    status, report, _ = check(
        tmp_path,
        xen_options(pool, sr_matching_filter='other-config:nothing=here'),
    )
    assert status == 2
    assert statuses(report)['storage'] == 'failed'
    assert 'sr_matching_filter' in detail(report, 'storage')
    # The checks after it still ran.
    assert statuses(report)['clock'] == 'passed'


def test_local_storage_no_bridge_and_a_vif_wait_warn(tmp_path):
    sim = SimulatedPool(hosts=1, port=0, shared_sr=False)
    sim.start()
    options = xen_options(sim)
    del options['compute']  # Nova's default: wait for network-vif-plugged
    try:
        status, report, text = check(tmp_path, options)
    finally:
        sim.stop()
    assert status == 1, text
    assert statuses(report)['storage'] == 'warning'
    assert 'not shared' in detail(report, 'storage')
    assert statuses(report)['integration bridge'] == 'warning'
    assert 'ovs-vsctl add-br br-int' in detail(report, 'integration bridge')
    assert statuses(report)['live migration'] == 'warning'
    assert 'live_migration_wait_for_vif_plug = False' in detail(
        report, 'live migration'
    )
    assert 'fix: ' in text


# -- vCenter -----------------------------------------------------------------


@pytest.fixture(scope='module')
def vcenter():
    # A password that no message contains by chance ('pass' would be).
    sim = vcsim_fixture.start(
        clusters=2, hosts_per_cluster=2, vms=2, password=secrets.token_hex(8)
    )
    yield sim
    sim.stop()


def vc_options(sim, **overrides) -> dict:
    options = vcsim_fixture.vmware_flags(sim)
    options.update(overrides)
    return {
        'DEFAULT': {'compute_driver': VC_DRIVER},
        'vmware': {k: v for k, v in options.items() if v is not None},
    }


def test_a_well_configured_cluster_passes_every_check(tmp_path, vcenter):
    status, report, text = check(tmp_path, vc_options(vcenter))
    assert status == 0, text
    assert set(statuses(report).values()) == {'passed'}
    assert list(statuses(report)) == [
        'login',
        'version',
        'cluster',
        'DRS and HA',
        'hosts',
        'datastores',
        'networks',
        'placement',
    ]
    assert 'VirtualCenter' in detail(report, 'version')
    assert '2 of 2 host(s) usable' in detail(report, 'hosts')
    # LocalDS_0 is mounted by both clusters' hosts: counted in part.
    assert 'and 2 other hosts' in detail(report, 'datastores')
    assert "MEMORY_MB: the largest host's free memory" in detail(
        report, 'placement'
    )


def test_a_wrong_vcenter_password_fails_naming_the_option(tmp_path, vcenter):
    status, report, text = check(
        tmp_path, vc_options(vcenter, host_password='wrong')
    )
    assert status == 2
    assert statuses(report) == {'login': 'failed'}
    assert 'host_password' in detail(report, 'login')
    assert vcenter.password not in text


def test_a_wrong_cluster_fails_listing_the_clusters(tmp_path, vcenter):
    status, report, _ = check(
        tmp_path, vc_options(vcenter, cluster_name='nope')
    )
    assert status == 2
    assert statuses(report)['cluster'] == 'failed'
    assert 'DC0_C0, DC0_C1' in detail(report, 'cluster')


def test_vcenters_certificate_untrusted_fails_naming_ca_file(
    tmp_path, vcenter
):
    status, report, _ = check(tmp_path, vc_options(vcenter, ca_file=None))
    assert status == 2
    assert 'ca_file' in detail(report, 'login')


def test_insecure_warns(tmp_path, vcenter):
    status, report, _ = check(
        tmp_path, vc_options(vcenter, ca_file=None, insecure=True)
    )
    assert status == 1
    assert statuses(report)['login'] == 'warning'


def test_no_datastore_matching_the_regex_fails(tmp_path, vcenter):
    status, report, _ = check(
        tmp_path, vc_options(vcenter, datastore_regex='^nas')
    )
    assert status == 2
    assert statuses(report)['datastores'] == 'failed'
    assert statuses(report)['placement'] == 'failed'


def test_a_driver_not_ours_fails(tmp_path):
    status, report, _ = check(
        tmp_path, {'DEFAULT': {'compute_driver': 'libvirt.LibvirtDriver'}}
    )
    assert status == 2
    assert statuses(report) == {'compute_driver': 'failed'}


def test_vcsims_password_is_not_on_its_command_line(vcenter):
    """The launcher gives vcsim its password through the environment: a
    command line is visible to every user (ps)."""
    cmdline = pathlib.Path(f'/proc/{vcenter.process.pid}/cmdline')
    assert vcenter.password.encode() not in cmdline.read_bytes()
