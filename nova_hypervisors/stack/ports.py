"""Listening ports: is one free, who holds it, what is still listening.

Read from /proc/net/tcp{,6} and /proc/<pid>/fd rather than by running ``ss``,
so a port conflict can name the process that holds the port and ``stack
down`` can prove that nothing of the stack still listens.
"""

import os
import pathlib
import socket

_LISTEN = '0A'


def accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening_sockets() -> dict[int, list[tuple[str, int]]]:
    """Socket inode -> [(address, port)] for every listening TCP socket."""
    found: dict[int, list[tuple[str, int]]] = {}
    for table, family in (('tcp', 4), ('tcp6', 6)):
        try:
            lines = pathlib.Path(f'/proc/net/{table}').read_text().splitlines()
        except OSError:
            continue
        for line in lines[1:]:
            fields = line.split()
            if fields[3] != _LISTEN:
                continue
            address_hex, port_hex = fields[1].split(':')
            address = _decode_address(address_hex, family)
            found.setdefault(int(fields[9]), []).append(
                (address, int(port_hex, 16))
            )
    return found


def _decode_address(hex_address: str, family: int) -> str:
    raw = bytes.fromhex(hex_address)
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # /proc prints IPv6 as four host-order 32-bit words.
    words = b''.join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listeners() -> list[tuple[str, int, int | None]]:
    """(address, port, pid or None) of every listening TCP socket."""
    sockets = listening_sockets()
    owners: dict[int, int] = {}
    for entry in os.scandir('/proc'):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.scandir(f'/proc/{entry.name}/fd')
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    target = os.readlink(fd.path)
                except OSError:
                    continue
                if target.startswith('socket:['):
                    inode = int(target[8:-1])
                    if inode in sockets:
                        owners.setdefault(inode, int(entry.name))
    return [
        (address, port, owners.get(inode))
        for inode, bound in sockets.items()
        for address, port in bound
    ]


def describe_pid(pid: int | None) -> str:
    if pid is None:
        return 'an unknown process'
    try:
        command = (
            pathlib.Path(f'/proc/{pid}/cmdline')
            .read_bytes()
            .replace(b'\0', b' ')
            .decode(errors='replace')
            .strip()
        )
    except OSError:
        command = '?'
    return f'PID {pid} ({command[:80]})'


def holder(port: int) -> str | None:
    """Who listens on ``port`` on loopback or all addresses, or None."""
    for address, bound_port, pid in listeners():
        if bound_port == port and (
            address.startswith('127.') or address in ('0.0.0.0', '::', '::1')
        ):
            return f'{address}:{port} held by {describe_pid(pid)}'
    return None


def can_bind(port: int, host: str = '127.0.0.1') -> bool:
    """True if we could listen on host:port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
