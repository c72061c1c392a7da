"""SIP over a secure WebSocket (RFC 7118), asked the way a browser asks.

One check is one TLS connection to ``host:port`` (the certificate checked against ``host``,
as a browser checks the ``wss://`` host), one WebSocket upgrade on ``/ws`` asking for the
subprotocol ``sip``, then one OPTIONS per name, each in a text message, each answered in a
text message. The From host is the page's (``webrtc.<domain>``), so Asterisk identifies the
probe as the browsers' guest endpoint. Read-only: OPTIONS creates no dialog.

The WebSocket itself (upgrade, framing, masking, pings, limits) is the ``websockets``
library's, installed with the extra ``sipctl[wss]`` and imported only when a check runs.
``build_options`` is pure; ``check_wss`` does the I/O, every step of it bounded by the
check's one deadline, and no message larger than a SIP message is read.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sipctl.errors import SipctlError
from sipctl.providers.sip_probe import SipParseError, SipResponse, parse_response

if TYPE_CHECKING:
    from websockets.frames import Close
    from websockets.sync.client import ClientConnection

WS_PATH = "/ws"
SUBPROTOCOL = "sip"
MAX_MESSAGE = 1 << 20  # a SIP message, not an endless stream
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


# --- I/O --------------------------------------------------------------------------------------


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
    try:  # the extra wss: imported when a check runs
        from websockets import exceptions as errors
        from websockets.sync.client import connect
        from websockets.typing import Origin, Subprotocol
    except ImportError:
        raise SipctlError(
            "checking the WebSocket (transports.wss) needs the WebSocket client library",
            hint="pip install 'sipctl[wss]'",
        ) from None
    result = WssResult(host, address, port)
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
        # the socket goes to the address sipctl resolved, never through a proxy of the
        # environment; the certificate and the Host header are the page's host
        with connect(
            f"wss://{host}:{port}{WS_PATH}",
            sock=raw,
            ssl=ssl_context or ssl.create_default_context(),
            server_hostname=host,
            origin=Origin(f"https://{host}"),
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            user_agent_header="sipctl-verify",
            compression=None,
            proxy=None,
            open_timeout=max(deadline - time.monotonic(), 0.001),
            ping_interval=None,
            close_timeout=1,
            max_size=MAX_MESSAGE,
        ) as ws:
            result.subprotocol = ws.subprotocol
            if ws.subprotocol != SUBPROTOCOL:
                return _fail(result, "upgrade", f"the server chose subprotocol {ws.subprotocol!r}")
            for name in names:
                request, call_id = build_options(name, domain, from_host)
                ws.send(request.decode())
                try:
                    result.statuses[name] = _final_status(ws, call_id, deadline)
                except TimeoutError:
                    # the library closed on a message too big, but a server that never
                    # stops sending never lets the close finish before the deadline
                    if ws.protocol.close_sent is not None:
                        return _fail(result, "protocol", _close_reason(ws.protocol.close_sent))
                    raise
        return result
    except ssl.SSLCertVerificationError as exc:
        return _fail(result, "certificate", f"the certificate is not valid for {host}: "
                     f"{exc.verify_message}")  # fmt: skip
    except ssl.SSLError as exc:
        return _fail(result, "tls", f"TLS failed: {exc.reason or exc}")
    except TimeoutError:
        return _fail(result, "timeout", f"no answer within {timeout:g} s")
    except errors.InvalidStatus as exc:
        status = f"{exc.response.status_code} {exc.response.reason_phrase}".strip()
        return _fail(result, "upgrade", f"GET {WS_PATH} was answered '{status}', not 101")
    except errors.SecurityError:
        return _fail(result, "protocol", "the upgrade answer has no end")
    except errors.InvalidHandshake as exc:
        return _fail(result, "upgrade", f"the upgrade answer is not a WebSocket's: {exc}")
    except errors.ConnectionClosed as exc:
        return _fail(result, "protocol", _close_reason(exc.sent))
    except OSError as exc:
        return _fail(result, "protocol", str(exc) or type(exc).__name__)
    finally:
        raw.close()


def _final_status(ws: ClientConnection, call_id: str, deadline: float) -> int | None:
    """The final status of the OPTIONS ``call_id``; a server's request or another dialog's
    answer is not ours. Pings are answered by the library."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        message = ws.recv(timeout=left, decode=False)
        try:
            response: SipResponse = parse_response(message)
        except SipParseError:
            continue  # a request of the server's own (none is expected): not our answer
        if response.header("call-id") == call_id and response.status >= 200:
            return response.status


def _close_reason(sent: Close | None) -> str:
    """Why the WebSocket ended, in words: a message larger than a SIP message (the library
    closes with 1009, "message too big", when it sees one), or the server's own close."""
    if sent is not None and sent.code == 1009:
        return f"a message of more than {MAX_MESSAGE} bytes is more than a SIP message"
    return "the server closed the WebSocket"


def _fail(result: WssResult, kind: str, message: str) -> WssResult:
    result.error_kind, result.error = kind, message
    return result
