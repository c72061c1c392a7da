"""What one apply may destroy or cost. Pure: reads a Plan, returns reasons to refuse it.

Refusals come in two kinds, told apart here and nowhere else (``refusal``):

- the operator's: a plan that destroys much, withdraws the domain, cuts SSH (a target's
  ``hazards``). ``--force`` passes it: the one at the command line knows it is meant.
- the host's: what would cost the PBX's owner money, whoever asks (a guest jump into the
  admin's dialplan that can call out: a target's ``host_hazards``). The spec comes from a
  merge request and the command line is the pipeline's, so ``--force`` (and ``fleet
  approve``) cannot pass it; only the host profile on the PBX, the admin's own file, lifts
  it. Both exit 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sipctl.errors import UnsafePlanError
from sipctl.reconciler.plan import COUNT_UNIT_NOTE, Change, Plan, TargetPlan

MAX_DESTROY_SHARE = 0.30
ADVERTISING_KINDS = ("NAPTR", "SRV")
# Said by each refusal of the host's kind (``FORCE_CANNOT_PASS_WHY``).
FORCE_CANNOT_PASS = "--force cannot pass this refusal"
FORCE_CANNOT_PASS_WHY = (
    f"{FORCE_CANNOT_PASS}: a merge request writes the spec and the pipeline the command "
    "line, while the host profile is the PBX admin's own file"
)


def refusal(plan: Plan, force: bool, shown: bool = False) -> UnsafePlanError | None:
    """Why apply refuses ``plan`` with or without ``--force`` (None: it does not).
    ``shown``: the plan is only shown (plan), so the words say apply would refuse it."""
    held = host_refusals(plan)
    reasons = held if force else refusal_reasons(plan)
    if not reasons:
        return None
    verb = "this plan would be refused by apply" if shown else "refused for safety"
    if held and len(held) == len(reasons):
        head = f"{verb} (--force cannot pass it: only the PBX's host profile can allow it)"
    elif held:
        head = f"{verb} (--force passes only the reasons that do not say '{FORCE_CANNOT_PASS}')"
    else:
        it = "it is" if shown else "this is"
        head = f"{verb} (use --force if {it} really meant)"
    return UnsafePlanError(head, reasons)


def host_refusals(plan: Plan) -> list[str]:
    """The reasons of ``refusal_reasons`` no ``--force`` passes (the host's kind)."""
    return [
        f"{target.layer} {target.target}: {hazard}"
        for target in plan.targets
        for hazard in target.host_hazards
    ]


def refusal_reasons(plan: Plan) -> list[str]:
    """Why ``plan`` must not be applied without ``--force`` (empty: it may); those of
    ``host_refusals`` first, which ``--force`` cannot pass either."""
    reasons: list[str] = host_refusals(plan)
    departed = {t.customer for t in plan.targets if t.customer is not None and t.changes}
    for target in plan.targets:
        reasons.extend(f"{target.layer} {target.target}: {hazard}" for hazard in target.hazards)
        if target.customer is not None:
            continue  # a departed customer's records: counted as that customer (below)
        own = [c for c in target.changes if str(c.address) not in target.owned_by]
        removed = sum(change.removed_units() for change in own)
        if target.managed_units and removed / target.managed_units > MAX_DESTROY_SHARE:
            reasons.append(
                f"{target.layer} {target.target}: the plan deletes or replaces {removed} of "
                f"{target.managed_units} managed records "
                f"({removed / target.managed_units:.0%}, the limit is {MAX_DESTROY_SHARE:.0%}; "
                f"{COUNT_UNIT_NOTE}{_not_counted(target)})"
            )
        if target.layer == "asterisk":
            reasons.extend(_customers_removed(target.target, target.changes, departed))
            departed = set()  # counted once, with the host's dialplan
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
    if departed:  # their dialplan is gone already: only their records are left to remove
        reasons.extend(_customers_removed(plan.domain, [], departed))
    return reasons


def _not_counted(target: TargetPlan) -> str:
    """What the limit left out of a target's count: others' records it changes too (a
    server other domains claim), each counted against its owner's records."""
    apart: dict[str, int] = {}
    for change in target.changes:
        owner = target.owned_by.get(str(change.address))
        if owner is not None:
            apart[owner] = apart.get(owner, 0) + change.removed_units()
    if not apart:
        return ""
    told = "; ".join(f"{n} deleted or replaced of {owner}" for owner, n in sorted(apart.items()))
    return f"; not counted here, as they are others' records: {told}"


# A host of many customers (render/asterisk_hosting.py) lists each customer's domain in this
# context, twice (with and without a trailing dot); its other extensions are sipctl's own.
_DOMAINS_PREFIX = "sipctl-domains,"


def hosted_domains(value: Any) -> set[str]:
    """The customer domains a host's dialplan value (``"context,exten"`` -> steps) serves:
    the names listed in both spellings, so that no other extension of that context (the
    catch-all, or Asterisk's special h, i, t an earlier version put there) counts as a
    customer and dilutes the safety limit."""
    if not isinstance(value, dict):
        return set()
    listed = {key[len(_DOMAINS_PREFIX) :] for key in value if key.startswith(_DOMAINS_PREFIX)}
    return {name for name in listed if f"{name}." in listed}


def _customers_removed(target: str, changes: Sequence[Change], departed: set[str]) -> list[str]:
    """A customer whose file is gone is removed from its host: counted like records are,
    once, whether its dialplan or its DNS records (``departed``) or both go."""
    reasons: list[str] = []
    pairs = [(hosted_domains(c.before), hosted_domains(c.after)) for c in changes]
    pairs = [pair for pair in pairs if pair[0] or pair[1]] or [(set(), set())]
    for before_served, after in pairs:
        before = before_served | departed
        gone = before - after
        if before and len(gone) / len(before) > MAX_DESTROY_SHARE:
            reasons.append(
                f"asterisk {target}: the plan removes {len(gone)} of {len(before)} customers "
                f"({', '.join(sorted(gone)[:5])}; {len(gone) / len(before):.0%}, the limit is "
                f"{MAX_DESTROY_SHARE:.0%}): {_why_gone(after - before)}"
            )
    return reasons


def _why_gone(arrived: set[str]) -> str:
    """What most likely made customers go: a file whose domain changed when the same plan
    adds a customer (the old domain goes, the new one comes), else a file gone."""
    if not arrived:
        return "is a customer file missing from the directory?"
    return (
        f"the plan also adds {', '.join(sorted(arrived)[:5])}: did a customer file's "
        "domain change? The old domain leaves this host with that change (apply with "
        "--force when that is meant); else, is a customer file missing from the directory?"
    )
