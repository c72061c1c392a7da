"""Calls out to any SIP address (``outbound:``), for the office's own phones only. Pure.

With the section, the local context (the registered phones' own, ``asterisk.local_context``)
includes ``sipctl-outbound``: a phone that dials ``sip:alex@other.example`` (a user part and
another domain, as SIP phones send it to their PBX) is put through to that address. Asterisk
finds the other side as RFC 3263 says: measured on Asterisk 22, PJSIP asks NAPTR, then SRV,
then A/AAAA through ``res_resolver_unbound`` (with Debian's module loaded; without it the
call fails 503 and no NAPTR or SRV is asked), using only the transports it had when it
loaded (a TLS transport added by a reload is not used until a restart). It follows the
other side's NAPTR order, so TLS is taken where the other side publishes it first; with
``transports.tls`` the endpoint offers SDES-SRTP optimistically (measured: ``RTP/AVP`` with
a crypto line over TLS). The call
leaves through the endpoint ``sipctl-outbound``, whose ``from_domain`` is the spec's domain,
and the caller ID is the phone's declared name: the other side sees
``director@mysite.ru`` and can call back.

Guests never get there: the guest context includes nothing and jumps only to the names'
steps, and the ``sipctl-outbound`` endpoint is never an inbound caller's (its context is
one nobody defines, so a caller identified as it, by a From user ``sipctl-outbound``, is
answered 404).

What the steps read is checked before it is used: the dialled user part and domain must be
made of the characters a SIP user name and a host name have (``FILTER`` keeps them, and the
lengths must agree), so no dialled text can reach Dial's option parsing; the domain must
not be the spec's own, one of its servers, or an IP address (those calls are the local
context's own business; they end 404 as before), and must pass ``allow`` and ``deny``.

The context's catch-all has one priority, a ``Goto`` to a fixed extension: a pattern in an
included context lends its later priorities to the local context's extensions whose own
ran out (an admin's ``exten => 105,1,Dial(PJSIP/105)`` with no Hangup would go on into
them), and ``h`` (every hangup) and the PBX core's other jumps have exact extensions that
do nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sipctl.reconciler.asterisk_conf import DialplanWriter
from sipctl.schemas.names import canonical_name

if TYPE_CHECKING:
    from sipctl.schemas.spec import Spec

OUTBOUND_CONTEXT = "sipctl-outbound"
OUTBOUND_CALL_CONTEXT = "sipctl-outbound-call"
OUTBOUND_NAMES_CONTEXT = "sipctl-outbound-names"
OUTBOUND_ENDPOINT = "sipctl-outbound"
# A context defined nowhere, on purpose: what is sent there goes nowhere (the guests'
# messages, and anything arriving at the outbound endpoint). One name for both.
NOWHERE_CONTEXT = "sipctl-no-guest-messages"
# What every endpoint sipctl writes for parties nobody authenticated (the guests', the far
# ends of calls out) says, so that such a party can do nothing but the call itself:
# - a MESSAGE would run the context's dialplan on a Message channel (res_pjsip_messaging,
#   loaded by default): answered 404 from a context nobody defines, silently;
# - no SUBSCRIBE (presence of the office phones);
# - no REFER. Measured on Asterisk 22 with res_pjsip_refer (Debian loads it): a guest whose
#   call an office phone answered sent REFER to sip:nobody@ and got 202; the phone's channel
#   was moved into the guest context, ran sipctl#wrong-name and logged "Wrong call" with the
#   phone's address for fail2ban (a guest could have the office banned), and a REFER to a
#   declared name made the office phone call it. allow_transfer=no answers 603, logs a
#   WARNING naming the endpoint, and the call goes on.
STRANGER_ENDPOINT_LINES = (
    f"message_context={NOWHERE_CONTEXT}",
    "allow_subscribe=no",
    "allow_transfer=no",
)
OUTBOUND_CODECS = "ulaw,alaw,g722,gsm"
DIAL_SECONDS = 60
# Measured: without it PJSIP asks no NAPTR or SRV and the call fails (503).
RESOLVER_MODULE = "res_resolver_unbound.so"
_ENDINGS = ("h", "i", "t", "T", "e")
_USER_CHARS = "0-9A-Za-z._+*~"
_HOST_CHARS = "0-9a-z."  # after TOLOWER and REPLACE of "-" (FILTER takes ranges, not "-")


def outbound_on(spec: Spec) -> bool:
    section = spec.asterisk
    return spec.outbound is not None and section is not None and section.channel == "pjsip"


def endpoint_lines(spec: Spec, encrypted_media: list[str]) -> list[str]:
    """The endpoint calls leave through (pjsip_sipctl.conf), empty without ``outbound``."""
    if not outbound_on(spec):
        return []
    return [
        "",
        "; Calls of the office phones to other domains (outbound:). Never an inbound caller's:",
        "; its context is defined nowhere.",
        f"[{OUTBOUND_ENDPOINT}]",
        "type=endpoint",
        f"context={NOWHERE_CONTEXT}",
        # Found by no request from outside (no identify section names it): with the default
        # (username) a stranger whose From user was sipctl-outbound was this endpoint, and
        # Asterisk's "extension not found in context" NOTICE quoted the dialled name, line
        # breaks included, so the stranger wrote log lines that made fail2ban ban any
        # address (measured on 22). Answers to our calls belong to the dialog, not to this.
        "identify_by=ip",
        *STRANGER_ENDPOINT_LINES,
        "disallow=all",
        f"allow={OUTBOUND_CODECS}",
        "direct_media=no",
        "rtp_symmetric=yes",
        f"from_domain={spec.domain}",
        *encrypted_media,
    ]


def _local_domains(spec: Spec) -> list[str]:
    """Hosts that are this PBX's own: calls there are never sent out."""
    hosts = [spec.domain, *(server.host for server in spec.servers)]
    return list(dict.fromkeys(host.lower() for host in hosts))


def caller_names(spec: Spec) -> dict[str, str]:
    """Extension -> the declared name it is known by (the first user that rings just it)."""
    names: dict[str, str] = {}
    for name, target in spec.users.items():
        if isinstance(target, str):
            names.setdefault(target, canonical_name(name))
    return names


def call_extensions(spec: Spec) -> dict[str, list[str]]:
    """The extensions of ``OUTBOUND_CALL_CONTEXT`` (reached only by the ``Goto`` of the
    catch-all): ``s`` checks, ``allowed`` finds the caller ID, ``dial`` calls,
    ``refused`` and ``local`` end the call."""
    outbound = spec.outbound
    assert outbound is not None
    user, domain, bare = "SIPCTL_OUT_USER", "SIPCTL_OUT_DOMAIN", "SIPCTL_OUT_BARE"
    check = [
        f"Set({user}=${{PJSIP_PARSE_URI(${{CHANNEL(pjsip,request_uri)}},user)}})",
        f"Set({domain}=${{TOLOWER(${{SIPDOMAIN}})}})",
        f"Set({bare}=${{{domain}}})",
        f"Set({bare}=${{REPLACE({bare},-)}})",
        # a user part and a host name, nothing else (FILTER drops the rest; lengths differ)
        f"GotoIf($[${{LEN(${{FILTER({_USER_CHARS},${{{user}}})}})}} != ${{LEN(${{{user}}})}}"
        f" | ${{LEN(${{{user}}})}} = 0]?refused,1)",
        f"GotoIf($[${{LEN(${{FILTER({_HOST_CHARS},${{{bare}}})}})}} != ${{LEN(${{{bare}}})}}"
        f" | ${{LEN(${{{bare}}})}} = 0]?refused,1)",
        # an IPv4 address (digits and dots only) is this PBX or a phone: not a domain
        f"GotoIf($[${{LEN(${{FILTER(0-9.,${{{bare}}})}})}} = ${{LEN(${{{bare}}})}}]?local,1)",
    ]
    check += [f'GotoIf($["${{{domain}}}" = "{host}"]?local,1)' for host in _local_domains(spec)]
    check += [f'GotoIf($["${{{domain}}}" = "{host}"]?refused,1)' for host in outbound.deny]
    if outbound.allow:
        check += [f'GotoIf($["${{{domain}}}" = "{host}"]?allowed,1)' for host in outbound.allow]
        check.append("Goto(refused,1)")
    else:
        check.append("Goto(allowed,1)")
    endpoint = "${FILTER(0-9,${CHANNEL(endpoint)})}"
    return {
        "s": check,
        "allowed": [
            # the phone's endpoint (an extension: digits), then its declared name if it has one
            f"Set(SIPCTL_OUT_FROM={endpoint})",
            "GotoIf($[${LEN(${SIPCTL_OUT_FROM})} = 0]?refused,1)",
            f"Gosub({OUTBOUND_NAMES_CONTEXT},${{SIPCTL_OUT_FROM}},1)",
            "Set(SIPCTL_OUT_FROM=${GOSUB_RETVAL})",
            "Goto(dial,1)",
        ],
        "dial": [
            "Set(CALLERID(num)=${SIPCTL_OUT_FROM})",
            "Set(CALLERID(name)=${SIPCTL_OUT_FROM})",
            f"Log(NOTICE,Outbound call FROM=${{SIPCTL_OUT_FROM}} TO={_logged(domain)})",
            f"Dial(PJSIP/{OUTBOUND_ENDPOINT}/sip:${{{user}}}@${{{domain}}},{DIAL_SECONDS})",
            "Hangup()",
        ],
        "refused": [
            f"Log(WARNING,Outbound call refused FROM={endpoint} TO={_logged(domain)})",
            "Hangup(21)",  # call rejected: PJSIP answers 403
        ],
        "local": ["Hangup(1)"],  # unallocated number: 404, as before sipctl
    }


def _logged(variable: str) -> str:
    """A domain for a log line: only the characters a host name has."""
    return f"${{FILTER(0-9a-z.,${{{variable}}})}}"


def outbound_dialplan(spec: Spec, out: DialplanWriter) -> None:
    """The contexts of ``outbound`` in extensions_sipctl.conf, and the local context's include."""
    if not outbound_on(spec):
        return
    section = spec.asterisk
    assert section is not None
    out.comment(
        "",
        "; Calls of the office phones to sip:<user>@<another domain> (outbound:), included",
        "; by the local context; guests have no path here.",
    )
    out.context(OUTBOUND_CONTEXT)
    out.extension("_-.", [f"Goto({OUTBOUND_CALL_CONTEXT},s,1)"])
    for name in _ENDINGS:
        out.extension(name, ["NoOp()"])
    out.comment("")
    out.context(OUTBOUND_CALL_CONTEXT)
    for name, steps in call_extensions(spec).items():
        out.extension(name, steps)
    out.comment("", "; The caller ID a phone calls out with: its declared name, else its number.")
    out.context(OUTBOUND_NAMES_CONTEXT)
    for extension, name in caller_names(spec).items():
        out.extension(extension, [f"Return({name})"])
    out.extension("_-.", ["Return(${EXTEN})"])  # digits only: the Gosub filtered them
    out.comment("")
    out.context(section.local_context)
    out.include(OUTBOUND_CONTEXT)
