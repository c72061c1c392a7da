"""A saved plan whose changes are not what its spec makes of the live state is refused.

A plan is an artefact a pipeline passes from the plan job to the apply job. ``apply PLAN``
re-read the live state and the spec inside the plan, and refused a plan made stale, but
then applied the saved changes as they were: an artefact whose A record's address was
changed (its spec and its line of text left as they were) moved the domain's calls to
another host.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import EXAMPLES
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.errors import EXIT_REFUSED

_TAMPERS = ["address", "after", "described", "action", "drop", "add"]


def _tamper(plan: dict[str, Any], index: int, how: str) -> None:
    changes = [c for t in plan["targets"] for c in t["changes"]]
    change = changes[index % len(changes)]
    if how == "address":
        change["address"]["name"] = "x" + change["address"]["name"]
    elif how == "after":
        change["after"] = {"ttl": 60, "records": ["198.51.100.66"]}
    elif how == "described":
        change["described"] = [*change.get("described", []), "+ nothing to see here"]
    elif how == "action":
        change["action"] = "update" if change["action"] != "update" else "create"
    else:
        target = next(t for t in plan["targets"] if change in t["changes"])
        if how == "drop":
            target["changes"].remove(change)
        else:
            target["changes"].append({**change, "address": {**change["address"], "name": "z"}})


# slow: eight plans and sixteen applies of the example (13 s), left to the whole suite so
# that the fast tier stays an edit-test loop; test_the_plan_as_saved_is_applied stays fast
@pytest.mark.slow
@settings(max_examples=examples(8), deadline=None, suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, 200), how=st.sampled_from(_TAMPERS))
def test_an_edited_plan_is_refused_and_changes_nothing(
    index: int,
    how: str,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path_factory.mktemp("forged")
    monkeypatch.chdir(work)
    shutil.copy(EXAMPLES / "mysite.yaml", work / "mysite.yaml")
    assert run(["plan", "-f", "mysite.yaml", "--out", "plan.json"]) == 0
    plan = json.loads((work / "plan.json").read_text())
    _tamper(plan, index, how)
    (work / "forged.json").write_text(json.dumps(plan))
    capsys.readouterr()
    assert run(["apply", "forged.json", "--auto-approve"]) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert "its changes are not what its spec makes of the live state" in err, err
    assert not (work / "state" / "mysite.ru.zone").exists(), "nothing was written"
    assert not (work / "state" / "pbx" / "etc" / "asterisk" / "extensions_sipctl.conf").exists()
    assert run(["apply", "plan.json", "--auto-approve", "--no-verify"]) == 0  # the true one


def test_the_plan_as_saved_is_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(EXAMPLES / "mysite.yaml", tmp_path / "mysite.yaml")
    assert run(["plan", "-f", "mysite.yaml", "--out", "plan.json"]) == 0
    assert run(["apply", "plan.json", "--auto-approve", "--no-verify"]) == 0
    assert run(["plan", "-f", "mysite.yaml", "--detailed-exitcode"]) == 0
    assert "203.0.113.10" in (tmp_path / "state" / "mysite.ru.zone").read_text()
