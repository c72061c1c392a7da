"""What a caller of each declared name gets now: the phone rings, it is unavailable, or the
name is wrong. Pure: the facts come from ``run.py`` (the live PBX through the asterisk target,
and OPTIONS to contacts nobody qualifies); no phone ever rings.

- a phone **rings** when its endpoint has a contact Asterisk would call that answers: a
  contact Asterisk qualifies as ``Avail``, or an unqualified one (``NonQual``: a static
  ``contact=`` or a registration without qualify) that answered sipctl's OPTIONS;
- it is **unavailable** when there is no endpoint of that name, no contact (not registered),
  or its contacts do not answer (unreachable); the caller then hears the unavailable sound;
- a name is **wrong** when the PBX does not route it as declared (its OPTIONS probe did
  not get the answer a declared name gets).

A ring group rings when one of its phones (or its fallback) does. A room is **open** when
its name is routed and ConfBridge runs (with how many are in it now, ``confbridge list``);
**full** when it holds ``max_members`` and **locked** when the admin locked it (a caller is
turned away by ConfBridge's "locked" sound either way).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sipctl.providers.asterisk.phones import Contact, PhoneFacts
from sipctl.providers.asterisk.rooms import LiveRooms

State = Literal["rings", "unavailable", "wrong", "unknown", "open", "full", "locked"]
_URI = re.compile(
    r"sips?:(?:[^@;]*@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:;>]+)(?::(?P<port>\d+))?(?P<params>;[^>]*)?"
)


@dataclass(frozen=True)
class ContactTarget:
    """Where an OPTIONS to a contact goes: the contact URI's host, port and transport."""

    address: str
    port: int
    transport: str


def contact_target(uri: str) -> ContactTarget | None:
    """``sip:105@127.0.0.1:5070;transport=tcp`` -> (127.0.0.1, 5070, tcp); None if odd."""
    match = _URI.match(uri)
    if match is None:
        return None
    params = (match["params"] or "").lower()
    transport = "tcp" if ";transport=tcp" in params else "udp"
    if uri.startswith("sips:") or ";transport=tls" in params:
        transport = "tls"
    default = 5061 if transport == "tls" else 5060
    host = match["host"].strip("[]")
    return ContactTarget(host, int(match["port"] or default), transport)


def needs_options(contact: Contact) -> bool:
    """Asterisk does not know whether this contact answers (nobody qualifies it)."""
    return contact.status in ("NonQual", "Unknown", "Created")


@dataclass(frozen=True)
class PhoneState:
    extension: str
    state: State
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"extension": self.extension, "state": self.state, "why": self.why}


@dataclass(frozen=True)
class NameState:
    name: str
    kind: Literal["extension", "ring group", "room"]
    state: State
    why: str
    phones: tuple[PhoneState, ...] = ()
    members: int | None = None  # a room: how many are in it now (None: not read)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "why": self.why,
            "phones": [p.to_json() for p in self.phones],
        }
        if self.kind == "room":
            data["members"] = self.members
        return data


def phone_state(
    extension: str, facts: PhoneFacts | None, answered: Mapping[str, bool]
) -> PhoneState:
    """One extension's phone; ``answered``: contact URI -> it answered sipctl's OPTIONS."""
    if facts is None:
        return PhoneState(extension, "unknown", "Asterisk could not say (pjsip show endpoint)")
    if not facts.exists:
        return PhoneState(extension, "unavailable", f"no endpoint {extension} on the PBX")
    if not facts.contacts:
        return PhoneState(extension, "unavailable", "not registered (no contact)")
    state = f"; device state {facts.state}" if facts.state else ""
    for contact in facts.contacts:
        if contact.status == "Avail":
            return PhoneState(extension, "rings", f"{contact.uri} is reachable (qualified){state}")
        if needs_options(contact) and answered.get(contact.uri):
            return PhoneState(extension, "rings", f"{contact.uri} answers OPTIONS{state}")
    uris = ", ".join(f"{c.uri} ({_status_words(c, answered)})" for c in facts.contacts)
    return PhoneState(extension, "unavailable", f"unreachable: {uris}")


def _status_words(contact: Contact, answered: Mapping[str, bool]) -> str:
    if needs_options(contact):
        return "no answer to OPTIONS" if contact.uri in answered else "not asked"
    return f"qualify: {contact.status}"


def name_states(
    users: Mapping[str, Sequence[str]],
    ring_groups: frozenset[str],
    rooms: Mapping[str, tuple[str, int]],
    phones: Mapping[str, PhoneState],
    routed: Mapping[str, str | None],
    live_rooms: LiveRooms | None,
) -> list[NameState]:
    """Every declared name. ``users``: name -> its extensions (ring, then fallback);
    ``rooms``: name -> (its conference's name, max_members); ``routed``: name -> None when
    its probes got a declared name's answer, else what came; ``live_rooms``: ConfBridge's
    state (None: not read)."""
    found: list[NameState] = []
    for name, extensions in sorted(users.items()):
        kind: Literal["extension", "ring group"] = (
            "ring group" if name in ring_groups else "extension"
        )
        own = tuple(phones[e] for e in extensions if e in phones)
        wrong = routed.get(name)
        if wrong is not None:
            found.append(NameState(name, kind, "wrong", f"the PBX answers {wrong}", own))
            continue
        ringing = [p for p in own if p.state == "rings"]
        if ringing:
            why = ", ".join(f"{p.extension} rings: {p.why}" for p in ringing)
            found.append(NameState(name, kind, "rings", why, own))
        elif own and all(p.state == "unavailable" for p in own):
            why = "; ".join(f"{p.extension}: {p.why}" for p in own)
            found.append(NameState(name, kind, "unavailable", why, own))
        else:
            found.append(NameState(name, kind, "unknown", "the PBX could not say", own))
    for room, (conference, most) in sorted(rooms.items()):
        found.append(room_state(room, conference, most, routed.get(room), live_rooms))
    return found


def room_state(
    room: str, conference: str, most: int, wrong: str | None, live: LiveRooms | None
) -> NameState:
    """One room: routed or not, ConfBridge running, and who is in it now."""
    if wrong is not None:
        return NameState(room, "room", "wrong", f"the PBX answers {wrong}")
    if live is not None and not live.running:
        return NameState(room, "room", "unavailable", "ConfBridge is not running")
    facts = live.members(conference) if live is not None else None
    if facts is None:
        why = "routed to its conference room (who is in it could not be read)"
        return NameState(room, "room", "open", why)
    count = facts.members
    if facts.locked:
        why = f"confbridge lock {conference}: a caller is turned away (confbridge unlock)"
        return NameState(room, "room", "locked", why, members=count)
    if count >= most:
        why = f"{count} of max_members {most}: a caller is turned away"
        return NameState(room, "room", "full", why, members=count)
    why = f"routed to its conference room (max_members {most})"
    return NameState(room, "room", "open", why, members=count)


def render_names(names: Sequence[dict[str, Any]]) -> list[str]:
    """The text lines of ``NameState.to_json()`` items."""
    lines = ["What a caller of each name gets now:"]
    for item in names:
        state = item["state"]
        if item.get("members") is not None:
            state = f"{state}, {item['members']} in the room"
        lines.append(f"  {item['name']} ({item['kind']}): {state}: {item['why']}")
        if item["kind"] == "ring group":
            for phone in item["phones"]:
                lines.append(f"      {phone['extension']}: {phone['state']}: {phone['why']}")
    return lines
