"""What the DNS providers own, and how a live rrset becomes an owned value: shared, pure.

The DNS providers (rfc2136, zonefile, octodns) read rrsets their own way, in the rounds
``read_owned`` asks for, and hand them here, so all agree on ownership: the SIP/SIPS NAPTRs
at the domain (never the other NAPTRs), the SRV rrsets of all three transports (a transport
turned off loses its SRV), the registry TXT, and the A/AAAA of the hosts in the desired set
and in the live registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.rdata

from sipctl.reconciler.dns_records import (
    SRV_PREFIX,
    absolute,
    canonical,
    in_zone,
    is_sip_naptr,
    parse,
    registry_hosts,
    registry_owner,
    srv_owner,
)
from sipctl.reconciler.resources import Address, Kept, LiveState, Resource, Value

LAYER = "dns"
Names = list[tuple[str, str]]  # (owner, type) pairs
# A read also reports a CNAME at an owner it asked about, as (owner, CNAME): sipctl's
# records cannot be beside it (``cname_problems``). The answer to a query names it anyway.
CNAME = "CNAME"


def owners(names: Sequence[tuple[str, str]]) -> list[str]:
    """The owner names of ``names``, each once: where a read also looks for a CNAME."""
    return list(dict.fromkeys(owner for owner, _ in names))


@dataclass(frozen=True)
class LiveRrset:
    """One rrset as it is live: its TTL and each record as (canonical text, exact text).

    The exact text matters for NAPTR: its strings are compared byte for byte by the server,
    so a prerequisite or a deletion must repeat them as they are (``sip+d2u``), not in our
    canonical case (``SIP+D2U``).
    """

    ttl: int
    records: tuple[tuple[str, str], ...]
    # The record each exact text was read from, so that deciding what is owned (a NAPTR's
    # service, the hosts a registry lists) does not parse the text again. Not compared and
    # not stored: a record without it (read back from JSON, built from texts) is parsed.
    read_from: Mapping[str, dns.rdata.Rdata] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_rdatas(cls, ttl: int, rdatas: Iterable[dns.rdata.Rdata]) -> LiveRrset:
        read_from = {r.to_text(): r for r in rdatas}
        pairs = {(canonical(r, text=exact), exact) for exact, r in read_from.items()}
        return cls(int(ttl), tuple(sorted(pairs)), read_from)

    def rdata(self, rdtype: str, exact: str) -> dns.rdata.Rdata:
        """The record whose exact text is ``exact``."""
        found = self.read_from.get(exact)
        return found if found is not None else parse(rdtype, exact)

    def to_json(self) -> dict[str, object]:
        return {"ttl": self.ttl, "records": [list(p) for p in self.records]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LiveRrset:
        records = data["records"]
        assert isinstance(records, list)
        ttl = data["ttl"]
        assert isinstance(ttl, int)
        return cls(ttl, tuple((str(c), str(e)) for c, e in records))


def base_names(domain: str) -> list[tuple[str, str]]:
    """The (owner, type) pairs read first: NAPTR, the three SRVs, the registry TXT."""
    names = [(absolute(domain), "NAPTR")]
    names += [(srv_owner(transport, domain), "SRV") for transport in SRV_PREFIX]
    names.append((registry_owner(domain), "TXT"))
    return names


def desired_hosts(desired: Sequence[Resource]) -> list[str]:
    """Hosts whose A/AAAA the spec wants: both types are read for each."""
    return sorted({r.address.name for r in desired if r.address.kind in ("A", "AAAA")})


def listed_hosts(rrsets: dict[tuple[str, str], LiveRrset], domain: str, zone: str) -> list[str]:
    """The hosts the live registry of ``domain`` lists, inside ``zone`` (a hand-edited
    registry naming a host elsewhere cannot make sipctl touch another zone)."""
    registry = rrsets.get((registry_owner(domain), "TXT"))
    if registry is None:
        return []
    hosts = registry_hosts(registry.rdata("TXT", exact) for _, exact in registry.records)
    return [h for h in hosts if in_zone(h, zone)]


def host_names(hosts: Iterable[str]) -> list[tuple[str, str]]:
    return [(h, t) for h in sorted(set(hosts)) for t in ("A", "AAAA")]


def wanted_names(domain: str, desired: Sequence[Resource]) -> Names:
    """What a read asks first: ``base_names`` and the A/AAAA of the hosts the spec wants."""
    return [*base_names(domain), *host_names(desired_hosts(desired))]


def read_owned(
    read: Callable[[Names], dict[tuple[str, str], LiveRrset]], first: Names, domain: str, zone: str
) -> tuple[dict[tuple[str, str], LiveRrset], Names]:
    """Every owned rrset, by ``read`` (the live rrsets at the names given, absent ones left
    out) in at most two rounds: ``first``, then the A/AAAA of hosts the live registry lists
    that ``first`` left out (hosts the spec no longer has: theirs are ours to delete; usually
    none, so usually no second round). Returns the rrsets and every name asked."""
    rrsets = read(first)
    more = [n for n in host_names(listed_hosts(rrsets, domain, zone)) if n not in first]
    if more:
        rrsets.update(read(more))
    return rrsets, first + more


def owned_state(
    rrsets: dict[tuple[str, str], LiveRrset],
    desired: Sequence[Resource],
) -> LiveState:
    """The LiveState of the owned records, given every rrset read at the owned names.

    ``rrsets`` maps (owner, type) to what is live (missing: no such rrset). The full rrsets
    are kept (``DnsKept``) for the UPDATE prerequisites; only owned records are compared.
    """
    wanted = {r.address: r.value for r in desired}
    live = LiveState()
    live.problems.extend(cname_problems(rrsets, desired))
    rrsets = {key: rrset for key, rrset in rrsets.items() if key[1] != CNAME}
    for (owner, rdtype), rrset in sorted(rrsets.items()):
        address = Address(LAYER, rdtype, owner)
        if rdtype == "NAPTR":
            value = _naptr_value(rrset, wanted.get(address), live)
        else:
            value = {"ttl": rrset.ttl, "records": sorted({c for c, _ in rrset.records})}
        if value is not None:
            live.resources[address] = value
    live.kept = DnsKept(rrsets=dict(rrsets))
    return live


def cname_problems(
    rrsets: Mapping[tuple[str, str], LiveRrset], desired: Sequence[Resource]
) -> list[str]:
    """A CNAME where the spec wants records: a name with a CNAME holds no other record, so
    the server ignores sipctl's there (RFC 2136, 3.4.2.2: the UPDATE succeeds and adds
    nothing; a zone file holding both does not load) and callers follow the CNAME to
    records nobody reviewed. Found live, it stops the plan."""
    wanted: dict[str, list[str]] = {}
    for resource in desired:
        wanted.setdefault(resource.address.name, []).append(resource.address.kind)
    problems = []
    for (owner, rdtype), rrset in sorted(rrsets.items()):
        if rdtype != CNAME or owner not in wanted:
            continue
        target = rrset.records[0][1] if rrset.records else "?"
        kinds = "/".join(sorted(set(wanted[owner])))
        problems.append(
            f"DNS {owner} is a CNAME (to {target}), and a name with a CNAME holds no other "
            f"record: the server would ignore sipctl's {kinds} there while callers follow the "
            f"CNAME; delete the CNAME at {owner}, then plan again"
        )
    return problems


def _naptr_value(rrset: LiveRrset, wanted: Value, live: LiveState) -> Value:
    sip = sorted({c for c, e in rrset.records if is_sip_naptr(rrset.rdata("NAPTR", e))})
    if not sip:
        return None
    others = len(rrset.records) - len(sip)
    ttl = rrset.ttl
    if others and isinstance(wanted, dict) and wanted.get("ttl") != ttl:
        # One rrset has one TTL: changing it would change the other NAPTRs' TTL too, which
        # are not ours. Keep the live TTL and say so.
        live.notes.append(
            f"NAPTR at the domain keeps its TTL {ttl} (shared with {others} non-SIP NAPTR "
            f"record(s) sipctl does not own), not dns.ttl {wanted.get('ttl')}"
        )
        ttl = int(wanted["ttl"])
    return {"ttl": ttl, "records": sip}


@dataclass
class DnsKept(Kept):
    """What a DNS provider's read keeps for its apply.

    rrsets      every rrset read at the owned names, whole, by (owner, type): the
                prerequisites of an UPDATE, the records of others kept in a shared rrset
    names       the (owner, type) pairs read (a zone file re-reads exactly these)
    exists      False when the zone file does not exist yet
    soa_serial  the zone's SOA serial when read (RFC 2136)
    """

    rrsets: dict[tuple[str, str], LiveRrset] = field(default_factory=dict)
    names: list[tuple[str, str]] = field(default_factory=list)
    exists: bool = True
    soa_serial: int | None = None


def kept_rrsets(live: LiveState) -> dict[tuple[str, str], LiveRrset]:
    """The full live rrsets a read kept, by (owner, type)."""
    return live.kept_as(DnsKept).rrsets


def records_of(value: Value) -> list[str]:
    if isinstance(value, dict) and isinstance(value.get("records"), list):
        return [str(r) for r in value["records"]]
    return []


def ttl_of(value: Value, default: int) -> int:
    if isinstance(value, dict) and isinstance(value.get("ttl"), int):
        return int(value["ttl"])
    return default
