"""The details of an update (reconciler/diff.py): exact, and linear in the value's size."""

from __future__ import annotations

import re
from typing import Any

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


@settings(max_examples=400, deadline=None)
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
