"""A spec value thousands of characters long is quoted into an error by its beginning and its
length (``output.shown_value``), never whole: the error's file:line:col and key stay readable.
Over the real loader, for every string and number field of the schema."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import FULL_SPEC, KEY, get_at, number_paths, set_at, string_paths

from sipctl.errors import SpecError
from sipctl.output import LONGEST_SHOWN, VALUE_CUT, scrubbed, shown_value
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.problems import problem_fields

# The longest problem line a long value may make: the words of the longest message sipctl
# says about a value, its file, its key and LONGEST_SHOWN characters of the value.
LONGEST_LINE = 500
_PLACE = re.compile(r"^s\.yaml:[0-9]+:[0-9]+: ")


def _concrete(path: tuple[Any, ...]) -> tuple[Any, ...]:
    """``path`` with each KEY before its end made a key FULL_SPEC has there (or a name)."""
    parts: list[Any] = []
    for part in path:
        if part == KEY:
            there = get_at(FULL_SPEC, tuple(parts))
            names = [k for k in there if isinstance(k, str)] if isinstance(there, dict) else []
            part = names[0] if names else "k1"
        parts.append(part)
    return tuple(parts)


VALUE_PATHS = sorted(
    {_concrete(p) for p in string_paths() if p[-1] != KEY}
    | {_concrete(p) for p, _node in number_paths() if p[-1] != KEY},
    key=str,
)
_PLACEHOLDER = "LONG-VALUE-HERE"

# Text as people paste it: letters of several scripts (multi-byte in UTF-8), combining accents,
# emoji joined by U+200D, quotes and backslashes (escaped in a quoted value), spaces.
long_text = st.text(
    alphabet=st.sampled_from(
        [*"abcXYZ019.-_:/@ ", "\\", "'", '"', "é", "ж", "中", "\u0301", "👍", "\u200d", "🏽"]
    ),
    min_size=200,
    max_size=3000,
)
long_digits = st.integers(81, 6000).map(lambda n: "9" * n)  # over 4,300: Python's own limit


def problem_lines(data: dict[str, Any], value: str) -> list[str]:
    text = yaml.safe_dump(data, allow_unicode=True, width=float("inf"), sort_keys=False)
    text = text.replace(_PLACEHOLDER, value)  # a number as a plain scalar, any number of digits
    try:
        load_spec_text(text, source="s.yaml")
    except SpecError as exc:
        return exc.problems or [exc.message]
    return []


@pytest.mark.parametrize("path", VALUE_PATHS, ids=lambda p: ".".join(map(str, p)))
@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(long_text, long_digits), quoted=st.booleans())
def test_an_over_long_value_is_quoted_by_its_beginning_and_length(
    path: tuple[Any, ...], value: str, quoted: bool
) -> None:
    if quoted or not value.isdigit():
        lines = problem_lines(set_at(FULL_SPEC, path, value), value)
    else:
        lines = problem_lines(set_at(FULL_SPEC, path, _PLACEHOLDER), value)
    for line in lines:
        assert len(line) <= LONGEST_LINE, line[:300]
        fields = problem_fields(line, "s.yaml")  # as validate --json reads it back
        assert fields["line"] is not None and fields["key"], line[:300]
    if lines:
        assert any(f": {path[0]}" in line for line in lines), lines


def test_a_5000_digit_extension_is_cut_to_its_beginning_and_length() -> None:
    lines = problem_lines(set_at(FULL_SPEC, ("users", "director"), "9" * 5000), "")
    assert len(lines) == 1 and len(lines[0]) < 250, lines
    assert lines[0].startswith("s.yaml:") and ": users.director: '9999" in lines[0]
    assert f"{VALUE_CUT}' (5,000 characters)" in lines[0]


def test_a_number_python_will_not_read_names_its_place_and_key() -> None:
    text = yaml.safe_dump(set_at(FULL_SPEC, ("dns", "ttl"), _PLACEHOLDER), sort_keys=False)
    with pytest.raises(SpecError) as info:
        load_spec_text(text.replace(_PLACEHOLDER, "9" * 5000), source="s.yaml")
    message = info.value.message
    assert _PLACE.match(message) and ": dns.ttl: " in message, message
    assert "5,000 digits" in message and "set_int_max_str_digits" not in message


@pytest.mark.parametrize("section", ["asterisk", "fail2ban", "firewall"])
def test_a_wait_beyond_any_float_is_refused_not_a_crash(section: str) -> None:
    data = set_at(FULL_SPEC, (section, "ssh", "connect_timeout"), _PLACEHOLDER)
    text = yaml.safe_dump(data, sort_keys=False).replace(_PLACEHOLDER, "19" + "0" * 400)
    with pytest.raises(SpecError) as info:  # was OverflowError: 'unexpected error'
        load_spec_text(text, source="s.yaml")
    line = info.value.problems[0]
    assert f": {section}.ssh.connect_timeout: must be a number of seconds" in line, line
    assert "(402 digits)" in line and len(line) < 250, line


@pytest.mark.parametrize(
    "line",
    ["{key}: 1", "users:\n  {key}: 105", 'users:\n  "{key}": 105', "servers:\n  - {key}: x"],
)
def test_a_key_over_yamls_1024_characters_is_said_so(line: str) -> None:
    head = "version: 1\ndomain: example.com\n"
    for key in ("k" * 1025, "é" * 3000):
        with pytest.raises(SpecError) as info:
            load_spec_text(head + line.format(key=key) + "\n", source="s.yaml")
        message = info.value.message
        assert f"this key is {len(key):,} characters long" in message, message
        assert "at most 1,024" in message and _PLACE.match(message), message
    with pytest.raises(SpecError) as info:  # 1,024 is YAML's; the spec's own rule speaks
        load_spec_text(head + "users:\n  " + "k" * 1024 + ": 105\n", source="s.yaml")
    assert "not valid YAML" not in info.value.message


def test_shown_value_never_cuts_an_escape_or_a_character() -> None:
    for value in ("\\" * 500, "a\\" * 300, "é" * 500, "e\u0301" * 300, "👍\u200d🏽" * 200):
        shown = shown_value(value)
        assert len(shown.split(VALUE_CUT)[0]) + 1 <= LONGEST_SHOWN, shown
        beginning = shown.split(VALUE_CUT)[0] + "'"
        assert value.startswith(eval(beginning))  # a whole repr: no escape cut in two
        kept = eval(beginning)
        after = value[len(kept)]
        assert unicodedata.combining(after) == 0 and after not in "\u200d🏽", shown
        assert shown.endswith(f" ({len(value):,} characters)")
    assert shown_value("short") == "'short'"
    assert shown_value("x" * 500, None) == "x" * 79 + f"{VALUE_CUT} (500 characters)"


def test_a_url_password_in_a_long_value_is_masked_before_the_cut() -> None:
    value = "ssh://root:hunter2secret@" + "h" * 3000
    lines = problem_lines(set_at(FULL_SPEC, ("servers", 0, "host"), value), value)
    assert lines and all("hunter2" not in line for line in lines), lines
    assert all(len(line) <= LONGEST_LINE for line in lines)


def test_a_secret_cut_by_the_value_rule_is_scrubbed_to_its_beginning() -> None:
    secret = "s3cr3t-tsig-key-value"
    said = "s.yaml:3:5: x: 'aaa" + secret[:8] + VALUE_CUT + "' (4,000 characters)"
    assert secret[:8] not in scrubbed(said, [secret])


def test_the_cli_prints_the_cut_line(tmp_path: Path) -> None:
    from fixtures.common import sipctl_in_process

    spec = tmp_path / "s.yaml"
    spec.write_text(f"version: 1\ndomain: example.com\nusers:\n  director: {'9' * 5000}\n")
    run = sipctl_in_process("validate", "-f", str(spec))
    assert run.returncode == 1 and "(5,000 characters)" in run.stderr, run.stderr
    assert max(len(line) for line in run.stderr.splitlines()) < 300
