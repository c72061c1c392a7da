"""Ask DNS what a SIP client asks (RFC 3263), and hand the answers to the pure resolver.

The questions follow the client: NAPTR at the domain; SRV at the names the usable NAPTRs point
to (else at the transports' default SRV names); A and AAAA of every SRV target; the domain's
own A/AAAA only when no SRV exists. Read-only; the answers become a ``DnsAnswers`` value and
``sipctl.reconciler.rfc3263.resolve`` does the rest.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from sipctl.errors import SpecError
from sipctl.reconciler.rfc3263 import DnsAnswers, Naptr, Srv, names_to_query, normalize_name

_NAMESERVER_RE = re.compile(
    r"\[(?P<v6>[0-9A-Fa-f:.]+)\](?::(?P<port6>\d{1,5}))?|(?P<host>[^:]+)(?::(?P<port>\d{1,5}))?"
)


@dataclass(frozen=True)
class Nameserver:
    address: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def parse_nameserver(text: str) -> Nameserver:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address."""
    value = text.strip()
    try:
        return Nameserver(str(ipaddress.IPv6Address(value)))
    except ValueError:
        pass
    match = _NAMESERVER_RE.fullmatch(value)
    if match is not None:
        address = match["v6"] or match["host"]
        port = int(match["port6"] or match["port"] or 53)
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            parsed = None
        if parsed is not None and 1 <= port <= 65535:
            return Nameserver(str(parsed), port)
    raise SpecError(
        f"--nameserver {text!r}: give an IP address with an optional port, like 127.0.0.1:53 "
        "or [::1]:5353"
    )


def make_resolver(nameserver: Nameserver | None, timeout: float) -> dns.resolver.Resolver:
    """A resolver asking ``nameserver`` only, or the system's resolvers when it is None."""
    if nameserver is None:
        try:
            resolver = dns.resolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration:
            raise SpecError(
                "the system has no resolver configured; give one with --nameserver IP[:PORT]"
            ) from None
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [nameserver.address]
        resolver.port = nameserver.port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    # Answers may differ between a cache and the primary just updated: never cache.
    resolver.cache = None
    return resolver


class _Asker:
    """One lookup at a time; after a timeout the server is taken as gone (no 30 more waits)."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver
        self.errors: list[str] = []
        self.dead = False

    def ask(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        if self.dead:
            return None
        try:
            return self.resolver.resolve(name + ".", rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return None
        except (dns.resolver.LifetimeTimeout, dns.exception.Timeout):
            self.dead = True
            where = ", ".join(f"{ns}" for ns in self.resolver.nameservers)
            self.errors.append(
                f"DNS server {where} (port {self.resolver.port}) did not answer {rdtype} "
                f"{name} in time"
            )
        except dns.resolver.NoNameservers as exc:
            self.errors.append(f"no DNS server answered {rdtype} {name}: {_first_line(exc)}")
        except dns.exception.DNSException as exc:
            self.errors.append(f"DNS lookup {rdtype} {name} failed: {_first_line(exc)}")
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def gather(domain: str, resolver: dns.resolver.Resolver) -> DnsAnswers:
    """Ask what a SIP client asks for ``sip:user@domain``; never raises for DNS failures."""
    asker = _Asker(resolver)
    domain = normalize_name(domain)
    naptr: list[Naptr] = []
    answer = asker.ask(domain, "NAPTR")
    if answer is not None and answer.rrset is not None:
        for rd in answer.rrset:
            naptr.append(
                Naptr(
                    order=int(rd.order),
                    preference=int(rd.preference),
                    flags=_text(rd.flags),
                    service=_text(rd.service),
                    regexp=_text(rd.regexp),
                    replacement=normalize_name(rd.replacement.to_text()),
                )
            )
    so_far = DnsAnswers(domain=domain, naptr=tuple(naptr))
    srv: dict[str, tuple[Srv, ...]] = {}
    for name in names_to_query(so_far):
        answer = asker.ask(name, "SRV")
        if answer is not None and answer.rrset is not None:
            srv[name] = tuple(
                Srv(
                    int(rd.priority),
                    int(rd.weight),
                    int(rd.port),
                    normalize_name(rd.target.to_text()),
                )
                for rd in answer.rrset
            )
    hosts = sorted({r.target for records in srv.values() for r in records if r.target})
    if not any(srv.values()):
        hosts = [domain]
    addresses: dict[str, tuple[str, ...]] = {}
    cnames: dict[str, str] = {}
    for host in hosts:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            answer = asker.ask(host, rdtype)
            if answer is None:
                continue
            canonical = normalize_name(answer.canonical_name.to_text())
            if canonical != host:
                cnames[host] = canonical
            if answer.rrset is not None:
                found += [rd.address for rd in answer.rrset]
        if found:
            addresses[host] = tuple(found)
    return DnsAnswers(
        domain=domain,
        naptr=tuple(naptr),
        srv=srv,
        addresses=addresses,
        cnames=cnames,
        errors=tuple(asker.errors),
    )


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
