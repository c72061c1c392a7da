"""Who a guest reaches: the live guest context judged against what the spec renders. Pure.

The rule is one: a guest may reach a declared name's extension (exactly the steps sipctl
renders for it), sipctl's reject path and Asterisk's own ending extensions, and nothing else.
Everything in the live context that is not in the rendered one is a finding, whoever put it
there (a file, ``[ctx](+)`` in the admin's extensions.conf, ``dialplan add`` at runtime):

- an extension the spec does not render (a pattern such as ``_X.``, an internal number);
- a step of a rendered extension that differs (a ``Dial`` to a trunk, an added priority);
- an ``include`` (its extensions become the guest's, recursively) and an ``Alt. Switch``
  (whatever the switch answers becomes the guest's);
- a jump into another context (``Goto``, ``Gosub``, ``Macro``): that context is followed.

Severity follows the worst step reached: placing a call, running programs and DISA are toll
fraud or worse (critical); voicemail and jumps into other contexts are high; anything else
that bypasses the reject path is medium (no "Wrong call" line, so fail2ban never sees it).

Apart from the severity, a verdict says whether the step can reach the outside (``outside``):
a ``Dial`` of anything but plain phones (``PJSIP/105``: a trunk's ``PJSIP/${EXTEN}@trunk``,
``SIP/provider/0049...``, DAHDI, a name only known when the call runs, a PJSIP endpoint the
running PBX has as a trunk: ``trunks``), Queue, FollowMe and the like, DISA, a program.
Where sipctl cannot tell (a Queue's members, a program, a name only the running call knows)
the step counts as calling out, and the verdict says why it could not tell (``uncertain``).
``plan`` refuses a guest jump into the admin's dialplan that reaches such a step
(``outside_steps``, through ``providers/asterisk/guest_jumps.py``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sipctl.reconciler.asterisk_conf import parse_dialplan
from sipctl.reconciler.audit.dialplan import Context, Extension, Step
from sipctl.reconciler.audit.report import Finding, Severity

MAX_DEPTH = 4  # contexts followed from the guest context (includes, jumps)

# Applications by what a guest gets from them (names compared in lower case).
_DIALS = {"dial", "originate", "queue", "page", "followme", "retrydial", "chanspy", "extenspy"}
_PROGRAMS = {"system", "trysystem", "agi", "eagi", "deadagi", "fastagi", "exec", "tryexec"}
_DISA = {"disa"}
_VOICEMAIL = {"voicemail", "voicemailmain", "vmauthenticate", "minivm", "directory"}
_JUMPS = {"goto", "gotoif", "gotoiftime", "gosub", "gosubif", "macro", "macroif", "execif"}
# Channel technologies of phones (a Dial of ``TECH/name`` with a plain endpoint name rings it);
# Local channels run the dialplan (followed like a Goto); anything else reaches the outside.
_PHONE_TECHS = {"pjsip", "sip", "iax2"}
_PLAIN_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
_VARIABLE_RE = re.compile(r"\$\{[^{}]*\}|\$\[[^\[\]]*\]")  # ${EXTEN}, $[...] (innermost)
_LOCAL_RE = re.compile(r"^Local/(?P<exten>[^@/]+)@(?P<context>[^/,&]+)", re.IGNORECASE)
_FUNCTIONS_RE = re.compile(r"\$\{(SHELL|CURL|ODBC_[A-Z_]*|FILE)\(", re.IGNORECASE)
_RANK: dict[Severity, int] = {"critical": 0, "high": 1, "medium": 2, "low": 3}
# Why sipctl cannot tell what these steps reach: they count as calling out (strict).
_UNKNOWN_REACH = {
    "queue": "who a Queue rings is its members (queues.conf, or added while the PBX runs), "
    "which sipctl does not read: a member may be a trunk",
    "followme": "who FollowMe rings is in followme.conf, which sipctl does not read: an "
    "outside number among them calls out",
}
_PROGRAM_REACH = "a program may do anything, place a call too; sipctl cannot read what it does"


@dataclass(frozen=True)
class Verdict:
    """Why one step matters; ``outside``: it can place a call out (or do anything at all)."""

    severity: Severity
    what: str
    outside: bool = False
    # why sipctl cannot tell whether the step calls out (it counts as if it did); "" when
    # it surely can (a trunk, an outside number) or surely cannot
    uncertain: str = ""


def step_verdict(step: Step, exten: str | None = None, trunks: Collection[str] = ()) -> Verdict:
    """What reaching ``step`` gives a stranger; ``exten``: the extension it runs as, when
    known (a Goto to 105 runs ``Dial(PJSIP/${EXTEN})`` as ``Dial(PJSIP/105)``); ``trunks``:
    the PJSIP endpoints the running PBX has as trunks (a ``Dial(PJSIP/name)`` of one calls
    out, though its text looks like a phone's)."""
    app = step.app.lower()
    if app in _DIALS:
        # Dial's option T: the caller transfers by keypad, to any extension (a trunk's too)
        options = [*_top_level(step.args, ","), "", ""][2]
        if app == "dial" and "T" in options:
            what = f"places a call: {step.text} (the caller may transfer it: option T)"
            return Verdict("critical", what, outside=True)
        if app != "dial":
            unknown = _UNKNOWN_REACH.get(app, "")
            return Verdict("critical", f"places a call: {step.text}", True, unknown)
        trunk, unknown = _outside_channel(step.args, exten, trunks)
        if trunk:
            return Verdict("critical", f"places a call: {step.text} ({trunk})", outside=True)
        if unknown:
            return Verdict("critical", f"places a call: {step.text}", True, unknown)
        return Verdict("critical", f"places a call: {step.text} (rings a phone)")
    if app in _PROGRAMS or _FUNCTIONS_RE.search(step.args):
        what = f"runs a program on the PBX: {step.text}"
        return Verdict("critical", what, outside=True, uncertain=_PROGRAM_REACH)
    if app in _DISA:
        return Verdict("critical", f"gives a dial tone to the outside: {step.text}", outside=True)
    if app in _VOICEMAIL:
        return Verdict("high", f"opens voicemail: {step.text}")
    if app in _JUMPS:
        return Verdict("high", f"jumps elsewhere in the dialplan: {step.text}")
    return Verdict("medium", f"bypasses the reject path: {step.text}")


def _dial_channels(args: str, exten: str | None) -> list[str]:
    """The channels of a Dial's first argument (``PJSIP/105&Local/106@default``)."""
    first = _top_level(args, ",", 1)[0].strip()
    if exten is not None:
        first = first.replace("${EXTEN}", exten)
    return [c.strip() for c in _top_level(first, "&") if c.strip()]


def _outside_channel(args: str, exten: str | None, trunks: Collection[str]) -> tuple[str, str]:
    """(why a channel surely calls out, why one may) of a Dial; ("", "") when every channel
    is a phone (``PJSIP/105``, not one of the running PBX's ``trunks``) or runs the
    dialplan (``Local/``, followed by ``jump_contexts``). A number through a peer, another
    technology or a trunk surely calls out; a name only a variable gives may."""
    unknown = ""
    for channel in _dial_channels(args, exten):
        if _LOCAL_RE.match(channel) is not None and "$" not in channel:
            continue
        tech, _, name = _filled(channel).partition("/")
        if tech.lower() not in _PHONE_TECHS or not _PLAIN_NAME_RE.match(name):
            return "toll fraud", ""  # a number through a peer or a trunk, whatever fills it
        if "$" in channel:
            unknown = unknown or (
                f"the channel {channel} is only known when the call runs: it may be a trunk"
            )
            continue
        if tech.lower() == "pjsip" and name in trunks:
            return f"{name} is a trunk of the running PBX: toll fraud", ""
    return "", unknown


def _filled(text: str) -> str:
    """``text`` with each variable and expression as one plain character (nested ones
    too): what is left is what every value of them has in common."""
    while True:
        filled = _VARIABLE_RE.sub("X", text)
        if filled == text:
            return text
        text = filled


def jump_contexts(step: Step, own: str) -> list[str]:
    """The contexts ``step`` can jump into (other than ``own``), as far as its text says
    (a Dial's ``Local/EXT@CONTEXT`` channels run that context too)."""
    found = [context for context, _ in jump_targets(step, own) if context != own]
    return list(dict.fromkeys(found))


def jump_targets(step: Step, own: str) -> list[tuple[str, str | None]]:
    """(context, extension) ``step`` can jump to, ``own`` context included; the extension
    is None when only the running call knows it (``${EXTEN}``, a variable)."""
    app = step.app.lower()
    if app == "dial":
        return [
            (m["context"], _literal(m["exten"]))
            for c in _dial_channels(step.args, None)
            if (m := _LOCAL_RE.match(c)) is not None
        ]
    if app not in _JUMPS:
        return []
    args = step.args
    if app in {"gotoif", "gosubif", "gotoiftime", "execif", "macroif"}:
        # cond?target1:target2; each target parsed like Goto's argument
        args = _top_level(args, "?", 1)[-1] if "?" in args else ""
        parts = [p for p in _top_level(args, ":") if p]
    else:
        parts = [args]
    found: list[tuple[str, str | None]] = []
    for part in parts:
        if app.startswith("macro"):
            name = _top_level(part, ",", 1)[0].strip()
            if name:
                found.append((f"macro-{name}", "s"))
            continue
        fields = [f.strip() for f in _top_level(part, ",")]
        if len(fields) >= 3 and fields[0]:
            found.append((fields[0], _literal(fields[1])))
        elif len(fields) == 2 and fields[0]:  # Goto(extension,priority): the same context
            found.append((own, _literal(fields[0])))
    return found


def _literal(exten: str) -> str | None:
    return None if "$" in exten or not exten else exten


def _top_level(text: str, separator: str, limit: int = -1) -> list[str]:
    """``text`` split at each ``separator`` outside ``${...}``, ``$[...]`` and brackets: a
    comma inside a function's arguments (``Goto(${IF(...,...)},1)``) is the function's, and
    what a function computes is no context the text names."""
    parts: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char == separator and depth == 0 and (limit < 0 or len(parts) < limit):
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def referenced_contexts(context: Context) -> list[str]:
    """Contexts a guest in ``context`` can get into: includes and jumps, in order."""
    names = [inc.target for inc in context.includes]
    for exten in context.extensions.values():
        for step in exten.steps:
            names += jump_contexts(step, context.name)
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Reached:
    """A step that can reach the outside, and the jumps and includes that led to it."""

    context: str
    exten: str
    step: Step
    verdict: Verdict
    via: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f"{self.exten}@{self.context}" if self.exten else f"context {self.context}"
        path = "".join(f" via {hop}" for hop in self.via)
        return f"{where} {self.verdict.what} [{_source(self.step.source)}]{path}"


# After these a call does not go on to the extension's next priority.
_ENDS = {"hangup", "goto", "macroexit", "return"}
MAX_PRIORITY = 1000


def running_steps(
    contexts: Mapping[str, Context], context: str, exten: str
) -> list[tuple[str, str, Step]]:
    """(context, extension, step) Asterisk runs for a call to ``exten@context``, priority
    by priority from 1 until one ends the call (Hangup, Goto) or none is next: each
    priority from the context's exact extension, else its patterns that match (all of
    them: which one Asterisk prefers is not judged here), else its includes, in order."""
    found: list[tuple[str, str, Step]] = []
    for priority in range(1, MAX_PRIORITY):
        steps = _priority_steps(contexts, context, exten, priority, frozenset())
        found += steps
        if not steps or all(step.app.lower() in _ENDS for _, _, step in steps):
            break
    return found


def _priority_steps(
    contexts: Mapping[str, Context], name: str, exten: str, priority: int, seen: frozenset[str]
) -> list[tuple[str, str, Step]]:
    context = contexts.get(name)
    if context is None or name in seen or len(seen) > MAX_DEPTH:
        return []
    matching = [e for e in context.extensions.values() if e.matches(exten)]
    for group in ([e for e in matching if not e.is_pattern], [e for e in matching if e.is_pattern]):
        steps = [(name, e.name, s) for e in group for s in e.steps if s.priority == priority]
        if steps:
            return steps
    for include in context.includes:
        steps = _priority_steps(contexts, include.target, exten, priority, seen | {name})
        if steps:
            return steps
    return []


def outside_steps(
    context: str, exten: str, contexts: Mapping[str, Context], trunks: Collection[str] = ()
) -> list[Reached]:
    """What a call sent to ``exten@context`` can reach that places a call out (``outside``).

    ``contexts``: the whole running dialplan (``dialplan show``); ``trunks``: the running
    PBX's trunk endpoints (``step_verdict``). The steps the call runs (``running_steps``)
    are judged with ``exten`` known; their jumps (Goto, Gosub, Macro, Local channels) are
    followed up to ``MAX_DEPTH``: the extension the jump names (its running steps), else the
    whole context and its includes (whatever a variable may pick: what is found there is
    uncertain, and says which jump made it so).
    """
    found: list[Reached] = []
    seen: set[tuple[str, str | None]] = {(context, exten)}

    def judge_steps(run: Iterable[tuple[str, str, Step]], known: str | None,
                    via: tuple[str, ...], depth: int, picked: str = "") -> None:  # fmt: skip
        for where, name, step in run:
            verdict = step_verdict(step, known, trunks)
            if verdict.outside:
                if picked and verdict.uncertain:  # and which jump made it so
                    why = f"{picked}; {verdict.uncertain}"
                    verdict = Verdict(verdict.severity, verdict.what, True, why)
                found.append(Reached(where, name, step, verdict, via))
            for target, target_exten in jump_targets(step, where):
                hop = f"{step.text} [{_source(step.source)}] ({name}@{where})"
                jump(target, target_exten, (*via, hop), depth + 1, step.text)

    def jump(target: str, target_exten: str | None, via: tuple[str, ...], depth: int,
             by: str = "") -> None:  # fmt: skip
        if (target, target_exten) in seen or depth > MAX_DEPTH:
            return
        seen.add((target, target_exten))
        if "$" in target:
            unknown = Step(0, "Goto", f"{target},...", "")
            what = f"jumps into a context only the running call names ({target})"
            why = f"{by or 'a jump'} names its context only when the call runs"
            found.append(Reached(target, "", unknown, Verdict("high", what, True, why), via))
            return
        known = contexts.get(target)
        if known is None:
            return  # no such context: the jump fails, the call ends
        if target_exten is not None:
            judge_steps(running_steps(contexts, target, target_exten), target_exten, via, depth)
            return
        picked = (
            f"{by} picks its extension in {target} only when the call runs, so every "
            f"extension there counts"
            if by
            else ""
        )
        whole = [(target, e.name, s) for e in known.extensions.values() for s in e.steps]
        judge_steps(whole, None, via, depth, picked)
        for include in known.includes:
            hop = f"include => {include.context} [{_source(include.source)}]"
            jump(include.target, None, (*via, hop), depth + 1, by)
        for switch in known.switches:
            step = Step(0, "switch", switch.spec, switch.source)
            what = f"hands unknown names to the switch {switch.spec!r}"
            why = "what a switch answers is decided by another server, which sipctl cannot read"
            found.append(Reached(target, "", step, Verdict("critical", what, True, why), via))

    judge_steps(running_steps(contexts, context, exten), exten, (), 0)
    return found


@dataclass(frozen=True)
class Rendered:
    """One context as sipctl renders it: extension -> [(application, arguments)] in order,
    and the contexts its steps jump into (rooms, ``route: goto``)."""

    wanted: dict[str, list[tuple[str, str]]]
    jumps: set[str]


def rendered_contexts(dialplan_text: str) -> dict[str, Rendered]:
    """Every context of a rendered dialplan, in one pass (a host's thousand customers'
    contexts are judged from one parse)."""
    found: dict[str, Rendered] = {}
    for step in parse_dialplan(dialplan_text):
        rendered = found.setdefault(step.context, Rendered({}, set()))
        if step.priority != "hint":
            rendered.wanted.setdefault(step.exten, []).append((step.app.lower(), step.args))
        rendered.jumps.update(jump_contexts(Step(0, step.app, step.args, ""), step.context))
    return found


def desired_steps(dialplan_text: str, context: str) -> dict[str, list[tuple[str, str]]]:
    """The rendered guest context: extension -> [(application, arguments)] in order."""
    rendered = rendered_contexts(dialplan_text).get(context)
    return rendered.wanted if rendered is not None else {}


def rendered_jumps(dialplan_text: str, context: str) -> set[str]:
    """Contexts the rendered guest context itself jumps into (rooms, ``route: goto``)."""
    rendered = rendered_contexts(dialplan_text).get(context)
    return rendered.jumps if rendered is not None else set()


def judge(
    guest: str,
    contexts: Mapping[str, Context],
    wanted: Mapping[str, Sequence[tuple[str, str]]],
    allowed_jumps: Iterable[str] = (),
) -> list[Finding]:
    """Every way a guest gets from ``guest`` to anything ``wanted`` does not hold.

    ``contexts`` holds the guest context and every context fetched after it (includes and
    jumps, see ``referenced_contexts``); ``allowed_jumps`` are contexts the rendered steps
    themselves jump into (``route: goto`` sends a declared name to the local context).
    """
    context = contexts.get(guest)
    if context is None:
        return []
    allowed = set(allowed_jumps)
    findings: list[Finding] = []
    for exten in context.extensions.values():
        expected = wanted.get(exten.name)
        if expected is None:
            findings.append(_unwanted_extension(guest, exten, contexts, allowed))
            continue
        extra = _differing_steps(exten, expected)
        if extra:
            findings.append(_changed_extension(guest, exten, extra, contexts, allowed))
    for include in context.includes:
        findings.append(_include_finding(guest, include.context, include.source, contexts))
    for switch in context.switches:
        findings.append(
            Finding(
                "dialplan-switch",
                "critical",
                "dialplan",
                f"the guest context hands unknown names to the switch {switch.spec!r}: "
                "whatever it answers, a stranger reaches",
                f"context {guest}, switch => {switch.spec} [{_source(switch.source)}]",
                _fix_removal(f"switch => {switch.spec}", guest, switch.source),
            )
        )
    return findings


def _differing_steps(exten: Extension, expected: Sequence[tuple[str, str]]) -> list[Step]:
    live = sorted(exten.steps, key=lambda s: s.priority)
    differing: list[Step] = []
    for index, step in enumerate(live):
        want = expected[index] if index < len(expected) else None
        if want is None or (step.app.lower(), step.args) != want:
            differing.append(step)
    return differing


def _worst(steps: Iterable[Step]) -> Verdict:
    verdicts = [step_verdict(s) for s in steps] or [Verdict("medium", "does nothing")]
    return min(verdicts, key=lambda v: _RANK[v.severity])


def _reach_details(
    steps: Iterable[Step], own: str, contexts: Mapping[str, Context], allowed: set[str]
) -> tuple[list[str], Severity | None]:
    """What the jumps among ``steps`` reach, and the worst severity found there."""
    details: list[str] = []
    worst: Severity | None = None
    for step in steps:
        for target in jump_contexts(step, own):
            if target in allowed:
                continue
            lines, severity = reachable_from(target, contexts)
            details.append(f"{step.text} [{_source(step.source)}] leads into context {target}:")
            details += [f"  {line}" for line in lines]
            if severity is not None and (worst is None or _RANK[severity] < _RANK[worst]):
                worst = severity
    return details, worst


def reachable_from(
    name: str, contexts: Mapping[str, Context], depth: int = 0, seen: frozenset[str] = frozenset()
) -> tuple[list[str], Severity | None]:
    """One line per extension a guest reaches in context ``name`` (and what it includes)."""
    if name in seen or depth > MAX_DEPTH:
        return [], None
    context = contexts.get(name)
    if context is None:
        return [f"(context {name} was not read: it does not exist or is too deep)"], None
    lines: list[str] = []
    worst: Severity | None = None
    for exten in context.extensions.values():
        verdict = _worst(exten.steps)
        lines.append(f"{exten.name} [{_source(exten.source)}]: {verdict.what}")
        if worst is None or _RANK[verdict.severity] < _RANK[worst]:
            worst = verdict.severity
    for include in context.includes:
        more, severity = reachable_from(include.target, contexts, depth + 1, seen | {name})
        lines.append(f"include => {include.context} [{_source(include.source)}]")
        lines += [f"  {line}" for line in more]
        if severity is not None and (worst is None or _RANK[severity] < _RANK[worst]):
            worst = severity
    for switch in context.switches:
        lines.append(f"switch => {switch.spec} [{_source(switch.source)}]")
        worst = "critical"
    return lines, worst


def _unwanted_extension(
    guest: str, exten: Extension, contexts: Mapping[str, Context], allowed: set[str]
) -> Finding:
    verdict = _worst(exten.steps)
    details, deeper = _reach_details(exten.steps, guest, contexts, allowed)
    severity = _max(verdict.severity, deeper)
    kind = "pattern" if exten.is_pattern else "extension"
    who = (
        f"every name matching the pattern {exten.name}"
        if exten.is_pattern
        else f"the name {exten.name!r}, which the spec does not declare,"
    )
    steps = [f"{s.priority}. {s.text} [{_source(s.source)}]" for s in exten.steps]
    return Finding(
        f"dialplan-{kind}",
        severity,
        "dialplan",
        f"a guest dialling {who} {verdict.what}",
        f"context {guest}, extension {exten.name} [{_source(exten.source)}]",
        _fix_removal(f"extension {exten.name}", guest, exten.source),
        details=(*steps, *details),
    )


def _changed_extension(
    guest: str,
    exten: Extension,
    extra: list[Step],
    contexts: Mapping[str, Context],
    allowed: set[str],
) -> Finding:
    verdict = _worst(extra)
    details, deeper = _reach_details(extra, guest, contexts, allowed)
    first = extra[0]
    return Finding(
        "dialplan-step",
        _max(verdict.severity, deeper),
        "dialplan",
        f"{exten.name!r} is not what sipctl renders: it {verdict.what}",
        f"context {guest}, extension {exten.name}, priority {first.priority} "
        f"[{_source(first.source)}]",
        _fix_removal(f"priority {first.priority} of {exten.name}", guest, first.source),
        details=tuple([f"{s.priority}. {s.text} [{_source(s.source)}]" for s in extra] + details),
    )


def _include_finding(
    guest: str, included: str, source: str, contexts: Mapping[str, Context]
) -> Finding:
    target = re.split(r"[|,]", included, maxsplit=1)[0]
    lines, worst = reachable_from(target, contexts, 1, frozenset({guest}))
    return Finding(
        "dialplan-include",
        _max("high", worst),
        "dialplan",
        f"the guest context includes {target!r}: every extension there is a guest's too",
        f"context {guest}, include => {included} [{_source(source)}]",
        _fix_removal(f"include => {included}", guest, source),
        details=tuple(lines),
    )


def _max(severity: Severity, other: Severity | None) -> Severity:
    if other is not None and _RANK[other] < _RANK[severity]:
        return other
    return severity


def _source(source: str) -> str:
    return source or "unknown source"


def _fix_removal(what: str, context: str, source: str) -> str:
    """How to take ``what`` out of ``context``, by where it came from."""
    if source.startswith("extensions_sipctl.conf"):
        return (
            f"{source} is sipctl's own file and was edited by hand: 'sipctl apply' puts it "
            "back as the spec renders it"
        )
    if ":" in source:
        return (
            f"delete that line ({source}) from the admin's config, or move it to a context "
            f"guests cannot reach, then 'dialplan reload'; context {context} must hold only "
            "what sipctl renders from the spec"
        )
    return (
        f"{what} was added at runtime (dialplan add, AMI or AGI), not from a file: remove it "
        f"('dialplan remove ...' from context {context}) and find what adds it; a "
        "'dialplan reload' also drops it"
    )
