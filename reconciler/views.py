"""Views of a plan, all rendered from ``Plan.to_json()``: human, Markdown, JSON."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from sipctl.reconciler.render.asterisk_names import dialplan_name_lines

_ACTION_WORDS = {
    "create": "will be created",
    "update": "will be updated in place",
    "delete": "will be destroyed",
}
_SIGNS = {"create": "+", "update": "~", "delete": "-"}
_COLORS = {"+": "32", "~": "33", "-": "31", "#": "1", "!": "33"}


class Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, sign: str, text: str) -> str:
        code = _COLORS.get(sign)
        if not self.color or code is None:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"


def render_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def summary_line(data: Mapping[str, Any]) -> str:
    s = data["summary"]
    return f"Plan: {s['add']} to add, {s['change']} to change, {s['destroy']} to destroy."


def render_human(data: Mapping[str, Any], color: bool = False) -> str:
    paint = Painter(color)
    out: list[str] = []
    has_changes = any(t["changes"] for t in data["targets"])
    if not data["targets"]:
        out.append(f"The spec for {data['domain']} manages no layer: nothing to plan.")
    elif not has_changes:
        out.append(f"No changes. The live systems of {data['domain']} match the spec.")
    else:
        out.append(f"sipctl will perform the following actions for {data['domain']}:")
        for target in data["targets"]:
            if not target["changes"]:
                continue
            out.append("")
            out.append(paint("#", f"  # {target['layer']} at {target['target']}"))
            for change in target["changes"]:
                out.extend(_human_change(change, paint))
        out.append("")
        out.append(summary_line(data))
    out.extend(_remarks(data, paint))
    return "\n".join(out) + "\n"


def _remarks(data: Mapping[str, Any], paint: Painter) -> Iterator[str]:
    first = True
    for target in data["targets"]:
        for kind, sign in (("hazards", "!"), ("notes", "!"), ("skipped", "#")):
            for line in target.get(kind, []):
                if first:
                    yield ""
                    first = False
                label = {"hazards": "refused", "notes": "warning", "skipped": "note"}[kind]
                yield paint(sign, f"{label}: {target['layer']}: {line}")


def _address_text(address: Mapping[str, str]) -> str:
    return f"{address['layer']}.{address['kind']}[{address['name']}]"


def _human_change(change: Mapping[str, Any], paint: Painter) -> Iterator[str]:
    action = change["action"]
    sign = _SIGNS[action]
    address = change["address"]
    yield ""
    yield f"  # {_address_text(address)} {_ACTION_WORDS[action]}"
    yield paint(sign, f"  {sign} {address['kind']} {address['name']}")
    # Users and rooms first, in the spec's words; the dialplan lines follow under them.
    for line in dialplan_name_lines(change):
        yield paint(line[0], f"    {line}")
    for mark, text in value_lines(change.get("before"), change.get("after")):
        yield paint(mark, f"      {mark} {text}" if mark != " " else f"        {text}")


def value_lines(before: Any, after: Any) -> Iterator[tuple[str, str]]:
    """Lines of (mark, text) that show a value going from ``before`` to ``after``."""
    if isinstance(before, Mapping) or isinstance(after, Mapping):
        yield from _mapping_lines(before or {}, after or {})
    elif isinstance(before, list) or isinstance(after, list):
        yield from _list_lines(before or [], after or [])
    elif (isinstance(before, str) and "\n" in before) or (isinstance(after, str) and "\n" in after):
        yield from _text_lines(before or "", after or "")
    elif before != after:
        if before is not None:
            yield "-", _scalar(before)
        if after is not None:
            yield "+", _scalar(after)


def _mapping_lines(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    """Key by key; runs of keys whose value did not change are folded like unchanged lines."""
    keys = sorted(set(before) | set(after), key=lambda k: (k != "ttl", str(k)))
    same: list[str] = []
    first = True
    for key in keys:
        old, new = before.get(key), after.get(key)
        if key in before and key in after and old == new and not _shown_whole(old):
            same.append(key)
            continue
        if same:
            yield from _fold_keys(same, before, first=first, last=False)
            same = []
        first = False
        yield from _key_lines(key, old, new, before, after)
    if same:
        yield from _fold_keys(same, before, first=first, last=True)


def _shown_whole(value: Any) -> bool:
    """Small scalars stay in view even when unchanged (a record's ttl, a port)."""
    return not isinstance(value, list | dict | str) or (
        isinstance(value, str) and "\n" not in value
    )


def _fold_keys(
    keys: list[str], values: Mapping[str, Any], first: bool, last: bool
) -> Iterator[tuple[str, str]]:
    head = 0 if first else CONTEXT_LINES
    tail = 0 if last else CONTEXT_LINES
    if len(keys) <= head + tail + 1:
        for key in keys:
            yield from _key_lines(key, values[key], values[key], values, values)
        return
    for key in keys[:head]:
        yield from _key_lines(key, values[key], values[key], values, values)
    yield " ", f"... ({len(keys) - head - tail} unchanged entries)"
    for key in keys[len(keys) - tail :]:
        yield from _key_lines(key, values[key], values[key], values, values)


def _key_lines(
    key: str, old: Any, new: Any, before: Mapping[str, Any], after: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    if isinstance(old, list) or isinstance(new, list):
        for mark, text in _list_lines(old or [], new or []):
            yield mark, f"{key}: {text}" if key != "records" else text
    elif (isinstance(old, str) and "\n" in old) or (isinstance(new, str) and "\n" in new):
        yield " ", f"{key}:"
        for mark, text in _text_lines(old or "", new or ""):
            yield mark, f"  {text}"
    elif old == new:
        yield " ", f"{key}: {_scalar(old)}"
    elif key not in before:
        yield "+", f"{key}: {_scalar(new)}"
    elif key not in after:
        yield "-", f"{key}: {_scalar(old)}"
    else:
        yield "~", f"{key}: {_scalar(old)} -> {_scalar(new)}"


def _list_lines(before: list[Any], after: list[Any]) -> Iterator[tuple[str, str]]:
    yield from _sequence_lines([_scalar(v) for v in before], [_scalar(v) for v in after])


def _text_lines(before: str, after: str) -> Iterator[tuple[str, str]]:
    yield from _sequence_lines(before.splitlines(), after.splitlines())


CONTEXT_LINES = 2


def _sequence_lines(old: list[str], new: list[str]) -> Iterator[tuple[str, str]]:
    """A diff of two sequences in order; long unchanged runs of an update are folded."""
    if not old or not new:
        yield from (("-", item) for item in old)
        yield from (("+", item) for item in new)
        return
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    opcodes = matcher.get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            yield from _fold(old[i1:i2], first=index == 0, last=index == len(opcodes) - 1)
            continue
        yield from (("-", item) for item in old[i1:i2])
        yield from (("+", item) for item in new[j1:j2])


def _fold(same: list[str], first: bool, last: bool) -> Iterator[tuple[str, str]]:
    head = 0 if first else CONTEXT_LINES
    tail = 0 if last else CONTEXT_LINES
    if len(same) <= head + tail + 1:
        yield from ((" ", item) for item in same)
        return
    yield from ((" ", item) for item in same[:head])
    yield " ", f"... ({len(same) - head - tail} unchanged)"
    yield from ((" ", item) for item in same[len(same) - tail :])


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def render_markdown(data: Mapping[str, Any]) -> str:
    """A plan for a merge-request comment."""
    out = [f"### sipctl plan for `{data['domain']}`", ""]
    has_changes = any(t["changes"] for t in data["targets"])
    if not has_changes:
        out.append("**No changes.** The live systems match the spec.")
    else:
        out.append(f"**{summary_line(data)}**")
        out.append("")
        out.append("| | layer | resource | target |")
        out.append("|---|---|---|---|")
        for target in data["targets"]:
            for change in target["changes"]:
                address = change["address"]
                out.append(
                    f"| {_SIGNS[change['action']]} | {target['layer']} | "
                    f"`{address['kind']} {address['name']}` | `{target['target']}` |"
                )
        out.append("")
        out.append("<details><summary>Details</summary>")
        out.append("")
        out.append("```diff")
        for target in data["targets"]:
            for change in target["changes"]:
                out.append(
                    f"# {_address_text(change['address'])} {_ACTION_WORDS[change['action']]}"
                )
                for mark, text in value_lines(change.get("before"), change.get("after")):
                    out.append(f"{mark if mark != '~' else '!'} {text}")
        out.append("```")
        out.append("")
        out.append("</details>")
    remarks = list(_remarks(data, Painter(False)))
    if remarks:
        out.append("")
        out.extend(f"> {line}" for line in remarks if line)
    out.append("")
    out.append(f"<sub>sipctl {data['sipctl_version']}, plan format {data['format_version']}</sub>")
    return "\n".join(out) + "\n"
