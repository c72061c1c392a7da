"""What the Asterisk layer wants on the PBX, derived from the spec: a pure function.

sipctl owns, in ``asterisk.config_dir``:

- ``pjsip_sipctl.conf`` (``sip_sipctl.conf`` for chan_sip) and ``extensions_sipctl.conf``,
  whole;
- exactly one ``#include`` line for each of them in its parent (``pjsip.conf``/``sip.conf``,
  ``extensions.conf``);
- the keys ``rtpstart``/``rtpend`` of ``rtp.conf`` ``[general]``;
- with ``transports.wss``, the TLS listener keys of ``http.conf``'s first ``[general]``
  (``HTTP_KEYS``; how they are edited: ``providers/asterisk/http_conf.py``), and in
  ``pjsip_sipctl.conf`` the browsers' guest endpoint and the WSS transport object.

Measured on Asterisk 22 and built in here:

- No ``[global]`` is written. A second ``type=global`` object makes res_pjsip log "At most
  one pjsip.conf type=global object" and replace the admin's global settings wholesale; a
  second ``[global]`` section makes all of pjsip.conf fail to load; ``[global](+)`` fails
  where the admin has no ``[global]``. The default ``endpoint_identifier_order`` is
  ``ip,username,anonymous``, and an identifier missing from an admin's own list is still
  tried after the listed ones, so guests are found without touching ``[global]``; the
  provider refuses a plan where the live order puts ``anonymous`` before ``ip`` or
  ``username`` (registered phones would become guests).
- The dialled name is the caller's own text, and PJSIP unescapes it: ``%0A`` becomes a
  newline. Wherever Asterisk prints the name, the caller can write whole lines of their own
  into the ``messages`` log, including a "Wrong call" line with any address, which fail2ban
  then bans. Asterisk prints it in two places we can reach: ``Log()`` starts its line with
  ``Ext. <name>``, and a name no extension matches gets the NOTICE "... to extension
  '<name>' rejected because extension not found ...". So no unknown name may stay unknown,
  and none may be the extension that logs:

  - the catch-all looks the name up once more in lower case (``asterisk_lookup``: a
    declared name dialled in another case), and sends every other name to
    ``sipctl#wrong-name``, which logs "Wrong call". The line then names that fixed
    extension. ``#`` is in no user name (and no caller
    reaches it but by dialling it, which is a wrong call too); ``-`` alone would not do:
    Asterisk ignores ``-`` in extension names, so ``sipctl-wrong-name`` *is* the valid user
    name ``sipctlwrongname`` ("already in use by aliased extension", measured);
  - the catch-all pattern takes every name whatever its characters (control bytes, NUL,
    which PJSIP turns into ``s``, UTF-8, 80 characters): ``_.``. It is written ``_-.``: the
    same pattern (``-`` is ignored), without pbx_config's warning about the literal string
    ``_.`` on every reload. The two traps that warning is about are closed here: ``_.``
    matches ``h``, so ``h`` (and ``i``, ``t``, ``T``, ``e``, the other names the PBX core
    jumps to on its own) are exact extensions that only hang up, and an exact name beats a
    pattern, so no call ends with a false "Wrong call" line; and ``_.`` lends its later
    priorities to extensions whose own ran out, so the catch-all has one priority only (its
    lookup is one ``Goto``) and every user extension still ends with its own last step (a
    failed ``Dial`` goes on to ``sipctl#unavailable``).
    ``s`` (a request without a user part) and ``a``/``o`` are left to the catch-all: a
    caller who names no one is a wrong call. Only a name of nothing but dashes escapes
    it (it reads as empty): Asterisk answers 404 with its NOTICE, which then quotes dashes.
    ``unknown_callers: not-found`` has no catch-all, so there the NOTICE quotes every
    name; the plan says so when fail2ban is on (``not_found_log_note``).
- A guest's MESSAGE (res_pjsip_messaging) runs the endpoint's context on a Message channel:
  the catch-all logged "Wrong call IP=" without an address, a declared name logged "Good
  call" and tried to Dial the phone. ``message_context`` names a context that does not
  exist, so a MESSAGE that reaches a guest endpoint is answered 404 and logs nothing. A
  stranger's MESSAGE (and every method but INVITE and OPTIONS) no longer reaches a guest
  endpoint at all (REFUSED_REQUESTS): 401, logged with the address for fail2ban.
- The "Good call" line names a declared user: an exact extension matches only that name,
  except that Asterisk skips ``-`` in what was dialled too (``direc-tor`` rings
  ``director`` and is logged so; ``Direc-tor``, looked up in lower case, is a wrong call);
  no newline can get there. The From header, its display
  name and the Call-ID appear in PJSIP's NOTICE lines as the caller sent them, ``%0A``
  unexpanded; a raw line break in a header makes PJSIP drop the request with a WARNING
  that quotes no header value (all measured on 22).
- ``CHANNEL(pjsip,remote_addr)`` is ``ip:port`` (``[v6]:port``): the port is popped and the
  brackets filtered away, so the log line ends with the bare address fail2ban can match.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from sipctl.reconciler.asterisk_conf import (
    MAX_LINE,
    DialplanWriter,
    normalize_dialplan,
    normalize_sections,
)
from sipctl.reconciler.render.asterisk_lookup import lookup_steps
from sipctl.reconciler.render.asterisk_outbound import (
    NOWHERE_CONTEXT,
    STRANGER_ENDPOINT_LINES,
    endpoint_lines,
    outbound_dialplan,
)
from sipctl.reconciler.render.asterisk_rooms import (
    CONFBRIDGE_FILE,
    CONFBRIDGE_PARENT,
    asterisk_section,
    confbridge_text,
    guest_room_steps,
    has_rooms,
    rooms_dialplan,
)
from sipctl.reconciler.resources import Address, Resource
from sipctl.schemas.names import (
    NO_VERSION,
    UNMANAGED,
    asterisk_name,
    canonical_name,
    case_pattern,
)

if TYPE_CHECKING:
    from sipctl.schemas.spec import Asterisk, RingGroup, Spec

LAYER = "asterisk"
PJSIP_FILE = "pjsip_sipctl.conf"
SIP_FILE = "sip_sipctl.conf"
DIALPLAN_FILE = "extensions_sipctl.conf"
RTP_FILE = "rtp.conf"
PARENTS = {
    PJSIP_FILE: "pjsip.conf",
    SIP_FILE: "sip.conf",
    DIALPLAN_FILE: "extensions.conf",
    CONFBRIDGE_FILE: CONFBRIDGE_PARENT,
}
HTTP_FILE = "http.conf"
# The keys of http.conf's first [general] that sipctl owns with transports.wss. Asterisk
# starts no server at all without a bindaddr, so one is part of the set, but any value the
# admin chose satisfies it (sipctl's default keeps plain HTTP on loopback).
HTTP_KEYS = ("enabled", "bindaddr", "tlsenable", "tlsbindaddr", "tlscertfile", "tlsprivatekey")
HTTP_ANY_VALUE = frozenset({"bindaddr"})
HTTP_DEFAULT_BINDADDR = "127.0.0.1"
# The endpoint res_pjsip_endpoint_identifier_anonymous hands every request no other
# identifier took, whatever its method (and "anonymous@<From host>" first): sipctl writes
# none (older versions did); one in the admin's pjsip.conf would take sipctl's guests.
ANONYMOUS_ENDPOINT = "anonymous"
# The plain SIP guests' endpoint. Not "anonymous": with it a guest's SUBSCRIBE, PUBLISH,
# MESSAGE, REFER, NOTIFY, INFO, ... reached the guest endpoint and were refused with lines
# that name no address (603 "Subscriptions not permitted for endpoint anonymous", 489, 404,
# 501; measured on 22), so fail2ban never counted them. It is found by one identify
# section instead (identify_by keeps the From user "sipctl-guest" from selecting it):
# - unknown_callers reject/not-found: the requests a guest needs, by the method of CSeq
#   (GUEST_REQUESTS). Any other request is refused first (REFUSED_REQUESTS): Asterisk
#   answers 401 and logs "Request 'SUBSCRIBE' from ... failed for '<addr>:port' ... - Not
#   match Endpoint ACL", which sipctl's filter counts. In-dialog requests (BYE, re-INVITE,
#   INFO, ACK, CANCEL) follow their dialog's endpoint and are never identified again.
# - challenge: a declared name in the request URI (CHALLENGE_GUEST_IDENTIFY).
GUEST_ENDPOINT = "sipctl-guest"
GUEST_IDENTIFY = "sipctl-guest-requests"
# INVITE (a call) and OPTIONS (answered as before: every name 200 with the catch-all, so it
# tells a scanner nothing; left unbanned because `sipctl verify`, monitors and a far PBX's
# keepalives send it from addresses nobody declared). A POSIX ERE on CSeq's value, which
# pjsip prints as "<number> <METHOD>". The CSeq is the caller's text and no identifier
# reads the request line: a SUBSCRIBE, NOTIFY, PUBLISH or REFER that writes "1 INVITE" is
# still refused by its Event or Refer-To header (REFUSED_REQUESTS); a MESSAGE, INFO, UPDATE,
# PRACK or unknown method that does reaches the guest endpoint and is refused there without
# the address (501; measured on 22, tests/test_guest_methods.py). No scanner tried does.
GUEST_REQUESTS = "CSeq: /^[0-9]+ (INVITE|OPTIONS)$/"
# The browsers' endpoint (the click-to-call page's callers). Not "anonymous@webrtc.<domain>":
# res_pjsip_endpoint_identifier_anonymous handed that one every request whose From host was
# webrtc.<domain>, whatever its method, and SUBSCRIBE (603), PUBLISH (489), REGISTER (403),
# MESSAGE, NOTIFY, REFER, INFO, UPDATE, PRACK and unknown methods (501) were refused with no
# line naming the address (measured on 22). It is found by the header identifier instead,
# like the plain guests' endpoint, from the page's From host (BROWSERS_IDENTIFY).
BROWSERS_ENDPOINT = "sipctl-browsers"
BROWSERS_IDENTIFY = "sipctl-browsers-requests"
# res_pjsip_endpoint_identifier_ip's header identifier tries the identify sections in the
# order of their names (sorcery returns them sorted by id) and stops at the first that
# matches. REFUSED_REQUESTS' sections sort before BROWSERS_IDENTIFY and GUEST_IDENTIFY ('0'
# before letters) and hand what they match to REFUSED_ENDPOINT, whose ACL denies every
# address: res_pjsip then logs "Request 'M' from ... failed for '<addr>:port' ... - Not match
# Endpoint ACL" (the jail counts it) and answers 401 as for no endpoint at all. An endpoint
# that is found, not a missing one: identification stops there, so with unknown_callers:
# challenge the request_uri identifier, tried after the header one, never hands such a
# request to the guests' endpoint either (a missing endpoint let it go on, and logged a
# WARNING without the address besides). One header per section: an "or" of them.
REFUSED_ENDPOINT = "sipctl-refused"
GUEST_METHODS = ("INVITE", "OPTIONS")
# Never refused: an ACK is identified like a new request when its INVITE was refused before
# a dialog existed (a 404), and refusing it logged a counted line for every such call
# (measured on 22). Asterisk logs no unidentified ACK, and answers none.
UNREFUSED_METHODS = (*GUEST_METHODS, "ACK")
CHALLENGE_GUEST_IDENTIFY = "sipctl-guest-names"
GUEST_CODECS = "ulaw,alaw,g722,gsm"
# With asterisk.video; without it a video offer is answered with the video stream declined.
VIDEO_CODECS = "vp8,h264"
# Browsers offer Opus, PCMU and PCMA. Measured on Asterisk 22 (default codec prefs): the
# browser's leg is answered in the first codec of this list that it offered, before the
# phone is known; the phone is offered that codec first plus its own. So with Opus first, a
# phone that has Opus gets it end to end (no transcoding), and a ulaw-only phone is bridged
# through codec_opus_open_source (without that module its calls fail: plan checks it).
WEBRTC_CODECS = "ulaw,alaw"
WEBRTC_OPUS_CODECS = "opus,ulaw,alaw"
WEBRTC_HOST_LABEL = "webrtc"
WSS_TRANSPORT = "sipctl-wss"

# Logs "Wrong call": every unknown name jumps here (see the module docstring for the "#").
WRONG_NAME_EXTENSION = "sipctl#wrong-name"
# A declared name nobody answered: the same end as a wrong name, logged in other words.
UNAVAILABLE_EXTENSION = "sipctl#unavailable"
# "_." (any name of one or more characters), spelled so that pbx_config does not warn.
CATCH_ALL_PATTERN = "_-."
# Where the PBX core sends a call whose extension does not exist (not-found: invalid_steps).
INVALID_EXTENSION = "i"
# The names Asterisk's PBX core jumps to by itself (hangup, invalid, timeouts, exception).
ENDING_EXTENSIONS = ("h", "i", "t", "T", "e")

# The call pickup code (features.conf pickupexten, *8 by default) is answered by chan_pjsip
# itself before any dialplan runs: a guest who dialled it got 403 and no line for fail2ban
# (measured on 22). chan_pjsip compares the name with the pickup code of the new channel
# (call_pickup_incoming_request), and set_var writes FEATURE(pickupexten) of the guest's
# channel only: an empty code, which no dialled name equals (an empty user part is "s"), so
# *8 is a name like any other and the catch-all logs it. The office phones keep the admin's.
GUEST_NO_PICKUP = "set_var=FEATURE(pickupexten)="

HEADER = "; Managed by sipctl: this file is replaced on every apply. Edit the spec instead.\n"


def channel_file(section: Asterisk) -> str:
    return PJSIP_FILE if section.channel == "pjsip" else SIP_FILE


def include_line(file_name: str) -> str:
    return f"#include {file_name}"


# --- pjsip_sipctl.conf / sip_sipctl.conf ----------------------------------------------------


def pjsip_text(spec: Spec) -> str:
    section = asterisk_section(spec)
    challenge = section.unknown_callers == "challenge"
    if challenge and spec.hosting is not None:
        head = [
            "; Unauthenticated callers of a customer's declared sip:<name>@<its domain> land",
            f"; in context {section.guest_context} (unknown_callers: challenge). Any other",
            "; request finds no endpoint and is challenged (401) like an office phone's extension.",
        ]
    elif challenge:
        head = [
            f"; Unauthenticated callers of a declared sip:<name>@{spec.domain} land in context",
            f"; {section.guest_context} (unknown_callers: challenge). Any other request finds",
            "; no endpoint and is challenged (401) like an office phone's extension.",
        ]
    else:
        head = [
            f"; Unauthenticated calls to sip:<name>@{spec.domain} land in context",
            f"; {section.guest_context} (the header identifier, tried after ip and username, so",
            "; registered phones are still identified as themselves). A stranger's other",
            "; requests (SUBSCRIBE, PUBLISH, MESSAGE, ...) are refused: 401, and Asterisk",
            "; logs them with the caller's address for fail2ban.",
        ]
    lines = [
        HEADER.rstrip("\n"),
        *head,
        f"[{GUEST_ENDPOINT}]",  # one name in every mode; its identify section differs
        *_guest_endpoint_lines(section, GUEST_CODECS),
        f"identify_by={'request_uri' if challenge else 'header'}",
        *_sdes_lines(spec),
    ]
    if challenge:
        lines += _challenge_identify_lines(spec)
    else:
        lines += [
            "",
            f"[{GUEST_IDENTIFY}]",
            "type=identify",
            f"endpoint={GUEST_ENDPOINT}",
            f"match_header={GUEST_REQUESTS}",
        ]
    lines += refused_identify_lines()
    lines += endpoint_lines(spec, _sdes_lines(spec))
    if spec.transports.wss is not None:
        lines += _webrtc_lines(spec)
    if section.manage_transports:
        lines.extend(_pjsip_transports(spec))
    return "\n".join(lines) + "\n"


def _guest_endpoint_lines(section: Asterisk, codecs: str) -> list[str]:
    """The settings every guest endpoint shares (the plain SIP one and the browsers')."""
    return [
        "type=endpoint",
        f"context={section.guest_context}",
        "disallow=all",
        f"allow={guest_codecs(section, codecs)}",
        "direct_media=no",
        "rtp_symmetric=yes",
        "force_rport=yes",
        "rewrite_contact=yes",
        # Without this, a name that begins like a longer pattern gets 484 Address Incomplete
        # and the caller is asked to dial more.
        "allow_overlap=no",
        # No MESSAGE into the guest dialplan ("Wrong call IP=" with no address, or a Dial of
        # the user's phone), no SUBSCRIBE, no REFER (asterisk_outbound says why).
        *STRANGER_ENDPOINT_LINES,
        GUEST_NO_PICKUP,
    ]


def challenge_identify_wanted(spec: Spec) -> bool:
    """Whether the spec's pjsip_sipctl.conf holds a guests' identify section."""
    section = spec.asterisk
    return (
        section is not None
        and section.unknown_callers == "challenge"
        and section.ensure == "present"
        and bool(_guest_names_by_domain(spec))
    )


def challenge_identify_sections(spec: Spec) -> list[str]:
    """The names of the guests' identify sections: one company's, or each customer's of a
    host, in as many parts as its names take (``name_groups``)."""
    if not challenge_identify_wanted(spec):
        return []
    return [
        identify_section(domain, part)
        for domain, names in _guest_names_by_domain(spec).items()
        for part, _ in enumerate(name_groups(names, domain), start=1)
    ]


def guest_identify_sections(spec: Spec) -> list[str]:
    """The identify sections that find the plain SIP guests' endpoint (challenge: by the
    declared names; otherwise the one by the request's method)."""
    section = spec.asterisk
    if section is None or section.ensure != "present" or section.channel != "pjsip":
        return []
    if section.unknown_callers == "challenge":
        return challenge_identify_sections(spec)
    return [GUEST_IDENTIFY]


def identify_section(domain: str | None, part: int = 1) -> str:
    """The guests' identify section of the names at ``domain`` (None: one company's), its
    ``part``-th when they take several (``name_groups``): ``sipctl-guest-names-a.example``
    (a digest of a long domain: names.asterisk_name), then ``..._2``. No domain holds '_',
    so no part is another customer's section."""
    suffix = "" if part == 1 else f"_{part}"
    if domain is None:
        return CHALLENGE_GUEST_IDENTIFY + suffix
    return asterisk_name(f"{CHALLENGE_GUEST_IDENTIFY}-", domain.lower() + suffix)


_URI_OPTION = "match_request_uri="


def name_groups(names: Sequence[str], domain: str | None) -> list[list[str]]:
    """``names`` (sorted, once each) in as few groups as keep each group's
    ``match_request_uri`` line within what Asterisk reads (``MAX_LINE``): a customer's 120
    names of 44 letters made a line of 21,000 characters, which Asterisk skipped, and every
    one of its guests was challenged while apply said all was well. One name's pattern is at
    most 252 characters (63 letters, schemas/names.py), so every group holds one at least."""
    room = MAX_LINE - len(_URI_OPTION) - len(guest_uri_pattern([], domain))
    groups: list[list[str]] = [[]]
    used = 0
    for name in sorted(set(names)):
        cost = len(any_case_pattern(name)) + (1 if groups[-1] else 0)  # '|' between
        if groups[-1] and used + cost > room:
            groups.append([])
            used, cost = 0, cost - 1
        groups[-1].append(name)
        used += cost
    return groups


def _guest_names_by_domain(spec: Spec) -> dict[str | None, list[str]]:
    """The names guests may call, by the domain they must be called at (None: any domain,
    a spec of one domain; a host's customers each at their own)."""
    if spec.hosting is None:
        return {None: _names(spec)} if _names(spec) else {}
    return {customer.domain: _names(customer) for customer in spec.customers if _names(customer)}


def _names(spec: Spec) -> list[str]:
    return [*spec.users, *spec.rooms]


def _challenge_identify_lines(spec: Spec) -> list[str]:
    """``unknown_callers: challenge``: the guest endpoint is found by the request URI naming
    a declared name (res_pjsip_endpoint_identifier_ip's request_uri identifier), so any other
    request finds no endpoint and gets res_pjsip's artificial endpoint: a 401 challenge, the
    same answer an office phone's extension gives. Measured on Asterisk 22 with sipvicious
    svwar: OPTIONS, INVITE and REGISTER then find no extension, and phones identified by
    their From user still register and call (docs/enumeration.md). A host has one section
    per customer (its names at its domain: res_pjsip tries every identify section), so a
    customer's arrival or departure touches that customer's lines only."""
    lines: list[str] = []
    for domain, names in _guest_names_by_domain(spec).items():
        for part, group in enumerate(name_groups(names, domain), start=1):
            lines += [
                "",
                f"[{identify_section(domain, part)}]",
                "type=identify",
                f"endpoint={GUEST_ENDPOINT}",
                f"{_URI_OPTION}{guest_uri_pattern(group, domain)}",
            ]
    return lines


def guest_uri_pattern(names: Sequence[str], domain: str | None = None) -> str:
    """The one rule of what a guest may call under ``unknown_callers: challenge``: a POSIX
    extended regex (Asterisk compiles it with REG_EXTENDED | REG_NOSUB, without REG_ICASE)
    for a printed request URI whose user part is one of ``names``, in any case. With
    ``domain`` (a host's customer) the URI's host must be that domain, in any case, with or
    without a trailing dot, followed by a port, a parameter or nothing: a name of one
    customer called at another's domain (or at the PBX's address) finds no endpoint.
    Measured on Asterisk 22: the URI is printed as the caller wrote its host (case, trailing
    dot, port, ;transport=) and with the user part unescaped (tests/test_hosting_challenge.py)."""
    alternatives = "|".join(any_case_pattern(name) for name in sorted(set(names)))
    if domain is None:
        return f"/^sips?:({alternatives})@/"
    # The host ends where a character no host name holds begins (pjsip's host characters
    # are letters, digits, '-', '.' and '_'): ':' of a port, ';' of a parameter, or the end.
    # Not (:|;|$): Asterisk's config reader takes ';' for a comment and cut the pattern
    # there (measured on 22: the identify section then never matched).
    return f"/^sips?:({alternatives})@{any_case_pattern(domain)}[.]?([^-._0-9A-Za-z]|$)/"


def any_case_pattern(text: str) -> str:
    """``text`` (a user name or a host name) as a POSIX ERE that matches it in any case."""
    # A user name is [A-Za-z0-9+][A-Za-z0-9._+*~]* (schemas/names.py), a host name letters,
    # digits, '-' and '.': letters become both cases, the three regex characters a bracket
    # of their own.
    out = []
    for char in text:
        if char.isalpha():
            out.append(f"[{char.lower()}{char.upper()}]")
        elif char in ".+*":
            out.append(f"[{char}]")
        else:
            out.append(char)
    return "".join(out)


def encrypts_media(spec: Spec) -> bool:
    """True when guests who offer SRTP get it: with SIP over TLS (its keys travel in the
    SDP, SDES, so encrypted signalling is what makes them secret)."""
    section = spec.asterisk
    return (
        spec.transports.tls is not None
        and section is not None
        and section.tls is not None
        and section.channel == "pjsip"
    )


def _sdes_lines(spec: Spec) -> list[str]:
    """SDES-SRTP for the plain SIP guests when the spec has TLS.

    Measured on Asterisk 22: ``media_encryption=sdes`` alone answers a plain RTP offer 488;
    with ``media_encryption_optimistic=yes`` an SRTP offer (RTP/SAVP, a crypto line) is
    answered SRTP and a plain one plain, so UDP and TCP callers still get through. One
    guest endpoint serves every transport (the anonymous identifier cannot tell them
    apart), so a UDP caller who offers SRTP gets it too.
    """
    if not encrypts_media(spec):
        return []
    tls = spec.transports.tls
    if tls is not None and tls.media_encryption == "required":
        # Every guest must offer SRTP: plain offers get 488 over any transport. Measured on
        # 22: the dialplan cannot tell before answering (CHANNEL(rtp,...) says "no audio
        # media/RTP session" until then), and the anonymous identifier cannot pick an
        # endpoint by transport, so "only over TLS" is not something Asterisk can do.
        return ["media_encryption=sdes"]
    return ["media_encryption=sdes", "media_encryption_optimistic=yes"]


# What a guest endpoint must never be handed, whatever else the request says (REFUSED_ENDPOINT):
# a method other than UNREFUSED_METHODS in CSeq; and, for a request that writes "1 INVITE" in
# CSeq over another method (the CSeq is the caller's text, and no identifier reads the
# request line), the headers only other methods carry: Event (SUBSCRIBE, NOTIFY, PUBLISH)
# and Refer-To (REFER).
REFUSED_REQUESTS = {
    "sipctl-0-refused-method": "CSeq: /^[0-9]+ {methods}/",
    "sipctl-0-refused-event": "Event: /./",
    "sipctl-0-refused-refer": "Refer-To: /./",
}


def refused_identify_lines() -> list[str]:
    """The identify sections that keep every request no guest needs off the guest endpoints
    (REFUSED_ENDPOINT, REFUSED_REQUESTS)."""
    lines = [
        "",
        "; Requests no guest needs: refused by this endpoint's ACL (401, and a line with the",
        "; caller's address). Its identify sections sort before the guests' own (Asterisk",
        "; tries them by name, first match wins).",
        f"[{REFUSED_ENDPOINT}]",
        "type=endpoint",
        f"context={NOWHERE_CONTEXT}",
        "identify_by=header",
        "deny=0.0.0.0/0.0.0.0",
        "deny=::/0",
        "disallow=all",
        *STRANGER_ENDPOINT_LINES,
    ]
    for name, header in REFUSED_REQUESTS.items():
        match = header.format(methods=other_words_pattern(UNREFUSED_METHODS))
        lines += ["", f"[{name}]", "type=identify", f"endpoint={REFUSED_ENDPOINT}",
                  f"match_header={match}"]  # fmt: skip
    return lines


def other_words_pattern(words: Sequence[str]) -> str:
    """A POSIX ERE, anchored where it starts and open where it ends, for every text that does
    not begin with one of ``words`` followed by the end: ``INVITE`` and ``OPTIONS`` do not
    match, ``INVITEX``, ``INFO``, ``OPT`` and ``SUBSCRIBE`` do (there is no "not" in ERE)."""
    if "" in words and len(words) == 1:
        return "."  # the word is complete: any more character makes another one
    alternatives = [] if "" in words else ["$"]
    firsts = sorted({word[0] for word in words if word})
    alternatives.append(f"[^{''.join(firsts)}]")
    for first in firsts:
        rest = [word[1:] for word in words if word[:1] == first]
        alternatives.append(first + other_words_pattern(rest))
    return "(" + "|".join(alternatives) + ")"


def browsers_identify_lines(spec: Spec) -> list[str]:
    """The browsers' endpoint is found by the From host the click-to-call page sends
    (``sip:guest@webrtc.<domain>``, in any case), tried after REFUSED_REQUESTS."""
    host = any_case_pattern(webrtc_from_host(spec.domain))
    return [
        f"[{BROWSERS_IDENTIFY}]",
        "type=identify",
        f"endpoint={BROWSERS_ENDPOINT}",
        # The host ends where a character no host name holds begins (see guest_uri_pattern).
        f"match_header=From: /sips?:[^@]*@{host}([^-._0-9A-Za-z]|$)/",
    ]


def webrtc_from_host(domain: str) -> str:
    """The host of the From URI the click-to-call page sends (``sip:guest@<this>``)."""
    return f"{WEBRTC_HOST_LABEL}.{domain}"


def _webrtc_lines(spec: Spec) -> list[str]:
    section = asterisk_section(spec)
    return [
        "",
        "; Browsers of the click-to-call page (From sip:guest@"
        f"{webrtc_from_host(spec.domain)}): the same guest context,",
        "; with DTLS-SRTP, ICE, AVPF and rtcp-mux (webrtc=yes). No password: a browser can",
        "; reach the guest context and nothing else, like any other caller.",
        f"[{BROWSERS_ENDPOINT}]",
        *_guest_endpoint_lines(section, webrtc_codecs(spec)),
        "identify_by=header",
        "webrtc=yes",
        "",
        *browsers_identify_lines(spec),
        "",
        "; SIP over secure WebSocket: Asterisk's HTTPS server (http.conf) listens, path /ws;",
        "; res_pjsip_transport_websocket needs a transport object of this protocol.",
        f"[{WSS_TRANSPORT}]",
        "type=transport",
        "protocol=wss",
        "bind=0.0.0.0",
    ]


def webrtc_codecs(spec: Spec) -> str:
    """The audio codecs of the browsers' endpoint (``transports.wss.opus``)."""
    wss = spec.transports.wss
    return WEBRTC_OPUS_CODECS if wss is not None and wss.opus else WEBRTC_CODECS


def guest_codecs(section: Asterisk, audio: str = GUEST_CODECS) -> str:
    """The codecs of a guest endpoint (either one): its audio, and video when the spec
    allows it."""
    return f"{audio},{VIDEO_CODECS}" if section.video else audio


def _pjsip_transports(spec: Spec) -> list[str]:
    section = asterisk_section(spec)
    lines: list[str] = []
    v6 = serves_ipv6(spec)
    for name, transport in spec.transports.enabled().items():
        if name == "tls" and section.tls is None:
            continue  # the cross checks ask for asterisk.tls; without it there is no TLS
        binds = [("", f"0.0.0.0:{transport.port}")]
        if v6:
            binds.append(("6", f"[::]:{transport.port}"))
        for suffix, bind in binds:
            lines += [
                "",
                f"[sipctl-{name}{suffix}]",
                "type=transport",
                f"protocol={name}",
                f"bind={bind}",
            ]
            if name == "tls" and section.tls is not None:
                lines += [
                    f"cert_file={section.tls.cert_file}",
                    f"priv_key_file={section.tls.key_file}",
                ]
                if section.tls.ca_list_file:
                    lines.append(f"ca_list_file={section.tls.ca_list_file}")
                lines.append("method=tlsv1_2")
    return lines


def sip_text(spec: Spec) -> str:
    """chan_sip (Asterisk <= 20): guests through ``[general]``, as the classic setup does."""
    section = asterisk_section(spec)
    lines = [
        HEADER.rstrip("\n"),
        "; Extends the [general] section of sip.conf (it must come before the #include).",
        "[general](+)",
        "allowguest=yes",
        f"context={section.guest_context}",
    ]
    if section.manage_transports:
        enabled = spec.transports.enabled()
        if "udp" in enabled:
            lines.append(f"udpbindaddr=0.0.0.0:{enabled['udp'].port}")
        if "tcp" in enabled:
            lines += ["tcpenable=yes", f"tcpbindaddr=0.0.0.0:{enabled['tcp'].port}"]
        if "tls" in enabled and section.tls is not None:
            lines += [
                "tlsenable=yes",
                f"tlsbindaddr=0.0.0.0:{enabled['tls'].port}",
                f"tlscertfile={section.tls.cert_file}",
                f"tlsprivatekey={section.tls.key_file}",
            ]
    return "\n".join(lines) + "\n"


# --- extensions_sipctl.conf -------------------------------------------------------------------


def caller_address_steps(section: Asterisk) -> list[str]:
    """Steps that leave the caller's bare address (no port, no brackets) in SIPCTL_IP."""
    if section.channel == "sip":
        return ["Set(SIPCTL_IP=${CHANNEL(peerip)})"]
    return [
        "Set(SIPCTL_IP=${CHANNEL(pjsip,remote_addr)})",
        "Set(SIPCTL_PORT=${POP(SIPCTL_IP,:)})",
    ]


_LOGGED_ADDRESS = "${FILTER(0-9a-fA-F.:,${SIPCTL_IP})}"


def _dial_target(section: Asterisk, extension: str) -> str:
    """What Dial() calls for one extension: the phone itself, or (route goto) the local
    context through a Local channel, so a ring group can ring several of them at once."""
    if section.route == "goto":
        return f"Local/{extension}@{section.local_context}"
    driver = "PJSIP" if section.channel == "pjsip" else "SIP"
    return f"{driver}/{extension}"


def user_steps(section: Asterisk, target: str | RingGroup) -> list[str]:
    """The steps of one declared name: log, ring, and when no phone answers, the same end
    as an undeclared name (``UNAVAILABLE_EXTENSION``).

    Dial without its ``g`` option continues only when nobody answered (unregistered, busy,
    no answer, failure); after an answered call it hangs up. So the step after the last
    Dial is reached exactly when the name's phones were unreachable.
    """
    return users_steps(section)(target)


def users_steps(section: Asterisk) -> Callable[[str | RingGroup], list[str]]:
    """``user_steps`` of ``section`` for any target: what all users share is made once (a
    spec may have 50,000 of them)."""
    head = [*caller_address_steps(section), f"Log(NOTICE,Good call IP={_LOGGED_ADDRESS})"]
    # The explicit jump ends the extension: without it a failed Dial would go on with the
    # next priority of any pattern that matches this name too.
    end = f"Goto({UNAVAILABLE_EXTENSION},1)"
    goto, local = section.route == "goto", section.local_context
    phone = f"Dial({_dial_target(section, '')}"  # + the extension + ",<timeout>)"
    limit = section.dial_timeout

    def steps(target: str | RingGroup) -> list[str]:
        if isinstance(target, str):
            if goto:
                # The local context decides what happens; it is the admin's.
                return [*head, f"Goto({local},{target},1)"]
            return [*head, f"{phone}{target},{limit})", end]
        ring = "&".join(_dial_target(section, ext) for ext in target.ring)
        dials = [f"Dial({ring},{target.timeout})"]
        if target.fallback is not None:
            dials.append(f"Dial({_dial_target(section, target.fallback)},{target.timeout})")
        return [*head, *dials, end]

    return steps


def _unless_reached_by_our_dialplan(section: Asterisk) -> str:
    """A first step for an extension the dialplan only jumps to: a caller who dials it
    directly has run none of our steps (SIPCTL_IP is empty) and is a wrong call."""
    if section.unknown_callers == "not-found":
        return "NoOp()"
    return f'GotoIf($["${{SIPCTL_IP}}" = ""]?{WRONG_NAME_EXTENSION},1)'


def unavailable_steps(section: Asterisk) -> list[str]:
    """A declared name nobody answered: seen from outside exactly like an undeclared name
    (answered, a sound, hung up; with ``unknown_callers: not-found``, 404 unanswered), but
    logged with words fail2ban does not count: a legitimate caller is never banned."""
    logged = f"Log(NOTICE,Unavailable call IP={_LOGGED_ADDRESS})"
    if section.unknown_callers == "not-found":
        return [logged, "Hangup(1)"]  # cause 1, unallocated number: PJSIP answers 404
    return [
        _unless_reached_by_our_dialplan(section),
        logged,
        f"Playback({section.sound_when_unavailable})",
        "Hangup()",
    ]


def ending_steps(section: Asterisk) -> list[str]:
    """h, i, t, T, e: after one of our steps (h at every hangup) they end silently; dialled
    by a caller, they are wrong names and logged so."""
    return [_unless_reached_by_our_dialplan(section), "Hangup()"]


def reject_steps(section: Asterisk, with_domain: bool = False) -> list[str]:
    """The steps of WRONG_NAME_EXTENSION: the line carries no caller text but the address
    (and, on a host of many customers, the called domain, filtered to host name characters
    by the entry context: asterisk_hosting)."""
    domain = " domain=${SIPCTL_DOMAIN}" if with_domain else ""
    return [
        *caller_address_steps(section),
        f"Log(WARNING,Wrong call IP={_LOGGED_ADDRESS}{domain})",
        f"Playback({section.reject_sound})",
        "Hangup()",
    ]


def invalid_steps(section: Asterisk) -> list[str]:
    """``unknown_callers: not-found`` has no catch-all, so a name Asterisk lets through
    without an extension lands on ``i``: the call pickup code (PJSIP takes features.conf's
    pickupexten for an extension; the guest's channel then has none, GUEST_NO_PICKUP).
    Without ``i`` Asterisk answered 603 and logged no address (measured on 22); with it, 404
    like any unknown name, logged with the address. A caller who dials ``i`` gets the same."""
    return [
        *caller_address_steps(section),
        f"Log(WARNING,Wrong call IP={_LOGGED_ADDRESS})",
        "Hangup(1)",  # cause 1, unallocated number: PJSIP answers 404
    ]


def catch_all_steps() -> list[str]:
    # One priority only: a pattern lends its later priorities to extensions whose own ran out.
    return [f"Goto({WRONG_NAME_EXTENSION},1)"]


def guest_extensions(section: Asterisk, spec: Spec | None = None) -> tuple[str, ...]:
    """The extensions of the guest context besides the users (as ``dialplan show`` names them).
    A host of many customers (``spec.hosting``) has its entry context there instead."""
    if spec is not None and spec.hosting is not None:
        return (*ENDING_EXTENSIONS, WRONG_NAME_EXTENSION, CATCH_ALL_PATTERN)
    if section.unknown_callers == "not-found":
        return (UNAVAILABLE_EXTENSION, INVALID_EXTENSION)
    return (*ENDING_EXTENSIONS, UNAVAILABLE_EXTENSION, WRONG_NAME_EXTENSION, CATCH_ALL_PATTERN)


def dialplan(spec: Spec) -> DialplanWriter:
    """extensions_sipctl.conf: its text and, built with it, its value."""
    section = asterisk_section(spec)
    out = DialplanWriter()
    if spec.hosting is not None:
        from sipctl.reconciler.render.asterisk_hosting import hosting_dialplan

        out.comment(HEADER.rstrip("\n"))
        hosting_dialplan(spec, out)
        return out
    out.comment(
        HEADER.rstrip("\n"),
        f"; Guest calls to sip:<name>@{spec.domain}: the names of the spec, and nothing else.",
    )
    out.context(section.guest_context)
    steps = users_steps(section)
    # Without a catch-all, each name's pattern takes the other cases of it (add_name).
    any_case = section.unknown_callers == "not-found"
    for name, target in spec.users.items():
        add_name(out, name, steps(target), any_case)
    for name in spec.rooms:
        add_name(out, name, guest_room_steps(name), any_case)
    out.comment("; A declared name whose phones did not answer ends like an undeclared one.")
    out.extension(UNAVAILABLE_EXTENSION, unavailable_steps(section))
    if section.unknown_callers == "not-found":
        out.comment(
            "; The call pickup code (the guest's channel has none) and nothing else reach i:",
            "; 404 like any unknown name, logged for fail2ban.",
        )
        out.extension(INVALID_EXTENSION, invalid_steps(section))
    if section.unknown_callers != "not-found":
        out.comment(
            "; Asterisk's own jumps (h at every hangup) end silently after our steps;",
            "; dialled by a caller, they are wrong names.",
        )
        for name in ENDING_EXTENSIONS:
            out.extension(name, ending_steps(section))
        out.comment(
            "; Any other name: a declared name in another case is looked up in lower case;",
            "; the rest is logged for fail2ban, told so, hung up. The line names this fixed",
            "; extension, never what the caller dialled.",
        )
        out.extension(WRONG_NAME_EXTENSION, reject_steps(section))
        out.extension(CATCH_ALL_PATTERN, lookup_steps(WRONG_NAME_EXTENSION))
    rooms_dialplan(spec, caller_address_steps(section), out)
    outbound_dialplan(spec, out)
    return out


def add_name(out: DialplanWriter, name: str, steps: list[str], any_case: bool = False) -> None:
    """One declared name: its steps under the name in lower case. A caller who dials it in
    another case (``Director``) reaches it through the context's catch-all, which looks the
    name up once more in lower case (``asterisk_lookup``).

    ``any_case``: also a pattern that sends every other case of the name there, for a context
    without a catch-all (``unknown_callers: not-found``: a catch-all would answer every
    OPTIONS 200). An exact name beats a pattern (measured on Asterisk 22); the pattern has
    one priority, so it lends no step to another extension.

    The cost of the patterns, measured on 22 (2 shared cores, load ~8): ``dialplan reload``
    of 1,000 users 0.04 -> 0.11 s, 4,000 users 0.4-0.6 -> 1.9 s, 10,000 users 17-19 -> 41-47
    s (Asterisk's reload grows faster than linearly with a context's extensions, and the
    patterns double them); an OPTIONS at 10,000 users 6-10 -> 50-70 ms. Measured again by
    bench/dialplan_scale.py (load ~3), 10,000 users: reload 14.6-16.3 s with the patterns,
    6.9-7.1 s with the lookup; an OPTIONS 1.2-1.3 ms and 0.7 ms."""
    exact = canonical_name(name)
    out.extension(exact, steps)
    pattern = case_pattern(name) if any_case else None
    if pattern is not None:
        out.extension(pattern, [f"Goto({exact},1)"])


def name_extensions(spec: Spec) -> set[str]:
    """The guest context's extensions of the declared names (as ``dialplan show`` names
    them): each in lower case, and with ``unknown_callers: not-found`` its pattern of every
    case."""
    any_case = asterisk_section(spec).unknown_callers == "not-found"
    found: set[str] = set()
    for name in (*spec.users, *spec.rooms):
        found.add(canonical_name(name))
        pattern = case_pattern(name) if any_case else None
        if pattern is not None:
            found.add(pattern)
    return found


def dialplan_text(spec: Spec) -> str:
    return dialplan(spec).text()


def not_found_log_note(spec: Spec) -> str | None:
    """Why ``unknown_callers: not-found`` and the fail2ban layer do not go together."""
    section = asterisk_section(spec)
    if section.unknown_callers != "not-found" or spec.fail2ban is None:
        return None
    if not spec.fail2ban.enabled:
        return None
    # Measured on 22: "%0A" in the name splits Asterisk's own NOTICE into lines of the
    # caller's, and fail2ban counted 6.6.6.8 and 6.6.6.9 but not the caller's address.
    return (
        "asterisk.unknown_callers is not-found: Asterisk's own 'extension not found' NOTICE "
        "quotes the dialled name, line breaks included, so a caller can write log lines "
        "that make fail2ban ban any address. Use unknown_callers: reject (the default) "
        "with fail2ban"
    )


# --- resources ----------------------------------------------------------------------------------


def file_address(name: str) -> Address:
    return Address(LAYER, "file", name)


def include_address(parent: str) -> Address:
    return Address(LAYER, "include", parent)


RTP_ADDRESS = Address(LAYER, "rtp", RTP_FILE)
HTTP_ADDRESS = Address(LAYER, "http", HTTP_FILE)
# user_agent in the admin's pjsip.conf [global] (asterisk.server_header)
GLOBAL_ADDRESS = Address(LAYER, "global", "pjsip.conf")
NO_VERSION_HEADER = "PBX"  # what sipctl writes when the admin's text carries a version
_NO_VERSION_VALUE = "no version"
_VERSION_RE = re.compile(r"\d+\.\d+")


def carries_version(header: str) -> bool:
    """A Server/User-Agent text that names a version (``Asterisk PBX 22.1.0``)."""
    return _VERSION_RE.search(header) is not None


def server_header_written(section: Asterisk) -> str | None:
    """The ``user_agent`` sipctl writes (None: ``unmanaged``, the admin's)."""
    if section.channel != "pjsip" or section.server_header == UNMANAGED:
        return None
    return NO_VERSION_HEADER if section.server_header == NO_VERSION else section.server_header


def user_agent_value(section: Asterisk, user_agent: str | None) -> dict[str, str | None]:
    """The comparable value of ``user_agent`` (the same function reads the live file): with
    ``no-version`` any text without a version is as good as sipctl's own."""
    if section.server_header == NO_VERSION and user_agent and not carries_version(user_agent):
        return {"user_agent": _NO_VERSION_VALUE}
    return {"user_agent": user_agent}


def file_value(name: str, text: str) -> dict[str, list[str]]:
    """The comparable value of a managed file's text (the same function reads live files).

    A text met before in this process (rendered, then read back from the host unchanged)
    is not parsed again: the rendered dialplan's value is built with its text, and a live
    file that still holds it takes that value. Treat the lists inside as read-only.
    """
    with _VALUES_LOCK:
        value = _VALUES.get((name, text))
    if value is None:
        value = normalize_dialplan(text) if name == DIALPLAN_FILE else normalize_sections(text)
        _remember(name, text, value)
    return dict(value)


# (file name, text) -> value, the last few (several domains may be planned at once).
_VALUES: dict[tuple[str, str], dict[str, list[str]]] = {}
_VALUES_LOCK = threading.Lock()


def _remember(name: str, text: str, value: dict[str, list[str]]) -> None:
    with _VALUES_LOCK:
        while len(_VALUES) >= 8:
            del _VALUES[next(iter(_VALUES))]
        _VALUES[(name, text)] = value


def include_value(file_name: str, count: int = 1) -> dict[str, object]:
    return {"line": include_line(file_name), "count": count}


def rtp_value(start: int | None, end: int | None) -> dict[str, object]:
    return {"rtpstart": start, "rtpend": end}


def address_families(spec: Spec) -> frozenset[str]:
    """``ipv4``/``ipv6``: the address families the spec's servers have."""
    families = {"ipv4" for s in spec.servers if s.ipv4} | {"ipv6" for s in spec.servers if s.ipv6}
    return frozenset(families)


def serves_ipv6(spec: Spec) -> bool:
    """True when a server has an IPv6 address: callers may then come over IPv6."""
    return "ipv6" in address_families(spec)


def https_bind_host(spec: Spec) -> str:
    """Where the HTTPS (WSS) server listens: one address, so one socket for both families.

    Measured on Asterisk 22: ``[::]`` is one socket that takes IPv4 (mapped) and IPv6
    clients while the host's ``net.ipv6.bindv6only`` is 0 (Linux's default; Asterisk leaves
    the option alone, so with 1 it is IPv6 only: plan checks it). ``0.0.0.0`` takes IPv4
    only, and is the one that also works on a host without IPv6.
    """
    return "[::]" if serves_ipv6(spec) else "0.0.0.0"


def http_settings(spec: Spec) -> dict[str, str]:
    """What http.conf's first [general] must say for transports.wss (empty without it)."""
    section = asterisk_section(spec)
    wss = spec.transports.wss
    if wss is None or section.tls is None:
        return {}
    return {
        "enabled": "yes",
        "bindaddr": HTTP_DEFAULT_BINDADDR,
        "tlsenable": "yes",
        "tlsbindaddr": f"{https_bind_host(spec)}:{wss.port}",
        "tlscertfile": section.tls.cert_file,
        "tlsprivatekey": section.tls.key_file,
    }


def http_value(values: Mapping[str, str | None]) -> dict[str, str | None]:
    """The comparable value of the http.conf keys (the same function reads live files)."""
    return {
        key: ("set" if key in HTTP_ANY_VALUE and values.get(key) is not None else values.get(key))
        for key in HTTP_KEYS
    }


def desired_files(spec: Spec) -> dict[str, str]:
    """Managed file name (relative to config_dir) -> exact text."""
    return {name: text for name, (text, _) in _desired(spec).items()}


def _desired(spec: Spec) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """Managed file name -> (exact text, its value)."""
    section = asterisk_section(spec)
    channel = pjsip_text(spec) if section.channel == "pjsip" else sip_text(spec)
    files = {channel_file(section): (channel, file_value(channel_file(section), channel))}
    written = dialplan(spec)
    text, value = written.text(), written.value()
    _remember(DIALPLAN_FILE, text, value)
    files[DIALPLAN_FILE] = (text, dict(value))
    if has_rooms(spec):
        confbridge = confbridge_text(spec)
        files[CONFBRIDGE_FILE] = (confbridge, file_value(CONFBRIDGE_FILE, confbridge))
    return files


def render_asterisk(spec: Spec) -> list[Resource]:
    """The Asterisk resources of ``spec`` (none when ``ensure: absent``)."""
    section = asterisk_section(spec)
    if section.ensure == "absent":
        return []
    resources: list[Resource] = []
    for name, (text, value) in _desired(spec).items():
        resources.append(Resource(file_address(name), value, text))
        line = include_line(name)
        resources.append(Resource(include_address(PARENTS[name]), include_value(name), line))
    resources.append(Resource(RTP_ADDRESS, rtp_value(section.rtp.start, section.rtp.end), None))
    http = http_settings(spec)
    if http:
        resources.append(Resource(HTTP_ADDRESS, http_value(http), None))
    header = server_header_written(section)
    if header is not None:
        resources.append(Resource(GLOBAL_ADDRESS, user_agent_value(section, header), None))
    return resources


def asterisk_artefacts(spec: Spec) -> dict[str, str]:
    """Files for ``sipctl render --dir`` (written under asterisk/)."""
    if spec.asterisk is None or spec.asterisk.ensure == "absent":
        return {}
    section = spec.asterisk
    files = dict(desired_files(spec))
    parents = sorted({PARENTS[name] for name in files})
    files["README"] = (
        "sipctl adds these files to the PBX's config dir "
        f"({section.config_dir}), one include line to each parent file:\n"
        + "".join(
            f"  {PARENTS[name]}: {include_line(name)}\n"
            for name in sorted(files)
            if name in PARENTS
        )
        + f"and sets in rtp.conf [general]: rtpstart={section.rtp.start}, "
        + f"rtpend={section.rtp.end}\n"
        + "".join(
            f"and in http.conf's first [general]: {key}={value}\n"
            for key, value in http_settings(spec).items()
        )
        + f"(parents: {', '.join(parents)}; the admin's own lines are never changed)\n"
    )
    return files
