"""What a run over many domains prints with --quiet, and how a refused plan reads in --json.

--quiet keeps the result: with thousands of domains that is the domains with changes,
refusals and errors, not a "No changes" block and a table row for each of the others (40,000
lines at 10,000 domains). A refused plan's --json says "refused" and why, for one spec as
for a directory of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from sipctl.cli import run

SPEC = """\
version: 1
domain: {domain}
servers:
  - host: {host}.{domain}
    ipv4: [{address}]
transports: {{udp: {{}}, tcp: {{}}}}
dns:
  provider: zonefile
  file: {domain}.zone
  create_file: true
"""


def _write(where: Path, domain: str, host: str = "pbx", address: str = "192.0.2.10") -> Path:
    spec = where / f"{domain}.yaml"
    spec.write_text(SPEC.format(domain=domain, host=host, address=address))
    return spec


@pytest.fixture
def customers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """30 domains applied; then one changed, one refused (its host renamed: 5 of its 8
    records replaced), one broken."""
    for index in range(30):
        _write(tmp_path, f"c{index:02d}.example")
    assert run(["apply", "-f", str(tmp_path), "--auto-approve", "--no-verify"]) == 0
    _write(tmp_path, "c05.example", address="192.0.2.11")
    _write(tmp_path, "c17.example", host="pbx9")
    (tmp_path / "c23.example.yaml").write_text("version: 1\ndomain: c23.example\nbogus: 1\n")
    capsys.readouterr()
    return tmp_path


def test_quiet_prints_only_the_domains_that_need_the_reader(
    customers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "-f", str(customers), "--no-color"]) == 1
    loud = capsys.readouterr().out
    assert loud.count("No changes.") == 27 and loud.count(" no changes ") == 27

    assert run(["--quiet", "plan", "-f", str(customers), "--no-color"]) == 1
    out = capsys.readouterr().out
    titles = [line for line in out.splitlines() if line.startswith("=== ")]
    assert titles == [
        f"=== {name} ({customers / name}.yaml) ==="
        for name in ("c05.example", "c17.example", "c23.example")
    ]
    assert "No changes" not in out and "no changes  +0" not in out
    assert "+ dns A pbx.c05.example 192.0.2.11" in out  # the changed domain's plan
    assert "refused: refused for safety" in out  # the refusal, under its plan's reasons
    assert "error: " in out and "unknown key 'bogus'" in out  # the error
    # the sections, and one line of counts: no table, no row per domain
    assert "DOMAIN" not in out
    assert out.splitlines()[-1] == (
        "30 domain(s): 28 ok, 2 failed, 30 file(s) skipped; --quiet left out 27 domain(s) "
        "with no changes and why 30 file(s) were skipped."
    )
    assert len(out.splitlines()) < len(loud.splitlines()) // 3

    # apply of the directory shows the same, and its result line
    assert run(["--quiet", "apply", "-f", str(customers), "--auto-approve", "--no-verify"]) == 1
    out = capsys.readouterr().out
    assert "No changes" not in out and "c05.example" in out
    assert out.splitlines()[-1].startswith("30 domain(s): 28 ok, 2 failed")


def test_quiet_many_domains_markdown_leaves_out_the_unchanged(
    customers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--quiet", "plan", "-f", str(customers), "--markdown"]) == 1
    comment = capsys.readouterr().out
    assert comment.count("<!-- sipctl-plan:") == 3
    assert "27 domain(s) with no changes are left out here." in comment


def test_quiet_help_says_what_it_keeps(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    words = " ".join(capsys.readouterr().out.split())
    assert "only the domains with changes, refusals or errors" in words, words


@pytest.mark.parametrize("one", [True, False], ids=["one spec", "a directory"])
def test_a_refused_plan_says_refused_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], one: bool
) -> None:
    """One spec's refused plan said "status": "planned" (exit 3): now the same word as a
    refused domain of a directory, and why, with its plan still there."""
    spec = _write(tmp_path, "mysite.example")
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    _write(tmp_path, "mysite.example", host="pbx9")
    capsys.readouterr()
    assert run(["plan", "-f", str(spec if one else tmp_path), "--json"]) == 3
    document = json.loads(capsys.readouterr().out)
    (domain,) = document["domains"]
    assert domain["status"] == "refused"
    assert "the plan deletes or replaces 5 of 8 managed records" in domain["error"]
    assert domain["plan"]["summary"] == {"add": 5, "change": 0, "destroy": 5}
    assert domain["plan"]["refusals"]
    assert run(["schema", "--output", "plan"]) == 0
    jsonschema.validate(document, json.loads(capsys.readouterr().out))
