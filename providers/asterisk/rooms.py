"""What the running PBX says about the conference rooms, read-only: who is in each.

``confbridge list`` prints one line per conference that has someone in it (a room nobody
is in is not listed: it holds 0); measured on Asterisk 22::

    Conference Bridge Name           Users  Marked Locked Muted
    ================================ ====== ====== ====== =====
    seminar                               2      0 No     No

A ``confbridge lock``ed room turns every new caller away, as a full one does. Without
app_confbridge running the command does not exist ("No such command"): nobody can join.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sipctl.providers.asterisk.cli import query_rx
from sipctl.providers.asterisk.wss_checks import running_modules
from sipctl.providers.transport.pool import HostTransport

CONFBRIDGE_MODULE = "app_confbridge.so"
ROOM_CLIS = (f"module show like {CONFBRIDGE_MODULE}", "confbridge list")


@dataclass(frozen=True)
class RoomFacts:
    """One conference as the running PBX has it."""

    name: str
    members: int
    locked: bool


@dataclass(frozen=True)
class LiveRooms:
    """ConfBridge's state: running or not, and the conferences someone is in (None: the
    list could not be read)."""

    running: bool
    rooms: dict[str, RoomFacts] | None

    def members(self, conference: str) -> RoomFacts | None:
        """The room's facts (0 members when it is not listed); None when not read."""
        if self.rooms is None:
            return None
        return self.rooms.get(conference, RoomFacts(conference, 0, False))


def parse_confbridge_list(output: str) -> dict[str, RoomFacts]:
    """``confbridge list`` -> conference name -> its facts (header and odd lines skipped)."""
    found: dict[str, RoomFacts] = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 4 and words[1].isdigit() and words[2].isdigit():
            found[words[0]] = RoomFacts(words[0], int(words[1]), words[3] == "Yes")
    return found


def read_rooms(transport: HostTransport, program: Sequence[str]) -> LiveRooms:
    """ConfBridge's state and its conferences, in one round trip."""
    module, listing = query_rx(transport, program, list(ROOM_CLIS))
    running = module.ok and CONFBRIDGE_MODULE in running_modules(module.output)
    rooms = parse_confbridge_list(listing.output) if running and listing.ok else None
    return LiveRooms(running, rooms)
