"""The customers' DNS records of a hoster's directory on a real BIND: each customer's zone
gets NAPTR and SRV records pointing at its host's server names, applied with the host in
one run, and a second plan of the directory is empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.bind import SECRET_ENV, BindServer
from fixtures.hosting import rfc2136_customer, write_host

from sipctl.cli import run


def test_customers_records_point_at_their_hosts_servers(
    bind: BindServer,
    hosting_zones: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    zones = hosting_zones
    monkeypatch.chdir(tmp_path)
    hoster = tmp_path / "hoster"
    hoster.mkdir()
    (hoster / "pbx1.yaml").write_text(
        "version: 1\ndomain: pbx1.hoster.example\nhosting: {name: pbx1}\n"
        "transports: {udp: {port: 5060}, tcp: {port: 5060}}\n"
        "servers: [{host: sip.hoster.example, priority: 10}]\n"
        f"asterisk: {{target: 'dir:{tmp_path}/pbx1'}}\n"
    )
    for n, zone in enumerate(zones):
        (hoster / f"customer{n}.yaml").write_text(rfc2136_customer(bind, zone, f"c{n}-phones"))
    assert run(["apply", "-f", str(hoster), "--auto-approve"]) == 0, capsys.readouterr()
    for zone in zones:
        for service in ("_sip._udp", "_sip._tcp"):
            records = bind.query(f"{service}.{zone}", "SRV")
            assert len(records) == 1 and "sip.hoster.example" in records[0], records
        naptr = bind.query(zone, "NAPTR")
        assert any("_sip._udp." + zone in r for r in naptr), naptr
    dialplan = (tmp_path / "pbx1" / "etc" / "asterisk" / "extensions_sipctl.conf").read_text()
    assert all(f"[sipctl-guest-{zone}]" in dialplan for zone in zones)
    capsys.readouterr()
    assert run(["plan", "-f", str(hoster), "--detailed-exitcode"]) == 0, capsys.readouterr()


@pytest.mark.asterisk
def test_verify_of_a_host_file_verifies_each_customer(
    bind: BindServer,
    hosting_zones: list[str],
    hosting_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each customer's domain resolves (NAPTR, SRV on the real BIND, the A of the host's
    server in the hoster's own zone there) to the real Asterisk, and each of its names
    answers there."""
    from fixtures.asterisk import running_asterisk

    zones = hosting_zones
    monkeypatch.chdir(tmp_path)
    hoster = tmp_path / "hoster"
    hoster.mkdir()
    with running_asterisk() as pbx:
        server = {"host": hosting_server, "priority": 10}
        write_host(hoster, pbx, servers=[server])
        for n, zone in enumerate(zones):
            (hoster / f"customer{n}.yaml").write_text(rfc2136_customer(bind, zone, f"c{n}-phones"))
        assert run(["apply", "-f", str(hoster), "--auto-approve"]) == 0, capsys.readouterr()
        capsys.readouterr()
        code = run(["verify", "-f", str(hoster / "pbx1.yaml"), "--nameserver", bind.server])
        shown = capsys.readouterr().out
        assert code == 0, shown
        for zone in zones:
            assert f"=== {zone} ===" in shown, shown
        assert shown.count("verify: OK") == 2, shown


@pytest.mark.asterisk
def test_removing_a_customers_file_removes_its_records_and_dialplan_only(
    bind: BindServer,
    hosting_zones: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two customers on a real Asterisk 22, their records on a real BIND (TSIG). One file is
    deleted: the host's plan removes that customer's records (through the provider and key
    they were written with) and its dialplan; the other customer's zone stays record for
    record and its calls still ring its phone; a second plan is empty. A runner profile that
    no longer lets the key go to that server refuses the plan, saying what to add."""
    from fixtures.asterisk import running_asterisk
    from fixtures.rtp_phone import AnsweringPhone
    from fixtures.sip_client import SipCaller

    gone, kept = hosting_zones
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(tmp_path)
    hoster = tmp_path / "hoster"
    hoster.mkdir()
    with running_asterisk() as pbx:
        extensions = pbx.config_dir / "extensions.conf"
        phones = "".join(
            f"\n[{name}-phones]\nexten => 105,1,Dial(PJSIP/105,20)\n same => n,Hangup()\n"
            for name in ("gone", "kept")
        )
        extensions.write_text(extensions.read_text() + phones)
        pbx.rx("dialplan reload")
        write_host(hoster, pbx, servers=[{"host": "sip.hoster.example", "priority": 10}])
        (hoster / "gone.yaml").write_text(rfc2136_customer(bind, gone, "gone-phones"))
        (hoster / "kept.yaml").write_text(rfc2136_customer(bind, kept, "kept-phones"))
        assert run(["apply", "-f", str(hoster), "--auto-approve"]) == 0, capsys.readouterr()
        assert bind.query(f"_sip._udp.{gone}", "SRV"), "the customer's records were written"
        kept_records, kept_serial = bind.zone_records(kept), bind.serial(kept)
        gone_records = bind.zone_records(gone)
        dialplan = pbx.config_dir / "extensions_sipctl.conf"
        kept_lines = [ln for ln in dialplan.read_text().splitlines() if kept in ln]
        (hoster / "gone.yaml").unlink()
        capsys.readouterr()

        # the key may no longer go to that server: refused, and nothing is half applied
        profile = tmp_path / "runner.yaml"
        # (the host's Asterisk is this machine's: the admin allows it and its directory)
        profile.write_text(
            f"version: 1\ncredentials: {{}}\nlocal_paths: [{pbx.config_dir}]\n"
            "local_layers: [asterisk]\n"
        )
        monkeypatch.setenv("SIPCTL_PROFILE", str(profile))
        code = run(["apply", "-f", str(hoster / "pbx1.yaml"), "--auto-approve", "--force"])
        shown = capsys.readouterr()
        assert code == 3, shown
        assert f"customer {gone} (no file declares it)" in shown.err, shown
        assert f"{SECRET_ENV} is not a credential of the runner profile" in shown.err, shown
        assert "kind: tsig" in shown.err and bind.secret not in shown.out + shown.err
        assert bind.query(f"_sip._udp.{gone}", "SRV") and gone in dialplan.read_text()
        monkeypatch.delenv("SIPCTL_PROFILE")
        # the key itself is gone from this runner: refused the same way
        monkeypatch.delenv(SECRET_ENV)
        code = run(["plan", "-f", str(hoster / "pbx1.yaml")])
        shown = capsys.readouterr()
        assert code == 3 and f"customer {gone} (no file declares it)" in shown.err, shown
        assert SECRET_ENV in shown.err, shown
        monkeypatch.setenv(SECRET_ENV, bind.secret)

        code = run(["plan", "-f", str(hoster)])
        shown = capsys.readouterr().out
        assert f"(customer {gone}: its file is gone)" in shown, shown
        for line in (
            f"- user director@{gone} → 105",
            f"- dns SRV _sip._udp.{gone} 10 0 {pbx.sip_port} sip.hoster.example",
            f'- dns NAPTR {gone} 10 10 "s" "SIP+D2U" "" _sip._udp.{gone}',
            f'- dns TXT _sipctl.{gone} "sipctl-registry=1"',
        ):
            assert line in shown, shown
        assert "removes 1 of 2 customers" in shown and f"dns at {kept}" not in shown, shown
        assert run(["apply", "-f", str(hoster), "--auto-approve", "--force"]) == 0, (
            capsys.readouterr()
        )
        # exactly the customer's own records went; the zone's other records stay
        gone_after = bind.zone_records(gone)
        removed = set(gone_records) - set(gone_after)
        assert set(gone_after) <= set(gone_records), gone_after
        assert len(removed) == 6, removed  # 2 NAPTR, 2 SRV, the registry, the record
        assert all(
            "SIP+D2" in r or "SRV" in r or "sipctl-registry" in r or "sipctl-state" in r
            for r in removed
        ), removed
        assert not [r for r in gone_after if "_sipctl" in r], gone_after
        assert any("E2U+EMAIL" in r.upper() for r in gone_after), gone_after
        assert bind.zone_records(kept) == kept_records
        assert bind.serial(kept) == kept_serial
        after = dialplan.read_text()
        assert gone not in after
        assert [ln for ln in after.splitlines() if kept in ln] == kept_lines

        phone = AnsweringPhone(pbx.phone_port)
        try:
            offset = pbx.log_size()
            with SipCaller(pbx.sip_port) as caller:
                caller.invite("director", domain=gone, timeout=4)
            pbx.wait_log(rf"Wrong call IP=127\.0\.0\.1 domain={gone}$", offset)
            assert not phone.invites
            with SipCaller(pbx.sip_port) as caller:
                result = caller.invite("director", domain=kept, timeout=8.0, hold=0.5)
            assert 200 in result.statuses and len(phone.invites) == 1, result.statuses
        finally:
            phone.close()
        capsys.readouterr()
        code = run(["plan", "-f", str(hoster), "--detailed-exitcode"])
        assert code == 0, capsys.readouterr()
