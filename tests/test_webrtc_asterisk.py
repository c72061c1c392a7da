"""transports.wss on a real Asterisk 22: http.conf's keys, the WSS listener, OPTIONS over it.

The tests run in file order on one PBX: apply WSS, probe it without a browser (the stdlib
client of ``sipctl verify``), then remove it and get the admin's http.conf back byte for byte.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asterisk_helpers import apply_spec, pending_changes, plan_layer, spec_data, write_spec
from fixtures.asterisk import TEST_CERT_FILE, TEST_KEY_FILE, AsteriskInstance
from fixtures.certs import WSS_HOST, ca_file
from fixtures.common import free_port
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from sipctl.providers.asterisk.http_conf import MARK, WAS
from sipctl.providers.asterisk.wss_checks import ipv6_listener_problem
from sipctl.providers.wss_probe import build_options, check_wss
from sipctl.reconciler.verify.run import run_verify
from sipctl.schemas.loader import load_spec

pytestmark = pytest.mark.asterisk


def wss_spec(pbx: AsteriskInstance, wss: bool = True) -> dict[str, Any]:
    data = spec_data(pbx, tls={"cert_file": TEST_CERT_FILE, "key_file": TEST_KEY_FILE})
    data["servers"] = [{"host": WSS_HOST, "ipv4": ["127.0.0.1"]}]
    if wss:
        data["transports"]["wss"] = {"port": pbx.wss_port}
        data["webrtc"] = {"page": {"names": ["director", "alex"]}}
    return data


@pytest.fixture(scope="module")
def admin_http(asterisk: AsteriskInstance) -> bytes:
    return (asterisk.config_dir / "http.conf").read_bytes()


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wss")


def trusting_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file()))


def test_plan_names_a_missing_module_and_a_taken_port(
    asterisk: AsteriskInstance, spec_dir: Path
) -> None:
    spec = write_spec(spec_dir, wss_spec(asterisk), "checks.yaml")
    assert plan_layer(spec)[3].problems == []
    asterisk.rx("module unload res_srtp.so")
    try:
        problems = plan_layer(spec)[3].problems
    finally:
        asterisk.rx("module load res_srtp.so")
    assert any("has not loaded res_srtp.so" in p for p in problems), problems
    # Opus for browsers needs the transcoder for phones without Opus (measured: without it,
    # such a call ends when the phone answers); opus: false needs neither module.
    asterisk.rx("module unload codec_opus_open_source.so")
    try:
        problems = plan_layer(spec)[3].problems
        data = wss_spec(asterisk)
        data["transports"]["wss"]["opus"] = False
        without_opus = plan_layer(write_spec(spec_dir, data, "no-opus.yaml"))[3].problems
    finally:
        asterisk.rx("module load codec_opus_open_source.so")
    assert any(
        "not loaded codec_opus_open_source.so" in p and "transports.wss.opus: false" in p
        for p in problems
    ), problems
    assert without_opus == []
    with socket.create_server(("127.0.0.1", 0)) as other:
        data = wss_spec(asterisk)
        data["transports"]["wss"]["port"] = other.getsockname()[1]
        problems = plan_layer(write_spec(spec_dir, data, "taken.yaml"))[3].problems
    assert any("already in use by another program" in p for p in problems), problems


def test_apply_wss_sets_only_its_keys_and_starts_https(
    asterisk: AsteriskInstance, admin_http: bytes, spec_dir: Path
) -> None:
    spec = write_spec(spec_dir, wss_spec(asterisk))
    lines = apply_spec(spec)
    assert any("module reload http" in line for line in lines), lines
    text = (asterisk.config_dir / "http.conf").read_text()
    # The admin's lines stay; the one key with another value is commented out, not lost.
    admin_lines = admin_http.decode().splitlines()
    for line in admin_lines:
        if line.startswith("tlsenable"):
            assert WAS + line in text.splitlines()
        else:
            assert line in text.splitlines()
    ours = [line for line in text.splitlines() if line.endswith(MARK)]
    assert sorted(line.split("=", 1)[0] for line in ours) == sorted(
        ["enabled", "tlsenable", "tlsbindaddr", "tlscertfile", "tlsprivatekey"]
    )  # bindaddr was the admin's already
    status = asterisk.rx("http show status")
    assert f"HTTPS Server Enabled and Bound to 0.0.0.0:{asterisk.wss_port}" in status
    endpoint = asterisk.rx("pjsip show endpoint sipctl-browsers")
    assert "guest-call" in endpoint and "webrtc" in endpoint
    assert "sipctl-wss" in asterisk.rx("pjsip show transports")
    assert pending_changes(spec) == []
    assert plan_layer(spec)[3].problems == []  # the port is in use now: by Asterisk's HTTPS


def test_stdlib_websocket_client_gets_200_for_each_page_name(asterisk: AsteriskInstance) -> None:
    result = check_wss(
        WSS_HOST, "127.0.0.1", asterisk.wss_port, ["director", "alex"], "mysite.ru",
        "webrtc.mysite.ru", ssl_context=trusting_context(), timeout=10,
    )  # fmt: skip
    assert result.error is None, result
    assert result.subprotocol == "sip"
    assert result.statuses == {"director": 200, "alex": 200}


def test_verify_reports_the_websocket(asterisk: AsteriskInstance, spec_dir: Path) -> None:
    """``sipctl verify``'s WSS part (DNS is asked of a port where nothing answers: the
    WebSocket check stands on its own, from the spec's server addresses)."""
    loaded = load_spec(write_spec(spec_dir, wss_spec(asterisk), "verify.yaml"))
    report = run_verify(
        loaded, f"127.0.0.1:{free_port()}", timeout=3.0, ssl_context=trusting_context()
    )
    assert [w["statuses"] for w in report.wss] == [{"director": 200, "alex": 200}]
    assert not [d for d in report.defects if d.code.startswith("wss")], report.defects
    assert "WebSocket: wss://pbx.mysite.ru:" in report.to_text()


def test_websocket_certificate_is_checked(asterisk: AsteriskInstance) -> None:
    untrusted = check_wss(
        WSS_HOST, "127.0.0.1", asterisk.wss_port, ["director"], "mysite.ru", "webrtc.mysite.ru",
        ssl_context=ssl.create_default_context(), timeout=10,
    )  # fmt: skip
    assert untrusted.error_kind == "certificate", untrusted
    wrong_name = check_wss(
        "other.example.org", "127.0.0.1", asterisk.wss_port, ["director"], "mysite.ru",
        "webrtc.mysite.ru", ssl_context=trusting_context(), timeout=10,
    )  # fmt: skip
    assert wrong_name.error_kind == "certificate", wrong_name


def test_servers_with_ipv6_get_one_dual_stack_listener(
    asterisk: AsteriskInstance, spec_dir: Path
) -> None:
    """A server with an AAAA makes the HTTPS listener ``[::]``: one socket that browsers of
    both families reach (IPv4 mapped: the host's ``net.ipv6.bindv6only`` is 0, which plan
    checks); IPv4-only servers keep ``0.0.0.0``."""
    data = wss_spec(asterisk)
    data["servers"][0]["ipv6"] = ["::1"]
    spec = write_spec(spec_dir, data, "dual.yaml")
    assert plan_layer(spec)[3].problems == []
    apply_spec(spec)
    status = asterisk.rx("http show status")
    assert f"HTTPS Server Enabled and Bound to [::]:{asterisk.wss_port}" in status
    for address in ("127.0.0.1", "::1"):
        result = check_wss(
            WSS_HOST, address, asterisk.wss_port, ["director"], "mysite.ru",
            "webrtc.mysite.ru", ssl_context=trusting_context(), timeout=10,
        )  # fmt: skip
        assert result.statuses == {"director": 200}, (address, result)
    # fail2ban's address: an IPv4 browser on the [::] socket is logged as plain IPv4 (not
    # ::ffff:127.0.0.1, which an IPv6 ban would never match), an IPv6 one as IPv6.
    for address in ("127.0.0.1", "::1"):
        start = asterisk.log_size()
        with websocket(address, asterisk.wss_port) as ws:
            request = build_options("nobody", "mysite.ru", "webrtc.mysite.ru")[0]
            ws.send(request.replace(b"OPTIONS", b"INVITE").decode())
            text = asterisk.wait_log(r"Wrong call IP=", start)
        assert f"Wrong call IP={address}\n" in text, text
    assert pending_changes(spec) == []
    apply_spec(write_spec(spec_dir, wss_spec(asterisk), "v4.yaml"))
    status = asterisk.rx("http show status")
    assert f"HTTPS Server Enabled and Bound to 0.0.0.0:{asterisk.wss_port}" in status


@contextlib.contextmanager
def websocket(address: str, port: int) -> Iterator[ClientConnection]:
    """A WebSocket (subprotocol sip) to the PBX's WSS listener at ``address``."""
    raw = socket.create_connection((address, port), timeout=10)
    with connect(
        f"wss://{WSS_HOST}:{port}/ws", sock=raw, ssl=trusting_context(),
        subprotocols=[Subprotocol("sip")], proxy=None, open_timeout=10,
    ) as ws:  # fmt: skip
        assert ws.subprotocol == "sip"
        yield ws


def test_ipv6_listener_problems_name_the_sysctl() -> None:
    assert ipv6_listener_problem("0\n", 8089, ipv4_too=True) is None
    assert ipv6_listener_problem("1\n", 8089, ipv4_too=False) is None
    both = ipv6_listener_problem("1\n", 8089, ipv4_too=True)
    assert both is not None and "net.ipv6.bindv6only=0" in both
    none = ipv6_listener_problem(None, 8089, ipv4_too=False)
    assert none is not None and "no IPv6" in none


def test_removing_wss_gives_back_the_admins_http_conf(
    asterisk: AsteriskInstance, admin_http: bytes, spec_dir: Path
) -> None:
    spec = write_spec(spec_dir, wss_spec(asterisk, wss=False))
    apply_spec(spec)
    assert (asterisk.config_dir / "http.conf").read_bytes() == admin_http
    assert "HTTPS Server Enabled" not in asterisk.rx("http show status")
    assert "sipctl-wss" not in asterisk.rx("pjsip show transports")
    assert "Unable to find" in asterisk.rx("pjsip show endpoint sipctl-browsers")
    assert pending_changes(spec) == []
