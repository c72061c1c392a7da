"""``sipctl audit`` of a hoster's files: one PBX host serving many customer domains.

A customer's file is attacked at its own domain, through its host's PBX (``attack_view``);
a host's file is its whole dialplan and its customers in pairs. On top of one company's
audit (``run.py``):

- the dialplan: the host's entry context, the domains context and each customer's guest
  context, each judged against what sipctl renders for it (``reachability.judge``), so a
  hole in one customer's context is found as one in a company's guest context is;
- no customer's guest reaches another customer's names, rooms or phones: from a customer's
  line in the domains context and from its guest context, following includes, jumps and
  Local channels through the live dialplan, neither another customer's guest context, nor
  its rooms context, nor its ``local_context`` may be reached (``cross_customer_findings``);
- as a caller would try it: a name only customer B declares, called at customer A's
  domain, with the To header at A's domain and at B's (the request URI is what routes; a
  dialplan that read the To header would put the call through to B), and the same the other
  way round. Each call must end in A's reject path. A call is placed only when the live PBX
  says that no phone the name could ring has a contact: B's ``local_context`` extension ->
  the PJSIP endpoints its Dial names (through Local channels) -> their AORs -> contacts. A
  name whose phones cannot be told is not called: the dialplan check covers it.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.errors import SipctlError, SpecError
from sipctl.reconciler.audit import probes, reachability
from sipctl.reconciler.audit.report import AuditReport, Finding
from sipctl.reconciler.render.asterisk_hosting import (
    DOMAINS_CONTEXT,
    customer_context,
    customer_section,
)
from sipctl.reconciler.render.asterisk_rooms import room_place

if TYPE_CHECKING:
    from sipctl.providers.sip_attack import Exchange, Wire
    from sipctl.providers.transport.pool import HostTransport
    from sipctl.reconciler.audit.dialplan import Context
    from sipctl.reconciler.audit.run import AuditLimits
    from sipctl.reconciler.verify.report import Endpoint
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Spec

CROSS_PAIRS = 4  # ordered pairs of customers called across, at most
CROSS_NAMES = 2  # names of the other customer tried per pair
# Steps of a phones' context that ring nothing themselves.
_QUIET_APPS = frozenset(
    {"hangup", "noop", "set", "answer", "wait", "playback", "log", "verbose", "ringing",
     "progress", "busy", "congestion", "return"}
)  # fmt: skip
_LOCAL_RE = re.compile(r"\bLocal/[^@&,)\s]+@([A-Za-z0-9_.\-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Hosted:
    """What an audit of a hoster's file is about."""

    host: Spec  # the host with all its customers
    audited: tuple[Spec, ...]  # the customers this audit reports on: one, or all of them
    host_loaded: LoadedSpec  # for what only the host says (the probe scope)
    attacked: LoadedSpec  # what the SIP probes attack: a customer's domain on the host's PBX


def hosted_of(loaded: LoadedSpec) -> Hosted | None:
    """The hosting view of ``loaded``; None for one company's spec (host and customer)."""
    spec = loaded.spec
    if spec.hosting is not None:
        host = spec
        audited = spec.customers
    elif spec.host is not None:
        from sipctl.schemas.hosting import serving_host

        found = serving_host(spec, Path(loaded.source))
        if found is None:
            raise SpecError(f"{loaded.source}: no host file beside it serves this customer")
        host = found
        audited = tuple(c for c in host.customers if c.domain == spec.domain)
    else:
        return None
    host_loaded = replace(loaded, spec=host)
    attacked = replace(loaded, spec=attack_view(host, audited[0])) if audited else host_loaded
    return Hosted(host, audited, host_loaded, attacked)


def attack_view(host: Spec, customer: Spec) -> Spec:
    """``customer`` as a caller meets it: its domain and names, its host's PBX, firewall and
    jail (the guest context is the customer's own, reached through the host's entry)."""
    assert host.asterisk is not None
    return customer.model_copy(
        update={
            "asterisk": customer_section(host.asterisk, customer),
            "firewall": host.firewall,
            "fail2ban": host.fail2ban,
        }
    )


# --- the dialplan -----------------------------------------------------------------------------


def audit_dialplan(
    hosted: Hosted, transport: HostTransport, program: Sequence[str], report: AuditReport
) -> Mapping[str, Context] | None:
    """The host's sipctl contexts judged against their rendering, and the customers'
    contexts against each other. Returns the live contexts read (None: none could be)."""
    from sipctl.providers.asterisk.live_dialplan import read_all
    from sipctl.reconciler.render.asterisk import dialplan_text

    host = hosted.host
    assert host.asterisk is not None
    entry = host.asterisk.guest_context
    try:
        contexts = read_all(transport, program)
    except SipctlError as exc:
        report.errors.append(exc.message)
        return None
    rendered = reachability.rendered_contexts(dialplan_text(host))
    judged = [entry, DOMAINS_CONTEXT, *(customer_context(c.domain) for c in hosted.audited)]
    judged += [room_place(c.domain).context for c in hosted.audited if c.rooms]
    for name in judged:
        if name not in contexts:
            report.errors.append(
                f"the context {name} is not in the running dialplan: apply the host's file "
                "(sipctl apply) before auditing it"
            )
            continue
        own = rendered.get(name, reachability.Rendered({}, set()))
        report.add(reachability.judge(name, contexts, own.wanted, own.jumps))
    report.add(cross_customer_findings(host, hosted.audited, contexts))
    room_contexts = len(judged) - 2 - len(hosted.audited)
    report.checks.append(
        f"dialplan: the entry context {entry}, {DOMAINS_CONTEXT} and "
        f"{len(hosted.audited)} customer guest context(s) judged"
        + (f" (and {room_contexts} rooms context(s))" if room_contexts else "")
        + f" ({len(contexts)} context(s) read); whether a guest of any of "
        f"{len(host.customers)} customer(s) reaches another's names, rooms or phones"
    )
    referenced = {
        target
        for context in contexts.values()
        if context.name in judged
        for target in reachability.referenced_contexts(context)
    }
    missing = sorted(referenced - set(contexts))
    if missing:
        report.notes.append(f"referenced but not defined: {', '.join(missing)}")
    return contexts


def cross_customer_findings(
    host: Spec, audited: Iterable[Spec], contexts: Mapping[str, Context]
) -> list[Finding]:
    """A finding for every customer whose guests reach another customer's guest context or
    phones' context (``local_context``) in the live dialplan. Only pairs with an audited
    customer on either side are reported."""
    reported = {c.domain for c in audited}
    findings: list[Finding] = []
    for source in host.customers:
        reached = _reached(_entries(source, contexts), contexts)
        for other in host.customers:
            if other is source or not {source.domain, other.domain} & reported:
                continue
            forbidden = {customer_context(other.domain): "names (its guest context)"}
            if other.rooms:
                forbidden[room_place(other.domain).context] = "rooms"
            if other.local_context and other.local_context != source.local_context:
                forbidden[other.local_context] = "phones (its local_context)"
            for context, what in forbidden.items():
                path = reached.get(context)
                if path is None:
                    continue
                findings.append(
                    Finding(
                        "cross-customer",
                        "high",
                        "dialplan",
                        f"a guest calling {source.domain} reaches {other.domain}'s {what}: "
                        f"context {context}",
                        " -> ".join(path),
                        f"a customer's guests may reach only its own names and its own "
                        f"local_context: remove the include, jump or Local channel on this "
                        f"path (the dialplan findings name its line), or keep {context} out "
                        f"of the contexts {source.domain}'s calls pass through",
                        details=tuple(f"context {name}" for name in path),
                    )
                )
    return findings


def _entries(customer: Spec, contexts: Mapping[str, Context]) -> list[str]:
    """Where a call to ``customer``'s domain goes: its guest context, and whatever its lines
    in the domains context jump to."""
    found = [customer_context(customer.domain)]
    domains = contexts.get(DOMAINS_CONTEXT)
    if domains is not None:
        for spelling in (customer.domain.lower(), customer.domain.lower() + "."):
            extension = domains.extensions.get(spelling)
            for step in extension.steps if extension is not None else ():
                found += reachability.jump_contexts(step, DOMAINS_CONTEXT)
    return list(dict.fromkeys(found))


def _reached(starts: Sequence[str], contexts: Mapping[str, Context]) -> dict[str, list[str]]:
    """Every context read that a guest gets into from ``starts``, with the path there."""
    paths: dict[str, list[str]] = {name: [name] for name in starts}
    queue = list(starts)
    while queue:
        name = queue.pop(0)
        context = contexts.get(name)
        if context is None:
            continue
        following = reachability.referenced_contexts(context)
        for extension in context.extensions.values():
            for step in extension.steps:
                following += _LOCAL_RE.findall(step.args)
        for target in following:
            if target not in paths:
                paths[target] = [*paths[name], target]
                queue.append(target)
    return paths


# --- calls across customers -------------------------------------------------------------------


def cross_pairs(hosted: Hosted) -> list[tuple[Spec, Spec]]:
    """(called at, names of) pairs of customers, both ways, at most CROSS_PAIRS."""
    customers = hosted.host.customers
    pairs: list[tuple[Spec, Spec]] = []
    if len(hosted.audited) == 1:
        [one] = hosted.audited
        for other in customers:
            if other.domain != one.domain:
                pairs += [(one, other), (other, one)]
    else:
        for first, second in itertools.pairwise(customers):
            pairs += [(first, second), (second, first)]
    return pairs[:CROSS_PAIRS]


def foreign_names(at: Spec, of: Spec) -> list[str]:
    """``of``'s users that ``at`` does not declare (callers write names in any case, and
    Asterisk ignores '-'): at ``at``'s domain they must be wrong calls."""
    taken = {n.replace("-", "").lower() for n in (*at.users, *at.rooms)}
    return [n for n in sorted(of.users) if n.replace("-", "").lower() not in taken]


def phone_endpoints(
    extension: str, context_name: str, contexts: Mapping[str, Context], depth: int = 0
) -> set[str] | None:
    """The PJSIP endpoints ``extension`` rings in ``context_name`` (the live dialplan), or
    None when that cannot be told (a pattern or include could match, a variable, another
    technology, a jump)."""
    context = contexts.get(context_name)
    if context is None or depth > 2:
        return None
    found = context.extensions.get(extension)
    if found is None:
        fuzzy = context.includes or context.switches
        return None if fuzzy or any(e.is_pattern for e in context.extensions.values()) else set()
    endpoints: set[str] = set()
    for step in found.steps:
        app = step.app.lower()
        if app in _QUIET_APPS:
            continue
        if app != "dial" or "$" in step.args:
            return None
        for target in step.args.split(",", 1)[0].split("&"):
            tech, _, rest = target.strip().partition("/")
            if tech.upper() == "PJSIP":
                endpoints.add(rest.split("/", 1)[0])
            elif tech.lower() == "local":
                name, _, where = rest.partition("@")
                more = phone_endpoints(name, where.split("/", 1)[0], contexts, depth + 1)
                if more is None:
                    return None
                endpoints |= more
            else:
                return None
    return endpoints


def cross_customer_calls(
    hosted: Hosted,
    contexts: Mapping[str, Context] | None,
    target: Endpoint,
    transport: HostTransport | None,
    program: Sequence[str],
    limits: AuditLimits,
    wait: Callable[[], None],
    deadline: float,
    report: AuditReport,
    log: Callable[[str], None],
) -> None:
    """Names of one customer called at another's domain, To at either: each a wrong call.
    ``wait`` paces the calls (the audit's rate limit)."""
    from sipctl.providers.asterisk.phones import read_phones
    from sipctl.providers.sip_attack import SipAgent

    def call(name: str, at: str, to: str) -> Exchange:
        wait()
        wire: Wire = "udp" if target.transport == "udp" else "tcp"
        with SipAgent(target.address, target.port, wire, at) as agent:
            exchange = agent.invite(
                name, limits.request_timeout, limits.hold, to_uri=f"sip:{name}@{to}"
            )
        report.count("invite").requests += 1
        report.count("invite").packets += exchange.packets
        return exchange

    pairs = cross_pairs(hosted)
    host = hosted.host
    if not pairs or host.asterisk is None:
        return
    if transport is None or contexts is None or host.asterisk.channel != "pjsip":
        report.notes.append(
            "calls across customers: not placed (the PBX's phones cannot be read through the "
            "asterisk target, so a call might ring one); the dialplan check covers them"
        )
        return
    planned: list[tuple[Spec, Spec, str, set[str]]] = []
    unknown: list[str] = []
    for at, of in pairs:
        for name in foreign_names(at, of):
            ring = [phone_endpoints(e, of.local_context or "", contexts)
                    for e in _extensions(of, name)]  # fmt: skip
            if any(r is None for r in ring):
                unknown.append(f"{name}@{of.domain}")
                continue
            planned.append((at, of, name, set().union(*(r for r in ring if r is not None))))
    try:
        phones = read_phones(transport, program, sorted({e for *_, ends in planned for e in ends}))
    except SipctlError:
        phones = None
    if phones is None:
        report.notes.append("calls across customers: pjsip show endpoint failed; none placed")
        return

    def silent(endpoint: str) -> bool:
        facts = phones.get(endpoint)
        return facts is not None and not facts.has_contact

    per_pair: dict[tuple[str, str], int] = {}
    calls: list[tuple[Spec, Spec, str, str, Exchange]] = []
    for at, of, name, endpoints in planned:
        key = (at.domain, of.domain)
        if per_pair.get(key, 0) >= CROSS_NAMES:
            continue
        if not all(silent(e) for e in endpoints):
            unknown.append(f"{name}@{of.domain}")
            continue
        per_pair[key] = per_pair.get(key, 0) + 1
        for to_domain in (at.domain, of.domain):
            if time.monotonic() >= deadline:
                break
            calls.append((at, of, name, to_domain, call(name, at.domain, to_domain)))
    log(f"called {len(calls)} names of one customer at another's domain")
    if unknown:
        report.notes.append(
            "not called across customers (a phone could ring: it has a contact, or the "
            f"dialplan does not say which): {', '.join(sorted(set(unknown)))}"
        )
    unknown_callers = host.asterisk.unknown_callers
    where = f"{target.transport} {target.address}:{target.port}"
    for at, of, name, to_domain, exchange in calls:
        if exchange.final is None and not exchange.rang:
            continue  # no answer: the runner reports silence once
        if probes.in_reject_path(name, exchange, unknown_callers):
            continue
        expected = probes.expected_path(name, unknown_callers)
        findings = [
            Finding(
                "cross-customer-call",
                "high",
                "calls",
                f"{of.domain}'s name {name!r} called at {at.domain} (To: {to_domain}) did not "
                f"end in {at.domain}'s reject path: {at.domain}'s callers reach "
                f"{of.domain}'s phones",
                where,
                f"calls are routed by the request URI's domain only; the guest contexts of "
                f"{at.domain} must hold only its own names: see the dialplan findings, then "
                "'sipctl apply' of the host's file",
                sent=f"INVITE sip:{name}@{at.domain} with To: <sip:{name}@{to_domain}>",
                got=f"{exchange.summary()}; expected: {expected}",
            )
        ]
        report.add(findings)
    if calls:
        report.checks.append(
            f"calls across customers: {len(calls)} INVITE(s) of one customer's names at "
            f"another's domain (To at either domain), {len(pairs)} pair(s) of customers"
        )


def _extensions(customer: Spec, name: str) -> tuple[str, ...]:
    target = customer.users[name]
    return (target,) if isinstance(target, str) else target.extensions()
