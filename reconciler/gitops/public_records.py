"""Records anyone can read name no user and no host: an opaque id, the detail kept here.

A TXT record in the zone (the record of the last apply, ``_sipctl-state.<domain>``, and the
lock, ``_sipctl-lock.<domain>``) answers anyone who asks. Such a record carries an opaque
id (and, for a lock, the times its takeover needs); who ran it (user@host or
``SIPCTL_LOCK_WHO``) and from which spec stay in the bookkeeping of the machine that ran
it: one private file per record and kind (``<record>.apply.json``, ``<record>.lock.json``;
the latest only, they do not pile up). sipctl on that machine names them again; elsewhere
it names the id. The stores and lock sites say whether they are public (``public``).
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pathlib import Path

Kind = Literal["apply", "lock"]


def detail_path(where: str, kind: Kind) -> Path:
    """The private file of this machine that holds the detail of the public record ``where``."""
    from sipctl.providers.bookkeeping import local_state_dir, record_name

    return local_state_dir() / record_name(where, f".{kind}.json")


def keep_detail(where: str, kind: Kind, record_id: str, detail: dict[str, Any]) -> None:
    """Keep what the public record ``where`` (id ``record_id``) must not say, on this machine.

    Failing, only the names are lost (the record holds the id): never an error."""
    from sipctl.providers.bookkeeping import write_private_file

    data = json.dumps({**detail, "id": record_id}, sort_keys=True).encode()
    with contextlib.suppress(OSError):
        write_private_file(detail_path(where, kind), data)


def read_detail(where: str, kind: Kind, record_id: object) -> dict[str, Any]:
    """This machine's detail of the record ``record_id`` (empty: another machine's)."""
    from sipctl.providers.bookkeeping import read_private_file

    try:
        raw = read_private_file(detail_path(where, kind))
        data = json.loads(raw) if raw is not None else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("id") == record_id else {}
