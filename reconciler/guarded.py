"""Apply under lock: take the locks, make sure the plan is still current, apply, record.

The order matters. The plan is shown (and checked for safety) first, so that the lock names
the plan's hash; then every lock of the spec is taken; under the lock the live state is read
again and compared with the plan (a run that applied in between makes this plan stale:
exit 3, re-plan); only then is anything changed, and the record of the last apply (for
``sipctl drift``) written. The locks are released at the end, also on error and Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sipctl.providers.base import RunContext
from sipctl.reconciler.drift import record_state, state_is_current
from sipctl.reconciler.engine import ApplyReport, PlanRun, apply_plan, loaded_from_plan, refresh
from sipctl.reconciler.locking import DEFAULT_TTL, LockSet, lock_sites, new_holder, plan_hash
from sipctl.reconciler.plan import Plan


@dataclass(frozen=True)
class LockOptions:
    timeout: float = 0.0  # seconds to wait for a held lock
    ttl: timedelta = DEFAULT_TTL  # how long a lock is valid when its run dies


@dataclass
class Outcome:
    plan_run: PlanRun
    report: ApplyReport | None = None
    lines: list[str] = field(default_factory=list)


def guarded_apply(
    plan: Plan,
    label: str,
    ctx: RunContext,
    *,
    force: bool = False,
    locks: LockOptions = LockOptions(),
    before: Callable[[PlanRun], None] = lambda _run: None,
    say: Callable[[str], None] = lambda _line: None,
    detail: Callable[[str], None] = lambda _line: None,
) -> Outcome:
    """Apply ``plan`` under every lock of its spec; ``before`` runs under the lock, on the
    fresh read, just before anything changes (show, safety check, confirmation)."""
    loaded = loaded_from_plan(plan, label)
    sites = lock_sites(loaded, ctx, plan.layers or None)
    holder = new_holder(plan_hash(plan), locks.ttl, dict(ctx.env))
    with LockSet(sites, holder, locks.timeout, say, detail):
        fresh = refresh(plan, ctx, label)
        before(fresh)
        outcome = Outcome(fresh)
        if fresh.plan.has_changes:
            outcome.report = apply_plan(fresh, ctx, force=force)
        outcome.lines = record_state(fresh, ctx, holder.who)
    return outcome


def record_if_needed(
    plan_run: PlanRun,
    ctx: RunContext,
    locks: LockOptions = LockOptions(),
    say: Callable[[str], None] = lambda _line: None,
    detail: Callable[[str], None] = lambda _line: None,
) -> list[str]:
    """For a plan without changes: write the record of the last apply only when it is
    missing or out of date (so a second apply normally touches nothing at all)."""
    if state_is_current(plan_run, ctx):
        return []
    return guarded_apply(plan_run.plan, "the plan", ctx, locks=locks, say=say, detail=detail).lines
