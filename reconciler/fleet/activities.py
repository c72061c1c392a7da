"""The fleet's activities: plan, apply and verify one domain's layers on a worker.

They run the CLI's own engine (``make_plan``, ``guarded_apply`` with its locks, the safety
limits, ``run_verify``) with the worker's environment, where the credentials are. What they
return goes into the workflow's history, so every message is scrubbed of the secrets the
run loaded, and an error carries its message only (no chained cause, no local values).

Apply is ``guarded_apply`` of exactly the plan the workflow holds: under the CLI's host and
DNS locks it re-reads the live state and refuses a plan that is stale. That is what makes a
retry after a worker died mid-apply safe: the retry finds the half-applied state, refuses
the stale plan without writing, and the workflow plans again, so no record is written twice.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.exceptions import ApplicationError

from sipctl.errors import LockHeldError, SipctlError, StalePlanError
from sipctl.json_text import read_json
from sipctl.reconciler.fleet.model import LayerRequest, PartPlan, StepOutcome

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.loader import LoadedSpec

# Error types the workflow acts on (ApplicationError.type).
STALE = "StalePlan"
REFUSED = "Refused"


def _scrub(text: str, secrets: set[str]) -> str:
    from sipctl.output import scrubbed

    return scrubbed(text, secrets)


@contextmanager
def _heartbeats(every: float) -> Iterator[None]:
    """Heartbeat from a thread while the (blocking) activity body runs: a worker that dies
    stops heartbeating, and Temporal retries the activity elsewhere."""
    stop = threading.Event()
    context = contextvars.copy_context()

    def beat() -> None:
        while not stop.wait(every):
            context.run(activity.heartbeat)

    thread = threading.Thread(target=beat, name="sipctl-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _load(request: LayerRequest, file: str = "") -> LoadedSpec:
    """The spec of a domain's change, or ``file`` of a hosting unit (with the files beside
    it, from this worker's copy), checked as the CLI checks it."""
    from sipctl.schemas.checks import cross_checks
    from sipctl.schemas.loader import load_spec_text

    change = request.change
    if change.files:
        from sipctl.reconciler.fleet.hosting import load_file

        loaded = load_file(change, file)
    else:
        loaded = load_spec_text(change.text, change.source, Path(change.source).parent.resolve())
    problems = list(cross_checks(loaded))
    if problems:
        raise ApplicationError(_shown(request, problems[0]), type=REFUSED, non_retryable=True)
    if not change.files and loaded.spec.domain != change.domain:
        raise ApplicationError(
            f"{change.source}: the spec's domain is {loaded.spec.domain}, not {change.domain}",
            type=REFUSED,
            non_retryable=True,
        )
    return loaded


class _Step:
    """The specs one activity loads (a domain's, or the files of a hosting unit's part, one
    after the other), each with a run context of its own as in 'plan -f DIR', closed when
    the next is opened (a part of 500 customers holds one provider's connections at a
    time); the secrets of every one are kept, to scrub what leaves the worker."""

    def __init__(self, request: LayerRequest) -> None:
        self.request = request
        self.file = ""  # the hosting unit's file at work, for messages
        self._ctx: RunContext | None = None
        self._secrets: set[str] = set()

    def open(self, file: str = "") -> tuple[LoadedSpec, RunContext]:
        from sipctl.providers.base import RunContext

        self.close()
        self.file = file
        loaded = _load(self.request, file)
        self._ctx = RunContext(base_dir=loaded.base_dir, env=dict(os.environ))
        return loaded, self._ctx

    @property
    def secrets(self) -> set[str]:
        return self._secrets | (self._ctx.secrets if self._ctx is not None else set())

    def close(self) -> None:
        if self._ctx is not None:
            self._secrets |= self._ctx.secrets
            self._ctx.close()
            self._ctx = None

    def said(self, text: str) -> str:
        """``text`` as it may leave the worker: the sender's paths, no secret."""
        return _scrub(_shown(self.request, text), self.secrets)

    def about(self) -> str:
        """What a message is about: the domain, or a hosting unit and its file."""
        domain = self.request.change.domain
        return f"{domain} ({self.file})" if self.file else domain


@contextmanager
def _run(request: LayerRequest, what: str) -> Iterator[_Step]:
    """Heartbeat while the step's specs are loaded and worked on, and turn every failure
    into an ApplicationError whose message names the domain and holds no secret."""
    step = _Step(request)
    try:
        with _heartbeats(max(request.settings.heartbeat_seconds / 3, 0.5)):
            yield step
    except ApplicationError:
        raise
    except SipctlError as exc:
        raise ApplicationError(
            step.said(f"{step.about()}: {what}: {exc.message}"),
            type=_error_type(exc),
            non_retryable=not isinstance(exc, LockHeldError) and _error_type(exc) != "Provider",
        ) from None
    except Exception as exc:  # a bug: its type and message, scrubbed, and a retry
        message = step.said(f"{step.about()}: {what}: {type(exc).__name__}: {exc}")
        raise ApplicationError(message, type="Crash") from None
    finally:
        step.close()


def _shown(request: LayerRequest, text: str) -> str:
    """``text`` naming the sender's paths, not the worker's copy of a hosting unit."""
    from sipctl.reconciler.fleet.hosting import shown

    return shown(request.change, text)


def _error_type(exc: SipctlError) -> str:
    from sipctl.errors import ProviderError, UnsafePlanError

    if isinstance(exc, StalePlanError):
        return STALE
    if isinstance(exc, UnsafePlanError):
        return REFUSED
    if isinstance(exc, ProviderError):
        return "Provider"
    return type(exc).__name__


@activity.defn(name="sipctl-plan")
def plan_part(request: LayerRequest) -> PartPlan:
    """Read the live side of the part's layers and plan them (changes nothing). A hosting
    unit's part is its files on this queue, each planned whole as 'plan -f DIR' plans it
    (a host's plan of every layer is the one that removes a departed customer): its plan
    document is those of them with changes, by file name."""
    from sipctl.output import scrubbed_data
    from sipctl.reconciler.engine import PlanRun, make_plan
    from sipctl.reconciler.fleet.hosting import check_plans_size, part_summary, shown_json
    from sipctl.reconciler.gitops.drift import last_recorded
    from sipctl.reconciler.views import summary_line

    part = request.part
    with _run(request, "plan") as step:
        runs: list[tuple[str, PlanRun]] = []
        for file in part.files or [""]:
            loaded, ctx = step.open(file)
            # the host's record rides in the round trip of the host's reads (with_record)
            layers = None if file else part.layers
            runs.append((file, make_plan(loaded, ctx, layers, with_record=True)))
        documents = {file: run.plan.to_json() for file, run in runs}
        # of a hosting part, the plans with changes only (the apply passes over the others):
        # a host of 500 customers, one of them changed, carries one or two plans
        changed = {file for file, run in runs if run.plan.has_changes}
        data: object = (
            {file: doc for file, doc in documents.items() if file in changed}
            if part.files
            else documents[""]
        )
        step.file = ""  # what follows is of the whole part
        # scrubbed string by string, as 'plan --out' saves a plan (a scrub of the JSON text
        # could end inside an escape, and apply compares the plan with its fresh one so)
        plans = shown_json(
            request.change, json.dumps(scrubbed_data(data, step.secrets), sort_keys=True)
        )
        if part.files:
            check_plans_size(request.change, part.queue, len(part.files), plans)
        summaries = {file: summary_line(document) for file, document in documents.items()}
        recorded = next((r for _, run in runs for r in [last_recorded(run)] if r), None)
        return PartPlan(
            part=part,
            # the sender's paths, not this worker's copy's (an apply loads its own copy)
            plan_json=plans,
            has_changes=any(run.plan.has_changes for _, run in runs),
            summary=step.said(part_summary(summaries, runs) if part.files else summaries[""]),
            refusals=[
                step.said(f"{file}: {reason}" if file else reason)
                for file, run in runs
                for reason in run.plan.refusals()
            ],
            held=[
                step.said(f"{file}: {reason}" if file else reason)
                for file, run in runs
                for reason in run.plan.host_refusals()
            ],
            recorded_at=recorded.applied_at if recorded is not None else "",
            recorded_by=step.said(recorded.by) if recorded is not None else "",
        )
    raise AssertionError("unreachable")  # _run re-raises every failure


@activity.defn(name="sipctl-apply")
def apply_part(request: LayerRequest, plan: PartPlan) -> StepOutcome:
    """Apply exactly ``plan`` under the CLI's locks; refuse it when it is stale. A hosting
    unit's part applies its files' plans that have changes in the part's order (the host's
    first), each under its locks; one that fails stops the rest, as 'apply -f DIR' leaves a
    host's later domains untried."""
    from sipctl.reconciler.gitops.guarded import LockOptions, guarded_apply
    from sipctl.reconciler.plan import Plan

    settings = request.settings
    locks = LockOptions(
        timeout=settings.lock_wait_seconds, ttl=timedelta(seconds=settings.lock_ttl_seconds)
    )
    documents = read_json(plan.plan_json)
    part = request.part
    with _run(request, "apply") as step:
        lines: list[str] = []
        for file in part.files or [""]:
            if file and file not in documents:
                continue  # no changes: its plan stayed on the worker that made it
            saved = Plan.from_json(documents[file] if file else documents, "the fleet's plan")
            loaded, ctx = step.open(file)
            outcome = guarded_apply(
                saved,
                f"the plan of {step.about()}",
                ctx,
                force=bool(request.approved),
                locks=locks,
                say=lines.append,
                # a hosting unit's file: from this worker's copy (the plan names the sender's
                # file); a domain's spec: from the plan, as always
                loaded=loaded if file else None,
            )
            if outcome.report is not None:
                lines.extend(outcome.report.lines)
            lines.extend(outcome.lines)
        return StepOutcome([step.said(line) for line in lines])
    raise AssertionError("unreachable")


@activity.defn(name="sipctl-verify")
def verify_domain(request: LayerRequest) -> StepOutcome:
    """The end of an apply, as the CLI's: resolve and probe as a SIP client would."""
    from sipctl.reconciler.verify.run import (
        nameserver_after_apply,
        post_apply_skip_reason,
        run_verify,
    )

    with _run(request, "verify") as step:
        loaded, _ctx = step.open()
        skip = post_apply_skip_reason(loaded)
        if skip is not None:
            return StepOutcome([f"verify skipped: {skip}"])
        report = run_verify(loaded, nameserver_after_apply(loaded))
        if not report.ok:
            first = report.defects[0].message if report.defects else "a probe failed"
            raise ApplicationError(
                step.said(f"{request.change.domain}: applied, but verify failed: {first}"),
                type="VerifyFailed",
                non_retryable=True,
            )
        return StepOutcome(["verify: ok"])
    raise AssertionError("unreachable")


class SweepActivities:
    """Activities that need the worker's Temporal client (async: they run on its loop)."""

    def __init__(self, list_domains: Callable[[], Awaitable[list[str]]]) -> None:
        self._list_domains = list_domains

    @activity.defn(name="sipctl-list-domains")
    async def running_domains(self) -> list[str]:
        return await self._list_domains()
