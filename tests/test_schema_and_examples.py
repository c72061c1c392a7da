"""The committed JSON Schema is current, and every example validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.common import EXAMPLES, REPO

from sipctl.cli import run
from sipctl.schemas import load_spec
from sipctl.schemas.jsonschema import schema_text


def test_committed_schema_is_up_to_date() -> None:
    committed = (REPO / "schemas" / "sipctl.schema.json").read_text()
    assert committed == schema_text(), (
        "schemas/sipctl.schema.json is out of date: run 'sipctl schema --out-file schemas/sipctl.schema.json'"
    )


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["title"] == "sipctl spec, version 1"
    assert "users" in printed["properties"]


def _is_spec(path: Path) -> bool:
    """Specs start with 'version: 1' and name a domain; examples/ also holds CI pipelines and
    a runner profile (gitops/runner-profile.yaml), which are not specs."""
    lines = path.read_text().splitlines()
    return "version: 1" in (ln.strip() for ln in lines) and any(
        ln.startswith("domain:") for ln in lines
    )


EXAMPLE_FILES = sorted(p for p in EXAMPLES.rglob("*.y*ml") if _is_spec(p))


def test_there_are_examples() -> None:
    assert any(p.name == "mysite.yaml" for p in EXAMPLE_FILES)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_spec(path)
    assert run(["validate", "-f", str(path)]) == 0, capsys.readouterr().err
