"""What a zone file's parse error says: where, and what kind of problem, never its text.

A zone file may sit in a place the runner's admin allows (``zone_files``, e.g. BIND's
directory): its lines are not sipctl's, and an error reaches a merge-request comment. dnspython
words some errors by quoting a token of the line (``unknown rdatatype 'WORD'``, ``expected EOL
or EOF, got 3 "WORD"``). So an error is shown as file:line and one of a fixed set of wordings:
dnspython's own where they quote nothing (listed here), sipctl's where they would, and the
exception's class for anything else. Text is never passed through unlisted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import dns.exception

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
# a record's data dnspython could not convert: only the class of what it caught is shown
_CAUGHT = re.compile(r"caught exception <class '([A-Za-z_][\w.]*)'>")


def parse_problem(
    exc: dns.exception.DNSException, zone_file: Path, copies: Mapping[str, str]
) -> str:
    """Where and what kind of problem ``exc`` (dnspython's, reading ``zone_file``) is. For
    a file the zone $INCLUDEs (read into ``copies``: copy -> the file), only where: it is
    named by its own name (not sipctl's copy)."""
    text = str(exc)
    for name in (str(zone_file), *copies):
        line, sep, detail = text.removeprefix(f"{name}:").partition(": ")
        if text.startswith(f"{name}:") and sep and line.isdigit():
            if name != str(zone_file):
                return (
                    f"{copies[name]}:{line}: not zone text (sipctl shows no text of a file "
                    "the zone includes)"
                )
            return f"{name}:{line}: {problem_kind(detail, exc)}"
    return problem_kind(text, exc)


def problem_kind(detail: str, exc: dns.exception.DNSException) -> str:
    """``detail`` when it is one of dnspython's fixed wordings, else sipctl's wording of its
    kind, else the exception's class."""
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
    return f"not valid zone text ({type(exc).__module__}.{type(exc).__name__})"
