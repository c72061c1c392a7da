"""The details of an update (reconciler/diff.py), the one diff every view shows: exact, and
linear in the value's size; DeepDiff is loaded only for a value that changed."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.reconciler.diff import value_details

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["a", "b", "1", "[1]"])
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(["x", "y", "ttl", "1"]), inner, max_size=4)
    ),
    max_leaves=12,
)


def resolve(value: Any, path: str) -> Any:
    """Follow a ``root['k'][2]`` path into a value."""
    assert path.startswith("root")
    for key, index in re.findall(r"\[(?:'((?:[^'\\]|\\.)*)'|(\d+))\]", path[4:]):
        value = value[key] if index == "" else value[int(index)]
    return value


@settings(max_examples=examples(400), deadline=None)
@given(values, values)
def test_details_are_empty_exactly_when_equal(before: Any, after: Any) -> None:
    details = value_details(before, after)
    assert (details == []) == (before == after)
    for item in details:
        if item["change"] in ("values_changed", "type_changes"):
            assert resolve(before, item["path"]) == item["before"]
            assert resolve(after, item["path"]) == item["after"]
        elif item["change"].endswith("_removed"):
            assert resolve(before, item["path"]) == item["value"]
        elif item["change"].endswith("_added"):
            assert resolve(after, item["path"]) == item["value"]


def test_one_added_extension_among_many_is_one_detail() -> None:
    before = {f"guest-call,user{i}": ["1,Dial(PJSIP/1)", "n,Hangup()"] for i in range(10_000)}
    after = {**before, "guest-call,new": ["1,Dial(PJSIP/2)"]}
    assert value_details(before, after) == [
        {
            "path": "root['guest-call,new']",
            "change": "dictionary_item_added",
            "value": ["1,Dial(PJSIP/2)"],
        }
    ]


def test_a_changed_step_is_named_by_its_position() -> None:
    details = value_details(
        {"c,105": ["1,Answer()", "n,Dial(PJSIP/105)"]},
        {"c,105": ["1,Answer()", "n,Dial(PJSIP/106)"]},
    )
    assert details == [
        {
            "path": "root['c,105'][1]",
            "change": "values_changed",
            "before": "n,Dial(PJSIP/105)",
            "after": "n,Dial(PJSIP/106)",
        }
    ]


def test_a_text_is_compared_line_by_line() -> None:
    before = {"file": "a\nb\nc\nd\n", "mode": 420}
    after = {"file": "a\nB\nc\nd\ne\n", "mode": 420}
    assert value_details(before, after) == [
        {"path": "root['file']", "change": "line_removed", "line": 2, "value": "b"},
        {"path": "root['file']", "change": "line_added", "line": 2, "value": "B"},
        {"path": "root['file']", "change": "line_added", "line": 5, "value": "e"},
    ]


def test_every_view_is_laid_out_from_the_details_it_is_given() -> None:
    """The human, Markdown and drift views read what changed from the details, the one
    diff: given none, they ask the differ; given the plan's, they never compare again."""
    from sipctl.reconciler.views import value_lines

    before = {"ttl": 3600, "records": ["10 0 5060 a.", "20 0 5060 b."]}
    after = {"ttl": 3600, "records": ["10 0 5060 a.", "20 0 5070 b."]}
    details = value_details(before, after)
    assert (
        list(value_lines(before, after))
        == list(value_lines(before, after, details))
        == [
            (" ", "ttl: 3600"),
            (" ", "10 0 5060 a."),
            ("-", "20 0 5060 b."),
            ("+", "20 0 5070 b."),
        ]
    )
    # what the details do not name is shown unchanged, whatever the values hold
    assert ("-", "20 0 5060 b.") not in list(value_lines(before, after, []))


def test_a_plan_with_no_changes_does_not_import_deepdiff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sipctl.cli import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sipctl.yaml").write_text(
        "version: 1\ndomain: mysite.example\n"
        "servers: [{host: sip.mysite.example, ipv4: [192.0.2.10]}]\n"
        "dns:\n  provider: zonefile\n  file: mysite.zone\n  create_file: true\n"
    )
    assert run(["apply", "--auto-approve", "--no-verify"]) == 0
    for name in [m for m in sys.modules if m == "deepdiff" or m.startswith("deepdiff.")]:
        monkeypatch.delitem(sys.modules, name)
    capsys.readouterr()
    assert run(["plan", "-v", "--detailed-exitcode"]) == 0
    assert "No changes." in capsys.readouterr().out
    assert "deepdiff" not in sys.modules
    # and a changed record is diffed by it
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(spec.read_text().replace("192.0.2.10", "192.0.2.11"))
    assert run(["plan", "-v", "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert "- 192.0.2.10" in out and "+ 192.0.2.11" in out
    assert "deepdiff" in sys.modules
