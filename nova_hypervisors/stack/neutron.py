"""A stand-in for Neutron: enough Networking API for Nova, nothing more.

Nova 34 has no "no network" mode: nova-api and nova-compute ask Neutron for
the ports of every server, even one booted with ``--nic none``, and without
a ``network`` endpoint in the catalog ``server show`` fails with
EndpointNotFound.  Our drivers never plug a port (the stack boots servers
with ``--nic none``), so this server answers exactly what those questions
need:

* ``GET /`` - version discovery listing v2.0, so keystoneauth finds the API;
* ``GET /v2.0/extensions`` and any other collection (``ports``,
  ``networks``, ``subnets``, ``security-groups``, ``floatingips``, ...) -
  an empty list under the collection's key, so "which ports does this server
  have" is answered "none";
* ``GET /v2.0/<collection>/<id>`` - 404 ``NeutronError`` ``NotFound``, the
  truth for a cloud without networks;
* ``DELETE`` - 204, so clean-up paths succeed;
* ``POST``/``PUT`` - 501: creating networks or ports is a Neutron feature
  this stack does not offer, and saying so beats pretending.

It checks no token: it holds no data to protect.  Every request is logged
(method, path, status), never its headers.
"""

import argparse
import http.server
import json
import logging
import sys
import urllib.parse

LOG = logging.getLogger('neutron-standin')


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'nova-hypervisors-neutron-standin'
    protocol_version = 'HTTP/1.1'

    def _send(self, status: int, body: dict | None = None) -> None:
        payload = b'' if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        if payload and self.command != 'HEAD':
            self.wfile.write(payload)

    def _parts(self) -> list[str]:
        path = urllib.parse.urlsplit(self.path).path
        return [part for part in path.split('/') if part]

    def _drain(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        if length:
            self.rfile.read(length)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = self._parts()
        if not parts:
            self._send(200, versions(self.headers.get('Host')))
        elif parts == ['v2.0']:
            self._send(200, {'resources': []})
        elif parts[0] != 'v2.0':
            self._send(404, not_found('/'.join(parts)))
        elif len(parts) == 2:
            self._send(200, {collection_key(parts[1]): []})
        else:
            self._send(404, not_found('/'.join(parts[1:])))

    do_HEAD = do_GET

    def do_DELETE(self) -> None:  # noqa: N802
        self._drain()
        self._send(204)

    def do_POST(self) -> None:  # noqa: N802
        self._drain()
        self._send(
            501,
            {
                'NeutronError': {
                    'type': 'NotImplemented',
                    'message': 'This stand-in for Neutron creates nothing; '
                    'boot servers with --nic none.',
                    'detail': '',
                }
            },
        )

    do_PUT = do_POST

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        LOG.info('%s %s', self.address_string(), format % args)


def versions(host: str | None) -> dict:
    base = f'http://{host or "127.0.0.1"}'
    return {
        'versions': [
            {
                'id': 'v2.0',
                'status': 'CURRENT',
                'links': [{'href': f'{base}/v2.0/', 'rel': 'self'}],
            }
        ]
    }


def collection_key(resource: str) -> str:
    """``security-groups`` is listed under ``security_groups``, and so on."""
    name = resource.split('.')[0]
    return name.replace('-', '_')


def not_found(what: str) -> dict:
    return {
        'NeutronError': {
            'type': 'NotFound',
            'message': f'{what} could not be found (this cloud has no '
            'networks)',
            'detail': '',
        }
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bind', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=9696)
    parser.add_argument('--log-file')
    args = parser.parse_args(argv)
    logging.basicConfig(
        filename=args.log_file,
        level=logging.INFO,
        format='%(asctime)s %(levelname)s %(name)s %(message)s',
    )
    server = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    LOG.info('listening on %s:%d', args.bind, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
