"""The ``octodns`` DNS provider: a zone at an API provider, through an octoDNS provider plugin.

Ownership is the rfc2136 provider's (``owned.py``): the SIP/SIPS NAPTRs inside the domain's
NAPTR rrset, the transports' SRV rrsets, the registry TXT, the A/AAAA of listed hosts. Left
alone, octoDNS owns a whole zone and plans to delete whatever its desired zone lacks, so
sipctl never lets the plugin plan: it builds the octoDNS ``Plan`` itself, holding only
changes of owned rrsets, from the rrsets it read, and hands it to ``provider.apply`` (one
change set per zone and run). octoDNS works on whole rrsets: a NAPTR rrset shared with
non-SIP entries is written back as their union.

Every read goes through a fresh plugin instance (plugins cache rrsets). Where the plugin's
API can list one name (PowerDNS, Route53: ``octodns_reads.py``) only sipctl's names are read;
any other plugin populates the whole zone and sipctl keeps its names, so there a read costs
what the zone costs (bench/octodns_plan.py measures both).

Concurrent edits (a plan is a contract):

- Route53 (conditional): an rrset that changes is sent as DELETE of the values sipctl read
  plus CREATE of the new ones, in one change batch. Route53 applies a batch whole or not at
  all and refuses a DELETE whose values are not exactly the live ones, so an edit between
  read and write makes it refuse the batch: StalePlanError, nothing changed. An rrset that
  decided a change without changing (a server's claims: ``owned.decided_on``) rides the
  same way, DELETE and CREATE of the values read, and is left as it was; one read as
  absent cannot ride: Route53 takes a batch's changes in order, so CREATE and then DELETE
  of it would hold it absent, but octodns_route53 sorts every DELETE of a batch before its
  CREATEs (``_mod_keyer``, in ``_apply`` and again in ``_really_apply``), and the DELETE of
  an rrset that is not there is refused whatever the zone holds. It is read again just
  before writing, as on other providers, which narrows the window to that read and the
  batch (a zone written before claims, where a removal races a new claim). The canary
  ``test_octodns_route53_still_sends_every_delete_of_a_batch_before_its_creates`` fails
  when the plugin sends changes in order; then the read can give way to the batch.
- Others (PowerDNS, Cloudflare, ...): the API has no condition. The plan says so once;
  sipctl re-reads the owned rrsets just before writing (refusing if they changed), writes,
  reads back and reports any difference.

What ends a run rides in the zone's change set: the record of the last apply and the lock's
release (``octodns_lock.py``, ``write_change_set``), so an apply is two writes: the lock,
then one change set. A plugin that writes record by record gets the riders in a second
``provider.apply`` once the changes have landed.

A write that fails on the provider's side (throttled, 5xx) is not replayed: part of it may
have landed, so the retry reads the rrsets again and sends what is still missing (``write``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sipctl.errors import ProviderError, SpecError, StalePlanError
from sipctl.providers.base import Provider, UpdateRider, family_riders
from sipctl.providers.dns.challenge import (
    CHALLENGE_TTL,
    ChallengeRecord,
    ChallengeWriter,
    challenge_names,
    challenges_in,
)
from sipctl.providers.dns.octodns_plugin import (
    ChangeSetRefused,
    PluginConfig,
    call,
    offline_check,
    quiet,
)
from sipctl.providers.dns.octodns_reads import populate_names, prepare_apply
from sipctl.providers.dns.octodns_records import live_rrset, new_record, new_zone
from sipctl.providers.dns.owned import (
    CNAME,
    LiveRrset,
    decided_on,
    kept_rrsets,
    owned_state,
    owners,
    read_owned,
    rrset_after,
    wanted_names,
)
from sipctl.reconciler.dns_records import absolute, canonical_text, parse
from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import LiveState, Resource

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.octodns_lock import OctodnsLock, OctodnsStateStore
    from sipctl.schemas.loader import LoadedSpec

Names = list[tuple[str, str]]
Rrsets = dict[tuple[str, str], LiveRrset]

# Plugins whose API refuses a change set when the values it deletes are no longer live.
CONDITIONAL_MODULES = ("octodns_route53",)
# Plugins that send one provider.apply as one request the server applies whole or not at all
# (PowerDNS: one PATCH, one transaction; Route53: one change batch, up to 1,000 records).
# Others (Cloudflare, ...) make a request per record: see ``write_change_set``.
ATOMIC_MODULES = ("octodns_route53", "octodns_powerdns")
UNREAD: Any = object()  # a rider's rrset the provider reads just before writing
NO_CONDITION_NOTE = (
    "this provider cannot refuse a concurrent edit; sipctl re-reads just before writing, "
    "then reads back"
)


@dataclass(frozen=True)
class RrsetRider(UpdateRider):
    """A rider of this family: whole rrsets written in the zone's one change set, by
    (owner, type): (the rrset as the rider knows it, or ``UNREAD``: read it just before
    writing; the new rrset, None to delete it)."""

    rrsets: Mapping[tuple[str, str], tuple[Any, LiveRrset | None]] = field(default_factory=dict)


class OctodnsProvider(Provider):
    """A zone at a DNS API provider, through the octoDNS plugin named in ``dns.octodns``."""

    layer: ClassVar[str] = "dns"
    name: ClassVar[str] = "octodns"
    shares_hosts: ClassVar[bool] = True  # owned.py: owned_state and rrset_after
    answers_acme_challenges: ClassVar[bool] = True

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        spec = loaded.spec
        if spec.dns is None or spec.dns.octodns is None:
            raise SpecError(f"{loaded.source}: provider octodns needs dns.octodns")
        self._ctx = ctx
        self._loaded = loaded
        self.plugin = PluginConfig.from_spec(loaded, ctx)
        self.zone = absolute(spec.zone)
        self.domain = spec.domain
        self.naptr_supported = "NAPTR" in self.plugin.supports
        self.conditional = self.plugin.class_path.split(".")[0] in CONDITIONAL_MODULES
        self.atomic = self.plugin.class_path.split(".")[0] in ATOMIC_MODULES
        self.reads = 0  # zone reads through the plugin (tests, bench)
        self.narrow = False  # the last read asked for sipctl's names only
        self.applies = 0  # provider.apply calls (one per zone and run)
        args = spec.dns.octodns.arguments()
        where = ""
        if isinstance(args.get("host"), str):
            port = args.get("port")
            where = f"@{args['host']}" + (f":{port}" if isinstance(port, int | str) else "")
        self._target = f"octodns:{self.plugin.class_path}{where}/{self.zone}"

    @property
    def target_id(self) -> str:
        return self._target

    offline_check = staticmethod(offline_check)

    # --- what can be published --------------------------------------------------------------

    def publishable(self, desired: Sequence[Resource]) -> list[Resource]:
        """The desired rrsets this provider can hold: without NAPTR support, SRV only."""
        held = super().publishable(desired)
        if self.naptr_supported:
            return held
        return [r for r in held if r.address.kind != "NAPTR"]

    # --- read -------------------------------------------------------------------------------

    def read(self, desired: Sequence[Resource]) -> LiveState:
        names = wanted_names(self.domain, desired)
        if not self.naptr_supported:
            names = [n for n in names if n[1] != "NAPTR"]
        rrsets, _ = read_owned(self.read_rrsets, names, self.domain, self.zone)
        live = owned_state(rrsets, desired, self.domain, self._ctx.run_domains, zone=self.zone)
        if not self.naptr_supported:
            live.notes.append(
                f"{self.plugin.class_path} does not support NAPTR records: sipctl publishes "
                "SRV only (RFC 3263 clients fall back to SRV when there is no NAPTR)"
            )
        if not self.conditional:
            live.notes.append(NO_CONDITION_NOTE)
        how = "its names only" if self.narrow else "the whole zone"
        self._ctx.log(
            f"octodns: read {len(rrsets)} owned rrset(s) of zone {self.zone} through "
            f"{self.plugin.class_path} ({how})"
        )
        return live

    def read_rrsets(self, names: Names) -> Rrsets:
        """The live rrsets at ``names`` (absent ones left out), read through a fresh plugin
        instance: only these names where the plugin's API can list one (``octodns_reads``),
        else the whole zone. A CNAME at one of their owners is reported too, as (owner,
        CNAME) (``owned.cname_problems``): every read already holds all types at a name."""
        asked = [*names, *((owner, CNAME) for owner in owners(names))]
        return collect(self.populate(asked), asked)

    def populate(self, names: Names | None = None) -> Any:
        """The zone as a fresh plugin instance reads it: the records at ``names`` where the
        plugin can list one name, else all of them. Unknown zone: ProviderError."""
        plugin = self.plugin.instance()
        zone = new_zone(self.zone)
        owners = sorted({owner for owner, _ in names or []})
        exists = None
        if names is not None:
            exists = call(
                lambda: populate_names(plugin, zone, owners),
                f"read zone {self.zone}",
                self.plugin.class_path,
            )
        self.narrow = exists is not None
        if exists is None:
            exists = call(
                lambda: plugin.populate(zone, target=True, lenient=True),
                f"read zone {self.zone}",
                self.plugin.class_path,
            )
        self.reads += 1
        if not exists:
            raise ProviderError(
                f"the DNS provider ({self.plugin.class_path}) has no zone {self.zone}: check "
                "dns.zone (sipctl never creates a zone)"
            )
        return zone

    # --- capabilities: the lock and the record of the last apply are TXT records in the zone,
    # released and written in the zone's one change set (providers/dns/octodns_lock.py) -------

    def lock_site(self) -> OctodnsLock:
        from sipctl.providers.dns.octodns_lock import OctodnsLock

        return OctodnsLock(self)

    def state_store(self) -> OctodnsStateStore:
        from sipctl.providers.dns.octodns_lock import OctodnsStateStore

        return OctodnsStateStore(self)

    # --- apply ------------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        """All ``changes`` in one ``provider.apply``, with what rides along (``riders``: the
        record of the last apply, the lock's release); refused as a whole when stale."""
        if not changes:
            return []
        for change in changes:
            if live.resources.get(change.address) != change.before:
                raise StalePlanError(
                    f"{change.address.kind} {change.address.name} changed since the plan was "
                    "made; nothing was changed. Run plan again"
                )
        read = kept_rrsets(live)
        wanted = {
            (c.address.name, c.address.kind): self._after(c, read.get(_key(c))) for c in changes
        }
        before = {k: read.get(k) for k in wanted}
        held = {k: read.get(k) for k in decided_on(changes)}
        what = f"apply {len(changes)} change(s) to zone {self.zone}"
        self.write_change_set(before, wanted, riders, what, held)
        also = f" (with it: {' and '.join(r.what for r in riders)})" if riders else ""
        lines = [
            f"zone {self.zone}: {len(changes)} rrset(s) changed in one change set through "
            f"{self.plugin.class_path}{also}"
        ]
        if not self.conditional:
            lines += self._read_back(wanted)
        return lines

    def write_change_set(
        self,
        before: dict[tuple[str, str], LiveRrset | None],
        after: dict[tuple[str, str], LiveRrset | None],
        riders: Sequence[UpdateRider],
        what: str,
        held: Mapping[tuple[str, str], LiveRrset | None] | None = None,
    ) -> None:
        """One change set: the rrsets ``before`` (as read) become ``after``, and each rider's
        rrsets ride along (``RrsetRider.rrsets``). Without a conditional write the rrsets
        are read again just before writing (one read), with those that decided a change
        without changing (``held``, as read: ``owned.decided_on``), and the set is refused
        when any changed; a rider's rrset it does not know (``UNREAD``) is taken from that
        read. A conditional write holds the held rrsets in the change set itself (DELETE
        and CREATE of what was read), but those read as absent, which it reads again.

        A plugin that writes record by record (not ``atomic``) could release the lock, or
        record the apply, before the changes land (octoDNS orders deletions first): there
        the riders go in a second ``provider.apply``, once the changes have landed."""
        before, after = dict(before), dict(after)
        unread: list[tuple[str, str]] = []
        riding: set[tuple[str, str]] = set()
        for rider in family_riders(riders, RrsetRider, "an octoDNS change set"):
            for key, (old, new) in rider.rrsets.items():
                after[key] = new
                riding.add(key)
                if old is UNREAD:
                    unread.append(key)
                else:
                    before[key] = old
        expected = {**(held or {}), **before}
        check = list(expected)
        holds: dict[tuple[str, str], LiveRrset] = {}
        if self.conditional:
            holds = {k: v for k, v in (held or {}).items() if v is not None and k not in before}
            check = [k for k, v in (held or {}).items() if v is None and k not in before]
        if check or unread:
            now = self.read_rrsets(sorted({*check, *unread}))
            before.update({key: now.get(key) for key in unread})
            changed = [f"{t} {n}" for n, t in sorted(check) if now.get((n, t)) != expected[(n, t)]]
            if changed:
                also = "".join(f"; it would also {r.what}" for r in riders)
                raise StalePlanError(
                    f"zone {self.zone}: {', '.join(changed)} changed since it was read{also}; "
                    "nothing was changed. Run plan again"
                )
        keys = [k for k in after if after[k] != before.get(k)]
        rounds = [keys] if self.atomic else [[k for k in keys if k not in riding]]
        if not self.atomic:
            rounds.append([k for k in keys if k in riding])
        for round_keys in rounds:
            if round_keys:
                sent = {k: before.get(k) for k in round_keys}
                try:
                    self.write(sent, {k: after[k] for k in round_keys}, what, holds)
                except ChangeSetRefused as exc:
                    raise self._refused_whole(exc, {**holds, **sent}) from None
                holds = {}  # in the first change set, with the changes they decided
        for done in riders:
            done.sent()

    def _refused_whole(
        self, exc: ChangeSetRefused, sent: Mapping[tuple[str, str], LiveRrset | None]
    ) -> StalePlanError:
        """A conditional provider refused the change set (never retried: it would be
        refused again): one read names the record sets, of those ``sent`` as read, that
        changed since, and the error says so (else the provider's own words, ``exc``)."""
        try:
            now = self.read_rrsets(sorted(sent))
        except ProviderError:
            return exc
        changed = [
            f"{rdtype} {owner}"
            for (owner, rdtype), was in sorted(sent.items())
            if _canonical(rdtype, now.get((owner, rdtype))) != _canonical(rdtype, was)
        ]
        if not changed:
            return exc
        return StalePlanError(
            f"zone {self.zone}: {', '.join(changed)} changed since sipctl read it (another run, "
            f"or an edit), so the DNS provider ({self.plugin.class_path}) refused the change "
            "set as a whole; nothing was changed. Run plan again: it reads what is live now"
        )

    def write(
        self,
        before: dict[tuple[str, str], LiveRrset | None],
        after: dict[tuple[str, str], LiveRrset | None],
        what: str,
        holds: Mapping[tuple[str, str], LiveRrset] | None = None,
    ) -> None:
        """One ``provider.apply`` turning the rrsets ``before`` (as read) into ``after``;
        a conditional provider's ``holds`` ride along unchanged (``write_change_set``).

        Conditional providers refuse it when ``before`` is no longer live (StalePlanError).
        When the provider throttles or fails on its side, the retry does not replay the change
        set: part of it may have landed (a per-record API writes record by record; a batch may
        land with its answer lost), so it reads the rrsets again and sends only what is still
        missing, from what is live now (``_replan``).
        """
        pending = dict(before)
        held = dict(holds or {})

        def attempt() -> None:
            keys = [
                k for k in after if _canonical(k[1], after[k]) != _canonical(k[1], pending.get(k))
            ]
            if not keys:
                return  # everything landed before the failure was reported
            plugin = self.plugin.instance()
            with quiet():
                plan = self._octodns_plan(
                    {k: pending.get(k) for k in keys}, {k: after[k] for k in keys}, held
                )
            prepare_apply(plugin, self.zone, sorted({owner for owner, _ in [*keys, *held]}))
            self.applies += 1
            plugin.apply(plan)

        sent_before = self.applies
        try:
            call(
                attempt,
                what,
                self.plugin.class_path,
                before_retry=lambda: self._replan(pending, before, after, held),
            )
        except ProviderError as exc:
            if not self.atomic and self.applies > sent_before:
                exc.message += (
                    f"; {self.plugin.class_path} writes record by record, so part of this "
                    "change set may have landed: run apply again, it reads first and writes "
                    "only what is missing"
                )
            raise

    def _replan(
        self,
        pending: dict[tuple[str, str], LiveRrset | None],
        before: dict[tuple[str, str], LiveRrset | None],
        after: dict[tuple[str, str], LiveRrset | None],
        held: Mapping[tuple[str, str], LiveRrset] | None = None,
    ) -> None:
        """After a failed write: ``pending`` becomes what is live now at the written names.

        An rrset that is neither as read nor as wanted was changed by someone else, or is
        half written by a per-record API. A conditional provider writes a batch whole or not
        at all, so there it can only be someone else: refused (StalePlanError), and so is a
        held rrset (``write``'s ``holds``) that is no longer as read."""
        now = self.read_rrsets([*after, *(held or {})])
        for (owner, rdtype), rrset in sorted((held or {}).items()):
            if _canonical(rdtype, now.get((owner, rdtype))) != _canonical(rdtype, rrset):
                raise StalePlanError(
                    f"zone {self.zone}: {rdtype} {owner} changed while sipctl was writing "
                    "(the write failed and was to be retried); nothing more was sent. Run "
                    "plan again"
                )
        for key in after:
            live_now = now.get(key)
            landed = _canonical(key[1], live_now) == _canonical(key[1], after[key])
            untouched = _canonical(key[1], live_now) == _canonical(key[1], before.get(key))
            if self.conditional and not (landed or untouched):
                owner, rdtype = key
                raise StalePlanError(
                    f"zone {self.zone}: {rdtype} {owner} changed while sipctl was writing it "
                    "(the write failed and was to be retried); nothing more was sent. Run plan "
                    "again"
                )
            pending[key] = live_now

    def _after(self, change: Change, full: LiveRrset | None) -> LiveRrset | None:
        """The whole rrset after the change (``rrset_after``: others' records in it stay)."""
        after = rrset_after(change, full, 3600)
        kind = change.address.kind
        records = list(after.others) + [(canonical_text(kind, r), r) for r in after.ours]
        return LiveRrset(after.ttl, tuple(sorted(set(records)))) if records else None

    def _octodns_plan(
        self,
        before: dict[tuple[str, str], LiveRrset | None],
        after: dict[tuple[str, str], LiveRrset | None],
        holds: Mapping[tuple[str, str], LiveRrset] | None = None,
    ) -> Any:
        """octoDNS's Plan of exactly these rrsets (never any other name of the zone), and
        of ``holds`` (a conditional provider's): each DELETE of the rrset as read and
        CREATE of the same, which a batch applies only while it is still as read."""
        from octodns.provider.plan import Plan
        from octodns.record import Create, Delete, Update

        existing_zone, desired_zone = new_zone(self.zone), new_zone(self.zone)
        octo: list[Any] = []
        for (owner, rdtype), new in sorted(after.items()):
            old = before.get((owner, rdtype))
            old_record = new_rec = None
            if old is not None:
                old_record = new_record(
                    existing_zone, owner, rdtype, old.ttl, [e for _, e in old.records]
                )
                existing_zone.add_record(old_record, lenient=True)
            if new is not None:
                new_rec = new_record(
                    desired_zone, owner, rdtype, new.ttl, [e for _, e in new.records]
                )
                desired_zone.add_record(new_rec, lenient=True)
            if old_record is not None and new_rec is not None:
                if self.conditional:
                    # DELETE exactly what was read + CREATE: Route53's compare-and-set
                    octo += [Delete(old_record), Create(new_rec)]
                else:
                    octo.append(Update(old_record, new_rec))
            elif new_rec is not None:
                octo.append(Create(new_rec))
            elif old_record is not None:
                octo.append(Delete(old_record))
        for (owner, rdtype), rrset in sorted((holds or {}).items()):
            texts = [e for _, e in rrset.records]
            old_record = new_record(existing_zone, owner, rdtype, rrset.ttl, texts)
            existing_zone.add_record(old_record, lenient=True)
            same = new_record(desired_zone, owner, rdtype, rrset.ttl, texts)
            desired_zone.add_record(same, lenient=True)
            octo += [Delete(old_record), Create(same)]
        return Plan(existing_zone, desired_zone, octo, True)

    def _read_back(self, wanted: dict[tuple[str, str], LiveRrset | None]) -> list[str]:
        now = self.read_rrsets(list(wanted))
        lines = []
        for (owner, rdtype), expected in sorted(wanted.items()):
            got = now.get((owner, rdtype))
            if _canonical(rdtype, got) != _canonical(rdtype, expected):
                lines.append(
                    f"Warning: zone {self.zone}: {rdtype} {owner} read back differs from what "
                    f"was written (someone else changed it at the same time?): now "
                    f"{_canonical(rdtype, got) or 'absent'}"
                )
        return lines

    # --- ACME DNS-01 challenges (see providers/dns/challenge.py) ------------------------------

    def challenge_writer(self) -> ChallengeWriter:
        return self

    def publish_challenges(self, records: Sequence[ChallengeRecord]) -> None:
        self._change_challenges(records, add=True)

    def withdraw_challenges(self, records: Sequence[ChallengeRecord]) -> None:
        self._change_challenges(records, add=False)

    def _change_challenges(self, records: Sequence[ChallengeRecord], *, add: bool) -> None:
        """One change set adding (or removing) exactly these TXT values at their names.

        octoDNS writes whole rrsets: the TXT rrset at each name is read and written back with
        our values added or taken out, so another value at the same name stays."""
        if not records:
            return
        names = challenge_names(records)
        before = self.read_rrsets(names)
        after: dict[tuple[str, str], LiveRrset | None] = {}
        for key in names:
            old = before.get(key)
            texts = {exact for _, exact in old.records} if old else set()
            mine = {f'"{r.value}"' for r in records if r.owner == key[0]}
            texts = texts | mine if add else texts - mine
            pairs = tuple(sorted((canonical_text("TXT", t), t) for t in texts))
            after[key] = LiveRrset(old.ttl if old else CHALLENGE_TTL, pairs) if pairs else None
        changed = {k: v for k, v in after.items() if v != before.get(k)}
        if not changed:
            return
        what = "publish" if add else "remove"
        self.write(
            {k: before.get(k) for k in changed},
            changed,
            f"{what} ACME challenge records in zone {self.zone}",
        )

    def challenges_visible(self, records: Sequence[ChallengeRecord]) -> bool:
        """As the provider's API shows the zone (what its name servers serve)."""
        return challenges_in(self.read_rrsets(challenge_names(records)), records)


def _key(change: Change) -> tuple[str, str]:
    return (change.address.name, change.address.kind)


def _canonical(rdtype: str, rrset: LiveRrset | None) -> tuple[int, list[str]] | None:
    """What an rrset holds, however the provider spelled it: a TXT's character-strings are
    joined (a plugin cuts a long value at its own length, 255 bytes; sipctl at 250)."""
    if rrset is None:
        return None
    if rdtype != "TXT":
        return rrset.ttl, sorted({c for c, _ in rrset.records})
    texts = set()
    for _, exact in rrset.records:
        strings: tuple[bytes, ...] = parse("TXT", exact).strings  # type: ignore[attr-defined]
        texts.add(b"".join(strings).decode("utf-8", "replace"))
    return rrset.ttl, sorted(texts)


def collect(zone: Any, names: Names) -> Rrsets:
    """The rrsets of ``zone`` (a populated octoDNS Zone) at ``names``, as sipctl reads them."""
    wanted = set(names)
    found: Rrsets = {}
    for record in zone.records:
        key = (absolute(record.fqdn), record._type)
        if key in wanted:
            found[key] = live_rrset(record)
    return found
