"""What one spec of a many-domain run claims, so that no two specs claim the same thing.

A spec claims DNS names (every name its DNS layer renders, and its lock name) and host
layers (firewall, fail2ban, Asterisk files at one target and directory, the web root its
click-to-call page is published into). Two specs may declare the same host layer only with
the same contents, and the same host's A/AAAA only with the same records (several domains
of a zone may use one server: each claims it in ``_sipctl-claim.<host>``, where each owns
only its own record, so that name is no claim). ``claims_of`` renders each layer once and
hands the resources on, so that planning the spec afterwards does not render them again;
the claims themselves are small (names and digests), so that planning workers can send
them to the process that compares them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.reconciler.resources import canonical_json

if TYPE_CHECKING:
    from sipctl.reconciler.resources import Resource, Value
    from sipctl.schemas.loader import LoadedSpec


@dataclass(frozen=True)
class HostClaim:
    """One host layer a spec writes, and a digest of what it writes there."""

    layer: str
    target: str  # as the spec wrote it, for messages
    host: str  # the host it names (a dir: target resolved)
    directory: str
    signature: str  # sha256 of the rendered contents

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.layer, self.host, self.directory)


@dataclass(frozen=True)
class Claims:
    """Everything of one spec that the cross-spec check and the shard split need."""

    domain: str
    dns: tuple[tuple[str, str], ...]  # (kind, absolute name), sorted
    hosts: tuple[HostClaim, ...]
    shard_key: str
    # (kind, absolute name, digest of the rrset) of a host's A/AAAA, sorted
    addresses: tuple[tuple[str, str, str], ...] = ()
    # the locks it shares with other specs (its host's, its zone file's): see turns_of
    turns: tuple[str, ...] = ()


def host_key(loaded: LoadedSpec, target: str) -> str:
    """The host a target names: ``dir:`` targets by their resolved directory."""
    from sipctl.schemas.targets import parse_target

    ref = parse_target(target)
    if ref.kind == "dir":
        return f"dir:{loaded.resolve_path(ref.path).resolve()}"
    return ref.key


def shard_key_of(loaded: LoadedSpec) -> str:
    """What decides a spec's share of a sharded run: its PBX host (the host of its first host
    layer), so that all domains of one host go to the same job; else its domain. A hosted
    customer goes with its host's file."""
    from dataclasses import replace

    from sipctl.reconciler.gitops.locking import host_places

    if loaded.spec.served_by is not None:
        loaded = replace(loaded, spec=loaded.spec.served_by)

    for place in host_places(loaded):
        return f"host:{host_key(loaded, place.target)}"
    return f"domain:{loaded.spec.domain}"


def turns_of(loaded: LoadedSpec) -> tuple[str, ...]:
    """What a spec must not be applied beside: the lock of its PBX host (``shard_key_of``),
    the lock its DNS provider shares with other domains (``Provider.shared_lock_key``: a
    zone file), and the servers in its zone whose addresses it publishes (several domains
    may use one: they change its claims, and its addresses only together, in one run and
    share: ``owned.contested_hosts``). Two specs with one of these in common are applied
    one after the other; a host's plan adds the locks of its departed customers' zones
    (``shards.turns``)."""
    from sipctl.providers.base import load_provider

    spec = loaded.spec
    turns = [shard_key_of(loaded)]
    dns = spec.dns
    if dns is not None:
        shared = load_provider(dns.provider).shared_lock_key(loaded)
        if shared is not None:
            turns.append(f"lock:{shared}")
    if dns is not None and spec.servers:  # a domain that leaves them changes their claims too
        from sipctl.reconciler.dns_records import absolute, in_zone

        hosts = {
            absolute(s.host)
            for s in spec.servers
            if (s.ipv4 or s.ipv6) and in_zone(s.host, spec.zone)
        }
        turns += [f"server:{host}" for host in sorted(hosts)]
    return tuple(turns)


def claims_of(loaded: LoadedSpec) -> tuple[Claims, dict[str, list[Resource]]]:
    """The claims of one spec, and the layers rendered to find them (layer name ->
    resources), for ``engine.make_plan`` to reuse. Pure but for importing renderers."""
    from sipctl.reconciler.dns_records import is_claim_owner, lock_owner
    from sipctl.reconciler.gitops.locking import host_places
    from sipctl.reconciler.layers import layer_named

    spec = loaded.spec
    rendered: dict[str, list[Resource]] = {}
    dns: set[tuple[str, str]] = set()
    addresses: set[tuple[str, str, str]] = set()
    if spec.dns is not None:
        rendered["dns"] = layer_named("dns").render(spec)
        for r in rendered["dns"]:
            kind, name = r.address.kind, r.address.name
            if kind in ("A", "AAAA"):
                addresses.add((kind, name, _digest(r.value)))
            elif not is_claim_owner(name):
                dns.add((kind, name))
        # a server's addresses are one set: a spec that lists only one family says the host
        # has none of the other (its plan deletes it), so that absence is claimed too
        listed = {(kind, name) for kind, name, _ in addresses}
        addresses |= {
            (kind, name, _digest(None))
            for name in {name for _, name in listed}
            for kind in ("A", "AAAA")
            if (kind, name) not in listed
        }
        dns.add(("TXT", lock_owner(spec.domain)))  # the domain itself, even if ensure: absent
    hosts = []
    for place in host_places(loaded):
        hosts.append(
            HostClaim(
                place.layer,
                place.target,
                host_key(loaded, place.target),
                place.directory,
                _signature(loaded, place.layer, rendered),
            )
        )
    page = _page_claim(loaded)
    if page is not None:
        hosts.append(page)
    claims = Claims(
        spec.domain,
        tuple(sorted(dns)),
        tuple(hosts),
        shard_key_of(loaded),
        tuple(sorted(addresses)),
        turns_of(loaded),
    )
    return claims, rendered


def _digest(value: Value) -> str:
    """A digest of a host's rrset of one family (None: the spec lists none of it)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def _page_claim(loaded: LoadedSpec) -> HostClaim | None:
    """The web root ``webrtc.publish`` writes the click-to-call page into: two specs that
    publish into one directory would replace each other's page (and its record) on every
    apply."""
    from sipctl.reconciler.render.webrtc import publish_place, published_files

    place = publish_place(loaded.spec)
    if place is None:
        return None
    target, root = place
    files = canonical_json(sorted(published_files(loaded.spec).items()))
    signature = hashlib.sha256(files.encode("utf-8")).hexdigest()
    return HostClaim("webrtc page", target, host_key(loaded, target), root, signature)


def _signature(loaded: LoadedSpec, layer_name: str, rendered: dict[str, list[Resource]]) -> str:
    """A digest of what a host layer would write, to tell identical claims from conflicting
    ones. The rendered layer is kept in ``rendered``."""
    from sipctl.reconciler.layers import layer_named

    layer = layer_named(layer_name)
    try:
        if layer_name not in rendered:
            rendered[layer_name] = layer.render(loaded.spec)
        resources = rendered[layer_name]
        text = canonical_json(sorted([str(r.address), canonical_json(r.value)] for r in resources))
    except Exception:  # a renderer not installed yet: compare the section itself
        section = layer.section(loaded.spec)
        text = canonical_json(section.model_dump(mode="json") if section is not None else None)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def conflicts(claimed: Sequence[tuple[Path, Claims]]) -> list[str]:
    """Overlapping claims between specs (in the order given): the same DNS name, the same
    host's A/AAAA with different records (or TTL), or the same host layer with different
    contents."""
    problems: list[str] = []
    dns_claims: dict[tuple[str, str], Path] = {}
    address_claims: dict[tuple[str, str], tuple[Path, str]] = {}
    host_claims: dict[tuple[str, str, str], tuple[Path, str]] = {}
    for path, claims in claimed:
        for key in claims.dns:
            other = dns_claims.setdefault(key, path)
            if other != path:
                problems.append(
                    f"{path}: DNS {key[0]} {key[1]} is also claimed by {other}; "
                    "each DNS name belongs to one spec"
                )
        for kind, name, digest in claims.addresses:
            first_address = address_claims.setdefault((kind, name), (path, digest))
            if first_address[1] != digest:
                problems.append(
                    f"{path}: DNS {kind} {name} is also published by {first_address[0]} with "
                    "other records or TTL (or none); domains that use one host declare its "
                    "addresses alike, both families (servers' ipv4 and ipv6, dns.ttl: listing "
                    "only ipv4 says the host has no IPv6), else each apply would undo the other's"
                )
        for host in claims.hosts:
            first = host_claims.setdefault(host.key, (path, host.signature))
            if first[0] != path and first[1] != host.signature:
                problems.append(
                    f"{path}: {host.layer} on {host.target} ({host.directory}) is also "
                    f"managed by {first[0]} with different rules; one host layer has one owner"
                )
    return problems
