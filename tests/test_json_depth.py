"""Every JSON sipctl reads goes through one reader (``json_text.read_json``), which refuses
a nesting deeper than any JSON sipctl writes before it parses: ``json.loads`` parses by
recursion, and ``[[[[...`` in a saved plan ended ``sipctl show`` and ``apply PLAN`` in
"unexpected error (RecursionError) ... This is a bug". A number of thousands of digits,
which ``json.loads`` refuses with a bare ValueError, is refused in words too.

Found by the tryout; each property fails on the code before the reader.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.json_text import MAX_JSON_DEPTH, JsonTooDeep, read_json

# Opening brackets of any kind, as a hand-made or damaged file nests them.
_OPENERS = st.lists(st.sampled_from(["[", '{"a":', '{"[":', "[1,"]), min_size=1, max_size=40)


def _nested(openers: list[str], depth: int, inner: str = "0") -> str:
    """``depth`` levels, the openers repeated in turn, closed properly."""
    chosen = [openers[i % len(openers)] for i in range(depth)]
    closers = ["]" if o.startswith("[") else "}" for o in reversed(chosen)]
    return "".join(chosen) + inner + "".join(closers)


@settings(max_examples=examples(100), deadline=None)
@given(openers=_OPENERS, depth=st.integers(1, 200_000), closed=st.booleans())
def test_any_nesting_parses_or_is_refused_as_too_deep(
    openers: list[str], depth: int, closed: bool
) -> None:
    text = _nested(openers, depth)
    if not closed:  # a file cut short: the brackets never close
        text = text[: len(text) - depth]
    try:
        value = read_json(text)
    except JsonTooDeep as exc:
        assert depth > MAX_JSON_DEPTH
        assert f"nested more than {MAX_JSON_DEPTH} levels deep" in str(exc)
        return
    except json.JSONDecodeError:
        assert not closed
        return
    assert closed and depth <= MAX_JSON_DEPTH
    assert value == json.loads(text)


@settings(max_examples=examples(300), deadline=None)
@given(text=st.one_of(st.text(), st.text('[]{}"\\:,0123456789 ae', max_size=3000)))
def test_any_text_is_json_or_a_decode_error(text: str) -> None:
    """Odd text, brackets inside strings and escaped quotes among them: a value or a
    json.JSONDecodeError (which every reader words), nothing else."""
    with contextlib.suppress(json.JSONDecodeError):
        read_json(text)


def test_brackets_inside_strings_are_text() -> None:
    deep_text = json.dumps({"note": "[" * 10_000 + '\\"{' * 100})
    assert read_json(deep_text) == json.loads(deep_text)
    assert read_json(deep_text.encode("utf-16")) == json.loads(deep_text)


def test_a_number_of_thousands_of_digits_is_a_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        read_json('{"format_version": ' + "1" * 5000 + "}")


DEEP_PLANS = {
    "brackets": "[" * 100_000,
    "sections": '{"targets":' * 5_000 + "[]" + "}" * 5_000,
    "a few hundred": '{"format_version": "1", "targets": ' + "[" * 500 + "]" * 500 + "}",
    "a long number": '{"format_version": ' + "9" * 5000 + "}",
}


@pytest.mark.parametrize("command", [["show"], ["apply", "--auto-approve"]])
@pytest.mark.parametrize("name", sorted(DEEP_PLANS))
def test_a_deep_saved_plan_is_refused_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], name: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(DEEP_PLANS[name])
    capsys.readouterr()
    assert run([*command, str(path)]) == 1
    err = capsys.readouterr().err
    assert "unexpected error" not in err and "Traceback" not in err, err
    assert str(path) in err, err
    if name != "a long number":
        assert f"nested more than {MAX_JSON_DEPTH} levels deep" in err, err
        assert "sipctl plan" in err, err  # what to do


@pytest.mark.parametrize(
    ("found", "words"),
    [
        ("1", 'found the number 1; a plan\'s format_version is the string "1"'),
        ("1.0", 'found the number 1.0; a plan\'s format_version is the string "1"'),
        ("true", 'found true; a plan\'s format_version is the string "1"'),
        ("null", 'found null; a plan\'s format_version is the string "1"'),
        ('["1"]', 'found a list; a plan\'s format_version is the string "1"'),
        ('"2"', "found format_version '2'"),
    ],
)
def test_a_format_version_of_another_type_says_the_type_a_plan_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], found: str, words: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"format_version": ' + found + "}")
    capsys.readouterr()
    assert run(["show", str(path)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert words in err, err


def _deep_record() -> bytes:
    return (b'{"files":' * 3000) + b"{}" + (b"}" * 3000)


def test_records_sipctl_keeps_read_deep_as_unreadable() -> None:
    """The records of the last apply (on a host, beside a zone file, of the click-to-call
    page, of a load) read a deep one as they read a damaged one, never a RecursionError."""
    from sipctl.providers.load_mark import _marked
    from sipctl.providers.transport.host_lock import _parse
    from sipctl.providers.webrtc_page import parse_originals, parse_record
    from sipctl.reconciler.gitops.public_records import _parsed

    raw = _deep_record()
    assert _parse(raw) is None
    assert parse_record(raw) == {}
    assert parse_originals(raw) == {}
    assert _parsed(raw) == []
    damaged: Any = _marked(b"{")
    assert _marked(raw) == damaged


@pytest.mark.parametrize("text", ["[" * 500 + "]" * 500, "a: " + "{b: " * 300 + "1" + "}" * 300])
def test_a_deep_octodns_config_of_import_is_refused_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """``import --dns octodns:CONFIG`` read the admin's YAML (JSON is YAML too) with PyYAML,
    which composes by recursion: 500 brackets were a RecursionError. It is read as every
    admin file is, its nesting bounded before PyYAML composes it."""
    config = tmp_path / "octodns.yaml"
    config.write_text(text)
    capsys.readouterr()
    assert run(["import", "--domain", "a.example", "--dns", f"octodns:{config}"]) == 1
    err = capsys.readouterr().err
    assert "unexpected error" not in err, err
    assert f"--dns octodns:{config}:1:" in err and "levels deep" in err, err
