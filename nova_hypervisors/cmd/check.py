"""``nova-hypervisors check``: is this nova.conf's hypervisor ready?"""

import argparse
import sys
import warnings

COMMAND = 'check'
HELP = (
    "Check the hypervisor that nova.conf's compute_driver names, without "
    'changing anything: one line per check, with the fix.  Exit status 0: '
    'all passed, 1: a warning, 2: a failure.'
)
#: compute_driver values of ours, and the [group] each one reads.
DRIVERS = {
    'nova_hypervisors.xenapi.XenAPIDriver': 'xenserver',
    'nova_hypervisors.vmwareapi.VCDriver': 'vmware',
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--config-file',
        action='append',
        default=[],
        help='nova.conf to read, as nova-compute does (repeatable; default: '
        "oslo.config's search for nova.conf)",
    )
    parser.add_argument(
        '--config-dir',
        action='append',
        default=[],
        help='directory of *.conf files read after the files (repeatable)',
    )
    parser.add_argument(
        '--format',
        choices=('text', 'json'),
        default='text',
        help='json is for automation',
    )


def run(args: argparse.Namespace) -> int:
    # Nova's imports warn that eventlet is deprecated; an operator reading
    # the checks has nothing to do about it.
    warnings.simplefilter('ignore', DeprecationWarning)
    import nova.conf

    from nova_hypervisors.check import report as check_report
    import nova_hypervisors.conf  # noqa: F401 - our options

    conf = nova.conf.CONF
    conf(
        [],
        project='nova',
        default_config_files=args.config_file or None,
        default_config_dirs=args.config_dir or None,
    )
    group = DRIVERS.get(conf.compute_driver)
    if group == 'xenserver':
        from nova_hypervisors.check import xenserver

        report = xenserver.run(conf.xenserver, conf)
    elif group == 'vmware':
        from nova_hypervisors.check import vcenter

        report = vcenter.run(conf.vmware)
    else:
        report = check_report.Report('nova.conf')
        report.fail(
            'compute_driver',
            f'[DEFAULT] compute_driver is {conf.compute_driver!r}',
            'set it to one of ' + ', '.join(sorted(DRIVERS)),
        )
    output = report.as_json() if args.format == 'json' else report.as_text()
    print(output, file=sys.stdout)
    return report.exit_status
