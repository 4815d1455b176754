"""``nova-hypervisors pool-agent``: wake XenServer pool reconciliation.

Runs beside Nova with Nova's own configuration files: it reads
``transport_url`` and ``[oslo_messaging_notifications]`` from them, listens
for Nova's versioned aggregate notifications and wakes every XenAPI
nova-compute.  Operators enable those notifications with
``[notifications] notification_format = versioned`` (or ``both``) and
``[oslo_messaging_notifications] driver = messagingv2``.
"""

import argparse
import signal
import threading

COMMAND = 'pool-agent'
HELP = (
    "Listen to Nova's aggregate notifications and wake the XenServer pool "
    'reconciliation of every XenAPI compute at once.'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--config-file',
        action='append',
        default=[],
        metavar='PATH',
        help="Nova's configuration file (repeatable); "
        'default /etc/nova/nova.conf',
    )


def run(args: argparse.Namespace) -> int:
    import nova.conf
    from oslo_log import log as logging
    import oslo_messaging as messaging

    from nova_hypervisors.xenapi.pool import agent

    conf = nova.conf.CONF
    # Nova publishes on its own exchange; so must our RPC fan-out.
    messaging.set_transport_defaults(control_exchange='nova')
    logging.register_options(conf)
    config_files = args.config_file or ['/etc/nova/nova.conf']
    argv = [arg for path in config_files for arg in ('--config-file', path)]
    conf(argv, project='nova')
    logging.setup(conf, 'nova-hypervisors-pool-agent')
    log = logging.getLogger(__name__)

    rpc_transport = messaging.get_rpc_transport(conf)
    notification_transport = messaging.get_notification_transport(conf)
    listener, _ = agent.build_listener(notification_transport, rpc_transport)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    listener.start()
    log.info('Pool agent listening for aggregate notifications')
    print('pool agent ready', flush=True)
    stop.wait()
    listener.stop()
    listener.wait()
    rpc_transport.cleanup()
    notification_transport.cleanup()
    return 0
