"""Ask DNS what a SIP client asks (RFC 3263), and hand the answers to the pure resolver.

The questions follow the client: NAPTR at the domain; SRV at the names the usable NAPTRs point
to (else at the transports' default SRV names); A and AAAA of every SRV target; the domain's
own A/AAAA only when no SRV exists. Read-only; the answers become a ``DnsAnswers`` value and
``sipctl.reconciler.verify.rfc3263.resolve`` does the rest.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from sipctl.errors import SpecError
from sipctl.reconciler.verify.rfc3263 import DnsAnswers, Naptr, Srv, names_to_query, normalize_name

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
    """One lookup at a time; after a timeout the server is taken as gone (no 30 more waits).

    ``fallback`` answers the addresses of SRV targets the asked server refuses: a zone's own
    primary is authoritative for its zones only, and an SRV may point at a host elsewhere
    (a hosted PBX), which a SIP client's recursive resolver would find.
    """

    def __init__(
        self,
        resolver: dns.resolver.Resolver,
        fallback: Callable[[], dns.resolver.Resolver | None] | None = None,
    ) -> None:
        self.resolver = resolver
        self.fallback = fallback
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.dead = False

    def ask(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        if self.dead:
            return None
        try:
            return _resolve(self.resolver, name, rdtype)
        except dns.exception.DNSException as exc:
            self._record(exc, name, rdtype, self.resolver)
            return None

    def ask_address(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        """Like ``ask``, but a refusal of the asked server goes to the fallback resolver."""
        if self.dead:
            return None
        try:
            return _resolve(self.resolver, name, rdtype)
        except dns.resolver.NoNameservers as exc:
            other = self.fallback() if self.fallback is not None else None
            if other is None:
                self._record(exc, name, rdtype, self.resolver)
                return None
            note = f"{name}: the asked server does not answer for it; asked the system resolver"
            if note not in self.notes:
                self.notes.append(note)
            try:
                return _resolve(other, name, rdtype)
            except dns.exception.DNSException as again:
                self._record(again, name, rdtype, other)
                return None
        except dns.exception.DNSException as exc:
            self._record(exc, name, rdtype, self.resolver)
            return None

    def _record(
        self, exc: BaseException, name: str, rdtype: str, resolver: dns.resolver.Resolver
    ) -> None:
        servers = ", ".join(str(ns) for ns in resolver.nameservers)
        if isinstance(exc, dns.resolver.LifetimeTimeout | dns.exception.Timeout):
            if resolver is self.resolver:
                self.dead = True
            self.errors.append(
                f"DNS server {servers} (port {resolver.port}) did not answer {rdtype} {name} "
                "in time"
            )
        elif isinstance(exc, dns.resolver.NoNameservers):
            self.errors.append(f"no DNS server answered {rdtype} {name}: {_first_line(exc)}")
        else:
            self.errors.append(f"DNS lookup {rdtype} {name} failed: {_first_line(exc)}")


def _resolve(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> dns.resolver.Answer | None:
    """One question; None when the name does not exist at all."""
    try:
        return resolver.resolve(name + ".", rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def gather(
    domain: str,
    resolver: dns.resolver.Resolver,
    fallback: Callable[[], dns.resolver.Resolver | None] | None = None,
) -> DnsAnswers:
    """Ask what a SIP client asks for ``sip:user@domain``; never raises for DNS failures.

    ``fallback`` makes the resolver asked for SRV targets that ``resolver`` refuses.
    """
    asker = _Asker(resolver, fallback)
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
            answer = asker.ask_address(host, rdtype)
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
        notes=tuple(asker.notes),
    )


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def system_resolver_or_none(timeout: float) -> dns.resolver.Resolver | None:
    """The system's resolver, or None when the host has none configured."""
    try:
        return make_resolver(None, timeout)
    except SpecError:
        return None
