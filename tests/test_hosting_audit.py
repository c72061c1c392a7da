"""``sipctl audit`` of a hoster's files against the real Asterisk 22, found through BIND.

One host, two customers with the same ``director`` at 105 and a name each the other does
not have (a's ``alex`` at 106, b's ``support`` at 101; b also has a room). Audit of the host file judges every
customer's guest context and calls each customer's own name at the other's domain (To at
either domain); audit of a customer file attacks that customer's domain. A clean host is
clean and rings no phone; a hole that lets a's callers reach b's names is found by the
dialplan check and by the calls; once gone, the audit is clean again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from asterisk_helpers import Phone
from fixtures.asterisk import AsteriskInstance, running_asterisk
from fixtures.bind import BindServer
from fixtures.common import own_loopback_address
from fixtures.hosting import customer_spec, host_spec, write_hoster
from test_audit_asterisk import identified_by_address

from sipctl.cli import run
from sipctl.reconciler.audit.report import AuditReport
from sipctl.reconciler.audit.run import AuditLimits, run_audit
from sipctl.reconciler.render.asterisk_hosting import customer_context
from sipctl.schemas.loader import load_spec

pytestmark = [pytest.mark.asterisk, pytest.mark.bind]
LIMITS = AuditLimits(rate=50.0, parallel=4)

# The admin's phones' contexts: 105 is the fixture's phone (a static contact); 101 and 106
# have endpoints without a contact, so a call that reached them would fail, never ring.
PHONE_CONTEXTS = """
[a-phones]
exten => 105,1,Dial(PJSIP/105,20)
exten => 106,1,Dial(PJSIP/106,20)

[b-phones]
exten => 105,1,Dial(PJSIP/105,20)
exten => 101,1,Dial(PJSIP/101,20)
"""


# The audit knocks on every management port of the PBX's address: an address of this
# module's own, so no other listener on 127.0.0.1 (another test run's) is a finding here.
PBX = own_loopback_address()


@pytest.fixture(scope="module")
def asterisk() -> Iterator[AsteriskInstance]:
    with running_asterisk(bind_address=PBX) as instance:
        yield instance


@pytest.fixture(scope="module")
def zones(bind: BindServer, asterisk: AsteriskInstance) -> Iterator[list[str]]:
    port = asterisk.sip_port
    records = (
        '@ IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp\n'
        '@ IN NAPTR 20 10 "s" "SIP+D2T" "" _sip._tcp\n'
        f"_sip._udp IN SRV 10 0 {port} pbx\n_sip._tcp IN SRV 10 0 {port} pbx\n"
        f"pbx IN A {PBX}\n"
    )
    made = [bind.new_zone(extra=records), bind.new_zone(extra=records)]
    yield made
    for zone in made:
        bind.delete_zone(zone)


@pytest.fixture(scope="module")
def phone(asterisk: AsteriskInstance) -> Iterator[Phone]:
    made = Phone(asterisk.phone_port)
    yield made
    made.close()


@pytest.fixture(scope="module")
def hoster(
    asterisk: AsteriskInstance, zones: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Host pbx1 and customers a (zones[0]) and b (zones[1]), the host applied."""
    extensions = asterisk.config_dir / "extensions.conf"
    asterisk.write_admin_file("extensions.conf", extensions.read_text() + PHONE_CONTEXTS)
    asterisk.rx("dialplan reload")
    # the phones identified by address: no enumeration finding (test_audit_asterisk's fix)
    pjsip = (asterisk.config_dir / "pjsip.conf").read_text()
    asterisk.write_admin_file("pjsip.conf", identified_by_address(pjsip))
    asterisk.rx("module reload res_pjsip.so")
    host = host_spec(
        asterisk,
        servers=[{"host": f"pbx.{zones[0]}"}],
        fail2ban={"logpath": str(asterisk.log_path)},  # read through the target
    )
    customers = {
        "a": customer_spec("a", domain=zones[0], users={"director": "105", "alex": "106"}),
        "b": customer_spec(
            "b", domain=zones[1], users={"director": "105", "support": "101"}, rooms={"meeting": {}}
        ),
    }
    return write_hoster(tmp_path_factory.mktemp("hoster"), host, customers)


def _audit(spec: Path, bind: BindServer) -> AuditReport:
    return run_audit(load_spec(spec), bind.server, limits=LIMITS)


def _codes(report: AuditReport) -> set[str]:
    return {f.code for f in report.findings}


def test_a_clean_host_is_clean_and_no_phone_rings(
    hoster: Path, bind: BindServer, phone: Phone, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(phone.invites)
    code = run(["audit", "-f", str(hoster / "pbx1.yaml"), "--nameserver", bind.server, "--json"])
    [domain] = json.loads(capsys.readouterr().out)["domains"]
    data = domain["audit"]
    assert code == 0, json.dumps(data, indent=2)
    assert data["findings"] == [] and data["errors"] == [], json.dumps(data, indent=2)
    assert domain["domain"] == "pbx1.hoster.example"
    checks = "\n".join(data["checks"])
    assert "2 customer guest context(s) judged (and 1 rooms context(s))" in checks, checks
    # a's alex at b, b's support at a, each with To at either domain
    assert "calls across customers: 4 INVITE(s)" in checks, checks
    assert len(phone.invites) == before


def test_a_customer_file_is_attacked_at_its_own_domain(
    hoster: Path, bind: BindServer, zones: list[str], phone: Phone
) -> None:
    before = len(phone.invites)
    report = _audit(hoster / "b.yaml", bind)
    assert report.findings == [] and report.errors == [], report.to_text()
    assert report.domain == zones[1]
    assert any(f"udp {PBX}" in t for t in report.targets), report.targets
    checks = "\n".join(report.checks)
    assert "1 customer guest context(s) judged" in checks, checks
    assert "calls across customers: 4 INVITE(s)" in checks, checks
    assert len(phone.invites) == before


def test_a_path_from_one_customer_to_anothers_names_is_found(
    hoster: Path, bind: BindServer, zones: list[str], asterisk: AsteriskInstance, phone: Phone
) -> None:
    """b's support put into a's guest context at runtime: a's callers reach b's phone."""
    a, b = (customer_context(zone) for zone in zones)
    asterisk.rx(f"dialplan add extension support,1,Goto({b},support,1) into {a}")
    try:
        report = _audit(hoster / "pbx1.yaml", bind)
        by_code = {f.code: f for f in report.findings}
        assert {"dialplan-extension", "cross-customer", "cross-customer-call"} <= set(by_code), (
            report.to_text()
        )
        cross = by_code["cross-customer"]
        assert cross.severity == "high" and f"calling {zones[0]} reaches {zones[1]}" in cross.title
        call = by_code["cross-customer-call"]
        assert call.severity == "high" and f"INVITE sip:support@{zones[0]}" in (call.sent or "")
    finally:
        asterisk.rx("dialplan reload")
    assert not phone.invites
    assert _audit(hoster / "a.yaml", bind).findings == []


def test_an_include_of_another_customers_context_is_found(
    hoster: Path, bind: BindServer, zones: list[str], asterisk: AsteriskInstance
) -> None:
    """An include the catch-all hides from callers is still a path: the dialplan says so."""
    a = customer_context(zones[0])
    asterisk.rx(f"dialplan add include b-phones into {a}")
    try:
        report = _audit(hoster / "a.yaml", bind)
        titles = [f.title for f in report.findings if f.code == "cross-customer"]
        assert any("phones (its local_context): context b-phones" in t for t in titles), (
            report.to_text()
        )
        assert "dialplan-include" in _codes(report)
    finally:
        asterisk.rx("dialplan reload")
