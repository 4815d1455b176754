"""The stack's machinery without OpenStack: configs, PIDs, ports, stand-in.

Fast tests (no service is started but ``sleep``), run by the ordinary test
suite; test_stack_e2e.py brings the real cloud up.
"""

import configparser
import os
import pathlib
import socket
import stat
import subprocess
import sys
import time

import pytest

from nova_hypervisors.stack import StackError
from nova_hypervisors.stack import bootstrap
from nova_hypervisors.stack import configs
from nova_hypervisors.stack import control
from nova_hypervisors.stack import inifile
from nova_hypervisors.stack import layout as stack_layout
from nova_hypervisors.stack import networking
from nova_hypervisors.stack import openrc
from nova_hypervisors.stack import packages
from nova_hypervisors.stack import phase
from nova_hypervisors.stack import ports
from nova_hypervisors.stack import procs
from nova_hypervisors.stack import services
from nova_hypervisors.stack import up
from nova_hypervisors.stack import venv as stack_venv


@pytest.fixture
def state(tmp_path):
    layout = stack_layout.Layout(tmp_path / 'stack')
    layout.create()
    return layout


@pytest.fixture
def venv_etc(tmp_path):
    """The two paste files the services' virtualenv ships."""
    etc = tmp_path / 'venv-etc'
    for relative in ('glance/glance-api-paste.ini', 'nova/api-paste.ini'):
        (etc / relative).parent.mkdir(parents=True, exist_ok=True)
        (etc / relative).write_text('[pipeline:main]\n')
    return etc


def _read(path: pathlib.Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser


def _all_configs(state, venv_etc):
    spec = stack_layout.Spec(venv='/venv')
    secrets = state.load_secrets()
    compute = configs.Compute(
        'xenserver-1',
        'xenserver',
        stack_layout.XENAPI_DRIVER,
        {'xenserver': {'connection_url': 'http://127.0.0.1:8680'}},
    )
    return [
        configs.write_keystone(state, spec, secrets),
        configs.write_glance(state, spec, secrets, venv_etc),
        configs.write_placement(state, spec, secrets),
        configs.write_nova(state, spec, secrets, venv_etc),
        configs.write_compute(state, spec, secrets, compute),
    ]


# -- generated configuration ------------------------------------------------


def test_every_address_in_every_config_is_loopback(state, venv_etc):
    for path in _all_configs(state, venv_etc):
        text = path.read_text()
        assert '0.0.0.0' not in text and 'localhost' not in text, path
        for section in _read(path).values():
            for key, value in section.items():
                if '://' in value:
                    assert '@127.0.0.1:' in value or '//127.0.0.1:' in value, (
                        f'{path.name} [{section.name}] {key} = {value}'
                    )


def test_configs_hold_passwords_so_only_their_owner_reads_them(
    state, venv_etc
):
    for path in _all_configs(state, venv_etc):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(state.secrets_file.stat().st_mode) == 0o600


def test_nova_conf_sends_versioned_notifications_for_the_pool_agent(
    state, venv_etc
):
    _all_configs(state, venv_etc)
    nova = _read(state.etc / 'nova' / 'nova.conf')
    assert nova['notifications']['notification_format'] == 'versioned'
    assert nova['oslo_messaging_notifications']['driver'] == 'messagingv2'
    assert nova['DEFAULT']['transport_url'].startswith('rabbit://')


def test_a_compute_config_stands_alone_without_database_credentials(
    state, venv_etc
):
    _all_configs(state, venv_etc)
    compute = _read(state.etc / 'nova' / 'nova-compute-xenserver-1.conf')
    assert 'database' not in compute and 'api_database' not in compute
    default = compute['DEFAULT']
    assert default['host'] == 'xenserver-1'
    assert default['compute_driver'] == stack_layout.XENAPI_DRIVER
    # The node identity (compute_id) lives in a state_path of its own.
    assert default['state_path'].endswith('nova-compute-xenserver-1')
    assert compute['xenserver']['connection_url'].startswith('http://127.')


def test_glance_uses_the_file_store_inside_the_state_directory(
    state, venv_etc
):
    _all_configs(state, venv_etc)
    glance = _read(state.etc / 'glance' / 'glance-api.conf')
    assert glance['DEFAULT']['enabled_backends'] == 'fs:file'
    assert glance['fs']['filesystem_store_datadir'].startswith(str(state.root))
    assert (state.etc / 'glance' / 'glance-api-paste.ini').exists()


def test_ini_rendering_keeps_comments_and_lowercases_booleans():
    text = inifile.render(
        {'DEFAULT': {'#1': 'why', 'debug': False, 'list': ['a', 'b']}},
        header='generated',
    )
    assert text.splitlines()[:5] == [
        '# generated',
        '',
        '[DEFAULT]',
        '# why',
        'debug = false',
    ]
    assert 'list = a,b' in text


def test_secrets_are_generated_once_and_kept(state):
    first = state.load_secrets()
    again = stack_layout.Layout(state.root).load_secrets()
    assert first == again
    assert len(set(first.values())) == len(first)


def test_port_offset_moves_every_port():
    spec = stack_layout.Spec(port_offset=10000)
    assert spec.port('keystone') == 15000
    assert spec.port('mariadb') == 13306


def test_neutron_binds_vcenter_ports_only_once_vcsim_is_known(state, tmp_path):
    """ml2_conf.ini: Open vSwitch always; the vCenter driver with its
    [ml2_vcenter] section when vcsim's facts are given (mode 0600: it
    holds vCenter's password)."""
    venv_etc = tmp_path / 'venv-etc'
    (venv_etc / 'neutron').mkdir(parents=True)
    (venv_etc / 'neutron' / 'api-paste.ini').write_text('[composite:x]\n')
    spec, secrets = stack_layout.Spec(), state.load_secrets()
    networking.write_server(state, spec, secrets, venv_etc)
    ml2 = configparser.ConfigParser()
    ml2.read(state.etc / 'neutron' / 'ml2_conf.ini')
    assert ml2['ml2']['mechanism_drivers'] == 'openvswitch'
    assert not ml2.has_section('ml2_vcenter')
    facts = {'host': '127.0.0.1', 'port': 4443, 'username': 'u',
             'password': 'vc-secret', 'ca_file': '/ca.pem'}  # fmt: skip
    networking.write_server(
        state, spec, secrets, venv_etc,
        vcenter=networking.vcenter_section(facts, 'vcenter-1'),
    )  # fmt: skip
    path = state.etc / 'neutron' / 'ml2_conf.ini'
    ml2 = configparser.ConfigParser()
    ml2.read(path)
    assert ml2['ml2']['mechanism_drivers'] == (
        'openvswitch,nova_hypervisors_vcenter'
    )
    assert ml2['ml2_vcenter']['compute_hosts'] == 'vcenter-1'
    assert ml2['ml2_vcenter']['dvs_name'] == 'DVS0'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_each_xenserver_hosts_agent_has_its_switch_and_openflow_port(state):
    spec = stack_layout.Spec(port_offset=100)
    for index, host in enumerate(['xenserver-1', 'xenserver-2']):
        path = networking.write_agent(
            state, spec, state.load_secrets(), host, index, pathlib.Path('/v')
        )
        agent = configparser.ConfigParser()
        agent.read(path)
        assert agent['DEFAULT']['host'] == host
        assert agent['ovs']['ovsdb_connection'] == (
            f'unix:{state.run}/ovs/{host}/db.sock'
        )
        assert agent['ovs']['of_listen_port'] == str(16733 + index)
        assert agent['ovs']['bridge_mappings'] == 'physnet1:br-phys'
        assert 'connection' not in agent['DEFAULT']  # no database


def test_openrc_points_the_cli_at_loopback_keystone(state):
    spec = stack_layout.Spec(venv='/opt/stack-venv')
    openrc.write(state, spec, state.load_secrets())
    variables = openrc.environment(state)
    assert variables['OS_AUTH_URL'] == 'http://127.0.0.1:5000/v3'
    assert variables['OS_PASSWORD'] == state.load_secrets()['admin']
    assert (
        'export PATH="/opt/stack-venv/bin:$PATH"' in state.openrc.read_text()
    )


def test_fernet_repository_is_what_keystone_manage_would_make(tmp_path):
    repository = tmp_path / 'fernet-keys'
    bootstrap.fernet_repository(repository)
    keys = {path.name: path.read_text() for path in repository.iterdir()}
    assert sorted(keys) == ['0', '1'] and keys['0'] != keys['1']
    assert all(len(key) == 44 for key in keys.values())
    assert stat.S_IMODE(repository.stat().st_mode) == 0o700
    bootstrap.fernet_repository(repository)
    assert {p.name: p.read_text() for p in repository.iterdir()} == keys


# -- supervision by PID files -------------------------------------------------


def test_a_service_and_what_it_forked_stop_together_by_pid(tmp_path):
    supervisor = procs.Supervisor(tmp_path, tmp_path)
    record = supervisor.start(
        'sleeper', ['sh', '-c', 'sleep 60 & sleep 60; wait']
    )
    deadline = time.monotonic() + 5
    while len(procs.group_members(record.pid)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (tmp_path / 'sleeper.pid').read_text().strip() == str(record.pid)
    assert supervisor.running('sleeper')
    assert supervisor.stop('sleeper', timeout=5)
    assert procs.group_members(record.pid) == []
    assert not (tmp_path / 'sleeper.pid').exists()
    assert supervisor.records() == []


def test_a_reused_pid_is_not_mistaken_for_the_service(tmp_path):
    supervisor = procs.Supervisor(tmp_path, tmp_path)
    record = supervisor.start('sleeper', ['sleep', '60'])
    try:
        forged = procs.Record(**{**record.__dict__, 'start_time': 1})
        supervisor._save(forged)
        assert supervisor.running('sleeper') is None
    finally:
        os.kill(record.pid, 9)


def test_a_service_that_dies_at_start_shows_its_output(tmp_path):
    supervisor = procs.Supervisor(tmp_path, tmp_path)
    record = supervisor.start(
        'broken', ['sh', '-c', 'echo cannot open config; exit 3']
    )
    with pytest.raises(StackError) as error:
        supervisor.wait_ready(record, _free_port(), timeout=10)
    assert 'cannot open config' in str(error.value)


def test_stop_waves_stop_computes_first_and_the_database_last():
    waves = services.stop_waves(
        ['mariadb', 'nova-compute-a', 'keystone', 'rabbitmq', 'pool-agent',
         'ovsdb-server-a', 'ovs-vswitchd-a', 'neutron-openvswitch-agent-a',
         'xapi-sim']
    )  # fmt: skip
    assert waves == [
        ['neutron-openvswitch-agent-a', 'nova-compute-a', 'pool-agent'],
        ['keystone', 'xapi-sim'],
        # The simulator takes its VIF ports off the switches as it stops.
        ['ovs-vswitchd-a'],
        ['ovsdb-server-a'],
        ['rabbitmq'],
        ['mariadb'],
    ]


def test_services_never_inherit_an_operators_openrc(monkeypatch, tmp_path):
    monkeypatch.setenv('OS_PASSWORD', 'secret')
    monkeypatch.setenv('PYTHONPATH', '/checkout')
    env = services.environment(stack_venv.Venv(tmp_path))
    assert 'OS_PASSWORD' not in env and 'PYTHONPATH' not in env
    assert env['PATH'].startswith(str(tmp_path / 'bin'))


# -- ports and packages -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_a_port_in_use_is_named_with_its_holder_before_anything_starts(
    state,
):
    with socket.socket() as listener:
        # An offset that keeps every port of the stack valid (< 65536),
        # with keystone's port held by this test.
        for offset in range(20000, 30000, 7):
            spec = stack_layout.Spec(port_offset=offset)
            port = spec.port('keystone')
            try:
                listener.bind(('127.0.0.1', port))
            except OSError:
                continue
            break
        listener.listen()
        ctx = phase.Context(
            layout=state,
            spec=spec,
            secrets={},
            venv=stack_venv.Venv(state.root / 'venv'),
            supervisor=procs.Supervisor(state.run, state.log),
            programs={},
            env={},
            report=phase.Clock(lambda _: None),
        )
        assert ports.holder(port) and str(os.getpid()) in ports.holder(port)
        with pytest.raises(StackError) as error:
            up._check_ports(ctx)
    message = str(error.value)
    assert f'keystone needs 127.0.0.1:{port}' in message
    assert f'PID {os.getpid()}' in message
    assert '--port-offset' in message


def test_missing_debian_programs_name_their_packages(monkeypatch):
    monkeypatch.setattr(packages, 'find', lambda program: None)
    with pytest.raises(StackError) as error:
        packages.require(['mariadbd', 'rabbitmq-server'])
    message = str(error.value)
    assert 'mariadb-server' in message and 'rabbitmq-server' in message
    assert 'apt-get install' in message


def test_down_of_an_empty_state_directory_says_so(tmp_path):
    done = subprocess.run(
        [sys.executable, '-m', 'nova_hypervisors.stack', 'down',
         '--state-dir', str(tmp_path / 'none')],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=pathlib.Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'no stack in' in done.stdout


def test_leftover_listeners_are_reported_by_down(state):
    state.save_spec(stack_layout.Spec())
    assert isinstance(control.leftover_listeners(state), list)


def test_a_changed_source_file_changes_the_project_hash(tmp_path):
    (tmp_path / 'nova_hypervisors').mkdir()
    module = tmp_path / 'nova_hypervisors' / 'x.py'
    module.write_text('a = 1\n')
    (tmp_path / 'setup.cfg').write_text('[metadata]\n')
    before = stack_venv.source_hash(tmp_path)
    module.write_text('a = 2\n')
    assert stack_venv.source_hash(tmp_path) != before
