"""The loopback control endpoint: fault injection for other processes.

JSON over HTTP, bound to 127.0.0.1 only::

    GET  /hosts                      the hosts, as the CLI prints them
    POST /faults/fail_next           {"method", "count", "error_list", "after"}
    POST /faults/latency             {"method" (null: all), "seconds"}
    POST /faults/expire_sessions     {}
    POST /faults/expire_sessions_on  {"method"}
    POST /faults/calls               {"method"}  -> {"calls": n}
    POST /faults/stop_host           {"name"}
    POST /faults/start_host          {"name"}
    POST /faults/kill_master         {}
    POST /faults/clear               {}

Answers ``{"ok": true, ...}``, or HTTP 400 with ``{"error": "..."}``.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
from typing import Any

LOG = logging.getLogger(__name__)


class ControlServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, simulator, port: int = 0) -> None:
        self.simulator = simulator
        super().__init__(('127.0.0.1', port), ControlHandler)
        self.thread = threading.Thread(
            target=self.serve_forever,
            kwargs={'poll_interval': 0.05},
            name='xapi-sim-control',
            daemon=True,
        )

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.server_address[1]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        LOG.debug('control: %s', format % args)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == '/hosts':
            self._reply(200, {'ok': True, **self.server.simulator.describe()})
        else:
            self._reply(404, {'error': 'no such path %s' % self.path})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get('Content-Length') or 0)
        try:
            body = json.loads(self.rfile.read(length) or b'{}')
            if not isinstance(body, dict):
                raise ValueError('the body must be a JSON object')
            result = self._dispatch(self.path, body)
        except (KeyError, TypeError, ValueError) as exc:
            self._reply(400, {'error': '%s: %s' % (type(exc).__name__, exc)})
            return
        self._reply(200, {'ok': True, **result})

    def _dispatch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        faults = self.server.simulator.faults
        if path == '/faults/fail_next':
            faults.fail_next(
                body['method'],
                int(body.get('count', 1)),
                body.get('error_list'),
                int(body.get('after', 0)),
            )
        elif path == '/faults/latency':
            faults.latency(body.get('method'), float(body['seconds']))
        elif path == '/faults/expire_sessions':
            return {'expired': faults.expire_sessions()}
        elif path == '/faults/expire_sessions_on':
            faults.expire_sessions_on(body['method'])
        elif path == '/faults/calls':
            return {'calls': faults.calls(body['method'])}
        elif path == '/faults/stop_host':
            faults.stop_host(body['name'])
        elif path == '/faults/start_host':
            faults.start_host(body['name'])
        elif path == '/faults/kill_master':
            return {'killed': faults.kill_master().name}
        elif path == '/faults/clear':
            faults.clear()
        else:
            raise KeyError('no such control path %s' % path)
        return {}

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
