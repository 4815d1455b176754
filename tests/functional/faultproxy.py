"""A TCP proxy of ours that breaks connections on demand, for fault tests.

It sits between a driver and a simulator on loopback and forwards bytes
both ways (TLS passes through untouched).  A test can:

* ``cut()``: close every open connection (a network blip, a vCenter
  restart as its clients see it);
* ``down()`` / ``up()``: stop accepting (connections refused) and accept
  again, as while a vCenter restarts;
* ``latency(seconds)``: delay every chunk forwarded;
* ``cut_after(n)``: cut every connection once one connection has sent
  more than ``n`` bytes towards the server (an upload in its middle).
"""

from __future__ import annotations

import socket
import threading
import time


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._delay = 0.0
        self._cut_after: int | None = None
        self.cuts = 0
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self.host = '127.0.0.1'
        self.port = 0
        self.up()

    # -- faults ------------------------------------------------------------

    def cut(self) -> None:
        """Close every open connection, both sides."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self.cut()

    def up(self) -> None:
        """Accept again, on the same port."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(
            target=self._accept, args=(listener,), daemon=True
        ).start()

    def latency(self, seconds: float) -> None:
        self._delay = seconds

    def cut_after(self, sent: int | None) -> None:
        """Cut everything once a connection sent more than ``sent`` bytes
        upstream (once; None: never)."""
        self._cut_after = sent

    def stop(self) -> None:
        self._stopped.set()
        self.down()

    # -- forwarding ----------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                upstream = socket.create_connection(self._target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump,
                    args=(source, sink, source is client),
                    daemon=True,
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, upstream: bool
    ) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self._delay:
                    time.sleep(self._delay)
                sink.sendall(data)
                sent += len(data)
                limit = self._cut_after
                if upstream and limit is not None and sent > limit:
                    self._cut_after = None
                    self.cuts += 1
                    self.cut()
                    break
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
