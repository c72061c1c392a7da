"""A hoster's repository through the steps the pipelines run (examples/gitops/): a merge
request's plan of the directory saved as one plan per domain with its Markdown comment,
those plans applied on merge, then a no-op plan and no drift. Adding a customer's file plans
only that customer; deleting one shows its removal in the merge request's plan (refused
past the safety limit, applied below it). dir: PBXs and zone files, no programs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fixtures.hosting import bind_customer

from sipctl.cli import run

DIALPLAN = Path("state/pbx1/etc/asterisk/extensions_sipctl.conf")


def _customer(directory: Path, domain: str) -> None:
    """A new customer's file, and its binding in the host file (the host's admin's line)."""
    context = f"{domain.split('.')[0]}-phones"
    (directory / f"{domain}.yaml").write_text(
        f"version: 1\ndomain: {domain}\nhost: pbx1\nlocal_context: {context}\n"
        "users: {director: 105}\n"
        f"dns: {{provider: zonefile, file: state/{domain}.zone, create_file: true}}\n"
    )
    bind_customer(directory / "pbx1.yaml", domain, context)


def _merge_request_plan(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The plan job: validate, then plan with --out and --markdown (the comment)."""
    assert run(["validate", "-f", "."]) == 0, capsys.readouterr()
    capsys.readouterr()
    code = run(["plan", "-f", ".", "--out", "plans", "--markdown"])
    return code, capsys.readouterr().out


def _merged(capsys: pytest.CaptureFixture[str]) -> None:
    """The apply job applies the reviewed plans; then nothing is left to do, nothing drifts."""
    code = run(["apply", "plans", "--no-verify"])
    assert code == 0, capsys.readouterr()
    assert run(["plan", "-f", ".", "--detailed-exitcode"]) == 0, capsys.readouterr()
    for host in ("pbx1.yaml", "pbx2.yaml"):
        assert run(["drift", "-f", host]) == 0, capsys.readouterr()


def test_a_merge_request_adding_a_customer_plans_and_applies_only_it(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = DIALPLAN.read_text()
    _customer(hosting_example, "delta.example")
    code, comment = _merge_request_plan(capsys)
    assert code == 0, comment
    assert "+ user director@delta.example → 105" in comment, comment
    assert "<!-- sipctl-plan:delta.example -->" in comment  # its own records
    assert "user director@alpha.example" not in comment, "other customers are not planned"
    assert sorted(p.name for p in Path("plans").iterdir()) == [
        f"{domain}.plan.json"
        for domain in ("alpha.example", "beta.example", "delta.example", "gamma.example")
    ] + ["pbx1.hoster.example.plan.json", "pbx2.hoster.example.plan.json"]
    _merged(capsys)
    after = DIALPLAN.read_text()
    kept = [line for line in before.splitlines() if "alpha.example" in line]
    assert [line for line in after.splitlines() if "alpha.example" in line] == kept
    assert "sipctl-guest-delta.example" in after


def test_a_merge_request_deleting_a_customer_shows_its_removal(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hosting_example / "beta.example.yaml").unlink()
    code, comment = _merge_request_plan(capsys)
    assert code == 3, comment  # one of two customers: past the 30% limit, refused
    assert "- user director@beta.example → 105" in comment, comment
    assert "- user support@beta.example → 110" in comment
    assert not Path("plans/pbx1.hoster.example.plan.json").exists()


def test_a_merged_removal_below_the_limit_removes_the_customer(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for domain in ("delta.example", "epsilon.example"):
        _customer(hosting_example, domain)
    assert run(["apply", "-f", ".", "--auto-approve", "--no-verify"]) == 0, capsys.readouterr()
    capsys.readouterr()
    before = DIALPLAN.read_text()
    (hosting_example / "beta.example.yaml").unlink()  # one of four customers
    code, comment = _merge_request_plan(capsys)
    assert code == 0, comment
    assert "- user director@beta.example → 105" in comment, comment
    _merged(capsys)
    after = DIALPLAN.read_text()
    assert "beta.example" not in after
    for domain in ("alpha.example", "delta.example", "epsilon.example"):
        kept = [line for line in before.splitlines() if domain in line]
        assert [line for line in after.splitlines() if domain in line] == kept


def test_a_host_plan_is_stale_when_a_customer_file_changed_after_the_review(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host's saved plan records the customer files it was made with: another merge that
    changes one after the review makes it stale (exit 3), as the host file's own text would.
    A host's plan of an older sipctl (no such record) is refused with what to do."""
    import json

    _customer(hosting_example, "delta.example")
    code, comment = _merge_request_plan(capsys)
    assert code == 0, comment
    host_plan = Path("plans/pbx1.hoster.example.plan.json")
    files = json.loads(host_plan.read_text())["spec"]["files"]
    assert sorted(files) == ["alpha.example.yaml", "beta.example.yaml", "delta.example.yaml"]
    customer_plan = json.loads(Path("plans/gamma.example.plan.json").read_text())
    assert list(customer_plan["spec"]["files"]) == ["pbx2.yaml"], "a customer's: its host's"
    # another merge request, merged after this one was reviewed, adds a user to alpha
    alpha = hosting_example / "alpha.example.yaml"
    alpha.write_text(alpha.read_text().replace("users:", "users:\n  newhire: 131", 1))
    assert run(["apply", "plans", "--no-verify"]) == 3
    out = capsys.readouterr().out
    assert f"{host_plan}: refused: {host_plan} is stale: files beside pbx1.yaml changed" in out
    assert "alpha.example.yaml (changed)" in out
    assert "sipctl-guest-delta.example" not in DIALPLAN.read_text(), "the host was not applied"
    delta_zone = Path("state/delta.example.zone")
    assert not delta_zone.exists() or "NAPTR" not in delta_zone.read_text(), "nor its customers"
    assert "delta.example.plan.json: not applied: pbx1.hoster.example" in out

    old = json.loads(host_plan.read_text())
    del old["spec"]["files"]
    host_plan.write_text(json.dumps(old))
    assert run(["apply", str(host_plan), "--no-verify"]) == 3
    err = capsys.readouterr().err
    assert "made by an older sipctl" in err and "run 'sipctl plan' again" in err

    shutil.rmtree("plans")
    code, comment = _merge_request_plan(capsys)
    assert code == 0, comment
    _merged(capsys)


def test_a_host_plan_is_applied_before_its_customers_plans(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plans of one host apply host first: a new customer whose own plan is refused
    (its zone edited since) is then served by the PBX but not advertised by DNS, never
    advertised by a PBX that does not serve it."""
    _customer(hosting_example, "delta.example")
    code, comment = _merge_request_plan(capsys)
    assert code == 0, comment
    Path("state/delta.example.zone").write_text(  # made by hand since the review
        "$ORIGIN delta.example.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
        "@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\n"
    )
    assert run(["apply", "plans", "--no-verify"]) == 3
    out = capsys.readouterr().out
    assert "plans/delta.example.plan.json: refused:" in out and "stale" in out
    assert "sipctl-guest-delta.example" in DIALPLAN.read_text(), "the host was applied first"
    assert "NAPTR" not in Path("state/delta.example.zone").read_text()
