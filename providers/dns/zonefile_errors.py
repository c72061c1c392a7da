"""What a zone file's parse error says: where, and what kind of problem, never its text.

A zone file may sit in a place the runner's admin allows (``zone_files``, e.g. BIND's
directory): its lines are not sipctl's, and an error reaches a merge-request comment. dnspython
words some errors by quoting a token of the line (``unknown rdatatype 'WORD'``, ``expected EOL
or EOF, got 3 "WORD"``). So an error is shown as file:line and one of a fixed set of wordings:
dnspython's own where they quote nothing (listed here), sipctl's where they would or where
they say nothing a zone's admin can act on (a check of the whole zone, such as its SOA), and
a general one for anything else. Text is never passed through unlisted, nor an exception's
class name (``dns.zone.NoSOA`` told nobody that the file was another domain's zone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import dns.exception
import dns.zone

# dnspython's (2.x) details that quote nothing of the file: shown as they are
_FIXED = frozenset(
    {
        "Text input is malformed.",
        "expecting an integer",
        "expecting a string",
        "expecting an identifier",
        "expecting an absolute name",
        "DNS TTL value is not well-formed.",
        "newline in quoted string",
        "Non-hexadecimal digit found",
        "Odd-length string",
        "Text input ended unexpectedly.",
        "Incorrect padding",
        "A DNS label is > 63 octets long.",
        "A DNS name is > 255 octets long.",
        "An empty label was found in a DNS name.",
        "A DNS label is empty.",
        "RR class is not zone's class",
        "Missing default TTL value",
        "bad $TTL",
        "bad origin in $INCLUDE",
        "bad $UNICODE",
        "the last used name is undefined",
        "invalid $GENERATE modifier",
        "$GENERATE width is too large",
        "syntax error",
    }
)
# dnspython's fixed details (no file:line) that sipctl says in words a zone's admin knows
_REWORDED = {
    "rdataset type is not compatible with a CNAME node": "a name with a CNAME holds other records",
    "CNAME rdataset is not compatible with a regular data node": (
        "a name with a CNAME holds other records"
    ),
}
# dnspython's details that go on to quote the file: (their fixed start, sipctl's wording)
_QUOTING = (
    ("unknown rdatatype", "unknown record type"),
    ("zone file directive", "a $ directive that is unknown or not allowed"),
    ("Unknown zone file directive", "a $ directive that is unknown or not allowed"),
    ("expected EOL or EOF", "more fields than the record type has"),
)
# dnspython's checks of a whole zone (dns.zone's exceptions), in sipctl's words: what is wrong
# and what to do ({origin}: the zone's domain). A class not listed has the words of its nearest
# listed base (a new kind of BadZone those of BadZone), never its name.
_ZONE_CHECKS: dict[type[dns.exception.DNSException], str] = {
    dns.zone.NoSOA: (
        "the file holds no SOA record at the zone's origin {origin}: is dns.file the zone "
        "file of this domain? (a zone file's SOA is named by its domain)"
    ),
    dns.zone.NoNS: (
        "the file holds no NS records at the zone's origin {origin}: add the name servers "
        "the domain is delegated to"
    ),
    dns.zone.UnknownOrigin: (
        "a name in the file is relative and its origin is unknown: write $ORIGIN {origin}. "
        "before it, or the name in full with a final dot"
    ),
    dns.zone.BadZone: (
        "the file is not a complete zone of {origin}: run named-checkzone {origin} on the "
        "file to see what is missing"
    ),
    dns.zone.NoDigest: (
        "the file holds no ZONEMD record at the zone's origin {origin}: add one or leave "
        "the zone's digest out"
    ),
    dns.zone.UnsupportedDigestScheme: (
        "the zone's ZONEMD record has a scheme that cannot be checked: use scheme 1 (SIMPLE) "
        "or remove the ZONEMD record"
    ),
    dns.zone.UnsupportedDigestHashAlgorithm: (
        "the zone's ZONEMD record has a hash algorithm that cannot be checked: use 1 (SHA384) "
        "or 2 (SHA512), or remove the ZONEMD record"
    ),
    dns.zone.DigestVerificationFailure: (
        "the zone's ZONEMD digest does not match its records: compute it again (e.g. "
        "dnssec-signzone) or remove the ZONEMD record"
    ),
}
# anything else dnspython says: its words may quote the file
_OTHER = "not valid zone text (run named-checkzone {origin} on the file to see what is wrong)"
# a record's data dnspython could not convert: only the class of what it caught is shown
_CAUGHT = re.compile(r"caught exception <class '([A-Za-z_][\w.]*)'>")


def parse_problem(
    exc: dns.exception.DNSException, zone_file: Path, copies: Mapping[str, str], origin: str
) -> str:
    """Where and what kind of problem ``exc`` (dnspython's, reading ``zone_file``, the zone
    of ``origin``) is. For a file the zone $INCLUDEs (read into ``copies``: copy -> the
    file), only where: it is named by its own name (not sipctl's copy)."""
    text = str(exc)
    for name in (str(zone_file), *copies):
        line, sep, detail = text.removeprefix(f"{name}:").partition(": ")
        if text.startswith(f"{name}:") and sep and line.isdigit():
            if name != str(zone_file):
                return (
                    f"{copies[name]}:{line}: not zone text (sipctl shows no text of a file "
                    "the zone includes)"
                )
            return f"{name}:{line}: {problem_kind(detail, exc, origin)}"
    return problem_kind(text, exc, origin)


def problem_kind(detail: str, exc: dns.exception.DNSException, origin: str) -> str:
    """sipctl's words for a check of the whole zone (of ``origin``), else ``detail`` when it
    is one of dnspython's fixed wordings, else sipctl's wording of its kind, else general
    words; never a token of the file, nor the exception's class name."""
    origin = origin.rstrip(".")
    for kind in type(exc).__mro__:
        if kind in _ZONE_CHECKS:
            return _ZONE_CHECKS[kind].format(origin=origin)
    if detail in _REWORDED:
        return _REWORDED[detail]
    if detail in _FIXED or (not exc.args and not exc.kwargs):  # no args: the class's text
        return detail
    for start, wording in _QUOTING:
        if detail.startswith(start):
            return wording
    caught = _CAUGHT.match(detail)
    if caught:
        return f"a record's data is not valid for its type ({caught.group(1)})"
    return _OTHER.format(origin=origin)
