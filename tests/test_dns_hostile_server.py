"""A DNS server that answers with what no DNS server sends: every answer is a one-line error
naming the server, never 'unexpected error', and nothing of a bad answer is used.

The server is a plain TCP listener of the test's (DNS over TCP: a two-byte length, then the
message), answering each query with the frame a case gives it.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixtures.tcp_server import tcp_server

from sipctl.cli import run

SECRET = "aG9zdGlsZS1zZXJ2ZXItdGVzdC1zZWNyZXQ="

# query -> the frame (length prefix included) the hostile server sends back
Answerer = Callable[[bytes], bytes]


def _framed(message: bytes) -> bytes:
    return struct.pack("!H", len(message)) + message


CASES: dict[str, tuple[Answerer, str]] = {
    "an empty message": (lambda _q: _framed(b""), "sent a message of 0 bytes"),
    "one byte": (lambda _q: _framed(b"\x07"), "sent a message of 1 bytes"),
    "an ID and no header": (lambda q: _framed(q[:2]), "sent a message of 2 bytes"),
    "a header of impossible counts": (
        lambda q: _framed(q[:2] + b"\x84\x00" + b"\xff\xff" * 4),
        "sent an answer sipctl cannot use",
    ),
    "the query sent back": (lambda q: _framed(q), "does not verify with key 'sipctl'"),
    "an answer to another question": (
        lambda q: _framed(bytes([q[0] ^ 0xFF, q[1]]) + q[2:]),
        "sent an answer to no question",
    ),
}


@pytest.fixture
def hostile() -> Iterator[tuple[int, dict[str, Answerer]]]:
    """A listener on 127.0.0.1 answering each query with ``answer[0]`` (set by the test)."""
    answer: dict[str, Answerer] = {}

    def serve(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(5)
        while not stop.is_set():
            head = conn.recv(2, socket.MSG_WAITALL)
            if len(head) < 2:
                return
            query = conn.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)
            conn.sendall(answer["frame"](query))

    with tcp_server(serve) as port:
        yield port, answer


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_answer_is_one_line_naming_the_server(
    case: str,
    hostile: tuple[int, dict[str, Answerer]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, answer = hostile
    answer["frame"], expected = CASES[case]
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: hostile.test\ntransports: {udp: {port: 5060}}\n"
        "servers: [{host: pbx.hostile.test, ipv4: [203.0.113.10]}]\n"
        "users: {director: 105}\n"
        f"dns:\n  provider: rfc2136\n  server: 127.0.0.1:{port}\n  timeout: 3\n"
        "  tsig: {name: sipctl, algorithm: hmac-sha256, secret_env: HOSTILE_TSIG}\n"
    )
    monkeypatch.setenv("HOSTILE_TSIG", SECRET)
    monkeypatch.setenv("SIPCTL_DEBUG_LOG", str(tmp_path / "debug.log"))
    code = run(["plan", "-f", str(spec)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"DNS server 127.0.0.1 port {port} " in err and expected in err, err
    assert "unexpected error" not in err and SECRET not in err
    assert not (tmp_path / "debug.log").exists()
