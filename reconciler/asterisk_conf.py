"""Asterisk's config syntax, read the way Asterisk reads it: pure functions, no I/O.

Used on both sides of a diff: the renderer normalizes the text it makes and the provider
normalizes the text it finds with the same functions, so comments, blank lines, spaces and
the order of options (where Asterisk ignores it) never show up as a change.

What is understood (``main/config.c`` and ``pbx/pbx_config.c``): ``;`` comments (``\\;`` is
a literal), ``;-- --;`` block comments, ``[name](flags)`` section heads, ``key = value`` and
``key => value`` lines, ``#include``/``#tryinclude`` lines, and in extensions.conf the
``exten => name,priority,App(args)`` and ``same => priority,App(args)`` forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, cast

# Options whose relative order Asterisk honours (codec lists are built in order).
ORDERED_OPTIONS = frozenset({"allow", "disallow"})

_SECTION_RE = re.compile(r"\[(?P<name>[^\]]*)\]\s*(?:\((?P<flags>[^)]*)\))?\s*$")
_INCLUDE_RE = re.compile(r"#\s*(?P<kind>try)?include\s+(?P<path>.+?)\s*$")


def strip_comment(line: str) -> str:
    """The line without its ``;`` comment (``\\;`` stays, unescaped) and outer spaces."""
    cut = line.find(";")
    if cut < 0:
        return line.strip()
    if "\\;" not in line:
        return line[:cut].strip()
    # Rare: an escaped semicolon. Every "\\;" is a literal ";"; the first bare one ends it.
    out: list[str] = []
    start = 0
    while cut >= 0:
        if cut > 0 and line[cut - 1] == "\\":
            out.append(line[start : cut - 1] + ";")
            start = cut + 1
            cut = line.find(";", start)
            continue
        out.append(line[start:cut])
        return "".join(out).strip()
    out.append(line[start:])
    return "".join(out).strip()


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, content) of every line that is not blank or a comment."""
    if ";--" not in text:  # no block comment anywhere (sipctl writes none): line by line
        for number, raw in enumerate(text.splitlines(), start=1):
            content = strip_comment(raw)
            if content:
                yield number, content
        return
    in_block = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_block:
            end = line.find("--;")
            if end < 0:
                continue
            line = line[end + 3 :]
            in_block = False
        start = line.find(";--")
        if start >= 0 and (start == 0 or line[start - 1] != "\\"):
            end = line.find("--;", start + 3)
            if end < 0:
                in_block = True
                line = line[:start]
            else:
                line = line[:start] + line[end + 3 :]
        content = strip_comment(line)
        if content:
            yield number, content


def include_target(line: str) -> str | None:
    """The file an ``#include`` line names (quotes removed), else None."""
    match = _INCLUDE_RE.fullmatch(strip_comment(line))
    if match is None:
        return None
    return match["path"].strip().strip('"').strip("<>").strip()


@dataclass
class Section:
    name: str
    flags: str = ""  # what stood in "(...)" after the name: "+", "!", a template list
    items: list[tuple[str, str]] = field(default_factory=list)
    line: int = 0

    def get(self, key: str) -> str | None:
        found = [v for k, v in self.items if k == key]
        return found[-1] if found else None


def parse_sections(text: str) -> list[Section]:
    """The sections of an ini-style Asterisk file, in order (lines before any head are
    kept in a section named "")."""
    sections: list[Section] = []
    current: Section | None = None
    for number, line in logical_lines(text):
        if line.startswith("#"):
            continue
        head = _SECTION_RE.fullmatch(line) if line.startswith("[") else None
        if head is not None:
            current = Section(
                head["name"].strip(), (head["flags"] or "").replace(" ", ""), [], number
            )
            sections.append(current)
            continue
        key, value = _split_option(line)
        if current is None:
            current = Section("", "", [], number)
            sections.append(current)
        current.items.append((key, value))
    return sections


def _split_option(line: str) -> tuple[str, str]:
    """``key = value`` or ``key => value``, split at the first ``=`` as config.c does."""
    key, sep, value = line.partition("=")
    if not sep:
        return line.strip(), ""
    if value.startswith(">"):
        value = value[1:]
    return key.strip(), value.strip()


def normalize_sections(text: str) -> dict[str, list[str]]:
    """A comparable value of an ini-style file: ``"[name](flags)"`` -> its options.

    Options are sorted, except that ``allow``/``disallow`` keep their order among themselves
    (and come first); a name that appears again gets ``#2``, ``#3`` (a ``(+)`` section
    extends the one before it, so their order is kept too).
    """
    result: dict[str, list[str]] = {}
    for section in parse_sections(text):
        key = f"[{section.name}]" + (f"({section.flags})" if section.flags else "")
        base, number = key, 1
        while key in result:
            number += 1
            key = f"{base}#{number}"
        codecs = [f"{k}={v}" for k, v in section.items if k in ORDERED_OPTIONS]
        plain = sorted(f"{k}={v}" for k, v in section.items if k not in ORDERED_OPTIONS)
        result[key] = codecs + plain
    return result


# --- extensions.conf ----------------------------------------------------------------------


class DialplanStep(NamedTuple):
    """One priority of one extension, as pbx_config reads it (a tuple: 50,000 of them are
    made on a plan at 10,000 users)."""

    context: str
    exten: str
    priority: str  # "1", "n", "hint", ...
    label: str
    app: str
    args: str
    line: int


class DialplanSyntaxError(ValueError):
    pass


# The priorities sipctl itself writes, checked without the regex.
_PLAIN_PRIORITIES = frozenset({"1", "n"})
_PRIORITY_RE = re.compile(
    r"(?P<prio>[0-9]+|n(?:\+[0-9]+)?|hint|s(?:\+[0-9]+)?)(?:\((?P<label>[^)]*)\))?"
)


def parse_dialplan(text: str) -> list[DialplanStep]:
    """The steps of an extensions.conf, split the way pbx_config splits them.

    ``exten => NAME,PRIO,APP(ARGS)``: the name ends at the first ``,``; the priority (with an
    optional ``(label)``) at the next; the application name at ``(``; its arguments run to
    the last ``)``. ``same =>`` continues the extension of the line before.
    """
    return _scan_dialplan(text, None)


def _scan_dialplan(text: str, includes: list[tuple[str, str]] | None) -> list[DialplanStep]:
    """parse_dialplan's one pass; with ``includes``, also collects (context, included
    context) of every ``include =>`` line in it (a dialplan is read once per plan)."""
    parsed: dict[str, tuple[str, str, str, str]] = {}
    steps: list[DialplanStep] = []
    for context, exten, rest, number in _step_lines(text, includes):
        step = parsed.get(rest)
        if step is None:
            step = parsed[rest] = _parse_step(rest, number)
        steps.append(DialplanStep(context, exten, *step, number))
    return steps


def _step_lines(
    text: str, includes: list[tuple[str, str]] | None
) -> Iterator[tuple[str, str, str, int]]:
    """(context, extension, the rest: ``PRIO,APP(ARGS)``, line number) of every step."""
    context = ""
    last_exten: str | None = None
    for number, line in logical_lines(text):
        if line.startswith("#"):
            continue
        if line.startswith("["):
            head = _SECTION_RE.fullmatch(line)
            if head is None:
                raise DialplanSyntaxError(f"line {number}: bad context head {line!r}")
            context = head["name"].strip()
            last_exten = None
            continue
        key, value = _split_option(line)
        if key == "exten":
            name, sep, rest = value.partition(",")
            if not sep:
                raise DialplanSyntaxError(f"line {number}: exten without priority")
            exten = name.strip()
        elif key == "same":
            if last_exten is None:
                raise DialplanSyntaxError(f"line {number}: 'same' without an extension before it")
            exten, rest = last_exten, value
        else:
            if key == "include" and includes is not None:
                includes.append((context, value))
            continue  # switch =>, ignorepat =>, [general] options
        yield context, exten, rest, number
        last_exten = exten


def _parse_step(rest: str, number: int) -> tuple[str, str, str, str]:
    """``PRIO[(label)],APP(ARGS)`` -> (priority, label, application, arguments). The same
    rest recurs on most lines (``same => n,Set(...)``): callers parse each one once."""
    prio_text, _, app_text = rest.partition(",")
    prio_text = prio_text.strip()
    if prio_text in _PLAIN_PRIORITIES:
        priority, label = prio_text, ""
    else:
        prio = _PRIORITY_RE.fullmatch(prio_text)
        if prio is None:
            raise DialplanSyntaxError(f"line {number}: bad priority {prio_text!r}")
        priority, label = prio["prio"], prio["label"] or ""
    app_text = app_text.strip()
    app, paren, args = app_text.partition("(")
    if paren:
        if not args.endswith(")"):
            raise DialplanSyntaxError(f"line {number}: unbalanced parentheses in {app_text!r}")
        args = args[:-1]
    return priority, label, app.strip(), args


def _step_value(priority: str, label: str, app: str, args: str) -> str:
    """One step as the value of a dialplan file holds it: ``1,Dial(PJSIP/105)``."""
    return f"{priority}{f'({label})' if label else ''},{app}({args})"


def _canonical_step(step: str) -> bool:
    """Whether ``_step_value(*_parse_step(rest))`` is ``rest`` itself for the rest of a line
    sipctl writes, ``1,STEP`` or ``n,STEP``: nothing to strip around the step or its
    application name, and arguments in parentheses that end it. (Any other step is parsed:
    that also raises for unbalanced parentheses, as reading the line would.)"""
    paren = step.find("(")
    return (
        paren >= 0
        and step[-1] == ")"
        and not step[0].isspace()
        and not (paren and step[paren - 1].isspace())
    )


def normalize_dialplan(text: str) -> dict[str, list[str]]:
    """A comparable value of a dialplan file: ``"context,extension"`` -> its steps in order,
    and ``"context include =>"`` -> the contexts it includes, in order."""
    result: dict[str, list[str]] = {}
    includes: list[tuple[str, str]] = []
    values: dict[str, str] = {}
    for context, exten, rest, number in _step_lines(text, includes):
        value = values.get(rest)
        if value is None:
            value = values[rest] = _step_value(*_parse_step(rest, number))
        result.setdefault(f"{context},{exten}", []).append(value)
    for context, included in includes:
        result.setdefault(f"{context} include =>", []).append(included)
    return result


class DialplanWriter:
    """An extensions.conf as sipctl writes it, and at the same time the value
    ``normalize_dialplan`` reads from that text, so a plan never parses its own rendering
    (50,000 lines at 10,000 users). It writes only what the value can follow exactly:
    comments and blank lines, context heads, ``exten``/``same`` lines with priorities 1 and
    n, and ``include`` lines (tests/test_asterisk_render.py proves the two agree on specs
    Hypothesis builds)."""

    def __init__(self) -> None:
        self.lines: list[str] = []  # lines, or the lines of one extension joined
        self._steps: dict[str, list[str]] = {}
        self._includes: dict[str, list[str]] = {}
        self._context = ""
        # A step -> its value as the first priority (1,STEP) and as a later one (n,STEP).
        self._first: dict[str, str] = {}
        self._next: dict[str, str] = {}

    def comment(self, *lines: str) -> None:
        """Comment lines (each starting with ``;``) or blank lines: no part of the value."""
        for line in lines:
            if line and not line.startswith(";"):
                raise ValueError(f"not a comment or a blank line: {line!r}")
        self.lines.extend(lines)

    def context(self, name: str) -> None:
        self.lines.append(f"[{name}]")
        self._context = name.strip()

    def extension(self, name: str, steps: list[str]) -> None:
        """``exten => NAME,1,STEP`` then ``same => n,STEP`` for the others."""
        first, others = steps[0], steps[1:]
        # One string for the extension's lines: 50,000 extensions are 250,000 lines.
        line = f"exten => {name},1,{first}"
        if others:
            line += "\n same => n," + "\n same => n,".join(others)
        self.lines.append(line)
        value = [self._first.get(first) or self._value_of("1", first, self._first)]
        known: list[str | None] = list(map(self._next.get, others))  # mostly every user's
        if None in known:
            known = [
                v or self._value_of("n", s, self._next) for v, s in zip(known, others, strict=True)
            ]
        value += cast(list[str], known)
        key = f"{self._context},{name.strip()}"
        if key in self._steps:
            self._steps[key] += value
        else:
            self._steps[key] = value

    def _value_of(self, priority: str, step: str, known: dict[str, str]) -> str:
        """The value of the step as the parser reads the rest of its line: the rest itself
        when the step is already in the form the value holds it."""
        rest = f"{priority},{step}"
        value = rest if _canonical_step(step) else _step_value(*_parse_step(rest, len(self.lines)))
        known[step] = value
        return value

    def include(self, context: str) -> None:
        self.lines.append(f"include => {context}")
        self._includes.setdefault(f"{self._context} include =>", []).append(context.strip())

    def text(self) -> str:
        # The last line's end joined in, not added to a copy (the text is 12 MB at 50,000)
        return "\n".join([*self.lines, ""])

    def value(self) -> dict[str, list[str]]:
        """What ``normalize_dialplan(self.text())`` returns."""
        return {**self._steps, **self._includes}
