"""Knock on a port from outside: does anything answer? Read-only, one attempt each.

TCP: a connect (SYN; when accepted, the handshake's ACK and our FIN: 3 packets), closed at
once. UDP: one datagram a service of that port answers (an IAX2 POKE on 4569, an empty
datagram elsewhere); an answer means open, an ICMP port-unreachable or silence does not.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time

_IAX2_POKE = struct.pack("!HHIBBBB", 0x8000 | 1, 0, 0, 0, 0, 6, 0x1E)


def knock_tcp(address: str, port: int, timeout: float) -> tuple[bool, int]:
    """(open, packets sent)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except OSError:
            return False, 1
        return True, 3


def knock_udp(address: str, port: int, timeout: float) -> tuple[bool, int]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    payload = _IAX2_POKE if port == 4569 else b"\r\n\r\n"
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, port))
            sock.send(payload)
        except OSError:
            return False, 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                data = sock.recv(2048)
            except (TimeoutError, ConnectionRefusedError):
                return False, 1
            except OSError:
                return False, 1
            if data:
                return True, 1
        with contextlib.suppress(OSError):
            sock.close()
        return False, 1
