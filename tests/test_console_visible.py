"""What sipctl prints is shown, never obeyed: a control character or a bidirectional
override in a file's name or in live data reaches the terminal or the CI log escaped; only
sipctl's own colors stay sequences."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.output import visible

ACTED_ON = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
RED = "\x1b[31m"
COLOR = re.compile("\x1b\\[[0-9;]*m")


@given(st.text())
def test_nothing_a_terminal_acts_on_is_left(text: str) -> None:
    shown = visible(text)
    assert ACTED_ON.search(shown) is None
    if ACTED_ON.search(text) is None:
        assert shown == text, "text without them is untouched"
    assert json.loads(json.dumps(shown, ensure_ascii=False)) == shown


@given(st.lists(st.text(), min_size=1), st.text())
def test_sipctl_s_own_colors_stay_when_it_colors(parts: list[str], text: str) -> None:
    colored = RED.join(visible(part) for part in parts)
    assert visible(colored, colors=True) == colored
    assert RED not in visible(colored) or len(parts) == 1
    # whatever the text, only color sequences are left to act on
    assert ACTED_ON.search(COLOR.sub("", visible(text, colors=True))) is None


def test_a_file_named_with_an_escape_is_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A customer's file named to clear the screen or recolor the log (\\x1b[2J) is named
    with the escape written out, in the titles, the table and the errors."""
    (tmp_path / "a\x1b[2Jb.yaml").write_text("version: 1\ndomain: a..example\n")
    (tmp_path / "c\u202eexample.yaml").write_text("version: 1\ndomain: c..example\n")
    assert run(["plan", "-f", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert ACTED_ON.search(shown) is None, shown
    assert "a\\x1b[2Jb.yaml" in shown and "c\\u202eexample.yaml" in shown, shown
    assert run(["plan", "-f", str(tmp_path), "--json"]) == 1
    specs = [d["spec"] for d in json.loads(capsys.readouterr().out)["domains"]]
    assert sorted(specs) == sorted(str(p) for p in tmp_path.iterdir()), "JSON: the names"


def test_a_directory_with_a_file_named_across_lines_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line break in a file's name would forge a line of the table ('x.example  ok'):
    -f DIR refuses the directory, naming the file on one line."""
    (tmp_path / "a.yaml\nx.example  ok.yaml").write_text("version: 1\ndomain: a.example\n")
    for command in ("plan", "drift", "verify", "validate"):
        assert run([command, "-f", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"Error: {tmp_path}: a file's name holds a line break (")
        assert "'a.yaml\\nx.example  ok.yaml'" in err and err.count("\n") == 1, err
