"""A saved plan is applied from the directory it was made in. ``apply PLAN`` from another
directory read the spec's relative paths (key files, zone files, dir: targets) against the
current one: "cannot read /tmp/.sipctl/tsig.key", or a zone file created where none belongs.
It is refused before anything is read or written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipctl.cli import run

SPEC = """\
version: 1
domain: mysite.ru
servers: [{host: pbx.mysite.ru, ipv4: [192.0.2.10]}]
transports: {udp: {}}
dns: {provider: zonefile, file: zones/mysite.ru.zone, create_file: true}
"""


@pytest.mark.parametrize("there", ["no spec", "another spec"])
def test_a_plan_applied_from_another_directory_is_refused(
    there: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    made, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    for where in (made, elsewhere):
        (where / "specs" / "zones").mkdir(parents=True)
    (made / "specs" / "sipctl.yaml").write_text(SPEC)
    monkeypatch.chdir(made)
    assert run(["plan", "-f", "specs/sipctl.yaml", "--out", "plan.json"]) == 0
    saved = json.loads((made / "plan.json").read_text())
    assert saved["spec"]["dir"] == str((made / "specs").resolve())
    capsys.readouterr()

    # the same relative name, another directory: the zone file would be created there
    if there == "another spec":
        (elsewhere / "specs" / "sipctl.yaml").write_text(SPEC.replace("192.0.2.10", "192.0.2.11"))
    monkeypatch.chdir(elsewhere)
    code = run(["apply", str(made / "plan.json"), "--auto-approve", "--no-verify"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"the plan was made of {made.resolve()}/specs/sipctl.yaml" in err, err
    assert "run 'sipctl apply' from the directory the plan was made in" in err, err
    assert "Traceback" not in err
    for where in (made, elsewhere):
        assert not (where / "specs" / "zones" / "mysite.ru.zone").exists()

    # where it was made, it applies (and writes its zone file there)
    monkeypatch.chdir(made)
    assert run(["apply", "plan.json", "--auto-approve", "--no-verify"]) == 0, capsys.readouterr()
    assert (made / "specs" / "zones" / "mysite.ru.zone").exists()
    assert not (elsewhere / "specs" / "zones" / "mysite.ru.zone").exists()


def test_a_plan_applies_in_another_checkout_of_its_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline's apply job checks the repository out again, maybe at another path: where
    the spec file holds the plan's text, its relative paths mean what they meant."""
    made, checkout = tmp_path / "job1", tmp_path / "job2"
    for where in (made, checkout):
        (where / "zones").mkdir(parents=True)
        (where / "sipctl.yaml").write_text(SPEC)
    monkeypatch.chdir(made)
    assert run(["plan", "-f", "sipctl.yaml", "--out", "plan.json"]) == 0
    monkeypatch.chdir(checkout)
    code = run(["apply", str(made / "plan.json"), "--auto-approve", "--no-verify"])
    assert code == 0, capsys.readouterr()
    assert (checkout / "zones" / "mysite.ru.zone").exists()
    assert not (made / "zones" / "mysite.ru.zone").exists()


def test_a_plan_without_its_directory_is_read_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan saved before the directory was recorded applies from where it is run."""
    (tmp_path / "zones").mkdir()
    (tmp_path / "sipctl.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    assert run(["plan", "-f", "sipctl.yaml", "--out", "plan.json"]) == 0
    saved = json.loads((tmp_path / "plan.json").read_text())
    del saved["spec"]["dir"]
    (tmp_path / "plan.json").write_text(json.dumps(saved))
    assert run(["apply", "plan.json", "--auto-approve", "--no-verify"]) == 0, capsys.readouterr()
    assert (tmp_path / "zones" / "mysite.ru.zone").exists()
