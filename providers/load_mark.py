"""The mark of files written on a host and not yet loaded by the program that serves them.

An apply of the Asterisk or fail2ban layer writes sipctl's files, then has the running
program reload them. Stopped in between (killed, the SSH connection lost, the machine running
sipctl gone), the files on the host are the spec's while the program still runs the old
ones: a name the spec removed stays reachable, a jail keeps its old limits, and a plan that
compares the files alone says "No changes".

So such an apply writes a mark first, in the same batch as the files (and renamed before
them), naming what it writes; once the program took the files (or, after a failed reload,
the old files put back) the mark goes: one round trip more for an apply that reloads, the
price of a plan that can tell. A plan that finds the mark plans those
resources again (``LiveState.unloaded``): the next apply writes the same content (no file
changes) and reloads. The mark lives in sipctl's bookkeeping directory on the host (root's),
one per layer and place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sipctl.json_text import read_json
from sipctl.providers.bookkeeping import BOOKKEEPING_DIR, record_name
from sipctl.providers.transport.pool import FileWrite, HostTransport
from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import LiveState

MARK_MODE = 0o600
_UNREADABLE = "?"  # a mark that cannot be read still says that an apply was stopped


class LoadMark:
    """The mark of one layer's files at one place on a host.

    ``place``: what the files belong to there (Asterisk's config directory, fail2ban's);
    ``program``: who loads them, in words (``Asterisk``); ``reload``: how an admin has it
    load them by hand (``asterisk -rx 'core reload'``)."""

    def __init__(self, layer: str, place: str, program: str, reload: str) -> None:
        self.path = f"{BOOKKEEPING_DIR}/{record_name(f'{place}/{layer}-not-loaded', '.json')}"
        self._program = program
        self._reload = reload

    def read(self, raw: bytes | None, live: LiveState, target: str) -> None:
        """What a plan makes of the mark as read (``raw``; None: no mark): the resources it
        names are planned again, and the plan says why."""
        names = _marked(raw)
        if not names:
            return
        if isinstance(live.fingerprint_extra, dict):  # a saved plan sees the mark come or go
            live.fingerprint_extra[self.path] = names
        unloaded = {address for address in live.resources if address.name in names}
        live.unloaded |= unloaded
        what = (
            f"this apply writes them again and has {self._program} reload them"
            if unloaded
            else f"have it load them ({self._reload}), then delete {self.path}"
        )
        shown = ", ".join(n for n in names if n != _UNREADABLE) or "its files"
        live.notes.append(
            f"{target}: an earlier apply wrote {shown} and was stopped before {self._program} "
            f"loaded them, so the running {self._program} may still use the old ones: {what}"
        )

    def before(self, changes: Sequence[Change], raw: bytes | None) -> FileWrite:
        """The mark, to write first in the batch of the files of ``changes`` (``raw``: the
        mark as the plan read it)."""
        names = sorted({change.address.name for change in changes})
        content = (json.dumps({"files": names}, indent=1) + "\n").encode()
        return FileWrite(self.path, content, raw, MARK_MODE, keep_backup=False)

    def loaded(self, transport: HostTransport, mark: FileWrite) -> None:
        """The program runs what the files hold: the mark goes."""
        transport.write_files([FileWrite(mark.path, None, mark.content, keep_backup=False)])


def _marked(raw: bytes | None) -> list[str]:
    if raw is None:
        return []
    try:
        data = read_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [_UNREADABLE]
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        return [_UNREADABLE]
    return sorted(files)
