"""The fleet's workflows: one per domain, and the drift sweep a schedule starts.

Workflow code is replayed by Temporal, so it does no I/O and reads no clock but
``workflow.now()``; all work is in activities, referred to by name (``activities.py``), each
on the task queue of the part it touches. The domain workflow is long-lived: it waits for a
new spec (signal ``update``), a sweep (signal ``sweep``) or an approval (signal ``approve``)
and converges the domain each time; its state is the query ``status``, and also the memo
``status`` (``STATUS_MEMO``), which the server keeps and lists without asking a worker.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from sipctl.reconciler.fleet.model import (
        APPLYING,
        CONVERGED,
        DOMAIN_WORKFLOW,
        DRIFTED,
        FAILED,
        HOST_REFUSED_REASON,
        PENDING,
        PLANNING,
        REFUSED,
        STATUS_MEMO,
        SWEEP_WORKFLOW,
        WAITING,
        DomainStart,
        DomainStatus,
        LayerRequest,
        Part,
        PartPlan,
        Settings,
        SpecChange,
        StepOutcome,
        plans_digest,
    )

T = TypeVar("T")
STALE = "StalePlan"  # activities.STALE, repeated: the sandbox keeps activities out
_REPLANS = 3  # a plan found stale under the lock is made again at most this often
_ROUNDS_PER_RUN = 200  # then continue-as-new, so the history stays small
# Upserting the memo adds commands to the history: a run started by an sipctl without it
# replays its history without them (workflow.patched), and shows its status by the query.
_MEMO_PATCH = "sipctl-status-memo"
# A plan no approval passes is shown refused, not waiting for an approval that cannot pass
# it; a run that has waited with one since before replays as it did (workflow.patched).
_HOST_REFUSAL_PATCH = "sipctl-host-refusal"


@workflow.defn(name=DOMAIN_WORKFLOW)
class DomainWorkflow:
    def __init__(self) -> None:
        self._incoming: SpecChange | None = None
        self._sweep_asked = False
        self._approved = ""
        self._settings = Settings()
        self._spec: SpecChange | None = None
        self._status = DomainStatus(domain="")
        self._published: dict[str, object] | None = None

    @workflow.signal(name="update")
    def update(self, change: SpecChange) -> None:
        """A new version of the spec: it replaces one not yet applied."""
        self._incoming = change
        if change.settings is not None:
            self._settings = change.settings
        if self._status.state != APPLYING:
            self._status.state = PENDING
        self._publish()

    @workflow.signal(name="sweep")
    def sweep(self) -> None:
        self._sweep_asked = True

    @workflow.signal(name="approve")
    def approve(self, digest: str) -> None:
        """Approve the plans now waiting, named by their digest (``fleet approve``)."""
        self._approved = digest

    @workflow.query(name="status")
    def status(self) -> DomainStatus:
        return self._status

    def _publish(self) -> None:
        """Keep the memo equal to the status, so that `fleet status` reads it from the
        server while every worker is busy (or none runs). Called after each change and
        before each wait; a status unchanged since the last upsert adds nothing."""
        current = asdict(self._status)
        if current == self._published or not workflow.patched(_MEMO_PATCH):
            return
        workflow.upsert_memo({STATUS_MEMO: current})
        self._published = current

    @workflow.run
    async def run(self, start: DomainStart) -> None:
        self._settings = start.settings
        self._spec = start.spec
        self._status = start.status or DomainStatus(domain=start.domain)
        for _round in range(_ROUNDS_PER_RUN):
            self._publish()
            await workflow.wait_condition(lambda: self._incoming is not None or self._sweep_asked)
            self._sweep_asked = False
            if self._incoming is not None:
                change, self._incoming = self._incoming, None
                self._spec = change
                await self._converge(change, sweep=False)
            elif self._spec is not None:
                await self._converge(self._spec, sweep=True)
            if workflow.info().is_continue_as_new_suggested():
                break
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        # What arrived meanwhile is carried over: a pending change is applied by the next run,
        # and the next run starts with the memo (fleet status reads it before its first task).
        memo = {STATUS_MEMO: asdict(self._status)} if workflow.patched(_MEMO_PATCH) else None
        workflow.continue_as_new(
            DomainStart(start.domain, self._settings, self._incoming or self._spec, self._status),
            memo=memo,
        )

    async def _converge(self, change: SpecChange, sweep: bool) -> None:
        status = self._status
        status.spec_digest, status.source = change.digest, change.source
        status.queues = [part.queue for part in change.parts]
        status.customers = list(change.customers)  # a hosting unit's; none for a domain
        status.reason, status.refusals, status.waiting_digest = "", [], ""
        for _attempt in range(_REPLANS):
            status.state = PLANNING
            self._publish()
            try:
                plans = [await self._plan(change, part) for part in change.parts]
            except ActivityError as err:
                self._failed(err)
                return
            status.last_check = workflow.now().isoformat(timespec="milliseconds")
            status.plan_summary = "; ".join(f"{p.part.queue}: {p.summary}" for p in plans)
            recorded = next((p for p in plans if p.recorded_at), None)
            status.recorded_at = recorded.recorded_at if recorded is not None else ""
            status.recorded_by = recorded.recorded_by if recorded is not None else ""
            if not any(plan.has_changes for plan in plans):
                status.state = CONVERGED
                return
            if any(plan.held for plan in plans) and workflow.patched(_HOST_REFUSAL_PATCH):
                status.state, status.reason = REFUSED, HOST_REFUSED_REASON
                status.refusals = [reason for plan in plans for reason in plan.refusals]
                return
            if sweep and not self._settings.repair:
                status.state, status.reason = DRIFTED, "the live side differs from the spec"
                return
            approved = await self._approval(plans)
            if approved is None:  # a newer spec arrived while this plan waited
                status.state = PENDING
                return
            status.state = APPLYING
            self._publish()
            try:
                for plan in plans:
                    if plan.has_changes:
                        await self._apply(change, plan, approved)
                if change.verify_queue:
                    await self._verify(change, approved)
            except ActivityError as err:
                if _error_type(err) == STALE:
                    continue  # changed since planned (or half-applied by a dead worker): again
                self._failed(err)
                return
            status.state = CONVERGED
            status.last_apply = workflow.now().isoformat(timespec="milliseconds")
            return
        status.state, status.reason = FAILED, "the live side kept changing while it was applied"

    async def _approval(self, plans: list[PartPlan]) -> str | None:
        """ "" when no plan needs approval; the digest once approved; None when a newer
        spec replaced the plans while they waited."""
        refusals = [reason for plan in plans for reason in plan.refusals]
        if not refusals:
            return ""
        digest = plans_digest(plans)
        status = self._status
        status.state, status.refusals, status.waiting_digest = WAITING, refusals, digest
        self._publish()
        await workflow.wait_condition(
            lambda: self._approved == digest or self._incoming is not None
        )
        status.refusals, status.waiting_digest = [], ""
        return digest if self._approved == digest else None

    async def _execute(self, name: str, args: list[object], queue: str, result: type[T]) -> T:
        """Run activity ``name`` on ``queue``: heartbeats tell a dead worker, and the retry
        runs on any other worker of the queue (or the restarted one)."""
        settings = self._settings
        outcome: T = await workflow.execute_activity(
            name,
            args=args,
            task_queue=queue,
            result_type=result,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=settings.heartbeat_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=settings.attempts,
            ),
        )
        return outcome

    async def _plan(self, change: SpecChange, part: Part) -> PartPlan:
        request = LayerRequest(change, part, self._settings)
        return await self._execute("sipctl-plan", [request], part.queue, PartPlan)

    async def _apply(self, change: SpecChange, plan: PartPlan, approved: str) -> None:
        request = LayerRequest(change, plan.part, self._settings, approved)
        await self._execute("sipctl-apply", [request, plan], plan.part.queue, StepOutcome)

    async def _verify(self, change: SpecChange, approved: str) -> None:
        queue = change.verify_queue
        request = LayerRequest(change, Part(queue, []), self._settings, approved)
        await self._execute("sipctl-verify", [request], queue, StepOutcome)

    def _failed(self, err: ActivityError) -> None:
        self._status.state = FAILED
        cause = err.cause
        self._status.reason = str(cause.message if isinstance(cause, ApplicationError) else err)


def _error_type(err: ActivityError) -> str:
    cause = err.cause
    return cause.type or "" if isinstance(cause, ApplicationError) else ""


@workflow.defn(name=SWEEP_WORKFLOW)
class DriftSweepWorkflow:
    """Started by the drift schedule: ask every domain workflow to plan again."""

    @workflow.run
    async def run(self) -> int:
        domains: list[str] = await workflow.execute_activity(
            "sipctl-list-domains",
            result_type=list[str],
            start_to_close_timeout=timedelta(minutes=5),
        )
        for domain in domains:
            await workflow.get_external_workflow_handle(domain).signal("sweep")
        return len(domains)
