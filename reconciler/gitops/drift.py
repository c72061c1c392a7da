"""Drift: what changed on the live side since the last apply, without proposing to undo it.

The record of the last apply is written at the end of every successful ``apply`` (and by
an apply that changes nothing, when the record is missing or out of date). It holds, per
target, a hash of every owned resource as applied, plus when, by whom and from which spec.
It lives where the target lives, so every CI runner finds it:

- DNS: where the provider declares (``Provider.state_store``): over RFC 2136 and octoDNS
  TXT ``_sipctl-state.<domain>`` in the zone; a zone file ``<zone file>.sipctl-state.json``
  beside it;
- a host (asterisk, firewall, fail2ban): ``.sipctl-state.json`` in the layer's managed
  directory (the same directory as the host lock), one file for all layers of that host.

``drift`` reads the live state exactly as ``plan`` does and compares it with that record,
not with the spec: a spec change not applied yet is not drift; a record edited on the
server since the last apply is.

A DNS record is public (anyone can query TXT ``_sipctl-state.<domain>``): it holds only an
opaque apply id and, per target (named by a digest of its address, which may name a server),
the hashes of what was applied. Who applied, when and from which spec stay in the
bookkeeping of the machine that ran the apply (``public_records.py``, the rule the DNS lock
follows too): ``drift`` there names them, elsewhere it names the apply id.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sipctl.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, ProviderError, SipctlError
from sipctl.reconciler.departures import CUSTOMERS_KEY, recorded_customers
from sipctl.reconciler.domain_change import DOMAIN_KEY, served_domain
from sipctl.reconciler.resources import Value, canonical_json

if TYPE_CHECKING:
    from pathlib import Path

    from sipctl.providers.base import Provider, RunContext, UpdateRider
    from sipctl.providers.transport.host_lock import HostStateStore
    from sipctl.reconciler.engine import PlanRun, TargetRun
    from sipctl.schemas.loader import LoadedSpec

STATE_FORMAT = 1


class StateStore(Protocol):
    where: str
    public: bool  # anyone can read it (a DNS record): it names no user, host or time

    def read(self) -> dict[str, Any] | None: ...

    def write(self, record: dict[str, Any]) -> None: ...


@runtime_checkable
class RidingStore(Protocol):
    """A store whose record rides in its zone's last change set of the run (a DNS
    provider's TXT record), when that zone's lock rides there too.

    It holds only the record of its own zone's target, so it is written whole, without
    reading the old one first: no extra message, and the change set goes out anyway.
    """

    where: str
    zone_key: str  # the target_id of the zone's provider

    def rider(self, record: dict[str, Any]) -> UpdateRider: ...


@runtime_checkable
class ForgettingStore(Protocol):
    """A store that can remove its record: the zone of a customer whose file is gone keeps
    none once its records are removed (``departures``)."""

    where: str

    def forget(self) -> None: ...


def value_hash(value: Value) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]


def target_key(run: TargetRun) -> str:
    return f"{run.layer.name} {run.provider.target_id}"


def applied_entry(run: TargetRun) -> dict[str, str]:
    """What a target holds after a successful apply: its desired resources, hashed."""
    return {f"{r.address.kind} {r.address.name}": value_hash(r.value) for r in run.desired}


def public_key(run: TargetRun) -> str:
    """How a public record names a target: its layer and a digest of its address."""
    digest = hashlib.sha256(run.provider.target_id.encode()).hexdigest()[:16]
    return f"{run.layer.name} {digest}"


def _entry_of(targets: dict[str, Any], run: TargetRun) -> Any:
    return targets.get(target_key(run)) or targets.get(public_key(run))


def apply_detail_path(where: str) -> Path:
    """This machine's detail of the last apply recorded in the public record ``where``."""
    from sipctl.reconciler.gitops.public_records import detail_path

    return detail_path(where, "apply")


def live_entry(run: TargetRun) -> dict[str, str]:
    return {f"{a.kind} {a.name}": value_hash(v) for a, v in run.live.resources.items()}


def _store_for(run: TargetRun, plan_run: PlanRun, ctx: RunContext) -> StateStore | None:
    return record_store(run.provider, plan_run.loaded, ctx, run.layer.name)


def record_store(
    provider: Provider, loaded: LoadedSpec, ctx: RunContext, layer: str
) -> StateStore | None:
    """Where the record of the last apply of ``provider``'s target lives: its own store
    (``Provider.state_store``), else its host's shared record (None: no record). The read
    gate's table asks the same, so a plan job's gate serves exactly what ``drift`` reads."""
    own = provider.state_store()
    if own is not None:
        return own
    return host_state_store(loaded, ctx, layer)


def host_state_store(loaded: LoadedSpec, ctx: RunContext, layer: str) -> HostStateStore | None:
    """The shared record of the host ``layer`` runs on (None: not a host layer)."""
    from sipctl.providers.transport.host_lock import HostStateStore
    from sipctl.reconciler.gitops.locking import host_places
    from sipctl.schemas.targets import parse_target

    places = host_places(loaded)
    mine = next((p for p in places if p.layer == layer), None)
    if mine is None:
        return None
    # every layer of one host shares the first layer's directory (as the lock does)
    host = parse_target(mine.target).key
    first = next(p for p in places if parse_target(p.target).key == host)
    return HostStateStore(first, ctx)


@dataclass(frozen=True)
class ReadRecord:
    """A record of the last apply as one read found it, and the store it came from (whose
    ``write`` then expects what that read found)."""

    store: StateStore
    record: dict[str, Any]  # empty: there is none


def read_host_record(loaded: LoadedSpec, ctx: RunContext) -> ReadRecord | None:
    """The record of the host ``loaded``'s Asterisk runs on, read now (None: no such host).

    A host's plan reads it once (``PlanRun.host_record``): its departures, and the drift,
    the record and the check of an apply made from that plan, all take this one read."""
    store = host_state_store(loaded, ctx, "asterisk")
    if store is None:
        return None
    return ReadRecord(store, store.read() or {})


def _grouped(plan_run: PlanRun, ctx: RunContext) -> list[tuple[StateStore, list[TargetRun]]]:
    read = plan_run.host_record
    groups: dict[str, tuple[StateStore, list[TargetRun]]] = {}
    for run in plan_run.runs:
        if run.customer is not None:
            continue  # a departed customer's records: nothing of it is kept (departures)
        store = _store_for(run, plan_run, ctx)
        if store is None:
            continue
        if read is not None and store.where == read.store.where:
            store = read.store  # the plan read it: its write expects what that read found
        groups.setdefault(store.where, (store, []))[1].append(run)
    return list(groups.values())


def _record_in(store: StateStore, plan_run: PlanRun) -> dict[str, Any]:
    """The record in ``store``: as the plan read it, when it did (a host's plan), else now."""
    read = plan_run.host_record
    if read is not None and read.store is store:
        return read.record
    return store.read() or {}


@dataclass(frozen=True)
class LastRecorded:
    """When and by whom a host's record says this spec's targets there were last applied
    (by any run: ``sipctl apply``, a fleet worker, another domain's apply of the host)."""

    applied_at: str
    by: str


def last_recorded(plan_run: PlanRun) -> LastRecorded | None:
    """The latest apply the host's record (as the plan read it) names for this plan's
    targets; None when the plan read no record or it names none of them."""
    read = plan_run.host_record
    record = read.record if read is not None else {}
    targets = record.get("targets", {}) if record.get("format") == STATE_FORMAT else {}
    found: list[LastRecorded] = []
    for run in plan_run.runs:
        entry = targets.get(target_key(run)) if isinstance(targets, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("applied_at"), str):
            found.append(LastRecorded(entry["applied_at"], str(entry.get("by") or "")))
    return max(found, key=lambda item: item.applied_at, default=None)


@dataclass
class Recorded:
    """What ``record_state`` did: lines to report, and the records that ride in their zone's
    last change set (by the target_id of the zone's provider)."""

    lines: list[str] = field(default_factory=list)
    riders: dict[str, list[UpdateRider]] = field(default_factory=dict)


def record_state(
    plan_run: PlanRun, ctx: RunContext, by: str, rides: Callable[[str], bool]
) -> Recorded:
    """Write the record of this apply where it is out of date.

    A ``RidingStore`` whose zone's lock rides (``rides(zone_key)``) is not written here: its
    record is returned as a rider, for the zone's last change set."""
    recorded = Recorded()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for store, runs in _grouped(plan_run, ctx):
        try:
            recorded.lines.extend(_record_one(store, runs, plan_run, by, now, rides, recorded))
        except ProviderError as exc:
            # The apply itself succeeded; only 'sipctl drift' loses its reference point.
            recorded.lines.append(
                f"Warning: could not record the applied state in {store.where} ({exc.message}); "
                "'sipctl drift' will not know this apply"
            )
    recorded.lines.extend(_forget_departed(plan_run))
    return recorded


def _forget_departed(plan_run: PlanRun) -> list[str]:
    """The record of the last apply in a departed customer's zone goes with its records."""
    lines: list[str] = []
    for run in plan_run.runs:
        store = run.provider.state_store() if run.customer is not None else None
        if not isinstance(store, ForgettingStore):
            continue
        try:
            store.forget()
        except ProviderError as exc:
            lines.append(f"Warning: could not remove {store.where} ({exc.message})")
            continue
        lines.append(f"Removed the record of customer {run.customer}'s last apply ({store.where}).")
    return lines


def _record_one(
    store: StateStore,
    runs: list[TargetRun],
    plan_run: PlanRun,
    by: str,
    now: str,
    rides: Callable[[str], bool],
    recorded: Recorded,
) -> list[str]:
    def entry_of(run: TargetRun) -> dict[str, Any]:
        return {
            "resources": applied_entry(run),
            "applied_at": now,
            "by": by,
            "spec_sha256": plan_run.plan.spec_sha256[:16],
        }

    if store.public:
        # An opaque id and the hashes; who, when and which spec stay on this machine.
        from sipctl.reconciler.gitops.public_records import keep_detail

        apply_id = secrets.token_hex(8)
        detail = {**entry_of(runs[0]), "resources": None}
        detail.update(domain=plan_run.loaded.spec.domain, record=store.where)
        keep_detail(store.where, "apply", apply_id, detail)
        targets = {public_key(r): {"resources": applied_entry(r)} for r in runs}
        record = {"format": STATE_FORMAT, "id": apply_id, "targets": targets}
        if isinstance(store, RidingStore) and rides(store.zone_key):
            recorded.riders.setdefault(store.zone_key, []).append(store.rider(record))
        else:
            store.write(record)
        return [f"Recorded the applied state in {store.where} (apply id {apply_id})."]
    old = _record_in(store, plan_run)
    current = old.get("format") == STATE_FORMAT
    targets = dict(old.get("targets", {})) if current else {}
    customers = _customers_of(runs, plan_run, old.get(CUSTOMERS_KEY) if current else None)
    changed = customers is not None and customers != old.get(CUSTOMERS_KEY)
    domain = served_domain(plan_run.loaded, runs)
    changed = changed or (domain is not None and domain != old.get(DOMAIN_KEY))
    for run in runs:
        entry = entry_of(run)
        previous = targets.get(target_key(run))
        if not isinstance(previous, dict) or previous.get("resources") != entry["resources"]:
            targets[target_key(run)] = entry
            changed = True
    if not changed:
        return []
    record = {"format": STATE_FORMAT, "targets": targets}
    if customers is not None:
        record[CUSTOMERS_KEY] = customers
    elif current and CUSTOMERS_KEY in old:
        record[CUSTOMERS_KEY] = old[CUSTOMERS_KEY]
    if domain is not None:
        record[DOMAIN_KEY] = domain
    elif current and DOMAIN_KEY in old:
        record[DOMAIN_KEY] = old[DOMAIN_KEY]
    store.write(record)
    return [f"Recorded the applied state in {store.where}."]


def _customers_of(runs: list[TargetRun], plan_run: PlanRun, previous: Any) -> Any:
    """The customers a host's record holds after this apply (None: this record keeps none):
    in the record of the host's Asterisk layer (see ``departures``)."""
    if not any(run.layer.name == "asterisk" for run in runs):
        return None
    return recorded_customers(plan_run, previous)


def state_is_current(plan_run: PlanRun, ctx: RunContext) -> bool:
    """True when every target's record already says what this (empty) plan leaves live."""
    for store, runs in _grouped(plan_run, ctx):
        record = _record_in(store, plan_run)
        targets = record.get("targets", {}) if record.get("format") == STATE_FORMAT else {}
        customers = _customers_of(runs, plan_run, record.get(CUSTOMERS_KEY))
        if customers is not None and customers != record.get(CUSTOMERS_KEY):
            return False
        domain = served_domain(plan_run.loaded, runs)
        if domain is not None and domain != record.get(DOMAIN_KEY):
            return False
        for run in runs:
            entry = _entry_of(targets, run)
            if not isinstance(entry, dict) or entry.get("resources") != applied_entry(run):
                return False
            if store.public and "by" in entry:
                return False  # an older public record that names who applied: rewrite it
    return True


@dataclass
class Drifted:
    layer: str
    target: str
    kind: str
    name: str
    how: str  # "changed" | "removed" | "appeared"
    live: Value = None
    wanted: Value = None  # what the spec renders now (the applied value, unless it changed)

    def diff_lines(self) -> list[str]:
        """A unified diff, wanted -> live, long unchanged runs folded: never a whole file."""
        from sipctl.reconciler.views import value_lines

        return [f"{mark} {text}" for mark, text in value_lines(self.wanted, self.live)]

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "target": self.target,
            "kind": self.kind,
            "name": self.name,
            "how": self.how,
            "live": self.live,
            "diff": self.diff_lines(),
        }


@dataclass
class TargetDrift:
    layer: str
    target: str
    record: str  # where the record of the last apply lives
    applied_at: str | None
    by: str | None
    items: list[Drifted] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "target": self.target,
            "record": self.record,
            "applied_at": self.applied_at,
            "by": self.by,
            "drift": [i.to_json() for i in self.items],
        }


@dataclass
class DriftReport:
    domain: str
    targets: list[TargetDrift] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)  # targets with no record to compare

    @property
    def drifted(self) -> bool:
        return any(t.items for t in self.targets)

    @property
    def count(self) -> int:
        """How many resources drifted."""
        return sum(len(t.items) for t in self.targets)

    @property
    def status(self) -> str:
        """The domain's word in the JSON envelope and the summary table."""
        return "drifted" if self.drifted else "unrecorded" if self.unrecorded else "no drift"

    @property
    def exit_code(self) -> int:
        """2 drift, else 1 when a target could not be told (it has no record), else 0."""
        return EXIT_CHANGES if self.drifted else EXIT_ERROR if self.unrecorded else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": "1",
            "domain": self.domain,
            "drifted": self.drifted,
            "count": self.count,
            "targets": [t.to_json() for t in self.targets],
            "unrecorded": list(self.unrecorded),
        }


def find_drift(plan_run: PlanRun, ctx: RunContext) -> DriftReport:
    """Compare what ``plan_run`` read with the record of the last apply."""
    from sipctl.reconciler.gitops.public_records import read_detail

    report = DriftReport(plan_run.loaded.spec.domain)
    covered: set[str] = set()
    for store, runs in _grouped(plan_run, ctx):
        record = _record_in(store, plan_run)
        targets = record.get("targets", {}) if record.get("format") == STATE_FORMAT else {}
        detail = read_detail(store.where, "apply", record["id"]) if "id" in record else {}
        for run in runs:
            key = target_key(run)
            covered.add(key)
            entry = _entry_of(targets, run)
            if not isinstance(entry, dict) or not isinstance(entry.get("resources"), dict):
                report.unrecorded.append(f"{key} (no record in {store.where})")
                continue
            if "id" in record:  # a public record: who and when are in the bookkeeping
                by = detail.get("by") or f"another machine (apply id {record['id']})"
                entry = {**entry, "applied_at": detail.get("applied_at"), "by": by}
            report.targets.append(_compare(run, entry, store.where))
    for run in plan_run.runs:
        if target_key(run) not in covered and run.customer is None:
            report.unrecorded.append(f"{target_key(run)} (this provider keeps no record)")
    return report


def _compare(run: TargetRun, entry: dict[str, Any], where: str) -> TargetDrift:
    applied: dict[str, str] = {str(k): str(v) for k, v in entry["resources"].items()}
    live = live_entry(run)
    values = {f"{a.kind} {a.name}": v for a, v in run.live.resources.items()}
    wanted = {f"{r.address.kind} {r.address.name}": r.value for r in run.desired}
    result = TargetDrift(
        run.layer.name,
        run.provider.target_id,
        where,
        str(entry.get("applied_at")) if entry.get("applied_at") else None,
        str(entry.get("by")) if entry.get("by") else None,
    )
    for key in sorted(set(applied) | set(live)):
        kind, _, name = key.partition(" ")
        if key not in live:
            how = "removed"
        elif key not in applied:
            how = "appeared"
        elif live[key] != applied[key]:
            how = "changed"
        else:
            continue
        result.items.append(
            Drifted(
                run.layer.name,
                run.provider.target_id,
                kind,
                name,
                how,
                values.get(key),
                wanted.get(key),
            )
        )
    return result


_SIGNS = {"changed": "~", "removed": "-", "appeared": "+"}
_WORDS = {
    "changed": "was changed on the live side",
    "removed": "was removed on the live side",
    "appeared": "appeared on the live side",
}


def render_drift(report: DriftReport) -> str:
    from sipctl.reconciler.views import target_phrase

    out: list[str] = []
    if not report.drifted:
        out.append(f"No drift. The live systems of {report.domain} are as last applied.")
    else:
        out.append(f"Drift since the last apply of {report.domain}:")
    for target in report.targets:
        when = f"last applied {target.applied_at} by {target.by}" if target.applied_at else ""
        out.append("")
        heading = target_phrase(target.layer, target.target)  # as the plan heads it
        out.append(f"  # {heading} ({when or 'no date recorded'})")
        if not target.items:
            out.append("    no drift")
        for item in target.items:
            out.append(f"  {_SIGNS[item.how]} {item.kind} {item.name} {_WORDS[item.how]}")
            if _is_records(item.live) or item.live is None:
                out.extend(f"      now: {line}" for line in _value_lines(item.live))
            else:  # a file or a mapping: what differs from the spec, line by line
                out.extend(f"      {line}" for line in item.diff_lines())
    for line in report.unrecorded:
        out.append(f"\n  ! {line}: drift cannot be told; it is recorded by the next apply")
    if report.drifted:
        count = report.count
        layers = len([t for t in report.targets if t.items])
        out.append("")
        out.append(
            f"{count} drifted resource(s) in {layers} layer(s). sipctl does not change them "
            "back here: 'sipctl plan' shows what 'sipctl apply' would do about it."
        )
    return "\n".join(out) + "\n"


def _is_records(value: Value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("records"), list)


def _value_lines(value: Value) -> Sequence[str]:
    if value is None:
        return []
    if isinstance(value, dict) and isinstance(value.get("records"), list):
        return [str(r) for r in value["records"]] or ["(empty)"]
    text = value if isinstance(value, str) else canonical_json(value)
    lines = text.splitlines() or [""]
    return [*lines[:10], "..."] if len(lines) > 10 else lines


def check_drift_result(report: DriftReport) -> None:
    if report.unrecorded and not report.targets:
        raise SipctlError(
            "no record of a last apply was found, so drift cannot be told:\n  "
            + "\n  ".join(report.unrecorded),
            hint="the record is written by 'sipctl apply'; apply once, then check for drift",
        )
