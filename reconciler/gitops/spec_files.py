"""Which files a run of many domains takes: the specs of ``-f FILE|DIR``, the files of a
directory that are no specs (each named, with the reason), and saved plans of ``apply DIR``."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sipctl.errors import SpecError
from sipctl.schemas.spec_links import link_refusal, refuse_link_out

SPEC_SUFFIXES = (".yaml", ".yml")
# A *.yaml file of no keys at all (empty, a list, garbage, UTF-16): no spec, but it may be one
# that was emptied or saved in another encoding, which a host must not take for a departure.
NO_TOP_KEYS = "no top-level keys (empty, or not a YAML mapping)"
MAX_SPEC_SNIFF = 1_000_000  # the loader's own limit on a spec's size


@dataclass(frozen=True)
class Skipped:
    """A file of a ``-f DIR`` directory that is not planned, and why (always said)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class SpecSelection:
    """What ``-f`` named: the spec files to load, and the files of its directories that are
    no specs, each with the reason."""

    paths: list[Path]
    skipped: list[Skipped]


def select_specs(paths: Sequence[Path]) -> SpecSelection:
    """The spec files named: files as given, directories expanded to the files in them that
    look like specs (see ``skip_reason``); every other file there is named in ``skipped``.

    A file that looks like a spec is loaded, so a broken one is an error of the run, never
    skipped: a customer's change that does not load must not go unnoticed."""

    def none_found(directory: Path, skipped: list[Skipped]) -> str:
        said = "".join(f"\n  {s.path}: {s.reason}" for s in skipped if s.path.parent == directory)
        return (
            f"{directory}: no sipctl specs in this directory (*.yaml or *.yml with a top-level "
            f"key of a spec: {', '.join(spec_keys())}){said}"
        )

    for path in paths:
        if path.is_dir():  # a link out, or one on its way, where the run is strict: not listed
            refuse_link_out(path)
    found, skipped = _expand(paths, skip_reason, none_found)
    unique: dict[Path, Path] = {}
    resolved_dirs: dict[Path, Path] = {}
    for spec in found:
        unique.setdefault(_identity(spec, resolved_dirs), spec)
    return SpecSelection(list(unique.values()), skipped)


def _identity(path: Path, resolved_dirs: dict[Path, Path]) -> Path:
    """The file ``path`` names, to name it once however it is spelled (a link that loops
    names itself: loading it says what is wrong). A file that is no link is its directory's
    resolved path and its name: a directory is resolved once (``resolved_dirs``), not once
    per file in it (a walk of every part of the path each: a fifth of selecting a spec)."""
    try:
        if path.name not in ("", ".", "..") and not stat.S_ISLNK(path.lstat().st_mode):
            parent = resolved_dirs.get(path.parent)
            if parent is None:
                parent = resolved_dirs[path.parent] = path.parent.resolve()
            return parent / path.name
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a loop, before Python 3.13
        return path.absolute()


def _expand(
    paths: Sequence[Path],
    reason_to_skip: Callable[[Path, os.DirEntry[str]], str | None],
    none_found: Callable[[Path, list[Skipped]], str],
) -> tuple[list[Path], list[Skipped]]:
    """Files as given; each directory expanded to its entries that ``reason_to_skip`` keeps,
    the others named with the reason. A directory that keeps nothing is an error. Its
    entries come with the kind of file the listing says they are (``os.scandir``): no
    ``stat`` of each to ask whether it is a directory or a file."""
    found: list[Path] = []
    skipped: list[Skipped] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        inside: list[Path] = []
        with os.scandir(path) as listing:
            listed = sorted(listing, key=lambda entry: entry.name)
        entries = [path / entry.name for entry in listed]
        _refuse_line_breaks(path, entries)
        for entry, kind in zip(entries, listed, strict=True):
            reason = reason_to_skip(entry, kind)
            if reason is None:
                inside.append(entry)
            else:
                skipped.append(Skipped(entry, reason))
        if not inside:
            raise SpecError(none_found(path, skipped))
        found.extend(inside)
    return found, skipped


def _refuse_line_breaks(directory: Path, entries: list[Path]) -> None:
    """A file whose name holds a line break would forge a line of the run's titles, table
    and errors (a domain 'ok' that is not): the run refuses the directory, naming it."""
    broken = [entry.name for entry in entries if "\n" in entry.name or "\r" in entry.name]
    if broken:
        shown = ", ".join(repr(name) for name in broken)
        raise SpecError(
            f"{directory}: a file's name holds a line break ({shown}); sipctl names each file "
            "on one line: rename it"
        )


def spec_paths(paths: Sequence[Path]) -> list[Path]:
    """The spec files named (``select_specs`` without the skipped files)."""
    return select_specs(paths).paths


@cache
def spec_keys() -> tuple[str, ...]:
    """The top-level keys of a spec, from the spec's model: found once a process, not once
    for each file of a directory (0.085 ms a file)."""
    from sipctl.schemas.messages import known_keys

    return tuple(known_keys(()))


def _kind(path: Path, listed: os.DirEntry[str] | None) -> Path | os.DirEntry[str]:
    """What answers whether ``path`` is a directory or a file: its listing's entry, which
    knows without a ``stat``, when it is no link; else the path itself (a link is followed,
    and one that loops or points nowhere is neither, as pathlib says)."""
    return listed if listed is not None and not listed.is_symlink() else path


@cache
def _spec_key_set() -> frozenset[str]:
    return frozenset(spec_keys())


_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(.*)$")
# A top-level key a skipped file's reason names: spelt like a key of a spec could be (a typo
# of one is what the list is for). Any other "key" is text of a file that is no spec, often
# one outside the directory reached through a link a merge request added: /etc/shadow's
# lines are YAML keys (root:$6$...:19000:0:99999:7::), and the plan job printed them.
_SHOWN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,31}")


def skip_reason(path: Path, listed: os.DirEntry[str] | None = None) -> str | None:
    """Why a file of a ``-f DIR`` directory is not a spec (None: it is one, or looks like
    one and is loaded so that its errors are seen); ``listed``: its entry in the
    directory's listing, which knows whether it is a directory or a file.

    A ``*.yaml``/``*.yml`` file looks like a spec when one of its top-level keys is a key of
    a spec (``domain``, ``users``, ``dns``, ...); ``version`` alone counts only as
    ``version: 1``, since other YAML (docker-compose.yml) has a ``version`` of its own."""
    kind = _kind(path, listed)
    if kind.is_dir():
        return "a directory (sipctl does not look into subdirectories)"
    if path.name.startswith("."):
        return "a dotfile (CI files like .gitlab-ci.yml live there)"
    if path.suffix not in SPEC_SUFFIXES:
        return "not *.yaml or *.yml"
    if not kind.is_file():
        if kind.is_symlink() and not path.exists():
            return None  # a link to nothing (gone, or a loop): loaded, so its error is seen
        return "not a regular file"
    if (listed is None or listed.is_symlink()) and link_refusal(path) is not None:
        return None  # a link out, where the run is strict: not read; its load refuses it
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            head = handle.read(MAX_SPEC_SNIFF)
    except OSError:
        return None  # let the loader say what is wrong with it
    top: dict[str, str] = {}
    for line in head.splitlines():
        match = _TOP_KEY.match(line)
        if match is not None:
            top.setdefault(match[1], match[2].split("#", 1)[0].strip().strip("'\""))
    keys = _spec_key_set()
    if not set(top) & keys:  # keys the lines do not show (JSON, "quoted": keys): parsed
        top = parsed_top_keys(head) or top
    if set(top) & (keys - {"version"}) or top.get("version") == "1":
        return None
    if not top:
        return NO_TOP_KEYS
    shown = sorted(key for key in top if _SHOWN_KEY.fullmatch(key))
    hidden = len(top) - len(shown)
    if hidden:
        shown.append(f"and {hidden} spelt like no key of a spec, not shown")
    return f"none of its top-level keys ({', '.join(shown)}) is a key of a sipctl spec"


def parsed_top_keys(text: str) -> dict[str, str]:
    """The top-level keys of a YAML document as the parser reads them (a scalar value's
    text, else ''), from its events: nothing is built, so an alias or deep nesting costs
    nothing; what precedes a syntax error counts. JSON (``{"domain": ...}``) and quoted keys
    (``"domain": x``) are specs too, which a line of text does not show."""
    import yaml

    events = yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    found: dict[str, str] = {}
    depth = 0
    key: str | None = None  # the top-level key whose value comes next
    at_key = True  # at depth 1: the next node is a key
    try:
        for event in events:
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if depth == 1 and key is not None:
                    found.setdefault(key, "")
                    key, at_key = None, True
                depth += 1
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
            elif depth == 1 and isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                value = event.value if isinstance(event, yaml.ScalarEvent) else ""
                if at_key:
                    key, at_key = str(value), False
                else:
                    found.setdefault(str(key), str(value))
                    key, at_key = None, True
    except yaml.YAMLError:
        pass
    return found


def select_plans(paths: Sequence[Path]) -> SpecSelection:
    """Saved plan files: files as given, directories expanded to their *.json; every other
    file of such a directory is named as skipped, with the reason."""

    def reason_to_skip(entry: Path, listed: os.DirEntry[str]) -> str | None:
        kind = _kind(entry, listed)
        if kind.is_dir():
            return "a directory (sipctl does not look into it)"
        if entry.suffix != ".json" or not kind.is_file():
            return "not a saved plan (*.json)"
        return None

    def none_found(directory: Path, _skipped: list[Skipped]) -> str:
        return f"{directory}: no saved plans (*.json) in this directory"

    found, skipped = _expand(paths, reason_to_skip, none_found)
    return SpecSelection(found, skipped)
