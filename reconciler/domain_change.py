"""A single company's spec whose ``domain`` changed since the PBX's last apply.

sipctl reads and writes only the names of the spec's domain, so the old domain's records
(NAPTR, SRV, ``_sipctl`` and the A/AAAA it lists) stay published, pointing callers at the
PBX; nothing else would ever mention them. The record of the last apply on the PBX (the
Asterisk layer's host record, ``gitops/drift``) keeps the domain its apply served, and a
plan whose spec names another one says so, with what to do (the tutorial's "Changing the
domain", ``sipctl docs tutorial``). A hosting PBX does more: a customer whose file is
gone has its records removed (``departures``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sipctl.reconciler.engine import TargetRun
    from sipctl.schemas.loader import LoadedSpec

DOMAIN_KEY = "domain"  # the host record's key: the domain of the spec last applied there


def served_domain(loaded: LoadedSpec, runs: Sequence[TargetRun]) -> str | None:
    """The domain a host's record keeps after ``runs`` were applied there: a single
    company's with its Asterisk layer among them (None: the record keeps none)."""
    if loaded.spec.hosting is not None or loaded.spec.host is not None:
        return None
    if not any(run.layer.name == "asterisk" for run in runs):
        return None
    return loaded.spec.domain.lower()


def note_domain_change(loaded: LoadedSpec, runs: Sequence[TargetRun], record: Any) -> None:
    """Tell, among the Asterisk layer's notes, of the domain the host's ``record`` (as the
    plan read it) says was applied there last, when the spec names another one."""
    asterisk = [run for run in runs if run.layer.name == "asterisk"]
    domain = served_domain(loaded, asterisk)
    last = record.get(DOMAIN_KEY) if isinstance(record, dict) else None
    if domain is None or not isinstance(last, str) or last.lower() == domain:
        return
    asterisk[0].live.notes.append(
        f"the last apply on this PBX was of domain {last}, and the spec now names {domain}: "
        f"{last}'s NAPTR, SRV and _sipctl records (and the A/AAAA it lists) stay "
        "published, pointing callers here, since sipctl only looks at the spec's domain; "
        f"to remove them apply a copy of the old spec with domain: {last} and "
        "dns.ensure: absent (--force) before this one "
        "(sipctl docs tutorial, section 'Changing the domain')"
    )
