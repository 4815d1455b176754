"""Wait until an RPC queue of Nova has a consumer (runs in the services venv).

nova-compute's first act is an RPC call to the conductor; sent before the
conductor consumes its queue, that call waits out oslo.messaging's 60 s
timeout.  So the stack starts computes only once ``conductor`` (and
``scheduler``) have consumers, which a passive ``queue.declare`` on the
broker tells without side effects.  The transport URL comes from the
environment (``NOVA_HYPERVISORS_TRANSPORT_URL``), never from the command
line, where ``ps`` would show its password.
"""

import argparse
import os
import sys
import time


def consumers(url: str, queue: str) -> int:
    import kombu

    # oslo.messaging says rabbit://, kombu says amqp:// for the same thing.
    url = 'amqp://' + url.split('://', 1)[1]
    with kombu.Connection(url, connect_timeout=5) as connection:
        channel = connection.channel()
        try:
            _, _, count = channel.queue_declare(queue=queue, passive=True)
        except Exception:  # noqa: BLE001 (a missing queue: no consumer yet)
            return 0
        return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('queues', nargs='+')
    parser.add_argument('--timeout', type=float, default=120)
    args = parser.parse_args(argv)
    url = os.environ['NOVA_HYPERVISORS_TRANSPORT_URL']
    deadline = time.monotonic() + args.timeout
    waiting = list(args.queues)
    while waiting and time.monotonic() < deadline:
        waiting = [queue for queue in waiting if consumers(url, queue) < 1]
        if waiting:
            time.sleep(0.3)
    if waiting:
        print(f'no consumer on {", ".join(waiting)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
