"""``sipctl audit``: read the live guest dialplan, then attack the domain from outside.

The order, each part bounded in count and time (``AuditLimits``):

1. the guest context as Asterisk runs it, through the asterisk target, and every context a
   guest can get into from it (judged in ``reachability.py``);
2. RFC 3263 resolution as a caller does it (``reconciler/verify``), then from the first
   target a caller would use: OPTIONS to every declared name and a few undeclared ones,
   REGISTER and MESSAGE as a guest, and the INVITEs of ``probes.call_plan`` (never to a
   declared name: audit never rings a real phone). Requests are rate-limited;
3. the PBX's log (where the target can read it): one "Wrong call" line per answered call;
4. as sipvicious' svwar does: the declared extensions and a few unknown ones in the request
   URI and in From, by OPTIONS, REGISTER and INVITE over UDP, TCP and TLS;
5. the management ports of every resolved address (``exposure.py``);
6. when a part met silence: whether sipctl's fail2ban jails ban this machine.

Packets: OPTIONS/REGISTER/MESSAGE cost 1 datagram each (+ retransmissions if lost; an accepted
REGISTER is withdrawn: +1), an INVITE 2 (INVITE, ACK) when refused, 3 when answered (+BYE) or
when it rang (+CANCEL); a TCP knock 1 (closed) or 3 (open), a UDP knock 1. The report prints
the count.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipctl.errors import SipctlError
from sipctl.providers.sip_attack import Exchange, SipAgent, Wire
from sipctl.reconciler.audit import exposure, hosting, probes, reachability
from sipctl.reconciler.audit.report import AuditReport, Finding
from sipctl.reconciler.bindings import enforce_bindings
from sipctl.reconciler.probe_scope import ProbeScope, audit_scope
from sipctl.reconciler.render.asterisk import dialplan_text, server_header_written
from sipctl.reconciler.verify.report import Endpoint, endpoints
from sipctl.schemas.loader import LoadedSpec
from sipctl.schemas.values import hostport

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.transport.pool import HostTransport
    from sipctl.schemas.spec import RingGroup, Spec

DEFAULT_LOG = "/var/log/asterisk/messages.log"


@dataclass(frozen=True)
class AuditLimits:
    rate: float = 20.0  # SIP requests per second, at most
    parallel: int = 4  # calls in flight at once
    request_timeout: float = 3.0  # one transaction
    hold: float = 0.3  # seconds an answered call is held before BYE
    knock_timeout: float = 1.0
    seconds: float = 50.0  # the whole audit; what is left when it runs out is reported


class _RateLimit:
    """At most ``rate`` starts per second across threads."""

    def __init__(self, rate: float) -> None:
        self._gap = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._gap
        if start > now:
            time.sleep(start - now)


def run_audit(
    loaded: LoadedSpec,
    nameserver: str | None = None,
    *,
    limits: AuditLimits = AuditLimits(),
    extra_ports: Sequence[exposure.KnownPort] = (),
    ban_test: bool = False,
    log: Callable[[str], None] = lambda _line: None,
) -> AuditReport:
    """Audit ``loaded.spec.domain``; never raises for what it finds (errors go in the report).

    ``ban_test``: afterwards, check that fail2ban bans this host after ``maxretry`` wrong
    calls, and lift the ban (``ban_test.py``; only from an address the jail does not ignore).
    """
    started = time.monotonic()
    deadline = started + limits.seconds
    report = AuditReport(domain=loaded.spec.domain, nameserver=nameserver)
    # A hoster's file: a customer is attacked at its domain on its host's PBX (hosting.py).
    hosted = hosting.hosted_of(loaded)
    if hosted is not None:
        loaded = hosted.attacked
    spec = loaded.spec
    from sipctl.providers.base import RunContext

    ctx = RunContext(base_dir=loaded.base_dir, log=log)
    scope = audit_scope(hosted.host_loaded if hosted is not None else loaded, ctx.env)
    if scope is None:
        report.errors.append(
            "the spec has no asterisk section, so no PBX of its own: audit sends no attack "
            "probe to what its DNS names (run sipctl verify for DNS and OPTIONS)"
        )
        report.seconds = time.monotonic() - started
        return report
    enforce_bindings(loaded, ctx)
    try:
        transport = _asterisk_transport(spec, ctx, report)
        program: tuple[str, ...] = ()
        if transport is not None:
            program = _asterisk_words(loaded, ctx, transport, report)
            if not program:
                transport = None
        contexts = None
        if transport is not None:
            log("reading the live guest dialplan")
            if hosted is not None:
                contexts = hosting.audit_dialplan(hosted, transport, program, report)
            else:
                _audit_dialplan(spec, transport, program, report)
        if hosted is not None and not hosted.audited:
            report.notes.append("no customer file of this directory names this host: no call")
            report.seconds = time.monotonic() - started
            return report
        log(f"resolving {spec.domain} (RFC 3263)")
        hops = _in_scope(_resolve(loaded, nameserver, report), scope, report)
        if hops:
            target = next((h for h in hops if h.transport == "udp"), None) or next(
                (h for h in hops if h.transport == "tcp"), None
            )
            if target is None:
                report.errors.append("no UDP or TCP target to probe (TLS only is not probed)")
            else:
                _probe_target(spec, target, transport, program, limits, deadline, report, log)
                if hosted is not None:
                    pace = _RateLimit(limits.rate).wait
                    hosting.cross_customer_calls(hosted, contexts, target, transport, program,
                                                 limits, pace, deadline, report, log)  # fmt: skip
                if ban_test:
                    from sipctl.reconciler.audit.ban_test import run_ban_test

                    log("ban test: wrong calls until fail2ban bans this host, then unban")
                    run_ban_test(spec, target, ctx, report)
            _identity_probes(spec, hops, transport, program, limits, deadline, report, log)
            _knock(spec, hops, limits, extra_ports, report, log)
            _certificates(spec, hops, limits, report)
            if report.errors:
                explain_silence(spec, hops[0], ctx, report, log)
    finally:
        ctx.close()
    report.seconds = time.monotonic() - started
    return report


def explain_silence(
    spec: Spec, hop: Endpoint, ctx: RunContext, report: AuditReport, log: Callable[[str], None]
) -> None:
    """A part met silence or refusals: a fail2ban ban of this machine looks the same as a dead
    listener. Ask sipctl's jails (through the fail2ban target) and say which it was."""
    from sipctl.reconciler.ban_state import read_ban_state, source_address

    log("some probes met silence: asking sipctl's fail2ban jails about this machine")
    try:
        state = read_ban_state(spec, ctx, source_address(hop.address, hop.port))
    except OSError:
        return
    if state.banned:
        report.errors[:0] = [
            f"{state.words()}. The parts below that got no answer met the ban, not a dead listener"
        ]
    elif not state.readable and spec.fail2ban is not None:
        report.notes.append(state.words())
    else:
        report.checks.append(f"ban: {state.words()}")


def _in_scope(hops: list[Endpoint], scope: ProbeScope, report: AuditReport) -> list[Endpoint]:
    """The resolved endpoints audit may attack; one line for each it may not."""
    kept = []
    for hop in hops:
        if scope.allows(hop.address, hop.target):
            kept.append(hop)
        else:
            refusal = scope.refusal(hop.address, hop.target, hop.port)
            if refusal not in report.errors:
                report.errors.append(refusal)
    return kept


# --- dialplan ---------------------------------------------------------------------------------


def _asterisk_transport(spec: Spec, ctx: RunContext, report: AuditReport) -> HostTransport | None:
    section = spec.asterisk
    if section is None:
        report.notes.append("the spec has no asterisk section: the live dialplan is not read")
        return None
    try:
        transport = ctx.transports.get(section.target, section.ssh)
    except SipctlError as exc:
        report.errors.append(f"asterisk target {section.target}: {exc.message}")
        return None
    if not transport.can_run:
        report.notes.append(
            f"asterisk.target {section.target} is a directory: the live dialplan is not read"
        )
        return None
    return transport


def _asterisk_words(
    loaded: LoadedSpec, ctx: RunContext, transport: HostTransport, report: AuditReport
) -> tuple[str, ...]:
    """How Asterisk is reached on its target (the host profile); () when that is refused."""
    from sipctl.providers.asterisk.cli import asterisk_program

    try:
        return asterisk_program(ctx, transport, loaded)
    except SipctlError as exc:
        report.errors.append(exc.message)
        return ()


def _audit_dialplan(
    spec: Spec, transport: HostTransport, program: Sequence[str], report: AuditReport
) -> None:
    from sipctl.providers.asterisk.live_dialplan import read_reachable

    assert spec.asterisk is not None
    section = spec.asterisk
    guest = section.guest_context
    try:
        live = read_reachable(
            transport,
            program,
            guest,
            reachability.referenced_contexts,
            reachability.MAX_DEPTH,
        )
    except SipctlError as exc:
        report.errors.append(exc.message)
        return
    rendered = dialplan_text(spec)
    wanted = reachability.desired_steps(rendered, guest)
    allowed = reachability.rendered_jumps(rendered, guest)
    findings = reachability.judge(guest, live.contexts, wanted, allowed)
    report.add(findings)
    own = live.contexts[guest]
    report.checks.append(
        f"dialplan: context {guest} ({len(own.extensions)} extensions, "
        f"{len(own.includes)} includes, {len(own.switches)} switches) and "
        f"{len(live.contexts) - 1} context(s) reached from it"
    )
    if live.missing:
        report.notes.append(f"referenced but not defined: {', '.join(live.missing)}")
    if live.truncated:
        report.errors.append("the dialplan reached from the guest context is too large to read")


# --- resolution -------------------------------------------------------------------------------


def _resolve(loaded: LoadedSpec, nameserver: str | None, report: AuditReport) -> list[Endpoint]:
    from sipctl.providers.dns.query import gather, make_resolver, system_resolver_or_none
    from sipctl.reconciler.verify.rfc3263 import resolve
    from sipctl.reconciler.verify.run import _nameserver

    try:
        server = _nameserver(nameserver)
    except SipctlError as exc:
        report.errors.append(exc.message)
        return []
    resolver = make_resolver(server, 3.0)
    fallback = functools.cache(lambda: system_resolver_or_none(3.0)) if server else None
    resolution = resolve(gather(loaded.spec.domain, resolver, fallback))
    found: list[Endpoint] = endpoints(resolution.hops)
    for hop in found:
        report.targets.append(f"{hop.transport} {hostport(hop.address, hop.port)} ({hop.target})")
    if not found:
        words = "; ".join(d.message for d in resolution.defects) or "no SIP server found"
        report.errors.append(f"{loaded.spec.domain} does not resolve to a SIP server: {words}")
    return found


# --- SIP probes -------------------------------------------------------------------------------


def _probe_target(
    spec: Spec,
    target: Endpoint,
    transport: HostTransport | None,
    program: Sequence[str],
    limits: AuditLimits,
    deadline: float,
    report: AuditReport,
    log: Callable[[str], None],
) -> None:
    where = f"{target.transport} {hostport(target.address, target.port)}"
    wire: Wire = "udp" if target.transport == "udp" else "tcp"
    unknown = spec.asterisk.unknown_callers if spec.asterisk is not None else "reject"
    declared = sorted([*spec.users, *spec.rooms])
    undeclared = probes.undeclared_names(declared, probes.UNDECLARED_SAMPLES)
    rate = _RateLimit(limits.rate)
    servers: dict[str, str] = {}
    log_path, log_offset = _log_start(spec, transport)

    def agent() -> SipAgent:
        return SipAgent(target.address, target.port, wire, spec.domain)

    # OPTIONS, REGISTER, MESSAGE: declared names and a few undeclared ones, in turn.
    try:
        with agent() as one:
            asked: dict[str, tuple[list[Exchange], list[Exchange]]] = {}
            for method, extra, body in (
                ("OPTIONS", [], ""),
                ("REGISTER", ["Expires: 60"], ""),
                ("MESSAGE", ["Content-Type: text/plain"], "sipctl audit"),
            ):
                groups: tuple[list[Exchange], list[Exchange]] = ([], [])
                for names, into in ((declared, groups[0]), (undeclared, groups[1])):
                    for name in names:
                        if time.monotonic() >= deadline:
                            break
                        rate.wait()
                        exchange = one.transact(method, name, limits.request_timeout, extra, body)
                        report.count(method.lower()).requests += 1
                        report.count(method.lower()).packets += exchange.packets
                        into.append(exchange)
                        if exchange.server:
                            servers[where] = exchange.server
                asked[method] = groups
    except OSError as exc:
        report.errors.append(f"{where}: cannot talk SIP: {exc}")
        return
    if unknown == "challenge":
        report.notes.append(
            "unknown_callers is challenge: a declared name reaches the guest endpoint and any "
            "other name is challenged (401), so the declared names (public by design) can be "
            "told from undeclared ones; the internal extensions cannot (the identity probes)"
        )
    for method, (mine, others) in asked.items():
        if unknown == "challenge":
            pass
        elif method == "OPTIONS" and unknown == "not-found":
            report.notes.append(
                "unknown_callers is not-found: OPTIONS answers undeclared names 404 and "
                "declared ones 200, so names can be enumerated (the spec's choice; reject "
                "hides them)"
            )
        else:
            report.add(probes.enumeration_findings(method, mine, others, where))
        if method != "OPTIONS":
            report.add(probes.guest_request_findings([*mine, *others], where))
    silent = [e for m in asked.values() for g in m for e in g if e.final is None]
    if silent:
        report.errors.append(
            f"{where}: {len(silent)} request(s) got no answer ({silent[0].summary()})"
        )

    # INVITEs: dial strings, never a declared name.
    plan, skipped = probes.call_plan([*declared, *_declared_extensions(spec)])
    if skipped:
        report.notes.append(
            "not called (a declared name or extension: audit never rings a real phone; the "
            f"dialplan check covers them): {', '.join(skipped)}"
        )
    log(f"placing {len(plan)} guest calls to {where} (each ended at once)")
    calls = _place_calls(plan, agent, rate, limits, deadline, report)
    for _, exchange in calls:
        if exchange.server:
            servers[where] = exchange.server
    report.add(probes.call_findings(calls, unknown, where))
    if any(probes.pickup_refused(p.name, e) for p, e in calls):
        report.notes.append(
            f"{probes.PICKUP_EXTENSION} (features.conf pickupexten) is refused 403 before the "
            "dialplan runs: the guest has no pickup group, so it cannot pick up calls"
        )
    unanswered = [e for _, e in calls if e.final is None and not e.rang]
    if unanswered:
        report.errors.append(
            f"{where}: {len(unanswered)} of {len(calls)} calls got no answer; a ban "
            "(fail2ban) stops an audit after maxretry wrong calls: run it from an address in "
            "fail2ban.ignoreip"
        )
    if len(calls) < len(plan):
        report.errors.append(
            f"time budget of {limits.seconds:.0f} s spent: {len(plan) - len(calls)} call(s) "
            "not placed"
        )
    report.checks.append(
        f"calls: {len(calls)} INVITEs to outside-line, prefix, feature-code, special, "
        f"injection and other-domain (relay) dial strings at {where}; "
        f"OPTIONS/REGISTER/MESSAGE to {len(declared)} declared and {len(undeclared)} "
        "undeclared names"
    )
    _unreachable_names(spec, transport, program, agent, rate, limits, deadline, where, report)
    _correlate_log(spec, transport, log_path, log_offset, calls, target, report)
    managed = spec.asterisk is not None and server_header_written(spec.asterisk) is not None
    report.add(probes.version_leaks(servers, managed))


def _unreachable_names(
    spec: Spec,
    transport: HostTransport | None,
    program: Sequence[str],
    agent: Callable[[], SipAgent],
    rate: _RateLimit,
    limits: AuditLimits,
    deadline: float,
    where: str,
    report: AuditReport,
) -> None:
    """INVITE declared names no phone can answer (no contact now), against undeclared ones.

    A name is called only when the live PBX says, for each of its extensions, that the
    endpoint ``PJSIP/<extension>`` rings has no contact at all: declared name -> extensions
    -> endpoints -> their AORs (``aors=``, whatever their names) -> contacts, static ones
    included (``phones.py``). When Asterisk cannot tell for one extension, its name is not
    called. So no phone rings (one that registers in between gets a CANCEL at once).
    ``route: goto`` hands the name to the admin's local context, which may do anything:
    those names are not called.
    """
    from sipctl.providers.asterisk.phones import read_phones

    section = spec.asterisk
    if section is None or transport is None or section.channel != "pjsip":
        return
    if section.route != "dial":
        report.notes.append("route is goto: declared names are not called (enumeration by "
                            "INVITE is not measured)")  # fmt: skip
        return
    if section.unknown_callers == "challenge":
        return  # a declared name reaches the guest endpoint, any other is challenged: by design
    try:
        phones = read_phones(transport, program, _declared_extensions(spec))
    except SipctlError:
        phones = None
    if phones is None or (phones and all(p is None for p in phones.values())):
        report.notes.append("pjsip show endpoint failed: no declared name was called")
        return

    def silent(extension: str) -> bool:
        facts = phones.get(extension)
        return facts is not None and not facts.has_contact

    names = [
        name
        for name, target in sorted(spec.users.items())
        if all(silent(ext) for ext in _extensions_of(target))
    ][: probes.UNDECLARED_SAMPLES]
    if not names:
        report.checks.append("enumeration by INVITE: every declared name has a phone; not called")
        return
    others = probes.undeclared_names([*spec.users, *spec.rooms], len(names))
    declared_calls: list[Exchange] = []
    undeclared_calls: list[Exchange] = []
    with agent() as caller:
        for mine, other in zip(names, others, strict=True):
            for name, into in ((mine, declared_calls), (other, undeclared_calls)):
                if time.monotonic() >= deadline:
                    break
                rate.wait()
                exchange = caller.invite(name, limits.request_timeout, limits.hold)
                report.count("invite").requests += 1
                report.count("invite").packets += exchange.packets
                into.append(exchange)
    rang = [e for e in declared_calls if e.rang]
    if rang:
        report.notes.append(
            f"{rang[0].user!r} rang although it had no contact (a phone registered meanwhile); "
            "the call was CANCELed"
        )
    report.add(probes.enumeration_findings("INVITE", declared_calls, undeclared_calls, where))
    report.checks.append(
        f"enumeration by INVITE: {len(declared_calls)} declared name(s) no phone answers "
        f"({', '.join(names)}) against {len(undeclared_calls)} undeclared"
    )


IDENTITY_KNOWN = 10  # declared extensions tried as sipvicious does, at most
IDENTITY_UNKNOWN = 3
# The transports the identity probes speak, first target of each (a WSS caller is a browser
# on the page's own guest endpoint; the same PJSIP identification serves it).
IDENTITY_WIRES: dict[str, Wire] = {"udp": "udp", "tcp": "tcp", "tls": "tls"}


def _identity_probes(
    spec: Spec,
    hops: Sequence[Endpoint],
    transport: HostTransport | None,
    program: Sequence[str],
    limits: AuditLimits,
    deadline: float,
    report: AuditReport,
    log: Callable[[str], None],
) -> None:
    """OPTIONS, REGISTER and INVITE with the extension in the request URI and in From, on
    the first UDP, TCP and TLS target, as sipvicious' svwar scans: known extensions against
    unknown. Over TLS the served certificate is taken as it is, as a scanner takes it (the
    certificate itself is judged by ``_certificates``).

    No phone rings: a known extension gets an INVITE only when its OPTIONS was challenged
    (the endpoint requires authentication, so the INVITE is challenged before any dialplan
    runs), and an unknown one only when the PBX has no endpoint of that name (it then lands
    on the guest endpoint, whose dialplan ends in the reject path)."""
    # An extension that is also a declared name is public: anyone may call it by design.
    public = {*spec.users, *spec.rooms}
    extensions = [e for e in dict.fromkeys(_declared_extensions(spec)) if e not in public]
    known = extensions[:IDENTITY_KNOWN]
    if not known:
        return
    unknown = _unknown_extensions(spec, known, transport, program)
    rate = _RateLimit(limits.rate)
    targets: dict[Wire, Endpoint] = {}
    for hop in hops:
        if hop.transport in IDENTITY_WIRES and hop.transport not in targets:
            targets[IDENTITY_WIRES[hop.transport]] = hop
    log(f"as sipvicious does: {len(known)} known and {len(unknown)} unknown extensions in From")
    log_path, log_offset = _log_start(spec, transport)
    first = len(report.findings)
    for wire, hop in targets.items():
        where = f"{hop.transport} {hostport(hop.address, hop.port)}"
        count = report.count("identity")
        asked: dict[str, tuple[list[Exchange], list[Exchange]]] = {}
        try:
            with SipAgent(hop.address, hop.port, wire, spec.domain) as agent:
                for method in ("OPTIONS", "REGISTER", "INVITE"):
                    groups: tuple[list[Exchange], list[Exchange]] = ([], [])
                    for extensions, into in ((known, groups[0]), (unknown, groups[1])):
                        for ext in extensions:
                            if time.monotonic() >= deadline:
                                break
                            if method == "INVITE" and not _may_invite(ext, known, asked):
                                continue
                            rate.wait()
                            if method == "INVITE":
                                exchange = agent.invite(
                                    ext, limits.request_timeout, limits.hold, from_user=ext
                                )
                            else:
                                extra = ["Expires: 60"] if method == "REGISTER" else []
                                exchange = agent.transact(
                                    method, ext, limits.request_timeout, extra, from_user=ext
                                )
                            count.requests += 1
                            count.packets += exchange.packets
                            into.append(exchange)
                    asked[method] = groups
                if public:
                    declared = min(public)
                    variants = _identity_variants(
                        agent, declared, known, unknown, limits, deadline, rate
                    )
                    # svwar's own OPTIONS already tells them apart: the From variant is
                    # the same answer again (and the same fixes), not a finding of its own.
                    plain = bool(probes.identity_findings("OPTIONS", *asked["OPTIONS"], where))
                    for variant, (mine, others) in variants.items():
                        count.requests += len(mine) + len(others)
                        count.packets += sum(e.packets for e in [*mine, *others])
                        if variant == "from" and plain:
                            continue
                        report.add(
                            probes.identity_variant_findings(variant, declared, mine, others, where)
                        )
        except OSError as exc:
            report.errors.append(f"{where}: cannot talk SIP: {exc}")
            continue
        for method, (mine, others) in asked.items():
            report.add(probes.identity_findings(method, mine, others, where))
            if method == "REGISTER":
                report.add(probes.guest_request_findings(mine + others, where))
    found = [i for i in range(first, len(report.findings))
             if report.findings[i].code == "enumeration-by-identity"]  # fmt: skip
    if found and hops:
        seen = _unlogged(transport, log_path, log_offset, hops[0])
        if seen is not None:
            for index in found:
                finding = report.findings[index]
                report.findings[index] = dataclasses.replace(
                    finding, details=(*finding.details, seen)
                )
    report.checks.append(
        f"identity: OPTIONS, REGISTER and INVITE with the extension in From (as sipvicious) "
        f"for {len(known)} known and {len(unknown)} unknown extensions on "
        f"{', '.join(targets) or 'no UDP, TCP or TLS target'}"
    )


def _identity_variants(
    agent: SipAgent,
    declared: str,
    known: list[str],
    unknown: list[str],
    limits: AuditLimits,
    deadline: float,
    rate: _RateLimit,
) -> dict[str, tuple[list[Exchange], list[Exchange]]]:
    """OPTIONS (it never rings) to a declared name, the extension tried elsewhere: in From
    (``from``), and in a forged ``Authorization`` header with an unknown From (``auth``:
    the auth_username identifier, if an admin lists it before anonymous). The declared
    name reaches a guest endpoint under every ``unknown_callers``, so an identified phone
    (401) stands out from a guest (200)."""
    asked: dict[str, tuple[list[Exchange], list[Exchange]]] = {}
    for variant in probes.IDENTITY_VARIANTS:
        groups: tuple[list[Exchange], list[Exchange]] = ([], [])
        for extensions, into in ((known, groups[0]), (unknown, groups[1])):
            for ext in extensions:
                if time.monotonic() >= deadline:
                    break
                rate.wait()
                if variant == "from":
                    exchange = agent.transact(
                        "OPTIONS", declared, limits.request_timeout, from_user=ext
                    )
                else:
                    header = probes.forged_authorization(ext, declared, agent.domain)
                    exchange = agent.transact("OPTIONS", declared, limits.request_timeout, [header])
                exchange.user = ext  # the extension tried, as the findings name it
                into.append(exchange)
        asked[variant] = groups
    return asked


# The only lines an unknown extension's call or REGISTER leaves (measured on Asterisk 22),
# what every request no endpoint takes leaves (unknown_callers: challenge), and what a
# request no guest may send leaves (sipctl-refused's ACL, asterisk.REFUSED_REQUESTS);
# sipctl's fail2ban filter matches each. The ACL's refusal also leaves Asterisk's own
# "SIP ACL: Rejecting '<addr>' ..." beside it, which the filter leaves alone (one count).
_COUNTED_REFUSALS = ("No matching endpoint found", "Not match Endpoint ACL")
_UNKNOWN_LINES = ("Wrong call", "has no configured AORs", "SIP ACL: Rejecting", *_COUNTED_REFUSALS)


def _unlogged(
    transport: HostTransport | None, path: str, offset: int | None, hop: Endpoint
) -> str | None:
    """What the PBX's log says about the scan. Measured on Asterisk 22: only an unknown
    extension's call ('Wrong call') and REGISTER ('anonymous ... has no configured AORs')
    leave a line naming the scanner; OPTIONS and every challenged request leave none, so
    fail2ban never sees them. None when the log cannot be read."""
    from sipctl.providers.asterisk.live_dialplan import log_since
    from sipctl.reconciler.ban_state import source_address

    if transport is None or offset is None:
        return None
    text = log_since(transport, path, offset)
    if text is None:
        return None
    try:
        address = source_address(hop.address, hop.port)
    except OSError:
        return None
    lines = [ln for ln in text.splitlines() if address in ln]
    other = [ln for ln in lines if not any(words in ln for words in _UNKNOWN_LINES)]
    if other:
        return (
            f"{len(other)} line(s) in {path} name this machine ({address}) besides the "
            f"unknown extensions' calls and REGISTERs, e.g. {other[-1].strip()[:200]!r}"
        )
    if any(words in line for line in lines for words in _COUNTED_REFUSALS):
        return (
            f"{len(lines)} line(s) in {path} name this machine ({address}), all lines "
            "sipctl's fail2ban filter counts ('No matching endpoint found' for every request "
            "no endpoint took, 'Not match Endpoint ACL' for every method no guest may send, "
            "'Wrong call', 'has no configured AORs'; Asterisk's 'SIP ACL: Rejecting' beside "
            "the ACL's, counted once); a phone's challenged requests leave none"
        )
    return (
        f"{len(lines)} line(s) in {path} name this machine ({address}), all for the unknown "
        "extensions' calls and REGISTERs: the OPTIONS scan and every challenged request "
        "leave none, so fail2ban never sees them"
    )


def _may_invite(
    ext: str, known: list[str], asked: dict[str, tuple[list[Exchange], list[Exchange]]]
) -> bool:
    """A known extension is INVITEd only when its OPTIONS was challenged (401/407)."""
    if ext not in known:
        return True  # _unknown_extensions made sure no endpoint has this name
    options = asked.get("OPTIONS", ([], []))[0]
    return any(e.user == ext and e.final in (401, 407) for e in options)


def _unknown_extensions(
    spec: Spec, known: list[str], transport: HostTransport | None, program: Sequence[str]
) -> list[str]:
    """Numbers like the known ones that no endpoint of the live PBX has (checked through
    the asterisk target; without it, ten digits nobody uses as an endpoint name)."""
    from sipctl.providers.asterisk.phones import read_phones

    taken = {*known, *spec.users, *spec.rooms}
    section = spec.asterisk
    readable = transport is not None and section is not None and section.channel == "pjsip"
    width = max(len(k) for k in known) if readable else 10
    candidates: list[str] = []
    while len(candidates) < IDENTITY_UNKNOWN * 3:
        number = str(secrets.randbelow(9) + 1) + "".join(
            str(secrets.randbelow(10)) for _ in range(max(width, 3) - 1)
        )
        if number not in taken and number not in candidates:
            candidates.append(number)
    if not readable:
        return candidates[:IDENTITY_UNKNOWN]
    assert transport is not None and section is not None
    try:
        facts = read_phones(transport, program, candidates)
    except SipctlError:
        return []
    free = [n for n in candidates if (f := facts.get(n)) is not None and not f.exists]
    return free[:IDENTITY_UNKNOWN]


def _declared_extensions(spec: Spec) -> list[str]:
    """Every extension a declared name rings (ring groups and fallbacks included)."""
    return [ext for target in spec.users.values() for ext in _extensions_of(target)]


def _extensions_of(target: str | RingGroup) -> tuple[str, ...]:
    return (target,) if isinstance(target, str) else target.extensions()


def _place_calls(
    plan: Sequence[probes.PlannedCall],
    agent: Callable[[], SipAgent],
    rate: _RateLimit,
    limits: AuditLimits,
    deadline: float,
    report: AuditReport,
) -> list[tuple[probes.PlannedCall, Exchange]]:
    lock = threading.Lock()
    results: list[tuple[int, probes.PlannedCall, Exchange]] = []
    queue = list(enumerate(plan))

    def worker() -> None:
        with agent() as caller:
            while True:
                with lock:
                    if not queue or time.monotonic() >= deadline:
                        return
                    index, planned = queue.pop(0)
                rate.wait()
                exchange = caller.invite(planned.name, limits.request_timeout, limits.hold)
                with lock:
                    results.append((index, planned, exchange))
                    count = report.count("invite")
                    count.requests += 1
                    count.packets += exchange.packets

    workers = max(1, min(limits.parallel, len(plan)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(worker) for _ in range(workers)]:
            future.result()
    return [(p, e) for _, p, e in sorted(results, key=lambda r: r[0])]


# --- the PBX's log ----------------------------------------------------------------------------


def _log_start(spec: Spec, transport: HostTransport | None) -> tuple[str, int | None]:
    from sipctl.providers.asterisk.live_dialplan import log_size

    path = spec.fail2ban.logpath if spec.fail2ban is not None else DEFAULT_LOG
    if transport is None:
        return path, None
    try:
        return path, log_size(transport, path)
    except SipctlError:
        return path, None


def _correlate_log(
    spec: Spec,
    transport: HostTransport | None,
    path: str,
    offset: int | None,
    calls: Sequence[tuple[probes.PlannedCall, Exchange]],
    target: Endpoint,
    report: AuditReport,
) -> None:
    """In reject mode every answered call must have left one "Wrong call" line."""
    from sipctl.providers.asterisk.live_dialplan import log_since

    if spec.asterisk is None or spec.asterisk.unknown_callers != "reject":
        return
    if offset is None or transport is None:
        report.notes.append(f"the PBX log {path} is not readable through the target: answered "
                            "calls were not matched with 'Wrong call' lines")  # fmt: skip
        return
    from sipctl.reconciler.audit.ban_test import source_address

    answered = [e for _, e in calls if e.answered]
    # Only our own lines count: other strangers' wrong calls must not hide a missing one.
    ours = re.compile(rf"Wrong call IP={re.escape(source_address(target))}(?![0-9a-fA-F.:])")
    text = ""
    limit = time.monotonic() + 2.0
    while time.monotonic() < limit:
        text = log_since(transport, path, offset) or ""
        if len(ours.findall(text)) >= len(answered):
            break
        time.sleep(0.2)
    wrong = len(ours.findall(text))
    report.checks.append(f"log: {wrong} 'Wrong call' line(s) in {path} for {len(answered)} "
                         "answered call(s)")  # fmt: skip
    if wrong < len(answered):
        report.add(
            [
                Finding(
                    "answered-without-wrong-call",
                    "high",
                    "calls",
                    f"{len(answered) - wrong} of {len(answered)} answered guest calls left no "
                    "'Wrong call' line: something other than the reject path answers them, "
                    "and fail2ban never sees those callers",
                    f"{path} on the asterisk target",
                    "see the dialplan findings for what answers; the guest context must end "
                    "every undeclared name in sipctl's reject path ('sipctl apply')",
                    sent=f"{len(answered)} INVITEs that were answered",
                    got=f"{wrong} 'Wrong call' line(s)",
                )
            ]
        )


# --- exposure ---------------------------------------------------------------------------------


def _knock(
    spec: Spec,
    hops: Sequence[Endpoint],
    limits: AuditLimits,
    extra: Sequence[exposure.KnownPort],
    report: AuditReport,
    log: Callable[[str], None],
) -> None:
    from sipctl.providers.port_knock import knock_tcp, knock_udp

    addresses = list(dict.fromkeys(h.address for h in hops))
    ports = exposure.ports_to_knock(spec, extra)
    jobs = [(a, p) for a in addresses for p in ports]
    log(f"knocking on {len(ports)} management ports of {len(addresses)} address(es)")

    def one(job: tuple[str, exposure.KnownPort]) -> tuple[str, exposure.KnownPort, bool, int]:
        address, known = job
        knock = knock_tcp if known.proto == "tcp" else knock_udp
        is_open, packets = knock(address, known.port, limits.knock_timeout)
        return address, known, is_open, packets

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, jobs))
    count = report.count("port")
    for address in addresses:
        opened = [k for a, k, is_open, _ in results if a == address and is_open]
        report.add(exposure.exposure_findings(address, opened, spec))
    count.requests += len(results)
    count.packets += sum(r[3] for r in results)
    report.checks.append(f"exposure: {len(ports)} ports knocked on each of {', '.join(addresses)}")


def _certificates(
    spec: Spec, hops: Sequence[Endpoint], limits: AuditLimits, report: AuditReport
) -> None:
    """The certificate every TLS target serves: the names a SIPS caller checks, the expiry."""
    from datetime import UTC, datetime

    from sipctl.providers.certificate.pem import read_der_certificate
    from sipctl.providers.certificate.served import fetch_served

    tls = [h for h in hops if h.transport == "tls"]
    now = datetime.now(UTC)
    for hop in tls:
        served = fetch_served(hop.address, hop.port, spec.domain, limits.request_timeout)
        report.count("tls").requests += 1
        report.count("tls").packets += 3  # ClientHello, the handshake's finish, close
        where = f"tls {hostport(hop.address, hop.port)} ({hop.target})"
        if served.der is None:
            report.errors.append(f"{where}: {served.problem}")
            continue
        try:
            facts = read_der_certificate(served.der)
        except ValueError as exc:
            report.errors.append(f"{where}: the certificate cannot be read: {exc}")
            continue
        names = list(dict.fromkeys([spec.domain, hop.target.rstrip(".")]))
        report.add(exposure.certificate_findings(where, facts, names, now))
    if tls:
        report.checks.append(f"certificates: {len(tls)} TLS target(s)")
