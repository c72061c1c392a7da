"""The DNS lock and the record of the last apply at an octoDNS provider: TXT records in the zone.

The same records as over RFC 2136 (``lock.py``): ``_sipctl-lock.<domain>`` names the holder,
``_sipctl-state.<domain>`` holds the record of the last apply (for ``sipctl drift``).

A run with DNS changes makes two writes: the lock is taken by a change set of its own (a
CREATE), and the zone's one change set carries the changes, the record of the last apply and
the lock's release (a DELETE of exactly the lock record taken), which ride in it
(``Provider.apply``'s ``riders``, ``OctodnsProvider.write_change_set``). A run without DNS
changes sends record and release in one change set of their own (``send_riders``).

- Route53 refuses a CREATE of a name in use and a DELETE whose values are not the live ones,
  so taking the lock, taking over an expired one and releasing it are compare-and-set on the
  provider's side, and a change set whose lock expired and was taken over is refused whole.
  (moto, Route53's emulator, does not enforce either: tests/fixtures/moto_route53.py.)
- Where the API has no condition (PowerDNS, ...) sipctl reads, writes and reads back: two runs
  racing within that window could both believe they hold it, which the plan says once.

Either way the lock is read back after it is taken, and the holder the provider shows wins.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from sipctl.errors import ProviderError, SipctlError, StalePlanError
from sipctl.json_text import read_json
from sipctl.providers.base import UpdateRider
from sipctl.providers.dns.octodns import UNREAD, RrsetRider
from sipctl.providers.dns.owned import LiveRrset
from sipctl.reconciler.dns_records import canonical_text, lock_owner, parse, state_owner, txt_text
from sipctl.reconciler.gitops.locking import UNKNOWN_HOLDER_ID, Holder, unknown_holder

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dns.rdtypes.ANY.TXT import TXT

    from sipctl.providers.dns.octodns import OctodnsProvider

LOCK_TTL = 60
_STATE_PREFIX = "sipctl-state=1 "


class _ZoneTxt:
    """One TXT rrset of the zone, read and replaced through the plugin."""

    def __init__(self, provider: OctodnsProvider, owner: str) -> None:
        self.provider = provider
        self.owner = owner

    def read(self) -> LiveRrset | None:
        return self.provider.read_rrsets([(self.owner, "TXT")]).get((self.owner, "TXT"))

    def replace(self, old: LiveRrset | None, strings: list[str], what: str) -> bool:
        """Turn ``old`` (as read) into a TXT of one record per string (none: delete it).

        False when the rrset is no longer ``old``: refused by a conditional provider, or
        found changed by the re-read of one without conditions.
        """
        new = _rrset_of(strings)
        if not self.provider.conditional and self.read() != old:
            return False
        try:
            self.provider.write({(self.owner, "TXT"): old}, {(self.owner, "TXT"): new}, what)
        except StalePlanError:
            return False
        return True


def _rrset_of(strings: list[str]) -> LiveRrset | None:
    """A TXT rrset of one record per string (None: no strings)."""
    # one character-string holds at most 255 bytes: a long value is cut in chunks
    texts = [txt_text(*(s[i : i + 250] for i in range(0, len(s), 250))) for s in strings]
    if not texts:
        return None
    return LiveRrset(LOCK_TTL, tuple(sorted((canonical_text("TXT", t), t) for t in texts)))


def _strings(rrset: LiveRrset | None) -> list[str]:
    """Each TXT record's text (character-strings joined)."""
    if rrset is None:
        return []
    found = []
    for _, exact in rrset.records:
        record: TXT = parse("TXT", exact)  # type: ignore[assignment]
        found.append("".join(s.decode("utf-8", "replace") for s in record.strings))
    return found


class OctodnsLock:
    """The lock TXT ``_sipctl-lock.<domain>`` at an octoDNS provider (module docstring)."""

    def __init__(self, provider: OctodnsProvider) -> None:
        self._txt = _ZoneTxt(provider, lock_owner(provider.domain))
        self.key = f"dns:{provider.target_id}:{self._txt.owner}"
        self.where = f"DNS lock {self._txt.owner} at {provider.plugin.class_path}"
        self.zone_key = provider.target_id  # riders of this zone go out with its change set
        self.taken_over: Holder | None = None
        self.ends_with_holder = False  # a killed run leaves it behind
        self.public = True  # anyone may query it: its holder is written opaque
        self._mine: LiveRrset | None = None  # the lock record as read back once taken
        self._released = False  # released by a rider, in the zone's change set

    def _current(self) -> tuple[LiveRrset | None, Holder | None]:
        rrset = self._txt.read()
        if rrset is None:
            return None, None
        holders = [Holder.from_text(s) for s in _strings(rrset)]
        known = [h for h in holders if h is not None]
        return rrset, known[0] if known else unknown_holder()

    def holder(self) -> Holder | None:
        return self._current()[1]

    def acquire(self, me: Holder) -> Holder | None:
        self.taken_over = None
        for _attempt in range(3):
            rrset, current = self._current()
            if current is not None and (current.id == UNKNOWN_HOLDER_ID or not current.expired()):
                return current
            what = "take the lock" if current is None else "take over the expired lock"
            if not self._txt.replace(rrset, [me.to_text()], f"{what} {self._txt.owner}"):
                continue  # someone else wrote it in between: look again
            # The holder the provider shows now is the holder (the other writer may have won)
            mine, shown = self._current()
            if shown is not None and shown.id == me.id:
                self.taken_over = current
                self._mine, self._released = mine, False
                return None
            return shown or unknown_holder()
        return self.holder() or unknown_holder()

    def release_rider(self, me: Holder) -> UpdateRider | None:
        """The release (a DELETE of exactly the lock record taken), to ride in the zone's
        last change set."""
        del me  # the record taken is known exactly: ``_mine``
        if self._mine is None:
            return None

        def released() -> None:
            self._released = True

        return RrsetRider(
            f"release the lock {self._txt.owner}",
            sent=released,
            rrsets={(self._txt.owner, "TXT"): (self._mine, None)},
        )

    def send_riders(self, riders: Sequence[UpdateRider]) -> list[str]:
        """Send riders no change carried (record, release) in one change set; lines to
        report."""
        if not riders:
            return []
        what = " and ".join(r.what for r in riders)
        try:
            self._txt.provider.write_change_set({}, {}, riders, what)
        except StalePlanError:
            # only the lock can have changed: it expired and another run took it over
            current = self.holder()
            taken = f"; it is now held by {current.describe()}" if current else ""
            return [
                f"Warning: {self.where} was no longer ours at the end (it had expired){taken}; "
                f"the provider refused to {what}"
            ]
        return []

    def release(self, me: Holder) -> str | None:
        if self._released:
            return None
        rrset, current = self._current()
        if current is None or current.id != me.id:
            now = f"; it is now held by {current.describe()}" if current else ""
            return f"{self.where} was no longer ours when released (it had expired){now}"
        if not self._txt.replace(rrset, [], f"release the lock {self._txt.owner}"):
            return f"{self.where} changed while it was being released"
        return None

    def force_unlock(self, lock_id: str) -> str:
        rrset, current = self._current()
        if current is None:
            return f"{self.where}: not locked any more"
        if current.id != lock_id:
            raise SipctlError(f"{self.where} is held by {current.describe()}, not by {lock_id}")
        if not self._txt.replace(rrset, [], f"remove the lock {self._txt.owner}"):
            raise SipctlError(f"{self.where} changed while it was being removed; try again")
        return f"{self.where}: removed the lock of {current.describe()}"


class OctodnsStateStore:
    """The record of the last apply in TXT ``_sipctl-state.<domain>`` (JSON, base64, so that
    no provider's TXT quoting can change it)."""

    def __init__(self, provider: OctodnsProvider) -> None:
        self._txt = _ZoneTxt(provider, state_owner(provider.domain))
        self.where = f"DNS record {self._txt.owner} at {provider.plugin.class_path}"
        self.public = True  # anyone may query it: drift records an opaque id only
        self.zone_key = provider.target_id
        self._what = f"record the last apply in {self._txt.owner}"
        self._last: LiveRrset | None = None

    def read(self) -> dict[str, Any] | None:
        self._last = self._txt.read()
        for text in _strings(self._last):
            if text.startswith(_STATE_PREFIX):
                try:
                    raw = base64.b64decode(text[len(_STATE_PREFIX) :], validate=True)
                    data = read_json(raw)
                except ValueError:
                    return None
                return data if isinstance(data, dict) else None
        return None

    def write(self, record: dict[str, Any]) -> None:
        old = self._last if self._last is not None else self._txt.read()
        if not self._txt.replace(old, [_state_text(record)], self._what):
            raise ProviderError(f"{self.where} changed while it was being written")
        self._last = None

    def forget(self) -> None:
        """Remove the record (a departed customer's zone: nothing of it is applied any more)."""
        old = self._txt.read()
        if old is not None and not self._txt.replace(old, [], f"remove {self._txt.owner}"):
            raise ProviderError(f"{self.where} changed while it was being removed")

    def rider(self, record: dict[str, Any]) -> UpdateRider:
        """``record``, to ride in the zone's last change set (with the changes and the
        lock's release); the provider reads the old record just before writing."""
        new = _rrset_of([_state_text(record)])
        return RrsetRider(self._what, rrsets={(self._txt.owner, "TXT"): (UNREAD, new)})


def _state_text(record: dict[str, Any]) -> str:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return _STATE_PREFIX + base64.b64encode(text.encode()).decode()
