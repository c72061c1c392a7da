"""SIP over a secure WebSocket (RFC 7118), asked the way a browser asks: standard library only.

One check is one TLS connection to ``host:port`` (the certificate checked against ``host``,
as a browser checks the ``wss://`` host), one WebSocket upgrade (RFC 6455) on ``/ws`` asking
for the subprotocol ``sip``, then one OPTIONS per name, each in a text frame, each answered
in a text frame. The From host is the page's (``webrtc.<domain>``), so Asterisk identifies
the probe as the browsers' guest endpoint. Read-only: OPTIONS creates no dialog.

Framing and message building are pure (``frame``, ``build_options``); ``check_wss`` does the
I/O, every read of it bounded by the check's one deadline (``_Reader``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from sipctl.providers.sip_probe import SipParseError, SipResponse, parse_response

WS_PATH = "/ws"
SUBPROTOCOL = "sip"
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_OP_TEXT, _OP_CLOSE, _OP_PING, _OP_PONG = 0x1, 0x8, 0x9, 0xA
MAX_FRAME = 1 << 20
FROM_USER = "sipctl-verify"


@dataclass
class WssResult:
    """What one WSS check found. ``error`` is None when the upgrade worked."""

    host: str
    address: str
    port: int
    error: str | None = None
    error_kind: str | None = None  # refused | timeout | certificate | tls | upgrade | protocol
    subprotocol: str | None = None
    statuses: dict[str, int | None] = field(default_factory=dict)  # name -> final status

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "address": self.address,
            "port": self.port,
            "error": self.error,
            "error_kind": self.error_kind,
            "subprotocol": self.subprotocol,
            "statuses": dict(self.statuses),
        }


# --- pure parts -------------------------------------------------------------------------------


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key`` (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


def upgrade_request(host: str, port: int, key: str) -> bytes:
    lines = [
        f"GET {WS_PATH} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}",
        f"Origin: https://{host}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(payload: bytes, opcode: int = _OP_TEXT) -> bytes:
    """One final, masked client frame (clients must mask: RFC 6455 5.3)."""
    mask = secrets.token_bytes(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def build_options(name: str, domain: str, from_host: str) -> tuple[bytes, str]:
    """An OPTIONS for ``sip:<name>@<domain>`` over WSS, and its Call-ID."""
    call_id = secrets.token_hex(8)
    local = f"{secrets.token_hex(4)}.invalid"
    lines = [
        f"OPTIONS sip:{name}@{domain} SIP/2.0",
        f"Via: SIP/2.0/WSS {local};branch=z9hG4bK{secrets.token_hex(8)}",
        "Max-Forwards: 70",
        f"From: <sip:{FROM_USER}@{from_host}>;tag={secrets.token_hex(4)}",
        f"To: <sip:{name}@{domain}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:{FROM_USER}@{local};transport=ws>",
        "User-Agent: sipctl-verify",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), call_id


# --- I/O ----------------------------------------------------------------------------------------


class _Closed(Exception):
    pass


class _Reader:
    """Reads from ``sock`` until ``deadline`` (monotonic) and no longer: a server that sends
    a byte at a time (each read within a socket timeout, all of them far beyond) or an
    answer without end cannot hold a check past its timeout."""

    def __init__(self, sock: ssl.SSLSocket, deadline: float) -> None:
        self._sock = sock
        self.deadline = deadline

    def recv(self, size: int) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)
        chunk = self._sock.recv(size)
        if not chunk:
            raise _Closed("the server closed the connection")
        return chunk

    def exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            data += self.recv(size - len(data))
        return data


def read_frame(reader: _Reader) -> tuple[int, bytes]:
    """(opcode, payload) of the next whole message (fragments joined, at most MAX_FRAME
    bytes in all: a SIP message, not an endless stream)."""
    payload = b""
    while True:
        first, second = reader.exact(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", reader.exact(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", reader.exact(8))
        if len(payload) + size > MAX_FRAME:
            raise _Closed(
                f"a message of more than {len(payload) + size} bytes (in frames) is more than "
                f"a SIP message ({MAX_FRAME} bytes at most)"
            )
        mask = reader.exact(4) if second & 0x80 else b""
        data = reader.exact(size)
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        payload += data
        if first & 0x80:
            return first & 0x0F, payload


def _read_head(reader: _Reader) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            data += reader.recv(4096)
        except _Closed:
            raise _Closed("the server closed the connection during the upgrade") from None
        if len(data) > 65536:
            raise _Closed("the upgrade answer has no end")
    return data


def check_wss(
    host: str,
    address: str,
    port: int,
    names: list[str],
    domain: str,
    from_host: str,
    *,
    timeout: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
) -> WssResult:
    """Upgrade to WebSocket at ``address:port`` (TLS checked for ``host``), OPTIONS each name."""
    result = WssResult(host, address, port)
    context = ssl_context or ssl.create_default_context()
    deadline = time.monotonic() + timeout
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        return _fail(result, "refused", f"nothing listens on {address}:{port} (TCP)")
    except TimeoutError:
        return _fail(result, "timeout", f"no TCP answer from {address}:{port} in {timeout:g} s")
    except OSError as exc:
        return _fail(result, "network", f"cannot connect to {address}:{port}: {exc.strerror}")
    try:
        with context.wrap_socket(raw, server_hostname=host) as sock:
            return _talk(sock, _Reader(sock, deadline), result, names, domain, from_host)
    except ssl.SSLCertVerificationError as exc:
        return _fail(result, "certificate", f"the certificate is not valid for {host}: "
                     f"{exc.verify_message}")  # fmt: skip
    except ssl.SSLError as exc:
        return _fail(result, "tls", f"TLS failed: {exc.reason or exc}")
    except TimeoutError:
        return _fail(result, "timeout", f"no answer within {timeout:g} s")
    except (_Closed, OSError) as exc:
        return _fail(result, "protocol", str(exc))
    finally:
        raw.close()


def _talk(
    sock: ssl.SSLSocket,
    reader: _Reader,
    result: WssResult,
    names: list[str],
    domain: str,
    from_host: str,
) -> WssResult:
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    sock.sendall(upgrade_request(result.host, result.port, key))
    head = _read_head(reader).split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)
    }
    if " 101 " not in f"{status_line} ":
        return _fail(result, "upgrade", f"GET {WS_PATH} was answered '{status_line}', not 101")
    if headers.get("sec-websocket-accept") != accept_key(key):
        return _fail(result, "upgrade", "the server's Sec-WebSocket-Accept is wrong")
    result.subprotocol = headers.get("sec-websocket-protocol")
    if result.subprotocol != SUBPROTOCOL:
        return _fail(result, "upgrade", f"the server chose subprotocol {result.subprotocol!r}")
    for name in names:
        request, call_id = build_options(name, domain, from_host)
        sock.sendall(frame(request))
        result.statuses[name] = _final_status(sock, reader, call_id)
    sock.sendall(frame(struct.pack("!H", 1000), _OP_CLOSE))
    return result


def _final_status(sock: ssl.SSLSocket, reader: _Reader, call_id: str) -> int | None:
    while time.monotonic() < reader.deadline:
        opcode, payload = read_frame(reader)
        if opcode == _OP_PING:
            sock.sendall(frame(payload, _OP_PONG))
            continue
        if opcode == _OP_CLOSE:
            raise _Closed("the server closed the WebSocket")
        try:
            response: SipResponse = parse_response(payload)
        except SipParseError:
            continue  # a request of the server's own (none is expected): not our answer
        if response.header("call-id") == call_id and response.status >= 200:
            return response.status
    return None


def _fail(result: WssResult, kind: str, message: str) -> WssResult:
    result.error_kind, result.error = kind, message
    return result
