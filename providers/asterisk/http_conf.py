"""sipctl's keys in the admin's ``http.conf``: pure edits that can be undone exactly.

Measured on Asterisk 22: http.c reads the *first* ``[general]`` only (a second one, as an
``#include`` would add, is ignored: its TLS keys started nothing), and without a
``bindaddr`` it starts no server at all, HTTPS included ("Unable to resolve host '(null)'").
So sipctl edits the first ``[general]`` in place:

- a wanted key the admin already has with the wanted value stays the admin's line, untouched
  (``bindaddr`` counts whatever its value: the plain HTTP server is the admin's business);
- a key with another value is commented out, byte for byte behind ``;sipctl-was: ``, and
  sipctl's own line follows the section head;
- a missing key gets sipctl's line (``bindaddr`` gets ``127.0.0.1``: no plain HTTP beyond
  loopback).

sipctl's lines end with ``; sipctl``. Undoing is exact: drop those lines and uncomment the
``;sipctl-was: `` ones, so removing ``transports.wss`` gives back the admin's file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sipctl.errors import ProviderError
from sipctl.providers.asterisk.edit import config_bytes, config_text
from sipctl.reconciler.asterisk_conf import (
    first_section,
    parse_sections,
    physical_lines,
    plain_line,
    scan_lines,
)

MARK = "; sipctl"
WAS = ";sipctl-was: "
_KEY_RE = re.compile(r"\s*(?P<key>[A-Za-z_]+)\s*=>?\s*(?P<value>.*)")
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
BOOLEAN_KEYS = frozenset({"enabled", "tlsenable"})


def normalize(key: str, value: str) -> str:
    """How Asterisk reads a value: booleans by ``ast_true``, the rest as written."""
    if key in BOOLEAN_KEYS:
        return "yes" if value.strip().lower() in _TRUE else "no"
    return value.strip()


def read_http(content: bytes | None, keys: tuple[str, ...]) -> dict[str, str | None]:
    """The effective value of each of ``keys`` in the first ``[general]`` (None: unset); as
    http.c, the section's name and the keys in any case."""
    sections = parse_sections(config_text(content))
    first = next((s for s in sections if s.name.lower() == "general" and "!" not in s.flags), None)
    found: dict[str, str | None] = {}
    for key in keys:
        values = [v for k, v in first.items if k.lower() == key] if first is not None else []
        found[key] = normalize(key, values[-1]) if values else None
    return found


def has_marks(content: bytes | None) -> bool:
    """True when the file holds a line sipctl wrote or commented out."""
    lines = physical_lines(config_text(content))
    return any(_ours(line) or line.startswith(WAS) for line in lines)


def _ours(line: str) -> bool:
    return line.rstrip("\r\n").rstrip().endswith(MARK)


# sipctl's last line when it appended lines to a file whose last line had no line break:
# undoing takes the break it added away again.
NO_END = f";the admin's file ended here without a line break {MARK}"


def restore(content: bytes | None) -> bytes:
    """The file as the admin had it: sipctl's lines dropped, its comments undone."""
    kept: list[str] = []
    lines = physical_lines(config_text(content))
    for line in lines:
        if _ours(line):
            continue
        kept.append(line[len(WAS) :] if line.startswith(WAS) else line)
    if lines and lines[-1] == NO_END and kept and kept[-1].endswith("\n"):
        kept[-1] = kept[-1][:-1]
    return config_bytes("".join(kept))


def insert_lines(lines: list[str], at: int, ours: list[str]) -> None:
    """Put sipctl's ``ours`` (each ending in a line break) before ``lines[at]``; at the end of
    a file whose last line has no break, with ``NO_END`` after them, so that ``restore``
    gives back every byte."""
    if at == len(lines) and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
        ours = [*ours, NO_END]
    lines[at:at] = ours


def insert_where_read(
    lines: list[str], depths: list[int], span: tuple[int, int], ours: list[str], where: str
) -> None:
    """Put ``ours`` before the first line of ``span`` (after, end: inclusive) that no block
    comment runs through, where Asterisk reads it; refused when there is none, naming the
    file and section (``where``: ``http.conf``/``[general]``)."""
    after, end = span
    at = next((i for i in range(after, end + 1) if depths[i] == 0), None)
    if at is None:
        file, section = where.split("/", 1)
        raise ProviderError(
            f"{file} line {after}: a block comment (;-- --;) opens or closes on that line, "
            f"and Asterisk reads no line after it in {section}, so sipctl has nowhere to put "
            f"its {', '.join(k.split('=')[0] for k in ours)}: write the comment's ';--' and "
            "'--;' on lines of their own, then apply again"
        )
    insert_lines(lines, at, ours)


def set_http(
    content: bytes | None, wanted: Mapping[str, str], any_value: frozenset[str] = frozenset()
) -> bytes:
    """The admin's file with ``wanted`` in effect in its first ``[general]`` (see above).

    For a key in ``any_value`` whatever value the admin wrote satisfies; ``wanted`` holds
    the value sipctl writes when the key is missing.
    """
    lines = physical_lines(config_text(restore(content)))
    contents, depths = scan_lines(lines)
    span = first_section(contents, "general")
    head, end = span if span is not None else (None, len(contents))
    after = head + 1 if head is not None else 0  # ours go here or later
    occurrences: dict[str, list[int]] = {}
    for index in range(head + 1 if head is not None else 0, end):
        match = _KEY_RE.fullmatch(contents[index])
        if head is not None and match is not None and match["key"].lower() in wanted:
            occurrences.setdefault(match["key"].lower(), []).append(index)
    ours: list[str] = []
    for key, value in wanted.items():
        found = occurrences.get(key, [])
        values = [normalize(key, _value_of(contents[i])) for i in found]
        if found and (key in any_value or all(v == normalize(key, value) for v in values)):
            continue  # the admin's own line already says it
        for index in found:
            if plain_line(lines[index], depths[index]):
                lines[index] = WAS + lines[index]
            else:  # a block comment opens or closes on it: kept, and ours follow (last wins)
                after = max(after, index + 1)
        ours.append(f"{key}={value} {MARK}\n")
    if not ours:
        return config_bytes("".join(lines))
    if head is None:
        # No [general] yet: ours goes first (so it is the first), the admin's bytes follow.
        return config_bytes("".join([f"[general] {MARK}\n", *ours, *lines]))
    if not lines[head].endswith("\n"):
        # The file ends on the head without a newline: a head of ours before our keys, the
        # admin's own head kept as a comment last, so that undoing gives every byte back.
        lines[head : head + 1] = [f"[general] {MARK}\n", *ours, WAS + lines[head]]
        return config_bytes("".join(lines))
    insert_where_read(lines, depths, (after, end), ours, "http.conf/[general]")
    return config_bytes("".join(lines))


def _value_of(content: str) -> str:
    match = _KEY_RE.fullmatch(content)
    return match["value"] if match is not None else ""
