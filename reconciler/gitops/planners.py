"""Planning many domains in worker processes, for a plan that is only shown.

Loading, validating, rendering and diffing a spec is CPU-bound Python, so threads do not
share it over cores; forked processes do. Each worker takes a fixed part of the spec files
and keeps what it loads in its own memory for the whole run:

1. it loads and checks its specs and renders their layers once, and sends back only their
   claims (names and digests, see ``claims``);
2. the parent compares all the claims (the check must see every spec at once, including
   the other shards'), then tells each worker which of its specs to plan (those of this
   run's shard), or to stop when specs overlap: nothing is read then;
3. the worker plans them, reusing the rendered layers, and sends back the plans made, a
   batch at least every ``SEND_EVERY`` seconds.

Only claims and plans cross the pipes, never specs or live state.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipctl.errors import SpecError
from sipctl.reconciler.envelope import plan_status
from sipctl.reconciler.gitops.locking import install_interrupts, restore_handlers
from sipctl.reconciler.gitops.multi import (
    OVERLAPS_BEFORE_PLAN,
    Domain,
    Progress,
    load_one,
    refuse_overlaps,
    run_domains,
    run_one,
)
from sipctl.reconciler.gitops.shards import take_shard

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from sipctl.providers.base import RunContext
    from sipctl.reconciler.bindings import CustomerKey
    from sipctl.reconciler.gitops.claims import Claims
    from sipctl.schemas.loader import LoadedSpec

JOIN_SECONDS = 10.0
# A worker sends its plans in batches, one at least this often (and the last at its end).
# A message per plan woke the parent for each of thousands of domains, and cost it a
# wait, a frame and a pickle each: 0.1 ms of CPU per domain, a tenth of a domain's own.
# The progress line moves as often.
SEND_EVERY = 0.1

_Job = tuple[
    Sequence[Path],
    Callable[[Path], "LoadedSpec"],
    Callable[["LoadedSpec"], "RunContext"],
    Sequence[str] | None,
    bool,
]

# What a forked worker inherits (set just before the workers start; see plan_forked).
_FORKED: _Job | None = None


@dataclass(frozen=True)
class _Claimed:
    """A worker's answer for one loaded spec (plain data: it crosses a pipe)."""

    index: int
    claims: Claims | None
    status: str
    message: str
    hint: str | None  # the error's what-to-do line, shown after the message
    seconds: float
    customer_keys: tuple[CustomerKey, ...]


@dataclass(frozen=True)
class _Planned:
    """A worker's plan of one domain."""

    index: int
    status: str
    message: str
    hint: str | None  # the error's what-to-do line, shown after the message
    seconds: float
    plan: dict[str, Any] | None
    secrets: frozenset[str]


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    share: list[int]


def plan_forked(
    paths: Sequence[Path],
    load: Callable[[Path], LoadedSpec],
    make_ctx: Callable[[LoadedSpec], RunContext],
    layers: Sequence[str] | None,
    workers: int,
    shard: str | None,
    several: bool = False,
) -> tuple[list[Domain], set[str]]:
    """``multi.plan_specs`` over ``workers`` forked processes."""
    global _FORKED
    from sipctl.schemas.loader import build_spec_model

    build_spec_model()  # once here, not once per worker (they inherit it)
    domains = [Domain(path) for path in paths]
    context = multiprocessing.get_context("fork")
    started: list[_Worker] = []
    progress: Progress | None = None
    handlers = install_interrupts()
    _FORKED = (paths, load, make_ctx, layers, several)
    try:
        for first in range(workers):
            share = list(range(first, len(paths), workers))
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_work, args=(child_end, share), name="sipctl-planner", daemon=True
            )
            process.start()
            child_end.close()
            started.append(_Worker(process, parent_end, share))
        _FORKED = None
        for worker in started:
            _take_claims(worker, domains)
        try:
            refuse_overlaps(domains, OVERLAPS_BEFORE_PLAN)
        except SpecError:
            for worker in started:
                _send(worker, None)
            raise
        chosen = take_shard(domains, shard)
        todo = {id(d) for d in chosen if d.claims is not None and not d.failed}
        companions = run_domains([d for d in chosen if id(d) in todo])
        for worker in started:
            _send(worker, ([i for i in worker.share if id(domains[i]) in todo], companions))
        progress = Progress("planning", len(todo))
        secrets = _take_plans(started, domains, progress)
        return chosen, secrets
    finally:
        _FORKED = None
        _stop(started)
        restore_handlers(handlers)
        if progress is not None:
            progress.finish()


def _take_claims(worker: _Worker, domains: list[Domain]) -> None:
    try:
        answers: list[_Claimed] = worker.conn.recv()
    except (EOFError, OSError):
        for index in worker.share:
            _lost(domains[index], worker)
        return
    for answer in answers:
        domain = domains[answer.index]
        domain.claims = answer.claims
        domain.customer_keys = answer.customer_keys
        domain.status, domain.message = answer.status, answer.message
        domain.hint = answer.hint
        domain.seconds = answer.seconds


def _take_plans(started: list[_Worker], domains: list[Domain], progress: Progress) -> set[str]:
    from sipctl.reconciler.plan import Plan

    secrets: set[str] = set()
    pending = {worker.conn: worker for worker in started}
    while pending:
        for conn in multiprocessing.connection.wait(list(pending)):
            worker = pending[conn]  # type: ignore[index]
            try:
                answers: list[_Planned] | None = worker.conn.recv()
            except (EOFError, OSError):
                for index in worker.share:
                    if domains[index].status == "pending":
                        _lost(domains[index], worker)
                del pending[worker.conn]
                continue
            if answers is None:
                del pending[worker.conn]
                continue
            for answer in answers:
                domain = domains[answer.index]
                domain.status, domain.message = answer.status, answer.message
                domain.hint = answer.hint
                domain.seconds = answer.seconds
                if answer.plan is not None:
                    domain.planned = Plan.from_json(answer.plan)
                secrets |= answer.secrets
                progress.step(domain)
    return secrets


def _lost(domain: Domain, worker: _Worker) -> None:
    worker.process.join(JOIN_SECONDS)
    domain.status = "error"
    domain.message = (
        f"the planning worker stopped unexpectedly (exit code {worker.process.exitcode})"
    )


def _send(worker: _Worker, message: tuple[list[int], frozenset[str]] | None) -> None:
    # A worker that is gone: its domains are marked when its answers are missing.
    with contextlib.suppress(OSError):
        worker.conn.send(message)


def _stop(started: list[_Worker]) -> None:
    """Close the pipes and wait for the workers; end the ones that do not stop (they only
    read, so nothing is left half-done)."""
    for worker in started:
        worker.conn.close()
    for worker in started:
        worker.process.join(JOIN_SECONDS)
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join()


# --- in a worker process ---------------------------------------------------------------------


def _work(conn: Connection, share: list[int]) -> None:
    assert _FORKED is not None, "planning workers are forked by plan_forked"
    paths, load, make_ctx, layers, several = _FORKED
    try:
        loaded: dict[int, Domain] = {}
        answers = []
        for index in share:
            domain = loaded[index] = Domain(paths[index])
            load_one(domain, load)
            answers.append(
                _Claimed(
                    index,
                    domain.claims,
                    domain.status,
                    domain.message,
                    domain.hint,
                    domain.seconds,
                    domain.customer_keys,
                )
            )
        conn.send(answers)
        # which of its specs to plan, and the domains of the run (``multi.run_domains``)
        order: tuple[list[int], frozenset[str]] | None = conn.recv()
        indices, companions = order if order is not None else ([], frozenset[str]())
        batch: list[_Planned] = []
        sent = time.monotonic()
        for index in indices:
            # a domain is planned once: what it loaded goes with it, not at the worker's end
            domain = loaded.pop(index)
            batch.append(_plan_one(domain, index, make_ctx, layers, several, companions))
            if time.monotonic() - sent >= SEND_EVERY:
                conn.send(batch)
                batch, sent = [], time.monotonic()
        if batch:
            conn.send(batch)
        conn.send(None)
    except (KeyboardInterrupt, EOFError, OSError):
        return  # the parent was interrupted or is gone: it reports


def _plan_one(
    domain: Domain,
    index: int,
    make_ctx: Callable[[LoadedSpec], RunContext],
    layers: Sequence[str] | None,
    several: bool,
    companions: frozenset[str],
) -> _Planned:
    from sipctl.reconciler.engine import make_plan
    from sipctl.reconciler.plan import Plan

    assert domain.loaded is not None
    ctx = make_ctx(domain.loaded)
    ctx.run_domains = companions
    made: list[Plan] = []

    def work(domain: Domain) -> None:
        assert domain.loaded is not None
        rendered, domain.rendered = domain.rendered, None
        made.append(make_plan(domain.loaded, ctx, layers, rendered, several).plan)
        domain.status = plan_status(made[0].has_changes)

    try:
        run_one(domain, work)
    finally:
        ctx.close()
    plan = made[0].to_json() if made else None
    return _Planned(
        index,
        domain.status,
        domain.message,
        domain.hint,
        domain.seconds,
        plan,
        frozenset(ctx.secrets),
    )
