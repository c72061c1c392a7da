"""Many domains in one run: 20 zone-file domains, one broken spec, overlapping claims refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.bind import BindServer, bind_env, dns_spec

from sipctl.cli import run
from sipctl.providers.transport.host_lock import FileLock


def _zonefile_spec(domain: str, ip: str = "192.0.2.10") -> str:
    return (
        f"version: 1\ndomain: {domain}\n"
        f"servers: [{{host: pbx.{domain}, ipv4: ['{ip}']}}]\n"
        "users: {director: 105}\n"
        f"dns: {{provider: zonefile, file: ../zones/{domain}.zone, create_file: true}}\n"
    )


@pytest.fixture
def zones_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The zones live beside the specs' directory (specs/ and zones/ of one checkout), so
    the admin allows them in the runner profile, as a user of this layout does; so are the
    dir: targets standing in for the shared host and web root (host/, web/)."""
    profile = tmp_path / "runner-profile.yaml"
    profile.write_text("version: 1\nzone_files: [zones]\ndir_targets: [host, web]\n")
    monkeypatch.setenv("SIPCTL_PROFILE", str(profile))


@pytest.fixture
def customers(tmp_path: Path, zones_allowed: None) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    (tmp_path / "zones").mkdir()
    for n in range(20):
        (specs / f"c{n:02d}.yaml").write_text(_zonefile_spec(f"customer{n:02d}.example"))
    (specs / "c07.yaml").write_text(
        _zonefile_spec("customer07.example").replace("director: 105", "director: 1o5")
    )
    return specs


@pytest.mark.usefixtures("zones_allowed")
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


@pytest.mark.usefixtures("zones_allowed")
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


@pytest.mark.usefixtures("zones_allowed")
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


@pytest.mark.usefixtures("zones_allowed")
def test_out_names_an_existing_directory_for_one_spec_or_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pipeline that makes its artifact directory first still gets its plans there."""
    (tmp_path / "zones").mkdir()
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("a", "b"):
        (specs / f"{name}.yaml").write_text(_zonefile_spec(f"{name}.example"))
    several = tmp_path / "several"
    several.mkdir()
    assert run(["plan", "-f", str(specs), "--out", str(several)]) == 0
    assert sorted(p.name for p in several.iterdir()) == [
        "a.example.plan.json",
        "b.example.plan.json",
    ]
    one = tmp_path / "one"
    one.mkdir()
    capsys.readouterr()
    assert run(["plan", "-f", str(specs / "a.yaml"), "--out", str(one)]) == 0
    saved = one / "a.example.plan.json"
    captured = capsys.readouterr()
    assert f"sipctl apply {saved}" in captured.out + captured.err
    assert [p.name for p in one.iterdir()] == ["a.example.plan.json"]
    assert run(["apply", str(one), "--no-verify"]) == 0
    assert "pbx.a.example" in (tmp_path / "zones" / "a.example.zone").read_text()


def _without_times(data: dict[str, Any]) -> str:
    for domain in data["domains"]:
        if domain["plan"] is not None:
            del domain["plan"]["created_at"]
    return json.dumps(data, sort_keys=True)


@pytest.mark.usefixtures("zones_allowed")
def test_worker_processes_plan_exactly_what_one_process_plans(
    customers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Loading, checking and planning in forked workers (--parallel 2) gives the same plans,
    the same shares and the same refusals as doing it all in this process (--parallel 1)."""
    assert run(["apply", "-f", str(customers), "--auto-approve", "--no-verify"]) == 1
    capsys.readouterr()
    (customers / "c03.yaml").write_text(_zonefile_spec("customer03.example", ip="192.0.2.77"))
    seen: dict[str, list[str]] = {}
    for parallel in ("1", "2"):
        for shard in (None, "1/3", "2/3", "3/3"):
            argv = ["plan", "-f", str(customers), "--json", "--parallel", parallel]
            code = run([*argv, *(["--shard", shard] if shard else [])])
            out = _without_times(json.loads(capsys.readouterr().out))
            seen.setdefault(str(shard), []).append(f"{code} {out}")
    for shard, (serial, forked) in seen.items():
        assert serial == forked, f"--shard {shard}: the worker processes planned otherwise"
    assert seen["None"][0].startswith("1 "), "c07 is broken"
    full = json.loads(seen["None"][0][2:])
    statuses = {d["domain"]: d["status"] for d in full["domains"]}
    assert statuses["customer03.example"] == "planned"
    assert statuses["customer07.example"] == "error", (
        "a spec that does not load is named by its domain"
    )
    shares = [json.loads(seen[f"{i}/3"][0][2:])["domains"] for i in (1, 2, 3)]
    assert sorted(d["spec"] for share in shares for d in share) == sorted(
        d["spec"] for d in full["domains"]
    ), "the shares split the specs"

    # a spec of any share overlapping another is refused by every share, before any read
    (customers / "c19.yaml").write_text(_zonefile_spec("customer03.example"))
    for parallel in ("1", "2"):
        for shard in ("1/3", "2/3", "3/3"):
            argv = ["plan", "-f", str(customers), "--shard", shard, "--parallel", parallel]
            assert run(argv) == 1
            err = capsys.readouterr().err
            assert "c19.yaml: DNS NAPTR customer03.example. is also claimed by" in err


@pytest.mark.usefixtures("zones_allowed")
def test_two_specs_that_publish_their_page_into_one_web_root_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each apply would replace the other domain's page (found trying eight specs of one
    hoster that all kept the example's publish line)."""
    (tmp_path / "zones").mkdir()
    specs = tmp_path / "specs"
    specs.mkdir()
    page = (
        "transports: {{udp: {{port: 5060}}, wss: {{port: 8089}}}}\n"
        "webrtc: {{host: pbx.{domain}, publish: 'dir:../web:{root}'}}\n"
    )
    for name in ("a", "b"):
        text = _zonefile_spec(f"{name}.example") + page.format(
            domain=f"{name}.example", root="/var/www/html/call"
        )
        (specs / f"{name}.yaml").write_text(text)
    assert run(["plan", "-f", str(specs)]) == 1
    err = capsys.readouterr().err
    assert "b.yaml: webrtc page on dir:../web (/var/www/html/call) is also managed by" in err

    (specs / "b.yaml").write_text(
        (specs / "b.yaml").read_text().replace("/var/www/html/call", "/var/www/b/call")
    )
    assert run(["plan", "-f", str(specs)]) == 0
    assert "is also managed by" not in capsys.readouterr().err


@pytest.mark.usefixtures("zones_allowed")
def test_validate_of_several_specs_names_what_two_of_them_claim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate DIR said '2 valid' for two specs that plan and apply of the same directory
    refuse together; it now names the overlap, in text and JSON."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(_zonefile_spec("same.example"))
    (specs / "b.yaml").write_text(_zonefile_spec("same.example", ip="192.0.2.99"))
    assert run(["validate", "-f", str(specs)]) == 1
    out, err = capsys.readouterr()
    assert "b.yaml: DNS NAPTR same.example. is also claimed by" in err
    assert "2 spec(s): 2 valid, 0 invalid; 6 overlapping claim(s) between them." in out

    assert run(["validate", "-f", str(specs), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert {e["file"] for e in report["errors"]} == {str(specs / "b.yaml")}

    (specs / "b.yaml").write_text(_zonefile_spec("other.example"))
    assert run(["validate", "-f", str(specs)]) == 0


_SHARED_HOST = "firewall: {target: 'dir:../host', extra: ['tcp/443']}\n"


def _two_domains_on_one_host(tmp_path: Path) -> Path:
    """a.example and b.example: their own zone files, one host's firewall with the same
    rules (one host group: applied one after the other)."""
    (tmp_path / "zones").mkdir()
    (tmp_path / "host").mkdir()
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("a", "b"):
        (specs / f"{name}.yaml").write_text(_zonefile_spec(f"{name}.example") + _SHARED_HOST)
    return specs


def _table_row(out: str, domain: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(domain + " "))


@pytest.mark.usefixtures("zones_allowed")
def test_a_host_whose_first_domain_fails_leaves_the_rest_not_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first domain of a host fails under its locks (its zone is locked by another run):
    the host's later domains are not tried, and say why; never "planned"; each its own time."""
    import fcntl

    from sipctl.providers.transport.host_lock import zonefile_lock_site
    from sipctl.schemas.loader import load_spec

    specs = _two_domains_on_one_host(tmp_path)
    zone = tmp_path / "zones" / "a.example.zone"
    lock = zonefile_lock_site(load_spec(specs / "a.yaml"))
    assert isinstance(lock, FileLock)
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    with lock.path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code = run(["apply", "-f", str(specs), "--auto-approve", "--no-verify", "--parallel", "2"])
    out = capsys.readouterr().out
    assert code == 3, "a was refused (its lock is held), b followed it: the run is refused"
    assert "refused" in _table_row(out, "a.example")
    b_row = _table_row(out, "b.example")
    assert "not applied" in b_row and "planned" not in b_row
    assert f"b.yaml: not applied: a.example ({specs / 'a.yaml'}) failed first" in out
    assert "2 domain(s): 0 ok, 2 failed." in out
    assert not zone.exists() and not (tmp_path / "zones" / "b.example.zone").exists()
    assert not [p for p in (tmp_path / "host").iterdir() if p.name != ".sipctl.lock"]

    assert run(["apply", "-f", str(specs), "--auto-approve", "--no-verify", "--parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert " applied " in _table_row(out, "a.example")
    assert " applied " in _table_row(out, "b.example")


@pytest.mark.usefixtures("zones_allowed")
@pytest.mark.parametrize("parallel", ["1", "2"])
def test_saved_plans_sharing_a_host_layer_apply_one_after_the_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], parallel: str
) -> None:
    """Saved plans go through the host grouping of planned domains: two plans writing the
    same rules to one host's firewall are applied one after the other (with --parallel 2
    they raced for the host's lock), and the second is not stale for what the first wrote
    (with --parallel 1 it was)."""
    specs = _two_domains_on_one_host(tmp_path)
    plans = tmp_path / "plans"
    assert run(["plan", "-f", str(specs), "--out", str(plans)]) == 0
    capsys.readouterr()
    assert run(["apply", str(plans), "--no-verify", "--parallel", parallel]) == 0
    out = capsys.readouterr().out
    assert " applied " in _table_row(out, "a.example")
    assert " applied " in _table_row(out, "b.example")
    assert "2 domain(s): 2 ok, 0 failed." in out
    assert run(["plan", "-f", str(specs), "--detailed-exitcode"]) == 0


@pytest.mark.usefixtures("zones_allowed")
def test_out_directory_names_the_plans_this_run_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan --out DIR into the directory of an earlier run left that run's plans of a spec
    since removed, or since broken (a failed domain's plan is not saved), beside the new
    ones without a word, and 'sipctl apply DIR' applied them too: the old spec's changes."""
    (tmp_path / "zones").mkdir()
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("a", "b", "c"):
        (specs / f"{name}.yaml").write_text(_zonefile_spec(f"{name}.example"))
    plans = tmp_path / "plans"
    assert run(["plan", "-f", str(specs), "--out", str(plans)]) == 0
    (specs / "b.yaml").unlink()
    (specs / "c.yaml").write_text(
        _zonefile_spec("c.example").replace("director: 105", "director: 1o5")
    )
    (plans / "notes.txt").write_text("not a plan\n")
    capsys.readouterr()
    assert run(["plan", "-f", str(specs), "--out", str(plans)]) == 1
    captured = capsys.readouterr()
    said = captured.out + captured.err
    old = [str(plans / "b.example.plan.json"), str(plans / "c.example.plan.json")]
    assert f"not written by this plan: {', '.join(old)}" in said, said
    assert f"'sipctl apply {plans}' would apply them too" in said, said
    assert "a.example.plan.json: not written" not in said and "notes.txt" not in said
    assert run(["plan", "-f", str(specs / "a.yaml"), "--out", str(plans)]) == 0
    captured = capsys.readouterr()
    assert "not written by this plan" not in captured.out + captured.err, "one spec: one file"


@pytest.mark.usefixtures("zones_allowed")
def test_drift_takes_the_shards_plan_and_apply_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan and apply split a directory into --shard I/N jobs; the nightly drift of the same
    directory had no --shard, so a hoster's sharded pipeline read every domain in one job.
    Each share's drift reads exactly the domains its plan and apply take."""
    (tmp_path / "zones").mkdir()
    specs = tmp_path / "specs"
    specs.mkdir()
    names = [f"d{n}.example" for n in range(8)]
    for name in names:
        (specs / f"{name}.yaml").write_text(_zonefile_spec(name))
    assert run(["apply", "-f", str(specs), "--auto-approve", "--no-verify"]) == 0
    with (tmp_path / "zones" / "d3.example.zone").open("a") as zone:
        zone.write("_sip._tcp 3600 IN SRV 1 0 5060 elsewhere.example.net.\n")
    seen: list[str] = []
    for index in (1, 2, 3):
        capsys.readouterr()
        shard = f"{index}/3"
        run(["plan", "-f", str(specs), "--shard", shard, "--json"])
        planned = {d["domain"] for d in json.loads(capsys.readouterr().out)["domains"]}
        code = run(["drift", "-f", str(specs), "--shard", shard, "--json"])
        drifted = {d["domain"]: d["status"] for d in json.loads(capsys.readouterr().out)["domains"]}
        assert set(drifted) == planned, shard
        assert code == (2 if "d3.example" in drifted else 0), drifted
        seen += drifted
    assert sorted(seen) == sorted(names), "each domain in exactly one share"


@pytest.mark.usefixtures("zones_allowed")
def test_a_plan_only_shown_keeps_no_live_state_and_apply_keeps_it(customers: Path) -> None:
    """Planning many domains to show them keeps each one's plan, not what was read to make
    it (its records, names and providers: a third of the memory of a run of 10,000 zones,
    held until the run ended); apply and drift keep it, for what they do next."""
    from sipctl.cli_common import load_checked
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.gitops.multi import plan_specs

    (customers / "c07.yaml").unlink()  # the broken one

    def make_ctx(loaded: Any) -> RunContext:
        return RunContext(loaded.base_dir)

    paths = sorted(customers.iterdir())
    shown, _ = plan_specs(paths, load_checked, make_ctx, None, 1, None, keep=False)
    kept, _ = plan_specs(paths, load_checked, make_ctx, None, 1, None, keep=True)
    assert len(shown) == len(kept) == 19
    for only, full in zip(shown, kept, strict=True):
        assert only.plan_run is None and only.ctx is None
        assert full.plan_run is not None and full.plan_run.runs
        assert only.plan is not None and full.plan is not None
        assert only.plan.to_json()["targets"] == full.plan.to_json()["targets"]
    for domain in kept:
        assert domain.ctx is not None
        domain.ctx.close()
