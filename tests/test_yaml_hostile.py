"""Hostile YAML: alias bombs, deep nesting and control characters are refused fast, with file:line.

The bound is measured in a child process (its own peak RSS), as `sipctl validate` would run on
every pull request of the example pipelines.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sipctl.errors import SpecError
from sipctl.schemas.loader import MAX_DEPTH, load_spec_text

BASE = "version: 1\ndomain: mysite.ru\n"


def alias_bomb(levels: int = 9) -> str:
    """The 369-byte "billion laughs" of the issue: each level repeats the one before 9 times."""
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [BASE.rstrip("\n"), "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for prev, name in itertools.pairwise(names[:levels]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def flow_nesting(size: int = 999_000) -> str:
    half = (size - len(BASE) - 8) // 2
    return BASE + "users: " + "[" * half + "]" * half + "\n"


def block_nesting(size: int = 999_000) -> str:
    lines = [BASE.rstrip("\n"), "users:"]
    total, depth = len(BASE), 1
    while total < size:
        line = " " * depth + f"k{depth}:"
        lines.append(line)
        total += len(line) + 1
        depth += 1
    return "\n".join(lines) + " 1\n"


_MEASURE = """
import json, sys, time
from sipctl.errors import SpecError
from sipctl.schemas.loader import load_spec
start = time.perf_counter()
try:
    load_spec(sys.argv[1])
    message = None
except SpecError as exc:
    message = str(exc)
elapsed = time.perf_counter() - start
# VmHWM is this process's own peak (ru_maxrss keeps the forking parent's across exec)
status = open("/proc/self/status").read()
rss = int(status.split("VmHWM:")[1].split()[0]) * 1024
print(json.dumps({"seconds": elapsed, "rss": rss, "error": message}))
"""


def measure(tmp_path: Path, text: str) -> dict[str, object]:
    path = tmp_path / "sipctl.yaml"
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    result["path"] = str(path)
    return result


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (alias_bomb, "YAML anchors (&a) are not allowed"),
        # libyaml's scanner reads ahead inside brackets and stops at its own limit first
        (flow_nesting, "nesting depth"),
        (block_nesting, f"nested more than {MAX_DEPTH} levels"),
    ],
    ids=["alias-bomb", "1MB-flow-nesting", "1MB-block-nesting"],
)
def test_hostile_yaml_is_refused_fast_in_bounded_memory(
    tmp_path: Path, make: object, expected: str
) -> None:
    assert callable(make)
    text = make()
    if make is alias_bomb:
        assert len(text.encode()) < 400
    else:
        assert len(text) >= 990_000  # just below the 1 MB size limit
    result = measure(tmp_path, text)
    error = str(result["error"])
    assert expected in error, error
    assert error.startswith(f"{result['path']}:"), error  # file:line:col
    assert float(str(result["seconds"])) < 1.0, result
    # The interpreter with sipctl's modules imported is about 50 MB; the text itself 1 MB.
    assert int(str(result["rss"])) < 100 * 1024 * 1024, result


def test_an_anchor_is_refused_at_its_own_line() -> None:
    with pytest.raises(SpecError, match=r"<spec>:2:\d+: YAML anchors"):
        load_spec_text(BASE.replace("domain: mysite.ru", "domain: &d mysite.ru") + "x: *d\n")


def test_nesting_at_the_limit_is_only_a_schema_question() -> None:
    depth = MAX_DEPTH - 1  # the top-level mapping is the first level
    text = BASE + "users: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text)
    assert "nested" not in str(info.value)


@pytest.mark.parametrize(
    "char", ["\r", "\n", "\x0b", "\x0c", "\x00", "\x85", "\u2028", "\u2029", "\x1b", "\x9b"]
)
def test_a_control_character_in_a_value_names_file_line_and_key(char: str) -> None:
    escaped = json.dumps(f"/var/log/x{char}[evil]")  # a YAML double-quoted string
    text = BASE + f"fail2ban:\n  logpath: {escaped}\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text, source="s.yaml")
    message = str(info.value)
    assert message.startswith("s.yaml:4:12: fail2ban.logpath contains U+"), message
    assert char not in message


def test_a_control_character_in_a_key_is_refused() -> None:
    text = BASE + 'users:\n  "bob\\r[x]": 105\n'
    with pytest.raises(SpecError, match=r"s.yaml:4:3: users: a key contains U\+000D"):
        load_spec_text(text, source="s.yaml")


def test_a_raw_control_character_is_refused_by_the_reader() -> None:
    with pytest.raises(SpecError, match=r"s.yaml:2:\d+: not valid YAML: U\+0001"):
        load_spec_text("version: 1\ndomain: a\x01b.ru\n", source="s.yaml")


def test_duplicate_keys_and_positions_still_work_with_libyaml() -> None:
    with pytest.raises(SpecError, match=r"s.yaml:3:1: domain: this key is given twice"):
        load_spec_text(BASE + "domain: other.ru\n", source="s.yaml")
    loaded = load_spec_text(BASE + "users:\n  '0105': 0105\n", source="s.yaml")
    assert loaded.spec.users == {"0105": "0105"}
    assert loaded.where(("users", "0105")) == "s.yaml:4:3"
