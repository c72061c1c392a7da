"""Shards: ``--shard I/N`` gives each of N CI jobs its own share of the domains, by host;
and the groups of domains one run applies one after the other (``turn_groups``).

One rule says what must not run beside what: two specs that share a lock (their PBX host's,
or a zone file several domains live in: ``claims.turns_of``; a host's plan also takes the
locks of its departed customers' zones) are in one group, and so are two specs that each
share one with a third (a spec on host H and zone file Z joins H's group and Z's). A group
is applied by one worker and taken by one share (a share is chosen before any plan, by the
specs' own turns).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sipctl.errors import SpecError

if TYPE_CHECKING:
    from sipctl.reconciler.gitops.multi import Domain


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N), 1 <= I <= N."""
    index, sep, count = text.partition("/")
    if sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count) <= 1000:
        return int(index), int(count)
    raise SpecError(
        f"--shard {text!r}: expected I/N with 1 <= I <= N, like 1/4 "
        "(GitHub: --shard ${{ matrix.shard }}/4; GitLab: --shard $CI_NODE_INDEX/$CI_NODE_TOTAL)"
    )


def shard_key(domain: Domain) -> str:
    """What decides a domain's share: its PBX host (the host of its first host layer), so
    that all domains of one host are planned and applied by the same job; else the domain."""
    from sipctl.reconciler.gitops.claims import shard_key_of

    if domain.claims is not None:
        return domain.claims.shard_key
    if domain.loaded is not None:
        return shard_key_of(domain.loaded)
    return f"spec:{domain.path.name}"


def turns(domain: Domain) -> tuple[str, ...]:
    """The locks ``domain`` shares with other specs (see the module docstring), and once
    a host's plan is made (or its saved plan read), those of the departed customers' zones
    it removes records from (``Domain.departure_turns``: its apply takes their locks too)."""
    from sipctl.reconciler.gitops.claims import turns_of

    if domain.claims is not None and domain.claims.turns:
        own = domain.claims.turns
    elif domain.loaded is not None:
        own = turns_of(domain.loaded)
    else:
        return (shard_key(domain),)
    if not domain.departure_turns:
        return own
    return tuple(dict.fromkeys([*own, *domain.departure_turns]))


def turn_groups(domains: Sequence[Domain]) -> list[list[Domain]]:
    """``domains`` in groups that share a lock, directly or through others (union-find over
    ``turns``); groups and the domains in each in the order given."""
    parent = list(range(len(domains)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}  # a lock -> the first domain that takes it
    for i, domain in enumerate(domains):
        for key in turns(domain):
            j = first.setdefault(key, i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the earliest domain stays the group's root
    groups: dict[int, list[Domain]] = {}
    for i, domain in enumerate(domains):
        groups.setdefault(root(i), []).append(domain)
    return list(groups.values())


def take_shard(domains: Sequence[Domain], shard: str | None) -> list[Domain]:
    """The domains of share ``shard`` ("I/N"); all of them when None. Stable across runs and
    machines (a hash of the key, not of the order the files were found in)."""
    if shard is None:
        return list(domains)
    index, count = parse_shard(shard)
    taken: set[int] = set()
    for group in turn_groups(domains):
        # a group's share is that of its least key: the same whichever order files came in
        if _share(min(shard_key(d) for d in group), count) == index:
            taken.update(id(d) for d in group)
    return [d for d in domains if id(d) in taken]


def _share(key: str, count: int) -> int:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
