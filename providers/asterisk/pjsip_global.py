"""sipctl's ``user_agent`` in the admin's pjsip.conf ``[global]``: a pure edit, undone exactly.

``user_agent`` is what the PBX sends as ``Server:`` and ``User-Agent:`` (Asterisk's own
default, ``Asterisk PBX 22.x.y``, tells every scanner which bugs to try). Measured on
Asterisk 22: a second ``type=global`` section replaces the admin's global settings wholesale,
so sipctl never writes one beside the admin's; it edits the first ``type=global`` section
in place, as ``http_conf.py`` edits http.conf's ``[general]``:

- the admin's line that already says what is wanted stays, untouched;
- another value is commented out behind ``;sipctl-was: `` and sipctl's line (ending
  ``; sipctl``) follows the section head;
- a pjsip.conf without a global section gets one of sipctl's first, every line marked.

Undoing is ``http_conf.restore``: drop the marked lines, uncomment the ``;sipctl-was: `` ones.
"""

from __future__ import annotations

import re

from sipctl.providers.asterisk.edit import config_bytes, config_text
from sipctl.providers.asterisk.http_conf import MARK, WAS, insert_where_read, restore
from sipctl.reconciler.asterisk_conf import parse_sections, physical_lines, plain_line, scan_lines

_HEAD_RE = re.compile(r"\[(?P<name>[^\]]*)\](?P<flags>\([^)]*\))?")
_KEY_RE = re.compile(r"\s*(?P<key>[A-Za-z_]+)\s*=>?\s*(?P<value>.*)")
KEY = "user_agent"


def read_user_agent(content: bytes | None) -> str | None:
    """``user_agent`` of the first ``type=global`` section (None: unset, Asterisk's own)."""
    for section in parse_sections(config_text(content)):
        if section.get("type") == "global" and "!" not in section.flags:
            value = section.get(KEY)
            return None if value is None else value.strip()
    return None


def set_user_agent(content: bytes | None, value: str) -> bytes:
    """The admin's pjsip.conf with ``user_agent=value`` in effect in its global section."""
    lines = physical_lines(config_text(restore(content)))
    contents, depths = scan_lines(lines)
    span = _global_span(contents)
    if span is None:
        # No global section yet: ours goes first, the admin's bytes follow untouched.
        ours = [f"[global] {MARK}\n", f"type=global {MARK}\n", f"{KEY}={value} {MARK}\n"]
        return config_bytes("".join([*ours, *lines]))
    head, end = span
    found = [i for i in range(head + 1, end) if _key_of(contents[i]) == KEY]
    if found and all(_value_of(contents[i]) == value for i in found):
        return config_bytes("".join(lines))
    after = head + 1  # ours goes here or later
    for index in found:
        if plain_line(lines[index], depths[index]):
            lines[index] = WAS + lines[index]
        else:  # a block comment opens or closes on it: kept, and ours follows (last wins)
            after = max(after, index + 1)
    ours = [f"{KEY}={value} {MARK}\n"]
    insert_where_read(lines, depths, (after, end), ours, "pjsip.conf/the global section")
    return config_bytes("".join(lines))


def _global_span(contents: list[str]) -> tuple[int, int] | None:
    """The head index and end (exclusive) of the first non-template ``type=global`` section,
    by what Asterisk reads of each line (``scan_lines``)."""
    heads = [i for i, bare in enumerate(contents) if bare.startswith("[") and _HEAD_RE.match(bare)]
    for number, head in enumerate(heads):
        end = heads[number + 1] if number + 1 < len(heads) else len(contents)
        match = _HEAD_RE.match(contents[head])
        if match is None or "!" in (match["flags"] or ""):
            continue
        types = [
            _value_of(contents[i]) for i in range(head + 1, end) if _key_of(contents[i]) == "type"
        ]
        if types and types[-1] == "global":  # the last one counts, as in Asterisk
            return head, end
    return None


def _key_of(content: str) -> str | None:
    match = _KEY_RE.fullmatch(content)
    return match["key"] if match is not None else None


def _value_of(content: str) -> str:
    match = _KEY_RE.fullmatch(content)
    return match["value"].strip() if match is not None else ""
