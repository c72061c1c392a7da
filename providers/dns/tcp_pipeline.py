"""One TCP connection to a primary name server, its messages pipelined (RFC 7766).

All messages are sent, then all answers read, in whatever order they come; each is matched
to its question by ID. Queries (and a zone transfer's first message) are written and their
answers checked by ``wire`` (the signature verified over the whole answer, only what is used
decoded); other messages (an UPDATE, the lock's queries) are signed and read by dnspython.
Every failure becomes a ProviderError naming the server and what to check.

A read's connection is kept once everything asked on it has been answered (and a zone
transfer's first message held the whole zone), and the next read of the same server in this
process sends on it: a plan of thousands of zones on one primary costs that server one TCP
connection per worker, not one per zone. A kept connection that the server closed while it
was unused is replaced by a fresh one before anything was read from it. Writes always go on
a connection of their own.
"""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import dns.exception
import dns.message
import dns.rdatatype
import dns.tsig

from sipctl.errors import ProviderError
from sipctl.providers.dns.tsig_key import TsigKey
from sipctl.providers.dns.wire import Answer, Transfer


class _ClosedBeforeAnswer(Exception):
    """The server closed the connection before the first byte of an answer (the reason)."""


class Server(Protocol):
    """Where the connection goes, the key that signs, and the count of messages sent."""

    host: str
    port: int
    timeout: float
    key: TsigKey
    messages_sent: int


_Decoded = TypeVar("_Decoded")


# The fixed header every DNS message starts with (RFC 1035 4.1.1): ID, flags, four counts.
_DNS_HEADER_BYTES = 12
# How long a kept connection may sit unused before it is closed instead of reused: well
# inside the time a name server keeps an idle client (BIND: tcp-idle-timeout, 30 s).
IDLE_SECONDS = 10.0
# Kept connections per server: one per worker thread of a run is enough.
MAX_IDLE = 8


class _IdleConnections:
    """Connections of this process that answered everything asked on them, by server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, int], list[tuple[float, socket.socket]]] = {}

    def take(self, where: tuple[str, int]) -> socket.socket | None:
        with self._lock:
            self._close_expired()
            kept = self._idle.get(where)
            return kept.pop()[1] if kept else None

    def give(self, where: tuple[str, int], sock: socket.socket) -> None:
        with self._lock:
            self._close_expired()
            kept = self._idle.setdefault(where, [])
            if len(kept) < MAX_IDLE:
                kept.append((time.monotonic(), sock))
                return
        sock.close()

    def _close_expired(self) -> None:
        """Close what sat unused too long, of every server (a process that talks to many
        servers, one after the other, keeps no connection to those it is done with)."""
        now = time.monotonic()
        for where in list(self._idle):
            kept = self._idle[where]
            while kept and now - kept[0][0] >= IDLE_SECONDS:
                kept.pop(0)[1].close()
            if not kept:
                del self._idle[where]

    def forget(self) -> None:
        """Close every kept connection (a forked child's copies are never its own to use)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for kept in idle.values():
            for _, sock in kept:
                sock.close()


_IDLE = _IdleConnections()
os.register_at_fork(after_in_child=_IDLE.forget)
atexit.register(_IDLE.forget)


class Connection:
    """One TCP connection to the primary; messages are pipelined (RFC 7766).

    ``reuse``: a read's connection, taken from and given back to this process's kept ones
    (see the module docstring). Writes always go on a fresh connection of their own.
    """

    def __init__(self, server: Server, *, reuse: bool = False) -> None:
        self._provider = server
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._buffer = bytearray()
        self._reuse = reuse
        self._reused = False  # this connection was kept from an earlier read
        self._clean = False  # everything asked was answered: it may be kept

    def __enter__(self) -> Connection:
        p = self._provider
        if self._reuse:
            self._sock = _IDLE.take((p.host, p.port))
            self._reused = self._sock is not None
        if self._sock is None:
            self._sock = self._connect()
        self._next_id = secrets.randbelow(0x10000)
        return self

    def _connect(self) -> socket.socket:
        p = self._provider
        try:
            sock = socket.create_connection((p.host, p.port), timeout=p.timeout)
        except ConnectionRefusedError:
            raise ProviderError(
                f"cannot reach DNS server {p.host} port {p.port} over TCP: connection refused "
                "(is the name server running and listening there?)"
            ) from None
        except TimeoutError:
            raise ProviderError(
                f"DNS server {p.host} port {p.port} did not accept a TCP connection within "
                f"{p.timeout:g} s (check dns.server and any firewall in between)"
            ) from None
        except OSError as exc:
            raise ProviderError(
                f"cannot reach DNS server {p.host} port {p.port}: {exc.strerror or exc}"
            ) from None
        # a pipeline's frames and a kept connection's next question go out at once
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def __exit__(self, *exc: object) -> None:
        if self._sock is None:
            return
        p = self._provider
        if self._reuse and self._clean and not self._buffer and exc[0] is None:
            _IDLE.give((p.host, p.port), self._sock)
        else:
            self._sock.close()
        self._sock = None

    def exchange(self, messages: list[dns.message.Message]) -> list[dns.message.Message]:
        """Send all ``messages``, then read all answers (in any order); signed when keyed."""
        frames, by_id = self._signed(messages)

        def decode(mid: int, data: bytes) -> dns.message.Message:
            request = by_id[mid]
            return dns.message.from_wire(data, keyring=request.keyring, request_mac=request.mac)

        return self._pipeline(frames, decode)

    def transfer_start(self, zone: str) -> Transfer:
        """The first message of a zone transfer (AXFR) of ``zone``, signed when keyed: its
        signature verified, each record apart (so the closing SOA of a zone that fits this
        one message is seen), only the records asked of it decoded (see ``wire``). The rest
        of a longer transfer is never read: close the connection after this."""
        codec = self._provider.key.codec()
        mid = self._take_id()
        data, mac = codec.query(mid, zone, "AXFR")
        first = self._pipeline([(mid, data)], lambda _mid, wire: codec.transfer(wire, mac))[0]
        # the rest of a longer transfer (or what follows a refusal) is never read: only a
        # connection whose transfer ended in this message may carry the next read
        types = first.types
        whole = len(types) >= 2 and types[0] == types[-1] == dns.rdatatype.SOA
        self._clean = self._clean and whole
        return first

    def _signed(
        self, messages: list[dns.message.Message]
    ) -> tuple[list[tuple[int, bytes]], dict[int, dns.message.Message]]:
        p = self._provider
        keyring = p.key.keyring()
        frames: list[tuple[int, bytes]] = []
        by_id: dict[int, dns.message.Message] = {}
        for message in messages:
            message.id = self._take_id()
            if keyring is not None and message.keyring is None:
                message.use_tsig(keyring, p.key.name(), algorithm=p.key.algorithm())
            frames.append((message.id, message.to_wire()))
            by_id[message.id] = message
        return frames, by_id

    def ask(self, questions: Sequence[tuple[str, str]]) -> list[Answer]:
        """Ask each (owner, type) question, pipelined; each answer's signature is verified
        and only its answer section decoded (see ``wire``)."""
        codec = self._provider.key.codec()
        frames: list[tuple[int, bytes]] = []
        macs: dict[int, bytes] = {}
        for owner, rdtype in questions:
            mid = self._take_id()
            data, macs[mid] = codec.query(mid, owner, rdtype)
            frames.append((mid, data))
        return self._pipeline(frames, lambda mid, data: codec.answer(data, macs[mid]))

    def _take_id(self) -> int:
        mid = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFF
        return mid

    def _pipeline(
        self, frames: list[tuple[int, bytes]], decode: Callable[[int, bytes], _Decoded]
    ) -> list[_Decoded]:
        """Send all ``frames`` (id, message), then read one answer to each (in any order)."""
        assert self._sock is not None
        p = self._provider
        wire = b"".join(struct.pack("!H", len(data)) + data for _, data in frames)
        deadline = time.monotonic() + p.timeout
        self._clean = False
        try:
            try:
                answers = self._send_and_read(wire, frames, decode, deadline)
            except (ConnectionError, _ClosedBeforeAnswer):
                if not self._reused:
                    raise
                # A kept connection the server closed while it was unused: nothing was
                # answered on it, so the same messages go once more on a fresh one.
                self._sock.close()
                self._buffer.clear()
                self._reused = False
                self._sock = self._connect()
                answers = self._send_and_read(wire, frames, decode, deadline)
        except _ClosedBeforeAnswer as exc:
            raise ProviderError(
                f"lost the connection to DNS server {p.host} port {p.port}: {exc}"
            ) from None
        except TimeoutError:
            raise ProviderError(
                f"DNS server {p.host} port {p.port} did not answer within {p.timeout:g} s"
            ) from None
        except (dns.tsig.PeerBadKey, dns.message.UnknownTSIGKey):
            raise ProviderError(
                f"DNS server {p.host} port {p.port} does not know TSIG key "
                f"{p.key.name_text()} (BADKEY): check dns.tsig.name against the server's key"
            ) from None
        except dns.tsig.PeerBadSignature:
            raise ProviderError(
                f"DNS server {p.host} port {p.port} rejected the signature of TSIG key "
                f"{p.key.name_text()} (BADSIG): the secret or the algorithm differs from the "
                "server's"
            ) from None
        except dns.tsig.BadSignature:  # the answer's own signature, checked here
            raise ProviderError(
                f"DNS server {p.host} port {p.port} sent an answer whose TSIG signature does "
                f"not verify with key {p.key.name_text()}: it was not signed by a server "
                "holding that key (altered on the way, or another program answers on that "
                "port); nothing of it was used"
            ) from None
        except dns.tsig.PeerBadTime:
            raise ProviderError(
                f"DNS server {p.host} port {p.port} rejected the TSIG time (BADTIME): "
                "this host's clock and the server's differ by more than 5 minutes"
            ) from None
        except dns.exception.DNSException as exc:
            raise ProviderError(
                f"DNS server {p.host} port {p.port} sent an answer sipctl cannot use "
                f"({type(exc).__name__}: {exc})"
            ) from None
        except OSError as exc:
            raise ProviderError(
                f"lost the connection to DNS server {p.host} port {p.port}: {exc.strerror or exc}"
            ) from None
        self._clean = True
        return [answers[mid] for mid, _ in frames]

    def _send_and_read(
        self,
        wire: bytes,
        frames: list[tuple[int, bytes]],
        decode: Callable[[int, bytes], _Decoded],
        deadline: float,
    ) -> dict[int, _Decoded]:
        assert self._sock is not None
        p = self._provider
        self._sock.sendall(wire)
        p.messages_sent += len(frames)
        answers: dict[int, _Decoded] = {}
        asked = {mid for mid, _ in frames}
        while len(answers) < len(frames):
            try:
                data = self._read_frame(deadline)
            except ConnectionResetError as exc:
                if answers or self._buffer:
                    raise
                raise _ClosedBeforeAnswer(exc.strerror or str(exc)) from None
            if len(data) < _DNS_HEADER_BYTES:  # a message has at least its header
                raise ProviderError(
                    f"DNS server {p.host} port {p.port} sent a message of {len(data)} bytes, "
                    f"shorter than a DNS header ({_DNS_HEADER_BYTES} bytes): it does not speak "
                    "DNS over TCP, or the answer was cut"
                )
            (mid,) = struct.unpack("!H", data[:2])
            if mid not in asked or mid in answers:
                raise ProviderError(
                    f"DNS server {p.host} port {p.port} sent an answer to no question"
                )
            answers[mid] = decode(mid, data)
        return answers

    def _read_frame(self, deadline: float) -> bytes:
        """The next length-prefixed message; what arrives with it stays buffered (the
        answers of a pipeline come in a few segments: one read each, not two per answer)."""
        (length,) = struct.unpack("!H", self._read_exact(2, deadline))
        return self._read_exact(length, deadline)

    def _read_exact(self, count: int, deadline: float) -> bytes:
        assert self._sock is not None
        while len(self._buffer) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self._sock.settimeout(left)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("the server closed the connection")
            self._buffer += chunk
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data
