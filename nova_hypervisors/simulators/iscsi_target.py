"""A simulated iSCSI storage array: portals, targets, CHAP and LUNs.

It stands in for the array behind a Cinder iSCSI backend.  The simulated
XenServer hosts reach it the way a real host's ``iscsiadm`` reaches a
portal: they open a TCP connection to ``<address>:<port>`` and log in to a
target IQN, with CHAP when the target asks for it.  An unreachable portal,
an unknown IQN and wrong CHAP credentials each fail there, as they do on a
real host.

What is simulated, and where it differs from a real array:

* The control path is a real TCP exchange, one JSON line each way (not
  iSCSI PDUs): ``{"op": "login", "iqn": ..., "chap": [user, secret]}``
  answered by ``{"ok": true, "luns": [...]}`` or
  ``{"ok": false, "error": "no-target" | "auth"}``; and a SendTargets
  discovery, ``{"op": "discover"}``, answered with every target's IQN.
* The data path is shared files: each LUN is a sparse file under the
  array's directory, and the login answer names it.  A LUN's bytes live
  on the array, so they outlive every attach, detach and SR forget, and
  another host or VM reads what one wrote.
* A LUN's SCSI id is an NAA-6 identifier as ``scsi_id -g`` prints it
  (``3`` + 32 hex digits; ``6001405`` is the vendor prefix of Linux's LIO
  target), fixed when the LUN is created.

The array listens on a loopback address only.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import os
from pathlib import Path
import shutil
import socket
import socketserver
import threading
import uuid

#: An NAA-6 id as ``scsi_id`` prints it: '3', then 32 hex digits.
SCSI_ID_PREFIX = '36001405'
MAX_LINE = 1 << 16


def new_scsi_id() -> str:
    return SCSI_ID_PREFIX + uuid.uuid4().hex[:25]


class StorageArray:
    """Targets with LUNs, reachable over one loopback portal."""

    def __init__(
        self,
        root: str | os.PathLike,
        address: str = '127.0.0.1',
        port=0,
        admin_secret: str | None = None,
    ) -> None:
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError('the array listens on loopback only')
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.address = address
        self._port = port
        self._admin_secret = admin_secret
        self._lock = threading.Lock()
        self._state_file = self.root / 'targets.json'
        self._targets: dict[str, dict] = {}
        if self._state_file.exists():
            self._targets = json.loads(self._state_file.read_text())
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        #: Logins seen, newest last: (iqn, CHAP user or None, accepted).
        self.logins: list[tuple[str, str | None, bool]] = []

    # -- the portal ------------------------------------------------------

    def start(self) -> StorageArray:
        array = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(MAX_LINE)
                try:
                    request = json.loads(line)
                    reply = array._answer(request)
                except (ValueError, TypeError, KeyError):
                    reply = {'ok': False, 'error': 'protocol'}
                self.wfile.write(json.dumps(reply).encode() + b'\n')

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((self.address, self._port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name='iscsi-array',
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError('the array is not started')
        return self._server.server_address[1]

    @property
    def portal(self) -> str:
        """``<address>:<port>``, as Cinder's ``target_portal`` gives it."""
        return '%s:%d' % (self.address, self.port)

    def _answer(self, request: dict) -> dict:
        if request.get('op') == 'admin':
            return self._admin(request)
        if request.get('op') == 'discover':
            # SendTargets discovery: every target's name, no auth.
            with self._lock:
                return {'ok': True, 'targets': sorted(self._targets)}
        if request.get('op') != 'login':
            return {'ok': False, 'error': 'protocol'}
        iqn = str(request['iqn'])
        chap = request.get('chap') or None
        with self._lock:
            target = self._targets.get(iqn)
            if target is None:
                self.logins.append((iqn, chap and chap[0], False))
                return {'ok': False, 'error': 'no-target'}
            if target['chap'] is not None and list(target['chap']) != list(
                chap or []
            ):
                self.logins.append((iqn, chap and chap[0], False))
                return {'ok': False, 'error': 'auth'}
            self.logins.append((iqn, chap and chap[0], True))
            return {
                'ok': True,
                'luns': [
                    dict(lun, lun=n, path=str(self._path(iqn, n)))
                    for n, lun in sorted(
                        (int(k), v) for k, v in target['luns'].items()
                    )
                ],
            }

    # -- administration (what Cinder's driver does on the array) ---------

    def _admin(self, request: dict) -> dict:
        """The management interface a storage driver uses, over the same
        TCP port: allowed with the array's admin secret only."""
        secret = self._admin_secret
        if not secret or not hmac.compare_digest(
            str(request.get('secret', '')), secret
        ):
            return {'ok': False, 'error': 'auth'}
        action, iqn = request.get('action'), str(request.get('iqn', ''))
        try:
            if action == 'add_target':
                chap = request.get('chap')
                self.add_target(iqn, chap=tuple(chap) if chap else None)
                return {'ok': True}
            if action == 'create_lun':
                with self._lock:
                    used = {int(n) for n in self._targets[iqn]['luns']}
                lun = next(n for n in range(1, len(used) + 2) if n not in used)
                scsi_id = self.create_lun(iqn, lun, int(request['size']))
                return {'ok': True, 'lun': lun, 'scsi_id': scsi_id}
            if action == 'extend_lun':
                self.extend_lun(iqn, int(request['lun']), int(request['size']))
                return {'ok': True}
            if action == 'delete_lun':
                self.delete_lun(iqn, int(request['lun']))
                return {'ok': True}
            if action == 'lun_path':
                with self._lock:
                    if (
                        str(int(request['lun']))
                        not in self._targets[iqn]['luns']
                    ):
                        raise KeyError(request['lun'])
                return {
                    'ok': True,
                    'path': str(self._path(iqn, int(request['lun']))),
                }
            if action == 'stats':
                with self._lock:
                    luns = [
                        lun
                        for target in self._targets.values()
                        for lun in target['luns'].values()
                    ]
                usage = shutil.disk_usage(self.root)
                return {
                    'ok': True,
                    'allocated': sum(lun['size'] for lun in luns),
                    'luns': len(luns),
                    'total': usage.total,
                    'free': usage.free,
                }
        except (KeyError, ValueError) as exc:
            return {'ok': False, 'error': 'invalid', 'detail': str(exc)}
        return {'ok': False, 'error': 'protocol'}

    def add_target(
        self, iqn: str, chap: tuple[str, str] | None = None
    ) -> None:
        with self._lock:
            self._targets.setdefault(
                iqn, {'chap': list(chap) if chap else None, 'luns': {}}
            )
            self._save()

    def remove_target(self, iqn: str) -> None:
        with self._lock:
            target = self._targets.pop(iqn, None)
            if target is not None:
                for number in target['luns']:
                    with contextlib.suppress(FileNotFoundError):
                        self._path(iqn, int(number)).unlink()
            self._save()

    def create_lun(self, iqn: str, lun: int, size: int) -> str:
        """A new sparse LUN of ``size`` bytes; returns its SCSI id."""
        with self._lock:
            luns = self._targets[iqn]['luns']
            if str(lun) in luns:
                raise ValueError('LUN %d of %s exists' % (lun, iqn))
            scsi_id = new_scsi_id()
            path = self._path(iqn, lun)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, 'wb') as disk:
                disk.truncate(size)
            luns[str(lun)] = {'scsi_id': scsi_id, 'size': size}
            self._save()
            return scsi_id

    def extend_lun(self, iqn: str, lun: int, size: int) -> None:
        with self._lock:
            record = self._targets[iqn]['luns'][str(lun)]
            if size < record['size']:
                raise ValueError('LUNs do not shrink')
            with open(self._path(iqn, lun), 'r+b') as disk:
                disk.truncate(size)
            record['size'] = size
            self._save()

    def delete_lun(self, iqn: str, lun: int) -> None:
        with self._lock:
            self._targets[iqn]['luns'].pop(str(lun), None)
            with contextlib.suppress(FileNotFoundError):
                self._path(iqn, lun).unlink()
            self._save()

    def lun(self, iqn: str, lun: int) -> dict:
        with self._lock:
            return dict(self._targets[iqn]['luns'][str(lun)])

    def read(self, iqn: str, lun: int, length: int, offset: int = 0):
        with open(self._path(iqn, lun), 'rb') as disk:
            disk.seek(offset)
            return disk.read(length)

    def write(self, iqn: str, lun: int, data: bytes, offset: int = 0):
        with open(self._path(iqn, lun), 'r+b') as disk:
            disk.seek(offset)
            disk.write(data)

    def _path(self, iqn: str, lun: int) -> Path:
        safe = iqn.replace(':', '_').replace('/', '_')
        return self.root / safe / ('lun-%d.img' % lun)

    def _save(self) -> None:
        tmp = self._state_file.with_suffix('.tmp')
        tmp.write_text(json.dumps(self._targets))
        tmp.replace(self._state_file)


def login(
    address: str,
    port: int,
    iqn: str,
    chap: tuple[str, str] | None,
    timeout: float = 5.0,
) -> dict:
    """One login exchange with a portal, as a host's initiator does it.

    Raises ``OSError`` when the portal cannot be reached.
    """
    with socket.create_connection((address, port), timeout=timeout) as conn:
        request = {'op': 'login', 'iqn': iqn, 'chap': list(chap or [])}
        conn.sendall(json.dumps(request).encode() + b'\n')
        reader = conn.makefile('rb')
        line = reader.readline(MAX_LINE)
    if not line:
        raise ConnectionError('the portal closed the connection')
    return json.loads(line)


def admin(
    address: str,
    port: int,
    secret: str,
    action: str,
    timeout: float = 10.0,
    **arguments,
) -> dict:
    """One management request to an array; raises ``ArrayError``."""
    with socket.create_connection((address, port), timeout=timeout) as conn:
        request = dict(arguments, op='admin', action=action, secret=secret)
        conn.sendall(json.dumps(request).encode() + b'\n')
        line = conn.makefile('rb').readline(MAX_LINE)
    answer = json.loads(line) if line else {'ok': False, 'error': 'closed'}
    if not answer.get('ok'):
        raise ArrayError(
            '%s refused by the array: %s %s'
            % (action, answer.get('error'), answer.get('detail', ''))
        )
    return answer


class ArrayError(Exception):
    """The array refused a management request."""
