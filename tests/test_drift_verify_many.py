"""``drift`` and ``verify`` over several specs, as ``plan`` takes them (-f repeated, -f DIR):
the same selection and errors, each domain's report under its title or in one JSON
envelope, and the worst exit code. The hoster's example directory (zone files and dir:
PBXs, no programs; fixtures.hosting copies and applies it) is the fast part; BIND is the
live one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fixtures.bind import SECRET_ENV, BindServer, bind_env, dns_spec

from sipctl.cli import run
from sipctl.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_REFUSED
from sipctl.reconciler.gitops.domain_report import summary_table, worst
from sipctl.reconciler.gitops.multi import Domain
from sipctl.schemas.outputs import output_text

CUSTOMERS = ("alpha.example", "beta.example", "gamma.example")
HOSTS = ("pbx1.hoster.example", "pbx2.hoster.example")


def _json(kind: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """stdout: one JSON document, valid by ``sipctl schema --kind KIND``."""
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, json.loads(output_text(kind)))
    return data


def _statuses(data: dict[str, Any]) -> dict[str, str]:
    return {entry["domain"]: entry["status"] for entry in data["domains"]}


def test_drift_of_a_directory_reports_each_domain_and_one_drifted_among_them(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["drift", "-f", "."]) == 0
    out = capsys.readouterr().out
    for domain, spec in [
        ("alpha.example", "alpha.example.yaml"),
        ("pbx1.hoster.example", "pbx1.yaml"),
    ]:
        assert f"=== {domain} ({spec}) ===\nNo drift." in out, out
    assert "state: skipped: a directory" in out
    assert out.endswith("5 domain(s): 5 no drift, 1 file(s) skipped.\n"), out

    zone = Path("state/alpha.example.zone")
    zone.write_text("".join(line for line in zone.open() if "NAPTR" not in line))
    assert run(["drift", "-f", "."]) == EXIT_CHANGES
    out = capsys.readouterr().out
    alpha = out.split("=== alpha.example (alpha.example.yaml) ===\n", 1)[1].split("===", 1)[0]
    assert alpha.startswith("Drift since the last apply of alpha.example:"), alpha
    assert "- NAPTR alpha.example. was removed on the live side" in alpha
    assert "drifted resource(s)" not in out.split("=== beta.example", 1)[1]
    assert "5 domain(s): 1 drifted, 4 no drift, 1 file(s) skipped." in out

    assert run(["drift", "-f", ".", "--json"]) == EXIT_CHANGES
    data = _json("drift", capsys)
    assert data["kind"] == "drift" and [s["file"] for s in data["skipped"]] == ["state"]
    assert _statuses(data) == {
        "alpha.example": "drifted",
        **{domain: "no drift" for domain in (*CUSTOMERS[1:], *HOSTS)},
    }
    (alpha_entry,) = [e for e in data["domains"] if e["domain"] == "alpha.example"]
    assert alpha_entry["spec"] == "alpha.example.yaml" and alpha_entry["error"] is None
    assert alpha_entry["drift"]["count"] == 1

    # a domain that fails does not hide another's drift; the error wins the exit code
    beta = hosting_example / "beta.example.yaml"
    beta.write_text(beta.read_text() + "bogus: 1\n")
    assert run(["drift", "-f", ".", "--json"]) == EXIT_ERROR
    data = _json("drift", capsys)
    statuses = _statuses(data)
    assert statuses["alpha.example"] == "drifted" and statuses["beta.example"] == "error"
    (beta_entry,) = [e for e in data["domains"] if e["domain"] == "beta.example"]
    assert "bogus" in beta_entry["error"] and beta_entry["drift"] is None
    assert run(["drift", "-f", "."]) == EXIT_ERROR
    out = capsys.readouterr().out
    assert "- NAPTR alpha.example. was removed on the live side" in out
    assert "beta.example.yaml: error: beta.example.yaml:" in out


def test_drift_of_named_files_keeps_their_order_and_one_alone_speaks_as_before(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["drift", "-f", "pbx2.yaml", "-f", "alpha.example.yaml", "--json"]) == 0
    data = _json("drift", capsys)
    assert [e["spec"] for e in data["domains"]] == ["pbx2.yaml", "alpha.example.yaml"]
    assert "skipped" not in data
    assert run(["drift", "-f", "alpha.example.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No drift. The live systems of alpha.example") and "===" not in out


def test_drift_and_verify_refuse_what_plan_refuses(
    hosting_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same selection: a directory without a spec, and specs that claim the same
    names, are refused before anything is read, in plan's words (and --json's envelope)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.yaml").write_text("title: not a spec\n")
    shutil.copy(hosting_example / "alpha.example.yaml", hosting_example / "alpha-copy.yaml")
    for args in (["-f", str(empty)], ["-f", "."]):
        assert run(["plan", *args]) == EXIT_ERROR
        refused = capsys.readouterr().err
        assert "no sipctl specs" in refused or "also claimed by alpha-copy.yaml" in refused
        for command in ("drift", "verify"):
            assert run([command, *args]) == EXIT_ERROR
            assert capsys.readouterr().err == refused, command
            assert run([command, *args, "--json"]) == EXIT_ERROR
            data = _json(command, capsys)
            assert data["domains"] == [] and data["error"], data


def test_verify_of_a_directory_verifies_each_sip_domain_once(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host's file stands for its customers whose own files are not named; nothing
    answers at the nameserver, so every domain fails, each under its title."""
    quick = ["--nameserver", "127.0.0.1:9", "--timeout", "0.2"]
    assert run(["verify", "-f", ".", *quick, "--json"]) == EXIT_ERROR
    data = _json("verify", capsys)
    assert [(e["spec"], e["domain"], e["status"]) for e in data["domains"]] == [
        (f"{domain}.yaml", domain, "failed") for domain in CUSTOMERS
    ]
    assert all(not e["verify"]["ok"] for e in data["domains"])

    assert run(["verify", "-f", "pbx1.yaml", "-f", "alpha.example.yaml", *quick]) == EXIT_ERROR
    out = capsys.readouterr().out
    assert "=== beta.example (pbx1.yaml) ===" in out, "pbx1's other customer, through it"
    assert "=== alpha.example (alpha.example.yaml) ===" in out
    assert out.count("=== alpha.example") == 1, "once, from its own file"
    assert out.endswith("2 domain(s): 2 failed.\n"), out


def test_the_worst_code_wins_and_the_table_counts_statuses() -> None:
    assert worst([0, EXIT_CHANGES, 0]) == EXIT_CHANGES
    assert worst([EXIT_CHANGES, EXIT_ERROR]) == EXIT_ERROR, "an error over drift"
    assert worst([EXIT_CHANGES, EXIT_REFUSED]) == EXIT_REFUSED
    assert worst([]) == 0
    domains = [
        Domain(Path("a.yaml"), status="drifted"),
        Domain(Path("b.yaml"), status="no drift"),
        Domain(Path("c.yaml"), status="drifted"),
    ]
    table = summary_table(domains, column=("DRIFTED", lambda d: "1"), by_status=True)
    assert table.splitlines()[0].split() == ["DOMAIN", "SPEC", "RESULT", "DRIFTED", "TIME"]
    assert table.endswith("3 domain(s): 2 drifted, 1 no drift.\n")


def test_drift_over_bind_zones_finds_the_one_edited_by_hand(
    bind: BindServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three domains on BIND, applied; one zone edited by hand: exit 2, that one drifted.
    A fourth, never applied: no record to compare, an error (exit 1) that hides nothing."""
    zones = [bind.new_zone() for _ in range(4)]
    specs = tmp_path / "specs"
    specs.mkdir()
    for zone in zones:
        (specs / f"{zone}.yaml").write_text(dns_spec(bind, zone))
    applied, fresh = zones[:3], zones[3]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_ENV, bind_env(bind)[SECRET_ENV])
        for zone in applied:
            spec = str(specs / f"{zone}.yaml")
            assert run(["apply", "-f", spec, "--auto-approve", "--no-verify"]) == 0
        moved = specs / f"{fresh}.yaml"
        moved.rename(tmp_path / moved.name)
        assert run(["drift", "-f", str(specs)]) == 0, capsys.readouterr()
        assert "3 domain(s): 3 no drift." in capsys.readouterr().out

        drifted = applied[1]
        bind.update(drifted, add=[("_sip._udp", 300, "SRV", "10 0 5070 asterisk")])
        serials = [bind.serial(zone) for zone in zones]
        assert run(["drift", "-f", str(specs), "--parallel", "2", "--json"]) == EXIT_CHANGES
        data = _json("drift", capsys)
        assert _statuses(data) == {
            zone: "drifted" if zone == drifted else "no drift" for zone in applied
        }
        (entry,) = [e for e in data["domains"] if e["domain"] == drifted]
        (how,) = {(d["kind"], d["how"]) for t in entry["drift"]["targets"] for d in t["drift"]}
        assert how == ("SRV", "changed")

        (tmp_path / moved.name).rename(moved)  # a domain with no record of an apply
        assert run(["drift", "-f", str(specs)]) == EXIT_ERROR
        out = capsys.readouterr().out
        assert f"~ SRV _sip._udp.{drifted}. was changed on the live side" in out
        assert f"{moved.name}: error: no record of a last apply was found" in out
        assert [bind.serial(zone) for zone in zones] == serials, "drift changes nothing"
    for zone in zones:
        bind.delete_zone(zone)


def test_target_of_a_hosters_directory_passes_over_the_files_without_that_layer(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host's file has no dns section and a customer's has nothing else: --target dns
    over the directory plans (applies, reads for drift) the customers' records and names the
    host files skipped; --target firewall the reverse. It was each host file's error (exit
    1), so --target could not be used on a hoster's directory at all."""
    zone = Path("state/alpha.example.zone")
    zone.write_text("".join(line for line in zone.open() if "NAPTR" not in line))
    assert run(["plan", "-f", ".", "--target", "dns", "--detailed-exitcode"]) == EXIT_CHANGES
    out = capsys.readouterr().out
    assert "=== pbx1.hoster.example" not in out and "# dns at zonefile" in out, out
    for host in ("pbx1.yaml", "pbx2.yaml"):
        assert f"{host}: skipped: manages none of --target dns" in out, out
    assert out.endswith("3 domain(s): 3 ok, 0 failed, 3 file(s) skipped.\n"), out

    assert run(["drift", "-f", ".", "--target", "dns", "--json"]) == EXIT_CHANGES
    data = _json("drift", capsys)
    assert _statuses(data) == dict.fromkeys(CUSTOMERS, "no drift") | {"alpha.example": "drifted"}
    assert {"file": "pbx1.yaml", "reason": "manages none of --target dns"} in data["skipped"]

    assert run(["apply", "-f", ".", "--target", "dns", "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()
    assert run(["plan", "-f", ".", "--target", "firewall", "--detailed-exitcode"]) == 0
    out = capsys.readouterr().out
    assert "alpha.example.yaml: skipped: manages none of --target firewall" in out, out
    assert "pbx2.yaml: skipped: manages none of --target firewall" in out, out  # no firewall
    assert out.endswith("1 domain(s): 1 ok, 0 failed, 5 file(s) skipped.\n"), out

    # none of them has the layer: the run's error; a file alone keeps its own
    assert run(["plan", "-f", ".", "--target", "certificate"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--target certificate: none of these specs manages that layer" in err, err
    assert run(["plan", "-f", "pbx1.yaml", "--target", "dns"]) == EXIT_ERROR
    assert "pbx1.yaml has no 'dns' section" in capsys.readouterr().err
