"""The generic diff of desired resources against live state: a pure function."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import Address, LiveState, Resource, Value


def diff(desired: Sequence[Resource], live: LiveState) -> list[Change]:
    """Changes that turn ``live`` into ``desired``, sorted by address.

    Live resources that are not desired are deleted: a provider only reports what it owns.
    A live resource its program has not loaded (``live.unloaded``) is updated even when its
    value is the desired one.
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
        elif live.resources[address] != resource.value or address in live.unloaded:
            # not loaded yet: the same value is written again (no file changes) and loaded
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
    """What changed inside a value: the one diff the plan's JSON and every view show.

    A list of ``{path, change, ...}`` items, paths like ``root['guest-call,105'][2]``:

    - ``dictionary_item_added``/``_removed``, ``iterable_item_added``/``_removed``: ``value``;
    - ``values_changed``/``type_changes``: ``before`` and ``after``;
    - in a text of several lines: ``line_removed``/``line_added``, its ``line`` (from 1, in
      the text before resp. after) and its ``value``.

    Mappings are compared key by key, lists and lines in order (a dialplan's steps and a
    codec list are ordered). A list item changed in place is named by its one index; a
    change inside an item that also moved is the item removed and added whole.

    DeepDiff compares (imported here only, for values that changed); only what differs goes
    through it: mapping entries equal on both sides are left out first (an equality check
    in C), and an entry on one side only is added or removed whole without comparing, so
    one changed entry of a 10,000-entry dialplan costs that entry's diff.
    """
    if before == after:
        return []
    texts: set[Path] = set()
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    old, new = _narrowed(before, after, (), texts, found)
    if old != new:
        from deepdiff import DeepDiff

        tree = DeepDiff(old, new, view="tree", verbose_level=2, threshold_to_diff_deeper=0)
        for kind, levels in tree.items():
            for level in levels:
                path_before = tuple(level.path(output_format="list"))
                path_after = tuple(level.path(output_format="list", use_t2=True))
                for key, item in _items(kind, path_before, path_after, level, before, after, texts):
                    found.setdefault(key, item)
    return [found[key] for key in sorted(found)]


Path = tuple[str | int, ...]
_REMOVED, _CHANGED, _ADDED = 0, 1, 2


def _narrowed(
    before: Any,
    after: Any,
    path: Path,
    texts: set[Path],
    found: dict[tuple[Any, ...], dict[str, Any]],
) -> tuple[Any, Any]:
    """``before`` and ``after`` with only their mapping entries that differ on both sides
    (an entry on one side only goes to ``found`` as added or removed, whole); a text of
    several lines (on either side) as its list of lines, its path noted in ``texts``."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        old: dict[Any, Any] = {}
        new: dict[Any, Any] = {}
        for key in before.keys() | after.keys():
            where = (*path, key)
            if key not in after:
                found[(*_order(where), _REMOVED)] = _removed(where, before[key], "dictionary")
            elif key not in before:
                found[(*_order(where), _ADDED)] = _added(where, after[key], "dictionary")
            elif before[key] != after[key]:
                old[key], new[key] = _narrowed(before[key], after[key], where, texts, found)
        return old, new
    if isinstance(before, str) and isinstance(after, str) and ("\n" in before or "\n" in after):
        texts.add(path)
        return before.splitlines(), after.splitlines()
    return before, after


def _items(
    kind: str,
    path_before: Path,
    path_after: Path,
    level: Any,
    before: Value,
    after: Value,
    texts: set[Path],
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The detail items of one DeepDiff report, each with its sort key."""
    text = next((t for t in texts if path_before[: len(t)] == t != path_before), None)
    if text is not None:  # one line of a text (lines are never nested)
        where = _text(text)
        if kind != "iterable_item_added":
            line = int(path_before[len(text)])
            key = (*_order(text), (1, line), _REMOVED)
            yield (
                key,
                {"path": where, "change": "line_removed", "line": line + 1, "value": level.t1},
            )
        if kind != "iterable_item_removed":
            line = int(path_after[len(text)])
            key = (*_order(text), (1, line), _ADDED)
            yield key, {"path": where, "change": "line_added", "line": line + 1, "value": level.t2}
        return
    if kind in ("values_changed", "type_changes"):
        if path_before == path_after:
            key = (*_order(path_before), _CHANGED)
            yield (
                key,
                {
                    "path": _text(path_before),
                    "change": kind,
                    "before": _jsonable(level.t1),
                    "after": _jsonable(level.t2),
                },
            )
            return
        # inside a list item that moved: that item, removed and added whole
        depth = (
            next(i for i, (b, a) in enumerate(zip(path_before, path_after, strict=True)) if b != a)
            + 1
        )
        path_before, path_after = path_before[:depth], path_after[:depth]
        old, new = _resolve(before, path_before), _resolve(after, path_after)
        yield (*_order(path_before), _REMOVED), _removed(path_before, old, "iterable")
        yield (*_order(path_after), _ADDED), _added(path_after, new, "iterable")
        return
    family = kind.split("_", 1)[0]  # dictionary | iterable
    if kind.endswith("_removed"):
        yield (*_order(path_before), _REMOVED), _removed(path_before, level.t1, family)
    elif kind.endswith("_added"):
        yield (*_order(path_after), _ADDED), _added(path_after, level.t2, family)


def _removed(path: Path, value: Any, family: str) -> dict[str, Any]:
    return {"path": _text(path), "change": f"{family}_item_removed", "value": _jsonable(value)}


def _added(path: Path, value: Any, family: str) -> dict[str, Any]:
    return {"path": _text(path), "change": f"{family}_item_added", "value": _jsonable(value)}


def _order(path: Path) -> tuple[tuple[int, Any], ...]:
    """A sort key of a path: mapping keys as text, list indices as numbers."""
    return tuple((1, part) if isinstance(part, int) else (0, str(part)) for part in path)


def _text(path: Path) -> str:
    return "root" + "".join(f"[{part!r}]" for part in path)


def _resolve(value: Any, path: Path) -> Any:
    for part in path:
        value = value[part]
    return value


def _jsonable(value: Any) -> Value:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
