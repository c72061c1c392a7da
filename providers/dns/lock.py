"""The DNS lock and the DNS record of the last apply, both TXT records in the spec's zone.

Lock: ``_sipctl-lock.<domain>`` holds one string naming the holder (see ``Holder``). It is
created by an UPDATE whose prerequisite is "name is not in use" (RFC 2136 2.4.5), so two
runs racing for it cannot both win: the server refuses the second with YXDOMAIN. It is
released (and taken over, once expired) by an UPDATE whose prerequisite is that the rrset
is still exactly the holder's record ("rrset exists, value dependent"), so a run never
deletes a lock it does not hold.

State: ``_sipctl-state.<domain>`` holds the record of the last apply (JSON, split into
TXT character-strings), written at the end of a successful apply; ``sipctl drift`` compares
the live records with it.

Both reuse the rfc2136 provider's server address, TSIG key and connection. At the end of a
run, the release of the lock and the record of the last apply ride in the zone's last UPDATE
(``Provider.apply``'s ``riders``): the release's prerequisite "the lock still holds exactly our
record" sits beside the changes' own, so the server applies changes, record and release
together or not at all. A run that changes no DNS sends record and release in one UPDATE of
their own (``DnsLock.send_riders``); a refused UPDATE leaves the lock to ``release``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.update
from dns.rdtypes.ANY.TXT import TXT

from sipctl.errors import ProviderError, SipctlError
from sipctl.json_text import read_json
from sipctl.providers.base import UpdateRider
from sipctl.providers.dns.rfc2136 import UpdateMessageRider, message_riders
from sipctl.reconciler.dns_records import absolute, lock_owner, state_owner
from sipctl.reconciler.gitops.locking import UNKNOWN_HOLDER_ID, Holder, unknown_holder

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sipctl.providers.dns.rfc2136 import Rfc2136Provider

LOCK_TTL = 60  # seconds a resolver may cache the lock record; it is never used for routing
_STATE_MARKER = "sipctl-state=1"
_CHUNK = 250
_PREREQ_FAILED = {dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN, dns.rcode.NXRRSET, dns.rcode.YXRRSET}


class _ZoneTxt:
    """One TXT rrset in the spec's zone, read and changed with prerequisites."""

    def __init__(self, provider: Rfc2136Provider, owner: str) -> None:
        self.provider = provider
        self.owner = owner
        self.server = f"{self.provider.host}:{self.provider.port}"

    def read(self) -> list[TXT]:
        query = dns.message.make_query(self.owner, "TXT")
        (response,) = self.provider.exchange([query])
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise ProviderError(
                f"DNS server {self.server} answered {dns.rcode.to_text(rcode)} for {self.owner} TXT"
            )
        found: list[TXT] = []
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.TXT and rrset.name == dns.name.from_text(self.owner):
                found.extend(r for r in rrset if isinstance(r, TXT))
        return found

    def update(self, build: Callable[[dns.update.UpdateMessage], None], what: str) -> bool:
        """Send one UPDATE built by ``build(update)``; False when a prerequisite failed."""
        update = dns.update.UpdateMessage(absolute(self.provider.zone))
        build(update)
        (response,) = self.provider.exchange([update])
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return True
        if rcode in _PREREQ_FAILED:
            return False
        if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
            raise ProviderError(
                f"DNS server {self.server} refused to {what} ({dns.rcode.to_text(rcode)}): "
                f"the zone's update-policy must let {self.provider.signer} change TXT at "
                f"{self.owner} (sipctl render --dir writes an update-policy that does; "
                "a read-only key can plan, not apply)"
            )
        raise ProviderError(
            f"DNS server {self.server} failed to {what}: {dns.rcode.to_text(rcode)}"
        )


def _rdataset(records: list[TXT]) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_rdata_list(0, records)


def _txt(*strings: str) -> TXT:
    return TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [s.encode("utf-8") for s in strings])


def _text_of(record: TXT) -> str:
    return "".join(s.decode("utf-8", "replace") for s in record.strings)


class DnsLock:
    """The lock TXT ``_sipctl-lock.<domain>`` (see the module docstring)."""

    def __init__(self, provider: Rfc2136Provider) -> None:
        self._txt = _ZoneTxt(provider, lock_owner(provider.domain))
        self.key = f"dns:{provider.target_id}:{self._txt.owner}"
        self.where = f"DNS lock {self._txt.owner} on {self._txt.server}"
        self.zone_key = provider.target_id  # riders of this zone go out with its changes
        self.taken_over: Holder | None = None
        self.ends_with_holder = False  # a killed run leaves it behind
        self.public = True  # anyone may query it: its holder is written opaque
        self._released = False  # released by a rider, in the zone's last UPDATE

    def _current(self) -> tuple[list[TXT], Holder | None]:
        records = self._txt.read()
        if not records:
            return records, None
        holders = [Holder.from_text(_text_of(r)) for r in records]
        known = [h for h in holders if h is not None]
        return records, known[0] if known else unknown_holder()

    def holder(self) -> Holder | None:
        return self._current()[1]

    def acquire(self, me: Holder) -> Holder | None:
        self.taken_over = None
        mine = _txt(me.to_text())

        def create(update: dns.update.UpdateMessage) -> None:
            update.absent(self._txt.owner)  # "name is not in use": atomic on the server
            update.add(self._txt.owner, LOCK_TTL, mine)

        for _attempt in range(3):
            if self._txt.update(create, f"create the lock {self._txt.owner}"):
                return None
            records, current = self._current()
            if current is None:
                continue  # released between our two messages: try again
            if current.id == UNKNOWN_HOLDER_ID or not current.expired():
                return current

            def replace(update: dns.update.UpdateMessage, old: list[TXT] = records) -> None:
                update.present(self._txt.owner, _rdataset(old))
                update.delete(self._txt.owner, "TXT")
                update.add(self._txt.owner, LOCK_TTL, mine)

            if self._txt.update(replace, f"take over the expired lock {self._txt.owner}"):
                self.taken_over = current
                return None
        return self.holder() or unknown_holder()

    def _delete(self, me: Holder) -> Callable[[dns.update.UpdateMessage], None]:
        mine = _txt(me.to_text())

        def delete(update: dns.update.UpdateMessage) -> None:
            update.present(self._txt.owner, _rdataset([mine]))  # only while it is ours
            update.delete(self._txt.owner, "TXT")

        return delete

    def release_rider(self, me: Holder) -> UpdateRider:
        """The release, to ride in the zone's last UPDATE (see the module docstring)."""

        def released() -> None:
            self._released = True

        return UpdateMessageRider(
            f"release the lock {self._txt.owner}", sent=released, add_to=self._delete(me)
        )

    def send_riders(self, riders: Sequence[UpdateRider]) -> list[str]:
        """Send riders no change carried (record, release) in one UPDATE; lines to report."""
        if not riders:
            return []

        def build(update: dns.update.UpdateMessage) -> None:
            for rider in message_riders(riders):
                rider.add_to(update)

        what = " and ".join(r.what for r in riders)
        if self._txt.update(build, what):
            for rider in riders:
                rider.sent()
            return []
        # only the lock's prerequisite can fail: it expired and another run took it over
        current = self.holder()
        taken = f"; it is now held by {current.describe()}" if current else ""
        return [
            f"Warning: {self.where} was no longer ours at the end (it had expired){taken}; "
            f"the server refused to {what}"
        ]

    def release(self, me: Holder) -> str | None:
        if self._released:
            return None
        if self._txt.update(self._delete(me), f"release the lock {self._txt.owner}"):
            return None
        current = self.holder()
        taken = f"; it is now held by {current.describe()}" if current else ""
        return f"{self.where} was no longer ours when released (it had expired){taken}"

    def force_unlock(self, lock_id: str) -> str:
        records, current = self._current()
        if current is None:
            return f"{self.where}: not locked any more"
        if current.id != lock_id:
            raise SipctlError(f"{self.where} is held by {current.describe()}, not by {lock_id}")

        def delete(update: dns.update.UpdateMessage) -> None:
            update.present(self._txt.owner, _rdataset(records))
            update.delete(self._txt.owner, "TXT")

        if not self._txt.update(delete, f"remove the lock {self._txt.owner}"):
            raise SipctlError(f"{self.where} changed while it was being removed; try again")
        return f"{self.where}: removed the lock of {current.describe()}"


class DnsStateStore:
    """The record of the last apply, in TXT ``_sipctl-state.<domain>`` (JSON in chunks)."""

    def __init__(self, provider: Rfc2136Provider) -> None:
        self._txt = _ZoneTxt(provider, state_owner(provider.domain))
        self.where = f"DNS record {self._txt.owner} on {self._txt.server}"
        self.public = True  # anyone may query it: drift records an opaque id only
        self.zone_key = provider.target_id

    def read(self) -> dict[str, Any] | None:
        for record in self._txt.read():
            strings = [s.decode("utf-8", "replace") for s in record.strings]
            if strings and strings[0] == _STATE_MARKER:
                try:
                    data = read_json("".join(strings[1:]))
                except json.JSONDecodeError:
                    return None
                return data if isinstance(data, dict) else None
        return None

    def _put(self, record: dict[str, Any]) -> Callable[[dns.update.UpdateMessage], None]:
        text = json.dumps(record, sort_keys=True, separators=(",", ":"))
        chunks = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)]
        rdata = _txt(_STATE_MARKER, *chunks)

        def put(update: dns.update.UpdateMessage) -> None:
            update.delete(self._txt.owner, "TXT")
            update.add(self._txt.owner, LOCK_TTL, rdata)

        return put

    def write(self, record: dict[str, Any]) -> None:
        self._txt.update(self._put(record), f"record the last apply in {self._txt.owner}")

    def forget(self) -> None:
        """Remove the record (a departed customer's zone: nothing of it is applied any more)."""

        def remove(update: dns.update.UpdateMessage) -> None:
            update.delete(self._txt.owner, "TXT")

        self._txt.update(remove, f"remove the record of the last apply {self._txt.owner}")

    def rider(self, record: dict[str, Any]) -> UpdateRider:
        """``record``, to ride in the zone's last UPDATE (with the changes and the release)."""
        return UpdateMessageRider(
            f"record the last apply in {self._txt.owner}", add_to=self._put(record)
        )
