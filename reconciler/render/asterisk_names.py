"""Users and rooms in the words of the spec, for plans: ``+ user sales → 106 & 107, then 101``.

Pure. Two sources give the same words: :func:`described_names` reads a spec, and
:func:`names_from_dialplan` reads the comparable value of ``extensions_sipctl.conf`` (what
a plan holds as before and after, live or desired). :func:`name_changes` turns two of them
into one line per added, changed or removed name; :func:`dialplan_name_lines` does it for a
plan's change of the dialplan file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sipctl.schemas.spec import RingGroup, Room, Spec


ROOM_WORDS = "room (ConfBridge)"
# asterisk_hosting's customer guest contexts: sipctl-guest-<domain>.
CUSTOMER_CONTEXT_PREFIX = "sipctl-guest-"
# asterisk_hosting's domains context: sipctl-domains,<domain> -> Goto(sipctl-guest-<...>,...)
_DOMAINS_KEY = "sipctl-domains,"
_CUSTOMER_GOTO_RE = re.compile(rf"Goto\({CUSTOMER_CONTEXT_PREFIX}(?P<context>[^,]+),")
_STEP_RE = re.compile(r"[^,]*,(?P<app>\w+)\((?P<args>.*)\)$")
# A room of one company's spec (sipctl-rooms) or of a host's customer (sipctl-rooms-<domain>).
_ROOM_GOTO_RE = re.compile(r"sipctl-rooms(?:-[^,]+)?,(?P<name>[^,]+),1")


def describe_user(target: str | RingGroup, dial_timeout: int | None = None) -> str:
    """``105 (30 s)`` (``105`` when the dialplan jumps to the local context, which decides
    how long it rings: ``dial_timeout`` None), or ``106 & 107 (20 s), then 101``."""
    if isinstance(target, str):
        return target if dial_timeout is None else f"{target} ({dial_timeout} s)"
    text = " & ".join(target.ring) + f" ({target.timeout} s)"
    return text + (f", then {target.fallback}" if target.fallback is not None else "")


def describe_room(room: Room) -> str:
    del room  # the dialplan does not say max_members; both sources must agree
    return ROOM_WORDS


def described_names(spec: Spec) -> dict[str, str]:
    """Every callable name -> what it reaches, in words: ``{"user sales": "106 & 107 ..."}``;
    names in lower case, as the dialplan holds them (callers dial them in any case)."""
    from sipctl.schemas.spec import Asterisk

    section = spec.asterisk or Asterisk()
    limit = None if section.route == "goto" else section.dial_timeout
    names = {
        f"user {name.lower()}": describe_user(target, limit) for name, target in spec.users.items()
    }
    names.update({f"room {name.lower()}": describe_room(room) for name, room in spec.rooms.items()})
    for customer in spec.customers:  # a host of many customers (always route goto)
        names.update(
            {
                f"user {name.lower()}@{customer.domain.lower()}": describe_user(target)
                for name, target in customer.users.items()
            }
        )
        names.update(
            {
                f"room {name.lower()}@{customer.domain.lower()}": describe_room(room)
                for name, room in customer.rooms.items()
            }
        )
    return names


def name_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """``+ user sales → 106 & 107 (20 s), then 101`` lines, one per added, changed (``~``)
    or removed name; both sides as :func:`described_names` gives them."""
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if old is None:
            lines.append(f"+ {key} → {new}")
        elif new is None:
            lines.append(f"- {key} → {old}")
        else:
            lines.append(f"~ {key} → {new} (was {old})")
    return lines


def names_from_dialplan(value: Mapping[str, Any] | None) -> dict[str, str]:
    """The callable names of a normalized ``extensions_sipctl.conf`` (``"context,exten"`` ->
    steps), in the words of :func:`described_names`. Only extensions whose steps ring
    something (Dial, a Goto to an extension, a room) are names; sipctl's own fixed
    extensions and patterns are not."""
    names: dict[str, str] = {}
    domains = _customer_domains(value or {})
    for key, steps in (value or {}).items():
        context, _, exten = key.partition(",")
        # A host of many customers: each customer's guest context names its domain.
        domain = context.removeprefix(CUSTOMER_CONTEXT_PREFIX)
        customer = domain != context
        domain = domains.get(domain, domain)
        if not exten or (context.startswith("sipctl-") and not customer):
            continue
        if not isinstance(steps, list):
            continue
        words = _describe_steps(tuple(map(str, steps)))
        if words is not None:
            kind = "room" if words == ROOM_WORDS else "user"
            names[f"{kind} {exten}@{domain}" if customer else f"{kind} {exten}"] = words
    return names


def _customer_domains(value: Mapping[str, Any]) -> dict[str, str]:
    """What follows ``sipctl-guest-`` in a customer's guest context -> its domain: the
    domain itself, or the digest a long domain's context is named by. The domains context
    says which: ``sipctl-domains,<domain>`` jumps to ``sipctl-guest-<digest>``."""
    found: dict[str, str] = {}
    for key, steps in value.items():
        if not key.startswith(_DOMAINS_KEY) or not isinstance(steps, list):
            continue
        domain = key.removeprefix(_DOMAINS_KEY).rstrip(".")
        for step in steps:
            jump = _CUSTOMER_GOTO_RE.search(str(step))
            if jump is not None and jump["context"] != domain:
                found[jump["context"]] = domain
    return found


# A plan describes the live dialplan and the desired one, which share all but the changed
# extensions: each distinct list of steps is described once (10,000 users: 20,000 -> 10,000).
@functools.lru_cache(maxsize=1 << 16)
def _describe_steps(steps: tuple[str, ...]) -> str | None:
    dials: list[tuple[list[str], str]] = []
    for step in steps:
        # Only Goto and Dial steps say anything; a step without either name cannot be one.
        if "Dial(" not in step and "Goto(" not in step:
            continue
        match = _STEP_RE.match(step)
        if match is None:
            continue
        app, args = match["app"], match["args"]
        if app == "Goto" and _ROOM_GOTO_RE.fullmatch(args):
            return ROOM_WORDS
        if app == "Goto" and args.count(",") == 2 and "#" not in args and "${" not in args:
            return args.split(",")[1]  # route goto: Goto(<local context>,<ext>,1)
        if app == "Dial":
            targets, _, timeout = args.partition(",")
            exts = [_dialled(t) for t in targets.split("&")]
            dials.append((exts, timeout))
    if not dials:
        return None
    (ring, timeout), fallback = dials[0], dials[1:]
    text = " & ".join(ring) + (f" ({timeout} s)" if timeout else "")
    if fallback:
        text += f", then {' & '.join(fallback[0][0])}"
    return text


def _dialled(target: str) -> str:
    """What a Dial target rings, in a plan's words: ``PJSIP/105`` is 105; a trunk's
    ``IAX2/user:SECRET@host`` is ``user:***`` (the password before the '@', which the plan
    would otherwise tell without the '@' the scrub of a dial string looks for)."""
    user = target.split("/", 1)[-1].split("@", 1)[0]
    name, colon, _password = user.partition(":")
    return f"{name}:***" if colon else user


def dialplan_name_lines(change: Mapping[str, Any]) -> list[str]:
    """The name lines of one plan change (JSON form), empty unless it is the dialplan file."""
    address = change.get("address") or {}
    if address.get("layer") != "asterisk" or address.get("name") != "extensions_sipctl.conf":
        return []
    return name_changes(
        names_from_dialplan(change.get("before")), names_from_dialplan(change.get("after"))
    )
