"""``sipctl fleet status``: the table, the JSON document and its schema (no Temporal import)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sipctl.reconciler.fleet.model import (
    APPLYING,
    DRIFTED,
    FAILED,
    HOST_REFUSED_REASON,
    REFUSED,
    SILENT,
    STATES,
    WAITING,
    WORKERS_GONE_SECONDS,
    WORKFLOW_QUEUE,
    DomainStatus,
)

FORMAT_VERSION = 1


def no_workers_note() -> str:
    """What status adds when no worker polls the workflows' queue: the memos still tell
    each domain's last state, and nothing moves on until a worker runs."""
    return (
        f"no worker has polled the fleet's workflow queue ({WORKFLOW_QUEUE}) in the last "
        f"{WORKERS_GONE_SECONDS:g} s: the states are as each workflow last recorded them, and "
        "nothing is planned or applied until one runs ('sipctl fleet worker')"
    )


def status_table(found: Sequence[DomainStatus], workers: bool = True) -> str:
    if not found:
        return "No domain in the fleet yet: 'sipctl fleet sync -f DIR' adds them.\n"
    width = max(len(s.domain) for s in found)
    lines = []
    for item in found:
        detail = item.reason
        if item.state in (DRIFTED, WAITING, FAILED, APPLYING):
            detail = "; ".join(filter(None, [item.reason, item.plan_summary]))
        if item.refusals:
            detail = "; ".join(item.refusals) + (
                f" ({HOST_REFUSED_REASON})"
                if cannot_be_approved(item)
                else f" ('sipctl fleet approve {item.domain}')"
            )
        if item.customers:
            detail = "; ".join(filter(None, [_customers(item.customers), detail]))
        last = _applied(item)
        lines.append(f"{item.domain:<{width}}  {item.state:<20}  {last}  {detail}".rstrip())
    counts = {state: sum(1 for s in found if s.state == state) for state in STATES}
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    note = "" if workers else f"{no_workers_note()}\n"
    return "\n".join(lines) + f"\n{len(found)} domain(s): {summary}\n" + note


# A hosting unit's customers named in the table; more are counted (--json lists them all).
_CUSTOMERS_SHOWN = 3


def _customers(domains: Sequence[str]) -> str:
    shown = ", ".join(domains[:_CUSTOMERS_SHOWN])
    more = len(domains) - _CUSTOMERS_SHOWN
    return f"{len(domains)} customer(s): {shown}" + (f" and {more} more" if more > 0 else "")


def _applied(item: DomainStatus) -> str:
    """What is known of the domain's last apply. The fleet knows its own applies only; a
    domain the CLI applied (or another domain's apply whose files it shares) was never
    applied by the fleet, not never applied: the host's record says when and by whom, when
    the plan read it with the host's layers (a DNS-only domain's record names no one)."""
    if item.state == SILENT:  # nobody answered: what the fleet applied is not known
        return "last apply unknown"
    if item.last_apply:
        return f"last fleet apply {item.last_apply}"
    if item.recorded_at:
        by = f" by {item.recorded_by}" if item.recorded_by else ""
        return f"no fleet apply yet (host's record: applied {item.recorded_at}{by})"
    return "no fleet apply yet"


def cannot_be_approved(item: DomainStatus) -> bool:
    """Whether the domain's plans are refused for a reason no approval passes (the host's
    kind): a workflow of this sipctl says so by its state; one that has waited since an
    sipctl before it, by the words each such refusal says (safety.FORCE_CANNOT_PASS)."""
    from sipctl.reconciler.safety import FORCE_CANNOT_PASS

    return item.state == REFUSED or any(FORCE_CANNOT_PASS in r for r in item.refusals)


def status_json(found: Sequence[DomainStatus], workers: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "domains": [asdict(item) for item in found],
    }
    if not workers:
        document["warning"] = no_workers_note()
    return document


def status_refusal(error: str) -> dict[str, Any]:
    """The document of a ``fleet status --json`` that ended without the domains' states."""
    return {"format_version": FORMAT_VERSION, "domains": [], "error": error}


def status_schema() -> dict[str, Any]:
    text = {"type": "string"}
    texts = {"type": "array", "items": text}
    domain = {
        "type": "object",
        "additionalProperties": False,
        "required": ["domain", "state"],
        "properties": {
            "domain": text,
            "state": {"enum": list(STATES)},
            "reason": {
                **text,
                "description": "why it failed or drifted; while planning or applying, why "
                "its step is being retried (the try and its last failure)",
            },
            "spec_digest": text,
            "source": text,
            "queues": texts,
            "plan_summary": text,
            "waiting_digest": {**text, "description": "the plans awaiting fleet approve"},
            "refusals": texts,
            "last_apply": {
                **text,
                "description": "ISO 8601 of the fleet's last successful apply; empty when "
                "the fleet has not applied the domain (the CLI may have: recorded_at)",
            },
            "last_check": text,
            "recorded_at": {
                **text,
                "description": "when the host's record of the last apply says the domain's "
                "host layers were last applied, by any run (sipctl apply, a fleet worker, "
                "another domain's apply of the host), as the last plan read it; empty "
                "without host layers or record",
            },
            "recorded_by": {
                **text,
                "description": "who that apply was (user@host or "
                "SIPCTL_LOCK_WHO), as the record names it",
            },
            "customers": {
                **texts,
                "description": "of a hosting unit (domain hosting:HOST-FILE-DOMAIN): the "
                "domains of the host's customer files it reconciles; empty for a domain",
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sipctl fleet status --json",
        "type": "object",
        "additionalProperties": False,
        "required": ["format_version", "domains"],
        "properties": {
            "format_version": {"const": FORMAT_VERSION},
            "domains": {"type": "array", "items": domain},
            "warning": {
                **text,
                "description": "present when no worker polls the fleet's workflow queue: "
                "the states are as each workflow last recorded them (exit 1)",
            },
            "error": {
                **text,
                "description": "why the run ended without the domains' states (exit 1): "
                "a wrong command line, Temporal not reached; no domains then",
            },
        },
    }
