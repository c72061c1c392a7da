"""Edits of the admin's files that keep every byte sipctl does not own: pure functions.

The parent files (``pjsip.conf``, ``extensions.conf``, ``sip.conf``) get exactly one
``#include`` line of ours, appended at the end; ``rtp.conf`` gets its ``rtpstart`` and
``rtpend`` values set in ``[general]`` (the rest of each line, comments included, stays).
Text is decoded with ``surrogateescape`` so that bytes which are not UTF-8 survive.
"""

from __future__ import annotations

import re

from sipctl.reconciler.asterisk_conf import (
    closing_lines,
    first_section,
    include_target,
    parse_sections,
    physical_lines,
    scan_line,
    scan_lines,
    split_option,
)


def config_text(content: bytes | None) -> str:
    """An admin's config file as text (None: missing, empty); bytes that are not UTF-8 survive
    the round trip through ``config_bytes``."""
    return (content or b"").decode("utf-8", "surrogateescape")


def config_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _names(child: str, config_dir: str) -> set[str]:
    """How an include line may name ``child``: relative, or by its absolute path."""
    return {child, f"{config_dir.rstrip('/')}/{child}"}


def count_includes(content: bytes | None, child: str, config_dir: str) -> int:
    """How many lines of the parent file include ``child``, as Asterisk reads them."""
    names = _names(child, config_dir)
    contents, _ = scan_lines(physical_lines(config_text(content)))
    return sum(1 for line in contents if include_target(line) in names)


def set_include(content: bytes | None, child: str, config_dir: str, present: bool) -> bytes:
    """The parent file with exactly one include line of ``child`` (or none) that Asterisk
    reads: appended at the end, after closing a block comment the file leaves open."""
    names = _names(child, config_dir)
    lines = physical_lines(config_text(content))
    contents, _ = scan_lines(lines)
    kept = [
        line
        for line, read in zip(lines, contents, strict=True)
        if include_target(read) not in names
    ]
    if present:
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        kept += closing_lines(scan_lines(kept)[1][-1])
        kept.append(f"#include {child}\n")
    return config_bytes("".join(kept))


RTP_KEYS = ("rtpstart", "rtpend")
_LEADING_NUMBER = re.compile(r"[+-]?[0-9]+")
# A key line sipctl can give its value in place: the key first, the value up to a comment.
_RTP_LINE = re.compile(
    r"([ \t\v\f\r]*([A-Za-z]+)[ \t\v\f\r]*=>?[ \t\v\f\r]*)([^;\s]*)(.*)", re.DOTALL
)


def read_rtp(content: bytes | None) -> tuple[int | None, int | None]:
    """``rtpstart`` and ``rtpend`` as res_rtp_asterisk reads them (measured on Asterisk 22):
    from the first ``[general]`` that is no template (``(!)``), with what later
    ``[general](+)`` sections add to it, its name and the keys in any case, the first one
    wins, a value by the number it starts with (``atoi``)."""
    values: dict[str, int | None] = {}
    found = False
    for section in parse_sections(config_text(content)):
        if section.name.lower() != "general" or "!" in section.flags:
            continue
        if found and "+" not in section.flags:
            continue  # a second [general] of its own: Asterisk reads only the first
        found = True
        for key, value in section.items:
            if key.lower() in RTP_KEYS and key.lower() not in values:
                number = _LEADING_NUMBER.match(value)
                values[key.lower()] = int(number.group()) if number else None
    return values.get("rtpstart"), values.get("rtpend")


def set_rtp(content: bytes | None, start: int, end: int) -> bytes:
    """rtp.conf with ``rtpstart``/``rtpend`` in effect (``read_rtp``); every other byte kept.

    The keys' lines in the first ``[general]`` get the new value in place; a key it lacks,
    or whose first line cannot be edited so (one a block comment runs through), gets a line
    of its own before that one (or after the head), where Asterisk reads it. Without a
    ``[general]``, one is appended."""
    lines = physical_lines(config_text(content))
    contents, depths = scan_lines(lines)
    wanted = {"rtpstart": str(start), "rtpend": str(end)}
    span = first_section(contents, "general")
    if span is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        added = [f"{key}={value}\n" for key, value in wanted.items()]
        return config_bytes("".join([*lines, *closing_lines(depths[-1]), "[general]\n", *added]))
    head, stop = span
    first: dict[str, bool] = {}  # key -> its first line was edited in place
    before = stop  # a line of ours goes before this one: the first one wins
    for index in range(head + 1, stop):
        key = split_option(contents[index])[0].lower() if contents[index] else ""
        if key not in wanted:
            continue
        edited = _in_place(lines[index], depths[index], depths[index + 1], key, wanted[key])
        if edited is not None:
            lines[index] = edited
        if key not in first:
            first[key] = edited is not None
            if edited is None:
                before = min(before, index)
    missing = [f"{key}={value}\n" for key, value in wanted.items() if not first.get(key)]
    if missing:
        places = [i for i in range(head + 1, before + 1) if depths[i] == 0]
        at = places[0] if before == stop and places else (places[-1] if places else head + 1)
        if not lines[at - 1].endswith("\n"):
            lines[at - 1] += "\n"
        lines[at:at] = missing
    return config_bytes("".join(lines))


def _in_place(line: str, before: int, after: int, key: str, value: str) -> str | None:
    """``line`` with ``key``'s value replaced, when that is all Asterisk then reads of it
    and the block comments around it stay as they were; else None."""
    match = _RTP_LINE.match(line) if before == 0 else None
    if match is None or match.group(2).lower() != key:
        return None
    edited = match.group(1) + value + match.group(4)
    content, depth = scan_line(edited, before)
    return edited if depth == after and split_option(content) == (match.group(2), value) else None
