"""Unknown keys at every level of a spec: the closest key of the section (did-you-mean), or
where in the spec the key belongs (``rooms.x.video`` -> ``asterisk.video``). One rule, in
schemas/messages.py, from the pydantic models' fields; proven here against the real loader
on every section of the examples."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from fixtures.common import EXAMPLES
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import SpecError
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.messages import key_locations, known_keys

Path_ = tuple[str | int, ...]


def _sections(data: Any, path: Path_ = ()) -> list[Path_]:
    """Every section (a model's mapping, not a mapping of names) in ``data``."""
    found: list[Path_] = []
    if isinstance(data, dict):
        if known_keys(path) and not _allows_extra(path):
            found.append(path)
        for key, value in data.items():
            found += _sections(value, (*path, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _sections(value, (*path, index))
    return found


def _allows_extra(path: Path_) -> bool:
    return path[-1:] == ("octodns",)  # octoDNS's provider arguments are its own


def _example(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text())


CASES = [
    (name, section)
    for name in ("mysite.yaml", "bind.yaml", "route53.yaml", "powerdns.yaml", "hosted-pbx.yaml")
    for section in _sections(_example(name))
]


def _errors(data: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(yaml.safe_dump(data), "s.yaml")
    return caught.value.problems or [caught.value.message]


def _at(data: Any, path: Path_) -> dict[str, Any]:
    node = data
    for part in path:
        node = node[part]
    assert isinstance(node, dict)
    return node


def test_the_cases_reach_deep_sections() -> None:
    deepest = max(len(section) for _name, section in CASES)
    assert deepest >= 2, "sections two levels down are tried (dns.tsig, servers[0], ...)"
    assert {("users", "sales"), ("rooms", "seminar"), ("servers", 0)} <= {s for _n, s in CASES}


@settings(max_examples=examples(60), deadline=None)
@given(case=st.sampled_from(CASES), data=st.data())
def test_a_misspelt_key_gets_the_key_of_its_section(case: tuple[str, Path_], data: Any) -> None:
    name, section = case
    spec = _example(name)
    key = data.draw(st.sampled_from(known_keys(section)))
    typo = key[:-1] + key[-1] * 2  # one letter doubled
    _at(spec, section)[typo] = 1
    dotted = ".".join(str(p) for p in section if isinstance(p, str))
    lines = [line for line in _errors(spec) if f": unknown key '{typo}'" in line]
    assert lines, f"{dotted}.{typo} is reported"
    assert f"did you mean '{key}'?" in lines[0], lines[0]


@settings(max_examples=examples(60), deadline=None)
@given(case=st.sampled_from(CASES), data=st.data())
def test_a_key_of_another_section_says_where_it_belongs(case: tuple[str, Path_], data: Any) -> None:
    name, section = case
    here = set(known_keys(section))
    elsewhere = sorted(key for key in key_locations() if key not in here)
    key = data.draw(st.sampled_from(elsewhere))
    spec = _example(name)
    _at(spec, section)[key] = 1
    lines = [line for line in _errors(spec) if f": unknown key '{key}'" in line]
    assert lines
    assert f"'{key}' belongs at {key_locations()[key][0]}" in lines[0] or (
        "did you mean" in lines[0]
    ), lines[0]


def test_the_issues_examples() -> None:
    spec = _example("mysite.yaml")
    spec["users"]["support"] = {"ring": [105], "timout": 20}
    spec["rooms"]["seminar"]["video"] = True
    errors = "\n".join(_errors(spec))
    assert "users.support.timout: unknown key 'timout'; did you mean 'timeout'?" in errors
    assert "rooms.seminar.video: unknown key 'video'; 'video' belongs at asterisk.video" in errors
    spec = _example("mysite.yaml")
    spec["asterisk"]["tls"] = {"acme": {"emial": "admin@mysite.ru"}}
    errors = "\n".join(_errors(spec))
    assert "asterisk.tls.acme.emial: unknown key 'emial'; did you mean 'email'?" in errors
