"""Edits of the admin's files that keep every byte sipctl does not own: pure functions.

The parent files (``pjsip.conf``, ``extensions.conf``, ``sip.conf``) get exactly one
``#include`` line of ours, appended at the end; ``rtp.conf`` gets its ``rtpstart`` and
``rtpend`` values set in ``[general]`` (the rest of each line, comments included, stays).
Text is decoded with ``surrogateescape`` so that bytes which are not UTF-8 survive.
"""

from __future__ import annotations

import re

from sipctl.reconciler.asterisk_conf import include_target, parse_sections, strip_comment

_HEAD_RE = re.compile(r"\[(?P<name>[^\]]*)\]")


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
    names = _names(child, config_dir)
    return sum(1 for line in config_text(content).splitlines() if include_target(line) in names)


def set_include(content: bytes | None, child: str, config_dir: str, present: bool) -> bytes:
    """The parent file with exactly one include line of ``child`` (or none)."""
    names = _names(child, config_dir)
    lines = config_text(content).splitlines(keepends=True)
    kept = [line for line in lines if include_target(line) not in names]
    if present:
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        kept.append(f"#include {child}\n")
    return config_bytes("".join(kept))


def read_rtp(content: bytes | None) -> tuple[int | None, int | None]:
    """``rtpstart`` and ``rtpend`` of ``[general]`` (the last one wins, as in Asterisk)."""
    start: int | None = None
    end: int | None = None
    for section in parse_sections(config_text(content)):
        if section.name != "general":
            continue
        start = _int(section.get("rtpstart"), start)
        end = _int(section.get("rtpend"), end)
    return start, end


def _int(value: str | None, default: int | None) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return None


def set_rtp(content: bytes | None, start: int, end: int) -> bytes:
    """rtp.conf with ``rtpstart``/``rtpend`` set in ``[general]``; every other byte kept."""
    lines = config_text(content).splitlines(keepends=True)
    wanted = {"rtpstart": str(start), "rtpend": str(end)}
    found: set[str] = set()
    section = ""
    general_head: int | None = None
    for index, line in enumerate(lines):
        bare = strip_comment(line)
        head = _HEAD_RE.match(bare) if bare.startswith("[") else None
        if head is not None:
            section = head["name"].strip()
            if section == "general" and general_head is None:
                general_head = index
            continue
        if section != "general":
            continue
        match = re.match(r"(\s*(rtpstart|rtpend)\s*=>?\s*)([^;\s]*)(.*)", line, re.DOTALL)
        if match is not None:
            key = match.group(2)
            lines[index] = match.group(1) + wanted[key] + match.group(4)
            found.add(key)
    missing = [f"{key}={value}\n" for key, value in wanted.items() if key not in found]
    if missing:
        if general_head is None:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines += ["[general]\n", *missing]
        else:
            if not lines[general_head].endswith("\n"):
                lines[general_head] += "\n"
            lines[general_head + 1 : general_head + 1] = missing
    return config_bytes("".join(lines))
