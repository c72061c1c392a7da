"""What the DNS providers own, and how a live rrset becomes an owned value: shared, pure.

The DNS providers (rfc2136, zonefile, octodns) read rrsets their own way, in the rounds
``read_owned`` asks for, and hand them here, so all agree on ownership: the SIP/SIPS NAPTRs
at the domain (never the other NAPTRs), the SRV rrsets of all three transports (a transport
turned off loses its SRV), the registry TXT, the A/AAAA of the hosts in the desired set and
in the live registry, and the domain's own record in each such host's claim TXT.

Several domains of one zone may use one host (their SRVs point at ``pbx.example.test``).
Each claims it in the TXT ``_sipctl-claim.<host>`` (one record per domain), so the rule is:
a host's A/AAAA are deleted by a domain that no longer wants them only when no other domain
claims the host. The claim rrset is read with the host's addresses (no extra round) and
changed with prerequisites like every owned rrset, so two applies that race on one host
cannot both decide it is theirs alone. A rrset of which a domain owns only a part (the SIP
NAPTRs at the domain, its own claim) is written back with the others' records as they were
(``rrset_after``): one rule for every provider.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.rdata

from sipctl.reconciler.dns_records import (
    SRV_PREFIX,
    absolute,
    canonical,
    claim_domains,
    claim_owner,
    claim_record,
    in_zone,
    is_claim_owner,
    is_sip_naptr,
    parse,
    registry_hosts,
    registry_owner,
    srv_owner,
)
from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import Address, Kept, LiveState, Resource, Value

LAYER = "dns"
ADDRESS_KINDS = ("A", "AAAA")  # a host's addresses: one set, both families together
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
    return [h for h in _registry_hosts(rrsets, domain) if in_zone(h, zone)]


def host_names(hosts: Iterable[str]) -> list[tuple[str, str]]:
    """What is read of each host: its A and AAAA, and the claims of the domains using it."""
    return [
        name
        for h in sorted(set(hosts))
        for name in ((h, "A"), (h, "AAAA"), (claim_owner(h), "TXT"))
    ]


def wanted_names(domain: str, desired: Sequence[Resource]) -> Names:
    """What a read asks first: ``base_names`` and the A/AAAA and claims of the hosts the
    spec wants."""
    return [*base_names(domain), *host_names(desired_hosts(desired))]


def read_owned(
    read: Callable[[Names], dict[tuple[str, str], LiveRrset]], first: Names, domain: str, zone: str
) -> tuple[dict[tuple[str, str], LiveRrset], Names]:
    """Every owned rrset, by ``read`` (the live rrsets at the names given, absent ones left
    out) in at most two rounds: ``first``, then the A/AAAA (and claims) of hosts the live
    registry lists that ``first`` left out (hosts the spec no longer has: theirs are ours to
    delete only where ``registry_only`` says so; usually none, so usually no second round),
    with the zone's NS rrset (its name servers' addresses are never deleted that way).
    Returns the rrsets and every name asked."""
    rrsets = read(first)
    more = [n for n in host_names(listed_hosts(rrsets, domain, zone)) if n not in first]
    if more:
        more.append((absolute(zone), "NS"))
        rrsets.update(read(more))
    return rrsets, first + more


def owned_state(
    rrsets: dict[tuple[str, str], LiveRrset],
    desired: Sequence[Resource],
    domain: str,
    companions: Collection[str] = (),
    *,
    zone: str,
) -> LiveState:
    """The LiveState of the owned records of ``domain``, given every rrset read at the
    owned names.

    ``rrsets`` maps (owner, type) to what is live (missing: no such rrset). The full rrsets
    are kept (``DnsKept``) for the UPDATE prerequisites; only owned records are compared.
    The A/AAAA of a host another domain claims are not this domain's to delete once it no
    longer wants the host. While it does, both are compared (a host's addresses are its A
    and AAAA together: a spec listing only ``ipv4`` says the host has no IPv6), and a plan
    that would write other addresses there, or delete a family the spec does not list, is
    refused (``contested_hosts``) unless that domain is one of ``companions`` (the domains
    the same run applies: ``RunContext.run_domains``).

    A host the live registry lists and the spec does not want is a host this domain stops
    using: its A/AAAA are deleted only where ``registry_only`` finds them this domain's.
    """
    wanted = {r.address: r.value for r in desired}
    live = LiveState()
    live.problems.extend(cname_problems(rrsets, desired))
    rrsets = {key: rrset for key, rrset in rrsets.items() if key[1] != CNAME}
    ours = claim_record(domain)
    hosts = wanted_hosts(wanted)
    kept_for: dict[str, list[str]] = {}
    not_ours: dict[str, str] = {}
    for (owner, rdtype), rrset in sorted(rrsets.items()):
        address = Address(LAYER, rdtype, owner)
        if rdtype == "NS":
            continue  # read only to know the zone's name servers (``registry_only``)
        if rdtype == "NAPTR":
            value = _naptr_value(rrset, wanted.get(address), live)
        elif rdtype == "TXT" and is_claim_owner(owner):
            value = _claim_value(rrset, ours, wanted.get(address))
        elif (
            rdtype in ADDRESS_KINDS
            and owner not in hosts
            and (others := other_claims(rrsets, owner, domain))
        ):
            kept_for.setdefault(owner, others)  # not ours to delete: another domain uses it
            continue
        elif (
            rdtype in ADDRESS_KINDS
            and owner not in hosts
            and (why := registry_only(rrsets, owner, domain, zone))
        ):
            not_ours.setdefault(owner, why)  # listed by the registry alone: never deleted
            continue
        else:
            value = {"ttl": rrset.ttl, "records": sorted({c for c, _ in rrset.records})}
        if value is not None:
            live.resources[address] = value
    for host, others in sorted(kept_for.items()):
        live.notes.append(
            f"{host} keeps its addresses: {', '.join(others)} "
            f"{'uses' if len(others) == 1 else 'use'} it too (TXT {claim_owner(host)})"
        )
    for host, why in sorted(not_ours.items()):
        live.notes.append(
            f"{host} keeps its addresses, and sipctl drops it from the registry (TXT "
            f"{registry_owner(domain)}): the registry lists it and the spec no longer does, "
            f"but {why}; if no one uses {host} any more, delete its A/AAAA by hand"
        )
    live.hazards.extend(contested_hosts(rrsets, live, wanted, domain, companions))
    live.owned_by.update(joined_addresses(rrsets, live, hosts, domain))
    live.kept = DnsKept(rrsets=dict(rrsets))
    return live


def registry_only(
    rrsets: Mapping[tuple[str, str], LiveRrset], host: str, domain: str, zone: str
) -> str | None:
    """Why the A/AAAA of ``host``, which the registry of ``domain`` lists and its spec no
    longer wants, are not this domain's to delete (None: they are). Whoever can write the
    registry TXT (a hand edit, a key that may update it) could list any host of the zone
    there, the web server's ``www`` or a name server's own address; the registry alone
    deletes nothing. Deleted are only the addresses of a host this domain's own claim on it
    (``_sipctl-claim.<host>``, written with the addresses) says are its, and never those of
    the zone's apex or of a name server of its NS rrset (``read_owned`` reads it with such
    hosts), whatever the claims say. The one rule of every provider (rfc2136, zonefile,
    octodns)."""
    apex = absolute(zone)
    if host == apex:
        return f"it is the zone's apex ({apex}), whose addresses sipctl never deletes"
    servers = rrsets.get((apex, "NS"))
    if servers is not None and host in {absolute(c.split()[-1]) for c, _ in servers.records}:
        return f"it is a name server of zone {apex} (NS), whose addresses sipctl never deletes"
    claims = rrsets.get((claim_owner(host), "TXT"))
    if claims is None or claim_record(domain) not in (c for c, _ in claims.records):
        return (
            f"this domain's claim on it (TXT {claim_owner(host)}: {claim_record(domain)}) is "
            "not there, so its addresses are not known to be sipctl's (a registry written "
            "by hand, or before sipctl wrote claims)"
        )
    return None


def contested_hosts(
    rrsets: Mapping[tuple[str, str], LiveRrset],
    live: LiveState,
    wanted: Mapping[Address, Value],
    domain: str,
    companions: Collection[str],
) -> list[str]:
    """Why a plan must not write the A/AAAA of a host another domain claims: its addresses
    are that domain's too, and the other one's next apply would write its own back (each
    run undoing the other's). A host's addresses are one set, A and AAAA together: a spec
    that lists only one family says the host has none of the other, so a host published
    with IPv6 by one domain and declared with IPv4 only by another is contested as well
    (whichever applied last would delete the other's family). Domains the same run applies
    (``companions``) are left out: the run's own check holds their servers to the same
    addresses, both families (``claims.conflicts``), and a companion that no longer uses
    the host gives up its claim in this run. They are absolute names
    (``multi.run_domains``), as the claims are: a run of 10,000 domains hands every one of
    them the same set, so it is asked, never rebuilt per host.

    Costs no read: the claims are read with the host's addresses. What was read is what
    the write holds the claims to (``decided_on``), so a domain claiming the host between
    this plan's read and its write makes the write fail as stale."""
    hazards = []
    for host in sorted(wanted_hosts(wanted)):
        addresses = [Address(LAYER, kind, host) for kind in ADDRESS_KINDS]
        if all(live.resources.get(a) == wanted.get(a) for a in addresses):
            continue
        others = [d for d in other_claims(rrsets, host, domain) if d not in companions]
        if not others:
            continue
        theirs = _addresses_text({kind: rrsets.get((host, kind)) for kind in ADDRESS_KINDS})
        ours = _addresses_text(
            {
                kind: LiveRrset(ttl_of(value, 0), tuple((r, r) for r in records_of(value)))
                if (value := wanted.get(Address(LAYER, kind, host))) is not None
                else None
                for kind in ADDRESS_KINDS
            }
        )
        them = ", ".join(others)
        hazards.append(
            f"server {host} is also used by {them} (TXT {claim_owner(host)}), whose "
            f"addresses there are {theirs}; this spec of {absolute(domain)} declares "
            f"{ours}: applying it would replace those, and the next apply of {them} would put "
            "them back. A server's IPv4 and IPv6 addresses are one set (a spec that lists "
            "only one family says the server has none of the other): declare both families "
            "alike in both domains' specs and change them in both domains' specs in one merge "
            "request (one run applies both), or give this domain's server a name of its own"
        )
    return hazards


def joined_addresses(
    rrsets: Mapping[tuple[str, str], LiveRrset],
    live: LiveState,
    hosts: Collection[str],
    domain: str,
) -> dict[Address, str]:
    """The live A/AAAA of the hosts ``domain`` starts to use that other domains claim (its
    registry does not list the host, its claim is not there yet): theirs, not its own. The
    safety limit counts a change to them against their owners' records (in their plans:
    the run holds them to the same addresses, else ``contested_hosts`` refuses), not
    against the few records of a domain joining the host. Costs no read."""
    mine = set(_registry_hosts(rrsets, domain))
    apart: dict[Address, str] = {}
    for host in sorted(set(hosts) - mine):
        claims = rrsets.get((claim_owner(host), "TXT"))
        if claims is None or claim_record(domain) in (c for c, _ in claims.records):
            continue
        others = other_claims(rrsets, host, domain)
        if not others:
            continue
        owner = f"the addresses of server {host} (claimed by {', '.join(others)})"
        for kind in ADDRESS_KINDS:
            if (address := Address(LAYER, kind, host)) in live.resources:
                apart[address] = owner
    return apart


def _registry_hosts(rrsets: Mapping[tuple[str, str], LiveRrset], domain: str) -> list[str]:
    """Every host the live registry of ``domain`` lists."""
    registry = rrsets.get((registry_owner(domain), "TXT"))
    if registry is None:
        return []
    return registry_hosts(registry.rdata("TXT", exact) for _, exact in registry.records)


def wanted_hosts(wanted: Collection[Address]) -> set[str]:
    """The hosts whose addresses a spec declares (either family, or both)."""
    return {a.name for a in wanted if a.kind in ADDRESS_KINDS}


def _addresses_text(rrsets: Mapping[str, LiveRrset | None]) -> str:
    """A host's A/AAAA for a message, both families named:
    ``IPv4 192.0.2.10, IPv6 2001:db8::10 (TTL 3600)``, ``IPv4 192.0.2.10, no IPv6 (TTL 3600)``."""
    present = {kind: rrset for kind, rrset in rrsets.items() if rrset and rrset.records}
    if not present:
        return "no IPv4 and no IPv6"
    parts = []
    for kind, family in (("A", "IPv4"), ("AAAA", "IPv6")):
        rrset = present.get(kind)
        records = [c for c, _ in rrset.records] if rrset is not None else []
        parts.append(f"{family} {', '.join(records)}" if records else f"no {family}")
    ttls = sorted({rrset.ttl for rrset in present.values()})
    return f"{', '.join(parts)} (TTL {', '.join(map(str, ttls))})"


def other_claims(rrsets: Mapping[tuple[str, str], LiveRrset], host: str, domain: str) -> list[str]:
    """The domains other than ``domain`` whose claim on ``host`` is live."""
    claims = rrsets.get((claim_owner(host), "TXT"))
    if claims is None:
        return []
    found = claim_domains(claims.rdata("TXT", exact) for _, exact in claims.records)
    return [d for d in found if d != absolute(domain)]


def _claim_value(rrset: LiveRrset, ours: str, wanted: Value) -> Value:
    """This domain's part of a host's claim rrset: its own record (None without it). The
    others' records are not compared, nor is the TTL they share with it."""
    mine = [c for c, _ in rrset.records if c == ours]
    if not mine:
        return None
    ttl = rrset.ttl
    if len(rrset.records) > len(mine) and isinstance(wanted, dict):
        ttl = int(wanted["ttl"])  # one rrset, one TTL: the others' records keep it
    return {"ttl": ttl, "records": mine}


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
    """

    rrsets: dict[tuple[str, str], LiveRrset] = field(default_factory=dict)
    names: list[tuple[str, str]] = field(default_factory=list)
    exists: bool = True


@dataclass(frozen=True)
class RrsetAfter:
    """A live rrset as a change leaves it: the records of others in it (``others``, as read:
    a non-SIP NAPTR beside the SIP ones, another domain's claim on a host) stay as they
    are, and so does the TTL they share; the change's own records (``ours``) are written."""

    ttl: int
    others: tuple[tuple[str, str], ...]  # (canonical, exact)
    ours: tuple[str, ...]  # canonical

    def exact(self) -> list[str]:
        """Every record of the rrset after the change, as text to write."""
        return [e for _, e in self.others] + list(self.ours)


def rrset_after(change: Change, full: LiveRrset | None, default_ttl: int) -> RrsetAfter:
    """The one rule by which every provider writes an owned rrset: what the plan counted as
    the domain's (``change.before``) is replaced by ``change.after``; any other record of
    the live rrset ``full`` is someone else's and stays."""
    owned = set(records_of(change.before))
    others = tuple((c, e) for c, e in (full.records if full else ()) if c not in owned)
    ttl = full.ttl if full is not None and others else ttl_of(change.after, default_ttl)
    return RrsetAfter(ttl, others, tuple(sorted(set(records_of(change.after)))))


def decided_on(changes: Sequence[Change]) -> list[tuple[str, str]]:
    """The rrsets that decided a change without being changed: a host's claims, where the
    host's addresses change. Deleted, they were no other domain's when read; written, no
    other domain claimed them with other addresses (``contested_hosts``). A write holds the
    claims to what was read, as it holds the rrsets it changes, so a domain that claims the
    host in between stops it. (A domain's own claim changes with its addresses only when it
    joins or leaves the host, or in a zone written before claims: elsewhere this is the
    only guard.)"""
    changed = {(c.address.name, c.address.kind) for c in changes}
    hosts = {c.address.name for c in changes if c.address.kind in ("A", "AAAA")}
    names = {(claim_owner(host), "TXT") for host in hosts}
    return sorted(names - changed)


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
