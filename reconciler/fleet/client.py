"""What a portal or ``sipctl fleet`` asks of the fleet: sync specs, approve a plan, show
the state of every domain, keep the drift schedule. Each is one async function over a
connected Temporal client, so a portal calls exactly what the CLI calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from sipctl.errors import SipctlError
from sipctl.reconciler.fleet.config import FleetConfig
from sipctl.reconciler.fleet.model import (
    APPLYING,
    DOMAIN_WORKFLOW,
    HOST_REFUSED_HINT,
    PLANNING,
    SILENT,
    STATUS_MEMO,
    SWEEP_SCHEDULE,
    SWEEP_WORKFLOW,
    WORKERS_GONE_SECONDS,
    WORKFLOW_QUEUE,
    DomainStart,
    DomainStatus,
    SpecChange,
    parts_of,
    verify_queue_of,
)

if TYPE_CHECKING:
    from sipctl.schemas.loader import LoadedSpec

QUERY_TIMEOUT = timedelta(seconds=30)
WORKERS_GONE = timedelta(seconds=WORKERS_GONE_SECONDS)


async def connect(config: FleetConfig) -> Client:
    try:
        return await Client.connect(config.address, namespace=config.namespace)
    except (RPCError, RuntimeError, OSError) as exc:
        text = str(exc)
        reason = "connection refused" if "refused" in text.lower() else text.splitlines()[0][:200]
        raise SipctlError(
            f"cannot reach Temporal at {config.address} (namespace {config.namespace}): {reason}",
            hint="start a server (for a try: temporal server start-dev) or set 'address' in "
            "the fleet configuration; the plain CLI (sipctl plan/apply) works without it",
        ) from None


@dataclass
class Synced:
    domain: str
    source: str
    digest: str
    queues: list[str]
    customers: list[str]  # a hosting unit's (their domains); none for a domain


def spec_changes(paths: Sequence[Path]) -> list[SpecChange]:
    """Load and check the spec files of one sync, as ``plan -f`` does: each alone, then
    against each other. Two specs that claim one DNS name, or one host layer with different
    contents, would each rewrite the other's on every apply of its own workflow (and each be
    shown converged): refused before any workflow starts. The files of a hosting directory
    make one unit per host file (``hosting.units``), which is refused when the sync holds
    only part of the directory."""
    from sipctl.errors import SpecError
    from sipctl.reconciler.fleet.hosting import is_hosting_file, units
    from sipctl.reconciler.gitops.claims import claims_of, conflicts
    from sipctl.schemas.hosting_reach import reading_once

    loaded: list[tuple[Path, LoadedSpec]] = []
    claimed = []
    with reading_once(paths):  # a hosting directory read once, as plan -f DIR reads it
        for path in paths:
            spec = _load(path)
            loaded.append((path, spec))
            if len(paths) > 1:
                claimed.append((path, claims_of(spec)[0]))
    problems = conflicts(claimed)
    if problems:
        raise SpecError(
            f"{len(problems)} overlapping claim(s) between the specs; nothing was sent to "
            "the fleet",
            problems,
            hint="nothing was sent to the fleet. Each DNS name, and each host layer unless "
            "its contents are the same, belongs to one spec; several companies on one PBX "
            "are one host's hosting directory (sipctl docs hosting), which 'fleet sync -f "
            "DIR' reconciles as one unit",
        )
    changes = [_change(path, spec) for path, spec in loaded if not is_hosting_file(spec)]
    return changes + units(loaded)


def _load(path: Path) -> LoadedSpec:
    """Load and check one spec file, as the CLI does."""
    from sipctl.cli_common import load_checked

    return load_checked(path)


def _change(path: Path, loaded: LoadedSpec) -> SpecChange:
    """What the domain's workflow gets of one spec, and which queues serve it."""
    return SpecChange(
        domain=loaded.spec.domain,
        source=str(path.resolve()),
        text=loaded.text,
        parts=parts_of(loaded),
        verify_queue=verify_queue_of(loaded),
    )


async def sync(
    client: Client, config: FleetConfig, changes: Sequence[SpecChange], at_once: int = 32
) -> list[Synced]:
    """Start each domain's workflow, or signal the new spec into the running one (the domain
    is the workflow's id: a second change waits for the first, it never runs beside it).
    ``at_once`` domains are sent concurrently: each is one round trip to the server, and a
    thousand of them one after another spent minutes waiting."""
    settings = config.settings()
    limit = asyncio.Semaphore(at_once)

    async def send(change: SpecChange) -> Synced:
        change.settings = settings
        async with limit:
            await client.start_workflow(
                DOMAIN_WORKFLOW,
                DomainStart(change.domain, settings),
                id=change.domain,
                task_queue=WORKFLOW_QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                start_signal="update",
                start_signal_args=[change],
                # a new workflow has its memo before a worker runs it: status shows it
                # pending instead of asking a worker (which, in a burst, is busy)
                memo={STATUS_MEMO: asdict(DomainStatus(change.domain))},
            )
        queues = [p.queue for p in change.parts]
        return Synced(change.domain, change.source, change.digest, queues, change.customers)

    return list(await asyncio.gather(*(send(change) for change in changes)))


def _handle(client: Client, domain: str) -> WorkflowHandle[object, object]:
    return client.get_workflow_handle(domain)


async def domain_status(client: Client, domain: str) -> DomainStatus:
    """The state of one domain, from the server: the workflow's memo as the server holds it
    now (describe, no worker involved), with why its step is retried. A workflow started by
    an sipctl that kept no memo is asked through a worker (the query): when none answers in
    time (all busy, or none running), the domain is shown as not answering rather than
    failing the whole status."""
    try:
        description = await _handle(client, domain).describe(rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise SipctlError(f"{domain}: the fleet has no workflow for it") from None
        return await _queried(client, domain)
    status = await _memo_status(description)
    if status is None:
        return await _queried(client, domain)
    if status.state in (PLANNING, APPLYING) and not status.reason:
        status.reason = _retry_reason(description)
    return status


async def _queried(client: Client, domain: str) -> DomainStatus:
    """The status a workflow without the memo reports to the query, through a worker."""
    try:
        status: DomainStatus = await _handle(client, domain).query(
            "status", result_type=DomainStatus, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise SipctlError(f"{domain}: the fleet has no workflow for it") from None
        waited = QUERY_TIMEOUT.total_seconds()
        return DomainStatus(domain, SILENT, f"no worker answered within {waited:g} s")
    if status.state in (PLANNING, APPLYING) and not status.reason:
        status.reason = await _retrying(client, domain)
    return status


async def _memo_status(execution: WorkflowExecution) -> DomainStatus | None:
    """The DomainStatus a workflow keeps in its memo; None without one (a workflow of an
    older sipctl, or one no worker has run yet) or when it cannot be read as one."""
    try:
        status: DomainStatus | None = await execution.memo_value(
            STATUS_MEMO, None, type_hint=DomainStatus
        )
    except (TypeError, ValueError, KeyError):
        return None
    return status if isinstance(status, DomainStatus) and status.domain else None


async def _retrying(client: Client, domain: str) -> str:
    """Why the step a domain is in has failed before (see ``_retry_reason``); "" when the
    server cannot say."""
    try:
        description = await _handle(client, domain).describe(rpc_timeout=QUERY_TIMEOUT)
    except RPCError:
        return ""
    return _retry_reason(description)


def _retry_reason(description: WorkflowExecutionDescription) -> str:
    """Why the step a domain is in has failed before, while Temporal retries it: the
    workflow sees no failure until the last try, so its status said 'planning' with no
    reason for as long as the retries last; the cause was in a worker's log only. The
    message is the activity's own, scrubbed of the worker's secrets where it was made."""
    for activity in description.raw_description.pending_activities:
        if activity.attempt > 1 and activity.last_failure.message:
            most = f" of {activity.maximum_attempts}" if activity.maximum_attempts else ""
            first = activity.last_failure.message.splitlines()[0]
            return f"retrying (try {activity.attempt}{most}): {first}"
    return ""


async def approve(client: Client, domain: str) -> DomainStatus:
    """Approve the plans the domain's workflow is waiting with (the safety limit's refusal)."""
    from sipctl.reconciler.fleet.status_view import cannot_be_approved

    status = await domain_status(client, domain)
    if cannot_be_approved(status):
        refusals = "; ".join(status.refusals)
        raise SipctlError(
            f"{domain}: its plan is refused for safety and no approval passes it: {refusals}",
            hint=HOST_REFUSED_HINT,
        )
    if not status.waiting_digest:
        raise SipctlError(
            f"{domain}: nothing waits for approval (state: {status.state})",
            hint="'sipctl fleet status' shows each domain's state",
        )
    await _handle(client, domain).signal("approve", status.waiting_digest)
    return status


async def domains(client: Client) -> list[str]:
    """The domains whose workflow is running, sorted."""
    return sorted(await _running(client))


async def _running(client: Client) -> dict[str, WorkflowExecution]:
    """The running domain workflows by domain, as the server lists them (memo included)."""
    query = f"WorkflowType = '{DOMAIN_WORKFLOW}' AND ExecutionStatus = 'Running'"
    return {execution.id: execution async for execution in client.list_workflows(query)}


async def statuses(client: Client, at_once: int = 50) -> list[DomainStatus]:
    """Every domain's status from one list of the running workflows: each keeps its status
    in its memo, which the server returns with the list, so no worker is asked and a busy
    or stopped one cannot delay the answer. The list is the server's visibility store, which
    may be a moment behind a workflow; a domain planning or applying is described besides
    (the server's current memo, and why its step is retried). Only a workflow without the
    memo (started by an older sipctl) is queried, ``at_once`` at a time."""
    running = await _running(client)
    found: dict[str, DomainStatus] = {}
    asked: list[str] = []  # described (no worker involved), or queried without a memo
    without_memo: list[str] = []
    for name, execution in running.items():
        status = await _memo_status(execution)
        if status is None:
            without_memo.append(name)
        elif status.state in (PLANNING, APPLYING) and not status.reason:
            asked.append(name)  # the current memo, and why its step is retried
        else:
            found[name] = status
    if without_memo and not await workers_seen(client):
        # each query would wait QUERY_TIMEOUT for a worker: 30 s per batch, ten minutes
        # for a thousand domains, to say what one question to the server says at once
        reason = (
            f"no worker has polled the fleet's workflow queue ({WORKFLOW_QUEUE}) in the last "
            f"{WORKERS_GONE.total_seconds():g} s: start one, 'sipctl fleet worker'"
        )
        found.update((name, DomainStatus(name, SILENT, reason)) for name in without_memo)
    else:
        asked.extend(without_memo)
    for start in range(0, len(asked), at_once):
        batch = asked[start : start + at_once]
        answers = await asyncio.gather(*(domain_status(client, d) for d in batch))
        found.update(zip(batch, answers, strict=True))
    return [found[name] for name in sorted(found)]


async def workers_seen(client: Client) -> bool:
    """Whether a worker has polled the workflows' task queue lately. The server lists a
    poller for minutes after its worker died, so an old last poll counts as none."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=WORKFLOW_QUEUE),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    try:
        answer = await client.workflow_service.describe_task_queue(request, timeout=QUERY_TIMEOUT)
    except RPCError:
        return True  # not known: the queries say it, one by one
    now = datetime.now(UTC)
    return any(
        now - poller.last_access_time.ToDatetime(tzinfo=UTC) < WORKERS_GONE
        for poller in answer.pollers
    )


async def ensure_schedule(client: Client, config: FleetConfig) -> str:
    """Create or update the drift sweep's schedule (every ``drift.every``)."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            SWEEP_WORKFLOW, id=f"{SWEEP_SCHEDULE}-run", task_queue=WORKFLOW_QUEUE
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=config.drift.every))]
        ),
    )
    try:
        await client.create_schedule(SWEEP_SCHEDULE, schedule)
        return "created"
    except ScheduleAlreadyRunningError:

        def replace(_input: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SWEEP_SCHEDULE).update(replace)
        return "updated"


async def sweep_now(client: Client) -> None:
    """Run the drift sweep once, now (as the schedule would)."""
    await client.get_schedule_handle(SWEEP_SCHEDULE).trigger()
