"""verify's WebSocket check against a server that answers as no Asterisk does: one that
trickles its upgrade answer a byte at a time, one that sends an endless message in
fragments, one that trickles a frame, one that refuses the upgrade, one that upgrades without
SIP. Each check ends within its timeout (plus a little) with a named failure, holding no more
than a SIP message's worth of what it got.

The server is Python's own TLS (the test CA's certificate) on loopback, driven by the case.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from fixtures.certs import WSS_HOST, ca_file, server_certificate
from fixtures.tcp_server import tcp_server

from sipctl.errors import SipctlError
from sipctl.providers.wss_probe import MAX_MESSAGE, check_wss

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 2.0

Behaviour = Callable[[ssl.SSLSocket, threading.Event], None]


def _upgraded(conn: ssl.SSLSocket, protocol: bytes = b"Sec-WebSocket-Protocol: sip\r\n") -> None:
    """Read the client's upgrade request and accept it (with ``protocol``'s header line)."""
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(4096)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID.encode()).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n" + protocol + b"\r\n"
    )


def trickled_upgrade(conn: ssl.SSLSocket, stop: threading.Event) -> None:
    """An upgrade answer that never ends, a byte every 0.2 s (each read waits less than the
    timeout, all of them far more)."""
    conn.recv(4096)
    while not stop.wait(0.2):
        conn.sendall(b"X")


def endless_fragments(conn: ssl.SSLSocket, stop: threading.Event) -> None:
    """After the upgrade, one text message in fragments of 64 KiB that never ends."""
    _upgraded(conn)
    chunk = b"\x01\x7f" + (65536).to_bytes(8, "big") + b"a" * 65536  # text, not final
    more = b"\x00\x7f" + (65536).to_bytes(8, "big") + b"a" * 65536  # continuation, not final
    conn.sendall(chunk)
    while not stop.is_set():
        conn.sendall(more)


def trickled_frame(conn: ssl.SSLSocket, stop: threading.Event) -> None:
    """After the upgrade, a frame of 1000 bytes sent a byte every 0.2 s."""
    _upgraded(conn)
    conn.sendall(b"\x81\x7e" + (1000).to_bytes(2, "big"))
    while not stop.wait(0.2):
        conn.sendall(b"a")


def refused_upgrade(conn: ssl.SSLSocket, stop: threading.Event) -> None:
    """A web server without the WebSocket: 404 to the upgrade."""
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    stop.wait(3)


def no_subprotocol(conn: ssl.SSLSocket, stop: threading.Event) -> None:
    """A WebSocket that does not speak SIP: the upgrade accepted without ``sip``."""
    _upgraded(conn, protocol=b"")
    stop.wait(3)


CASES: dict[str, tuple[Behaviour, str]] = {
    "an upgrade refused": (refused_upgrade, "upgrade"),
    "a WebSocket without SIP": (no_subprotocol, "upgrade"),
    "an upgrade answer trickled": (trickled_upgrade, "timeout"),
    "a message in endless fragments": (endless_fragments, "protocol"),
    "a frame trickled": (trickled_frame, "timeout"),
}


@pytest.fixture
def hostile_wss() -> Iterator[tuple[int, dict[str, Behaviour]]]:
    behaviour: dict[str, Behaviour] = {}
    cert, key = server_certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def serve(raw: socket.socket, stop: threading.Event) -> None:
        raw.settimeout(30)
        with context.wrap_socket(raw, server_side=True) as conn:
            behaviour["run"](conn, stop)

    with tcp_server(serve) as port:
        yield port, behaviour


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_websocket_server_cannot_hold_verify(
    case: str, hostile_wss: tuple[int, dict[str, Behaviour]]
) -> None:
    port, behaviour = hostile_wss
    behaviour["run"], kind = CASES[case]
    context = ssl.create_default_context(cafile=str(ca_file()))
    started = time.monotonic()
    result = check_wss(
        WSS_HOST, "127.0.0.1", port, ["director"], "mysite.ru", "webrtc.mysite.ru",
        timeout=TIMEOUT, ssl_context=context,
    )  # fmt: skip
    took = time.monotonic() - started
    assert took < TIMEOUT + 1.5, f"{case}: the check took {took:.1f} s"
    if kind == "upgrade":
        assert result.error_kind == "upgrade" and result.error is not None, result
        assert "404" in result.error or "subprotocol None" in result.error, result
    elif kind == "protocol":
        assert result.error_kind == "protocol" and result.error is not None, result
        assert f"{MAX_MESSAGE}" in result.error or "more than a SIP message" in result.error
    else:
        assert result.error_kind == "timeout" or result.statuses == {"director": None}, result


def test_without_the_wss_extra_verify_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("websockets", "websockets.sync.client", "websockets.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: ImportError
    with pytest.raises(SipctlError) as raised:
        check_wss(WSS_HOST, "127.0.0.1", 9, ["director"], "mysite.ru", "webrtc.mysite.ru")
    assert raised.value.hint == "pip install 'sipctl[wss]'"
    assert "transports.wss" in raised.value.message
