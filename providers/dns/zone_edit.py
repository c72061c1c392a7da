"""Edit a zone file's text in place: only the lines of the rrsets being changed move.

Pure (text in, text out), so the plan and the apply compute the same new file. A zone file
belongs to its admin: comments, ``$TTL``, ``$ORIGIN``, ``$INCLUDE``, the layout and relative
names all stay byte for byte. What changes:

- a record of a changed rrset that stays is kept as written (same line), unless the rrset's
  TTL changes; one that goes is removed (its lines, a multi-line record's too);
- a record that is new is added after the rrset's last line, else after the last line of
  its owner name, else at the end of the file: ``OWNER TTL IN TYPE RDATA`` with the owner
  relative to the ``$ORIGIN`` in force there and absolute names in the data;
- the SOA serial is replaced where it is written (only those digits).

When a removed line named its owner and the record after it leaves the owner blank (it
inherits the owner), that owner is written on the next line, so no record changes name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.ttl

from sipctl.reconciler.dns_records import canonical


class ZoneEditError(ValueError):
    """The file cannot be edited in place (a record sipctl must change is out of reach)."""


@dataclass(frozen=True)
class Token:
    text: str
    line: int  # index of the physical line
    start: int  # column of the first character


@dataclass
class Entry:
    """One record (or directive) of the file, with the physical lines it spans."""

    first: int
    last: int
    tokens: list[Token]
    owner: dns.name.Name | None = None  # None: a directive
    owner_written: bool = False  # False: the line starts blank (inherits the owner)
    rdtype: str = ""
    rdata_tokens: list[Token] = field(default_factory=list)
    origin: dns.name.Name | None = None  # the $ORIGIN in force at this entry


def _tokens(lines: Sequence[str]) -> Iterable[tuple[int, int, list[Token], bool]]:
    """Logical entries: (first line, last line, tokens, starts blank); comments dropped,
    parentheses join lines, quoted strings are one token (quotes kept)."""
    depth = 0
    tokens: list[Token] = []
    first = 0
    blank_start = False
    for index, line in enumerate(lines):
        if depth == 0:
            tokens, first = [], index
            blank_start = line[:1] in (" ", "\t")
        i, n = 0, len(line)
        while i < n:
            char = line[i]
            if char in " \t\r":
                i += 1
            elif char == ";":
                break
            elif char == "(":
                depth += 1
                i += 1
            elif char == ")":
                depth = max(0, depth - 1)
                i += 1
            elif char == '"':
                j = i + 1
                while j < n and line[j] != '"':
                    j += 2 if line[j] == "\\" else 1
                tokens.append(Token(line[i : j + 1], index, i))
                i = j + 1
            else:
                j = i
                while j < n and line[j] not in ' \t\r;()"':
                    j += 2 if line[j] == "\\" else 1
                tokens.append(Token(line[i:j], index, i))
                i = j
        if depth == 0 and tokens:
            yield first, index, tokens, blank_start
            tokens = []
    if tokens:
        yield first, len(lines) - 1, tokens, blank_start


def _is_ttl(text: str) -> bool:
    try:
        dns.ttl.from_text(text)
    except dns.exception.DNSException:
        return False
    return True


def _is_class(text: str) -> bool:
    try:
        dns.rdataclass.from_text(text)
    except dns.exception.DNSException:
        return False
    return True


def scan(text: str, origin: dns.name.Name) -> tuple[list[str], list[Entry]]:
    """The file's physical lines (with their endings) and its entries, owners made absolute."""
    lines = text.splitlines(keepends=True)
    bare = [line.rstrip("\r\n") for line in lines]
    entries: list[Entry] = []
    current_origin = origin
    owner: dns.name.Name | None = None
    for first, last, tokens, blank_start in _tokens(bare):
        entry = Entry(first, last, tokens, origin=current_origin)
        head = tokens[0].text
        if head.startswith("$"):
            if head.upper() == "$ORIGIN" and len(tokens) > 1:
                current_origin = dns.name.from_text(tokens[1].text, current_origin)
            entries.append(entry)
            continue
        rest = tokens
        if not blank_start:
            owner = current_origin if head == "@" else dns.name.from_text(head, current_origin)
            rest = tokens[1:]
            entry.owner_written = True
        entry.owner = owner
        k = 0
        while k < len(rest) and k < 2 and (_is_ttl(rest[k].text) or _is_class(rest[k].text)):
            k += 1
        if k >= len(rest):
            raise ZoneEditError(f"line {first + 1}: a record without a type")
        entry.rdtype = rest[k].text.upper()
        entry.rdata_tokens = rest[k + 1 :]
        entries.append(entry)
    return lines, entries


def _rdata_of(entry: Entry) -> str:
    assert entry.origin is not None
    text = " ".join(t.text for t in entry.rdata_tokens)
    rdata = dns.rdata.from_text("IN", entry.rdtype, text, origin=entry.origin, relativize=False)
    return canonical(rdata)


@dataclass(frozen=True)
class RrsetEdit:
    """The rrset ``(owner, rdtype)`` after the edit: its TTL and its records (parsed)."""

    owner: str
    rdtype: str
    ttl: int
    rdatas: tuple[dns.rdata.Rdata, ...]
    ttl_changed: bool


def edit_zone(
    text: str, origin: dns.name.Name, edits: Sequence[RrsetEdit], serial: int | None
) -> str:
    """``text`` with ``edits`` made in place and the SOA serial set to ``serial``."""
    lines, entries = scan(text, origin)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    replace: dict[int, str] = {}  # physical line -> new text ("" removes it)
    after: dict[int, list[str]] = {}  # physical line -> new lines after it (-1: at the start)
    for edit in edits:
        owner = dns.name.from_text(edit.owner)
        mine = [e for e in entries if e.owner == owner and e.rdtype == edit.rdtype]
        wanted = {canonical(r): r for r in edit.rdatas}
        kept: set[str] = set()
        for entry in mine:
            key = _rdata_of(entry)
            if key in wanted and key not in kept and not edit.ttl_changed:
                kept.add(key)
                continue
            _remove(entry, entries, lines, replace)
        new = [r for key, r in sorted(wanted.items()) if key not in kept]
        if not new:
            continue
        same_owner = [e for e in entries if e.owner == owner]
        anchors = mine or same_owner or entries
        at = anchors[-1].last if anchors else len(lines) - 1
        where_origin = _origin_after(entries, at, origin)
        rel = owner.relativize(where_origin) if owner.is_subdomain(where_origin) else owner
        owner_text = "@" if rel == dns.name.empty else rel.to_text()
        after.setdefault(at, []).extend(
            f"{owner_text}\t{edit.ttl}\tIN\t{edit.rdtype}\t{r.to_text(relativize=False)}\n"
            for r in new
        )
    if serial is not None:
        _set_serial(entries, lines, replace, serial)
    out: list[str] = []
    out.extend(after.get(-1, []))
    for index, line in enumerate(lines):
        out.append(replace.get(index, line))
        out.extend(after.get(index, []))
    return "".join(out)


def _origin_after(entries: Sequence[Entry], line: int, origin: dns.name.Name) -> dns.name.Name:
    """The ``$ORIGIN`` in force after physical line ``line``."""
    current = origin
    for entry in entries:
        if entry.first > line:
            break
        head = entry.tokens[0].text
        if head.upper() == "$ORIGIN" and len(entry.tokens) > 1:
            assert entry.origin is not None
            current = dns.name.from_text(entry.tokens[1].text, entry.origin)
    return current


def _remove(entry: Entry, entries: list[Entry], lines: list[str], replace: dict[int, str]) -> None:
    for index in range(entry.first, entry.last + 1):
        replace[index] = ""
    if not entry.owner_written:
        return
    # the next record may inherit this line's owner: it gets the owner written out
    following = [e for e in entries if e.first > entry.last and e.owner is not None]
    if following and not following[0].owner_written and following[0].owner == entry.owner:
        nxt = following[0]
        if replace.get(nxt.first) == "":
            return
        nxt.owner_written = True
        line = replace.get(nxt.first, lines[nxt.first])
        replace[nxt.first] = entry.tokens[0].text + line


def _set_serial(
    entries: Sequence[Entry], lines: list[str], replace: dict[int, str], serial: int
) -> None:
    soa = next((e for e in entries if e.rdtype == "SOA"), None)
    if soa is None or len(soa.rdata_tokens) < 3:
        raise ZoneEditError("the zone file has no SOA record with a serial")
    token = soa.rdata_tokens[2]
    line = replace.get(token.line, lines[token.line])
    if line[token.start : token.start + len(token.text)] != token.text:
        raise ZoneEditError("the SOA serial's line changed while editing")
    replace[token.line] = line[: token.start] + str(serial) + line[token.start + len(token.text) :]
