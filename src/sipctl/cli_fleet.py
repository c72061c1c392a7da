"""``sipctl fleet``: a hoster's domains reconciled by Temporal workflows (extra ``fleet``).

Registered by ``cli.py`` as a sub-app; temporalio and the fleet's modules are imported only
when a fleet command runs.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from sipctl.errors import EXIT_ERROR, CommandExit, SipctlError

if TYPE_CHECKING:
    from sipctl.reconciler.fleet.config import FleetConfig

fleet_app = typer.Typer(
    name="fleet",
    help=(
        "Reconcile many domains continuously on Temporal (extra: pip install 'sipctl[fleet]').\n\n"
        "One workflow per domain (its id is the domain; of a hosting directory, one per host "
        "file with its customers: hosting:DOMAIN), plan -> safety limits (a refused "
        "plan waits for 'fleet approve') -> apply -> verify, with the same engine and locks "
        "as plan/apply. Workers serve a PBX host's layers (--queue pbx:HOST) or a DNS "
        "provider's changes (--queue dns:PROVIDER); credentials stay with the workers.\n\n"
        "Try it: temporal server start-dev; sipctl fleet worker --queue pbx:local "
        "--queue dns:rfc2136 & sipctl fleet sync -f specs/; sipctl fleet status"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The fleet configuration (YAML: address, namespace, drift, apply, rate_limits).",
        dir_okay=False,
        envvar="SIPCTL_FLEET_CONFIG",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address", metavar="HOST:PORT", help="Temporal's frontend (default: the config's)."
    ),
]


def _require_extra() -> None:
    if importlib.util.find_spec("temporalio") is None:
        raise SipctlError(
            "sipctl fleet needs Temporal's Python SDK, which is not installed",
            hint="pip install 'sipctl[fleet]'",
        )


def _config(path: Path | None, address: str | None) -> FleetConfig:
    _require_extra()
    from sipctl.reconciler.fleet.config import load_config

    config = load_config(path)
    return config.model_copy(update={"address": address}) if address else config


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    import asyncio  # about 15 ms of start-up, for the fleet commands alone

    return asyncio.run(coroutine)


def _without_teardown(command: Callable[..., None]) -> Callable[..., None]:
    """Run a fleet command, report its errors as every command does, then end the process
    without the interpreter's teardown: the Temporal client's native threads can outlive
    the event loop, and about one exit in four then aborts in CPython's finalization
    (temporalio/sdk-python issue 300, measured here). Everything is printed and flushed first.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from sipctl.cli_boundary import run_guarded

        code = run_guarded(lambda: command(*args, **kwargs))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    return run


def worker(
    queue: Annotated[
        list[str],
        typer.Option(
            "--queue",
            "-q",
            metavar="pbx:HOST|dns:PROVIDER",
            help="A task queue to serve (repeat for several).",
        ),
    ],
    config_file: ConfigOption = None,
    address: AddressOption = None,
) -> None:
    """Run a worker: the domain workflows, and the plans and applies of its queues, with
    this machine's credentials (environment, runner profile). Stops on Ctrl-C or SIGTERM
    after the running step; a worker that dies is replaced by any other of its queue."""
    from sipctl.cli_common import start_console

    console = start_console(False, 0)
    config = _config(config_file, address)
    from sipctl.reconciler.fleet.client import connect
    from sipctl.reconciler.fleet.worker import check_queue, run_workers

    queues = [check_queue(q) for q in queue]

    async def serve() -> None:
        client = await connect(config)
        console.info(f"fleet worker on {config.address}: serving {', '.join(queues)}")
        await run_workers(client, config, queues)

    _run(serve())


def sync(
    specs: Annotated[
        list[Path],
        typer.Option(
            "-f", "--file", help="Spec files or directories of specs (repeatable).", readable=False
        ),
    ],
    config_file: ConfigOption = None,
    address: AddressOption = None,
) -> None:
    """Hand each spec to its domain's workflow: started if new, else the new spec is queued
    into the running one (never applied beside it). Prints each domain's queues. A hosting
    directory (-f DIR, whole) is one workflow per host file, hosting:DOMAIN, with its
    customers' files."""
    from sipctl.cli_common import start_console
    from sipctl.reconciler.gitops.spec_files import spec_paths

    console = start_console(False, 0)
    config = _config(config_file, address)
    from sipctl.reconciler.fleet.client import connect, spec_changes
    from sipctl.reconciler.fleet.client import sync as sync_specs

    changes = spec_changes(spec_paths(specs))

    async def send() -> None:
        client = await connect(config)
        for synced in await sync_specs(client, config, changes):
            served = f" ({len(synced.customers)} customer(s))" if synced.customers else ""
            console.out(
                f"{synced.domain}: spec {synced.digest} -> {', '.join(synced.queues)}{served}"
            )

    _run(send())
    units = sum(1 for change in changes if change.files)
    hosting = f", {units} hosting unit(s)" if units else ""
    console.info(
        f"Synced {len(changes) - units} domain(s){hosting}; 'sipctl fleet status' shows "
        "their progress."
    )


def approve(
    domain: Annotated[str, typer.Argument(help="The domain whose waiting plan to approve.")],
    config_file: ConfigOption = None,
    address: AddressOption = None,
) -> None:
    """Approve the plan a domain's workflow waits with (refused by the safety limits, like
    'apply' without --force): exactly that plan, not one made later."""
    from sipctl.cli_common import start_console

    console = start_console(False, 0)
    config = _config(config_file, address)
    from sipctl.reconciler.fleet.client import approve as approve_plan
    from sipctl.reconciler.fleet.client import connect

    async def send() -> None:
        client = await connect(config)
        status = await approve_plan(client, domain)
        console.out(f"{domain}: approved plan {status.waiting_digest} ({status.plan_summary})")

    _run(send())


def status(
    json_: Annotated[
        bool, typer.Option("--json", help="JSON (sipctl schema --kind fleet-status).")
    ] = False,
    config_file: ConfigOption = None,
    address: AddressOption = None,
) -> None:
    """Each domain's state: converged, pending, planning, applying, waiting for approval,
    drifted, failed (and why), with its last apply, read from the server (each workflow
    keeps its status in its memo): busy workers do not delay it. Exit 1 when any domain
    failed or is not answering, or no worker is running, so a cron job notices."""
    from sipctl.cli_common import start_console

    console = start_console(False, 0)
    if json_:  # a run that ends without the states (Temporal not reached) prints one too
        console.promise_json("fleet-status", None)
    config = _config(config_file, address)
    from sipctl.reconciler.fleet.client import connect, statuses, workers_seen
    from sipctl.reconciler.fleet.model import FAILED, SILENT
    from sipctl.reconciler.fleet.status_view import status_json, status_table

    async def ask() -> tuple[list[Any], bool]:
        client = await connect(config)
        found = await statuses(client)
        # the memos answer without a worker: whether one runs is asked apart
        return found, not found or await workers_seen(client)

    found, workers = _run(ask())
    if json_:
        console.out(console.json_text(status_json(found, workers)), end="")
    else:
        console.out(status_table(found, workers), end="")
    if not workers or any(item.state in (FAILED, SILENT) for item in found):
        raise CommandExit(EXIT_ERROR)


def schedule(
    config_file: ConfigOption = None,
    address: AddressOption = None,
    now: Annotated[bool, typer.Option("--now", help="Also run one sweep right away.")] = False,
) -> None:
    """Create or update the drift sweep's schedule (drift.every in the configuration): each
    sweep plans every domain again; a drifted domain is re-applied only with drift.repair."""
    from sipctl.cli_common import start_console

    console = start_console(False, 0)
    config = _config(config_file, address)
    from sipctl.reconciler.fleet.client import connect, ensure_schedule, sweep_now

    async def send() -> str:
        client = await connect(config)
        done = await ensure_schedule(client, config)
        if now:
            await sweep_now(client)
        return done

    done = _run(send())
    repair = "re-applied" if config.drift.repair else "reported, not repaired"
    console.out(f"drift sweep {done}: every {config.drift.every:g} s; drifted domains are {repair}")


for _command in (worker, sync, approve, status, schedule):
    fleet_app.command(_command.__name__)(_without_teardown(_command))
