"""What the running PBX says about the phones behind declared extensions, read-only.

sipctl's dialplan rings ``PJSIP/<extension>``: the endpoint named like the extension, which
rings every contact of every AOR in its ``aors`` (an AOR may be named otherwise, e.g.
``aors=105desk``, and hold a static ``contact=`` that is always there). So the truth about
"would this name ring a phone" is one ``pjsip show endpoint <extension>`` per extension: it
lists the endpoint's device state, its AORs and their contacts with their qualify status.

Measured on Asterisk 22: an unknown endpoint answers ``Unable to find object 107.``; a
contact line reads ``Contact:  105desk/sip:105@127.0.0.1:5070  144c5ee943 NonQual  -nan``
(status ``Avail``, ``Unavail``, ``NonQual`` when not qualified, ``Unknown``, ``Created``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sipctl.providers.asterisk.cli import RxAnswer, parse_setting, query_rx
from sipctl.providers.transport.pool import HostTransport

_ENDPOINT_LINE = re.compile(
    r"^\s*Endpoint:\s+(?P<name>\S+)\s+(?P<state>.+?)\s+\d+ of (?:inf|\d+)\s*$", re.MULTILINE
)
_CONTACT_LINE = re.compile(
    r"^\s*Contact:\s+(?P<aor>[^/\s<]+)/(?P<uri>\S+)\s+(?P<hash>\S+)\s+(?P<status>\S+)",
    re.MULTILINE,
)
_UNKNOWN = "Unable to find object"
# Qualify states in which Asterisk still sends a call to the contact.
_REACHABLE_STATUSES = frozenset({"Avail", "NonQual", "Unknown", "Created"})


@dataclass(frozen=True)
class Contact:
    aor: str
    uri: str
    status: str  # Avail, Unavail, NonQual, Unknown, Created

    @property
    def reachable(self) -> bool:
        """Asterisk would send a call here (unqualified contacts count: nothing says no)."""
        return self.status in _REACHABLE_STATUSES


@dataclass(frozen=True)
class PhoneFacts:
    """One extension's endpoint as the running PBX has it."""

    extension: str
    exists: bool  # an endpoint of that name exists
    state: str | None  # device state: "Not in use", "In use", "Busy", "Ringing", "Unavailable"
    aors: tuple[str, ...]
    contacts: tuple[Contact, ...]

    @property
    def has_contact(self) -> bool:
        """A call to this extension goes to at least one phone (static or registered)."""
        return bool(self.contacts)

    @property
    def reachable(self) -> bool:
        return any(c.reachable for c in self.contacts)


def endpoint_clis(extensions: Iterable[str]) -> list[str]:
    return [f"pjsip show endpoint {ext}" for ext in dict.fromkeys(extensions)]


def parse_endpoint(extension: str, answer: RxAnswer) -> PhoneFacts | None:
    """The facts in one ``pjsip show endpoint`` answer; None when Asterisk could not say."""
    if _UNKNOWN in answer.output:
        return PhoneFacts(extension, False, None, (), ())
    if not answer.ok:
        return None
    head = next((m for m in _ENDPOINT_LINE.finditer(answer.output) if m["name"] == extension), None)
    if head is None:
        return None
    aors_setting = parse_setting(answer.output, "aors") or ""
    aors = tuple(a.strip() for a in aors_setting.split(",") if a.strip())
    contacts = tuple(
        Contact(m["aor"], m["uri"], m["status"])
        for m in _CONTACT_LINE.finditer(answer.output)
        if m["aor"] in aors
    )
    return PhoneFacts(extension, True, head["state"].strip(), aors, contacts)


def read_phones(
    transport: HostTransport, program: Sequence[str], extensions: Sequence[str]
) -> dict[str, PhoneFacts | None]:
    """Every extension's facts in one round trip (None for one Asterisk could not tell)."""
    clis = endpoint_clis(extensions)
    if not clis:
        return {}
    answers = query_rx(transport, program, clis)
    unique = list(dict.fromkeys(extensions))
    return {ext: parse_endpoint(ext, a) for ext, a in zip(unique, answers, strict=True)}
