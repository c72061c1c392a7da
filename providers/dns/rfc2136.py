"""The ``rfc2136`` DNS provider: authoritative TSIG-signed reads, one dynamic UPDATE to write.

Reading takes the names sipctl owns (the domain's NAPTR, three SRVs, the registry TXT, the
A/AAAA and the claims of the hosts it lists or the spec wants, and the SOA) from the first
message of one signed zone transfer when the whole zone fits in that message: one signature
for the server to check and one to make, as octoDNS costs it, instead of nine. A larger
zone (or a key that may not transfer) is read by asking for the owned names only, pipelined
over one TCP connection to the primary, and the rest of its transfer is never read: a plan
costs the same in a zone of 200 records as in one of 100,000, and no large zone is
transferred whole. The
queries and the transfer are written, and their answers checked and decoded, by ``wire``
(each answer's TSIG verified over the whole message by dnspython, then only its answer
section, or of a transfer only the records at the owned names, decoded). Both reads give the
same live state (a property test holds them to it on a real BIND).

Writing sends every change of the zone in ONE UPDATE message. Each changed rrset carries an
RFC 2136 prerequisite that it is still exactly what was read ("rrset exists (value
dependent)" with the whole live rrset, or "rrset does not exist"), so an edit made by someone
else in between makes the server refuse the whole message: StalePlanError, nothing changed.
What ends a run rides in the same message with its own prerequisites (``apply``'s
``riders``: the DNS lock's release, the record of the last apply), so the provider sends
them without knowing what they are, and the server applies all or nothing.

The key that signs is ``tsig_key.TsigKey``; the connection, ``tcp_pipeline.Connection``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
from dns.rdtypes.ANY.TXT import TXT

from sipctl.errors import ProviderError, SpecError, StalePlanError
from sipctl.providers.base import Provider, UpdateRider, family_riders
from sipctl.providers.dns.challenge import (
    CHALLENGE_TTL,
    ChallengeRecord,
    ChallengeWriter,
    challenge_names,
    challenges_in,
)
from sipctl.providers.dns.owned import (
    CNAME,
    LiveRrset,
    decided_on,
    kept_rrsets,
    owned_state,
    owners,
    read_owned,
    records_of,
    rrset_after,
    wanted_names,
)
from sipctl.providers.dns.tcp_pipeline import Connection
from sipctl.providers.dns.tsig_key import TsigKey
from sipctl.providers.dns.wire import Answer
from sipctl.reconciler.dns_records import absolute, name_of, parse
from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import LiveState, Resource

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.lock import DnsLock, DnsStateStore
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Dns, Spec

DEFAULT_PORT = 53
_PREREQUISITE_FAILED = {
    dns.rcode.NXDOMAIN,
    dns.rcode.YXDOMAIN,
    dns.rcode.NXRRSET,
    dns.rcode.YXRRSET,
}


@dataclass(frozen=True)
class UpdateMessageRider(UpdateRider):
    """A rider of this family: ``add_to`` adds its prerequisites and updates to the UPDATE."""

    add_to: Callable[[dns.update.UpdateMessage], None] = lambda _update: None


def message_riders(riders: Sequence[UpdateRider]) -> list[UpdateMessageRider]:
    """``riders`` as this family's (they come from its own lock and record, ``lock.py``)."""
    return family_riders(riders, UpdateMessageRider, "an RFC 2136 UPDATE")


class Rfc2136Provider(Provider):
    """A zone on a primary name server that accepts RFC 2136 dynamic updates."""

    layer: ClassVar[str] = "dns"
    name: ClassVar[str] = "rfc2136"
    shares_hosts: ClassVar[bool] = True  # owned.py: owned_state and rrset_after
    answers_acme_challenges: ClassVar[bool] = True

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        if loaded.spec.dns is None or loaded.spec.dns.server is None:
            raise SpecError(f"{loaded.source}: provider rfc2136 needs dns.server")
        self._loaded = loaded
        self._ctx = ctx
        self._dns: Dns = loaded.spec.dns
        self.zone = absolute(loaded.spec.zone)
        self.domain = loaded.spec.domain
        self.host, self.port = split_server(loaded.spec.dns.server)
        self.timeout = loaded.spec.dns.timeout
        self.messages_sent = 0  # DNS messages sent by this provider (for the bench and tests)
        self.updates_sent = 0
        self.key = TsigKey(loaded, ctx)

    @classmethod
    def authoritative_server(cls, loaded: LoadedSpec) -> str | None:
        return loaded.spec.dns.server if loaded.spec.dns is not None else None

    @classmethod
    def server_admin_files(cls, spec: Spec) -> dict[str, str]:
        from sipctl.reconciler.render.dns import update_policy

        return {f"{spec.domain}.update-policy.conf": update_policy(spec)}

    @property
    def target_id(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"rfc2136://{host}:{self.port}/{self.zone}"

    @property
    def _server(self) -> str:
        return f"{self.host}:{self.port}"

    def preflight(self) -> None:
        """The TSIG secret (environment or file) is read and checked before any target of the
        run is read: before a packet goes to the name server or the PBX."""
        self.key.keyring()

    # --- read -------------------------------------------------------------------------------

    def read(self, desired: Sequence[Resource]) -> LiveState:
        """Read the owned rrsets: from the first message of one signed zone transfer when the
        whole zone fits in it, else by queries (see ``_read_by_transfer``)."""
        self.key.keyring()  # a bad secret is reported before any packet is sent
        answers, how = self._read_by_transfer(desired), "one signed zone transfer"
        if answers is None:
            answers = self._read_by_queries(desired)
            how = f"{self.messages_sent} signed messages"
        if answers.pop((self.zone, "SOA"), None) is None:
            raise ProviderError(
                f"DNS server {self._server} has no SOA for zone {self.zone}: it does not "
                "serve that zone (check dns.zone and dns.server)"
            )
        live = owned_state(answers, desired, self.domain, self._ctx.run_domains, zone=self.zone)
        live.notes.extend(self.key.notes)
        self._ctx.log(
            f"rfc2136: read {len(answers)} owned rrset(s) of zone {self.zone} from {self._server} "
            f"with {how}"
        )
        return live

    def _wanted(self, desired: Sequence[Resource]) -> list[tuple[str, str]]:
        """The (owner, type) pairs a plan reads first: the SOA, the domain's NAPTR, the three
        SRVs, the registry TXT and the A/AAAA and claims of the hosts the spec wants."""
        return [(self.zone, "SOA"), *wanted_names(self.domain, desired)]

    def _read_by_queries(self, desired: Sequence[Resource]) -> dict[tuple[str, str], LiveRrset]:
        """Ask for the owned names only: at most two pipelined batches on one connection."""
        with Connection(self, reuse=True) as conn:
            wanted = self._wanted(desired)
            answers, _ = read_owned(lambda n: self._ask(conn, n), wanted, self.domain, self.zone)
        return answers

    def _read_by_transfer(
        self, desired: Sequence[Resource]
    ) -> dict[tuple[str, str], LiveRrset] | None:
        """The owned rrsets out of the first message of a signed AXFR, when that message holds
        the whole zone (it opens and closes with the SOA): the server signs and sends one
        message instead of answering nine queries, the cost octoDNS puts on it. None when the
        server refuses the transfer (the key may only query) or the zone is larger than one
        message (BIND packs about 20 kB): then the rest of the transfer is never read and the
        owned names are asked for, so a large zone is never transferred whole.

        The owned rrsets are taken exactly as the queries would have asked for them
        (``_wanted``, then the hosts the live registry lists), so both reads give one state.
        """
        with Connection(self, reuse=True) as conn:
            first = conn.transfer_start(self.zone)
        types, rcode = first.types, first.rcode
        if rcode == dns.rcode.NOERROR and not first.flags & dns.flags.AA:
            raise ProviderError(self._not_the_primary())
        why = ""
        if rcode != dns.rcode.NOERROR:
            why = f"refused ({dns.rcode.to_text(rcode)})"
        elif not types or types[0] != dns.rdatatype.SOA:
            why = "answered without the zone's SOA"
        elif len(types) < 2 or types[-1] != dns.rdatatype.SOA:
            why = "larger than one message"
        if why:
            self._ctx.log(f"rfc2136: zone transfer of {self.zone} {why}; reading by queries")
            return None

        # A CNAME at an owned name is looked for only where the zone has one at all (most
        # have none): the message's record types are known without decoding a record.
        cnames = dns.rdatatype.CNAME in types

        def take(names: list[tuple[str, str]]) -> dict[tuple[str, str], LiveRrset]:
            taken: dict[tuple[str, str], LiveRrset] = {}
            cname_names = [(o, CNAME) for o in owners(names)] if cnames else []
            for owner, rdtype in [*names, *cname_names]:
                name, kind = name_of(owner), dns.rdatatype.from_text(rdtype)
                try:  # the records asked for are decoded only now
                    found: tuple[int, list[dns.rdata.Rdata]] | None = None
                    if kind != dns.rdatatype.SOA:
                        found = first.rrset(name, kind)
                    elif first.holds(name, kind):  # only that it is there: never decoded
                        found = (0, [])
                except dns.exception.DNSException as exc:
                    raise ProviderError(
                        f"DNS server {self.host} port {self.port} sent an answer sipctl cannot use "
                        f"({type(exc).__name__}: {exc})"
                    ) from None
                if found is not None:
                    taken[(owner, rdtype)] = _live_rrset(rdtype, *found)
            return taken

        answers, _ = read_owned(take, self._wanted(desired), self.domain, self.zone)
        return answers

    def _ask(
        self, conn: Connection, names: list[tuple[str, str]]
    ) -> dict[tuple[str, str], LiveRrset]:
        answers = conn.ask(names)
        found: dict[tuple[str, str], LiveRrset] = {}
        for (owner, rdtype), answer in zip(names, answers, strict=True):
            self._check_answer(answer, owner, rdtype)
            rrset = answer.rrset(name_of(owner), dns.rdatatype.from_text(rdtype))
            if rrset is not None:
                found[(owner, rdtype)] = _live_rrset(rdtype, *rrset)
            cname = answer.rrset(name_of(owner), dns.rdatatype.CNAME)
            if cname is not None:  # the answer to any type at a CNAME names it
                found[(owner, CNAME)] = _live_rrset(CNAME, *cname)
        return found

    def _check_answer(self, response: Answer, owner: str, rdtype: str) -> None:
        rcode = response.rcode
        if rcode == dns.rcode.REFUSED:
            raise ProviderError(
                f"DNS server {self._server} refused to answer {owner} {rdtype}: check that it "
                f"serves zone {self.zone} and that its allow-query lets {self.key.who()} query it"
            )
        if rcode == dns.rcode.NOTAUTH:
            raise ProviderError(
                f"DNS server {self._server} is not authoritative for zone {self.zone} (NOTAUTH); "
                f"check dns.server and the TSIG key {self.key.name_text()}"
            )
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise ProviderError(
                f"DNS server {self._server} answered {dns.rcode.to_text(rcode)} "
                f"for {owner} {rdtype}"
            )
        if not response.flags & dns.flags.AA:
            raise ProviderError(self._not_the_primary())

    def _not_the_primary(self) -> str:
        return (
            f"DNS server {self._server} is not authoritative for zone {self.zone} (no AA "
            "bit): dns.server must be the zone's primary, not a resolver or a secondary"
        )

    # --- capabilities: the lock and the record of the last apply are TXT records in the zone,
    # released and written in the zone's last UPDATE (providers/dns/lock.py) ------------------

    def lock_site(self) -> DnsLock:
        from sipctl.providers.dns.lock import DnsLock

        return DnsLock(self)

    def state_store(self) -> DnsStateStore:
        from sipctl.providers.dns.lock import DnsStateStore

        return DnsStateStore(self)

    # --- apply ------------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        """Send all ``changes`` in one UPDATE with prerequisites; refused as a whole if stale."""
        if not changes:
            return []
        for change in changes:
            if live.resources.get(change.address) != change.before:
                raise StalePlanError(
                    f"{change.address.kind} {change.address.name} changed since the plan was "
                    "made; nothing was changed. Run plan again"
                )
        update = self.build_update(changes, live)
        # What ends the run (the lock's release, the record of the last apply) may ride in
        # this UPDATE, with its own prerequisites: all of it is applied, or none of it.
        for rider in message_riders(riders):
            rider.add_to(update)
        with Connection(self) as conn:
            (response,) = conn.exchange([update])
        self.updates_sent += 1
        rcode = response.rcode()
        if rcode in _PREREQUISITE_FAILED:
            also = "".join(f"; it would also {r.what}" for r in riders)
            raise StalePlanError(
                f"zone {self.zone} changed between read and write (prerequisite failed: "
                f"{dns.rcode.to_text(rcode)}{also}); the server refused the UPDATE and nothing "
                "was changed. Run plan again"
            )
        if rcode == dns.rcode.REFUSED:
            raise ProviderError(
                f"DNS server {self._server} refused the UPDATE of zone {self.zone}: check the "
                f"zone's update-policy (or allow-update) for key {self.key.name_text()} "
                "(sipctl render --dir writes a least-privilege update-policy)"
            )
        if rcode == dns.rcode.NOTAUTH:
            raise ProviderError(
                f"DNS server {self._server} is not authoritative for zone {self.zone} or did "
                f"not accept key {self.key.name_text()} (NOTAUTH): send updates to the primary"
            )
        if rcode == dns.rcode.NOTZONE:
            raise ProviderError(
                f"a name sipctl updates is not inside zone {self.zone} (NOTZONE): check dns.zone"
            )
        if rcode != dns.rcode.NOERROR:
            raise ProviderError(
                f"DNS server {self._server} failed the UPDATE of zone {self.zone}: "
                f"{dns.rcode.to_text(rcode)}"
            )
        for done in riders:
            done.sent()
        return [
            f"zone {self.zone}: {len(changes)} rrset(s) changed in one UPDATE to {self._server}"
        ]

    def build_update(self, changes: Sequence[Change], live: LiveState) -> dns.update.UpdateMessage:
        """The UPDATE message: prerequisites first, then deletions and additions per rrset."""
        keyring = self.key.keyring()
        update = dns.update.UpdateMessage(
            self.zone,
            keyring=keyring,
            keyname=dns.name.from_text(self.key.name()) if keyring else None,
            keyalgorithm=self.key.algorithm(),
        )
        rrsets = kept_rrsets(live)

        def as_read(owner: str, rdtype: str) -> None:
            full = rrsets.get((owner, rdtype))
            if full is None:
                update.absent(owner, rdtype)
            else:
                exact = [e for _, e in full.records]
                update.present(owner, dns.rdataset.from_text_list("IN", rdtype, 0, exact))

        for owner, rdtype in decided_on(changes):
            as_read(owner, rdtype)
        for change in sorted(changes, key=lambda c: c.address):
            owner, rdtype = change.address.name, change.address.kind
            as_read(owner, rdtype)
            full = rrsets.get((owner, rdtype))
            after = rrset_after(change, full, self._dns.ttl)
            if after.others:
                # the rrset is shared (rrset_after): delete ours one by one, as they are live
                gone = set(records_of(change.before)) - set(after.ours)
                for canonical_text, exact_text in full.records if full else ():
                    if canonical_text in gone:
                        update.delete(owner, parse(rdtype, exact_text))
            elif full is not None:
                update.delete(owner, rdtype)
            for record in after.ours:
                update.add(owner, after.ttl, parse(rdtype, record))
        return update

    # --- ACME DNS-01 challenges (see providers/dns/challenge.py) ------------------------------

    def challenge_writer(self) -> ChallengeWriter:
        return self

    def publish_challenges(self, records: Sequence[ChallengeRecord]) -> None:
        self._change_challenges(records, add=True)

    def withdraw_challenges(self, records: Sequence[ChallengeRecord]) -> None:
        self._change_challenges(records, add=False)

    def _change_challenges(self, records: Sequence[ChallengeRecord], *, add: bool) -> None:
        """One UPDATE adding (or deleting) exactly these TXT values; no other record moves."""
        if not records:
            return
        update = dns.update.UpdateMessage(self.zone)
        for record in records:
            rdata = TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [record.value.encode("ascii")])
            if add:
                update.add(record.owner, CHALLENGE_TTL, rdata)
            else:
                update.delete(record.owner, rdata)
        with Connection(self) as conn:
            (response,) = conn.exchange([update])
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            what = "add" if add else "remove"
            raise ProviderError(
                f"DNS server {self._server} refused to {what} the ACME challenge record(s) "
                f"{', '.join(sorted({r.owner for r in records}))} "
                f"({dns.rcode.to_text(rcode)}): the zone's update-policy must let key "
                f"{self.key.name_text()} change TXT at _acme-challenge names"
            )

    def challenges_visible(self, records: Sequence[ChallengeRecord]) -> bool:
        with Connection(self, reuse=True) as conn:
            return challenges_in(self._ask(conn, challenge_names(records)), records)

    @property
    def signer(self) -> str:
        """Which key signs this run's messages, for messages (its name, never its secret)."""
        return self.key.signer

    def exchange(self, messages: list[dns.message.Message]) -> list[dns.message.Message]:
        """Send ``messages`` on one connection, signed with the spec's key (used by the lock).

        Errors come back as ProviderError with the same words as the provider's own.
        """
        with Connection(self) as conn:
            return conn.exchange(messages)


def _live_rrset(rdtype: str, ttl: int, rdatas: list[dns.rdata.Rdata]) -> LiveRrset:
    """An rrset as read. Of the zone's SOA a read uses only that it is there (the server
    serves the zone; ``read`` takes the rrset out before anything is compared or kept), so
    it is the same empty rrset however it was read: its text is never written (nor, in a
    transfer, its data decoded)."""
    if rdtype == "SOA":
        return LiveRrset(0, ())
    return LiveRrset.from_rdatas(ttl, rdatas)


def split_server(value: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (IPv6 as ``[::1]:53``) -> (host, port)."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, DEFAULT_PORT
