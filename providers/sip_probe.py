"""A small SIP OPTIONS client on the standard library: ask a server whether a user exists.

Read-only by construction: the only request it can build is OPTIONS (RFC 3261 section 11),
which creates no dialog and places no call. One probe is one non-INVITE client transaction:

- UDP: the request is retransmitted after T1 (500 ms), then at doubling intervals capped at
  T2 (4 s) - timer E of RFC 3261 section 17.1.2.2, the non-INVITE sibling of timer A - until a
  final response or timer F (64*T1 = 32 s), which ``timeout`` caps. A provisional (1xx) reply
  keeps the transaction waiting.
- TCP: one connection, one request, the response framed by Content-Length.
- TLS: like TCP inside ``ssl``; the certificate is checked against the SIP *domain*
  (RFC 5922 section 4.1), not against the SRV target's name.

Message building and parsing are pure functions (``build_options``, ``parse_response``); only
``probe`` does I/O.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import secrets
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from sipctl.schemas.values import hostport

Transport = Literal["udp", "tcp", "tls"]

T1 = 0.5
T2 = 4.0
MAX_MESSAGE = 65535
# Linux socket options the socket module does not name (linux/in.h, linux/in6.h).
_IP_RECVERR = 11
_IPV6_RECVERR = 25
USER_AGENT = "sipctl-verify"
# The From user must not be a local endpoint's name: Asterisk would identify the probe as that
# endpoint and challenge it (401) instead of treating it as an anonymous caller.
FROM_USER = "sipctl-verify"


@dataclass(frozen=True)
class SipResponse:
    status: int
    reason: str
    headers: dict[str, list[str]]  # lower-case names (compact forms expanded)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one OPTIONS transaction. ``status`` is None when nothing answered."""

    transport: Transport
    address: str
    port: int
    user: str
    status: int | None
    reason: str
    rtt_ms: float | None  # from the first send to the final response
    attempts: int  # datagrams sent (UDP) or 1
    error: str | None = None  # why there is no status, for a human
    error_kind: str | None = None  # refused | timeout | tls | certificate | protocol | network
    server: str | None = None  # the Server / User-Agent header
    answered_from: str | None = None  # UDP: set when the answer came from another address

    def to_json(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "status": self.status,
            "reason": self.reason,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "attempts": self.attempts,
            "error": self.error,
            "error_kind": self.error_kind,
            "server": self.server,
            "answered_from": self.answered_from,
        }


@dataclass(frozen=True)
class OptionsRequest:
    """The identifiers of one transaction, so a response can be matched to its request."""

    user: str
    domain: str
    transport: Transport
    local_host: str
    local_port: int
    branch: str = field(default_factory=lambda: "z9hG4bK" + secrets.token_hex(10))
    call_id: str = field(default_factory=lambda: secrets.token_hex(16) + "@sipctl")
    from_tag: str = field(default_factory=lambda: secrets.token_hex(6))
    cseq: int = 1


def new_request(
    user: str, domain: str, transport: Transport, local: tuple[str, int]
) -> OptionsRequest:
    return OptionsRequest(user, domain, transport, local[0], local[1])


def _host_for_uri(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def build_options(req: OptionsRequest) -> bytes:
    """The OPTIONS request for ``sip:<user>@<domain>`` (``sips:`` over TLS), as bytes.

    Via carries the RFC 3261 magic cookie branch and ``rport`` (RFC 3581) so that the answer
    comes back to the port we sent from even behind NAT.
    """
    scheme = "sips" if req.transport == "tls" else "sip"
    via_transport = req.transport.upper()
    local = f"{_host_for_uri(req.local_host)}:{req.local_port}"
    contact_params = "" if req.transport == "udp" else f";transport={req.transport}"
    if req.transport == "tls":
        contact_params = ""
    lines = [
        f"OPTIONS {scheme}:{req.user}@{req.domain} SIP/2.0",
        f"Via: SIP/2.0/{via_transport} {local};branch={req.branch};rport",
        "Max-Forwards: 70",
        f"From: <{scheme}:{FROM_USER}@{req.domain}>;tag={req.from_tag}",
        f"To: <{scheme}:{req.user}@{req.domain}>",
        f"Call-ID: {req.call_id}",
        f"CSeq: {req.cseq} OPTIONS",
        f"Contact: <{scheme}:{FROM_USER}@{local}{contact_params}>",
        "Accept: application/sdp",
        f"User-Agent: {USER_AGENT}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
}


class SipParseError(ValueError):
    """The bytes are not a SIP response."""


def parse_response(data: bytes) -> SipResponse:
    """Parse a SIP response (status line, headers with folding and compact names, body)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    text = head.decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    status_line = lines[0].strip()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[0].upper() != "SIP/2.0" or not parts[1].isdigit():
        raise SipParseError(f"not a SIP response: {status_line[:80]!r}")
    status = int(parts[1])
    if not 100 <= status <= 699:
        raise SipParseError(f"status {status} is out of range")
    reason = parts[2].strip() if len(parts) > 2 else ""
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and last is not None:  # folded continuation (RFC 3261 7.3.1)
            headers[last][-1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"bad header line: {line[:80]!r}")
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key
    return SipResponse(status, reason, headers, body)


def matches(response: SipResponse, req: OptionsRequest) -> bool:
    """Does ``response`` belong to ``req``'s transaction (RFC 3261 17.1.3: branch + method)?"""
    via = response.header("via") or ""
    cseq = (response.header("cseq") or "").split()
    return (
        f"branch={req.branch}" in via
        and response.header("call-id") == req.call_id
        and len(cseq) == 2
        and cseq[0] == str(req.cseq)
        and cseq[1].upper() == "OPTIONS"
    )


def _message_length(buffer: bytes) -> int | None:
    """Bytes of the first complete message in a stream buffer, or None if incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buffer[:end].decode("utf-8", "replace")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("content-length", "l"):
            try:
                length = int(value.strip())
            except ValueError:
                length = 0
    total = end + 4 + max(length, 0)
    return total if len(buffer) >= total else None


# --- I/O -------------------------------------------------------------------------------------


def probe(
    address: str,
    port: int,
    transport: Transport,
    user: str,
    domain: str,
    *,
    timeout: float = 5.0,
    t1: float = T1,
    ssl_context: ssl.SSLContext | None = None,
) -> ProbeResult:
    """Send one OPTIONS for ``sip:<user>@<domain>`` to ``address:port``; never raises.

    ``timeout`` bounds the whole transaction (timer F is min(64*T1, timeout)). For TLS the
    certificate is checked against ``domain`` with ``ssl_context`` (default: the system CAs).
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        if transport == "udp":
            return _probe_udp(address, port, user, domain, family, timeout, t1)
        return _probe_stream(address, port, transport, user, domain, family, timeout, ssl_context)
    except OSError as exc:
        return _failure(
            transport, address, port, user, "network", f"network error: {exc.strerror or exc}"
        )


def _failure(
    transport: Transport,
    address: str,
    port: int,
    user: str,
    kind: str,
    message: str,
    attempts: int = 1,
) -> ProbeResult:
    return ProbeResult(transport, address, port, user, None, "", None, attempts, message, kind)


def _result(
    transport: Transport,
    address: str,
    port: int,
    user: str,
    resp: SipResponse,
    started: float,
    attempts: int,
) -> ProbeResult:
    return ProbeResult(
        transport,
        address,
        port,
        user,
        resp.status,
        resp.reason,
        (time.monotonic() - started) * 1000.0,
        attempts,
        server=resp.header("server") or resp.header("user-agent"),
    )


def _udp_socket(address: str, port: int, family: int) -> socket.socket:
    """An unconnected UDP socket on the local address the route to ``address`` uses.

    Unconnected, so that an answer from another address than the one asked is still seen (and
    reported: RFC 3581 wants it from the same address and port). On Linux IP_RECVERR makes
    an ICMP port-unreachable fail ``recvfrom`` at once, as it would on a connected socket.
    """
    with socket.socket(family, socket.SOCK_DGRAM) as route:
        route.connect((address, port))  # sends nothing: only picks the source address
        local_ip = route.getsockname()[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((local_ip, 0))
        if sys.platform.startswith("linux"):
            if family == socket.AF_INET6:
                level, option = socket.IPPROTO_IPV6, _IPV6_RECVERR
            else:
                level, option = socket.IPPROTO_IP, _IP_RECVERR
            with contextlib.suppress(OSError):
                sock.setsockopt(level, option, 1)
    except OSError:
        sock.close()
        raise
    return sock


def _same_peer(source: tuple[Any, ...], address: str, port: int) -> bool:
    try:
        return ipaddress.ip_address(source[0]) == ipaddress.ip_address(address) and (
            int(source[1]) == port
        )
    except ValueError:
        return False


def _probe_udp(
    address: str, port: int, user: str, domain: str, family: int, timeout: float, t1: float
) -> ProbeResult:
    with _udp_socket(address, port, family) as sock:
        local = sock.getsockname()
        req = new_request(user, domain, "udp", (local[0], local[1]))
        message = build_options(req)
        started = time.monotonic()
        limit = min(64 * t1, timeout)
        deadline = started + limit
        interval = t1
        next_send = started
        attempts = 0
        final_wait = False  # after a 1xx: keep retransmitting at T2 (RFC 3261 17.1.2.2)
        refused = _failure(
            "udp", address, port, user, "refused",
            "port unreachable (ICMP): nothing listens on UDP there",
        )  # fmt: skip
        while True:
            now = time.monotonic()
            if now >= deadline:
                return _failure(
                    "udp", address, port, user, "timeout",
                    f"no answer over UDP after {attempts} attempts in {limit:.1f} s",
                    attempts,
                )  # fmt: skip
            if now >= next_send:
                try:
                    sock.sendto(message, (address, port))
                except ConnectionRefusedError:
                    return refused
                attempts += 1
                next_send = now + interval
                interval = T2 if final_wait else min(interval * 2, T2)
            sock.settimeout(max(0.001, min(next_send, deadline) - time.monotonic()))
            try:
                data, source = sock.recvfrom(MAX_MESSAGE)
            except TimeoutError:
                continue
            except ConnectionRefusedError:
                return refused
            try:
                resp = parse_response(data)
            except SipParseError:
                continue
            if not matches(resp, req):
                continue
            if resp.status < 200:
                final_wait = True
                interval = T2
                continue
            result = _result("udp", address, port, user, resp, started, attempts)
            if not _same_peer(source, address, port):
                result = dataclasses.replace(result, answered_from=hostport(source[0], source[1]))
            return result


def _probe_stream(
    address: str,
    port: int,
    transport: Transport,
    user: str,
    domain: str,
    family: int,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> ProbeResult:
    started = time.monotonic()
    deadline = started + timeout

    def fail(kind: str, message: str) -> ProbeResult:
        return _failure(transport, address, port, user, kind, message)

    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        return fail("refused", f"connection refused on {transport.upper()}")
    except TimeoutError:
        return fail("timeout", f"no {transport.upper()} connection within {timeout:.1f} s")
    sock: socket.socket = raw
    try:
        if transport == "tls":
            context = ssl_context or ssl.create_default_context()
            try:
                sock = context.wrap_socket(raw, server_hostname=domain)
            except ssl.SSLCertVerificationError as exc:
                return fail(
                    "certificate", f"TLS certificate not valid for {domain}: {exc.verify_message}"
                )
            except (ssl.SSLError, ConnectionResetError, TimeoutError) as exc:
                return fail("tls", f"TLS handshake failed: {exc}")
        local = sock.getsockname()
        req = new_request(user, domain, transport, (local[0], local[1]))
        sent_at = time.monotonic()
        sock.sendall(build_options(req))
        buffer = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return fail("timeout", f"no answer over {transport.upper()} within {timeout:.1f} s")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(MAX_MESSAGE)
            except TimeoutError:
                continue
            if not chunk:
                return fail("protocol", "the server closed the connection without answering")
            buffer += chunk
            while (length := _message_length(buffer)) is not None:
                message, buffer = buffer[:length], buffer[length:]
                try:
                    resp = parse_response(message)
                except SipParseError as exc:
                    return fail("protocol", str(exc))
                if matches(resp, req) and resp.status >= 200:
                    return _result(transport, address, port, user, resp, sent_at, 1)
            if len(buffer) > MAX_MESSAGE:
                return fail("protocol", "answer too large or not SIP")
    finally:
        sock.close()
