"""The spec loader's plain way, and its short way through users, are the general way, only
faster.

A spec without anchors, aliases, tags, merge keys, duplicates or characters to check is read
the plain way (``_plain_document``: composed by libyaml in C, no position recorded); any
other text goes the marked way, ``_Builder``.

``_Builder`` reads the entries of ``users`` in a loop of its own when name and extension are
plain text, and records no position inside users and rooms (they are found by a second,
marked pass when a message needs one: ``SpecPositions``). Over thousands of texts - the
examples, and the examples with one users entry (or another line) replaced by hostile YAML:
anchors, aliases, tags, merge keys, nulls, duplicates, quotes, flow and block collections,
control characters, syntax errors - both ways give the same data (types included), the
same problems and verdicts, and ``load_spec_text`` the same messages and positions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.properties import examples, tier_share
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import SpecError
from sipctl.schemas import loader
from sipctl.schemas.loader import _Builder, _in_raw_section, load_spec_text

# The example specs (examples/ also holds a runner profile, which names no domain).
EXAMPLES = sorted(
    p
    for p in (Path(__file__).resolve().parents[1] / "examples").rglob("*.yaml")
    if any(line.startswith("domain:") for line in p.read_text().splitlines())
)

# Values and keys for a users entry: each one something the general way looks at.
# fmt: off
TOKENS = [
    "105", "0105", "+105", "-1", "1_000", "0x1F", "0o17", "1e3", ".5", "2001-01-01",
    '"105"', "'105'", '""', "''", "~", "null", "Null", "NULL", "nul", "Nothing", "",
    "<<", '"<<"', "<", "<x", "=", "yes", "no", "on", "off", "true", "True", "n", "N",
    "!!str 105", "!!int 105", "!!null x", "!!null", "!!merge <<", "! 105", "!foo 1", "!<!> x",
    "!!binary aGk=", "!!float 1", "!!bool yes", "!!map {}", "!!seq []", "!!timestamp 2001-01-01",
    "&a 105", "*a", "&a", "&a [1]", "[105, 106]", "[]", "{}", "[&b 1]", "[*b]", "{a: *b}",
    "{ring: [106, 107], timeout: 20, fallback: 101}", "{ring: [~], fallback: ~}",
    "{ring: [0105], fallback: null}", "{ring: 106, ring: 107}", "{<<: {ring: [1]}}",
    "{ring: [!!null ''], timeout: !!str 20}", "{? [a] : b}", "{? a}", "[[[[1]]]]",
    '"a\\tb"', '"a\\nb"', '"\\u2028"', '"\\x1b"', '"\\x85"', "a\tb", "\ta", "105 # comment",
    "a: b", "- x", '"', "'", "[", "{", "]", "}", "|\n    105", ">-\n    105", "? x",
    "x\u00a0y", "\u202ex", "\u00e9", "a b", " spaced", "%x", "@x", "`x", "#", "-", "---", "...",
]
# fmt: on
ENTRY = re.compile(r"^  (?P<key>[^ #:][^:]*): (?P<value>.*)$")


def outcome(text: str, *, every_position: bool) -> tuple[Any, ...]:
    """What one builder makes of ``text``: its data (types shown by repr), problems and the
    value it could not construct, or what it raised."""
    return built(text, every_position=every_position)[0]


def built(text: str, *, every_position: bool) -> tuple[tuple[Any, ...], _Builder]:
    """``outcome`` and the builder that read the text (its positions)."""
    builder = _Builder("s.yaml", every_position=every_position)
    try:
        data = builder.document(text)
    except Exception as exc:  # a verdict like any other: compared, type and message
        return ("raised", type(exc).__name__, str(exc)), builder
    failure = builder.failure
    shown = (type(failure).__name__, str(failure)) if failure is not None else None
    return ("built", repr(data), builder.problems, shown), builder


def loaded_outcome(text: str) -> tuple[Any, ...]:
    try:
        loaded = load_spec_text(text, source="s.yaml", base_dir=Path("/"))
    except SpecError as exc:
        return ("refused", str(exc), exc.problems, exc.hint)
    every = _Builder("s.yaml", every_position=True)
    every.document(text)
    where = {path: loaded.where(path) for path in every.positions}
    return ("loaded", loaded.spec.model_dump(), where)


def variants(text: str) -> Iterator[str]:
    """``text`` with each users entry's key or value, and a few other lines, replaced."""
    lines = text.split("\n")
    yield text
    for index, line in enumerate(lines):
        match = ENTRY.match(line)
        if match is None:
            continue
        in_users = any(lines[i] == "users:" for i in range(index)) and not any(
            lines[i] and not lines[i].startswith((" ", "#")) and lines[i] != "users:"
            for i in range(max(i for i in range(index) if lines[i] == "users:") + 1, index)
        )
        tokens = TOKENS if in_users else TOKENS[::7]
        for token in tokens:
            for changed in (
                f"  {match['key']}: {token}",
                f"  {token}: {match['value']}",
                f"  {match['key']}: {token}\n  {match['key']}: {token}",  # given twice
            ):
                yield "\n".join([*lines[:index], changed, *lines[index + 1 :]])


def corpus() -> list[str]:
    texts: list[str] = []
    for path in EXAMPLES:
        texts.extend(variants(path.read_text()))
    return texts


def test_the_corpus_is_large() -> None:
    assert len(corpus()) > 3000  # and varied: each example's texts are built and refused


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_short_way_builds_what_the_general_way_builds(path: Path) -> None:
    verdicts = set()
    for text in tier_share(list(variants(path.read_text()))):
        fast, partial = built(text, every_position=False)
        general, every = built(text, every_position=True)
        assert fast == general, text
        verdicts.add(fast[0])
        if fast[0] == "built":
            # Only the positions inside users and rooms are left for later.
            assert partial.positions == {
                p: v for p, v in every.positions.items() if not _in_raw_section(p)
            }
    assert verdicts == {"raised", "built"}, "the example's texts are built and refused"


def plain_outcome(text: str) -> tuple[Any, ...] | None:
    """What the plain way makes of ``text`` (None: it leaves the text to the marked way)."""
    data = loader._plain_document(text)
    return None if data is None else ("built", repr(data), [], None)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_plain_way_builds_what_the_marked_way_builds(path: Path) -> None:
    taken = 0
    for text in tier_share(list(variants(path.read_text()))):
        plain = plain_outcome(text)
        if plain is not None:
            taken += 1
            assert plain == outcome(text, every_position=True), text
    assert taken > 0, "the plain way reads a plain example"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_loading_gives_the_same_messages_and_positions(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = tier_share(list(variants(path.read_text()))[::3])
    fast = [loaded_outcome(t) for t in texts]
    # The general way: every text read the marked way, every position recorded while
    # loading, as the loader did before.
    monkeypatch.setattr(loader, "_plain_document", lambda _text: None)
    monkeypatch.setattr(loader, "_Builder", functools.partial(_Builder, every_position=True))
    assert fast == [loaded_outcome(t) for t in texts]
    assert {o[0] for o in fast} == {"refused", "loaded"}


_SCALAR = st.one_of(
    st.sampled_from(TOKENS),
    st.text(alphabet="0123456789nNuUlL~<!&*'\"[]{}:#,- \t\\x", max_size=6),
    st.text(max_size=4),
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(_SCALAR, _SCALAR), max_size=6), st.sampled_from(["block", "flow"]))
def test_any_users_section_reads_alike(entries: list[tuple[str, str]], style: str) -> None:
    if style == "block":
        users = "users:\n" + "".join(f"  {k}: {v}\n" for k, v in entries)
    else:
        users = "users: {" + ", ".join(f"{k}: {v}" for k, v in entries) + "}\n"
    text = f"version: 1\ndomain: mysite.ru\n{users}rooms: {{seminar: {{}}}}\n"
    assert outcome(text, every_position=False) == outcome(text, every_position=True)
    plain = plain_outcome(text)
    assert plain is None or plain == outcome(text, every_position=True)


@settings(max_examples=examples(50), deadline=None)
@given(
    key=st.sampled_from(["users", "domain", "reject_sound", "x"]),
    first=st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
    second=st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
)
def test_a_second_colon_on_a_line_is_explained_whichever_yaml_parser_reads_it(
    key: str, first: str, second: str
) -> None:
    """'users: director: 105' (a value with ': ' unquoted, or a lost line break): libyaml,
    which the loader uses when it is there, says 'mapping values are not allowed in this
    context', PyYAML '... here'; only the second was translated, so the first reached the
    user as libyaml's words."""
    text = f"version: 1\ndomain: mysite.ru\n{key}: {first}: {second}\n"
    with pytest.raises(SpecError) as refused:
        load_spec_text(text, "s.yaml")
    assert f"s.yaml:3:{len(key) + len(first) + 3}" in str(refused.value)
    assert "put a value that contains ': ' in quotes" in str(refused.value)
