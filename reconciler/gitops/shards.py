"""Shards: ``--shard I/N`` gives each of N CI jobs its own share of the domains, by host."""

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


def take_shard(domains: Sequence[Domain], shard: str | None) -> list[Domain]:
    """The domains of share ``shard`` ("I/N"); all of them when None. Stable across runs and
    machines (a hash of the key, not of the order the files were found in)."""
    if shard is None:
        return list(domains)
    index, count = parse_shard(shard)
    return [d for d in domains if _share(shard_key(d), count) == index]


def _share(key: str, count: int) -> int:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
