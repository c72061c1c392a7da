"""Many domains in one run: 20 zone-file domains, one broken spec, overlapping claims refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.bind import BindServer, bind_env, dns_spec

from sipctl.cli import run


def _zonefile_spec(domain: str, ip: str = "192.0.2.10") -> str:
    return (
        f"version: 1\ndomain: {domain}\n"
        f"servers: [{{host: pbx.{domain}, ipv4: ['{ip}']}}]\n"
        "users: {director: 105}\n"
        f"dns: {{provider: zonefile, file: ../zones/{domain}.zone, create_file: true}}\n"
    )


@pytest.fixture
def customers(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    (tmp_path / "zones").mkdir()
    for n in range(20):
        (specs / f"c{n:02d}.yaml").write_text(_zonefile_spec(f"customer{n:02d}.example"))
    (specs / "c07.yaml").write_text(
        _zonefile_spec("customer07.example").replace("director: 105", "director: 1o5")
    )
    return specs


def test_twenty_domains_in_one_run_with_one_broken_spec(
    customers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones = customers.parent / "zones"
    code = run(["apply", "-f", str(customers), "--auto-approve", "--parallel", "6", "--no-verify"])
    out = capsys.readouterr().out
    assert code == 1, "one domain failed, so the run fails"
    assert len(list(zones.glob("*.zone"))) == 19, "the other 19 were applied"
    assert not (zones / "customer07.example.zone").exists()
    assert "c07.yaml:4:" in out and "users.director" in out, "the broken spec is named"
    assert "20 domain(s): 19 ok, 1 failed." in out
    table = [line for line in out.splitlines() if line.startswith("customer")]
    assert len([line for line in table if " applied " in line]) == 19

    code = run(["plan", "-f", str(customers), "--json", "--detailed-exitcode"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    statuses = {d["domain"]: d["status"] for d in data["domains"]}
    assert list(statuses.values()).count("no changes") == 19
    assert next(d for d in data["domains"] if d["spec"].endswith("c07.yaml"))["error"]

    (customers / "c07.yaml").unlink()
    assert run(["plan", "-f", str(customers), "--detailed-exitcode"]) == 0
    out = capsys.readouterr().out
    assert out.count("No changes.") == 19
    assert "19 domain(s): 19 ok, 0 failed." in out


def test_overlapping_claims_are_refused_before_anything_is_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "zones").mkdir()
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(_zonefile_spec("same.example"))
    (specs / "b.yaml").write_text(_zonefile_spec("same.example", ip="192.0.2.99"))
    (specs / "c.yaml").write_text(_zonefile_spec("other.example"))
    assert run(["apply", "-f", str(specs), "--auto-approve", "--no-verify"]) == 1
    err = capsys.readouterr().err
    assert "b.yaml: DNS NAPTR same.example. is also claimed by" in err
    assert not list((tmp_path / "zones").iterdir()), "nothing was applied, not even c"

    firewall = "firewall: {{target: 'dir:../host', extra: [{port}]}}\n"
    (specs / "b.yaml").write_text(_zonefile_spec("b.example") + firewall.format(port="'tcp/443'"))
    (specs / "a.yaml").write_text(_zonefile_spec("a.example") + firewall.format(port="'tcp/8443'"))
    assert run(["plan", "-f", str(specs / "a.yaml"), "-f", str(specs / "b.yaml")]) == 1
    err = capsys.readouterr().err
    assert "firewall on dir:../host" in err and "different rules" in err


def test_several_zones_on_bind_applied_in_parallel(
    bind: BindServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIPCTL_TSIG_SECRET", bind_env(bind)["SIPCTL_TSIG_SECRET"])
    zones = [bind.new_zone() for _ in range(4)]
    files = []
    for zone in zones:
        path = tmp_path / f"{zone}.yaml"
        path.write_text(dns_spec(bind, zone))
        files += ["-f", str(path)]
    assert run(["apply", *files, "--auto-approve", "--parallel", "4", "--no-verify"]) == 0
    for zone in zones:
        assert bind.query(f"_sip._udp.{zone}", "SRV") == [f"10 0 5060 asterisk.{zone}."]
        assert bind.query(f"_sipctl-lock.{zone}", "TXT") == []
    assert run(["plan", *files, "--detailed-exitcode"]) == 0
    for zone in zones:
        bind.delete_zone(zone)


def test_saved_plans_of_several_domains_apply_exactly_and_a_stale_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "zones").mkdir()
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("a", "b", "c"):
        (specs / f"{name}.yaml").write_text(_zonefile_spec(f"{name}.example"))
        (tmp_path / "zones" / f"{name}.example.zone").write_text(
            f"$ORIGIN {name}.example.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
            "@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\n"
        )
    plans = tmp_path / "plans"
    assert run(["plan", "-f", str(specs), "--out", str(plans)]) == 0
    assert sorted(p.name for p in plans.iterdir()) == [
        "a.example.plan.json",
        "b.example.plan.json",
        "c.example.plan.json",
    ]
    # b's zone is edited after the plan: its saved plan is stale
    with (tmp_path / "zones" / "b.example.zone").open("a") as zone:
        zone.write("_sip._udp 3600 IN SRV 1 0 5060 elsewhere.example.net.\n")
    capsys.readouterr()
    assert run(["apply", str(plans), "--no-verify"]) == 3
    out = capsys.readouterr().out
    assert "b.example.plan.json: refused:" in out and "stale" in out
    assert "_sip._udp" in (tmp_path / "zones" / "a.example.zone").read_text()
    assert "pbx.b.example" not in (tmp_path / "zones" / "b.example.zone").read_text()
    assert run(["plan", "-f", str(specs / "a.yaml"), "--detailed-exitcode"]) == 0
