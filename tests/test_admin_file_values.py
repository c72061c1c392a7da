"""The admin's YAML files (runner profile, host profile, fleet configuration) quote a refused
value as a spec's errors do: a long one by its beginning and its length
(``output.shown_value``), never whole. PyYAML builds their aliases, also one that names the
section it stands in (``a: &x {b: *x}`` is a section that holds itself): the walk over a
refused value ends there, and a deep nesting is a line naming the file, never a
RecursionError or a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.errors import SpecError
from sipctl.output import LONGEST_SHOWN, shown_value, with_values_masked
from sipctl.reconciler.fleet.config import FleetConfig, load_config
from sipctl.schemas.profiles import HostProfile, RunnerProfile, parse_profile

# Text long enough to be cut, of characters Python's repr shows as they are: a window of it
# found in a message is the value shown whole.
long_text = st.text(alphabet="abcxyzéж019.-_:/ ", min_size=LONGEST_SHOWN + 1, max_size=400).map(
    lambda text: f"v{text.strip()}v"
)
long_digits = st.integers(LONGEST_SHOWN + 1, 500).map(lambda n: "9" * n)
short_words = st.sampled_from(["a", "1", "x.example", "env/TOKEN", "true", "5m", "-1", "null"])
anchors = st.sampled_from(["a", "b", "c"])


def _scalar(value: str) -> str:
    """``value`` as YAML writes it: plain when it may be, else double-quoted (JSON's quoting
    is YAML's)."""
    if value.replace(".", "").replace("_", "").replace("-", "").isalnum():
        return value
    return json.dumps(value, ensure_ascii=False)


def _node(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A section or list of ``children``, perhaps anchored, perhaps holding an alias of
    itself (or of another anchor, defined or not)."""
    keys = st.one_of(short_words, long_text).map(_scalar)
    mapping = st.lists(st.tuples(keys, children), max_size=4).map(
        lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    )
    listing = st.lists(children, max_size=4).map(lambda items: "[" + ", ".join(items) + "]")
    return st.tuples(st.one_of(mapping, listing), st.none() | anchors).map(
        lambda made: made[0] if made[1] is None else f"&{made[1]} {made[0]}"
    )


values = st.recursive(
    st.one_of(
        short_words.map(_scalar),
        long_text.map(_scalar),
        long_digits,
        anchors.map(lambda name: f"*{name}"),
    ),
    _node,
    max_leaves=12,
)


def _runner(text: str) -> Any:
    return parse_profile(text, "runner.yaml", RunnerProfile)


def _host(text: str) -> Any:
    return parse_profile(text, "host.yaml", HostProfile)


def _fleet(where: Path) -> Any:
    def load(text: str) -> Any:
        path = where / "fleet.yaml"
        path.write_text(text, encoding="utf-8")
        return load_config(path)

    return load


def _keys(model: Any, *nested: Any) -> list[str]:
    return sorted({*model.model_fields, *(k for m in nested for k in m.model_fields)})


FILES = {
    "runner": (_runner, _keys(RunnerProfile)),
    "host": (_host, _keys(HostProfile)),
    "fleet": (None, sorted({*FleetConfig.model_fields, "every", "heartbeat", "attempts"})),
}


def _long_values(text: str) -> list[str]:
    """The values of ``text`` a message must cut: each quoted or plain run longer than the
    cut (the generated long texts start and end with 'v'; long numbers are all 9s)."""
    found = re.findall(r'"(v[^"]*v)"', text) + re.findall(r"\b(v[^\s,:\]\}\"]*v)\b", text)
    found += re.findall(rf"9{{{LONGEST_SHOWN + 1},}}", text)
    return [value for value in found if len(value) > LONGEST_SHOWN]


def _shown_whole(messages: list[str], value: str) -> bool:
    """Whether some message holds more than LONGEST_SHOWN characters of ``value`` in a row."""
    windows = {value[i : i + LONGEST_SHOWN + 1] for i in range(len(value) - LONGEST_SHOWN)}
    return any(window in message for message in messages for window in windows)


@pytest.mark.parametrize("which", sorted(FILES))
@settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_error_of_an_admin_file_quotes_a_long_value_whole(
    which: str, data: st.DataObject, tmp_path: Path
) -> None:
    load, keys = FILES[which]
    if load is None:
        load = _fleet(tmp_path)
    key = data.draw(st.sampled_from([*keys, "drift", "apply", "rate_limits"]), label="key")
    if which == "fleet" and key in ("every", "heartbeat", "attempts"):
        section = "drift" if key == "every" else "apply"
        text = f"{section}: {{{key}: {data.draw(values, label='value')}}}\n"
    else:
        text = f"{key}: {data.draw(values, label='value')}\n"
    if which != "fleet":
        text = "version: 1\n" + text
    try:
        load(text)
    except SpecError as exc:  # a traceback (RecursionError, a TypeError) fails the test
        messages = [str(exc), *(str(p) for p in exc.problems), exc.hint or ""]
        shown = [value for value in _long_values(text) if _shown_whole(messages, value)]
        assert shown == [], messages


@pytest.mark.parametrize("which", sorted(FILES))
def test_a_self_referencing_alias_and_deep_nesting_are_errors_not_tracebacks(
    which: str, tmp_path: Path
) -> None:
    load, _ = FILES[which]
    if load is None:
        load = _fleet(tmp_path)
    head = "" if which == "fleet" else "version: 1\n"
    long = "y" * 300
    for body in (
        f"rate_limits: &x {{{long}: *x}}\n",
        f"credentials: &x {{k: *x, v: {long}}}\n",
        f"asterisk: &x [*x, {long}]\n",
        "drift: " + "[" * 500 + "]" * 500 + "\n",
    ):
        with pytest.raises(SpecError) as caught:
            load(head + body)
        for problem in [str(caught.value), *caught.value.problems]:
            assert "y" * (LONGEST_SHOWN + 1) not in problem, problem


def test_the_walk_of_a_refused_value_ends_at_an_alias_of_itself() -> None:
    """A section that holds itself, a list that holds itself, 10,000 levels deep: each
    value is cut once, the walk ends (it recursed for ever, a RecursionError)."""
    long = "z" * 200
    section: dict[str, Any] = {"v": long}
    section["self"] = section
    listing: list[Any] = [long]
    listing.append(listing)
    deep: list[Any] = [long]
    for _ in range(10_000):
        deep = [deep]
    for value in (section, listing, deep):
        message = with_values_masked(f"x: {long!r} is not a number", value)
        assert message == f"x: {shown_value(long)} is not a number"
        assert shown_value(long) == f"'{'z' * 77}…' (200 characters)"
