"""Each host's xapi endpoint: XML-RPC, JSON-RPC and disk transfers.

* ``POST /`` and ``POST /RPC2``: XML-RPC, answering the
  ``{Status, Value | ErrorDescription}`` envelope;
* ``POST /jsonrpc``: JSON-RPC 1.0 and 2.0 (errors as
  ``{"code": 1, "message": CODE, "data": [args]}`` for 2.0);
* ``PUT /import_raw_vdi`` and ``GET /export_raw_vdi`` with ``vdi``,
  ``session_id``, ``format=raw|vhd`` and an optional ``task_id``;
* ``CONNECT /console`` (and ``GET``) with ``uuid`` or ``ref`` and
  ``session_id``: a running VM's VNC console, on its resident host only.

A request xapi cannot even parse gets HTTP 500, as from xapi.  Servers are
the standard library's threading HTTP server with HTTP/1.1 keep-alive, so
the same code runs under eventlet's monkey patching.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import socket
import ssl
import threading
import time
import urllib.parse
import xmlrpc.client

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi import disks
from nova_hypervisors.simulators.xapi import tasks
from nova_hypervisors.simulators.xapi import vhd
from nova_hypervisors.simulators.xapi.errors import XapiFailure
from nova_hypervisors.simulators.xapi.registry import CallContext

LOG = logging.getLogger(__name__)

#: Seconds a client has to complete its TLS handshake.
HANDSHAKE_TIMEOUT = 10

#: xapi's answer to a transfer or console it accepted, sent before any
#: data moves
#: (``Http.http_200_ok``: no length, the connection closes at the end).
_STARTED = (
    b'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n'
    b'Cache-Control: no-cache, no-store\r\n\r\n'
)
#: What a guest's VNC server says first (RFB protocol 3.8).
RFB_GREETING = b'RFB 003.008\n'


class XapiServer(http.server.ThreadingHTTPServer):
    """The HTTP server of one simulated host on its own address."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        host,
        dispatcher,
        port: int,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.sim_host = host
        self.dispatcher = dispatcher
        self.tls_context = tls_context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((host.address, port), XapiRequestHandler)
        self.thread: threading.Thread | None = None

    def get_request(self):
        """Accept; TLS is negotiated later, in the connection's thread."""
        sock, address = super().get_request()
        if self.tls_context is not None:
            sock = self.tls_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def handle_error(self, request, client_address) -> None:
        """A client that went away is no error worth a traceback."""
        LOG.debug(
            'connection from %s ended abruptly', client_address, exc_info=True
        )

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self.serve_forever,
            kwargs={'poll_interval': 0.05},
            name='xapi-sim-%s:%d'
            % (self.sim_host.address, self.server_address[1]),
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        """Stop listening and cut every open connection."""
        self.shutdown()
        self.server_close()
        with self.connections_lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.connections.clear()
        if self.thread is not None:
            self.thread.join(timeout=5)


class _Headers(dict):
    """Request headers by lower-case name, looked up in any case."""

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class XapiRequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'xapi-sim'
    sys_version = ''
    # Headers and body go out in separate writes: without TCP_NODELAY,
    # Nagle's algorithm and delayed ACKs add 40 ms to every call.
    disable_nagle_algorithm = True

    def parse_request(self) -> bool:
        """The request line and headers, without the email package.

        The standard library parses headers with :mod:`email`, which costs
        more than serving a XenAPI call; requests of any unusual shape go
        to it still.
        """
        words = self.raw_requestline.decode('iso-8859-1').split()
        if len(words) != 3 or words[2] not in ('HTTP/1.1', 'HTTP/1.0'):
            return super().parse_request()
        self.requestline = ' '.join(words)
        self.command, self.path, self.request_version = words
        headers = _Headers()
        for _ in range(100):
            line = self.rfile.readline(65537)
            if line in (b'\r\n', b'\n', b''):
                break
            name, _, value = line.decode('iso-8859-1').partition(':')
            headers[name.strip().lower()] = value.strip()
        else:
            self.send_error(431, 'Too many headers')
            return False
        self.headers = headers
        connection = headers.get('Connection', '').lower()
        self.close_connection = connection == 'close' or (
            words[2] == 'HTTP/1.0' and connection != 'keep-alive'
        )
        if headers.get('Expect', '').lower() == '100-continue':
            return self.handle_expect_100()
        return True

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # A client that never finishes its handshake costs a thread
            # for this long, no more.
            self.request.settimeout(HANDSHAKE_TIMEOUT)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if LOG.isEnabledFor(logging.DEBUG):
            LOG.debug('%s %s', self.address_string(), format % args)

    # -- RPC -----------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        body = self._read_body()
        if body is None:
            return
        if path in ('/', '/RPC2'):
            self._xmlrpc(body)
        elif path == '/jsonrpc':
            self._jsonrpc(body)
        else:
            self._plain(404, 'no such endpoint: %s' % path)

    def _xmlrpc(self, body: bytes) -> None:
        try:
            params, method = xmlrpc.client.loads(body)
        except Exception as exc:  # noqa: BLE001 (any parse failure)
            self._plain(500, 'Xmlrpc.Parse_error: %s' % exc)
            return
        if method is None:
            self._plain(500, 'Xmlrpc.Parse_error: no methodName')
            return
        ok, value = self.server.dispatcher.call(
            self.server.sim_host, method, params, codec.XMLRPC
        )
        if ok:
            envelope = {'Status': 'Success', 'Value': value}
        else:
            envelope = {'Status': 'Failure', 'ErrorDescription': value}
        self._send(200, codec.xmlrpc_response(envelope), 'text/xml')

    def _jsonrpc(self, body: bytes) -> None:
        try:
            request = json.loads(body)
            method = request['method']
            params = request.get('params', [])
            call_id = request['id']
            if not isinstance(method, str) or not isinstance(params, list):
                raise ValueError('method or params of the wrong type')
        except Exception as exc:  # noqa: BLE001 (any malformed request)
            self._plain(500, 'Jsonrpc.Malformed_method_request(%s)' % exc)
            return
        version2 = request.get('jsonrpc') == '2.0'
        ok, value = self.server.dispatcher.call(
            self.server.sim_host, method, params, codec.JSONRPC
        )
        if version2:
            reply = {'jsonrpc': '2.0', 'id': call_id}
            if ok:
                reply['result'] = value
            else:
                reply['error'] = {
                    'code': 1,
                    'message': value[0],
                    'data': value[1:],
                }
        elif ok:
            reply = {'result': value, 'error': None, 'id': call_id}
        else:
            reply = {'result': None, 'error': value, 'id': call_id}
        self._send(200, json.dumps(reply).encode(), 'application/json')

    # -- disks ---------------------------------------------------------

    def do_PUT(self) -> None:  # noqa: N802
        """``import_raw_vdi`` as xapi runs it.

        xen-api ocaml/xapi/import_raw_vdi.ml: the session, VDI and SR are
        checked first (``check_sr_availability`` redirects to a host with
        the SR, without reading the body); then ``localhost_handler``
        answers ``200`` *before* receiving the data, so whatever goes
        wrong after that is recorded only on the task, and the connection
        is closed.
        """
        url = urllib.parse.urlsplit(self.path)
        if url.path != '/import_raw_vdi':
            self._read_body()
            self._plain(404, 'no such endpoint: %s' % url.path)
            return
        query = dict(urllib.parse.parse_qsl(url.query))
        # Whatever happens, the body is never read past a failure: xapi
        # closes the connection.
        self.close_connection = True
        transfer = self._transfer(query, 'import', url)
        if transfer is None:
            return
        ctx, vdi, path, size, fmt = transfer
        self.wfile.write(_STARTED)
        self.wfile.flush()
        length = self.headers.get('Content-Length')
        length = int(length) if length is not None else None
        try:
            with open(path, 'r+b') as disk:
                if fmt == 'vhd':
                    vhd.import_stream(
                        self._body_reader(length), length, disk.fileno(), size
                    )
                else:
                    self._import_raw(disk.fileno(), length, size, vdi)
        except vhd.PrematureEof:
            self._finish_transfer(
                ctx, XapiFailure('IMPORT_ERROR_PREMATURE_EOF'), None
            )
            return
        except vhd.VhdError as exc:
            self._finish_transfer(ctx, XapiFailure('IMPORT_ERROR', exc), None)
            return
        except XapiFailure as failure:
            self._finish_transfer(ctx, failure, None)
            return
        except OSError:
            self._finish_transfer(
                ctx, XapiFailure('IMPORT_ERROR_PREMATURE_EOF'), None
            )
            return
        self._finish_transfer(ctx, None, None)

    def _import_raw(self, fd: int, length, size: int, vdi: str) -> None:
        read = self._body_reader(length)
        offset = 0
        while True:
            chunk = read(disks.CHUNK)
            if not chunk:
                break
            if offset + len(chunk) > size:
                self._drain(read)
                raise XapiFailure('VDI_TOO_SMALL', vdi, offset + len(chunk))
            disks.write_at(fd, offset, chunk)
            offset += len(chunk)
        if length is not None and offset < length:
            raise XapiFailure('IMPORT_ERROR_PREMATURE_EOF')

    # -- consoles ------------------------------------------------------

    def do_CONNECT(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        if url.path != '/console':
            self._plain(404, 'no such endpoint: %s' % url.path)
            return
        self._console(dict(urllib.parse.parse_qsl(url.query)))

    def _console(self, query: dict) -> None:
        """A VM's VNC console, as xapi serves it on the VM's own host.

        xen-api ocaml/xapi/console.ml (``handler``): the request runs in
        ``Xapi_http.with_context``, so no valid ``session_id`` is 401;
        ``check_vm_is_running_here`` answers 404 for a VM that does not
        run on the answering host; otherwise 200 and the socket is
        proxied to the VM's VNC server, which speaks first (RFB).
        """
        host = self.server.sim_host
        store = host.pool.store
        with store.lock:
            if query.get('session_id', '') not in store.tables['session']:
                self._plain(401, 'Unauthorised')
                return
            vm_ref = query.get('ref', '')
            if not store.exists('VM', vm_ref):
                vm_ref = store.find_uuid('VM', query.get('uuid', ''))
            vm = store.get('VM', vm_ref) if vm_ref else None
            here = (
                vm is not None
                and vm['power_state'] == 'Running'
                and vm['resident_on'] == host.host_ref
            )
        if not here:
            self._plain(404, 'VM not running on this host')
            return
        self.close_connection = True
        self.wfile.write(_STARTED + RFB_GREETING)
        self.wfile.flush()
        # The guest's VNC server would answer the client's version; the
        # simulator has no framebuffer, so it waits for the client to go.
        try:
            while self.rfile.read1(4096):
                pass
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        if url.path == '/console':
            self._console(dict(urllib.parse.parse_qsl(url.query)))
            return
        if url.path != '/export_raw_vdi':
            self._plain(404, 'no such endpoint: %s' % url.path)
            return
        query = dict(urllib.parse.parse_qsl(url.query))
        transfer = self._transfer(query, 'export', url)
        if transfer is None:
            return
        ctx, _vdi, path, size, fmt = transfer
        if fmt == 'vhd':
            export = vhd.Export(path, size)
            length, chunks = export.length, iter(export)
        else:
            length, chunks = size, disks.read_raw(path, size)
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(length))
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
        except OSError:
            self.close_connection = True
            self._finish_transfer(ctx, XapiFailure('VDI_COPY_FAILED'), None)
            return
        self._finish_transfer(ctx, None, None)

    def _transfer(self, query: dict, direction: str, url):
        """Validate a transfer: ``(ctx, vdi, path, size, format)`` or None.

        None when it was answered already: refused, or redirected to a
        host that has the VDI's SR plugged (xen-api
        ocaml/xapi/importexport.ml, ``return_302_redirect``).
        """
        host = self.server.sim_host
        pool = host.pool
        store = pool.store
        fmt = query.get('format', 'raw')
        # Faults see HTTP handlers by name, as XenAPI methods.
        try:
            latency = host.topology.faults.before_call(
                host, '%s_raw_vdi' % direction
            )
        except XapiFailure as failure:
            self._plain(500, ' '.join([failure.code, *failure.args_]))
            return None
        if latency:
            time.sleep(latency)
        with store.lock:
            session = query.get('session_id', '')
            if session not in store.tables['session']:
                self._plain(401, 'session_id missing or invalid')
                return None
            ctx = CallContext(
                topology=host.topology,
                endpoint=host,
                pool=pool,
                method='VDI.%s_raw' % direction,
                protocol=codec.XMLRPC,
                session=session,
                task=query.get('task_id') or None,
            )
            if ctx.task is not None and not store.exists('task', ctx.task):
                ctx.task = None
            vdi = query.get('vdi', '')
            if not store.exists('VDI', vdi):
                self._finish_transfer(
                    ctx, XapiFailure('HANDLE_INVALID', 'VDI', vdi), 404
                )
                return None
            if fmt not in ('raw', 'vhd'):
                self._finish_transfer(
                    ctx,
                    XapiFailure(
                        'VALUE_NOT_SUPPORTED',
                        'format',
                        fmt,
                        'only raw and vhd are supported',
                    ),
                    400,
                )
                return None
            record = store.get('VDI', vdi)
            if not self._sr_here(store, record['SR'], ctx, url):
                return None
            sr_uuid = store.get('SR', record['SR'])['uuid']
            path = ctx.disks.path(sr_uuid, record['uuid'])
            if not path.exists():
                ctx.disks.create(
                    sr_uuid, record['uuid'], record['virtual_size']
                )
            return ctx, vdi, path, record['virtual_size'], fmt

    def _sr_here(self, store, sr: str, ctx, url) -> bool:
        """Whether this host serves the SR's data; if not, redirect."""
        host = self.server.sim_host
        plugged = [
            store.get('PBD', pbd)['host']
            for pbd in store.get('SR', sr)['PBDs']
            if store.get('PBD', pbd)['currently_attached']
        ]
        if host.host_ref in plugged:
            return True
        if not plugged:
            self._finish_transfer(ctx, XapiFailure('SR_HAS_NO_PBDS', sr), 500)
            return False
        address = store.get('host', plugged[0])['address']
        target = host.topology.host_by_address(address)
        base = target.url if target is not None else 'https://' + address
        location = '%s%s?%s' % (base, url.path, url.query)
        self.send_response(302)
        self.send_header('Location', location)
        self.send_header('Content-Length', '0')
        self.end_headers()
        return False

    def _finish_transfer(self, ctx, failure, status) -> None:
        if ctx.task is not None:
            with ctx.store.lock:
                if failure is None:
                    tasks.complete(ctx, ctx.task, '')
                else:
                    tasks.fail(ctx, ctx.task, failure)
        if status is None:
            return
        if failure is None:
            self._send(200, b'', 'text/plain')
        else:
            self._plain(status, ' '.join(failure.description))

    # -- plumbing ------------------------------------------------------

    def _read_body(self) -> bytes | None:
        length = self.headers.get('Content-Length')
        if length is not None:
            return self.rfile.read(int(length))
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            return b''.join(iter(lambda: self._chunk(), b''))
        return b''

    def _body_reader(self, length: int | None):
        """A ``read(n)`` over the request body, whatever its framing."""
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            buffered = bytearray()

            def read_chunked(count: int) -> bytes:
                while len(buffered) < count:
                    chunk = self._chunk()
                    if not chunk:
                        break
                    buffered.extend(chunk)
                data = bytes(buffered[:count])
                del buffered[:count]
                return data

            return read_chunked
        if length is None:
            self.close_connection = True
            return (
                self.rfile.read1
                if hasattr(self.rfile, 'read1')
                else (self.rfile.read)
            )
        remaining = [length]

        def read(count: int) -> bytes:
            count = min(count, remaining[0])
            if count <= 0:
                return b''
            data = self.rfile.read(count)
            remaining[0] -= len(data)
            return data

        return read

    def _chunk(self) -> bytes:
        line = self.rfile.readline(65537)
        size = int(line.split(b';', 1)[0].strip() or b'0', 16)
        if size == 0:
            while self.rfile.readline(65537) not in (b'\r\n', b'\n', b''):
                pass
            return b''
        data = self.rfile.read(size)
        self.rfile.readline(65537)
        return data

    @staticmethod
    def _drain(read) -> None:
        while read(disks.CHUNK):
            pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-cache, no-store')
        # Headers and body in one write: one wake-up of the client.
        self._headers_buffer.append(b'\r\n' + body)
        self.flush_headers()

    def _plain(self, status: int, text: str) -> None:
        self._send(status, (text + os.linesep).encode(), 'text/plain')
