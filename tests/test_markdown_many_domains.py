"""plan -f DIR --markdown is one merge-request comment (examples/gitops post it whole): with
many domains it still fits the forge's limit, GitHub's 65,536 characters, which refuses a
longer one and fails the pipeline's step. A small run's comment is unchanged."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from sipctl.cli import run
from sipctl.reconciler.views import MARKDOWN_LIMIT

SPEC = """\
version: 1
domain: {domain}
servers:
  - host: pbx.{domain}
    ipv4: [192.0.2.10]
    ipv6: ["2001:db8::10"]
transports: {{udp: {{}}, tcp: {{}}}}
dns:
  provider: zonefile
  file: {domain}.zone
  create_file: true
"""


def _specs(where: Path, count: int) -> None:
    for index in range(count):
        domain = f"customer-{index:04d}-with-a-long-name.example"
        (where / f"{domain}.yaml").write_text(SPEC.format(domain=domain))


def test_many_domains_fit_one_comment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _specs(tmp_path, 90)
    started = time.monotonic()
    assert run(["plan", "-f", str(tmp_path), "--markdown", "--no-color"]) == 0
    comment = capsys.readouterr().out
    assert time.monotonic() - started < 30
    assert len(comment) <= MARKDOWN_LIMIT, len(comment)
    assert "more domain plan(s) left out here" in comment
    assert "90 domain(s): 90 ok, 0 failed." in comment  # the count holds every domain
    assert comment.count("<!-- sipctl-plan:") == comment.count("## customer-")
    MarkdownIt("commonmark").parse(comment)  # a comment a CommonMark parser reads


def test_a_few_domains_are_shown_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _specs(tmp_path, 3)
    assert run(["plan", "-f", str(tmp_path), "--markdown", "--no-color"]) == 0
    comment = capsys.readouterr().out
    assert comment.count("### sipctl plan for") == 3
    assert "left out" not in comment and "not listed here" not in comment


def test_thousands_of_failed_specs_still_fit_one_comment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table's failure lines were not capped: 3,000 invalid specs made 750 KB."""
    for index in range(3000):
        domain = f"customer-{index:04d}-with-a-long-name.example"
        (tmp_path / f"{domain}.yaml").write_text(f"version: 1\ndomain: {domain}\nbogus: 1\n")
    assert run(["plan", "-f", str(tmp_path), "--markdown", "--no-color"]) == 1
    comment = capsys.readouterr().out
    assert len(comment) <= MARKDOWN_LIMIT, len(comment)
    told = comment.count(": error: ")
    assert 0 < told < 3000
    assert f"... {3000 - told} more failure(s), not listed here" in comment
    # every section left out is a failure's: none is counted as a plan
    assert "more domain plan(s)" not in comment
    left = int(re.search(r"\.\.\. (\d+) more failed domain\(s\) left out here", comment)[1])
    assert left + comment.count("\n## customer-") + comment.startswith("## ") == 3000
    assert "3000 domain(s): 0 ok, 3000 failed." in comment
    MarkdownIt("commonmark").parse(comment)


@pytest.mark.parametrize("broken", [20, 40])
def test_what_is_left_out_is_counted_as_plans_and_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], broken: int
) -> None:
    """The line standing for the sections left out counted failed domains as "domain
    plan(s)" said to be in the artefact, which holds no plan of a failed domain. Now each
    kind is counted, and the line says truly where each failure is told (40 failures: the
    table gives way to a count of the last of them)."""
    _specs(tmp_path, 90)
    for index in range(broken):  # after the others: the sections left out hold both kinds
        domain = f"zz-broken-{index:02d}.example"
        (tmp_path / f"{domain}.yaml").write_text(f"version: 1\ndomain: {domain}\nbogus: 1\n")
    assert run(["plan", "-f", str(tmp_path), "--markdown", "--no-color"]) == 1
    comment = capsys.readouterr().out
    assert len(comment) <= MARKDOWN_LIMIT, len(comment)
    lines = [line for line in comment.splitlines() if "left out here" in line]
    found = re.fullmatch(
        r"\.\.\. (\d+) more domain plan\(s\) and (\d+) more failed domain\(s\) left out "
        r"here: each whole plan is in the pipeline's artefact \(plan --out\); (.*)\.",
        lines[0],
    )
    assert found is not None, lines
    plans, failures, where = int(found[1]), int(found[2]), found[3]
    assert plans + comment.count("## customer-") == 90
    assert failures + comment.count("## zz-broken-") == broken
    assert f"{90 + broken} domain(s): 90 ok, {broken} failed." in comment
    told = len(re.findall(r"zz-broken-\d+\.example\.yaml: error: ", comment))
    assert (told == broken) == (broken == 20)  # both wordings are met
    if told == broken:
        assert where == "each failure is told in the table below"
    else:
        assert where == (
            f"the table below tells {told} of these failures, and sipctl plan -f without "
            "--markdown tells each"
        )
        assert f"... {broken - told} more failure(s), not listed here" in comment
    MarkdownIt("commonmark").parse(comment)
