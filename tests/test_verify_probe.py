"""The SIP OPTIONS probe against a small responder on loopback: framing, loss, dead targets, TLS."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.common import require
from verify_responder import DropProxy, Responder

from sipctl.providers.sip_probe import (
    OptionsRequest,
    build_options,
    matches,
    parse_response,
    probe,
)

DOMAIN = "mysite.ru"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require(shutil.which("openssl") is not None, "openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def responder(tls_files: tuple[Path, Path]) -> Iterator[Responder]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
    r = Responder(users={"director", "101"}, tls_context=server_ctx).start()
    yield r
    r.stop()


@pytest.fixture
def client_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


def test_request_has_every_mandatory_header() -> None:
    req = OptionsRequest("director", DOMAIN, "udp", "127.0.0.1", 40000)
    text = build_options(req).decode()
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0] == f"OPTIONS sip:director@{DOMAIN} SIP/2.0"
    headers = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in lines[1:]}
    assert headers["Via"].startswith("SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK")
    assert headers["Via"].endswith(";rport")
    assert headers["Max-Forwards"] == "70"
    assert ";tag=" in headers["From"]
    assert headers["To"] == f"<sip:director@{DOMAIN}>"
    assert headers["CSeq"] == "1 OPTIONS"
    assert headers["Call-ID"] == req.call_id
    assert headers["Contact"].startswith("<sip:")
    assert headers["Content-Length"] == "0"
    assert body == ""
    # each request is its own transaction
    assert OptionsRequest("a", DOMAIN, "udp", "h", 1).branch != req.branch


def test_parse_response_compact_and_folded_headers() -> None:
    req = OptionsRequest("director", DOMAIN, "tcp", "127.0.0.1", 40000)
    raw = (
        "SIP/2.0 404 Not Found\r\n"
        f"v: SIP/2.0/TCP 127.0.0.1:40000;branch={req.branch};rport=40000\r\n"
        f"i: {req.call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Server: Asterisk\r\n"
        "  PBX 22\r\n"
        "l: 0\r\n\r\n"
    ).encode()
    resp = parse_response(raw)
    assert (resp.status, resp.reason) == (404, "Not Found")
    assert resp.header("server") == "Asterisk PBX 22"
    assert matches(resp, req)
    other = OptionsRequest("director", DOMAIN, "tcp", "127.0.0.1", 40000)
    assert not matches(resp, other)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_probe_known_and_unknown_user(responder: Responder, transport: str) -> None:
    port = responder.udp_port if transport == "udp" else responder.tcp_port
    ok = probe("127.0.0.1", port, transport, "director", DOMAIN, timeout=3)  # type: ignore[arg-type]
    assert (ok.status, ok.error) == (200, None)
    assert ok.rtt_ms is not None and ok.rtt_ms < 1000
    assert ok.server == "verify-responder"
    missing = probe("127.0.0.1", port, transport, "nobody", DOMAIN, timeout=3)  # type: ignore[arg-type]
    assert missing.status == 404
    sent = responder.requests[-1].decode()
    assert sent.startswith(f"OPTIONS sip:nobody@{DOMAIN} SIP/2.0\r\n")
    assert f"SIP/2.0/{transport.upper()} 127.0.0.1:" in sent


def test_probe_tls_checks_the_certificate_against_the_domain(
    responder: Responder, client_tls: ssl.SSLContext
) -> None:
    good = probe("127.0.0.1", responder.tls_port, "tls", "101", DOMAIN, ssl_context=client_tls)
    assert good.status == 200, good.error
    assert responder.requests[-1].startswith(b"OPTIONS sips:101@mysite.ru SIP/2.0\r\n")
    bad = probe("127.0.0.1", responder.tls_port, "tls", "101", "other.ru", ssl_context=client_tls)
    assert bad.status is None
    assert bad.error_kind == "certificate"
    assert "other.ru" in (bad.error or "")
    # a plain TCP listener where TLS is expected is no TLS listener
    plain = probe(
        "127.0.0.1", responder.tcp_port, "tls", "101", DOMAIN, timeout=1, ssl_context=client_tls
    )
    assert plain.status is None
    assert plain.error_kind in ("tls", "timeout", "protocol")


def test_udp_loss_is_survived_by_retransmission(responder: Responder) -> None:
    proxy = DropProxy(("127.0.0.1", responder.udp_port), drop_first=2).start()
    try:
        started = time.monotonic()
        result = probe("127.0.0.1", proxy.port, "udp", "director", DOMAIN, timeout=5)
        elapsed = time.monotonic() - started
    finally:
        proxy.stop()
    assert result.status == 200, result.error
    assert result.attempts == 3
    assert proxy.dropped == 2
    # T1 = 0.5 s then 1 s: the third copy leaves at 1.5 s
    assert 1.4 < elapsed < 2.5, elapsed


def test_dead_udp_target_is_reported_after_the_timeout() -> None:
    dead = Responder(users=set(), silent=True).start()
    try:
        started = time.monotonic()
        result = probe("127.0.0.1", dead.udp_port, "udp", "director", DOMAIN, timeout=1.2)
        elapsed = time.monotonic() - started
    finally:
        dead.stop()
    assert result.status is None
    assert result.error_kind == "timeout"
    assert result.attempts == 2  # at 0 s and 0.5 s; the next would be at 1.5 s
    assert 1.1 < elapsed < 1.8, elapsed
    assert "no answer over UDP" in (result.error or "")


def test_dead_tcp_target_is_reported_after_the_timeout() -> None:
    dead = Responder(users=set(), silent=True).start()
    try:
        started = time.monotonic()
        result = probe("127.0.0.1", dead.tcp_port, "tcp", "director", DOMAIN, timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        dead.stop()
    assert (result.status, result.error_kind) == (None, "timeout")
    assert elapsed < 1.6


def test_closed_ports_are_refused_quickly() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    udp = probe("127.0.0.1", port, "udp", "x", DOMAIN, timeout=3)
    tcp = probe("127.0.0.1", port, "tcp", "x", DOMAIN, timeout=3)
    assert udp.error_kind == "refused"
    assert tcp.error_kind == "refused"
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_probe_over_ipv6(transport: str) -> None:
    v6 = Responder(users={"director"}, host="::1").start()
    try:
        port = v6.udp_port if transport == "udp" else v6.tcp_port
        result = probe("::1", port, transport, "director", DOMAIN, timeout=2)  # type: ignore[arg-type]
    finally:
        v6.stop()
    assert result.status == 200, result.error
    assert f"SIP/2.0/{transport.upper()} [::1]:" in v6.requests[-1].decode()
