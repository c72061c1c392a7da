"""The generic diff of desired resources against live state: a pure function."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import Address, LiveState, Resource, Value


def diff(desired: Sequence[Resource], live: LiveState) -> list[Change]:
    """Changes that turn ``live`` into ``desired``, sorted by address.

    Live resources that are not desired are deleted: a provider only reports what it owns.
    """
    wanted: dict[Address, Resource] = {}
    for item in desired:
        if item.address in wanted:
            raise ValueError(f"two desired resources share the address {item.address}")
        wanted[item.address] = item
    changes: list[Change] = []
    for address in sorted(set(wanted) | set(live.resources)):
        resource = wanted.get(address)
        if resource is None:
            changes.append(Change(address, "delete", before=live.resources[address], after=None))
        elif address not in live.resources:
            changes.append(
                Change(
                    address, "create", before=None, after=resource.value, payload=resource.payload
                )
            )
        elif live.resources[address] != resource.value:
            before = live.resources[address]
            changes.append(
                Change(
                    address,
                    "update",
                    before=before,
                    after=resource.value,
                    payload=resource.payload,
                    details=value_details(before, resource.value),
                )
            )
    return changes


def value_details(before: Value, after: Value) -> list[dict[str, Any]]:
    """What changed inside a structured value, as a list of ``{path, change, ...}`` items.

    Mappings are compared key by key, lists in order (a dialplan's steps and a codec list are
    ordered), so the cost follows the size of the value once, however much of it changed.
    Paths read like ``root['guest-call,105'][2]``.
    """
    details: list[dict[str, Any]] = []
    _walk(before, after, "root", details)
    return details


def _walk(before: Any, after: Any, path: str, out: list[dict[str, Any]]) -> None:
    import difflib  # only for a changed value (start-up cost)

    if before == after:
        return
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            where = f"{path}[{key!r}]"
            if key not in after:
                out.append(
                    {
                        "path": where,
                        "change": "dictionary_item_removed",
                        "value": _jsonable(before[key]),
                    }
                )
            elif key not in before:
                out.append(
                    {
                        "path": where,
                        "change": "dictionary_item_added",
                        "value": _jsonable(after[key]),
                    }
                )
            else:
                _walk(before[key], after[key], where, out)
    elif isinstance(before, list | tuple) and isinstance(after, list | tuple):
        old = [_key(item) for item in before]
        new = [_key(item) for item in after]
        matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            if tag == "replace" and i2 - i1 == j2 - j1 and i1 == j1:  # changed in place
                for offset in range(i2 - i1):
                    _walk(before[i1 + offset], after[j1 + offset], f"{path}[{j1 + offset}]", out)
                continue
            out.extend(
                {
                    "path": f"{path}[{i}]",
                    "change": "iterable_item_removed",
                    "value": _jsonable(before[i]),
                }
                for i in range(i1, i2)
            )
            out.extend(
                {
                    "path": f"{path}[{j}]",
                    "change": "iterable_item_added",
                    "value": _jsonable(after[j]),
                }
                for j in range(j1, j2)
            )
    else:
        kind = "values_changed" if type(before) is type(after) else "type_changes"
        out.append(
            {"path": path, "change": kind, "before": _jsonable(before), "after": _jsonable(after)}
        )


def _key(item: Any) -> tuple[str, str]:
    """A hashable stand-in for a list item (items may be mappings or lists)."""
    if isinstance(item, str):
        return ("str", item)
    return (type(item).__name__, json.dumps(item, sort_keys=True, default=str))


def _jsonable(value: Any) -> Value:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
