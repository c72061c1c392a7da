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
# The longest line Asterisk's config reader takes (its fgets buffer): a longer one is skipped
# whole, with a WARNING "Line N too long, skipping", and the rest of the file is read on.
# Measured on 22 (tests/test_asterisk_challenge_lines.py): 8,190 characters are read,
# 8,191 skipped. What sipctl writes stays within it.
MAX_LINE = 8190

_SECTION_RE = re.compile(r"\[(?P<name>[^\]]*)\]\s*(?:\((?P<flags>[^)]*)\))?\s*$")


# What ast_strip takes off both ends of a line, a name and a value: C's isspace, no more (a
# \x1c or U+00A0 is part of the text to Asterisk, where Python's str.strip would drop it).
C_SPACE = " \t\n\v\f\r"


def physical_lines(text: str) -> list[str]:
    """The lines of ``text`` as Asterisk reads them (fgets): each ends at ``\n`` only, and
    keeps it. A ``\r``, ``\x1c`` or U+2028 is a character of its line, not an end
    (``str.splitlines`` ends lines there: ``;note\r#include x`` is one comment to Asterisk)."""
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])


def strip_comment(line: str) -> str:
    """The line without its ``;`` comment (``\\;`` stays, unescaped) and outer spaces: what
    Asterisk reads of a line outside any block comment, in a file that has none."""
    cut = line.find(";")
    if cut < 0:
        return line.strip(C_SPACE)
    if "\\;" not in line:
        return line[:cut].strip(C_SPACE)
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
        return "".join(out).strip(C_SPACE)
    out.append(line[start:])
    return "".join(out).strip(C_SPACE)


def line_contents(lines: list[str]) -> list[str]:
    """What Asterisk reads of each of ``lines`` (``physical_lines``): its text outside
    comments, ``\\;`` unescaped, stripped; "" for a line it skips. The one reading of the
    admin's files that every reader and every edit of them uses, so that sipctl never
    counts, reads or edits a line Asterisk does not read (an ``#include`` inside a block
    comment, a ``[general]`` after ``;---``)."""
    return scan_lines(lines)[0]


def scan_lines(lines: list[str]) -> tuple[list[str], list[int]]:
    """``line_contents`` and the block-comment depth before each line and after the last
    (``len(lines) + 1`` depths): a line may be inserted where the depth is 0, and text
    appended to a file whose last depth is not 0 is not read (``closing_lines``)."""
    if not any(";--" in line or "--;" in line for line in lines):
        return [strip_comment(line) for line in lines], [0] * (len(lines) + 1)
    contents: list[str] = []
    depths = [0]
    for line in lines:
        content, depth = scan_line(line, depths[-1])
        contents.append(content)
        depths.append(depth)
    return contents, depths


def plain_line(line: str, depth: int) -> bool:
    """True when ``line`` (at block-comment ``depth`` before it) may be commented out with a
    ``;`` in front without changing how Asterisk reads any other line: it is read (depth
    0) and neither opens nor closes a block comment."""
    return depth == 0 and ";--" not in line and "--;" not in line


def closing_lines(depth: int) -> list[str]:
    """Lines after which Asterisk reads again, at the end of a file whose block-comment
    depth is ``depth``: a ``--;`` for each comment left open (Asterisk reads nothing after
    an unclosed ``;--``), a ``;--`` for each stray ``--;`` (which counts below zero)."""
    return ["--;\n"] * depth if depth > 0 else [";--\n"] * -depth


def scan_line(line: str, depth: int) -> tuple[str, int]:
    """One line of main/config.c's comment loop: (what it reads, block-comment depth after).

    ``;--`` opens a block comment (``;---`` does not) and they nest; ``--;`` closes one, and
    where none is open it still counts down, so that Asterisk reads no further line until a
    ``;--`` counts up again (measured on Asterisk 22); outside a block comment a bare ``;``
    ends the line; ``\\;`` is a literal ``;`` everywhere."""
    pieces: list[str] = []
    live: int | None = 0 if depth == 0 else None  # where the text read now started
    at = 0  # config.c's new_buf: where the search for the next ';' starts
    while True:
        cut = line.find(";", at)
        if cut < 0:
            break
        if cut > at and line[cut - 1] == "\\":
            line = line[: cut - 1] + line[cut:]
            at = cut
        elif line[cut + 1 : cut + 3] == "--" and line[cut + 3 : cut + 4] != "-":
            if live is not None:
                pieces.append(line[live:cut])
                live = None
            depth += 1
            at = cut + 3
        elif cut >= at + 2 and line[cut - 2 : cut] == "--":
            depth -= 1
            at = cut + 1
            if depth == 0:
                live = at
        elif depth == 0:
            if live is not None:
                pieces.append(line[live:cut])
                live = None
            break
        else:
            at = cut + 1
    if live is not None:
        pieces.append(line[live:])
    return "".join(pieces).strip(C_SPACE), depth


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, content) of every line that is not blank or a comment."""
    for number, content in enumerate(line_contents(physical_lines(text)), start=1):
        if content:
            yield number, content


def include_target(content: str) -> str | None:
    """The file an ``#include`` or ``#tryinclude`` line names, given what Asterisk reads of
    the line (``line_contents``), else None. As config.c: the directive is the word right
    after ``#`` (any case; ``# include`` is no directive), its argument the rest, quotes
    (``"..."``, ``<...>``) removed when they match."""
    if not content.startswith("#"):
        return None
    rest = content[1:]
    end = next((index for index, char in enumerate(rest) if char <= " "), len(rest))
    word, argument = rest[:end], rest[end + 1 :]
    if word.lower() not in ("include", "tryinclude"):
        return None
    path = argument.strip(C_SPACE)
    if len(path) > 1 and (path[0], path[-1]) in (('"', '"'), ("<", ">")):
        path = path[1:-1]
    return path or None


def section_head(content: str) -> tuple[str, str] | None:
    """(name, flags) of a section head as Asterisk reads the line (``[general](!)`` ->
    ("general", "!")), None for any other line."""
    head = _SECTION_RE.fullmatch(content) if content.startswith("[") else None
    return None if head is None else (head["name"].strip(), (head["flags"] or "").replace(" ", ""))


def first_section(contents: list[str], name: str) -> tuple[int, int] | None:
    """The index of the first head of section ``name`` (any case) that is no template
    (``(!)``: Asterisk does not read one as the section) and the end of its section
    (exclusive), in ``contents`` (each line as Asterisk reads it, ``scan_lines``)."""
    head: int | None = None
    for index, content in enumerate(contents):
        found = section_head(content)
        if found is None:
            continue
        if head is not None:
            return head, index
        if found[0].lower() == name and "!" not in found[1]:
            head = index
    return None if head is None else (head, len(contents))


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
        key, value = split_option(line)
        if current is None:
            current = Section("", "", [], number)
            sections.append(current)
        current.items.append((key, value))
    return sections


def split_option(line: str) -> tuple[str, str]:
    """``key = value`` or ``key => value``, split at the first ``=`` as config.c does."""
    key, sep, value = line.partition("=")
    if not sep:
        return line.strip(C_SPACE), ""
    if value.startswith(">"):
        value = value[1:]
    return key.strip(C_SPACE), value.strip(C_SPACE)


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
        key, value = split_option(line)
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
