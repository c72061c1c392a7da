"""Guest jumps into the admin's own dialplan, checked in the running Asterisk before apply.

``asterisk.route: goto`` (and every name of a hosting customer) sends a guest to
``Goto(<local_context>,<extension>,1)``: from then on the admin's own steps run for a
stranger. When those steps can place a call out (``Dial(PJSIP/${EXTEN}@trunk)``, an outside
number, a Queue or FollowMe, a program), the stranger calls on the company's bill. The plan
refuses that (a hazard: exit 3) unless the admin, not the spec, allows that extension in the
host profile (``guest_jumps``).

Read in the provider's one batch of CLI commands (no round trip of its own): the whole
running dialplan, ``dialplan show``, one command whatever the names (a host of a thousand
customers' names asks once, and a read gate's table, which lists every command exactly,
needs no new line when a merge request adds a name). The steps a call to EXT@CONTEXT runs
are found in it as Asterisk finds them (exact extension, else matching patterns, else the
includes, priority by priority: ``reachability.running_steps``), and judged as the audit
judges (``reachability.outside_steps``), its jumps and includes followed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sipctl.reconciler.attention import JUMPS_CHECKED, JUMPS_NOT_CHECKED, guest_jumps
from sipctl.reconciler.audit.dialplan import parse_dialplan_show
from sipctl.reconciler.audit.reachability import Reached, outside_steps, running_steps
from sipctl.reconciler.render.asterisk import DIALPLAN_FILE, file_address

if TYPE_CHECKING:
    from sipctl.providers.asterisk.cli import RxAnswer
    from sipctl.reconciler.resources import Resource
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.profiles import HostProfile

SHOW_ALL = "dialplan show"
MAX_SHOWN = 12  # steps named in one refusal


def jump_targets(desired: Sequence[Resource]) -> list[tuple[str, str]]:
    """(context, extension) the desired guest dialplan jumps to outside its own contexts."""
    address = file_address(DIALPLAN_FILE)
    for resource in desired:
        if resource.address == address:
            jumps = guest_jumps(resource.value)
            return [(c, e) for c in sorted(jumps) for e in sorted(jumps[c])]
    return []


def jump_clis(targets: Sequence[tuple[str, str]]) -> list[str]:
    """The read-only CLI commands the check needs (none without targets)."""
    return [SHOW_ALL] if targets else []


@dataclass
class JumpCheck:
    """The check's outcome: refusals (hazards) and one line for the plan's notes."""

    hazards: list[str] = field(default_factory=list)
    note: str = ""


def not_checked(targets: Sequence[tuple[str, str]], why: str) -> str:
    """The note of a target where Asterisk cannot be asked (a ``dir:`` target, render)."""
    return f"{JUMPS_NOT_CHECKED} {why}; whether {_names(targets)} can call out was not read"


def check_jumps(
    loaded: LoadedSpec,
    targets: Sequence[tuple[str, str]],
    answers: Sequence[RxAnswer],
    allowed: Sequence[str],
    profile_where: str,
) -> JumpCheck:
    """Judge each target's live steps (``answers``: those of ``jump_clis``, in order)."""
    check = JumpCheck()
    if not targets:
        return check
    [whole] = answers
    if not whole.ok:
        check.note = not_checked(targets, f"'{SHOW_ALL}' failed: {whole.words(200)}")
        return check
    contexts = parse_dialplan_show(whole.output)
    missing: list[tuple[str, str]] = []
    allowed_out: list[tuple[str, str]] = []
    for context, exten in targets:
        if not running_steps(contexts, context, exten):
            missing.append((context, exten))
            continue
        reached = outside_steps(context, exten, contexts)
        if not reached:
            continue
        if f"{exten}@{context}" in allowed:
            allowed_out.append((context, exten))  # the admin's word; still named below
            continue
        check.hazards.append(_refusal(loaded, context, exten, reached, profile_where))
    words = [f"{len(targets) - len(missing)} extension(s) of the admin's dialplan"]
    if check.hazards:
        words.append(f"{len(check.hazards)} can call out (refused)")
    if allowed_out:
        words.append(f"{_names(allowed_out)} can call out, allowed by the host profile")
    if not check.hazards and not allowed_out:
        words.append("none can call out")
    if missing:
        words.append(f"not in the running dialplan (a guest sent there is cut off): "
                     f"{_names(missing)}")  # fmt: skip
    check.note = f"{JUMPS_CHECKED} {'; '.join(words)}"
    return check


def _refusal(
    loaded: LoadedSpec,
    context: str,
    exten: str,
    reached: Sequence[Reached],
    profile_where: str,
) -> str:
    steps = [r.describe() for r in reached]
    shown = "; ".join(steps[:MAX_SHOWN]) + ("; ..." if len(steps) > MAX_SHOWN else "")
    keys = ", ".join(spec_keys(loaded, context, exten)) or "the spec"
    return (
        f"guests are sent to {exten}@{context} ({keys}), and there the running Asterisk "
        f"can call out: {shown}. A stranger from the internet would call on this PBX's "
        f"bill. Point the name at a plain phone extension (one that only rings phones), "
        f"or, if guests may really reach it, the PBX's admin lists '{exten}@{context}' "
        f"under guest_jumps in the host profile {profile_where}"
    )


def spec_keys(loaded: LoadedSpec, context: str, exten: str) -> list[str]:
    """``file:line:col: key`` of every spec key that sends guests to ``exten@context``."""
    spec = loaded.spec
    found: list[str] = []
    section = spec.asterisk
    if section is not None and section.local_context == context and section.route == "goto":
        found.append(f"{loaded.where(('asterisk', 'route'))}: asterisk.route: goto")
        found += [
            f"{loaded.where(('users', name))}: users.{name}"
            for name, target in spec.users.items()
            if exten in _extensions(target)
        ]
    for customer in spec.customers:
        if customer.local_context != context:
            continue
        names = [n for n, t in customer.users.items() if exten in _extensions(t)]
        if names:
            found.append(_customer_keys(loaded, customer.domain, names))
    return found


def _customer_keys(loaded: LoadedSpec, domain: str, names: Sequence[str]) -> str:
    from sipctl.schemas.hosting import declaring_file
    from sipctl.schemas.loader import load_spec

    path = declaring_file(domain, loaded.base_dir)
    if path is None:
        return f"customer {domain}: " + ", ".join(f"users.{n}" for n in names)
    try:
        customer = load_spec(path)
    except Exception:
        return f"{path.name}: " + ", ".join(f"users.{n}" for n in names)
    return ", ".join(f"{customer.where(('users', n))}: users.{n}" for n in names)


def _extensions(target: object) -> tuple[str, ...]:
    from sipctl.schemas.spec import RingGroup

    if isinstance(target, RingGroup):
        return (*target.ring, *([target.fallback] if target.fallback is not None else []))
    return (str(target),)


def _names(targets: Sequence[tuple[str, str]]) -> str:
    shown = [f"{e}@{c}" for c, e in targets[:5]]
    more = f" and {len(targets) - 5} more" if len(targets) > 5 else ""
    return ", ".join(shown) + more


def allowed_jumps(profile: HostProfile | None) -> tuple[str, ...]:
    """The host profile's ``guest_jumps`` (none without a profile)."""
    return profile.guest_jumps if profile is not None else ()
