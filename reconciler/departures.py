"""A customer its host served whose file is gone: its DNS records go with it.

A host's apply keeps, in the host's own record of the last apply (``gitops/drift``'s, in
root's ``/var/lib/sipctl`` on the host, found by every runner), which customers it serves
and how each one's DNS records are written: the ``dns`` section of the customer's file
(provider, zone, server, the *name* of its credential; never a secret) and the servers its
SRV records point at.

A plan of the host then finds a customer that record names and no file of the directory
declares, and plans the removal of that customer's owned records (NAPTR, SRV, the registry
and what it lists) through the recorded binding: a spec of the customer's domain with
``dns.ensure: absent``, whose credentials pass the runner profile like any spec's
(``reconciler/bindings.py``: the profile, never the record, says where a credential may
go). When they do not, or the provider cannot be reached with them, the whole plan is
refused and says what to do: nothing is half applied.

A customer whose domain another file of the directory declares (moved to another host, or
become one company's spec) keeps its records: they are that file's. So does one whose live
SRV records point at servers other than those recorded (moved to a host in another
directory, whose apply pointed them there).

No customer is taken for gone while a file of the directory does not load: a customer file
whose ``host:`` has a typo, or whose YAML is broken, declares nothing the host can see, and
may be that very customer. Then the host's plan is refused (``refuse_unsure_departures``),
naming the file, and the customer stays as it is.

A plan of the host reads its record once (``engine.make_plan``: ``PlanRun.host_record``)
and hands what it names to the two steps here; the record an apply writes, and ``drift``,
start from that same read. Only the locks of an apply (``departure_lock_sites``) read it
on their own, before the locks are taken.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipctl.errors import RefusedError, SipctlError, SpecError
from sipctl.reconciler.layers import layer_named

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from sipctl.providers.base import Provider, RunContext
    from sipctl.reconciler.engine import PlanRun, TargetRun
    from sipctl.reconciler.gitops.drift import ReadRecord
    from sipctl.reconciler.gitops.locking import LockSite
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Spec

_DNS = layer_named("dns")
# The host record's key: customer domain -> {"dns": its dns section or None, "servers": [...]}
CUSTOMERS_KEY = "customers"


def customers_entry(spec: Spec) -> dict[str, Any]:
    """What a host's record keeps of the customers ``spec`` (a host) serves."""
    return {customer.domain: _entry(customer) for customer in spec.customers}


def _entry(customer: Spec) -> dict[str, Any]:
    dns = customer.dns
    bound = None
    if dns is not None and dns.ensure == "present":
        bound = dns.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return {"dns": bound, "servers": sorted({s.host.lower() for s in customer.servers})}


def recorded_customers(plan_run: PlanRun, previous: Any) -> dict[str, Any] | None:
    """The customers a host's record holds after ``plan_run`` was applied (None: not a host).

    A plan of every layer planned each departed customer's removal (or found nothing of it
    to remove), so the record holds the declared customers. A plan of some layers only
    (``--target``) planned none: the departed customers stay recorded until a whole plan
    removes them."""
    spec = plan_run.loaded.spec
    if spec.hosting is None:
        return None
    customers = customers_entry(spec)
    if plan_run.plan.layers and isinstance(previous, dict):
        for domain, entry in previous.items():
            customers.setdefault(str(domain), entry)
    return customers


@dataclass(frozen=True)
class Departure:
    """A customer the host's record names and no file declares, with the provider of its
    records, opened through the binding it was applied with."""

    domain: str
    entry: dict[str, Any]  # what the host's record keeps of it
    provider: Provider


def recorded_in(host_record: ReadRecord | None) -> dict[str, Any]:
    """The customers the host's record names, as a read of it found them (``host_record``:
    the plan's one read, ``gitops.drift.read_host_record``; None: the host has none)."""
    from sipctl.reconciler.gitops.drift import STATE_FORMAT

    record = host_record.record if host_record is not None else {}
    recorded = record.get(CUSTOMERS_KEY) if record.get("format") == STATE_FORMAT else None
    return recorded if isinstance(recorded, dict) else {}


def departures(loaded: LoadedSpec, ctx: RunContext, recorded: dict[str, Any]) -> list[Departure]:
    """Every customer whose file is gone and whose DNS records sipctl wrote, its provider
    opened (nothing read yet); ``recorded``: the customers the host's record names
    (``recorded_in``). Raises RefusedError when any binding no longer resolves."""
    from sipctl.providers.base import open_provider
    from sipctl.schemas.hosting import declaring_file

    if loaded.spec.hosting is None:
        return []
    declared = {c.domain for c in loaded.spec.customers}
    found: list[Departure] = []
    problems: list[str] = []
    for domain in sorted(set(recorded) - declared):
        entry = recorded[domain]
        if not isinstance(entry, dict) or not isinstance(entry.get("dns"), dict):
            continue  # its DNS was not sipctl's: nothing to remove
        # the host file's directory (a fleet worker's copy of it; its relative paths are the
        # sender's directory, base_dir)
        elsewhere = declaring_file(domain, Path(loaded.source).parent)
        if elsewhere is not None:
            ctx.log(f"customer {domain} is declared by {elsewhere}: its records are that file's")
            continue
        try:
            gone = departed_spec(loaded, domain, entry)
            provider = open_provider(_DNS.provider_name(gone.spec), gone, ctx)
        except SipctlError as exc:
            problems.append(_unresolved(loaded, domain, entry, exc))
            continue
        found.append(Departure(domain, entry, provider))
    _refuse(loaded, problems)
    return found


def departed_spec(loaded: LoadedSpec, domain: str, entry: dict[str, Any]) -> LoadedSpec:
    """The spec by which a host removes departed customer ``domain``'s records: its
    recorded ``dns`` section (``entry``: what the host's record keeps of it) with
    ``ensure: absent``, its paths relative to the host's directory."""
    from sipctl.schemas.loader import load_spec_text

    dns = {**entry["dns"], "ensure": "absent"}
    text = json.dumps({"version": 1, "domain": domain, "dns": dns}, sort_keys=True)
    return load_spec_text(text, source=_record_source(loaded, domain), base_dir=loaded.base_dir)


def departure_turns(plan_run: PlanRun) -> tuple[str, ...]:
    """What a host's plan must not be applied beside for the departed customers' records
    it removes: each one's turns as its recorded spec gives them (``claims.turns_of``: the
    lock of a zone file other specs of the run may write, the customer's domain). The
    plan's apply takes those locks (``departure_lock_sites``), so a run applies the host
    after or before those specs, never beside them. Reads nothing: the host's record is
    the one the plan read."""
    recorded = recorded_in(plan_run.host_record)
    gone = [run.customer for run in plan_run.runs if run.customer is not None]
    return _turns(plan_run.loaded, [(d, recorded.get(d)) for d in gone])


def recorded_departure_turns(loaded: LoadedSpec, ctx: RunContext) -> tuple[str, ...]:
    """``departure_turns`` of a saved plan of the host (its departures are found again when
    it is applied): from the host's record, read now, as the apply's locks read it
    (``departure_lock_sites``). None when it cannot be read: the apply says why."""
    from sipctl.reconciler.gitops.drift import read_host_record

    try:
        found = departures(loaded, ctx, recorded_in(read_host_record(loaded, ctx)))
    except SipctlError:
        return ()
    return _turns(loaded, [(d.domain, d.entry) for d in found])


def _turns(loaded: LoadedSpec, gone: Sequence[tuple[str, Any]]) -> tuple[str, ...]:
    from sipctl.reconciler.gitops.claims import turns_of

    turns: list[str] = []
    for domain, entry in gone:
        if not isinstance(entry, dict):
            continue
        try:
            turns += turns_of(departed_spec(loaded, domain, entry))
        except SipctlError:  # it loaded for the plan: only a record changed since
            continue
    return tuple(dict.fromkeys(turns))


@dataclass(frozen=True)
class _Unloadable:
    """A spec file of the host's directory that does not load, as its error says."""

    where: str  # its first problem, file:line:col: ...
    domain: str | None  # its ``domain:`` when that much of it can be read


def _unloadable_files(loaded: LoadedSpec) -> tuple[list[_Unloadable], set[str]]:
    """The spec files beside the host's that do not load (a customer's also when the host
    it names is not there), and the domains the others declare (but the host's customers',
    which the caller knows). A *.yaml file of no keys at all counts: a customer's file
    emptied, or saved as UTF-16, is skipped by ``-f DIR`` but may be that customer."""
    from sipctl.errors import FileTooLarge, failure_text
    from sipctl.reconciler.gitops.spec_files import NO_TOP_KEYS, skip_reason
    from sipctl.schemas.admin_files import read_regular_file
    from sipctl.schemas.hosting import compose, file_digest, readable_domain
    from sipctl.schemas.loader import MAX_SPEC_BYTES, load_spec_text
    from sipctl.schemas.spec_links import refuse_link_out

    own = Path(loaded.source)
    # the host's own customer files, loaded with it: as they were then, they load
    composed = loaded.composed or {}
    failing: list[_Unloadable] = []
    declared: set[str] = set()
    for entry in sorted(own.parent.iterdir()):
        if entry.name == own.name or skip_reason(entry) not in (None, NO_TOP_KEYS):
            continue
        try:  # no further than a spec may be: an 8 GB file of no keys is not read whole
            refuse_link_out(entry)  # a link out: not read, and may be that customer
            text = read_regular_file(entry, MAX_SPEC_BYTES).decode("utf-8")
        except SpecError as exc:
            failing.append(_Unloadable(exc.message, None))
            continue
        except FileTooLarge as exc:
            failing.append(_Unloadable(str(exc), None))
            continue
        except OSError as exc:
            failing.append(_Unloadable(f"{entry}: cannot read it: {exc.strerror}", None))
            continue
        except UnicodeDecodeError as exc:
            failing.append(_Unloadable(f"{entry}: not UTF-8 text (byte {exc.start})", None))
            continue
        if composed.get(entry.name) == file_digest(text):
            continue  # loaded with the host just now (1,000 customers: half the plan again)
        try:
            other = load_spec_text(text, source=str(entry), base_dir=entry.parent)
            if other.spec.host is not None:
                compose(other, entry)  # the host it names is there
        except SpecError as exc:
            first = failure_text(exc).splitlines()[0]
            failing.append(_Unloadable(first, readable_domain(text)))
            continue
        declared.add(other.spec.domain.lower())
    return failing, declared


def refuse_unsure_departures(
    loaded: LoadedSpec, runs: Sequence[TargetRun], recorded: dict[str, Any]
) -> None:
    """Refuse the host's plan when a customer it serves (in its live dialplan, or in its
    record: ``recorded``) is declared by no file that loads, and some file of the directory
    does not load: that file may be the customer, and planning its removal would remove it."""
    from sipctl.reconciler.safety import hosted_domains

    if loaded.spec.hosting is None:
        return
    served = {str(d).lower() for d in recorded}
    for run in runs:
        if run.layer.name == "asterisk":
            for value in run.live.resources.values():
                served |= {d.lower() for d in hosted_domains(value)}
    unsure = served - {c.domain.lower() for c in loaded.spec.customers}
    if not unsure:
        return
    failing, declared = _unloadable_files(loaded)
    unsure -= declared
    if not unsure or not failing:
        return
    files = [f.where + (f" (the file of customer {f.domain})" if f.domain else "") for f in failing]
    raise SpecError(
        f"{loaded.source}: customer(s) {', '.join(sorted(unsure))} of "
        f"{loaded.spec.hosting.name} are declared by no file that loads, and "
        f"{len(failing)} file(s) beside it do not load; one of them may be that customer, "
        "so its removal is not planned and nothing of it changes:\n  "
        + "\n  ".join(files)
        + "\nfix the file (a customer's 'host:' names its host file's hosting.name), or "
        "delete it to really remove the customer"
    )


def departure_lock_sites(loaded: LoadedSpec, ctx: RunContext) -> list[LockSite]:
    """The locks of the zones a plan of the host would remove departed customers' records
    from: an apply holds them as it holds its own. A binding that no longer resolves adds
    none: the plan under the lock refuses it, and force-unlock still reaches the others.

    This reads the host's record before any lock is taken (what to lock depends on it);
    the plan under the locks reads it again: what it plans from is what the locks guard."""
    from sipctl.reconciler.gitops.drift import read_host_record

    try:
        found = departures(loaded, ctx, recorded_in(read_host_record(loaded, ctx)))
    except RefusedError:
        return []
    sites = (d.provider.lock_site() for d in found)
    return [site for site in sites if site is not None]


def refuse_unlocked_departures(plan_run: PlanRun, held: Collection[str]) -> None:
    """Refuse (exit 3, as a stale plan) a departure planned under the locks whose zone's
    lock the run does not hold (``held``: the keys of its lock sites). Which zones to lock
    was read from the host's record before the locks were taken; another run's apply of the
    host may have changed it meanwhile, and a removal is never made without its lock."""
    from sipctl.errors import StalePlanError

    unlocked = [
        f"customer {run.customer} (dns at {run.provider.target_id})"
        for run in plan_run.runs
        if run.customer is not None
        and (site := run.provider.lock_site()) is not None
        and site.key not in held
    ]
    if unlocked:
        raise StalePlanError(
            f"{plan_run.loaded.source}: the host's record of the last apply changed while "
            f"this run took its locks, and now names a customer whose file is gone: "
            f"{', '.join(unlocked)}; its zone is not locked by this run. Nothing was "
            "changed; run it again."
        )


def departure_runs(
    loaded: LoadedSpec, ctx: RunContext, host_runs: list[TargetRun], recorded: dict[str, Any]
) -> list[TargetRun]:
    """The DNS removal of every departed customer (``recorded``: the customers the host's
    record names), each read through the binding it was applied with. Raises RefusedError
    when any of them cannot be (nothing is planned then)."""
    from sipctl.reconciler.engine import TargetRun

    _note_unrecorded(host_runs, {c.domain for c in loaded.spec.customers} | set(recorded))
    runs: list[TargetRun] = []
    problems: list[str] = []
    for departure in departures(loaded, ctx, recorded):
        domain, provider = departure.domain, departure.provider
        ctx.log(f"reading dns at {provider.target_id} (customer {domain}, its file is gone)")
        try:
            live = provider.read([])
        except SipctlError as exc:
            problems.append(_unresolved(loaded, domain, departure.entry, exc))
            continue
        servers = {str(s).lower().rstrip(".") for s in departure.entry.get("servers", [])}
        foreign = sorted(_srv_targets(live.resources.values()) - servers)
        if foreign:
            ctx.notice(
                f"note: {loaded.source}: customer {domain} is no longer served here, and its "
                f"SRV records point at {', '.join(foreign)}, not at this host's servers: its "
                "DNS records are left to the file that now declares it"
            )
            continue
        runs.append(TargetRun(_DNS, provider, [], live, customer=domain))
    _refuse(loaded, problems)
    return runs


def _refuse(loaded: LoadedSpec, problems: list[str]) -> None:
    if problems:
        raise RefusedError(
            f"{loaded.source}: {len(problems)} removed customer(s) whose DNS records cannot "
            "be removed through the provider they were applied with; nothing was changed:\n  "
            + "\n  ".join(problems),
            hint="make the binding work again (the runner profile, SIPCTL_PROFILE, lists each "
            "credential and where it may go), or put the customer's file back with "
            "dns.ensure: absent and the dns section that reaches its zone, apply it, then "
            "delete the file",
        )


def _srv_targets(values: Any) -> set[str]:
    """The hosts the SRV values among ``values`` point at."""
    targets: set[str] = set()
    for value in values:
        records = value.get("records") if isinstance(value, dict) else None
        for record in records if isinstance(records, list) else []:
            parts = str(record).split()
            if len(parts) == 4 and parts[0].isdigit():
                targets.add(parts[3].lower().rstrip("."))
    return targets


def _note_unrecorded(host_runs: list[TargetRun], known: set[str]) -> None:
    """A customer the live dialplan serves but the record does not name (applied by an
    earlier sipctl): its removal leaves its DNS records, and the plan says so."""
    from sipctl.reconciler.safety import hosted_domains

    for run in host_runs:
        if run.layer.name != "asterisk":
            continue
        served: set[str] = set()
        for value in run.live.resources.values():
            served |= hosted_domains(value)
        for domain in sorted(served - known):
            run.live.notes.append(
                f"customer {domain}: no file declares it, and the host's record does not say "
                "how its DNS records were written (applied before sipctl recorded it): its "
                "dialplan is removed, its DNS records are left as they are"
            )


def _record_source(loaded: LoadedSpec, domain: str) -> str:
    """How messages about a departed customer's recorded spec name it."""
    return f"{loaded.source} (the record of customer {domain})"


def _unresolved(loaded: LoadedSpec, domain: str, entry: dict[str, Any], exc: SipctlError) -> str:
    dns = entry.get("dns") or {}
    provider = dns.get("provider", "rfc2136")
    where = dns.get("server") or dns.get("file") or dns.get("zone") or domain
    problems = getattr(exc, "problems", None) or []
    detail = "; ".join([exc.message, *problems[1:]]) if problems else exc.message
    # positions in the recorded text mean nothing to the reader: the key says what it is
    detail = re.sub(re.escape(_record_source(loaded, domain)) + r":\d+:\d+: ", "", detail)
    return (
        f"customer {domain} (no file declares it): its records were written with dns "
        f"provider {provider} at {where}: {detail}"
    )
