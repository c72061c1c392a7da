"""The canonical text of the DNS records sipctl manages, shared by renderer and providers.

The renderer writes records in this form and every provider normalizes what it reads into
it, so a record that is live compares equal to the one the spec asks for and a second plan
after apply is empty. Canonical means: dnspython's presentation format, names in lower case
and absolute (trailing dot), NAPTR flags in lower case and services in upper case (both are
case-insensitive, RFC 3403), TXT strings quoted. This module is pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache, lru_cache

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

# The labels sipctl puts before a domain or host (validation reads them without dnspython).
from sipctl.reconciler.dns_labels import CLAIM_PREFIX as CLAIM_PREFIX
from sipctl.reconciler.dns_labels import LOCK_PREFIX as LOCK_PREFIX
from sipctl.reconciler.dns_labels import REGISTRY_PREFIX as REGISTRY_PREFIX
from sipctl.reconciler.dns_labels import SRV_PREFIX as SRV_PREFIX
from sipctl.reconciler.dns_labels import STATE_PREFIX as STATE_PREFIX

# The record types sipctl owns, and the NAPTR service of each transport.
MANAGED_TYPES = ("NAPTR", "SRV", "A", "AAAA", "TXT")
NAPTR_SERVICE = {"udp": "SIP+D2U", "tcp": "SIP+D2T", "tls": "SIPS+D2T", "wss": "SIPS+D2W"}
REGISTRY_VERSION = "sipctl-registry=1"
_REGISTRY_HOST = "host="
_CLAIM_DOMAIN = "domain="


# Names and records are rendered, read and compared many times per domain (and a run may
# hold thousands of domains): the pure conversions below remember their recent results.
_RECENT = 16384


_NAMES: dict[str, dns.name.Name] = {}


def name_of(text: str) -> dns.name.Name:
    """``text`` as a dnspython name, a relative one taken below the root. Names are
    immutable, so one is shared by whoever needs it: the renderer, the owner names a read
    asks for or looks up, the zone checks (``absolute`` files its result here too)."""
    found = _NAMES.get(text)
    if found is None:
        if len(_NAMES) >= _RECENT:
            _NAMES.clear()
        found = _NAMES[text] = dns.name.from_text(text, origin=dns.name.root)
    return found


# Texts already in that form, made with their names (``_below``): absolute() of one is itself.
_ABSOLUTE: dict[str, str] = {}


def absolute(name: str) -> str:
    """``Mysite.RU`` -> ``mysite.ru.``: the form every owner name takes in sipctl."""
    found = _ABSOLUTE.get(name)
    return found if found is not None else _absolute(name)


@lru_cache(maxsize=_RECENT)
def _absolute(name: str) -> str:
    found = name_of(name.lower())
    text = found.to_text()
    _NAMES.setdefault(text, found)  # the same name, by the text sipctl uses from now on
    return text


@lru_cache(maxsize=_RECENT)
def in_zone(host: str, zone: str) -> bool:
    """True when ``host`` is the zone's apex or a name below it."""
    return name_of(absolute(host)).is_subdomain(name_of(absolute(zone)))


@cache  # sipctl's own few prefixes
def _relative(prefix: str) -> dns.name.Name:
    return dns.name.from_text(prefix, origin=None)


@lru_cache(maxsize=_RECENT)
def _below(prefix: str, domain: str) -> str:
    """``absolute(f"{prefix}.{domain}")`` for one of sipctl's own prefixes (plain lower-case
    labels such as ``_sip._udp``): the domain's name is parsed once and the prefix's labels
    are put before it by dnspython (which refuses a name that grows too long), so the names
    of one domain cost one parse, not one each."""
    parent = absolute(domain)
    name = _relative(prefix).concatenate(name_of(parent))
    text = f"{prefix}.{parent}"  # the prefix's labels need no escape: the name's own text
    _NAMES.setdefault(text, name)
    if parent != ".":  # (below the root, the text is no name at all)
        if len(_ABSOLUTE) >= _RECENT:
            _ABSOLUTE.clear()
        _ABSOLUTE[text] = text  # a NAPTR's replacement is such a name: not written again
    return text


def srv_owner(transport: str, domain: str) -> str:
    return _below(SRV_PREFIX[transport], domain)


def registry_owner(domain: str) -> str:
    return _below(REGISTRY_PREFIX, domain)


def lock_owner(domain: str) -> str:
    return _below(LOCK_PREFIX, domain)


def state_owner(domain: str) -> str:
    return _below(STATE_PREFIX, domain)


def claim_owner(host: str) -> str:
    """Where the domains using ``host`` claim it: ``_sipctl-claim.<host>`` (TXT)."""
    return _below(CLAIM_PREFIX, host)


def is_claim_owner(name: str) -> bool:
    """True for a ``claim_owner`` name (its first label is sipctl's claim prefix)."""
    return name.startswith(CLAIM_PREFIX + ".")


def parse(rdtype: str, text: str) -> dns.rdata.Rdata:
    """Rdata from presentation text; relative names are taken as absolute (below the root)."""
    return dns.rdata.from_text(
        dns.rdataclass.IN,
        dns.rdatatype.from_text(rdtype),
        text,
        origin=dns.name.root,
        relativize=False,
    )


def canonical(
    rdata: dns.rdata.Rdata, origin: dns.name.Name | None = None, text: str | None = None
) -> str:
    """The canonical text of one record (see the module docstring). ``text``: the record's
    own ``to_text()``, when the caller has made it already (a read keeps it as the exact
    text), so that it is not made twice."""
    if origin is not None:
        text = None  # to_text() keeps relative names relative
    if isinstance(rdata, NAPTR):
        # bytes as they are: a live record may hold any byte (to_text escapes it as \DDD)
        return _naptr_fields_text(
            rdata.order, rdata.preference, rdata.flags, rdata.service, rdata.regexp
        ) + absolute(_last_name(rdata.replacement, origin, text))
    if isinstance(rdata, SRV):
        target = _last_name(rdata.target, origin, text)
        return srv_text(rdata.priority, rdata.weight, rdata.port, target)
    if isinstance(rdata, TXT):
        # one quoted string per character-string; to_text quotes and escapes them already
        return text if text is not None else rdata.to_text()
    if text is not None:  # without an origin, to_text() writes every name absolute
        return text.lower()
    return rdata.to_text(origin=origin or dns.name.root, relativize=False).lower()


def _last_name(name: dns.name.Name, origin: dns.name.Name | None, text: str | None) -> str:
    """The text of ``name``, the last field of a NAPTR or SRV (RFC 3403 4.1, RFC 2782), made
    absolute: taken from the end of the record's own ``to_text()`` when the caller has made
    that (a name's text holds no space: dnspython escapes one as \\032), so that a read
    writes each name once."""
    if text is not None:
        return text[text.rindex(" ") + 1 :]
    return name.derelativize(origin or dns.name.root).to_text()


def canonical_text(rdtype: str, text: str) -> str:
    """Canonical form of a record given as text (e.g. from a spec or a test)."""
    return canonical(parse(rdtype, text))


def naptr_text(
    order: int, preference: int, flags: str, service: str, regexp: str, replacement: str
) -> str:
    """The canonical text of a NAPTR sipctl renders (its fields are ASCII)."""
    return _naptr_fields_text(
        order, preference, flags.encode("ascii"), service.encode("ascii"), regexp.encode("ascii")
    ) + absolute(replacement)


@lru_cache(maxsize=_RECENT)
def _naptr_fields_text(
    order: int, preference: int, flags: bytes, service: bytes, regexp: bytes
) -> str:
    """A NAPTR's canonical text up to its replacement, which comes last (RFC 3403 4.1): as
    dnspython writes the record with the root as replacement, that one dot taken off. The
    fields are the same in every domain (only the replacement names the domain), so each
    combination is written once per process."""
    # flags and service compare case-insensitively (RFC 3403); bytes.lower/upper touch only
    # ASCII letters, so any other byte stays what it was
    rdata = NAPTR(  # type: ignore[no-untyped-call]
        dns.rdataclass.IN,
        dns.rdatatype.NAPTR,
        order,
        preference,
        flags.lower(),
        service.upper(),
        regexp,
        dns.name.root,
    )
    text: str = rdata.to_text()
    assert text.endswith(" ."), text
    return text[:-1]


def shown_bytes(data: bytes) -> str:
    r"""A character-string of a live record as DNS presentation text shows it: printable
    ASCII as it is, every other byte (a newline, \255) as \DDD, so that it can go into a
    message, a comment or a YAML file without meaning anything there."""
    return "".join(chr(b) if 0x20 < b < 0x7F and b not in b'"\\' else f"\\{b:03d}" for b in data)


def srv_text(priority: int, weight: int, port: int, target: str) -> str:
    return f"{priority} {weight} {port} {absolute(target)}"


@lru_cache(maxsize=_RECENT)  # the registry's version marker is the same in every domain
def txt_text(*strings: str) -> str:
    """A TXT record of the given character-strings, quoted and escaped."""
    rdata = TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [s.encode("utf-8") for s in strings])
    return rdata.to_text()


def is_sip_naptr(rdata: dns.rdata.Rdata) -> bool:
    """A NAPTR whose service is SIP or SIPS (RFC 3263): the only NAPTRs sipctl owns."""
    if not isinstance(rdata, NAPTR):
        return False
    service = rdata.service.upper()
    return service.startswith((b"SIP+", b"SIPS+")) or service in (b"SIP", b"SIPS")


def registry_records(hosts: Iterable[str]) -> list[str]:
    """The TXT records of the ownership registry: a version marker and one per host."""
    records = [txt_text(REGISTRY_VERSION)]
    records += [txt_text(_REGISTRY_HOST + absolute(h)) for h in sorted(set(hosts))]
    return sorted(records)


def registry_hosts(rdatas: Iterable[dns.rdata.Rdata]) -> list[str]:
    """The hosts listed in a live registry TXT rrset; unknown strings are ignored."""
    hosts: set[str] = set()
    for named in _strings_after(rdatas, _REGISTRY_HOST):
        try:
            hosts.add(absolute(named))
        except dns.exception.DNSException:
            continue
    return sorted(hosts)


def _strings_after(rdatas: Iterable[dns.rdata.Rdata], prefix: str) -> Iterator[str]:
    """What follows ``prefix`` in each string of the TXT records that begins with it."""
    for rdata in rdatas:
        if isinstance(rdata, TXT):
            for raw in rdata.strings:
                text = raw.decode("utf-8", "replace")
                if text.startswith(prefix):
                    yield text[len(prefix) :]


def claim_record(domain: str) -> str:
    """The TXT record by which ``domain`` claims a host (at ``claim_owner(host)``)."""
    return txt_text(_CLAIM_DOMAIN + absolute(domain))


def claim_domains(rdatas: Iterable[dns.rdata.Rdata]) -> list[str]:
    """The domains claiming a host, from its live claim TXT rrset. A string that is no
    claim is ignored; a claim naming a domain that is no valid name still counts (as it is
    written): whatever else holds a host's addresses is never taken for nobody."""
    domains: set[str] = set()
    for named in _strings_after(rdatas, _CLAIM_DOMAIN):
        try:
            domains.add(absolute(named))
        except dns.exception.DNSException:
            domains.add(named)
    return sorted(domains)


def rrset_value(ttl: int, records: Iterable[str]) -> dict[str, object]:
    """The compared value of an owned rrset."""
    return {"ttl": ttl, "records": sorted(set(records))}
