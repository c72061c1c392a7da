"""Records anyone can read name no user and no host: an opaque id, the detail kept here.

A TXT record in the zone (the record of the last apply, ``_sipctl-state.<domain>``, and the
lock, ``_sipctl-lock.<domain>``) answers anyone who asks. Such a record carries an opaque
id (and, for a lock, the times its takeover needs); who ran it (user@host or
``SIPCTL_LOCK_WHO``) and from which spec stay in the bookkeeping of the machine that ran
it: one private file per record and kind (``<record>.apply.json``, ``<record>.lock.json``;
the latest only, and for a lock the few before it, so they do not pile up). sipctl on that
machine names them again; elsewhere it names the id. The stores and lock sites say whether
they are public (``public``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from typing import TYPE_CHECKING, Any, Literal

from sipctl.json_text import read_json

if TYPE_CHECKING:
    from pathlib import Path

Kind = Literal["apply", "lock"]


def detail_path(where: str, kind: Kind) -> Path:
    """The private file of this machine that holds the detail of the public record ``where``."""
    from sipctl.providers.bookkeeping import local_state_dir, record_name

    return local_state_dir() / record_name(where, f".{kind}.json")


def keep_detail(
    where: str, kind: Kind, record_id: str, detail: dict[str, Any], earlier: int = 0
) -> None:
    """Keep what the public record ``where`` (id ``record_id``) must not say, on this machine.

    ``earlier`` keeps that many details of other ids beside the newest (``"earlier"``): a
    lock's detail is written before its request is sent, so a run that waits for a lock
    taken here keeps the holder's. Failing, only the names are lost (the record holds the
    id): never an error."""
    from sipctl.providers.bookkeeping import open_private_dir

    path = detail_path(where, kind)
    entry = {**detail, "id": record_id}
    with contextlib.suppress(OSError), open_private_dir(path.parent) as directory:
        # two runs of this machine at once: each keeps the other's detail (read, then write)
        fcntl.flock(directory.fd, fcntl.LOCK_EX)
        if earlier > 0:
            found = directory.read(path.name)
            older = _parsed(found[0]) if found is not None else []
            kept = [d for d in older if d.get("id") != record_id][:earlier]
            entry["earlier"] = [{k: v for k, v in d.items() if k != "earlier"} for d in kept]
        data = json.dumps(entry, sort_keys=True).encode()
        directory.replace(path.name, data, 0o600, (os.geteuid(), os.getegid()))


def _entries(where: str, kind: Kind) -> list[dict[str, Any]]:
    """The details this machine's file holds, the newest first (empty: none, unreadable)."""
    from sipctl.providers.bookkeeping import read_private_file

    try:
        raw = read_private_file(detail_path(where, kind))
    except OSError:
        return []
    return _parsed(raw) if raw is not None else []


def _parsed(raw: bytes) -> list[dict[str, Any]]:
    try:
        data = read_json(raw)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    earlier = data.get("earlier")
    older = [d for d in earlier if isinstance(d, dict)] if isinstance(earlier, list) else []
    return [data, *older]


def read_detail(where: str, kind: Kind, record_id: object) -> dict[str, Any]:
    """This machine's detail of the record ``record_id`` (empty: another machine's)."""
    found = next((d for d in _entries(where, kind) if d.get("id") == record_id), {})
    return {k: v for k, v in found.items() if k != "earlier"}


def detail_ids(where: str, kind: Kind) -> list[str]:
    """The ids this machine's file names, the newest first (empty: none)."""
    return [str(d["id"]) for d in _entries(where, kind) if "id" in d]
