"""The certificate a TLS listener serves (SIPS, WSS), fetched without trusting it."""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Served:
    """What a TLS port answered: the leaf's DER, or why there was none."""

    der: bytes | None
    problem: str | None = None
    refused: bool = False  # nothing listens there


def fetch_served(host: str, port: int, server_name: str, timeout: float = 5.0) -> Served:
    """One TLS handshake with ``host:port`` (SNI ``server_name``); the peer's certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we compare the certificate, not trust it
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except ConnectionRefusedError:
        return Served(None, f"nothing listens on {host} port {port}", refused=True)
    except (OSError, ssl.SSLError) as exc:
        return Served(None, f"no TLS handshake with {host} port {port}: {exc}")
    if not der:
        return Served(None, f"{host} port {port} showed no certificate")
    return Served(der)


def wait_served(
    host: str, port: int, server_name: str, wanted: bytes, timeout: float = 10.0
) -> Served:
    """Fetch until ``wanted`` is served or ``timeout`` passed (a reload restarts the listener
    a moment later, and may close it for that moment); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        served = fetch_served(host, port, server_name)
        if served.der == wanted or time.monotonic() > deadline:
            return served
        time.sleep(0.2)
