"""The generic diff of desired resources against live state: a pure function."""

from __future__ import annotations

from collections.abc import Sequence
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
    """What changed inside a structured value, as a list of ``{path, change, ...}`` items."""
    from deepdiff import DeepDiff  # heavy import: only when something changed

    found = DeepDiff(before, after, ignore_order=True, verbose_level=2).to_dict()
    details: list[dict[str, Any]] = []
    for kind, items in sorted(found.items()):
        if isinstance(items, dict):
            for path, item in sorted(items.items()):
                entry: dict[str, Any] = {"path": str(path), "change": kind}
                if isinstance(item, dict) and "old_value" in item:
                    entry["before"] = _jsonable(item.get("old_value"))
                    entry["after"] = _jsonable(item.get("new_value"))
                else:
                    entry["value"] = _jsonable(item)
                details.append(entry)
        else:
            for path in sorted(str(p) for p in items):
                details.append({"path": path, "change": kind})
    return details


def _jsonable(value: Any) -> Value:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
