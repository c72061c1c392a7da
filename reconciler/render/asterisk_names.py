"""Users and rooms in the words of the spec, for plans: ``+ user sales → 106 & 107, then 101``.

Pure. The plan views call :func:`name_changes` with the spec's names before and after (the
live side read back from the dialplan is the engine's business); each line is one name.
"""

from __future__ import annotations

from collections.abc import Mapping

from sipctl.schemas.spec import RingGroup, Room, Spec


def describe_user(target: str | RingGroup) -> str:
    """``105``, or ``106 & 107 (20 s), then 101``."""
    if isinstance(target, str):
        return target
    text = " & ".join(target.ring) + f" ({target.timeout} s)"
    return text + (f", then {target.fallback}" if target.fallback is not None else "")


def describe_room(room: Room) -> str:
    return f"room, at most {room.max_members} members"


def described_names(spec: Spec) -> dict[str, str]:
    """Every callable name -> what it reaches, in words: ``{"user sales": "106 & 107 ..."}``."""
    names = {f"user {name}": describe_user(target) for name, target in spec.users.items()}
    names.update({f"room {name}": describe_room(room) for name, room in spec.rooms.items()})
    return names


def name_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """``+ user sales → 106 & 107 (20 s), then 101`` lines, one per added, changed (``~``)
    or removed name; both sides as :func:`described_names` gives them."""
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if old is None:
            lines.append(f"+ {key} → {new}")
        elif new is None:
            lines.append(f"- {key} → {old}")
        else:
            lines.append(f"~ {key} → {new} (was {old})")
    return lines
