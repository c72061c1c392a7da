"""What in a plan a reviewer must not approve without thinking: the changes that widen what a
stranger can do, cost money or take teeth out of the bans.

A merge request that changes one word of a spec (``route: goto``, ``maxretry: 1000``, a port in
``firewall.extra``) reads, in a plan, like any other line; the danger is in what it means. This
is the one rule that names it. It reads the plan's own changes (the live value before, the
desired one after), so it judges what apply will really do, whatever spec key caused it:

- the guest dialplan gains a jump out of sipctl's own contexts (``route: goto``, and every
  name of a hosting customer, whose phones' context is its admin's): a stranger then runs
  the admin's own steps of that extension (forwards, trunks, transfers). The Asterisk
  provider's read checks those steps in the running Asterisk and refuses the plan when they
  dial out (``providers/asterisk/guest_jumps.py``); the line says what that check found, or
  that it could not be made;
- Asterisk listens on a new transport (``manage_transports``) while the plan manages no
  firewall: the port is open to every address unless something else filters it;
- the firewall accepts a port, or a wider range, that it did not accept before;
- a ban jail is disabled, removed, or made milder (more retries, a shorter window or ban, more
  addresses never banned, another log file).

A layer created from nothing is new as a whole and read as a whole; only the guest dialplan's
jumps are named there too, since they are never obvious from the file. Pure: the plan's JSON
carries the result (``attention``), and every view prints it once, before the changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

# Goto(context,extension,priority) as the guest dialplan writes it, one step of a section,
# and a ring group's Local/extension@context channels (route: goto)
_GOTO_RE = re.compile(
    r"Goto\((?P<context>[^,()#$]+),(?P<exten>[^,()]+),[^,()]+\)"
    r"|Local/(?P<lexten>[^@/,&()$]+)@(?P<lcontext>[^/,&()#$]+)"
)
# What the Asterisk provider's read says (a target's ``notes``/``skipped``) about the jumps'
# check; the attention line takes it up.
JUMPS_CHECKED = "guest jumps checked in the running Asterisk:"
JUMPS_NOT_CHECKED = "guest jumps not checked:"
MAX_CONTEXTS = 5  # contexts named a line each in the attention list; more share one line
MAX_NAMED = 20  # extensions named in one context's line
_JAIL_LIMITS = {  # key -> (how the jail gets milder, the words for it)
    "maxretry": (1, "more failures before a ban"),
    "findtime": (-1, "a shorter window counting failures"),
    "bantime": (-1, "a shorter ban"),
}


def attention_reasons(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per risky change of the plan's targets (``Plan.to_json()["targets"]``)."""
    reasons: list[str] = []
    firewall = any(target.get("layer") == "firewall" for target in targets)
    for target in targets:
        check = _jumps_check(target)
        for change in target.get("changes", []):
            for reason in _change_reasons(change, check, firewall):
                if reason not in reasons:
                    reasons.append(reason)
    return reasons


def _jumps_check(target: Mapping[str, Any]) -> str:
    """What the target's read said about the guest jumps' check ("" when nothing)."""
    for line in [*target.get("notes", []), *target.get("skipped", [])]:
        text = str(line)
        if text.startswith((JUMPS_CHECKED, JUMPS_NOT_CHECKED)):
            return text
    return ""


def _change_reasons(change: Mapping[str, Any], check: str, firewall: bool) -> Iterator[str]:
    address = change["address"]
    layer, kind, name = address["layer"], address["kind"], str(address["name"])
    before, after = change.get("before"), change.get("after")
    if layer == "asterisk" and kind == "file" and name.startswith("extensions"):
        yield from _dialplan_jumps(before, after, check)
    elif layer == "asterisk" and kind == "file" and name.startswith("pjsip") and not firewall:
        yield from _new_transports(before, after)
    elif layer == "firewall" and kind in ("chain", "table"):
        if change["action"] == "delete":
            yield f"the firewall's {kind} {name} is removed: its default-deny no longer applies"
        elif isinstance(before, Mapping) and isinstance(after, Mapping):
            yield from _new_openings(before, after)
    elif layer == "fail2ban" and kind == "file" and "jail" in name and isinstance(before, Mapping):
        yield from _milder_jails(before, after if isinstance(after, Mapping) else {})


def _dialplan_jumps(before: Any, after: Any, check: str) -> Iterator[str]:
    """Gotos of the guest dialplan into a context the file does not define itself: a line
    per context, or, past ``MAX_CONTEXTS`` (a host's first plan of a thousand customers),
    one line for them all, naming the first few (as the check's own note does)."""
    old, new = guest_jumps(before), guest_jumps(after)
    checked = f" ({check})" if check else ""
    added = {
        context: sorted(new[context] - old.get(context, set()), key=_natural)
        for context in sorted(new)
    }
    added = {context: extensions for context, extensions in added.items() if extensions}
    how = (
        "by Goto or a ring group's Local channel: asterisk.route: goto, or a hosting "
        "customer's phones"
    )
    if len(added) > MAX_CONTEXTS:
        targets = [f"{e}@{c}" for c, extensions in added.items() for e in extensions]
        yield (
            f"guests now run the admin's own dialplan in {len(added):,} contexts "
            f"({len(targets):,} extensions: {first_few(targets)}, {how}): a stranger gets "
            f"whatever they do there (a forward, a trunk, a transfer); check them before "
            f"approving{checked}"
        )
        return
    for context, extensions in added.items():
        words = (
            ("extension", "it does", "it")
            if len(extensions) == 1
            else ("extensions", "they do", "them")
        )
        yield (
            f"guests now run the admin's own dialplan in context {context!r} "
            f"({words[0]} {first_few(extensions, MAX_NAMED)}, {how}): a stranger gets "
            f"whatever {words[1]} there (a forward, a trunk, a transfer); check "
            f"{words[2]} before approving{checked}"
        )


def first_few(names: Sequence[str], shown: int = 5) -> str:
    """``a, b, c, d, e and 9,995 more``: the first ``shown`` names and how many are left."""
    more = f" and {len(names) - shown:,} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def guest_jumps(value: Any) -> dict[str, set[str]]:
    """context -> extensions the dialplan's value (``"context,exten"`` -> steps) jumps to
    in contexts it does not define itself (Goto, Local channels of a ring group)."""
    if not isinstance(value, Mapping):
        return {}
    own = {str(section).split(",")[0] for section in value}
    found: dict[str, set[str]] = {}
    for steps in value.values():
        for step in steps if isinstance(steps, list) else []:
            for match in _GOTO_RE.finditer(str(step)):
                context = (match["context"] or match["lcontext"]).strip()
                if context not in own:
                    found.setdefault(context, set()).add(
                        (match["exten"] or match["lexten"]).strip()
                    )
    return found


def _transports(value: Any) -> dict[str, str]:
    """``protocol/port`` -> section of every transport a pjsip file's value binds."""
    found: dict[str, str] = {}
    for section, lines in value.items() if isinstance(value, Mapping) else []:
        options = _settings(lines)
        bind, protocol = options.get("bind", ""), options.get("protocol", "")
        port = bind.rpartition(":")[2]
        if options.get("type") == "transport" and port.isdigit() and protocol:
            kind = "udp" if protocol == "udp" else "tcp"
            found.setdefault(f"{kind}/{port}", str(section).strip("[]"))
    return found


def _new_transports(before: Any, after: Any) -> Iterator[str]:
    """A transport of sipctl's on a port no transport had, while no firewall is managed."""
    old, new = _transports(before), _transports(after)
    for port, section in sorted(new.items()):
        if port not in old:
            yield (
                f"Asterisk now listens on {port} (transport {section}, asterisk."
                "manage_transports) and this plan manages no firewall: the port is open to "
                "every address unless a firewall of yours filters it; open it there by hand "
                "(or add a firewall section)"
            )


def _openings(value: Mapping[str, Any]) -> dict[tuple[str, str], set[int]]:
    """(family, protocol) -> every port an ``accept PROTO PORTS`` record opens."""
    found: dict[tuple[str, str], set[int]] = {}
    for record in value.get("records", []):
        words = str(record).split()
        family = words.pop(0) if words and words[0] in ("ipv4", "ipv6") else ""
        if len(words) == 3 and words[0] == "accept" and words[1] in ("tcp", "udp"):
            first, _, last = words[2].partition("-")
            if first.isdigit() and (not last or last.isdigit()):
                ports = range(int(first), int(last or first) + 1)
                found.setdefault((family, words[1]), set()).update(ports)
    return found


def _new_openings(before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[str]:
    old, new = _openings(before), _openings(after)
    for (family, protocol), ports in sorted(new.items()):
        opened = sorted(ports - old.get((family, protocol), set()))
        if opened:
            where = f" ({family})" if family else ""
            yield (
                f"the firewall newly accepts {protocol}/{_port_runs(opened)}{where} from every "
                "address: make sure a program that should face the internet listens there"
            )
    if before.get("policy") == "drop" and after.get("policy") not in (None, "drop", "reject"):
        yield f"the firewall's policy becomes {after.get('policy')}"


def _port_runs(ports: list[int]) -> str:
    runs: list[str] = []
    start = prev = ports[0]
    for port in [*ports[1:], None]:
        if port is not None and port == prev + 1:
            prev = port
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if port is not None:
            start = prev = port
    return ",".join(runs)


def _milder_jails(before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[str]:
    for section, lines in before.items():
        jail = str(section).strip("[]")
        old = _settings(lines)
        if old.get("enabled") != "true":
            continue
        if section not in after:
            yield f"fail2ban jail {jail} is removed: nothing bans its attackers any more"
            continue
        new = _settings(after[section])
        if new.get("enabled") != "true":
            yield f"fail2ban jail {jail} is disabled: nothing bans its attackers any more"
            continue
        yield from _milder_limits(jail, old, new)
        gained = set(new.get("ignoreip", "").split()) - set(old.get("ignoreip", "").split())
        if gained:
            yield f"fail2ban jail {jail} never bans {', '.join(sorted(gained))} any more"
        if old.get("logpath") != new.get("logpath"):
            yield (
                f"fail2ban jail {jail} watches {new.get('logpath')} instead of "
                f"{old.get('logpath')}: it bans only if Asterisk logs there"
            )


def _milder_limits(jail: str, old: Mapping[str, str], new: Mapping[str, str]) -> Iterator[str]:
    for key, (milder, words) in _JAIL_LIMITS.items():
        was, now = _number(old.get(key)), _number(new.get(key))
        if was is None or now is None:
            continue
        if key == "bantime":  # -1: banned for ever, the longest ban of all
            was, now = (float("inf") if x < 0 else x for x in (was, now))
        if (now - was) * milder > 0:
            yield f"fail2ban jail {jail}: {words} ({key} {old.get(key)} → {new.get(key)})"


def _settings(lines: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines if isinstance(lines, list) else []:
        key, sep, value = str(line).partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _natural(text: str) -> tuple[int, str]:
    return (len(text), text) if text.isdigit() else (1 << 30, text)
