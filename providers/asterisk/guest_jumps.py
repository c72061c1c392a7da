"""Guest jumps into the admin's own dialplan, checked in the running Asterisk before apply.

``asterisk.route: goto`` (and every name of a hosting customer) sends a guest to
``Goto(<local_context>,<extension>,1)``: from then on the admin's own steps run for a
stranger. When those steps can place a call out (``Dial(PJSIP/${EXTEN}@trunk)``, an outside
number, a Queue or FollowMe, a program), the stranger calls on the company's bill. The plan
refuses that (a hazard of the host's kind, exit 3, which ``--force`` cannot pass: the command
line is the pipeline's, as the spec is the merge request's) unless the admin, not the spec,
allows that extension in the host profile (``guest_jumps``).

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

from sipctl.providers.asterisk.cli import SHOW_ENDPOINTS, parse_trunk_names
from sipctl.reconciler.attention import (
    JUMPS_CHECKED,
    JUMPS_NOT_CHECKED,
    first_few,
    guest_jumps,
)
from sipctl.reconciler.audit.dialplan import parse_dialplan_show
from sipctl.reconciler.audit.reachability import Reached, outside_steps, running_steps
from sipctl.reconciler.render.asterisk import DIALPLAN_FILE, file_address
from sipctl.reconciler.safety import FORCE_CANNOT_PASS_WHY

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


def jump_clis(targets: Sequence[tuple[str, str]], gate: bool = False) -> list[str]:
    """The read-only CLI commands the check needs (none without targets). ``gate``: for a
    read gate's table, which lists them whatever the targets: a spec's first goto target
    (``route: goto``, a first customer) then plans through the gate already installed, and
    the gate need not be rendered again for it."""
    return [SHOW_ALL] if targets or gate else []


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
    """Judge each target's live steps. ``answers``: those of the provider's batch, among
    them ``jump_clis``'s and (PJSIP) ``pjsip show endpoints``, which tells the trunks a
    ``Dial(PJSIP/name)`` may ring from the phones (``parse_trunk_names``)."""
    check = JumpCheck()
    if not targets:
        return check
    whole = next(a for a in answers if a.cli == SHOW_ALL)
    if not whole.ok:
        check.note = not_checked(targets, f"'{SHOW_ALL}' failed: {whole.words(200)}")
        return check
    contexts = parse_dialplan_show(whole.output)
    endpoints = next((a for a in answers if a.cli == SHOW_ENDPOINTS and a.ok), None)
    trunks = parse_trunk_names(endpoints.output) if endpoints is not None else frozenset()
    missing: list[tuple[str, str]] = []
    allowed_out: list[tuple[str, str]] = []
    for context, exten in targets:
        if not running_steps(contexts, context, exten):
            missing.append((context, exten))
            continue
        reached = outside_steps(context, exten, contexts, trunks)
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
    sure = [r.describe() for r in reached if not r.verdict.uncertain]
    unsure = [f"{r.describe()}: {r.verdict.uncertain}" for r in reached if r.verdict.uncertain]
    keys = ", ".join(spec_keys(loaded, context, exten)) or "the spec"
    said = [f"guests are sent to {exten}@{context} ({keys})"]
    if sure:
        said.append(f"and there the running Asterisk can call out: {_shown(sure)}")
    if unsure:
        said.append(
            f"{'and ' if not sure else ''}there sipctl cannot tell whether "
            f"{'these steps call' if len(unsure) > 1 else 'this step calls'} out, so "
            f"{'they count' if len(unsure) > 1 else 'it counts'} as calling out: {_shown(unsure)}"
        )
    return (
        f"{', '.join(said)}. A stranger from the internet would call on this PBX's bill. "
        f"Point the name at a plain phone extension (one that only rings phones), or, if "
        f"guests may really reach it, the PBX's admin lists '{exten}@{context}' under "
        f"guest_jumps in the host profile {profile_where}, the only way past this refusal; "
        f"{FORCE_CANNOT_PASS_WHY}"
    )


def _shown(steps: Sequence[str]) -> str:
    return "; ".join(steps[:MAX_SHOWN]) + ("; ..." if len(steps) > MAX_SHOWN else "")


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
    return first_few([f"{e}@{c}" for c, e in targets])


def allowed_jumps(profile: HostProfile | None) -> tuple[str, ...]:
    """The host profile's ``guest_jumps`` (none without a profile)."""
    return profile.guest_jumps if profile is not None else ()
