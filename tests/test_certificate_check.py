"""A certificate sipctl does not obtain (no ``acme``) is only checked: warnings, no changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures.pebble import self_signed

from sipctl.cli import run as run_cli
from sipctl.errors import ProviderError
from sipctl.providers.base import RunContext
from sipctl.providers.certificate.pem import read_certificate
from sipctl.providers.dns.challenge import acme_providers, acme_refusal
from sipctl.reconciler.engine import make_plan
from sipctl.reconciler.verify.certificates import covers, served_defects
from sipctl.schemas.loader import load_spec_text

CERT = "/etc/asterisk/keys/asterisk.pem"
KEY = "/etc/asterisk/keys/asterisk.key"


def plan_notes(root: Path) -> tuple[list[str], list[str], bool]:
    text = (
        "version: 1\ndomain: mysite.test\ntransports: {udp: {port: 5060}, tls: {port: 5061}}\n"
        "servers: [{host: pbx.mysite.test, ipv4: [192.0.2.10]}]\n"
        f"asterisk:\n  target: dir:{root}\n  tls: {{cert_file: {CERT}, key_file: {KEY}}}\n"
    )
    loaded = load_spec_text(text, source="s.yaml", base_dir=root)
    ctx = RunContext(base_dir=root)
    try:
        run = make_plan(loaded, ctx, ["certificate"])
    finally:
        ctx.close()
    [target] = run.plan.targets
    return target.notes, target.skipped, run.plan.has_changes


def test_missing_names_and_a_foreign_key_are_warnings(tmp_path: Path) -> None:
    cert, _key = self_signed(["mysite.test"])
    _other_cert, other_key = self_signed(["mysite.test"])
    (tmp_path / "etc/asterisk/keys").mkdir(parents=True)
    (tmp_path / CERT.lstrip("/")).write_bytes(cert)
    (tmp_path / KEY.lstrip("/")).write_bytes(other_key)
    notes, skipped, changes = plan_notes(tmp_path)
    assert not changes
    assert any("lacks the name(s) pbx.mysite.test" in n for n in notes), notes
    assert any("does not match the certificate" in n for n in notes), notes
    assert any("day(s) left" in s and "issued by by hand" in s for s in skipped), skipped
    assert all("PRIVATE" not in line for line in notes + skipped)


def test_a_missing_certificate_is_a_warning(tmp_path: Path) -> None:
    notes, _skipped, changes = plan_notes(tmp_path)
    assert not changes
    assert any(f"{CERT} does not exist" in n for n in notes), notes


def test_served_defects_name_what_clients_would_refuse() -> None:
    served = read_certificate(self_signed(["*.mysite.test", "mysite.test"])[0])
    assert covers(served, "pbx.mysite.test") and not covers(served, "a.b.mysite.test")
    other = read_certificate(self_signed(["mysite.test"])[0])
    later = datetime.now(UTC) + timedelta(days=90)
    found = served_defects(
        "tls 192.0.2.1:5061", served, ["mysite.test", "x.other.test"], other, CERT, later
    )
    assert [d.code for d in found] == [
        "certificate-name-missing",
        "certificate-expired",
        "certificate-not-live",
    ]
    assert "x.other.test" in found[0].message and other.serial in found[2].message


def test_a_dns_provider_that_cannot_answer_challenges_fails_validate_and_stops_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The capability is the provider class's (answers_acme_challenges): validate asks it
    offline and names dns.provider and asterisk.tls.acme; plan says the same words."""
    (tmp_path / "zone.db").write_text(
        "$ORIGIN mysite.test.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
        "@ IN NS ns1\nns1 IN A 192.0.2.1\n"
    )
    text = (
        "version: 1\ndomain: mysite.test\ntransports: {udp: {port: 5060}, tls: {port: 5061}}\n"
        "servers: [{host: pbx.mysite.test, ipv4: [192.0.2.10]}]\n"
        "dns:\n  provider: zonefile\n  file: zone.db\n"
        f"asterisk:\n  target: dir:{tmp_path / 'pbx'}\n"
        f"  tls: {{cert_file: {CERT}, key_file: {KEY}, acme: {{email: a@mysite.test}}}}\n"
    )
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    assert run_cli(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:6:3: dns provider 'zonefile' cannot publish the ACME DNS-01" in err
    assert f"asterisk.tls.acme ({spec}:10:" in err
    assert "use a DNS provider that can (rfc2136, octodns)" in err
    assert "leave asterisk.tls.acme out" in err

    # plan refuses before reading anything, in the same words (not as live data)
    assert run_cli(["plan", "-f", str(spec)]) != 0
    planned = capsys.readouterr().err
    assert planned == err and "live systems" not in planned

    # a caller that skips the offline checks still gets the same words from the provider
    loaded = load_spec_text(text, source=str(spec), base_dir=tmp_path)
    ctx = RunContext(base_dir=tmp_path)
    try:
        with pytest.raises(ProviderError) as raised:
            make_plan(loaded, ctx, ["certificate"])
    finally:
        ctx.close()
    refusal = acme_refusal(loaded)
    assert refusal is not None and refusal in raised.value.message


def test_the_providers_named_as_able_are_those_that_declare_it() -> None:
    from sipctl.providers.base import load_provider

    for name in ("rfc2136", "octodns"):
        assert load_provider(name).answers_acme_challenges
    assert not load_provider("zonefile").answers_acme_challenges
    assert acme_providers() == ["rfc2136", "octodns"]
