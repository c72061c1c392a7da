"""How a SIP client finds the servers of a domain (RFC 3263), as a pure function of DNS answers.

Input is what DNS said (``DnsAnswers``: NAPTR at the domain, SRV rrsets by owner name, addresses
and CNAMEs by host name); output is the ordered list of ``Hop`` rows a client would try and the
``Defect`` list of what is wrong with the chain. No I/O here: ``providers/dns/query.py`` asks
the questions, ``reconciler/verify/run.py`` puts it together.

The procedure (RFC 3263 section 4.1, for a ``sip:`` URI with no port and no IP address):

1. NAPTR at the domain; keep the rules with flag ``s`` and a service we know (``SIP+D2U``,
   ``SIP+D2T``, ``SIPS+D2T``), ordered by order, then preference. Each points at an SRV name.
2. With no usable NAPTR: the SRV names of the transports (``_sip._udp``, ``_sip._tcp``,
   ``_sips._tcp``), in that order.
3. SRV: by priority, then by weight as RFC 2782 selects (random, weighted). The report shows
   each priority group with the weights and the share of calls each target gets; a seeded
   selection (``rfc2782_order``) gives one concrete order for tests.
4. With no SRV at all: the domain's own A/AAAA, UDP on 5060 for ``sip:``, TLS on 5061 for
   ``sips:`` (RFC 3263 4.1/4.2: a client picks UDP for sip and TLS over TCP for sips).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Transport = Literal["udp", "tcp", "tls"]
Source = Literal["naptr", "srv", "address"]

# NAPTR service -> transport, in the order RFC 3263 lists them.
SERVICE_TRANSPORT: dict[str, Transport] = {
    "SIP+D2U": "udp",
    "SIP+D2T": "tcp",
    "SIPS+D2T": "tls",
}
TRANSPORT_SERVICE: dict[Transport, str] = {t: s for s, t in SERVICE_TRANSPORT.items()}
# The SRV label prefix of each transport (RFC 3263 4.1).
SRV_PREFIX: dict[Transport, str] = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}
DEFAULT_PORT: dict[Transport, int] = {"udp": 5060, "tcp": 5060, "tls": 5061}
TRANSPORTS: tuple[Transport, ...] = ("udp", "tcp", "tls")


def normalize_name(name: str) -> str:
    """DNS names compare in lower case without the trailing dot."""
    return name.rstrip(".").lower()


def srv_name(transport: Transport, domain: str) -> str:
    return f"{SRV_PREFIX[transport]}.{normalize_name(domain)}"


@dataclass(frozen=True)
class Naptr:
    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class DnsAnswers:
    """Everything DNS answered, keyed by normalized owner name.

    A name absent from ``srv`` / ``addresses`` had no records of that type. ``cnames`` maps an
    alias to the name it points to; ``addresses`` of an alias holds what the alias resolved
    to (so a probe can still reach it), the CNAME itself is reported as a defect.
    ``errors`` are lookups that failed (timeout, SERVFAIL), one line each; ``notes`` say how
    an answer was found when that matters (e.g. asked another resolver).
    """

    domain: str
    naptr: tuple[Naptr, ...] = ()
    srv: dict[str, tuple[Srv, ...]] = field(default_factory=dict)
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cnames: dict[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hop:
    """One place a client would try: transport, SRV target, port and the target's addresses."""

    transport: Transport
    source: Source
    target: str
    port: int
    addresses: tuple[str, ...]
    service: str | None = None  # the NAPTR service, when a NAPTR led here
    naptr_order: int | None = None
    naptr_preference: int | None = None
    srv_name: str | None = None
    priority: int | None = None
    weight: int | None = None
    share: float | None = None  # the share of first attempts RFC 2782 gives this target

    def to_json(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "source": self.source,
            "service": self.service,
            "naptr_order": self.naptr_order,
            "naptr_preference": self.naptr_preference,
            "srv_name": self.srv_name,
            "priority": self.priority,
            "weight": self.weight,
            "share": None if self.share is None else round(self.share, 4),
            "target": self.target,
            "port": self.port,
            "addresses": list(self.addresses),
        }


@dataclass(frozen=True)
class Defect:
    """Something a client would trip over. ``code`` is stable (for --json and tests)."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Resolution:
    """The ordered hops and the defects found on the way. ``mode`` says which step answered."""

    domain: str
    mode: Literal["naptr", "srv", "address", "none"]
    hops: tuple[Hop, ...]
    defects: tuple[Defect, ...]
    notes: tuple[str, ...] = ()

    def transports(self) -> list[Transport]:
        """The transports DNS advertises, in the client's order of preference."""
        seen: list[Transport] = []
        for hop in self.hops:
            if hop.transport not in seen:
                seen.append(hop.transport)
        return seen


# --- ordering --------------------------------------------------------------------------------


def usable_naptr(records: Iterable[Naptr]) -> list[Naptr]:
    """The NAPTR rules a SIP client follows, in the order it follows them.

    Flag ``s`` (terminal, the replacement is an SRV name) and a SIP service only; other
    NAPTRs at the same name (ENUM, other applications) are not ours to follow.
    """
    found = [
        r for r in records if r.flags.lower() == "s" and r.service.upper() in SERVICE_TRANSPORT
    ]
    return sorted(found, key=lambda r: (r.order, r.preference, r.service.upper()))


def srv_groups(records: Iterable[Srv]) -> list[list[tuple[Srv, float]]]:
    """SRV records by priority (lowest first), each with its share of first attempts.

    Inside a group the share is weight / sum of weights (RFC 2782); when every weight is 0 the
    targets share equally. Within a group the rows are listed by weight, highest first, then
    by name, so that a report is stable; the real order is random (see ``rfc2782_order``).
    A lone target "." means "this service is decidedly not available here" and yields nothing.
    """
    usable = [r for r in records if normalize_name(r.target) != ""]
    by_priority: dict[int, list[Srv]] = {}
    for record in usable:
        by_priority.setdefault(record.priority, []).append(record)
    groups: list[list[tuple[Srv, float]]] = []
    for priority in sorted(by_priority):
        members = sorted(by_priority[priority], key=lambda r: (-r.weight, r.target, r.port))
        total = sum(r.weight for r in members)
        if total == 0:
            groups.append([(r, 1.0 / len(members)) for r in members])
        else:
            groups.append([(r, r.weight / total) for r in members])
    return groups


def rfc2782_order(records: Sequence[Srv], rng: random.Random) -> list[Srv]:
    """One concrete try order, selected exactly as RFC 2782 describes (seed ``rng`` for tests).

    For each priority: put the weight-0 records first, then repeatedly draw a number in
    [0, sum of remaining weights] and take the first record whose running sum reaches it.
    """
    ordered: list[Srv] = []
    for group in srv_groups(records):
        remaining = sorted((r for r, _ in group), key=lambda r: (r.weight != 0, r.target, r.port))
        while remaining:
            total = sum(r.weight for r in remaining)
            pick = rng.randint(0, total)
            running = 0
            for index, record in enumerate(remaining):
                running += record.weight
                if running >= pick:
                    ordered.append(remaining.pop(index))
                    break
    return ordered


# --- resolution ------------------------------------------------------------------------------


def resolve(answers: DnsAnswers) -> Resolution:
    """The hops a SIP client would try for ``sip:user@<answers.domain>``, and the defects."""
    domain = normalize_name(answers.domain)
    defects = [Defect("dns-error", line) for line in answers.errors]
    notes: list[str] = list(answers.notes)
    naptrs = usable_naptr(answers.naptr)
    if answers.naptr and not naptrs:
        # Normal when the name also serves ENUM or mail NAPTRs: not a defect, just a fact.
        notes.append(
            f"{domain} has NAPTR records, but none for SIP (flag 's' with SIP+D2U, SIP+D2T "
            "or SIPS+D2T); clients fall back to SRV"
        )
    hops: list[Hop] = []
    if naptrs:
        mode: Literal["naptr", "srv", "address", "none"] = "naptr"
        for rule in naptrs:
            transport = SERVICE_TRANSPORT[rule.service.upper()]
            name = normalize_name(rule.replacement)
            records = answers.srv.get(name, ())
            if not any(normalize_name(r.target) for r in records):
                what = "no SRV records" if not records else "only the SRV target '.'"
                defects.append(
                    Defect(
                        "naptr-missing-srv",
                        f"NAPTR {rule.service} (order {rule.order}, preference "
                        f"{rule.preference}) points at {name}, which has {what}",
                    )
                )
                continue
            hops += _srv_hops(transport, name, records, answers, defects, rule)
    else:
        mode = "srv"
        for transport in TRANSPORTS:
            name = srv_name(transport, domain)
            hops += _srv_hops(transport, name, answers.srv.get(name, ()), answers, defects, None)
    if not hops and not any(answers.srv.values()):
        mode = "address"
        addresses = answers.addresses.get(domain, ())
        if addresses:
            for transport in ("udp", "tls"):
                hops.append(Hop(transport, "address", domain, DEFAULT_PORT[transport], addresses))
        else:
            mode = "none"
            defects.append(
                Defect(
                    "no-sip-service",
                    f"{domain} has no NAPTR, no SRV and no address: no client can reach it",
                )
            )
    return Resolution(domain, mode, tuple(hops), tuple(dict.fromkeys(defects)), tuple(notes))


def _srv_hops(
    transport: Transport,
    name: str,
    records: Sequence[Srv],
    answers: DnsAnswers,
    defects: list[Defect],
    rule: Naptr | None,
) -> list[Hop]:
    hops: list[Hop] = []
    for group in srv_groups(records):
        for record, share in group:
            target = normalize_name(record.target)
            if target in answers.cnames:
                defects.append(
                    Defect(
                        "srv-target-cname",
                        f"SRV {name} points at {target}, which is a CNAME to "
                        f"{answers.cnames[target]}; an SRV target must have its own A/AAAA "
                        "(RFC 2782)",
                    )
                )
            addresses = answers.addresses.get(target, ())
            if not addresses:
                defects.append(
                    Defect(
                        "srv-target-no-address",
                        f"SRV {name} points at {target}, which has no A or AAAA record",
                    )
                )
            hops.append(
                Hop(
                    transport=transport,
                    source="naptr" if rule is not None else "srv",
                    target=target,
                    port=record.port,
                    addresses=addresses,
                    service=rule.service.upper() if rule is not None else None,
                    naptr_order=rule.order if rule is not None else None,
                    naptr_preference=rule.preference if rule is not None else None,
                    srv_name=name,
                    priority=record.priority,
                    weight=record.weight,
                    share=share,
                )
            )
    return hops


def names_to_query(answers_so_far: DnsAnswers) -> list[str]:
    """The SRV names a client asks for after the NAPTR step (NAPTR targets, else the defaults)."""
    naptrs = usable_naptr(answers_so_far.naptr)
    if naptrs:
        names: list[str] = []
        for rule in naptrs:
            name = normalize_name(rule.replacement)
            if name and name not in names:
                names.append(name)
        return names
    return [srv_name(t, answers_so_far.domain) for t in TRANSPORTS]
