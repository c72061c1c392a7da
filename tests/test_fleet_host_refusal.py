"""A plan refused for a reason no approval passes (the host's kind: a guest jump into the
admin's dialplan that can call out, ``safety.host_refusals``) is shown refused by the fleet,
not "waiting for approval": `fleet status` suggested `sipctl fleet approve`, whose apply
(``--force``) was then refused again. `fleet approve` refuses it, saying what can lift it.

Against Temporal's real dev server, with the real domain workflow, status and approve. The
worker here serves the domain's queue with activities that answer as the real plan does for
such a plan (a PBX whose running dialplan would call out needs a running Asterisk, which
test_guest_goto_trunk.py drives; here the decision after the plan is what is tested), and
counts the applies: none may run.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import pytest
from fixtures.temporal import TemporalDevServer
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from sipctl.errors import SipctlError
from sipctl.reconciler.fleet.client import approve, domain_status
from sipctl.reconciler.fleet.model import (
    DOMAIN_WORKFLOW,
    HOST_REFUSED_HINT,
    REFUSED,
    STATUS_MEMO,
    WAITING,
    WORKFLOW_QUEUE,
    DomainStart,
    DomainStatus,
    LayerRequest,
    Part,
    PartPlan,
    Settings,
    SpecChange,
    StepOutcome,
)
from sipctl.reconciler.fleet.status_view import cannot_be_approved, status_table
from sipctl.reconciler.fleet.workflows import DomainWorkflow
from sipctl.reconciler.safety import FORCE_CANNOT_PASS_WHY

HELD = (
    "asterisk dir:/srv/pbx: guests are sent to 201@internal (asterisk.local_context), and "
    "there the running Asterisk can call out: Dial(PJSIP/${EXTEN}@trunk,60). The PBX's admin "
    f"lists '201@internal' under guest_jumps in the host profile; {FORCE_CANNOT_PASS_WHY}"
)
LIMIT = "dns ns1: the plan deletes or replaces 4 of 6 managed records (67%, the limit is 30%)"


class Answers:
    """The plan's answer for each spec text, and the applies asked for."""

    def __init__(self) -> None:
        self.applied: list[str] = []

    @activity.defn(name="sipctl-plan")
    def plan(self, request: LayerRequest) -> PartPlan:
        refusals = [HELD, LIMIT] if "held" in request.change.text else [LIMIT]
        held = [r for r in refusals if FORCE_CANNOT_PASS_WHY in r]
        return PartPlan(request.part, "{}", True, "1 to change", refusals, held)

    @activity.defn(name="sipctl-apply")
    def apply(self, request: LayerRequest, plan: PartPlan) -> StepOutcome:
        self.applied.append(request.change.text)
        return StepOutcome(["applied"])


async def _until(client: Client, domain: str, state: str) -> DomainStatus:
    for _ in range(300):
        status = await domain_status(client, domain)
        if status.state == state:
            return status
        await asyncio.sleep(0.2)
    pytest.fail(f"{domain} never reached {state!r}: {status}")


async def _sync(client: Client, domain: str, text: str, queue: str) -> None:
    change = SpecChange(domain, f"{domain}.yaml", text, [Part(queue, ["asterisk"])])
    change.settings = Settings(heartbeat_seconds=5, attempts=1)
    await client.start_workflow(
        DOMAIN_WORKFLOW,
        DomainStart(domain, change.settings),
        id=domain,
        task_queue=WORKFLOW_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="update",
        start_signal_args=[change],
        memo={STATUS_MEMO: asdict(DomainStatus(domain))},
    )


async def _scenario(address: str) -> None:
    client = await Client.connect(address)
    queue = f"pbx:held-{uuid.uuid4().hex[:8]}"
    domain = f"held-{uuid.uuid4().hex[:8]}.example"
    answers = Answers()
    workflows = Worker(client, task_queue=WORKFLOW_QUEUE, workflows=[DomainWorkflow])
    with ThreadPoolExecutor(2) as executor:
        part = Worker(
            client,
            task_queue=queue,
            activities=[answers.plan, answers.apply],
            activity_executor=executor,
        )
        async with workflows, part:
            await _sync(client, domain, "version: 1 # held", queue)
            status = await _until(client, domain, REFUSED)
            assert status.refusals == [HELD, LIMIT] and status.waiting_digest == ""
            table = status_table([status])
            assert "sipctl fleet approve" in table  # as what cannot pass it, never a suggestion
            assert f"'sipctl fleet approve {domain}'" not in table, table
            assert "guest_jumps" in table and "no approval passes it" in table, table
            with pytest.raises(SipctlError) as refused:
                await approve(client, domain)
            assert "no approval passes it" in refused.value.message
            assert refused.value.hint == HOST_REFUSED_HINT
            # a spec without the held refusal waits for approval as before, and is applied
            await _sync(client, domain, "version: 1 # limit only", queue)
            status = await _until(client, domain, WAITING)
            assert status.refusals == [LIMIT] and not cannot_be_approved(status)
            assert f"'sipctl fleet approve {domain}'" in status_table([status])
            await approve(client, domain)
            await _until(client, domain, "converged")
            assert answers.applied == ["version: 1 # limit only"]
            await client.get_workflow_handle(domain).terminate("test over")


def test_a_plan_no_approval_passes_is_shown_refused_and_approve_refuses_it(
    temporal: TemporalDevServer,
) -> None:
    asyncio.run(_scenario(temporal.address))


def test_a_workflow_waiting_since_before_with_a_held_plan_is_not_offered_approve() -> None:
    """A run started by the sipctl before this waits for approval with such a plan (it
    replays as it did, workflow.patched): status and approve tell it by its refusal's words."""
    waiting = DomainStatus("old.example", WAITING, waiting_digest="abc", refusals=[HELD])
    assert cannot_be_approved(waiting)
    assert "'sipctl fleet approve old.example'" not in status_table([waiting])
