"""The pure judgements of audit's probes: the call plan, enumeration, exposure, the report."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from sipctl.providers.sip_attack import Exchange
from sipctl.reconciler.audit import exposure, probes
from sipctl.reconciler.audit.report import AuditReport, Finding
from sipctl.reconciler.audit.schema import audit_report_schema
from sipctl.schemas.loader import load_spec_text


def _spec(extra: str = "") -> object:
    return load_spec_text(
        "version: 1\ndomain: mysite.ru\nusers: {director: 105, '101': 101}\n" + extra,
        source="t.yaml",
        base_dir=Path("/tmp"),
    ).spec


def test_the_call_plan_is_bounded_and_never_calls_a_declared_name_or_extension() -> None:
    plan, skipped = probes.call_plan(["director", "100", "900", "S"])
    names = [p.name for p in plan]
    assert len(names) == len(set(names)) <= 80
    assert skipped == ["100", "900", "s"] and "director" not in names
    assert {"00442079460000", "011442079460000", "+442079460000", "h", "*97"} <= set(names)
    assert {"0", "00", "000", "9", "90", "1000"} <= set(names)


def _exchange(user: str, final: int, rtt: float, **kw: bool) -> Exchange:
    return Exchange("OPTIONS", user, [final], ["x"], final, rtt, **kw)


def test_enumeration_by_code_and_by_time() -> None:
    same = [_exchange("a", 200, 3.0), _exchange("b", 200, 4.0)]
    assert probes.enumeration_findings("OPTIONS", same, same, "udp x") == []
    differ = [_exchange("n", 404, 3.0), _exchange("m", 404, 3.0)]
    (by_code,) = probes.enumeration_findings("OPTIONS", same, differ, "udp x")
    assert by_code.code == "enumeration-by-code" and "200" in by_code.title
    slow = [_exchange("a", 200, 250.0), _exchange("b", 200, 260.0)]
    (by_time,) = probes.enumeration_findings("INVITE", slow, same, "udp x")
    assert by_time.code == "enumeration-by-timing"


def test_a_ringing_call_is_critical_and_the_reject_path_is_not_a_finding() -> None:
    plan = [probes.PlannedCall("0044", "outside-line"), probes.PlannedCall("h", "special")]
    rang = Exchange("INVITE", "0044", [100, 180, 487], [], 487, 5.0, rang=True)
    rejected = Exchange("INVITE", "h", [100, 603], [], 603, 5.0)
    (finding,) = probes.call_findings(
        list(zip(plan, [rang, rejected], strict=True)), "reject", "udp x"
    )
    assert finding.code == "call-rang" and finding.severity == "critical"
    answered = Exchange("INVITE", "0044", [100, 200], [], 200, 5.0, answered=True)
    assert probes.call_findings([(plan[0], answered)], "reject", "udp x") == []
    (not_found,) = probes.call_findings([(plan[0], answered)], "not-found", "udp x")
    assert not_found.code == "call-not-rejected"


def test_version_leaks_and_allowed_ports() -> None:
    (leak,) = probes.version_leaks({"udp x": "Asterisk PBX 22.1.0"})
    assert leak.code == "version-leak"
    assert probes.version_leaks({"udp x": "TestPBX"}) == []
    spec = _spec("firewall: {ssh_port: 2222, extra: ['tcp/8088']}\n")
    knocked = {(p.proto, p.port) for p in exposure.ports_to_knock(spec)}  # type: ignore[arg-type]
    assert ("tcp", 5038) in knocked and ("tcp", 22) in knocked
    assert ("tcp", 8088) not in knocked and ("udp", 5060) not in knocked


def test_the_report_validates_against_its_schema_and_says_the_exit_code() -> None:
    report = AuditReport(domain="mysite.ru", nameserver=None)
    assert report.exit_code == 0
    report.errors.append("could not resolve")
    assert report.exit_code == 1
    report.add(probes.version_leaks({"udp x": "Asterisk 22.1"}))
    report.count("invite").requests += 1
    # a LOW finding is printed, but fails only with --fail-on low
    assert report.exit_code == 1
    report.errors.clear()
    assert report.exit_code == 0 and report.to_json()["fail_on"] == "medium"
    text = report.to_text()
    assert "LOW (1)" in text and "none at or above --fail-on medium" in text
    report.fail_on = "low"
    assert report.exit_code == 2
    jsonschema.validate(report.to_json(), audit_report_schema())
    text = report.to_text()
    assert "LOW (1)" in text and "fix:" in text and "audit: 1 finding(s): 1 low\n" in text + "\n"
    report.add([Finding("enumeration-by-code", "medium", "enumeration", "t", "w", "f")])
    report.fail_on = "high"
    assert report.exit_code == 0
    report.fail_on = "medium"
    assert report.exit_code == 2


def test_a_served_certificate_is_checked_for_names_and_expiry() -> None:
    """A real TLS handshake with a listener serving the test certificate (30 days)."""
    import socket
    import ssl
    import threading
    from datetime import UTC, datetime

    from fixtures.certs import server_certificate

    from sipctl.providers.certificate.pem import read_der_certificate
    from sipctl.providers.certificate.served import fetch_served

    cert, key = server_certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn, context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        served = fetch_served("127.0.0.1", listener.getsockname()[1], "mysite.ru", 5.0)
        thread.join(5)
    assert served.der is not None, served.problem
    facts = read_der_certificate(served.der)
    now = datetime.now(UTC)
    assert exposure.certificate_findings("tls x", facts, ["pbx.mysite.ru"], now) == []
    found = exposure.certificate_findings("tls x", facts, ["mysite.ru"], now, warn_days=45)
    assert [f.code for f in found] == ["certificate-name-mismatch", "certificate-expiring"]
    assert "mysite.ru" in found[0].title and "expires in 29 day" in found[1].title


def test_undeclared_samples_are_never_a_declared_name_in_any_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Callers reach names in any case: a sample that is a declared name in capitals would
    ring a real phone."""
    drawn = iter(["abc123", "abc123", "def456"])
    monkeypatch.setattr(probes.secrets, "token_hex", lambda _n: next(drawn))
    assert probes.undeclared_names(["SIPCTLAUDITABC123", "director"], 1) == ["sipctlauditdef456"]
