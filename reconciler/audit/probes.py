"""What the audit sends from outside, and how each answer is judged. Pure.

The plan is fixed and bounded (``call_plan``): at most ``len(OUTSIDE_LINES) +
len(SWEEP_DIGITS) * 4 + len(FEATURE_CODES) + len(SPECIAL_NAMES) + len(INJECTIONS) +
len(RELAYS)`` calls,
minus the ones skipped because they are a declared name or a declared extension number
(audit never rings a real phone: those are judged from the dialplan alone).

The reject path is what ``unknown_callers`` promises for a name that is not declared:

- ``reject``: the call is answered (the reject sound plays), logged as "Wrong call" and hung
  up; Asterisk's own ending extensions (h, i, t, T, e) hang up before answering (603);
- ``not-found``: 404 before any dialplan runs;
- ``challenge``: 401 before any dialplan runs (no guest endpoint is found for the name).

Anything else is a finding: a 18x means something rang (CANCELed at once), another final
answer (486, 503, 404 in reject mode...) means the call reached a ``Dial`` or something else.
"""

from __future__ import annotations

import secrets
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sipctl.providers.sip_attack import Exchange
from sipctl.reconciler.audit.report import Finding
from sipctl.reconciler.render.asterisk import ENDING_EXTENSIONS

Kind = Literal["outside-line", "prefix", "feature-code", "special", "injection", "relay"]

# A London number in the ways a PBX user would dial it: international prefixes, "9"/"0" for
# an outside line, the North American and Russian international prefixes.
OUTSIDE_LINES = (
    "00442079460000",
    "011442079460000",
    "+442079460000",
    "0011442079460000",
    "810442079460000",
    "900442079460000",
    "9011442079460000",
    "912125550100",
    "02079460000",
    "12125550100",
)
SWEEP_DIGITS = "0123456789"
SWEEP_LENGTHS = (1, 2, 3, 4)
FEATURE_CODES = ("*97", "*98", "*8", "*72", "*0", "*", "#", "##", "**1")
SPECIAL_NAMES = ("s", *ENDING_EXTENSIONS, "o", "a")
# Percent-escapes are decoded by PJSIP before the dialplan sees the name.
INJECTIONS = (
    "x%0Ay",
    "a%0D%0AWrong",
    "$%7BSHELL(id)%7D",
    "_X.",
    "999&PJSIP%2F999",
    "a;b=c",
    "x" * 80,
)
# Addresses at another domain: a guest who reaches them through the PBX has an open relay
# (calls to any SIP address on the company's name). The domain is RFC 6761's .invalid, so
# even a relaying PBX sends nothing anywhere: its lookup fails at once.
RELAY_DOMAIN = "sipctl-audit.invalid"
RELAYS = (f"sipctlaudit@{RELAY_DOMAIN}", f"+442079460000@{RELAY_DOMAIN}")
# features.conf's default pickupexten: chan_pjsip answers it before any dialplan runs, 403
# when the caller has no pickup group (the guest never has one; measured on Asterisk 22).
PICKUP_EXTENSION = "*8"
UNDECLARED_SAMPLES = 3  # random undeclared names per method for the enumeration checks
TIMING_MARGIN_MS = 25.0  # a gap between declared and undeclared answer times beyond noise


@dataclass(frozen=True)
class PlannedCall:
    name: str  # the user part sent
    kind: Kind


def undeclared_names(declared: Iterable[str], count: int) -> list[str]:
    """``count`` random names no caller can reach: none is a declared name in any case
    (callers reach names in any case; such a name would ring a real phone)."""
    taken = {name.replace("-", "").lower() for name in declared}
    names: list[str] = []
    while len(names) < count:
        name = f"sipctlaudit{secrets.token_hex(3)}"
        if name not in taken and name not in names:
            names.append(name)
    return names


def sweep(digits: str = SWEEP_DIGITS, lengths: Sequence[int] = SWEEP_LENGTHS) -> list[str]:
    """One dial string per leading digit and length: 0, 00, 000, 0000, 1, 10, 100, 1000..."""
    return [d + "0" * (n - 1) for d in digits for n in lengths]


def call_plan(declared: Iterable[str]) -> tuple[list[PlannedCall], list[str]]:
    """The INVITEs to send, and the dial strings left out because a real phone answers them."""
    taken = {name.replace("-", "").lower() for name in declared}
    planned: list[PlannedCall] = []
    skipped: list[str] = []
    groups: list[tuple[Kind, Iterable[str]]] = [
        ("outside-line", OUTSIDE_LINES),
        ("prefix", sweep()),
        ("feature-code", FEATURE_CODES),
        ("special", SPECIAL_NAMES),
        ("injection", INJECTIONS),
        ("relay", RELAYS),
    ]
    seen: set[str] = set()
    for kind, names in groups:
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            if name.replace("-", "").lower() in taken:
                skipped.append(name)
            else:
                planned.append(PlannedCall(name, kind))
    return planned, skipped


def expected_path(name: str, unknown_callers: str) -> str:
    """What the reject path looks like for ``name``, in words."""
    if unknown_callers == "not-found":
        return "404 Not Found"
    if unknown_callers == "challenge":
        return "challenged (401), as an office phone's extension is"
    if name in ENDING_EXTENSIONS:
        return "hung up unanswered (603)"
    return "answered, reject sound, hung up"


def pickup_refused(name: str, exchange: Exchange) -> bool:
    """The call pickup feature refused the guest (no pickup group): no dialplan ran."""
    return name == PICKUP_EXTENSION and exchange.final == 403 and not exchange.rang


def in_reject_path(name: str, exchange: Exchange, unknown_callers: str) -> bool:
    if exchange.rang or exchange.final is None:
        return False
    if pickup_refused(name, exchange):
        return True
    if unknown_callers == "not-found":
        return exchange.final == 404
    if unknown_callers == "challenge":
        return exchange.final in (401, 407)
    if name in ENDING_EXTENSIONS:
        return exchange.final == 603 or (exchange.answered and exchange.final < 300)
    return exchange.answered


def call_findings(
    calls: Sequence[tuple[PlannedCall, Exchange]], unknown_callers: str, target: str
) -> list[Finding]:
    """A finding for every call that did not end in the reject path (18x first: it rang)."""
    findings: list[Finding] = []
    for planned, exchange in calls:
        if exchange.final is None and not exchange.rang:
            continue  # no answer at all: reported once by the runner, not per call
        if in_reject_path(planned.name, exchange, unknown_callers):
            continue
        expected = expected_path(planned.name, unknown_callers)
        if planned.kind == "relay":
            findings.append(
                Finding(
                    "open-relay",
                    "critical",
                    "calls",
                    f"a stranger's call to another domain's address {planned.name!r} did not "
                    "end in the reject path: the PBX may put strangers through to any SIP "
                    "address, on the company's name",
                    target,
                    "only the office phones' context may call out (sipctl's outbound: "
                    "section); remove whatever in the guest context dials ${SIPDOMAIN} or "
                    "another domain (see the dialplan findings)",
                    sent=f"INVITE sip:{planned.name}",
                    got=f"{exchange.summary()}; expected: {expected}",
                )
            )
            continue
        if exchange.rang:
            findings.append(
                Finding(
                    "call-rang",
                    "critical",
                    "calls",
                    f"a stranger's call to the {planned.kind} {planned.name!r} rang something "
                    "(CANCELed by the audit at once)",
                    target,
                    "find the extension that matches this dial string in the guest context "
                    "(see the dialplan findings) and remove it",
                    sent=f"INVITE sip:{planned.name}@...",
                    got=f"{exchange.summary()}; expected: {expected}",
                )
            )
            continue
        findings.append(
            Finding(
                "call-not-rejected",
                "high",
                "calls",
                f"a stranger's call to the {planned.kind} {planned.name!r} did not end in the "
                "reject path: it reached something else in the dialplan",
                target,
                "find the extension that matches this dial string in the guest context "
                "(see the dialplan findings) and remove it",
                sent=f"INVITE sip:{planned.name}@...",
                got=f"{exchange.summary()}; expected: {expected}",
            )
        )
    return findings


def refused(exchange: Exchange) -> bool:
    return exchange.final is not None and exchange.final >= 300


def guest_request_findings(exchanges: Sequence[Exchange], target: str) -> list[Finding]:
    """REGISTER and MESSAGE as a guest must be refused (any final answer >= 300)."""
    findings: list[Finding] = []
    for exchange in exchanges:
        if exchange.final is None or refused(exchange):
            continue
        if exchange.method == "REGISTER":
            findings.append(
                Finding(
                    "guest-register-accepted",
                    "critical",
                    "registration",
                    f"a stranger registered as {exchange.user!r} without a password: calls to "
                    "that name would ring the stranger (the audit withdrew the binding)",
                    target,
                    "no endpoint or AOR may accept a REGISTER without authentication: give "
                    "every AOR an endpoint with auth, and never let the anonymous endpoint "
                    "register",
                    sent=f"REGISTER as sip:{exchange.user}@...",
                    got=exchange.summary(),
                )
            )
        else:
            findings.append(
                Finding(
                    "guest-message-accepted",
                    "high",
                    "messages",
                    f"a stranger's SIP MESSAGE to {exchange.user!r} was accepted: the guest "
                    "dialplan runs for text messages (spam, or a Dial on a Message channel)",
                    target,
                    "set message_context on the guest endpoint to a context nobody defines "
                    "(sipctl does so: 'sipctl apply' restores it)",
                    sent=f"MESSAGE to sip:{exchange.user}@...",
                    got=exchange.summary(),
                )
            )
    return findings


def enumeration_findings(
    method: str,
    declared: Sequence[Exchange],
    undeclared: Sequence[Exchange],
    target: str,
) -> list[Finding]:
    """Declared and undeclared names must get the same answers in the same time."""
    d_codes = {e.final for e in declared if e.final is not None}
    u_codes = {e.final for e in undeclared if e.final is not None}
    if not d_codes or not u_codes:
        return []
    sample = ", ".join(sorted({e.summary() for e in [*declared[:2], *undeclared[:2]]}))
    if d_codes != u_codes:
        return [
            Finding(
                "enumeration-by-code",
                "medium",
                "enumeration",
                f"{method} tells declared names from undeclared ones: declared get "
                f"{_codes(d_codes)}, undeclared get {_codes(u_codes)}",
                target,
                _enumeration_fix(method),
                sent=f"{method} to {len(declared)} declared and {len(undeclared)} undeclared names",
                got=sample,
            )
        ]
    d_times = [e.rtt_ms for e in declared if e.rtt_ms is not None]
    u_times = [e.rtt_ms for e in undeclared if e.rtt_ms is not None]
    if len(d_times) < 2 or len(u_times) < 2:
        return []
    apart = min(d_times) - max(u_times), min(u_times) - max(d_times)
    if max(apart) <= TIMING_MARGIN_MS:
        return []
    return [
        Finding(
            "enumeration-by-timing",
            "medium",
            "enumeration",
            f"{method} answers declared names in {statistics.median(d_times):.0f} ms and "
            f"undeclared ones in {statistics.median(u_times):.0f} ms: the time tells them apart",
            target,
            _enumeration_fix(method),
            sent=f"{method} to {len(declared)} declared and {len(undeclared)} undeclared names",
            got=f"declared {sorted(round(t) for t in d_times)} ms, "
            f"undeclared {sorted(round(t) for t in u_times)} ms",
        )
    ]


def _codes(codes: set[int]) -> str:
    return "/".join(str(c) for c in sorted(codes))


def _enumeration_fix(method: str) -> str:
    if method == "INVITE":
        return (
            "a declared name nobody answers must end like an undeclared one: answered, the "
            "sound, hung up (asterisk.unavailable_sound)"
        )
    return (
        "answer every name alike: unknown_callers: reject (the catch-all), and no endpoint "
        "named like a declared name"
    )


def version_leaks(servers: Mapping[str, str], managed: bool = False) -> list[Finding]:
    """A Server/User-Agent header carrying a version number (``Asterisk PBX 22.1.0``).

    ``managed``: sipctl owns ``user_agent`` (``asterisk.server_header``), so an apply fixes it.
    """
    from sipctl.reconciler.render.asterisk import carries_version

    fix = (
        "'sipctl apply': asterisk.server_header sets user_agent in pjsip.conf's [global] "
        "(something changed it since; 'sipctl drift' names it)"
        if managed
        else "set asterisk.server_header to no-version (sipctl's default) or to a text "
        "without a version and apply: sipctl then owns user_agent in pjsip.conf's [global]"
    )
    findings: list[Finding] = []
    for where, header in sorted(servers.items()):
        if carries_version(header):
            findings.append(
                Finding(
                    "version-leak",
                    "low",
                    "exposure",
                    f"the PBX tells every stranger its software and version: {header!r}",
                    where,
                    fix,
                    sent="any SIP request",
                    got=f"Server: {header}",
                )
            )
    return findings


# Measured on Asterisk 22.10 with sipvicious_svwar 0.3.8 (-e100-110 over UDP; the audit's own
# probe over TCP and TLS), the phones 105/106 registered by From user (docs/enumeration.md):
# - stock (identify_by=username,ip): a From naming a phone is challenged (401), any other
#   lands on the guest endpoint (OPTIONS 200, INVITE answered, REGISTER 403): svwar's OPTIONS
#   and INVITE scans list 101, 105, 106 (its REGISTER scan stops at the 403 of its first,
#   unknown probe, but the 401/403 difference is there for any scanner that goes on);
# - allow_unauthenticated_options=yes on the phones: OPTIONS hidden, INVITE/REGISTER not;
# - identify_by=ip (+ a type=identify per phone): all hidden, but a phone's REGISTER gets 404
#   (22.10's registrar finds the AOR only through username/auth_username): write
#   identify_by=ip,auth_username, and the phone registers from its address (with the default
#   order, anonymous comes before auth_username: a forged Authorization header tells
#   nothing); identify_by=auth_username alone: all hidden, but the phones' first REGISTER
#   carries no Authorization, lands on the guest endpoint and gets 403;
# - endpoint_identifier_order alone: identifiers it leaves out are tried after the listed
#   ones, and the anonymous one takes every request the others leave;
# - unknown_callers: challenge (the guest endpoint found only by a request URI naming a
#   declared name, and named other than anonymous): every request to anything else gets
#   res_pjsip's artificial endpoint, a 401 like a phone's: all hidden on UDP, TCP and TLS,
#   and the phones still register, call, and ring for guests.
_CHALLENGE = (
    "set asterisk.unknown_callers: challenge in the spec and apply: guests then reach the "
    "declared names only, and every other request is challenged (401) like an office phone's "
    "extension, so none tells them apart (the phones keep registering by From user; "
    "strangers calling an undeclared name get the 401 instead of the reject sound). "
    "If the spec already says so: another endpoint named 'anonymous' takes what sipctl's "
    "guest endpoint leaves ('pjsip show endpoints'); remove it"
)
_BY_ADDRESS = (
    "identify the phones by address instead of the From user: identify_by=ip,auth_username "
    "on each phone's endpoint and a type=identify section per phone (match=its address); "
    "ip alone is not enough for a phone that registers (Asterisk 22.10's registrar then "
    "answers its REGISTER 404, 'AOR '' not found'), and auth_username alone is no fix (the "
    "phone's first REGISTER lands on the guest endpoint and gets 403)"
)
IDENTITY_FIX = {
    "OPTIONS": (
        f"{_CHALLENGE}. Or, on the admin's phone endpoints in pjsip.conf: "
        "allow_unauthenticated_options=yes (hides OPTIONS only), or " + _BY_ADDRESS
    ),
    "INVITE": f"{_CHALLENGE}. Or, on the admin's phone endpoints in pjsip.conf: {_BY_ADDRESS}",
}
IDENTITY_FIX["REGISTER"] = IDENTITY_FIX["INVITE"]


def _enumeration_by_identity(
    asked: str,
    sent: str,
    known: Sequence[Exchange],
    unknown: Sequence[Exchange],
    target: str,
    fix: str,
    details: tuple[str, ...] = (),
) -> list[Finding]:
    """The finding when known and unknown extensions got different final answers to what
    was ``asked`` (in words; ``sent`` as the probe): none when the answers were the same,
    or one side got none, so nothing is told apart."""
    k_codes = {e.final for e in known if e.final is not None}
    u_codes = {e.final for e in unknown if e.final is not None}
    if not k_codes or not u_codes or k_codes == u_codes:
        return []
    tried = ", ".join(sorted({e.user for e in known}))
    return [
        Finding(
            "enumeration-by-identity",
            "medium",
            "enumeration",
            f"{asked} tells the internal extensions {tried} from unknown ones: known get "
            f"{_codes(k_codes)}, unknown get {_codes(u_codes)}",
            target,
            fix,
            sent=f"{sent} for {len(known)} known and {len(unknown)} unknown extensions",
            got=", ".join(sorted({e.summary() for e in [*known[:2], *unknown[:2]]})),
            details=details,
        )
    ]


def identity_findings(
    method: str, known: Sequence[Exchange], unknown: Sequence[Exchange], target: str
) -> list[Finding]:
    """sipvicious' test: the extension in the request URI and in From. A known extension
    (an endpoint of that name) and an unknown one must get the same answer."""
    return _enumeration_by_identity(
        f"{method} with the extension in From and the request URI (as sipvicious svwar does)",
        f"{method} sip:EXT@... From: sip:EXT@...",
        known,
        unknown,
        target,
        IDENTITY_FIX[method],
        details=admin_lines(method, sorted({e.user for e in known})),
    )


# OPTIONS to a declared name with the extension elsewhere (audit.run._identity_variants).
IDENTITY_VARIANTS = ("from", "auth")
# Measured on Asterisk 22.10 (tests/test_hosting_challenge.py): with unknown_callers:
# challenge and the default order (ip,username,anonymous, then request_uri), an OPTIONS to a
# declared name with a phone's extension in From is identified by the username identifier
# first (401) and with an unknown From reaches the guest endpoint (200). With request_uri
# before username the declared name finds the guest endpoint whatever the From: 200 for
# all; phones still register (a REGISTER's URI names no user) and call extensions.
_ORDER_FIX = (
    "set asterisk.unknown_callers: challenge, and put request_uri before username in the "
    "[global] section of pjsip.conf: endpoint_identifier_order=ip,request_uri,username,"
    "anonymous, then restart Asterisk (the identifier modules take the order when they "
    "load; 'module reload' is not enough). A declared name then finds the guest endpoint "
    "whatever the From; phones keep registering and calling extensions (a phone that "
    "calls a declared name is then a guest for that call). Or " + _BY_ADDRESS
)
IDENTITY_VARIANT_FIX = {
    "from": _ORDER_FIX,
    "auth": (
        "take auth_username out of endpoint_identifier_order in pjsip.conf's [global], or put "
        "it after anonymous (identifiers left out are tried after the listed ones), then "
        "restart Asterisk"
    ),
}
_VARIANT_SENT = {
    "from": "OPTIONS sip:{name}@... From: sip:EXT@...",
    "auth": 'OPTIONS sip:{name}@... Authorization: Digest username="EXT" (forged)',
}


def forged_authorization(ext: str, name: str, domain: str) -> str:
    """An ``Authorization`` header naming ``ext`` with a made-up response: it proves
    nothing, but the auth_username identifier picks the endpoint by its user name."""
    return (
        f'Authorization: Digest username="{ext}", realm="asterisk", nonce="0", '
        f'uri="sip:{name}@{domain}", response="{"0" * 32}", algorithm=MD5'
    )


def identity_variant_findings(
    variant: str,
    declared: str,
    known: Sequence[Exchange],
    unknown: Sequence[Exchange],
    target: str,
) -> list[Finding]:
    """``declared`` called with a known extension elsewhere (``IDENTITY_VARIANTS``) must get
    the same answer as with an unknown one (the exchanges carry the extension tried)."""
    where = "in From" if variant == "from" else "in a forged Authorization header"
    return _enumeration_by_identity(
        f"OPTIONS to the declared name {declared!r} with the extension {where}",
        _VARIANT_SENT[variant].format(name=declared),
        known,
        unknown,
        target,
        IDENTITY_VARIANT_FIX[variant],
    )


def admin_lines(method: str, extensions: Sequence[str]) -> tuple[str, ...]:
    """The exact lines the admin's way takes, per phone endpoint found (``/`` ends a line;
    ``[NAME](+)`` adds keys to the existing section ``[NAME]``)."""
    if method == "OPTIONS":
        return (
            "the admin's way for OPTIONS alone, appended to pjsip.conf:",
            *(f"[{ext}](+) / allow_unauthenticated_options=yes" for ext in extensions),
        )
    return (
        "the admin's way, appended to pjsip.conf (each phone then calls from that address):",
        *(
            f"[{ext}](+) / identify_by=ip,auth_username / [{ext}-address] / type=identify / "
            f"endpoint={ext} / "
            f"match=<the address of {ext}'s phone>"
            for ext in extensions
        ),
    )
