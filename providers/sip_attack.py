"""A small SIP user agent on the standard library that tries what a toll fraudster tries.

Sibling of ``sip_probe.py`` (which only asks OPTIONS): this one places calls to dial
strings, registers and sends MESSAGE as a guest, and measures each answer, for
``sipctl audit``. Every call it places ends at once:

- a provisional 18x (something rings) is CANCELed the moment it arrives;
- an answered call (2xx) is ACKed, held for ``hold`` seconds (long enough to see whether
  the PBX sends sound, i.e. RTP to our media port), then hung up with BYE unless the PBX
  hung up first;
- any other final answer is ACKed (RFC 3261 17.1.1.3).

A REGISTER that a PBX accepts is withdrawn at once (``Expires: 0``). ``packets`` counts
every message sent, retransmissions included, so the audit can say what it cost.

Over UDP the requests are retransmitted on RFC 3261's timers (T1 doubling, capped at T2 for
non-INVITE); over TCP and TLS each message goes once. TLS is TCP inside ``ssl`` with the
server's certificate taken as served, not trusted (as a scanner takes it): the audit judges
the certificate on its own (``certificate_findings``), and an attacker's probe does not stop
at a certificate it cannot verify. Only ``SipAgent`` does I/O.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Literal

from sipctl.providers.sip_probe import (
    MAX_MESSAGE,
    T1,
    T2,
    SipParseError,
    SipResponse,
    _message_length,
    _udp_socket,
    parse_response,
)

Wire = Literal["udp", "tcp", "tls"]
USER_AGENT = "sipctl-audit"
FROM_USER = "sipctl-audit"


@dataclass
class Exchange:
    """What one request (or one call) got back."""

    method: str
    user: str
    statuses: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    final: int | None = None
    rtt_ms: float | None = None  # first send -> first final answer
    rang: bool = False  # a 180/183 came (and was CANCELed)
    answered: bool = False  # a 2xx to INVITE
    sound: bool = False  # RTP arrived at our media port while answered
    hung_up_by_pbx: bool = False  # the PBX sent BYE
    server: str | None = None  # Server / User-Agent header of the answer
    packets: int = 0  # messages we sent
    error: str | None = None  # no final answer: why

    def summary(self) -> str:
        """One line for a report: ``INVITE 011441234 -> 100, 200 (answered, sound)``."""
        got = ", ".join(str(s) for s in self.statuses) or (self.error or "no answer")
        marks = [
            word
            for word, on in (
                ("rang and was CANCELed", self.rang),
                ("answered", self.answered),
                ("sound", self.sound),
                ("the PBX hung up", self.hung_up_by_pbx),
            )
            if on
        ]
        return f"{self.method} {self.user!r} -> {got}" + (f" ({', '.join(marks)})" if marks else "")


@dataclass
class _Request:
    method: str
    uri: str
    branch: str
    call_id: str
    from_tag: str
    cseq: int
    to: str
    extra: list[str]
    domain: str
    body: str = ""
    from_user: str = FROM_USER  # a scanner sends the extension it tries here too

    def text(self, via: str, contact: str) -> bytes:
        lines = [
            f"{self.method} {self.uri} SIP/2.0",
            f"Via: {via};branch={self.branch};rport",
            "Max-Forwards: 70",
            f"From: {self.extra_from()}",
            f"To: {self.to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {self.method}",
            f"Contact: <{contact}>",
            f"User-Agent: {USER_AGENT}",
            *self.extra,
            f"Content-Length: {len(self.body.encode())}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n" + self.body).encode()

    def extra_from(self) -> str:
        return f"<sip:{self.from_user}@{self.domain}>;tag={self.from_tag}"


def _unverified_tls() -> ssl.SSLContext:
    """A client context that takes the served certificate as it is (see the module docstring)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _branch() -> str:
    return "z9hG4bK" + secrets.token_hex(10)


def _to_tag(response: SipResponse) -> str:
    to = response.header("to") or ""
    for part in to.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "tag":
            return value
    return ""


def _contact_uri(response: SipResponse, fallback: str) -> str:
    contact = response.header("contact") or ""
    if "<" in contact and ">" in contact:
        return contact.split("<", 1)[1].split(">", 1)[0]
    return contact.split(";", 1)[0].strip() or fallback


def _answer_request(data: bytes, status: int = 200, reason: str = "OK") -> bytes:
    """A 200 to a request the PBX sent us (its BYE): the transaction headers, echoed."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")[1:]
    keep = [
        line
        for line in head
        if line.split(":", 1)[0].strip().lower()
        in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")
    ]
    return (
        f"SIP/2.0 {status} {reason}\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class SipAgent:
    """One guest caller talking to ``address:port`` over UDP, TCP or TLS. Close it when done.

    Over TLS the server name sent (SNI) is ``domain``, as a SIPS caller of that domain sends
    it; the certificate is not verified (see the module docstring)."""

    def __init__(
        self, address: str, port: int, wire: Wire, domain: str, *, connect_timeout: float = 3.0
    ) -> None:
        self.address, self.port, self.wire, self.domain = address, port, wire, domain
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        if wire == "udp":
            self._sock = _udp_socket(address, port, family)
        else:
            self._sock = socket.create_connection((address, port), timeout=connect_timeout)
            if wire == "tls":
                try:
                    self._sock = _unverified_tls().wrap_socket(self._sock, server_hostname=domain)
                except (OSError, ssl.SSLError):
                    self._sock.close()
                    raise
        local = self._sock.getsockname()
        self.local_host, self.local_port = str(local[0]), int(local[1])
        self._media = socket.socket(family, socket.SOCK_DGRAM)
        self._media.bind((self.local_host, 0))
        self._media.setblocking(False)
        self._buffer = b""
        self.packets = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            self._media.close()

    def __enter__(self) -> SipAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- wire ------------------------------------------------------------------------------

    @property
    def _hostport(self) -> str:
        host = f"[{self.local_host}]" if ":" in self.local_host else self.local_host
        return f"{host}:{self.local_port}"

    @property
    def _via(self) -> str:
        return f"SIP/2.0/{self.wire.upper()} {self._hostport}"

    @property
    def _contact(self) -> str:
        suffix = "" if self.wire == "udp" else f";transport={self.wire}"
        return f"sip:{FROM_USER}@{self._hostport}{suffix}"

    def _send(self, data: bytes) -> None:
        self.packets += 1
        if self.wire == "udp":
            self._sock.sendto(data, (self.address, self.port))
        else:
            self._sock.sendall(data)

    def _receive(self, timeout: float) -> bytes | None:
        self._sock.settimeout(max(0.001, timeout))
        try:
            if self.wire == "udp":
                data, _ = self._sock.recvfrom(MAX_MESSAGE)
                return data
            while True:
                length = _message_length(self._buffer)
                if length is not None:
                    data, self._buffer = self._buffer[:length], self._buffer[length:]
                    return data
                chunk = self._sock.recv(MAX_MESSAGE)
                if not chunk:
                    raise ConnectionResetError("the PBX closed the connection")
                self._buffer += chunk
        except TimeoutError:
            return None

    def _response_in(self, data: bytes | None, exchange: Exchange) -> SipResponse | None:
        """The SIP response ``data`` holds; None for nothing received, for a datagram that
        is no SIP response, and for a request of the PBX's (answered here: a BYE ends the
        call)."""
        if data is None:
            return None
        if not data.startswith(b"SIP/2.0"):
            method = data.split(b" ", 1)[0].decode("ascii", "replace").upper()
            if method == "BYE":
                exchange.hung_up_by_pbx = True
            if method != "ACK":
                self._send(_answer_request(data))
            return None
        try:
            return parse_response(data)
        except SipParseError:
            return None

    def _drain_media(self) -> bool:
        got = False
        while True:
            try:
                self._media.recv(2048)
                got = True
            except (BlockingIOError, OSError):
                return got

    # --- requests --------------------------------------------------------------------------

    def _new(self, method: str, user: str, extra: list[str], body: str = "") -> _Request:
        """``user`` is a user part at the spec's domain, or a whole ``user@domain`` address
        (the audit's relay probes)."""
        if "@" in user:
            uri = f"sip:{user}"
        else:
            uri = f"sip:{user}@{self.domain}" if user else f"sip:{self.domain}"
        return _Request(
            method,
            uri,
            _branch(),
            secrets.token_hex(16) + "@sipctl-audit",
            secrets.token_hex(6),
            1,
            f"<{uri}>",
            extra,
            self.domain,
            body,
        )

    def _matches(self, response: SipResponse, req: _Request, method: str) -> bool:
        cseq = (response.header("cseq") or "").split()
        return (
            response.header("call-id") == req.call_id
            and len(cseq) == 2
            and cseq[1].upper() == method
        )

    def transact(self, method: str, user: str, timeout: float, extra: list[str] | None = None,
                 body: str = "", from_user: str | None = None) -> Exchange:  # fmt: skip
        """One non-INVITE request (OPTIONS, REGISTER, MESSAGE); waits for its final answer.

        ``from_user``: the From header's user (sipvicious sends the extension it tries)."""
        exchange = Exchange(method, user)
        first_packet = self.packets
        req = self._new(method, user, list(extra or []), body)
        req.from_user = from_user or FROM_USER
        if method == "REGISTER":
            req.uri = f"sip:{self.domain}"
        self._run_non_invite(req, exchange, timeout)
        if method == "REGISTER" and exchange.final is not None and 200 <= exchange.final < 300:
            # Accepted: withdraw the binding at once (the finding stands).
            undo = self._new("REGISTER", user, ["Expires: 0"])
            undo.uri, undo.call_id, undo.from_tag, undo.cseq = req.uri, req.call_id, req.from_tag, 2
            undo.from_user = req.from_user
            self._run_non_invite(undo, Exchange("REGISTER", user), timeout)
        exchange.packets = self.packets - first_packet
        return exchange

    def _run_non_invite(self, req: _Request, exchange: Exchange, timeout: float) -> None:
        message = req.text(self._via, self._contact)
        started = time.monotonic()
        deadline = started + timeout
        interval, next_send = T1, started
        while True:
            now = time.monotonic()
            if now >= deadline:
                exchange.error = f"no final answer within {timeout:.1f} s"
                return
            if now >= next_send and (self.wire == "udp" or next_send == started):
                self._send(message)
                next_send = now + interval if self.wire == "udp" else deadline
                interval = min(interval * 2, T2)
            try:
                data = self._receive(min(next_send, deadline) - time.monotonic())
            except ConnectionRefusedError:
                exchange.error = "port unreachable (ICMP)"
                return
            response = self._response_in(data, exchange)
            if response is None or not self._matches(response, req, req.method):
                continue
            exchange.statuses.append(response.status)
            exchange.reasons.append(response.reason)
            exchange.server = response.header("server") or response.header("user-agent")
            if response.status >= 200:
                exchange.final = response.status
                exchange.rtt_ms = (time.monotonic() - started) * 1000.0
                return

    def _sdp(self) -> str:
        family = "IP6" if ":" in self.local_host else "IP4"
        media_port = int(self._media.getsockname()[1])
        return (
            "v=0\r\n"
            f"o=- {secrets.randbelow(2**31)} 1 IN {family} {self.local_host}\r\n"
            "s=sipctl-audit\r\n"
            f"c=IN {family} {self.local_host}\r\n"
            "t=0 0\r\n"
            f"m=audio {media_port} RTP/AVP 0 8\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
        )

    def invite(
        self,
        user: str,
        timeout: float,
        hold: float = 0.3,
        from_user: str | None = None,
        to_uri: str | None = None,
    ) -> Exchange:
        """Call ``sip:<user>@<domain>`` and end the call as soon as it shows what it does.

        ``to_uri``: a To header other than the request URI (a caller may send any)."""
        exchange = Exchange("INVITE", user)
        first_packet = self.packets
        req = self._new("INVITE", user, ["Content-Type: application/sdp"], self._sdp())
        req.from_user = from_user or FROM_USER
        if to_uri is not None:
            req.to = f"<{to_uri}>"
        invite = req.text(self._via, self._contact)
        started = time.monotonic()
        deadline = started + timeout
        interval, next_send = T1, started
        provisional = False
        cancelled = False
        answered_at: float | None = None
        to_tag = ""
        remote = req.uri
        while True:
            now = time.monotonic()
            if answered_at is not None and (exchange.hung_up_by_pbx or now >= answered_at + hold):
                exchange.sound = exchange.sound or self._drain_media()
                if not exchange.hung_up_by_pbx:
                    self._bye(req, to_tag, remote, min(timeout, 4.0), exchange)
                break
            if now >= deadline:
                if exchange.final is None:
                    exchange.error = f"no final answer within {timeout:.1f} s"
                    if provisional and not cancelled:
                        self._cancel(req)
                break
            resend = not provisional and self.wire == "udp" and now >= next_send
            if resend or next_send == started:
                self._send(invite)
                next_send = now + interval
                interval *= 2
            wait_until = min(deadline, next_send if not provisional else deadline)
            if answered_at is not None:
                wait_until = min(wait_until, answered_at + hold)
            try:
                data = self._receive(wait_until - time.monotonic())
            except ConnectionRefusedError:
                exchange.error = "port unreachable (ICMP)"
                break
            if answered_at is not None:
                exchange.sound = exchange.sound or self._drain_media()
            response = self._response_in(data, exchange)
            if response is None or response.header("call-id") != req.call_id:
                continue
            cseq = (response.header("cseq") or "").split()
            if len(cseq) == 2 and cseq[1].upper() != "INVITE":
                continue  # the 200 to our CANCEL
            status = response.status
            if exchange.final is not None:
                if status >= 200:  # a retransmitted final: ACK it again
                    self._ack(req, _to_tag(response), remote if status < 300 else req.uri,
                              same_branch=status >= 300)  # fmt: skip
                continue
            exchange.statuses.append(status)
            exchange.reasons.append(response.reason)
            exchange.server = response.header("server") or response.header("user-agent")
            if status < 200:
                provisional = True
                if status in (180, 183) or 181 <= status <= 199:
                    exchange.rang = True
                    if not cancelled:
                        self._cancel(req)
                        cancelled = True
                continue
            exchange.final = status
            exchange.rtt_ms = (time.monotonic() - started) * 1000.0
            to_tag = _to_tag(response)
            if status < 300:
                exchange.answered = True
                remote = _contact_uri(response, req.uri)
                self._ack(req, to_tag, remote, same_branch=False)
                answered_at = time.monotonic()
                continue
            self._ack(req, to_tag, req.uri, same_branch=True)
            break
        exchange.packets = self.packets - first_packet
        return exchange

    def _cancel(self, req: _Request) -> None:
        lines = [
            f"CANCEL {req.uri} SIP/2.0",
            f"Via: {self._via};branch={req.branch};rport",
            "Max-Forwards: 70",
            f"From: {req.extra_from()}",
            f"To: {req.to}",
            f"Call-ID: {req.call_id}",
            f"CSeq: {req.cseq} CANCEL",
            f"User-Agent: {USER_AGENT}",
            "Content-Length: 0",
        ]
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _ack(self, req: _Request, to_tag: str, uri: str, *, same_branch: bool) -> None:
        to = req.to + (f";tag={to_tag}" if to_tag else "")
        lines = [
            f"ACK {uri} SIP/2.0",
            f"Via: {self._via};branch={req.branch if same_branch else _branch()};rport",
            "Max-Forwards: 70",
            f"From: {req.extra_from()}",
            f"To: {to}",
            f"Call-ID: {req.call_id}",
            f"CSeq: {req.cseq} ACK",
            f"User-Agent: {USER_AGENT}",
            "Content-Length: 0",
        ]
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _bye(
        self, req: _Request, to_tag: str, uri: str, timeout: float, exchange: Exchange
    ) -> None:
        bye = _Request("BYE", uri, _branch(), req.call_id, req.from_tag, req.cseq + 1,
                       req.to + (f";tag={to_tag}" if to_tag else ""), [], req.domain,
                       from_user=req.from_user)  # fmt: skip
        bye_exchange = Exchange("BYE", exchange.user)
        self._run_non_invite(bye, bye_exchange, timeout)
