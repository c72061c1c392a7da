"""Conference rooms (Asterisk ConfBridge): what the spec's ``rooms`` become. Pure.

sipctl owns ``confbridge_sipctl.conf`` (a user profile and one bridge profile per room,
with the room's ``max_members``; ``video_mode=follow_talker`` when ``asterisk.video``) and
one ``#include`` of it in ``confbridge.conf``. In ``extensions_sipctl.conf`` the rooms live
in a context of their own, ``sipctl-rooms``: the guest context jumps there for each room's
exact name (its catch-all would otherwise take the name first: a context's own patterns
beat its includes), and the local context includes it, so the internal phones reach the
rooms by the same names.

On a host of many customers (``hosting``) each customer's rooms are its own:
:class:`RoomPlace` is the one rule that names them. A customer's rooms live in a context of
their own (``sipctl-rooms-<domain>``), reached from that customer's guest context only (and
included in its ``local_context``), and its conferences and bridge profiles carry its domain
(``seminar@a.example``, ``sipctl-room-seminar@a.example``): the same room name at two
customers is two conferences, and no dialled name or domain can reach another customer's
(a caller's domain only selects among the public names of the customer it names). The user
profile holds nothing of a customer and is shared. Removing a customer's file removes its
rooms with the rest of its lines (the host renders only the customers it serves).

Join and leave are logged with the room's name from the spec (on a host, its conference
name: ``seminar@a.example``) and the caller's address, never with caller text; the join
line counts the members already there (``MEMBERS=2/2``: full, this caller is turned away).
A room that is full makes ConfBridge play its "locked" sound and hang up. Leaving is logged
by a hangup handler (a caller who hangs up in the room never comes back to the next
priority).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipctl.reconciler.asterisk_conf import DialplanWriter
from sipctl.schemas.names import asterisk_name, canonical_name, case_pattern

if TYPE_CHECKING:
    from sipctl.schemas.spec import Asterisk, Room, Spec

CONFBRIDGE_FILE = "confbridge_sipctl.conf"
CONFBRIDGE_PARENT = "confbridge.conf"
ROOMS_CONTEXT = "sipctl-rooms"
# Not included anywhere: only the hangup handler runs it.
ROOM_EVENTS_CONTEXT = "sipctl-room-events"
ROOM_LEFT_EXTENSION = "left"
USER_PROFILE = "sipctl-member"
# What confbridge.conf holds when sipctl has to create it (the PBX had none).
MINIMAL_PARENT = "; confbridge.conf: created by sipctl for its include; yours to extend.\n"

_HEADER = "; Managed by sipctl: this file is replaced on every apply. Edit the spec instead.\n"
_PROFILE_PREFIX = "sipctl-room-"
# A customer's rooms context: sipctl-rooms-<domain>.
CUSTOMER_ROOMS_PREFIX = f"{ROOMS_CONTEXT}-"


def bridge_profile(name: str) -> str:
    """The bridge profile of conference ``name`` (a digest of a long one: asterisk_name)."""
    return asterisk_name(_PROFILE_PREFIX, name)


@dataclass(frozen=True)
class RoomPlace:
    """Where one company's rooms live on the PBX, and what their conferences and bridge
    profiles are called: the one rule that keeps two customers' rooms apart.

    One company's spec (``domain`` None): ``sipctl-rooms``, the room's own name. A customer
    of a host: ``sipctl-rooms-<domain>``, ``<room>@<domain>`` (each a digest when Asterisk
    would cut it)."""

    domain: str | None = None

    @property
    def context(self) -> str:
        if self.domain is None:
            return ROOMS_CONTEXT
        return asterisk_name(CUSTOMER_ROOMS_PREFIX, self.domain)

    def bridge(self, name: str) -> str:
        """The conference of room ``name`` (``ConfBridge(<this>,...)``, ``confbridge list``)."""
        name = canonical_name(name)
        if self.domain is None:
            return name
        # A digest is marked "r" and has no "@": it is no room's own name. It leaves room for
        # the bridge profile's prefix, so a customer's profile is never a digest of a digest.
        key = f"{name}@{self.domain}"
        return asterisk_name("", key, spare=len(_PROFILE_PREFIX), mark="r")

    def profile(self, name: str) -> str:
        """The bridge profile of room ``name`` (a section of confbridge_sipctl.conf)."""
        return bridge_profile(self.bridge(name))


def room_place(domain: str | None) -> RoomPlace:
    """The rooms of a customer of ``domain`` (None: of one company's spec)."""
    return RoomPlace(domain.lower() if domain is not None else None)


def conference_name(name: str, customer_domain: str | None = None) -> str:
    """The ConfBridge conference a room's callers meet in (``confbridge list`` names it);
    ``customer_domain``: the room is a host's customer's."""
    return room_place(customer_domain).bridge(name)


def companies(spec: Spec) -> Iterator[tuple[RoomPlace, Spec]]:
    """Every company whose rooms ``spec`` renders: itself, or a host's customers."""
    if spec.hosting is None:
        yield room_place(None), spec
        return
    for customer in spec.customers:
        yield room_place(customer.domain), customer


def has_rooms(spec: Spec) -> bool:
    """True when ``spec`` renders any room (a host: any of its customers')."""
    return any(company.rooms for _, company in companies(spec))


def bridge_profiles(spec: Spec) -> list[str]:
    """The bridge profiles of every room ``spec`` renders."""
    return [place.profile(name) for place, company in companies(spec) for name in company.rooms]


def confbridge_text(spec: Spec) -> str:
    """confbridge_sipctl.conf: one user profile, one bridge profile per room."""
    section = asterisk_section(spec)
    lines = [
        _HEADER.rstrip("\n"),
        (
            f"; Rooms callers reach as sip:<room>@{spec.domain} (and the internal phones by name)."
            if spec.hosting is None
            else "; Rooms callers reach as sip:<room>@<customer domain>, each customer's its own."
        ),
        f"[{USER_PROFILE}]",
        "type=user",
        # A guest hears that they are alone rather than silence; no name is recorded.
        "announce_only_user=yes",
        "announce_join_leave=no",
        "dsp_drop_silence=yes",
    ]
    for place, company in companies(spec):
        for name, room in company.rooms.items():
            profile = place.profile(name)
            lines += ["", f"[{profile}]", "type=bridge", f"max_members={room.max_members}"]
            if section.video:
                # The video of whoever talks loudest goes to everyone else.
                lines.append("video_mode=follow_talker")
    return "\n".join(lines) + "\n"


def room_steps(
    name: str, room: Room, address_steps: list[str], place: RoomPlace | None = None
) -> list[str]:
    """The steps of one room in its place's context (``name`` in lower case, as dialplan
    holds it).

    The join line counts the members already in the room (``MEMBERS=2/2``: this caller is
    turned away); ConfBridge itself enforces ``max_members`` (its "locked" sound, then it
    hangs up). The hangup handler logs every leave, turned-away callers included.
    """
    place = place or room_place(None)
    bridge = place.bridge(name)
    logged = "${FILTER(0-9a-fA-F.:,${SIPCTL_IP})}"
    members = f"${{CONFBRIDGE_INFO(parties,{bridge})}}/{room.max_members}"
    return [
        *address_steps,
        f"Set(CHANNEL(hangup_handler_push)={ROOM_EVENTS_CONTEXT},{ROOM_LEFT_EXTENSION},1({bridge}))",
        f"Log(NOTICE,Room join ROOM={bridge} MEMBERS={members} IP={logged})",
        "Answer()",
        f"ConfBridge({bridge},{place.profile(name)},{USER_PROFILE})",
        "Hangup()",
    ]


def room_left_steps() -> list[str]:
    """The hangup handler: ARG1 is the room's name from the spec."""
    return [
        "Log(NOTICE,Room left ROOM=${ARG1} IP=${FILTER(0-9a-fA-F.:,${SIPCTL_IP})})",
        "Return()",
    ]


def guest_room_steps(name: str, place: RoomPlace | None = None) -> list[str]:
    context = (place or room_place(None)).context
    return [f"Goto({context},{canonical_name(name)},1)"]


def rooms_dialplan(spec: Spec, address_steps: list[str], out: DialplanWriter) -> None:
    """What extensions_sipctl.conf holds after the guest context: the rooms, the handler,
    and the include that lets the local context reach them."""
    section = asterisk_section(spec)
    if not has_rooms(spec):
        return
    for place, company in companies(spec):
        if not company.rooms:
            continue
        if place.domain is None:
            out.comment(
                "", "; Conference rooms (ConfBridge), reached from the guest and the local context."
            )
        else:
            out.comment("", f"; The rooms of customer {place.domain}: its guests' and phones'.")
        out.context(place.context)
        for name, room in company.rooms.items():
            exact = canonical_name(name)
            out.extension(exact, room_steps(exact, room, address_steps, place))
            pattern = case_pattern(name)
            if pattern is not None:  # the internal phones reach the room in any case too
                out.extension(pattern, [f"Goto({exact},1)"])
    out.comment("")
    out.context(ROOM_EVENTS_CONTEXT)
    out.extension(ROOM_LEFT_EXTENSION, room_left_steps())
    for place, company in companies(spec):
        if not company.rooms:
            continue
        local = company.local_context if place.domain is not None else section.local_context
        assert local is not None  # a customer file always has one (schemas/spec_rules.py)
        out.comment(
            "",
            f"; The local context ({local}) reaches the rooms by name too; its own",
            "; extensions of the same name come first.",
        )
        out.context(local)
        out.include(place.context)


def asterisk_section(spec: Spec) -> Asterisk:
    """The spec's asterisk section, for a renderer that is only called with one."""
    if spec.asterisk is None:
        raise ValueError("the spec has no asterisk section")
    return spec.asterisk
