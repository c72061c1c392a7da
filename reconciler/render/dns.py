"""Render the DNS layer of a spec: the records sipctl owns, and artefacts for review.

Pure: the spec goes in, resources and texts come out. What sipctl owns in a zone:

- the SIP/SIPS NAPTRs at the domain (one per enabled transport; only when ``dns.naptr``),
- the SRV rrset of every enabled transport, listing every server,
- the A/AAAA of servers whose host is inside the zone,
- the TXT registry ``_sipctl.<domain>.`` listing the hosts whose A/AAAA sipctl owns, so a
  server removed from the spec loses its addresses (several domains may share one zone,
  hence one registry per domain),
- at each of those hosts, the domain's own record in the TXT ``_sipctl-claim.<host>.``: the
  domains of the zone whose servers use the host, so that one domain dropping it deletes its
  addresses only when no other domain still uses it (each domain owns only its own record
  there; ``providers/dns/owned.py``).

``dns.ensure: absent`` renders nothing: every owned record found live is then deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sipctl.providers.dns.challenge import challenge_owner
from sipctl.reconciler.dns_records import (
    NAPTR_SERVICE,
    SRV_PREFIX,
    absolute,
    claim_owner,
    claim_record,
    in_zone,
    lock_owner,
    naptr_text,
    registry_owner,
    registry_records,
    rrset_value,
    srv_owner,
    srv_text,
    state_owner,
)
from sipctl.reconciler.resources import Address, Resource
from sipctl.schemas.checks import certificate_names

if TYPE_CHECKING:
    from sipctl.schemas.spec import Spec, UdpTransport, WssTransport

LAYER = "dns"
_TYPE_ORDER = {"NAPTR": 0, "SRV": 1, "A": 2, "AAAA": 3, "TXT": 4}


def render_dns(spec: Spec) -> list[Resource]:
    """The desired owned rrsets of the spec's domain, one Resource per (name, type)."""
    if spec.dns is None or spec.dns.ensure == "absent":
        return []
    ttl = spec.dns.ttl
    domain = spec.domain
    transports: dict[str, UdpTransport | WssTransport] = dict(spec.transports.enabled())
    if spec.dns.naptr_websocket and spec.transports.wss is not None:
        transports["wss"] = spec.transports.wss
    resources: list[Resource] = []

    if spec.dns.naptr and spec.servers:
        naptrs = [
            naptr_text(t.order, t.preference, "s", NAPTR_SERVICE[name], "", srv_owner(name, domain))
            for name, t in transports.items()
        ]
        resources.append(_rrset("NAPTR", absolute(domain), ttl, naptrs))

    if spec.servers:
        for name, transport in transports.items():
            targets = [srv_text(s.priority, s.weight, transport.port, s.host) for s in spec.servers]
            resources.append(_rrset("SRV", srv_owner(name, domain), ttl, targets))

    owned_hosts: list[str] = []
    for server in spec.servers:
        if not in_zone(server.host, spec.zone):
            continue
        host = absolute(server.host)
        if server.ipv4:
            resources.append(_rrset("A", host, ttl, server.ipv4))
        if server.ipv6:
            resources.append(_rrset("AAAA", host, ttl, server.ipv6))
        if server.ipv4 or server.ipv6:
            owned_hosts.append(host)

    resources.append(_rrset("TXT", registry_owner(domain), ttl, registry_records(owned_hosts)))
    claim = [claim_record(domain)]
    resources += [_rrset("TXT", claim_owner(host), ttl, claim) for host in sorted(set(owned_hosts))]
    return resources


def _rrset(rdtype: str, owner: str, ttl: int, records: object) -> Resource:
    assert isinstance(records, list | tuple)
    return Resource(Address(LAYER, rdtype, owner), rrset_value(ttl, [str(r) for r in records]))


def zone_snippet(spec: Spec) -> str:
    """The rendered records as zone-file lines with absolute names (paste-able anywhere)."""
    lines = [
        f"; sipctl: the records sipctl owns for {spec.domain} (zone {spec.zone}).",
        "; Everything else in the zone is left alone.",
    ]
    resources = sorted(
        render_dns(spec), key=lambda r: (_TYPE_ORDER[r.address.kind], r.address.name)
    )
    for resource in resources:
        owner, rdtype, ttl = resource.address.name, resource.address.kind, resource.value["ttl"]
        lines += [f"{owner} {ttl} IN {rdtype} {record}" for record in resource.value["records"]]
    if not resources:
        lines.append("; (nothing: dns.ensure is absent)")
    return "\n".join(lines) + "\n"


def update_policy(spec: Spec) -> str:
    """A BIND ``update-policy`` granting the TSIG key exactly the names and types sipctl manages."""
    key = spec.dns.tsig.name if spec.dns is not None and spec.dns.tsig is not None else "sipctl"
    domain = spec.domain
    grants: list[tuple[str, str]] = [(absolute(domain), "NAPTR")]
    grants += [(srv_owner(name, domain), "SRV") for name in SRV_PREFIX]
    grants += [(owner(domain), "TXT") for owner in (registry_owner, lock_owner, state_owner)]
    hosts = sorted({absolute(s.host) for s in spec.servers if in_zone(s.host, spec.zone)})
    grants += [(host, "A AAAA") for host in hosts]
    # the domain's claim beside each host's addresses (several domains may use one host)
    grants += [(claim_owner(host), "TXT") for host in hosts]
    # asterisk.tls.acme proves each certificate name by a TXT record sipctl writes with this
    # key (providers/dns/challenge.py); without the grant BIND refuses the first order
    grants += [(challenge_owner(name), "TXT") for name in acme_names(spec)]
    lines = [
        f"// sipctl: least privilege for TSIG key {key!r} in zone {absolute(spec.zone)}",
        "// Put this in the zone's block of named.conf (it replaces allow-update).",
        "// Every SRV name is granted so that a transport turned off can be removed;",
        "// NAPTR is granted by type (BIND cannot restrict by service), sipctl itself only",
        "// ever touches the SIP/SIPS NAPTRs. Render again after adding a server; keep a",
        "// removed server's line until sipctl has applied its removal.",
        "// Reading needs the key allowed to query: BIND's default allow-query { any; }",
        f'// does; a zone whose allow-query is narrower adds key "{key}"; to it, keeping',
        "// the callers' resolvers, which read NAPTR and SRV without a key (allow-query",
        f'// {{ key "{key}"; }}; alone hides the zone from every caller). Optional, half the',
        f'// work for the server: allow-transfer {{ key "{key}"; }}; a zone that fits one',
        "// transfer message (about 20 kB) is then read by one signed transfer, a larger",
        "// one by queries.",
        "update-policy {",
    ]
    lines += [f'    grant "{key}" name {name} {types};' for name, types in grants]
    lines.append("};")
    return "\n".join(lines) + "\n"


def acme_names(spec: Spec) -> list[str]:
    """The names whose ACME DNS-01 challenges sipctl answers in the zone (none without acme)."""
    tls = spec.asterisk.tls if spec.asterisk is not None else None
    if tls is None or tls.acme is None:
        return []
    return certificate_names(spec)


def dns_artefacts(spec: Spec) -> dict[str, str]:
    """Files for ``sipctl render --dir`` (written under dns/): zone snippet, update-policy."""
    if spec.dns is None:
        return {}
    domain = spec.domain
    from sipctl.providers.base import load_provider

    files = {f"{domain}.zone-snippet": zone_snippet(spec)}
    files.update(load_provider(spec.dns.provider).server_admin_files(spec))
    return files
