"""Our options register beside Nova's and reach the config generator."""

import subprocess
import sys

import nova.conf
from oslo_config import cfg

from nova_hypervisors import conf


def test_vmware_additions_do_not_clash_with_novas_options():
    """Registering ours on Nova's CONF raises no DuplicateOptError."""
    fresh = cfg.ConfigOpts()
    nova.conf.vmware.register_opts(fresh)
    conf.register_opts(fresh)
    conf.register_opts(fresh)  # idempotent, as module reloads make it
    fresh([], default_config_files=[])
    assert fresh.vmware.host_ip is None  # Nova's option, reused as is
    assert fresh.vmware.operation_timeout == 1800  # ours


def test_xenserver_defaults_match_the_old_driver():
    fresh = cfg.ConfigOpts()
    conf.register_opts(fresh)
    fresh([], default_config_files=[])
    assert fresh.xenserver.sr_matching_filter == 'default-sr:true'
    assert fresh.xenserver.connection_username == 'root'
    assert fresh.xenserver.connection_concurrent == 5
    assert fresh.xenserver.insecure is False


def test_password_is_secret():
    opts = {opt.name: opt for _, group in conf.list_opts() for opt in group}
    assert opts['connection_password'].secret


def test_every_option_has_help_text():
    for group, opts in conf.list_opts():
        for opt in opts:
            assert opt.help and len(opt.help) > 20, (group.name, opt.name)


def test_list_opts_names_only_our_vmware_additions():
    """The sample must not repeat Nova's own [vmware] options."""
    novas = {opt.name for opt in nova.conf.vmware.ALL_VMWARE_OPTS}
    ours = {
        opt.name
        for group, opts in conf.list_opts()
        if group.name == 'vmware'
        for opt in opts
    }
    assert ours and not ours & novas


def test_config_generator_prints_every_option():
    """``oslo-config-generator --namespace nova_hypervisors`` works."""
    output = subprocess.run(
        [
            sys.executable,
            '-m',
            'oslo_config.generator',
            '--namespace',
            'nova_hypervisors',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for group, opts in conf.list_opts():
        assert f'[{group.name}]' in output
        for opt in opts:
            assert f'#{opt.name} = ' in output, opt.name
