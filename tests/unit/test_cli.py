"""The ``nova-hypervisors`` console script and its subcommands."""

import pathlib
import subprocess
import sys
from unittest import mock

import pytest

from nova_hypervisors.cmd import main as cli


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['--help'])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    commands = [module.COMMAND for module in cli.subcommand_modules()]
    assert 'config' in commands
    for command in commands:
        assert command in shown


def test_every_subcommand_module_is_complete():
    for module in cli.subcommand_modules():
        assert isinstance(module.HELP, str) and module.HELP
        assert callable(module.add_arguments) and callable(module.run)


def test_no_subcommand_is_a_clear_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert 'required' in capsys.readouterr().err


def test_installed_console_script_runs():
    script = pathlib.Path(sys.executable).parent / 'nova-hypervisors'
    done = subprocess.run(
        [str(script), '--help'], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert 'config' in done.stdout


def test_config_subcommand_prints_our_sample(tmp_path):
    sample = tmp_path / 'sample.conf'
    assert cli.main(['config', '--output-file', str(sample)]) == 0
    text = sample.read_text()
    assert '[xenserver]' in text and '#connection_url = ' in text
    assert '#sr_matching_filter = default-sr:true' in text


def _stack_up_args(*argv):
    return cli.build_parser().parse_args(['stack', 'up', *argv])


def test_a_new_stack_runs_both_drivers_when_vcsim_can_be_built(tmp_path):
    """issue 15: the vCenter compute is in by default where vcsim can be
    built; --no-vcenter leaves it out; a restart keeps what was asked."""
    from nova_hypervisors.cmd import stack as stack_cmd
    from nova_hypervisors.stack import layout

    state = layout.Layout(tmp_path)
    state.root.mkdir(parents=True, exist_ok=True)
    with mock.patch('nova_hypervisors.simulators.vcsim.available') as can:
        can.return_value = True
        assert stack_cmd.requested_spec(_stack_up_args(), state).vcenter
        spec = stack_cmd.requested_spec(_stack_up_args('--no-vcenter'), state)
        assert not spec.vcenter
        fake = stack_cmd.requested_spec(
            _stack_up_args('--compute-driver', 'fake'), state
        )
        assert not fake.vcenter
        state.save_spec(spec)
        assert not stack_cmd.requested_spec(_stack_up_args(), state).vcenter
        can.return_value = False
        state.spec_file.unlink()
        assert not stack_cmd.requested_spec(_stack_up_args(), state).vcenter
