"""Apply under lock: take the locks, read once, apply, record, release.

Like Terraform's state lock, every lock of the spec is taken before the live state is read,
and held through the confirmation prompt, so what is shown is what is applied and nobody
can change it in between:

- ``lock_and_apply`` (``apply -f SPEC``): lock, read once and plan, show and confirm
  (``before``), apply;
- ``guarded_apply`` (a saved plan, or one made before the lock: several domains, import
  --adopt): lock, read once and compare with the plan (changed since: exit 3, re-plan), apply.

The record of the last apply (for ``sipctl drift``) and the release of a DNS lock ride in
the zone's last change set, with the changes (``Provider.apply``'s ``riders``): over RFC
2136 a run with changes costs one UPDATE to lock, one pipelined read and one UPDATE to write.
The locks are released at the end, also on error and Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sipctl.providers.base import RunContext, UpdateRider
from sipctl.reconciler.engine import (
    ApplyReport,
    PlanRun,
    TargetRun,
    apply_plan,
    loaded_from_plan,
    make_plan,
    refresh,
)
from sipctl.reconciler.gitops.drift import record_state, state_is_current
from sipctl.reconciler.gitops.locking import DEFAULT_TTL, LockSet, lock_sites, new_holder, plan_hash
from sipctl.reconciler.plan import Plan
from sipctl.schemas.loader import LoadedSpec


@dataclass(frozen=True)
class LockOptions:
    timeout: float = 0.0  # seconds to wait for a held lock
    ttl: timedelta = DEFAULT_TTL  # how long a lock is valid when its run dies


@dataclass
class Outcome:
    plan_run: PlanRun
    report: ApplyReport | None = None
    lines: list[str] = field(default_factory=list)


Show = Callable[[PlanRun], None]
Say = Callable[[str], None]


def lock_and_apply(
    loaded: LoadedSpec,
    ctx: RunContext,
    layers: Sequence[str] | None = None,
    *,
    force: bool = False,
    locks: LockOptions = LockOptions(),
    before: Show = lambda _run: None,
    say: Say = lambda _line: None,
    detail: Say = lambda _line: None,
) -> Outcome:
    """Take every lock of ``loaded``, then plan (the only read) and apply; ``before`` runs
    on the plan before anything changes (show, safety check, confirmation)."""
    # No plan exists yet when the lock is taken: the lock names none ("-").
    return _apply_locked(
        loaded,
        layers,
        lambda: make_plan(loaded, ctx, layers),
        "-",
        ctx,
        force,
        locks,
        before,
        say,
        detail,
    )


def guarded_apply(
    plan: Plan,
    label: str,
    ctx: RunContext,
    *,
    force: bool = False,
    locks: LockOptions = LockOptions(),
    before: Show = lambda _run: None,
    say: Say = lambda _line: None,
    detail: Say = lambda _line: None,
    rewritten: Collection[tuple[str, str]] = (),
    loaded: LoadedSpec | None = None,
) -> Outcome:
    """Apply ``plan`` (made before the lock) under every lock of its spec; the read under
    the lock must find the live state the plan was made from (see ``refresh`` for
    ``rewritten``). ``before`` runs on that fresh read, just before anything changes (show,
    safety check, confirmation). ``loaded``: the plan's spec as the caller loaded it (a
    fleet worker's, whose files are in its private copy), else as the plan says."""
    spec = loaded if loaded is not None else loaded_from_plan(plan, label)
    return _apply_locked(
        spec,
        plan.layers or None,
        lambda: refresh(plan, ctx, label, rewritten, spec),
        plan_hash(plan),
        ctx,
        force,
        locks,
        before,
        say,
        detail,
    )


def _apply_locked(
    loaded: LoadedSpec,
    layers: Sequence[str] | None,
    read: Callable[[], PlanRun],
    hash_of_plan: str,
    ctx: RunContext,
    force: bool,
    locks: LockOptions,
    before: Show,
    say: Say,
    detail: Say,
) -> Outcome:
    from sipctl.providers.transport.read_gate import refuse_apply

    refuse_apply(ctx.env)
    sites = lock_sites(loaded, ctx, layers)
    holder = new_holder(hash_of_plan, locks.ttl, dict(ctx.env))
    with LockSet(sites, holder, locks.timeout, say, detail) as held:
        fresh = read()
        if loaded.spec.hosting is not None:
            from sipctl.reconciler.departures import refuse_unlocked_departures

            refuse_unlocked_departures(fresh, {site.key for site in sites})
        before(fresh)
        outcome = Outcome(fresh)
        # What ends the run rides in a zone's last change set, given to its provider's
        # ``apply`` (``riders``): the record of the last apply and the lock's release.
        waiting: dict[str, list[UpdateRider]] | None = None

        def finish() -> dict[str, list[UpdateRider]]:
            # Everything else has succeeded: record it, and collect what rides.
            recorded = record_state(fresh, ctx, holder.who, held.rides_with)
            outcome.lines = recorded.lines
            riders = recorded.riders
            for key, releases in held.release_riders().items():
                riders.setdefault(key, []).extend(releases)
            return riders

        def last_riders(run: TargetRun) -> list[UpdateRider]:
            nonlocal waiting
            if not held.rides_with(run.provider.target_id):
                return []
            waiting = finish()
            return waiting.pop(run.provider.target_id, [])

        if fresh.plan.has_changes:
            outcome.report = apply_plan(fresh, ctx, force=force, last_riders=last_riders)
        if waiting is None:
            waiting = finish()
        outcome.lines.extend(held.send_riders(waiting))  # what no change carried: one each
    return outcome


def record_if_needed(
    plan_run: PlanRun,
    ctx: RunContext,
    locks: LockOptions = LockOptions(),
    say: Say = lambda _line: None,
    detail: Say = lambda _line: None,
) -> list[str]:
    """For a plan made before the lock without changes: write the record of the last apply
    only when it is missing or out of date (so a second apply normally touches nothing)."""
    if state_is_current(plan_run, ctx):
        return []
    return guarded_apply(plan_run.plan, "the plan", ctx, locks=locks, say=say, detail=detail).lines
