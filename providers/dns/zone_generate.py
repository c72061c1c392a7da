"""How many records a zone file's ``$GENERATE`` lines make, refused past a limit.

A zone file is live data, and in a repository a merge request can change it: one line
``$GENERATE 1-50000000 h$ A 192.0.2.1`` of 40 bytes made dnspython build fifty million
records (it took 0.1 ms a record, so the plan job ran for hours and filled the memory).
The file-size limit bounds what is written, not what a line makes; this bounds that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from sipctl.errors import ProviderError

# A /16 reverse zone's PTRs: 65,536 records, some 7 s of dnspython's reading.
MAX_GENERATED = 65_536


def check_generated(text: str, filename: str, total: int = 0) -> int:
    """The records ``text``'s ``$GENERATE`` lines make (found as dnspython's reader finds
    directives) plus ``total``, the count of the files read before it; refused past
    ``MAX_GENERATED``, naming ``filename`` and the line. A range dnspython cannot read is
    left for its own error."""
    from sipctl.providers.dns.zone_directives import directives

    if "$generate" not in text.lower():
        return total
    for directive in directives(text, filename):
        if directive.name != "$GENERATE":
            continue
        total += _count(directive.argument.value)
        if total > MAX_GENERATED:
            raise ProviderError(
                f"{filename}:{directive.line}: the zone's $GENERATE lines make more than "
                f"{MAX_GENERATED:,} records, which sipctl does not read; keep the generated "
                "records in a zone of their own, apart from the SIP domain's"
            )
    return total


def check_generated_files(text: str, filename: str, copies: Mapping[str, str]) -> None:
    """``check_generated`` of a zone's text and its ``$INCLUDE``d copies together (copy ->
    the file it stands for, named in the error)."""
    total = check_generated(text, filename)
    for copy, real in copies.items():
        total = check_generated(Path(copy).read_text(encoding="utf-8"), real, total)


_RANGE = re.compile(r"([0-9]+)-([0-9]+)(?:/([0-9]+))?")


def _count(text: str) -> int:
    """Records of a ``start-stop[/step]`` range (0 when it is no such range)."""
    found = _RANGE.fullmatch(text)
    if found is None:
        return 0
    start, stop, every = int(found[1]), int(found[2]), int(found[3] or 1)
    return 0 if every < 1 or stop < start else (stop - start) // every + 1
