"""Conference rooms (Asterisk ConfBridge): what the spec's ``rooms`` become. Pure.

sipctl owns ``confbridge_sipctl.conf`` (a user profile and one bridge profile per room,
with the room's ``max_members``; ``video_mode=follow_talker`` when ``asterisk.video``) and
one ``#include`` of it in ``confbridge.conf``. In ``extensions_sipctl.conf`` the rooms live
in a context of their own, ``sipctl-rooms``: the guest context jumps there for each room's
exact name (its catch-all would otherwise take the name first: a context's own patterns
beat its includes), and the local context includes it, so the internal phones reach the
rooms by the same names.

Join and leave are logged with the room's name from the spec and the caller's address,
never with caller text; the join line counts the members already there (``MEMBERS=2/2``:
full, this caller is turned away). A room that is full makes ConfBridge play its "locked"
sound and hang up. Leaving is logged by a hangup handler (a caller who hangs up in the room
never comes back to the next priority).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sipctl.reconciler.asterisk_conf import DialplanWriter
from sipctl.schemas.names import canonical_name, case_pattern

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


def conference_name(name: str) -> str:
    """The ConfBridge conference a room's callers meet in (``confbridge list`` names it)."""
    return canonical_name(name)


def bridge_profile(name: str) -> str:
    return f"sipctl-room-{name}"


def confbridge_text(spec: Spec) -> str:
    """confbridge_sipctl.conf: one user profile, one bridge profile per room."""
    section = _section(spec)
    lines = [
        _HEADER.rstrip("\n"),
        f"; Rooms callers reach as sip:<room>@{spec.domain} (and the internal phones by name).",
        f"[{USER_PROFILE}]",
        "type=user",
        # A guest hears that they are alone rather than silence; no name is recorded.
        "announce_only_user=yes",
        "announce_join_leave=no",
        "dsp_drop_silence=yes",
    ]
    for name, room in spec.rooms.items():
        name = canonical_name(name)
        lines += ["", f"[{bridge_profile(name)}]", "type=bridge", f"max_members={room.max_members}"]
        if section.video:
            # The video of whoever talks loudest goes to everyone else.
            lines.append("video_mode=follow_talker")
    return "\n".join(lines) + "\n"


def room_steps(name: str, room: Room, address_steps: list[str]) -> list[str]:
    """The steps of one room in ROOMS_CONTEXT (``name`` in lower case, as dialplan holds it).

    The join line counts the members already in the room (``MEMBERS=2/2``: this caller is
    turned away); ConfBridge itself enforces ``max_members`` (its "locked" sound, then it
    hangs up). The hangup handler logs every leave, turned-away callers included.
    """
    logged = "${FILTER(0-9a-fA-F.:,${SIPCTL_IP})}"
    members = f"${{CONFBRIDGE_INFO(parties,{name})}}/{room.max_members}"
    return [
        *address_steps,
        f"Set(CHANNEL(hangup_handler_push)={ROOM_EVENTS_CONTEXT},{ROOM_LEFT_EXTENSION},1({name}))",
        f"Log(NOTICE,Room join ROOM={name} MEMBERS={members} IP={logged})",
        "Answer()",
        f"ConfBridge({name},{bridge_profile(name)},{USER_PROFILE})",
        "Hangup()",
    ]


def room_left_steps() -> list[str]:
    """The hangup handler: ARG1 is the room's name from the spec."""
    return [
        "Log(NOTICE,Room left ROOM=${ARG1} IP=${FILTER(0-9a-fA-F.:,${SIPCTL_IP})})",
        "Return()",
    ]


def guest_room_steps(name: str) -> list[str]:
    return [f"Goto({ROOMS_CONTEXT},{canonical_name(name)},1)"]


def rooms_dialplan(spec: Spec, address_steps: list[str], out: DialplanWriter) -> None:
    """What extensions_sipctl.conf holds after the guest context: the rooms, the handler,
    and the include that lets the local context reach them."""
    section = _section(spec)
    if not spec.rooms:
        return
    out.comment(
        "", "; Conference rooms (ConfBridge), reached from the guest and the local context."
    )
    out.context(ROOMS_CONTEXT)
    for name, room in spec.rooms.items():
        exact = conference_name(name)
        out.extension(exact, room_steps(exact, room, address_steps))
        pattern = case_pattern(name)
        if pattern is not None:  # the internal phones reach the room in any case too
            out.extension(pattern, [f"Goto({exact},1)"])
    out.comment("")
    out.context(ROOM_EVENTS_CONTEXT)
    out.extension(ROOM_LEFT_EXTENSION, room_left_steps())
    out.comment(
        "",
        f"; The local context ({section.local_context}) reaches the rooms by name too; its own",
        "; extensions of the same name come first.",
    )
    out.context(section.local_context)
    out.include(ROOMS_CONTEXT)


def _section(spec: Spec) -> Asterisk:
    if spec.asterisk is None:
        raise ValueError("the spec has no asterisk section")
    return spec.asterisk
