"""Views of a plan, all rendered from ``Plan.to_json()``: human, Markdown, JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sipctl.errors import hint_line

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


def described_lines(change: Mapping[str, Any]) -> list[str]:
    """The change in the spec's words (``+ user sales → 106 & 107``), one line at least."""
    from sipctl.reconciler.plan import generic_line

    lines = [str(line) for line in change.get("described") or []]
    return lines or [generic_line(change["action"], change["address"])]


def render_human(
    data: Mapping[str, Any], color: bool = False, detail: bool = False, notes: bool = True
) -> str:
    """The plan for a terminal: each change in the spec's words; with ``detail`` (-v), the
    records and file lines under them; without ``notes`` (--quiet), no ``note:`` lines
    (what a target skipped), while warnings and refusals stay."""
    paint = Painter(color)
    out: list[str] = []
    has_changes = any(t["changes"] for t in data["targets"])
    if not data["targets"]:
        out.append(f"The spec for {data['domain']} manages no layer: nothing to plan.")
    elif not has_changes:
        out.append(f"No changes. The live systems of {data['domain']} match the spec.")
    else:
        out.append(f"sipctl will perform the following actions for {data['domain']}:")
        out.extend(_attention_lines(data, paint))
        for target in data["targets"]:
            if not target["changes"]:
                continue
            out.append("")
            out.append(paint("#", f"  # {target_heading(target)}"))
            for change in target["changes"]:
                out.extend(paint(line[:1], f"  {line}") for line in described_lines(change))
            if detail:
                for change in target["changes"]:
                    out.extend(_human_change(change, paint))
        out.append("")
        out.append(summary_line(data))
        if not detail:
            out.append("Run with -v to see every record and file line that changes.")
    out.extend(_refusal_lines(data, paint))
    out.extend(_remarks(data, paint, notes))
    return "\n".join(out) + "\n"


def target_phrase(layer: str, target: str) -> str:
    """``dns at rfc2136:a.example@...``; a target that is no place (``Provider.target_id``
    in parentheses: a page that is not published) is no place to be 'at':
    ``webrtc (not published)``. Plan, drift and the progress log all word it so."""
    if target.startswith("(") and target.endswith(")"):
        return f"{layer} {target}"
    return f"{layer} at {target}"


def target_heading(target: Mapping[str, Any]) -> str:
    """``dns at rfc2136:a.example@...``; a departed customer's records say whose they are."""
    heading = target_phrase(str(target["layer"]), str(target["target"]))
    if target.get("customer"):
        heading += f" (customer {target['customer']}: its file is gone)"
    return heading


ATTENTION_HEADING = "Needs attention before approving (a stranger may do or cost more):"


def _attention_lines(data: Mapping[str, Any], paint: Painter) -> Iterator[str]:
    """The plan's risky changes (``attention``), once, before the changes themselves."""
    reasons = data.get("attention") or []
    if reasons:
        yield ""
        yield paint("!", ATTENTION_HEADING)
        yield from (paint("!", f"  - {reason}") for reason in reasons)


# The headings of a plan's refusals: those --force passes, and the host's kind (``safety``).
REFUSED_UNLESS_FORCE = "apply will refuse this plan (unless --force):"
REFUSED_EVEN_FORCED = (
    "apply will refuse this plan, --force or not (only the PBX's host profile can allow it):"
)


def refusal_groups(data: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(heading, reasons) of the plan's refusals, the host's kind (``--force`` cannot pass
    them) first; none without refusals."""
    refusals = [str(r) for r in data.get("refusals") or []]
    held = [str(r) for r in data.get("refusals_force_cannot_pass") or []]
    forceable = [r for r in refusals if r not in held]
    groups = ((REFUSED_EVEN_FORCED, held), (REFUSED_UNLESS_FORCE, forceable))
    return [(heading, reasons) for heading, reasons in groups if reasons]


def _refusal_lines(data: Mapping[str, Any], paint: Painter) -> Iterator[str]:
    for heading, reasons in refusal_groups(data):
        yield ""
        yield paint("!", heading)
        yield from (paint("!", f"  - {reason}") for reason in reasons)


def _remarks(data: Mapping[str, Any], paint: Painter, notes: bool = True) -> Iterator[str]:
    """A target's warnings and (``notes``) what it skipped; its hazards are among the plan's
    refusals (``_refusal_lines``), told there once."""
    first = True
    kinds = (("notes", "!"), ("skipped", "#"))
    for target in data["targets"]:
        for kind, sign in kinds if notes else kinds[:1]:
            for line in target.get(kind, []):
                if first:
                    yield ""
                    first = False
                label = {"notes": "warning", "skipped": "note"}[kind]
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
    for mark, text in value_lines(change.get("before"), change.get("after"), change.get("details")):
        yield paint(mark, f"      {mark} {text}" if mark != " " else f"        {text}")


def value_lines(
    before: Any, after: Any, details: Sequence[Mapping[str, Any]] | None = None
) -> Iterator[tuple[str, str]]:
    """Lines of (mark, text) that show a value going from ``before`` to ``after``.

    What changed is read from ``details``, the one diff of the two (``value_details``, as
    the plan's JSON holds it; computed here when not given); these lines only lay it out,
    with long unchanged runs folded.
    """
    if before is not None and after is not None and details is None:
        from sipctl.reconciler.diff import value_details

        details = value_details(before, after)
    changed = _Changed(before, after, details or [])
    yield from _lines(before, after, (), changed)


Path = tuple[str | int, ...]
_PATH_PART = re.compile(r"\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?\d+)\]")


class _Changed:
    """Where a change's details say something changed (a create or delete: everywhere)."""

    def __init__(self, before: Any, after: Any, details: Sequence[Mapping[str, Any]]) -> None:
        self.everything = before is None or after is None
        # every prefix of every item's path -> the items at or inside it: a lookup per key
        # of a 10,000-entry mapping, however many of its entries changed
        self._inside: dict[Path, list[tuple[Path, Mapping[str, Any]]]] = {}
        for detail in details:
            path = _parse_path(str(detail.get("path", "root")))
            for depth in range(len(path) + 1):
                self._inside.setdefault(path[:depth], []).append((path, detail))

    def under(self, path: Path) -> list[tuple[Path, Mapping[str, Any]]]:
        """The detail items at ``path`` or inside it."""
        return self._inside.get(path, [])

    def at(self, path: Path) -> bool:
        return self.everything or path in self._inside


def _parse_path(text: str) -> Path:
    """``root['a'][2]`` -> ``('a', 2)``."""
    return tuple(_path_part(part) for part in _PATH_PART.findall(text[4:]))


def _path_part(part: str) -> str | int:
    if part[0] not in "'\"":
        return int(part)
    if "\\" not in part:
        return part[1:-1]  # the repr of a key without escapes is the key quoted
    import ast

    value: str = ast.literal_eval(part)
    return value


def _shape(before: Any, after: Any) -> str:
    """How two values are laid out: key by key, item by item, line by line, or whole. The
    one rule for a value that is absent on one side (None or empty) and for two values of
    different shapes, which no provider makes but a hand-edited plan file can hold: they are
    shown whole (``- old``, ``+ new``), never taken apart as the other's shape."""
    values = (before, after)
    for shape, kind in (("mapping", Mapping), ("list", list)):
        if any(isinstance(v, kind) for v in values):
            return shape if all(isinstance(v, kind) or not v for v in values) else "whole"
    if any(_is_text(v) for v in values) and all(isinstance(v, str) or not v for v in values):
        return "text"
    return "whole"


def _lines(before: Any, after: Any, path: Path, changed: _Changed) -> Iterator[tuple[str, str]]:
    shape = _shape(before, after)
    if shape == "mapping":
        yield from _mapping_lines(before or {}, after or {}, path, changed)
    elif shape == "list":
        yield from _list_lines(before or [], after or [], path, changed)
    elif shape == "text":
        yield from _text_lines(before or "", after or "", path, changed)
    elif changed.at(path):
        if before is not None:
            yield "-", _scalar(before)
        if after is not None:
            yield "+", _scalar(after)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _mapping_lines(
    before: Mapping[str, Any], after: Mapping[str, Any], path: Path, changed: _Changed
) -> Iterator[tuple[str, str]]:
    """Key by key; runs of keys whose value did not change are folded like unchanged lines."""
    keys = sorted(set(before) | set(after), key=lambda k: (k != "ttl", str(k)))
    same: list[str] = []
    first = True
    for key in keys:
        old, new = before.get(key), after.get(key)
        unchanged = key in before and key in after and not changed.at((*path, key))
        if unchanged and not _shown_whole(old):
            same.append(key)
            continue
        if same:
            yield from _fold_keys(same, before, path, first=first, last=False)
            same = []
        first = False
        yield from _key_lines(key, old, new, before, after, path, changed, unchanged)
    if same:
        yield from _fold_keys(same, before, path, first=first, last=True)


def _shown_whole(value: Any) -> bool:
    """Small scalars stay in view even when unchanged (a record's ttl, a port)."""
    return not isinstance(value, list | dict | str) or (
        isinstance(value, str) and "\n" not in value
    )


_NOTHING = _Changed({}, {}, [])


def _fold_keys(
    keys: list[str], values: Mapping[str, Any], path: Path, first: bool, last: bool
) -> Iterator[tuple[str, str]]:
    head = 0 if first else CONTEXT_LINES
    tail = 0 if last else CONTEXT_LINES

    def shown(some: list[str]) -> Iterator[tuple[str, str]]:
        for key in some:
            yield from _key_lines(
                key, values[key], values[key], values, values, path, _NOTHING, True
            )

    if len(keys) <= head + tail + 1:
        yield from shown(keys)
        return
    yield from shown(keys[:head])
    yield " ", f"... ({len(keys) - head - tail} unchanged entries)"
    yield from shown(keys[len(keys) - tail :])


def _key_lines(
    key: str,
    old: Any,
    new: Any,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    path: Path,
    changed: _Changed,
    unchanged: bool,
) -> Iterator[tuple[str, str]]:
    where = (*path, key)
    shape = _shape(old, new)
    if shape == "list":
        for mark, text in _list_lines(old or [], new or [], where, changed):
            yield mark, f"{key}: {text}" if key != "records" else text
    elif shape == "text":
        yield " ", f"{key}:"
        for mark, text in _text_lines(old or "", new or "", where, changed):
            yield mark, f"  {text}"
    elif unchanged or (old is None and new is None):  # null shown as it is, not as missing
        yield " ", f"{key}: {_scalar(old)}"
    elif key not in before:
        yield "+", f"{key}: {_scalar(new)}"
    elif key not in after:
        yield "-", f"{key}: {_scalar(old)}"
    else:
        yield "~", f"{key}: {_scalar(old)} -> {_scalar(new)}"


def _list_lines(
    before: list[Any], after: list[Any], path: Path, changed: _Changed
) -> Iterator[tuple[str, str]]:
    depth = len(path)
    removed: set[int] = set()
    added: set[int] = set()
    in_place: set[int] = set()
    for where, item in changed.under(path):
        index = where[depth] if len(where) > depth else None
        if not isinstance(index, int):
            continue
        kind = str(item.get("change", ""))
        if kind == "iterable_item_removed" and len(where) == depth + 1:
            removed.add(index)
        elif kind == "iterable_item_added" and len(where) == depth + 1:
            added.add(index)
        else:
            in_place.add(index)  # the item changed inside
    yield from _sequence_lines(
        [_scalar(v) for v in before], [_scalar(v) for v in after], removed, added, in_place
    )


def _text_lines(
    before: str, after: str, path: Path, changed: _Changed
) -> Iterator[tuple[str, str]]:
    items = changed.under(path)
    if any(
        where == path and not str(d.get("change", "")).startswith("line_") for where, d in items
    ):
        # a plan saved before its texts were diffed by line: diff them now, with the differ
        from sipctl.reconciler.diff import value_details

        items = [((), d) for d in value_details(before, after)]
    removed = {int(d["line"]) - 1 for _, d in items if d.get("change") == "line_removed"}
    added = {int(d["line"]) - 1 for _, d in items if d.get("change") == "line_added"}
    yield from _sequence_lines(before.splitlines(), after.splitlines(), removed, added, set())


CONTEXT_LINES = 2


def _sequence_lines(
    old: list[str], new: list[str], removed: set[int], added: set[int], in_place: set[int]
) -> Iterator[tuple[str, str]]:
    """Two sequences in order, laid out from what the diff says of them (indices of ``old``
    removed, of ``new`` added, changed in place); long unchanged runs of an update are
    folded."""
    if not old or not new:
        yield from (("-", item) for item in old)
        yield from (("+", item) for item in new)
        return
    # runs: ("same", items) or ("changed", (old items, new items)), in order
    runs: list[tuple[str, Any]] = []
    i = j = 0
    while i < len(old) or j < len(new):
        if i < len(old) and i in removed:
            _changed_run(runs)[0].append(old[i])
            i += 1
        elif j < len(new) and j in added:
            _changed_run(runs)[1].append(new[j])
            j += 1
        elif i < len(old) and j < len(new) and i not in in_place:
            if not runs or runs[-1][0] != "same":
                runs.append(("same", []))
            runs[-1][1].append(old[i])
            i, j = i + 1, j + 1
        else:  # changed in place (or past the end of one side: the rest)
            gone, come = _changed_run(runs)
            if i < len(old):
                gone.append(old[i])
                i += 1
            if j < len(new):
                come.append(new[j])
                j += 1
    for index, (kind, run) in enumerate(runs):
        if kind == "same":
            yield from _fold(run, first=index == 0, last=index == len(runs) - 1)
        else:
            yield from (("-", item) for item in run[0])
            yield from (("+", item) for item in run[1])


def _changed_run(runs: list[tuple[str, Any]]) -> tuple[list[str], list[str]]:
    if not runs or runs[-1][0] != "changed":
        runs.append(("changed", ([], [])))
    pair: tuple[list[str], list[str]] = runs[-1][1]
    return pair


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


# GitHub refuses comments longer than 65,536 characters; GitLab's notes allow more. Below it,
# with room for the marker and the closing lines.
MARKDOWN_LIMIT = 60_000


# What Markdown (GitHub's, GitLab's) acts on inside a line of prose: links and images
# (![x](https://elsewhere) loads a picture from another host when the comment is read),
# inline HTML ('<!--' hides the rest of the comment, the rest of the plan), code spans,
# emphasis, table cells; and GitLab's references (#12, !3, ~label, %milestone, $snippet,
# &epic), which it leaves as text when escaped (GitLab 14.0 and later). A backslash makes
# each one of these a plain character.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]<>!|~&#%$])")
# A mention notifies whoever it names: @all every member of the project (GitLab), @name a
# user, @group or @org/team everyone in it. Both forges ignore a backslash before '@' (GitHub)
# or not everywhere (GitLab's rich text editor drops it), and both leave code alone: a
# mention is shown as code. Not after a letter or digit, as neither forge reads one there
# (hostmaster@mysite.ru stays as written).
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_.+/-][A-Za-z0-9_.+/@-]*")
# A line break would start a new line of the comment, and a line that starts with '/' is a
# GitLab quick action (/merge, /approve, /assign_reviewer @x) run as the pipeline's user.
_NUMBERED = re.compile(r"([0-9]{1,9})[.)]")
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def markdown_prose(text: str) -> str:
    """``text`` (a file's name, an error, a note: anything read, not written by sipctl) for a
    line of a Markdown comment outside a code block: shown as it is, acted on never: no
    Markdown, no mention, no reference, no quick action; one line."""
    text = _LINE_BREAK.sub(" ", text).strip()
    shown: list[str] = []
    at = 0
    for mention in _MENTION.finditer(text):
        shown += [_MARKDOWN_ACTIVE.sub(r"\\\1", text[at : mention.start()]), f"`{mention[0]}`"]
        at = mention.end()
    shown.append(_MARKDOWN_ACTIVE.sub(r"\\\1", text[at:]))
    line = "".join(shown)
    numbered = _NUMBERED.match(line)
    if numbered:  # '1.' would start a numbered list
        return f"{numbered[1]}\\{line[numbered.end(1) :]}"
    return "\\" + line if line.startswith(("/", "-", "+")) else line  # a list, an action


def markdown_marker(domain: str) -> str:
    """The hidden first line a pipeline finds its own comment by, to update it in place."""
    return f"<!-- sipctl-plan:{domain} -->"


def markdown_reason(status: str, message: str, hint: str | None = None) -> list[str]:
    """Why a domain (or a run) failed, for a comment: ``status`` and the message's first line
    as prose, the rest (a YAML fix to paste, the problems after the first) as it was
    written, in a code block: its indentation and line breaks are the fix's meaning, and a
    code block is where no forge reads a mention, a reference or Markdown. The error's
    hint, when it has one, ends it as the terminal's ``hint:`` line says it."""
    first, *rest = _LINE_BREAK.split(message.strip("\n"))
    lines = [markdown_prose(f"{status}: {first}")]
    while rest and not rest[-1].strip():
        rest.pop()
    while rest and not rest[0].strip():
        rest.pop(0)
    if rest:
        lines += ["", *markdown_code_block(rest)]
    if hint:
        lines += ["", markdown_prose(hint_line(hint))]
    return lines


def render_markdown_failure(domain: str, status: str, message: str, hint: str | None = None) -> str:
    """A domain that has no plan to show, for a merge-request comment: laid out as its plan
    is (the same marker first, so a pipeline that updates its comment by the marker
    replaces the domain's last plan with this), then why."""
    top = [markdown_marker(domain), f"### sipctl plan for `{domain}`", ""]
    return "\n".join([*top, *markdown_reason(status, message, hint)]) + "\n"


def render_markdown(data: Mapping[str, Any], limit: int = MARKDOWN_LIMIT) -> str:
    """A plan for a merge-request comment: the changes in the spec's words, the records and
    file lines in a <details> block, refusals and notes as lists; never longer than
    ``limit`` characters (the line-by-line part is cut first, then the list of changes, each
    with a pointer to the artefact that holds the whole plan)."""
    top = [markdown_marker(data["domain"]), f"### sipctl plan for `{data['domain']}`", ""]
    described: list[str] = []
    details: list[str] = []
    if not any(t["changes"] for t in data["targets"]):
        top.append("**No changes.** The live systems match the spec.")
    else:
        top.append(f"**{summary_line(data)}**")
        reasons = data.get("attention") or []
        if reasons:
            top += ["", f"**{ATTENTION_HEADING}**", ""]
            top += [f"- :warning: {markdown_prose(reason)}" for reason in reasons]
        for target in data["targets"]:
            if target["changes"]:
                described.append(f"# {target_heading(target)}")
                for change in target["changes"]:
                    described.extend(described_lines(change))
        for target in data["targets"]:
            for change in target["changes"]:
                details.append(
                    f"# {_address_text(change['address'])} {_ACTION_WORDS[change['action']]}"
                )
                lines = value_lines(
                    change.get("before"), change.get("after"), change.get("details")
                )
                for mark, text in lines:
                    details.append(f"{mark if mark != '~' else '!'} {text}")
    tail = _markdown_remarks(data)
    tail += [
        "",
        f"<sub>sipctl {data['sipctl_version']}, plan format {data['format_version']}</sub>",
    ]
    return _fit(top, described, details, tail, limit)


def _markdown_remarks(data: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for heading, reasons in refusal_groups(data):
        words, _, rest = heading.replace("--force", "`--force`").rstrip(":").partition(" (")
        out += ["", f"**{words}** ({rest}:" if rest else f"**{words}**:", ""]
        out += [f"- {markdown_prose(reason)}" for reason in reasons]
    remarks = [line for line in _remarks(data, Painter(False)) if line]
    if remarks:
        out += ["", "Notes:", ""]
        out += [f"- {markdown_prose(line)}" for line in remarks]
    return out


_CUT = "# ... {} more lines: the whole plan is in the pipeline's artefact"


def markdown_code_block(lines: Sequence[str], info: str = "") -> list[str]:
    """``lines`` as a Markdown code block (where no forge reads Markdown, a mention or a
    reference), fenced by more backticks than any line holds in a row: a line read from a
    host, or a file's name, that holds a fence of its own cannot end the block and make the
    rest of the comment prose."""
    longest = max((len(run) for line in lines for run in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *lines, fence]


_BACKTICKS = re.compile("`+")


def _diff_block(lines: list[str], cut: int) -> list[str]:
    if not lines and not cut:
        return []
    return ["", *markdown_code_block([*lines, *([_CUT.format(cut)] if cut else [])], "diff")]


def _fit(
    top: list[str], described: list[str], details: list[str], tail: list[str], limit: int
) -> str:
    def assemble(shown: list[str], cut_shown: int, lines: list[str], cut: int) -> str:
        block: list[str] = []
        if lines or cut:
            block = ["", "<details><summary>Every record and file line</summary>"]
            block += [*_diff_block(lines, cut), "", "</details>"]
        return "\n".join(top + _diff_block(shown, cut_shown) + block + tail) + "\n"

    def keep(lines: list[str], budget: int) -> list[str]:
        kept: list[str] = []
        used = 0
        for line in lines:
            used += len(line) + 1
            if used > budget:
                break
            kept.append(line)
        return kept

    text = assemble(described, 0, details, 0)
    if len(text) <= limit:
        return text
    room = limit - len(assemble(described, 0, [], len(details))) - 200
    if room > 0:  # the changes fit; cut the line-by-line part
        kept = keep(details, room)
        return assemble(described, 0, kept, len(details) - len(kept))
    room = limit - len(assemble([], len(described), [], len(details))) - 200
    kept = keep(described, room)
    return assemble(kept, len(described) - len(kept), [], len(details))
