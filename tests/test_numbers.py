"""Every number of a spec says what it expects, whatever it is given (schemas/numbers.py).

The numbers are found in the spec's own JSON Schema (tests/spec_strategies.py), so a number
added tomorrow is covered the day it is added; each is given to the real loader as YAML.
A whole number refused says "a whole number [of seconds] from LOW to HIGH", a wait "a
number of seconds from 0.01 to HIGH": for text, fractions, ``.nan``, infinity (YAML reads
``1.0e+400`` as that) and numbers out of range alike; ``1e-300`` is no wait at all.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import FULL_SPEC, KEY, PathKey, number_paths, set_at

from sipctl.errors import SpecError
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.numbers import MAX_WAIT, MIN_WAIT, Wait

# Numbers with a rule of their own: an extension (digits, kept as written), the version, and
# the free-form arguments of an octoDNS provider.
_OWN_RULES = ("users", "dns.octodns", "version")
_NAMES = {"users": "sales", "rooms": "seminar"}


def _bounded() -> list[tuple[PathKey, dict[str, Any]]]:
    found = []
    for path, node in number_paths():
        dotted = ".".join(str(p) for p in path)
        if path[-1] != "timeout" and dotted.startswith(_OWN_RULES):
            continue
        found.append((tuple(_NAMES.get(str(path[0]), p) if p == KEY else p for p in path), node))
    return found


NUMBERS = _bounded()
BASE = {**FULL_SPEC, "users": {"director": 105, "sales": {"ring": [106]}}, "rooms": {"seminar": {}}}


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def _message(path: PathKey, value: object) -> str | None:
    """What the loader says about the key at ``path`` given ``value`` (None: nothing)."""
    text = yaml.safe_dump(set_at(BASE, path, value), sort_keys=False)  # type: ignore[arg-type]
    try:
        load_spec_text(text, "s.yaml")
    except SpecError as exc:
        key = f": {_dotted(path)}: "
        said = [line.split(key, 1)[1] for line in exc.problems or [exc.message] if key in line]
        return said[0] if said else None
    return None


def _says_expected(message: str, node: dict[str, Any]) -> bool:
    low, high = node["minimum"], node["maximum"]
    if node["type"] == "number":
        return f"must be a number of seconds from {low:g} to {high:g}" in message
    return "a whole number" in message and f"from {low} to {high}" in message


def test_every_number_is_found() -> None:
    dotted = {_dotted(path) for path, _ in NUMBERS}
    assert {"dns.ttl", "dns.timeout", "asterisk.ssh.connect_timeout", "fail2ban.bantime"} <= dotted
    assert "users.sales.timeout" in dotted and "rooms.seminar.max_members" in dotted
    for path, node in NUMBERS:
        assert "minimum" in node and "maximum" in node, path
        if node["type"] == "number":  # every wait: MIN_WAIT at least, a week at most
            assert node["minimum"] == MIN_WAIT and node["maximum"] <= MAX_WAIT, path


@pytest.mark.parametrize(
    "value",
    [math.inf, -math.inf, math.nan, 1e300, 1e-300, "1e400", "abc", True, None, [1], {"a": 1}],
    ids=repr,
)
def test_a_wrong_number_says_what_was_expected(value: object) -> None:
    for path, node in NUMBERS:
        message = _message(path, value)
        assert message is not None, (path, value)
        assert _says_expected(message, node), (path, value, message)
        assert "Value error" not in message and "Input should" not in message


def test_a_number_out_of_range_says_the_range() -> None:
    for path, node in NUMBERS:
        low, high = node["minimum"], node["maximum"]
        below, above = (low / 2, high * 2) if node["type"] == "number" else (low - 1, high + 1)
        for value in (below, above):
            message = _message(path, value)
            assert message is not None and _says_expected(message, node), (path, value)
            assert f"(found {value})" in message, message


def test_a_wait_too_short_to_answer_says_why() -> None:
    message = _message(("dns", "timeout"), 1e-300)
    assert message == (
        "must be a number of seconds from 0.01 to 300 (found 1e-300): a wait under 0.01 s "
        "ends before any answer can arrive"
    )
    assert _message(("dns", "timeout"), 0.01) is None
    assert _message(("dns", "timeout"), "1e-1") is None  # YAML's text for 0.1, read as before


def test_infinity_and_the_ttl_of_the_report() -> None:
    """``ttl: 1e400`` is text to YAML; ``1.0e+400`` is infinity: both say what a TTL is."""
    for written in ("1e400", "1.0e+400", ".inf", ".nan", "3600.0"):
        text = yaml.safe_dump(BASE, sort_keys=False).replace("ttl: 3600", f"ttl: {written}")
        with pytest.raises(SpecError) as caught:
            load_spec_text(text, "s.yaml")
        [line] = [p for p in caught.value.problems if ": dns.ttl: " in p]
        assert "must be a whole number of seconds from 1 to 2147483647 (found " in line, line
    assert line.endswith("(found 3600.0): write 3600")


def test_a_wait_is_never_longer_than_a_week() -> None:
    with pytest.raises(ValueError):
        Wait(MAX_WAIT * 2)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    number=st.sampled_from(NUMBERS),
    value=st.one_of(st.floats(), st.integers(-(10**12), 10**12), st.just(2**70)),
)
def test_a_number_is_taken_exactly_when_its_rule_allows_it(
    number: tuple[PathKey, dict[str, Any]], value: float
) -> None:
    path, node = number
    low, high = node["minimum"], node["maximum"]
    whole = isinstance(value, int) or node["type"] == "number"
    allowed = whole and not math.isnan(value) and low <= value <= high
    message = _message(path, value)
    if allowed:
        assert message is None or not _says_expected(message, node), (path, value, message)
    else:
        assert message is not None and _says_expected(message, node), (path, value, message)


def test_the_fleet_configuration_s_waits_follow_the_same_rule(tmp_path: Path) -> None:
    from sipctl.reconciler.fleet.config import load_config

    path = tmp_path / "fleet.yaml"
    path.write_text("apply: {heartbeat: 0.000001, lock_ttl: .nan, lock_wait: 2m}\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    expected = "must be a number of seconds from 0.01 to 604800 (found "
    said = {line.split(": ")[1]: line for line in caught.value.problems}
    assert expected + "1e-06): a wait under 0.01 s" in said["apply.heartbeat"]
    assert expected + ".nan): not a number" in said["apply.lock_ttl"]
    assert "apply.lock_wait" not in said
