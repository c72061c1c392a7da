"""verify against a real BIND and a SIP responder on loopback: the chain, each DNS defect named.

The SIP side here is the small responder (tests/verify_responder.py) so that every DNS defect
can be made by hand in BIND quickly; tests/test_verify_asterisk.py does the same against the
real Asterisk 22.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.bind import SECRET_ENV, UNRELATED_RECORDS, BindServer
from verify_responder import Responder

from sipctl.reconciler.verify.run import run_verify
from sipctl.schemas.loader import LoadedSpec, load_spec_text

pytestmark = pytest.mark.bind
USERS = {"director", "alex", "101"}
TIMEOUT = 1.0


@pytest.fixture(scope="module")
def sip() -> Iterator[Responder]:
    responder = Responder(users=set(USERS)).start()
    yield responder
    responder.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def records(sip: Responder, **change: str) -> str:
    """The zone's SIP records pointing at the responder; ``change`` replaces named lines."""
    lines = {
        "naptr_udp": '@ IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp',
        "naptr_tcp": '@ IN NAPTR 20 10 "S" "SIP+D2T" "" _sip._tcp',
        "srv_udp": f"_sip._udp IN SRV 10 0 {sip.udp_port} sip",
        "srv_tcp": f"_sip._tcp IN SRV 10 0 {sip.tcp_port} sip",
        "a": "sip IN A 127.0.0.1",
    }
    lines.update(change)
    return UNRELATED_RECORDS + "\n".join(v for v in lines.values() if v) + "\n"


def spec_for(
    bind: BindServer, zone: str, sip: Responder, transports: str = "", naptr: bool = True
) -> LoadedSpec:
    transports = transports or (f"{{udp: {{port: {sip.udp_port}}}, tcp: {{port: {sip.tcp_port}}}}}")
    text = (
        f"version: 1\ndomain: {zone}\ntransports: {transports}\n"
        f"servers: [{{host: sip.{zone}, ipv4: [127.0.0.1]}}]\n"
        "users: {director: 105, alex: 106, '101': 101}\n"
        f"dns:\n  provider: rfc2136\n  server: '{bind.server}'\n"
        f"  tsig: {{name: {bind.key_name}, secret_env: {SECRET_ENV}}}\n"
        f"  naptr: {'true' if naptr else 'false'}\n"
    )
    return load_spec_text(text, source="verify.yaml", base_dir=Path("/tmp"))


@pytest.fixture
def zone_with(bind: BindServer) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for zone in made:
        bind.delete_zone(zone)


def new_zone(bind: BindServer, made: list[str], extra: str) -> str:
    zone = bind.new_zone(extra=extra)
    made.append(zone)
    return zone


def test_healthy_chain_every_user_answers_over_udp_and_tcp(
    bind: BindServer, sip: Responder, zone_with: list[str]
) -> None:
    zone = new_zone(bind, zone_with, records(sip))
    report = run_verify(spec_for(bind, zone, sip), bind.server, TIMEOUT)
    assert report.defects == [], report.to_text()
    assert report.ok
    assert report.resolution.mode == "naptr"
    chain = [(h.transport, h.service, h.target, h.port) for h in report.resolution.hops]
    assert chain == [
        ("udp", "SIP+D2U", f"sip.{zone}", sip.udp_port),
        ("tcp", "SIP+D2T", f"sip.{zone}", sip.tcp_port),
    ]
    answered = {(p.result.transport, p.result.user, p.result.status) for p in report.probes}
    for user in USERS:
        assert ("udp", user, 200) in answered and ("tcp", user, 200) in answered
    assert all(p.result.rtt_ms is not None for p in report.probes)
    text = report.to_text()
    assert f"_sip._udp.{zone}" in text and "SIP+D2U" in text
    assert "director" in text and "verify: OK" in text
    data = json.loads(json.dumps(report.to_json()))
    assert data["ok"] is True and data["format_version"] == "1"
    assert len(data["probes"]) == 2 * (len(USERS) + 1)


def test_without_naptr_the_srv_names_are_used(
    bind: BindServer, sip: Responder, zone_with: list[str]
) -> None:
    zone = new_zone(bind, zone_with, records(sip, naptr_udp="", naptr_tcp=""))
    report = run_verify(spec_for(bind, zone, sip, naptr=False), bind.server, TIMEOUT)
    assert report.ok, report.to_text()
    assert report.resolution.mode == "srv"
    assert report.resolution.transports() == ["udp", "tcp"]


def test_without_srv_the_domain_address_is_used(
    bind: BindServer, sip: Responder, zone_with: list[str]
) -> None:
    extra = "@ IN A 127.0.0.1\n"
    zone = new_zone(bind, zone_with, extra)
    spec = spec_for(bind, zone, sip, naptr=False)
    report = run_verify(spec, bind.server, TIMEOUT)
    assert report.resolution.mode == "address"
    hops = [(h.transport, h.target, h.port) for h in report.resolution.hops]
    assert hops == [("udp", zone, 5060), ("tls", zone, 5061)]


DEFECTS = {
    # name: (zone changes, spec transports or "", the defect code that must be named)
    "naptr-missing-srv": ({"srv_tcp": ""}, "", "naptr-missing-srv"),
    "srv-target-cname": (
        {"a": "sip IN CNAME real\nreal IN A 127.0.0.1"},
        "",
        "srv-target-cname",
    ),
    "srv-target-no-address": ({"a": ""}, "", "srv-target-no-address"),
    "port-differs": ({"srv_udp": "_sip._udp IN SRV 10 0 {closed} sip"}, "", "port-differs"),
    "transport-not-advertised": (
        {},
        "{{udp: {{port: {udp}}}, tcp: {{port: {tcp}}}, tls: {{port: {closed}}}}}",
        "transport-not-advertised",
    ),
    "sips-no-tls-listener": (
        {
            "naptr_tls": '@ IN NAPTR 30 10 "s" "SIPS+D2T" "" _sips._tcp',
            "srv_tls": "_sips._tcp IN SRV 10 0 {closed} sip",
        },
        "{{udp: {{port: {udp}}}, tcp: {{port: {tcp}}}, tls: {{port: {closed}}}}}",
        "sips-no-tls-listener",
    ),
}


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_defect_made_in_bind_is_found_and_named(
    name: str, bind: BindServer, sip: Responder, zone_with: list[str]
) -> None:
    changes, transports, code = DEFECTS[name]
    ports = {"udp": sip.udp_port, "tcp": sip.tcp_port, "closed": closed_port()}
    zone = new_zone(
        bind, zone_with, records(sip, **{k: v.format(**ports) for k, v in changes.items()})
    )
    spec = spec_for(bind, zone, sip, transports.format(**ports))
    started = time.monotonic()
    report = run_verify(spec, bind.server, TIMEOUT)
    assert time.monotonic() - started < 10 * TIMEOUT
    assert not report.ok
    assert code in report.defect_codes(), report.to_text()
    named = next(d for d in report.defects if d.code == code)
    assert f"[{code}] {named.message}" in report.to_text()


def test_a_dead_nameserver_is_reported_not_hung(sip: Responder) -> None:
    text = (
        "version: 1\ndomain: dead.example.org\n"
        "servers: [{host: sip.dead.example.org, ipv4: [127.0.0.1]}]\n"
    )
    spec = load_spec_text(text, source="dead.yaml", base_dir=Path("/tmp"))
    started = time.monotonic()
    report = run_verify(spec, f"127.0.0.1:{closed_port()}", 1.0)
    assert time.monotonic() - started < 4
    assert not report.ok
    assert "dns-error" in report.defect_codes()


def _cli_with_verify() -> None:
    """Register the command the way cli.py does, if the lead's wiring is not there yet."""
    from sipctl.cli import app
    from sipctl.cli_verify import verify_command

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    if "verify" not in names and "verify_command" not in names:
        app.command("verify")(verify_command)


def test_cli_verify_table_json_and_exit_codes(
    bind: BindServer,
    sip: Responder,
    zone_with: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import jsonschema

    from sipctl.cli import run

    _cli_with_verify()
    zone = new_zone(bind, zone_with, records(sip))
    spec_file = tmp_path / "sipctl.yaml"
    spec_file.write_text(spec_for(bind, zone, sip).text)
    args = ["verify", "-f", str(spec_file), "--nameserver", bind.server, "--timeout", "1"]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "SIP+D2U" in out and "verify: OK" in out
    assert run([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert run(["schema", "--output", "verify"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, schema)
    assert data["domains"][0]["status"] == "ok"
    data = data["domains"][0]["verify"]
    assert data["ok"] is True and {p["status"] for p in data["probes"]} == {200, 404}
    # break the chain: the TCP SRV is gone -> exit 1 with the defect named
    bind.update(zone, delete=[("_sip._tcp", "SRV")])
    assert run(args) == 1
    assert "[naptr-missing-srv]" in capsys.readouterr().out
    assert run([*args, "--json"]) == 1
    broken = json.loads(capsys.readouterr().out)
    jsonschema.validate(broken, schema)
    assert broken["domains"][0]["status"] == "failed"
    broken = broken["domains"][0]["verify"]
    assert broken["defects"] and broken["ok"] is False
    assert run([*args[:4], "--nameserver", "127.0.0.1:99999"]) == 1
    assert "127.0.0.1:99999" in capsys.readouterr().err


def test_sips_chain_with_a_valid_certificate_for_the_domain(
    bind: BindServer, zone_with: list[str], tmp_path: Path
) -> None:
    """SIPS+D2T -> _sips._tcp -> a TLS listener whose certificate names the SIP domain."""
    import shutil
    import ssl
    import subprocess

    from fixtures.common import require

    require(shutil.which("openssl") is not None, "openssl")
    zone = bind.new_zone(extra="")
    zone_with.append(zone)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={zone}", "-addext", f"subjectAltName=DNS:{zone}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(cert), str(key))
    tls = Responder(users=set(USERS), tls_context=server_ctx).start()
    try:
        bind.update(
            zone,
            add=[
                ("@", 3600, "NAPTR", '30 10 "s" "SIPS+D2T" "" _sips._tcp'),
                ("_sips._tcp", 3600, "SRV", f"10 0 {tls.tls_port} sip"),
                ("sip", 3600, "A", "127.0.0.1"),
            ],
        )
        text = spec_for(bind, zone, tls, f"{{tls: {{port: {tls.tls_port}}}}}").text
        spec = load_spec_text(text, source="tls.yaml", base_dir=tmp_path)
        trusted = ssl.create_default_context(cafile=str(cert))
        report = run_verify(spec, bind.server, TIMEOUT, ssl_context=trusted)
        assert report.ok, report.to_text()
        assert {p.result.transport for p in report.probes} == {"tls"}
        # the system CAs do not know this certificate: named as a certificate defect
        untrusted = run_verify(spec, bind.server, TIMEOUT)
        assert untrusted.defect_codes() == ["tls-certificate"], untrusted.to_text()
    finally:
        tls.stop()


def test_a_silent_sip_target_is_reported_after_the_timeout(
    bind: BindServer, zone_with: list[str]
) -> None:
    dead = Responder(users=set(USERS), silent=True).start()
    try:
        zone = new_zone(bind, zone_with, records(dead))
        started = time.monotonic()
        report = run_verify(spec_for(bind, zone, dead), bind.server, TIMEOUT)
        elapsed = time.monotonic() - started
    finally:
        dead.stop()
    # every probe runs in parallel, so the whole verify takes about one timeout
    assert elapsed < 3 * TIMEOUT, elapsed
    assert report.defect_codes() == ["target-unreachable", "target-unreachable"]
    assert "no answer over UDP" in report.defects[0].message
    assert "no answer over TCP" in report.defects[1].message


def test_srv_target_outside_the_asked_servers_zones_goes_to_the_fallback(
    bind: BindServer, sip: Responder, zone_with: list[str]
) -> None:
    """The zone's primary refuses names it is not authoritative for; a client's recursive
    resolver would answer them, so verify asks the fallback (the system resolver) for those."""
    from fixtures.bind import zone_text

    from sipctl.providers.dns.query import Nameserver, gather, make_resolver
    from sipctl.reconciler.verify.rfc3263 import resolve

    other = BindServer()
    other.start(zones={"elsewhere.test": zone_text("elsewhere.test", "pbx IN A 127.0.0.1\n")})
    try:
        zone = new_zone(
            bind, zone_with, f"_sip._udp IN SRV 10 0 {sip.udp_port} pbx.elsewhere.test.\n"
        )
        primary = make_resolver(Nameserver("127.0.0.1", bind.port), TIMEOUT)
        refused = resolve(gather(zone, primary))
        assert "dns-error" in [d.code for d in refused.defects]
        fallback = make_resolver(Nameserver("127.0.0.1", other.port), TIMEOUT)
        answers = gather(zone, primary, lambda: fallback)
        res = resolve(answers)
        assert res.defects == ()
        assert res.hops[0].addresses == ("127.0.0.1",)
        assert any("asked the system resolver" in n for n in res.notes)
    finally:
        other.stop()


def test_an_answer_from_another_address_is_named(bind: BindServer, zone_with: list[str]) -> None:
    """A multihomed server answering from another port or address: the probe sees the answer,
    verify names the defect (RFC 3581: NATed callers never get such replies)."""
    stray = Responder(users=set(USERS), reply_from_other=True).start()
    try:
        zone = new_zone(bind, zone_with, records(stray))
        report = run_verify(spec_for(bind, zone, stray), bind.server, TIMEOUT)
    finally:
        stray.stop()
    assert report.defect_codes() == ["reply-from-other-address"], report.to_text()
    udp = [p for p in report.probes if p.result.transport == "udp"]
    assert all(p.result.status in (200, 404) and p.result.answered_from for p in udp)
    assert "(from 127.0.0.1:" in report.to_text()
