"""What one apply may destroy. Pure: reads a Plan, returns reasons to refuse it."""

from __future__ import annotations

from sipctl.reconciler.plan import COUNT_UNIT_NOTE, Plan

MAX_DESTROY_SHARE = 0.30
ADVERTISING_KINDS = ("NAPTR", "SRV")


def refusal_reasons(plan: Plan) -> list[str]:
    """Why ``plan`` must not be applied without ``--force`` (empty: it may)."""
    reasons: list[str] = []
    for target in plan.targets:
        reasons.extend(f"{target.layer} {target.target}: {hazard}" for hazard in target.hazards)
        removed = sum(change.removed_units() for change in target.changes)
        if target.managed_units and removed / target.managed_units > MAX_DESTROY_SHARE:
            reasons.append(
                f"{target.layer} {target.target}: the plan deletes or replaces {removed} of "
                f"{target.managed_units} managed records "
                f"({removed / target.managed_units:.0%}, the limit is {MAX_DESTROY_SHARE:.0%}; "
                f"{COUNT_UNIT_NOTE})"
            )
        if target.layer == "dns":
            withdrawn = [
                c
                for c in target.changes
                if c.action == "delete" and c.address.kind in ADVERTISING_KINDS
            ]
            left = sum(target.desired_kinds.get(kind, 0) for kind in ADVERTISING_KINDS)
            if withdrawn and left == 0:
                reasons.append(
                    f"dns {target.target}: the plan removes every NAPTR and SRV record of "
                    f"{plan.domain}; callers could no longer find the PBX"
                )
    return reasons
