"""A tiny SIP OPTIONS responder on loopback for the verify tests (UDP, TCP, optional TLS).

It answers OPTIONS for ``sip:<user>@...`` with 200 when the user is known, else 404, copying
Via (with ``received``/``rport``), From, To (plus a tag), Call-ID and CSeq as RFC 3261 asks.
``drop_first`` drops that many UDP datagrams first (a lossy path), ``silent`` answers nothing
(a dead target). It records every request it saw so a test can check what the client sent.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass, field


@dataclass
class Responder:
    users: set[str]
    host: str = "127.0.0.1"
    drop_first: int = 0
    silent: bool = False
    reply_from_other: bool = False  # UDP: answer from another port (a multihomed server)
    tls_context: ssl.SSLContext | None = None
    requests: list[bytes] = field(default_factory=list)
    udp_port: int = 0
    tcp_port: int = 0
    tls_port: int = 0
    _socks: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _dropped: int = 0

    def start(self) -> Responder:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((self.host, 0))
        self.udp_port = udp.getsockname()[1]
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((self.host, 0))
        tcp.listen(16)
        self.tcp_port = tcp.getsockname()[1]
        self._socks += [udp, tcp]
        threading.Thread(target=self._serve_udp, args=(udp,), daemon=True).start()
        threading.Thread(target=self._serve_tcp, args=(tcp, None), daemon=True).start()
        if self.tls_context is not None:
            tls = socket.socket(family, socket.SOCK_STREAM)
            tls.bind((self.host, 0))
            tls.listen(16)
            self.tls_port = tls.getsockname()[1]
            self._socks.append(tls)
            threading.Thread(
                target=self._serve_tcp, args=(tls, self.tls_context), daemon=True
            ).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()

    def answer(self, data: bytes, peer: tuple[str, int]) -> bytes | None:
        self.requests.append(data)
        if self.silent:
            return None
        text = data.decode("utf-8", "replace")
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        method, uri, _ = head[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        user = uri.split(":", 1)[1].split("@", 1)[0]
        status = "200 OK" if method == "OPTIONS" and user in self.users else "404 Not Found"
        if method != "OPTIONS":
            status = "405 Method Not Allowed"
        via = headers["via"].replace(";rport", f";received={peer[0]};rport={peer[1]}")
        lines = [
            f"SIP/2.0 {status}",
            f"Via: {via}",
            f"From: {headers['from']}",
            f"To: {headers['to']};tag=resp1",
            f"Call-ID: {headers['call-id']}",
            f"CSeq: {headers['cseq']}",
            "Server: verify-responder",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _serve_udp(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                return
            if self._dropped < self.drop_first:
                self._dropped += 1
                self.requests.append(data)
                continue
            reply = self.answer(data, peer)
            if reply is not None:
                with contextlib.suppress(OSError):
                    if self.reply_from_other:
                        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                        with socket.socket(family, socket.SOCK_DGRAM) as other:
                            other.bind((self.host, 0))
                            other.sendto(reply, peer)
                    else:
                        sock.sendto(reply, peer)

    def _serve_tcp(self, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn, peer, context), daemon=True).start()

    def _conn(
        self, conn: socket.socket, peer: tuple[str, int], context: ssl.SSLContext | None
    ) -> None:
        try:
            if context is not None:
                conn = context.wrap_socket(conn, server_side=True)
            conn.settimeout(10)
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65535)
                if not chunk:
                    return
                buffer += chunk
            reply = self.answer(buffer, peer)
            if reply is not None:
                conn.sendall(reply)
            # keep the connection open: a real server does not close after a reply, and a
            # silent one leaves the client waiting
            conn.recv(1)
        except (OSError, ssl.SSLError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()


class DropProxy:
    """A UDP relay on loopback that drops the first ``drop_first`` client datagrams.

    Stands between a client and any UDP SIP server (our responder or the real Asterisk) so a
    test can show that the probe gets through a lossy path by retransmission alone.
    """

    def __init__(self, upstream: tuple[str, int], drop_first: int, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.drop_first = drop_first
        self.dropped = 0
        self.forwarded = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._clients: dict[tuple[str, int], socket.socket] = {}

    def start(self) -> DropProxy:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for sock in [self._sock, *self._clients.values()]:
            with contextlib.suppress(OSError):
                sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(65535)
            except OSError:
                return
            if self.dropped < self.drop_first:
                self.dropped += 1
                continue
            relay = self._clients.get(peer)
            if relay is None:
                relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                relay.bind(("127.0.0.1", 0))
                self._clients[peer] = relay
                threading.Thread(target=self._back, args=(relay, peer), daemon=True).start()
            self.forwarded += 1
            relay.sendto(data, self.upstream)

    def _back(self, relay: socket.socket, peer: tuple[str, int]) -> None:
        while not self._stop.is_set():
            try:
                data = relay.recv(65535)
                self._sock.sendto(data, peer)
            except OSError:
                return
