"""A fleet worker process: the domain workflows, plus the activities of its queues.

``pbx:HOST`` queues run one activity at a time (one apply per host at a time, as the host's
lock would enforce anyway); ``dns:PROVIDER`` queues run several, at most the rate the fleet
configuration sets for that queue, enforced by the Temporal server across all its workers.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from sipctl.errors import SpecError
from sipctl.reconciler.fleet import activities
from sipctl.reconciler.fleet.client import domains
from sipctl.reconciler.fleet.config import FleetConfig
from sipctl.reconciler.fleet.model import WORKFLOW_QUEUE
from sipctl.reconciler.fleet.workflows import DomainWorkflow, DriftSweepWorkflow

_DNS_CONCURRENCY = 4


def check_queue(queue: str) -> str:
    kind, _, name = queue.partition(":")
    if kind not in ("pbx", "dns") or not name:
        raise SpecError(
            f"--queue {queue!r}: expected pbx:HOST (a PBX host's layers) or dns:PROVIDER "
            "(a DNS provider's changes), e.g. pbx:pbx1.example.net or dns:rfc2136; "
            "'sipctl fleet sync' prints the queues each domain needs"
        )
    return queue


def _workers(client: Client, config: FleetConfig, queues: Sequence[str]) -> list[Worker]:
    sweep = activities.SweepActivities(lambda: domains(client))
    executor = ThreadPoolExecutor(max_workers=len(queues) * _DNS_CONCURRENCY + 2)
    workers = [
        Worker(
            client,
            task_queue=WORKFLOW_QUEUE,
            workflows=[DomainWorkflow, DriftSweepWorkflow],
            activities=[sweep.running_domains],
        )
    ]
    for queue in queues:
        host = queue.startswith("pbx:")
        workers.append(
            Worker(
                client,
                task_queue=queue,
                activities=[activities.plan_part, activities.apply_part, activities.verify_domain],
                activity_executor=executor,
                max_concurrent_activities=1 if host else _DNS_CONCURRENCY,
                max_task_queue_activities_per_second=config.rate_limits.get(queue),
            )
        )
    return workers


async def run_workers(client: Client, config: FleetConfig, queues: Sequence[str]) -> None:
    """Serve until SIGINT or SIGTERM, then finish the running activities and stop."""
    workers = _workers(client, config, [check_queue(q) for q in queues])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    await stop.wait()
    await asyncio.gather(*(worker.shutdown() for worker in workers))
    await asyncio.gather(*tasks, return_exceptions=True)
