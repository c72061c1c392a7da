"""Accepted hostile names reach Asterisk's own config loader with the meaning sipctl meant.

A few Hypothesis-generated specs (users whose names and extensions carry the characters the
user-name rule allows next to hostile ones) are applied to a real Asterisk 22, one after the
other; after each reload ``dialplan show`` lists exactly the declared names besides sipctl's
fixed extensions, and ``pjsip show endpoint sipctl-guest`` still lands guests in the guest
context. Asterisk round trips are few on purpose (each example is one apply and two shows).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from asterisk_helpers import apply_spec, spec_data, write_spec
from fixtures.asterisk import AsteriskInstance
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import KEY, hostile_text, set_at

from sipctl.errors import SpecError
from sipctl.providers.asterisk.cli import dialplan_extensions
from sipctl.schemas.loader import load_spec_text

pytestmark = pytest.mark.asterisk

_NAME_CHARS = "abcXYZ0189._+*~"


@st.composite
def hostile_users(draw: st.DrawFn) -> dict[str, str]:
    """Names of allowed characters, some with a hostile tail (refused, then dropped)."""
    users: dict[str, str] = {}
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.text(alphabet=_NAME_CHARS, min_size=1, max_size=8))
        if draw(st.booleans()):
            name += draw(hostile_text)
        users[name] = str(draw(st.sampled_from(["101", "105", "106"])))
    return users


def accepted_users(pbx: AsteriskInstance, users: dict[str, str]) -> dict[str, Any] | None:
    data = spec_data(pbx, users={})
    for name, extension in users.items():
        if name.lower() in {n.lower() for n in data["users"]}:
            continue  # one name in any case (validate's cross checks refuse the second)
        trial = set_at(data, ("users", KEY), name)
        trial["users"][name] = extension
        try:
            load_spec_text(yaml.safe_dump(trial, allow_unicode=True))
        except SpecError:
            continue
        data = trial
    return data if data["users"] else None


@pytest.fixture(scope="module")
def fixed_extensions(
    asterisk: AsteriskInstance, tmp_path_factory: pytest.TempPathFactory
) -> set[str]:
    """What sipctl's guest context holds with no user at all."""
    apply_spec(write_spec(tmp_path_factory.mktemp("none"), spec_data(asterisk, users={})))
    return dialplan_extensions(asterisk.rx("dialplan show guest-call"))


@settings(
    max_examples=examples(4),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(users=hostile_users())
def test_accepted_names_are_the_extensions_asterisk_loads(
    users: dict[str, str],
    asterisk: AsteriskInstance,
    fixed_extensions: set[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = accepted_users(asterisk, users)
    if data is None:
        return
    spec: Path = write_spec(tmp_path_factory.mktemp("spec"), data)
    apply_spec(spec)
    shown = dialplan_extensions(asterisk.rx("dialplan show guest-call"))
    # each name in lower case, once (the catch-all looks up every other case of it)
    names = {name.lower() for name in data["users"]}
    assert shown == fixed_extensions | names, (data["users"], shown)
    endpoint = asterisk.rx("pjsip show endpoint sipctl-guest")
    assert re.search(r"context\s*:\s*guest-call", endpoint)
