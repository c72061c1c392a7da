"""octoDNS records <-> the rrsets sipctl owns (``LiveRrset``): pure conversions.

Reading: an octoDNS record becomes presentation text (``Record.to_rrset``), parsed by
dnspython into sipctl's canonical form, so the same record compares equal whether it was read
over RFC 2136, from a zone file or through a plugin. Writing: each record text is parsed by
dnspython and handed to octoDNS as field data (not as text), so a NAPTR regexp with spaces or
quotes survives; a foreign NAPTR sipctl merely keeps is written back as it was read, except
that octoDNS holds NAPTR flags in upper case ("u" becomes "U": the same flag, RFC 3403).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dns.rdata
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

from sipctl.providers.dns.owned import LiveRrset
from sipctl.reconciler.dns_records import parse


def live_rrset(record: Any) -> LiveRrset:
    """The LiveRrset of one octoDNS record (NAPTR, SRV, A, AAAA, TXT)."""
    rrset = record.to_rrset()
    return LiveRrset.from_rdatas(int(rrset.ttl), (parse(rrset._type, t) for t in rrset.rdatas))


def record_data(rdtype: str, ttl: int, texts: Iterable[str]) -> dict[str, Any]:
    """octoDNS's data for ``Record.new``: the type, the TTL and one value per record text."""
    return {"type": rdtype, "ttl": ttl, "values": [_value(parse(rdtype, t)) for t in texts]}


def _value(rdata: dns.rdata.Rdata) -> Any:
    if isinstance(rdata, NAPTR):
        return {
            "order": rdata.order,
            "preference": rdata.preference,
            "flags": rdata.flags.decode("ascii", "replace"),
            "service": rdata.service.decode("ascii", "replace"),
            "regexp": rdata.regexp.decode("ascii", "replace"),
            "replacement": rdata.replacement.to_text(),
        }
    if isinstance(rdata, SRV):
        return {
            "priority": rdata.priority,
            "weight": rdata.weight,
            "port": rdata.port,
            "target": rdata.target.to_text(),
        }
    if isinstance(rdata, TXT):
        # octoDNS holds a TXT value as one string with ';' escaped; the character-strings
        # of a long value are cut again at 255 bytes when written
        text = "".join(s.decode("utf-8", "replace") for s in rdata.strings)
        return text.replace(";", "\\;")
    return rdata.to_text()


def new_record(zone: Any, owner: str, rdtype: str, ttl: int, texts: Iterable[str]) -> Any:
    """An octoDNS record of ``zone`` at the absolute ``owner``."""
    from octodns.record import Record

    from sipctl.providers.dns.octodns_plugin import quiet

    name = zone.hostname_from_fqdn(owner)
    with quiet():
        return Record.new(zone, name, record_data(rdtype, ttl, texts), lenient=True)


def new_zone(zone: str) -> Any:
    from octodns.zone import Zone

    from sipctl.providers.dns.octodns_plugin import quiet

    with quiet():
        return Zone(zone, [])
