"""The one JSON envelope of ``plan``, ``drift``, ``verify`` and ``audit --json``.

Whether ``-f`` named one spec, several or a directory, a command's JSON has the same shape,
so a pipeline reads it with one path (``.domains[].plan.summary``)::

    {"format_version": "1", "kind": "plan",
     "domains": [{"spec": "a.yaml", "domain": "a.example", "status": "planned",
                  "error": null, "plan": {...}}]}

The object under the kind's own key is the command's report (a plan, a drift report, ...);
it is null for a domain that failed before it had one, and ``error`` then says why. A run
refused as a whole (overlapping claims, a directory without a spec) has no domains and a
top-level ``error``: with ``--json`` stdout always holds one document (``refusal``, printed
by the CLI's error boundary).
A plan saved by ``plan --out`` is not wrapped: it is one plan, for ``apply PLAN``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sipctl.errors import SpecError

ENVELOPE_VERSION = "1"
KINDS = ("plan", "drift", "verify", "audit")


def entry(
    kind: str,
    spec: str,
    domain: str,
    status: str,
    report: Mapping[str, Any] | None,
    error: str | None = None,
) -> dict[str, Any]:
    """One domain of an envelope: where its spec is, what happened, and its report."""
    return {"spec": spec, "domain": domain, "status": status, "error": error, kind: report}


def envelope(kind: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}")
    return {"format_version": ENVELOPE_VERSION, "kind": kind, "domains": list(entries)}


def skipped_entry(path: str, reason: str) -> dict[str, str]:
    """A file of a ``-f DIR`` directory that is no spec (the envelope's ``skipped``, present
    only when some file was)."""
    return {"file": path, "reason": reason}


def single(
    kind: str,
    spec: str,
    domain: str,
    status: str,
    report: Mapping[str, Any],
    error: str | None = None,
) -> dict[str, Any]:
    """The envelope of a run over one spec (``error``: why it failed with its report, a
    plan refused for safety)."""
    return envelope(kind, [entry(kind, spec, domain, status, report, error)])


def refusal(kind: str, spec: str | None, status: str, error: str) -> dict[str, Any]:
    """The envelope of a run that ended before it had a report: of one spec, its entry
    with the error; of many (``spec`` None), the run's own ``error``."""
    if spec is not None:
        from pathlib import Path

        from sipctl.schemas.hosting import file_domain

        domain = file_domain(Path(spec)) or "?"  # a spec that did not load, by its domain line
        return envelope(kind, [entry(kind, spec, domain, status, None, error)])
    return {**envelope(kind, []), "error": error}


def plan_status(has_changes: bool) -> str:
    """A planned domain's status, the same words in the envelope and the summary table."""
    return "planned" if has_changes else "no changes"


def is_envelope(data: object) -> bool:
    return isinstance(data, Mapping) and isinstance(data.get("domains"), list)


def the_only_plan(data: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """The plan inside a ``plan --json`` envelope of exactly one planned domain.

    ``sipctl plan --json > plan.json; sipctl apply plan.json`` keeps working; an envelope of
    several domains is refused with the way to save one plan per domain.
    """
    plans = [d.get("plan") for d in data["domains"] if isinstance(d, Mapping)]
    if data.get("kind") != "plan" or not plans:
        raise SpecError(
            f"{source}: not a sipctl plan (it is 'sipctl {data.get('kind')} --json' output); "
            "save a plan with 'sipctl plan --out FILE'"
        )
    if len(plans) > 1:
        raise SpecError(
            f"{source}: holds the plans of {len(plans)} domains; apply them one by one: "
            "save one plan per domain with 'sipctl plan -f DIR --out DIR', then "
            "'sipctl apply DIR'"
        )
    plan = plans[0]
    if not isinstance(plan, Mapping):
        raise SpecError(f"{source}: its domain has no plan (it failed); plan it again")
    return plan
