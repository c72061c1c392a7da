"""Small things a new user trips over: schema's flags, the plan's counting unit, the
extras a plan needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipctl.cli import run


def test_schema_kind_and_file_cannot_be_confused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["schema", "-o", "plan"]) == 1
    err = capsys.readouterr().err
    assert "did you mean --kind plan?" in err
    assert not (tmp_path / "plan").exists(), "no file named plan"
    assert run(["schema", "--out", "s.json"]) == 1
    assert "did you mean --out-file s.json?" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

    assert run(["schema", "--kind", "plan", "--out-file", "plan.schema.json"]) == 0
    assert json.loads((tmp_path / "plan.schema.json").read_text())["properties"]["kind"] == {
        "const": "plan"
    }
    assert run(["schema", "--output", "validate"]) == 0, "the older spelling of --kind"
    assert "sipctl validate --json" in capsys.readouterr().out
    assert run(["schema", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--out-file FILE" in shown and " -o" not in shown.split("Options:")[1]
