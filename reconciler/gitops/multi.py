"""Many domains in one run: one spec per domain, planned independently, applied in parallel.

A hosting or VoIP provider keeps one spec per customer domain. ``plan``/``apply`` take several
``-f`` files or a directory of them. Every domain gets its own RunContext (its own
connections and secrets) and is planned on its own, so one domain's error never hides the
others' plans. Before anything is applied, the specs are checked against each other: two
specs that claim the same DNS name, or the same host layer (firewall, fail2ban, Asterisk
files) with different contents, are refused. Domains are applied by a bounded pool of
workers, each under its own locks (see ``guarded``). A spec named alone is a run of one:
no claims to compare, and its work runs in the command's own thread.

Which files are specs: ``spec_files``; who takes which share: ``shards``; what is reported
at the end: ``domain_report``.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from sipctl.errors import RefusedError, SipctlError, SpecError, failure_text
from sipctl.reconciler.envelope import plan_status
from sipctl.reconciler.gitops.shards import shard_key, take_shard, turn_groups

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.bindings import CustomerKey
    from sipctl.reconciler.engine import PlanRun
    from sipctl.reconciler.gitops.claims import Claims
    from sipctl.reconciler.gitops.guarded import LockOptions, Outcome
    from sipctl.reconciler.plan import Plan
    from sipctl.reconciler.resources import Resource
    from sipctl.schemas.loader import LoadedSpec

MAX_PARALLEL = 64


class Report(Protocol):
    """What a command that only reads (``drift``, ``verify``) found for one domain."""

    def to_json(self) -> dict[str, Any]: ...


@dataclass
class Domain:
    """One spec (or saved plan) of a run, and what happened to it. A spec named alone is a
    run of one: the CLI then raises its ``error`` as the command's own."""

    path: Path
    loaded: LoadedSpec | None = None
    ctx: RunContext | None = None
    plan_run: PlanRun | None = None
    saved: Plan | None = None  # a saved plan being applied
    outcome: Outcome | None = None  # what its apply did
    planned: Plan | None = None  # a plan without its live state (a worker's, or only shown)
    claims: Claims | None = None  # what the spec claims (made here or in a worker process)
    # the DNS credentials of a hosting customer's file (made here or in a worker process)
    customer_keys: tuple[CustomerKey, ...] = ()
    rendered: dict[str, list[Resource]] | None = None  # layers rendered for the claims
    # a host's: the turns of the departed customers whose records it removes (shards.turns)
    departure_turns: tuple[str, ...] = ()
    # planned | no changes | applied | error | refused | not applied; a report's own words
    # (drift: drifted | no drift | unrecorded; verify: ok | failed)
    status: str = "pending"
    message: str = ""
    hint: str | None = None  # its error's hint, told after the message
    error: BaseException | None = None  # what failed it (not across a worker's pipe)
    report: Report | None = None  # what drift or verify found there
    seconds: float = 0.0

    @property
    def name(self) -> str:
        if self.loaded is not None:
            return self.loaded.spec.domain
        if self.claims is not None:
            return self.claims.domain
        from sipctl.schemas.hosting import file_domain

        return file_domain(self.path) or "?"  # a spec that did not load, by its domain line

    @property
    def plan(self) -> Plan | None:
        """The plan of this domain, made in this process or in a worker."""
        return self.plan_run.plan if self.plan_run is not None else self.planned

    @property
    def failed(self) -> bool:
        return self.status in ("error", "refused", NOT_APPLIED)

    def fail(self, exc: SipctlError) -> None:
        self.status = "refused" if isinstance(exc, RefusedError) else "error"
        self.error = exc
        self.message = failure_text(exc)
        self.hint = exc.hint


# A domain whose host's earlier domain failed in the same run: it was never tried.
NOT_APPLIED = "not applied"


# The cyclic collector's first threshold during a run over many domains (Python's: 700),
# and its second: the middle generation is scanned after this many scans of the young one
# (Python's: 10), so after 10 million objects more, not half a million.
BATCH_GC_THRESHOLD = 10_000
BATCH_GC_MIDDLE = 1_000


@contextmanager
def collecting_rarely() -> Iterator[None]:
    """Python's cyclic garbage collector, tuned for a run over many domains while it lasts.

    Such a run makes tens of objects per record and keeps every domain's plan, so with the
    default thresholds the collector scanned the same plans, and every module imported
    before, again and again: a tenth of a no-op plan's CPU at 1,000 domains. What exists
    before the run is frozen out of its scans, and it runs after 10,000 new objects instead
    of 700; both are undone afterwards (by the outermost of nested ones). Every survivor of
    a scan of the young objects (every domain's plan) waits in the middle generation, and each
    scan of that one goes over all of them again: it is scanned after 10 million objects more
    (a no-op plan of about 50,000 small zones), not half a million (0.04 ms of cpu per domain
    at 10,000; a run makes no cyclic garbage to speak of, and what it makes is still found
    while young).
    What the run made and still holds then joins the oldest generation unscanned, as what was
    frozen does: restoring the thresholds alone had the next allocation scan it all at once
    (0.06 ms of cpu per domain)."""
    if _BATCH_DEPTH:
        _BATCH_DEPTH.append(True)
        try:
            yield
        finally:
            _BATCH_DEPTH.pop()
        return
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(BATCH_GC_THRESHOLD, BATCH_GC_MIDDLE, 100)
    _BATCH_DEPTH.append(True)
    try:
        yield
    finally:
        _BATCH_DEPTH.pop()
        gc.freeze()
        gc.set_threshold(*threshold)
        gc.unfreeze()


_BATCH_DEPTH: list[bool] = []  # the collecting_rarely blocks under way (main thread)


def load_all(paths: Sequence[Path], load: Callable[[Path], LoadedSpec]) -> list[Domain]:
    """Load every spec; a spec that does not load is marked, the others go on."""
    from sipctl.reconciler.bindings import customer_keys

    def work(domain: Domain) -> None:
        domain.loaded = load(domain.path)
        domain.customer_keys = customer_keys(domain.loaded)

    from sipctl.schemas.hosting_reach import reading_once

    domains = [Domain(path) for path in paths]
    with collecting_rarely(), reading_once(paths):  # a hosting directory read once
        for domain in domains:
            run_one(domain, work)
    return domains


def load_one(domain: Domain, load: Callable[[Path], LoadedSpec]) -> None:
    """Load one spec and find its claims (rendering the layers they need, once)."""
    from sipctl.reconciler.bindings import customer_keys

    def work(domain: Domain) -> None:
        domain.loaded = load(domain.path)
        domain.customer_keys = customer_keys(domain.loaded)
        claim(domain)

    run_one(domain, work)


def claim(domain: Domain) -> None:
    from sipctl.reconciler.bindings import customer_keys
    from sipctl.reconciler.gitops.claims import claims_of

    assert domain.loaded is not None
    domain.claims, domain.rendered = claims_of(domain.loaded)
    domain.customer_keys = customer_keys(domain.loaded)


def load_saved(paths: Sequence[Path], read: Callable[[Path], Plan]) -> list[Domain]:
    """Read every saved plan and the spec inside it; a plan that does not read, or whose
    files changed since, is marked (with its spec, when that loaded: its host's other
    domains are then not applied)."""
    from sipctl.schemas.hosting_reach import reading_once

    with reading_once():  # a hosting directory read once, not per plan
        return [_load_saved(path, read) for path in paths]


def _load_saved(path: Path, read: Callable[[Path], Plan]) -> Domain:
    from sipctl.reconciler.engine import loaded_from_plan, refuse_changed_files

    domain = Domain(path)
    try:
        domain.saved = read(path)
        domain.loaded = loaded_from_plan(domain.saved, str(path))
        refuse_changed_files(domain.saved, str(path), domain.loaded)
    except SipctlError as exc:
        domain.fail(exc)
    return domain


# --- claims -----------------------------------------------------------------------------------


def claim_conflicts(domains: Sequence[Domain]) -> list[str]:
    """Overlapping claims between specs: the same DNS name, or the same host layer with
    different contents (see ``claims``). Finds the claims of loaded specs that have none yet;
    a list of one has no overlaps, and costs no claims."""
    if len(domains) < 2:
        return []
    from sipctl.reconciler.gitops.claims import conflicts

    for domain in domains:
        if domain.loaded is not None and domain.claims is None and not domain.failed:
            run_one(domain, claim)
    return conflicts([(d.path, d.claims) for d in domains if d.claims is not None])


def refuse_overlaps(domains: Sequence[Domain], what: str) -> None:
    """Raise if any two specs claim the same thing; ``what`` ends the message."""
    problems = claim_conflicts(domains)
    if problems:
        raise SpecError(f"{len(problems)} overlapping claim(s) between the {what}", problems)


# --- running ------------------------------------------------------------------------------------


class Progress:
    """A one-line progress display on a terminal (stderr); silent when not a terminal."""

    def __init__(self, what: str, total: int, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty() and total > 1
        self._what = what
        self._total = total
        self._done = 0
        self._lock = threading.Lock()

    def step(self, domain: Domain) -> None:
        with self._lock:
            self._done += 1
            if self._enabled:
                self._stream.write(
                    f"\r\x1b[K{self._what}: {self._done}/{self._total} done "
                    f"(last: {domain.name} {domain.status})"
                )
                self._stream.flush()

    def finish(self) -> None:
        if self._enabled:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def run_one(domain: Domain, work: Callable[[Domain], None]) -> None:
    """Run ``work`` on one domain, timed; its failure is recorded on it, never raised."""
    started = time.monotonic()
    try:
        work(domain)
    except SipctlError as exc:
        domain.fail(exc)
    except Exception as exc:  # a bug in one domain must not stop the others
        domain.status, domain.error = "error", exc
        domain.message = f"unexpected error ({type(exc).__name__}: {exc})"
    domain.seconds += time.monotonic() - started


def run_each(
    domains: Sequence[Domain], parallel: int, what: str, work: Callable[[Domain], None]
) -> None:
    """``work`` on each domain in a pool of threads, each timed and its failure recorded.

    ``work`` only reads (plan, drift, verify), so with ``parallel`` 1 the domains go one
    after the other in this thread: a pool of one thread woke this one for each domain
    (0.1 ms of CPU per domain, a twentieth of a no-op plan's). A cancelled run then stops
    within the domain under way, as a run of one does; ``apply``'s pool lets it finish."""
    if parallel <= 1 and len(domains) > 1:
        _one_by_one(domains, what, lambda domain: run_one(domain, work))
        return
    _in_pool(domains, parallel, what, lambda domain: run_one(domain, work), len(domains))


def _one_by_one(items: Sequence[Domain], what: str, job: Callable[[Domain], None]) -> None:
    """``job`` (which never raises) on each item in this thread, with the pool's progress
    line and its signals (SIGTERM and SIGHUP stop the run as Ctrl-C does)."""
    from sipctl.reconciler.gitops.locking import install_interrupts, restore_handlers

    progress = Progress(what, len(items))
    handlers = install_interrupts()
    try:
        for item in items:
            job(item)
            progress.step(item)
    finally:
        restore_handlers(handlers)
        progress.finish()


def _in_pool(
    items: Sequence[Domain],
    parallel: int,
    what: str,
    job: Callable[[Domain], None],
    count: int,
) -> None:
    """``job`` (which never raises) on each item in a pool of threads. A run of one domain
    (``count``: all domains, when the items are the first ones of groups) runs in this
    thread instead: its prompt, its Ctrl-C and its signals are the command's own, as for a
    spec named alone."""
    if count == 1:
        job(items[0])
        return
    from concurrent.futures import ThreadPoolExecutor

    from sipctl.reconciler.gitops.locking import install_interrupts, restore_handlers

    progress = Progress(what, len(items))

    def one(domain: Domain) -> None:
        job(domain)
        progress.step(domain)

    workers = max(1, min(parallel, MAX_PARALLEL, len(items) or 1))
    # A cancelled run (SIGTERM, Ctrl-C) stops here; leaving the pool waits for the domains
    # under way, whose own finally blocks release their locks.
    handlers = install_interrupts()
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sipctl-domain") as pool:
            list(pool.map(one, items))
    finally:
        restore_handlers(handlers)
        progress.finish()


def plan_all(
    domains: Sequence[Domain],
    make_ctx: Callable[[LoadedSpec], RunContext],
    layers: Sequence[str] | None,
    parallel: int,
    several: bool = False,
    keep: bool = True,
) -> None:
    """Plan every loaded domain, each with its own RunContext; ``several``: of ``layers``
    each covers those it manages (``engine.selected_layers``). With ``keep`` (apply, drift)
    each domain keeps its live state for what follows; without it, only its plan."""
    from sipctl.reconciler.engine import make_plan

    todo = [d for d in domains if d.loaded is not None and not d.failed]
    companions = run_domains(todo)

    def work(domain: Domain) -> None:
        assert domain.loaded is not None
        domain.ctx = make_ctx(domain.loaded)
        domain.ctx.run_domains = companions
        rendered, domain.rendered = domain.rendered, None
        made = make_plan(domain.loaded, domain.ctx, layers, rendered, several)
        domain.status = plan_status(made.plan.has_changes)
        if domain.loaded.spec.hosting is not None:
            from sipctl.reconciler.departures import departure_turns

            domain.departure_turns = departure_turns(made)
        if keep:
            domain.plan_run = made
        else:
            # A plan that is only shown needs none of its live state (records and names
            # read, providers): kept, every domain's stayed until the run ended, a third
            # of the memory of a run of 10,000 zones, scanned and freed there at a cost.
            domain.planned = made.plan

    with collecting_rarely():
        run_each(todo, parallel, "planning", work)


def run_domains(domains: Sequence[Domain]) -> frozenset[str]:
    """The domains a run plans and applies (``RunContext.run_domains``): a server several of
    them use in one zone may change with them all (``owned.contested_hosts``), the run's
    claims check holding them to the same addresses."""
    from sipctl.reconciler.dns_records import absolute

    return frozenset(absolute(d.name) for d in domains if not d.failed)


# The end of the refusal when specs overlap before anything was planned.
OVERLAPS_BEFORE_PLAN = "specs; nothing was read or changed"


def load_specs(
    paths: Sequence[Path], load: Callable[[Path], LoadedSpec], shard: str | None
) -> list[Domain]:
    """Load the specs at ``paths`` and check every one against every other (overlapping
    claims raise SpecError before anything is read, also when this run takes one share):
    the domains of share ``shard``."""
    with collecting_rarely():
        domains = load_all(paths, load)
        refuse_overlaps(domains, OVERLAPS_BEFORE_PLAN)
        return take_shard(domains, shard)


def plan_specs(
    paths: Sequence[Path],
    load: Callable[[Path], LoadedSpec],
    make_ctx: Callable[[LoadedSpec], RunContext],
    layers: Sequence[str] | None,
    parallel: int,
    shard: str | None,
    keep: bool,
    several: bool = False,
) -> tuple[list[Domain], set[str]]:
    """Load, check and plan the specs at ``paths``: the domains of share ``shard``, and the
    secrets their planning loaded (for scrubbing). Every spec is checked against every other
    first, also when this run takes one share; overlapping claims raise SpecError before
    anything is read. With ``keep`` (apply), each domain keeps its RunContext.

    A plan that is only shown is parsing and rendering as much as waiting, so with
    ``parallel`` above 1 it is split over worker processes (see ``planners``): each loads,
    checks and plans its part of the specs, and only the claims and the plans come back.
    """
    workers = min(parallel, os.cpu_count() or 1, len(paths))
    if not keep and workers >= 2:
        import multiprocessing

        if "fork" in multiprocessing.get_all_start_methods():
            from sipctl.reconciler.gitops.planners import plan_forked
            from sipctl.schemas.hosting_reach import reading_once

            with collecting_rarely(), reading_once(paths):  # the workers inherit both
                return plan_forked(paths, load, make_ctx, layers, workers, shard, several)
    with collecting_rarely():
        domains = load_specs(paths, load, shard)
        plan_all(domains, make_ctx, layers, parallel, several, keep)
    secrets: set[str] = set()
    for domain in domains:
        if domain.ctx is not None:
            secrets |= domain.ctx.secrets
            if not keep:
                domain.ctx.close()
                domain.ctx = None
    return domains, secrets


def check_all_safe(domains: Sequence[Domain], check: Callable[[Plan], object]) -> None:
    """``check`` each plan (it raises what refuses it); a refused domain is marked."""
    for domain in domains:
        if domain.plan is not None and not domain.failed:
            try:
                check(domain.plan)
            except SipctlError as exc:
                domain.fail(exc)


def apply_all(
    domains: Sequence[Domain],
    make_ctx: Callable[[LoadedSpec], RunContext],
    label: Callable[[Domain], str],
    before: Callable[[Domain, PlanRun], None],
    parallel: int,
    force: bool,
    locks: LockOptions,
    say: Callable[[str], None],
    detail: Callable[[str], None],
) -> None:
    """Apply every planned domain and every saved plan, each under its own locks; ``before``
    runs on a domain's read under them, just before anything changes (see ``guarded``).

    A saved plan is applied exactly (re-read and compared under the lock). A planned domain
    without changes gets only its record of the last apply, when that is missing or out of
    date. Domains of one PBX host, planned or saved alike, go one after the other in one
    worker (they would only wait for each other's host lock), and a host layer that an
    earlier one of them wrote with the same rules is not stale for the next, nor is a zone
    where an earlier domain published the addresses of a server both use (see
    ``engine.refresh``).
    """
    from sipctl.reconciler.engine import written_key
    from sipctl.reconciler.gitops.guarded import Outcome, guarded_apply, record_if_needed

    written: set[tuple[str, str]] = set()
    guard = threading.Lock()
    # the todo's failed ones are not applied: another domain's server is not theirs to move
    companions = run_domains(domains)

    def apply_one(domain: Domain) -> None:
        assert domain.loaded is not None
        if domain.ctx is None:
            domain.ctx = make_ctx(domain.loaded)
            domain.ctx.run_domains = companions
        plan = domain.saved if domain.saved is not None else domain.plan
        assert plan is not None
        if domain.saved is None and not plan.has_changes:
            assert domain.plan_run is not None
            lines = record_if_needed(domain.plan_run, domain.ctx, locks, say, detail)
            domain.outcome, domain.status = Outcome(domain.plan_run, lines=lines), "no changes"
            return
        with guard:
            rewritten = frozenset(written)
        domain.outcome = guarded_apply(
            plan,
            label(domain),
            domain.ctx,
            force=force,
            locks=locks,
            before=lambda fresh: before(domain, fresh),
            say=say,
            detail=detail,
            rewritten=rewritten,
        )
        domain.plan_run = domain.outcome.plan_run
        # a domain had changes when it was planned, even if a host layer's share of them
        # was written by an earlier domain of its host
        applied = plan.has_changes or domain.outcome.report is not None
        domain.status = "applied" if applied else "no changes"
        with guard:
            written.update(written_key(run) for run in domain.plan_run.runs)

    # the failed ones too: a host with a domain that failed to read or plan is left as it is
    todo = [d for d in domains if d.failed or (d.plan_run or d.saved) is not None]
    for domain in todo:  # a host's saved plan that removes departed customers' records
        saved = domain.saved
        if saved is None or domain.failed or domain.loaded is None:
            continue
        if any(t.customer is not None for t in saved.targets):
            from sipctl.reconciler.departures import recorded_departure_turns

            if domain.ctx is None:
                domain.ctx = make_ctx(domain.loaded)
                domain.ctx.run_domains = companions
            domain.departure_turns = recorded_departure_turns(domain.loaded, domain.ctx)
    _run_each_by_host(todo, parallel, "applying", apply_one)


def _run_each_by_host(
    domains: Sequence[Domain], parallel: int, what: str, work: Callable[[Domain], None]
) -> None:
    """Like run_each, with the domains of one host, or of one zone file, one after the
    other in one worker (``shards.turn_groups``: they would only wait for each other's lock,
    or be refused by it).

    They share the host's layers, so once one of them fails the host is left as it is: the
    later ones are not tried, and say so (never "planned": nothing of theirs went out, and
    the run exits non-zero). A domain that failed before (its plan did not read, or was
    refused) fails its host's group before anything of it is tried. Each domain is timed
    on its own. A hosting host's file goes before its customers: a new customer's DNS
    records then advertise a PBX that already serves it, and a host that fails leaves its
    customers as they are, also when it failed to load (a broken customer file beside it),
    which puts it in no host's group."""
    failed_files = {domain.path.resolve(): domain for domain in domains if domain.failed}
    groups = turn_groups(domains)  # one host's, and one zone file's (``shards``)
    for group in groups:
        group.sort(key=lambda domain: not _is_host_file(domain))  # stable: else as given
    by_first = {id(group[0]): group for group in groups}

    def group_work(first: Domain) -> None:
        group = by_first[id(first)]
        failed: dict[str, Domain] = {}  # a host -> its domain that failed first
        for domain in group:
            if domain.failed:
                failed.setdefault(shard_key(domain), domain)
        for domain in group:
            if domain.failed:
                continue
            host = _failed_host_file(domain, failed_files)
            if host is not None:
                domain.status = NOT_APPLIED
                domain.message = f"{host.name} ({host.path}), its host's file, failed"
                continue
            # only a host's layers are left as they are: a domain that merely shares a
            # zone file with a failed one is still applied (after it)
            earlier = failed.get(shard_key(domain))
            if earlier is not None:
                domain.status = NOT_APPLIED
                domain.message = f"{earlier.name} ({earlier.path}) failed first on the same host"
                continue
            run_one(domain, work)
            if domain.failed:
                failed.setdefault(shard_key(domain), domain)

    firsts = [group[0] for group in groups]
    _in_pool(firsts, parallel, what, group_work, len(domains))


def _failed_host_file(domain: Domain, failed_files: Mapping[Path, Domain]) -> Domain | None:
    """The host file of a hosting customer, when that file failed in this run."""
    loaded = domain.loaded
    if loaded is None or loaded.spec.host is None:
        return None
    for name in loaded.composed or {}:  # a customer is composed with its host's file alone
        host = failed_files.get((domain.path.parent / name).resolve())
        if host is not None:
            return host
    return None


def _is_host_file(domain: Domain) -> bool:
    return domain.loaded is not None and domain.loaded.spec.hosting is not None


def close_all(domains: Sequence[Domain]) -> None:
    for domain in domains:
        if domain.ctx is not None:
            domain.ctx.close()
