"""``sipctl plan`` and ``sipctl apply``: their options and words; both take the one path of
``cli_domains`` (one spec is a list of one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sipctl.cli_common import confirm_apply, lock_options, plan_format, start_console
from sipctl.cli_domains import DomainRun
from sipctl.cli_params import (
    Force,
    LockTimeout,
    LockTtl,
    NoColor,
    Parallel,
    Shard,
    SpecFiles,
    TargetLayers,
    Verbose,
)
from sipctl.errors import EXIT_CHANGES, CommandExit, SpecError


def plan(
    spec_file: SpecFiles = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help=(
                "Save the plan to this file, for 'sipctl apply FILE'. With several specs, or"
                " when it names an existing directory: one DOMAIN.plan.json per domain there,"
                " for 'sipctl apply DIR'."
            ),
            readable=False,  # written, never read
        ),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON (sipctl schema --kind plan).")
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Print the plan as Markdown (merge-request comments)."),
    ] = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 when there is nothing to change, 2 when there is."
        ),
    ] = False,
    target: TargetLayers = None,
    force: Force = False,
    parallel: Parallel = 4,
    shard: Shard = None,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Show what apply would change. Reads the live systems; changes nothing.

    With several specs (-f a.yaml -f b.yaml, or -f DIR), each domain is planned on its own
    (one domain's error does not hide the others'), and a summary table ends the output;
    --out then names a directory that gets one plan per domain.

    Examples:

      sipctl plan                          # sipctl.yaml here, all layers

      sipctl plan -f mysite.yaml --out plan.json --markdown > comment.md

      sipctl plan --detailed-exitcode      # nightly drift check: exit 2 = drift

      sipctl plan -f customers/ --parallel 8

      sipctl plan -f customers/ --shard 2/4   # the second of four CI jobs
    """
    console = start_console(no_color, verbose)
    fmt = plan_format(json_, markdown)
    with DomainRun(console, spec_file or [Path("sipctl.yaml")], shard, fmt=fmt) as run:
        if out is not None:  # before anything is read; imported only when there is a file
            from sipctl.cli_report_file import check_plan_out

            check_plan_out(out, several=not run.one)
        run.plan(target, force, parallel, keep=False)
        run.show(fmt)
        run.save(out)
        run.summarize(fmt)
    run.settle()
    if detailed_exitcode and run.any_changes():
        raise CommandExit(EXIT_CHANGES)


def apply(
    plan_files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="A plan saved by 'sipctl plan --out'; applied exactly, if still current. "
            "Several plans, or a directory of them (plan -f DIR --out DIR), apply several "
            "domains in one run.",
            metavar="PLAN",
        ),
    ] = None,
    spec_file: Annotated[
        list[Path] | None,
        typer.Option(
            "-f",
            "--file",
            help="Plan this spec and apply it (default: sipctl.yaml). Repeat, or give a "
            "directory, to apply several domains in one run.",
            readable=False,  # the loader says so, in --json's document too
        ),
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    force: Force = False,
    target: TargetLayers = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip the end-to-end verify after applying.")
    ] = False,
    lock_timeout: LockTimeout = "0s",
    lock_ttl: LockTtl = "15m",
    parallel: Parallel = 4,
    shard: Shard = None,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Make the live systems match the spec (or apply a saved plan exactly).

    A saved plan is re-checked first: if any target changed since it was made, nothing is
    applied and sipctl exits 3. It is applied from the directory it was made in (or where
    its spec file holds the same text, another checkout): the spec's relative paths are
    read there. Changes go out in a safe order: DNS records that stop
    advertising first, then firewall, fail2ban, Asterisk, and DNS records that advertise last.

    Before reading anything, sipctl takes a lock per domain and per host (a TXT record
    _sipctl-lock.<domain> over RFC 2136, a flock for a zone file or a host in sipctl's
    bookkeeping directory, /var/lib/sipctl) and holds it through the confirmation; a saved
    plan is re-checked under it. A lock held by another run means exit 3 naming the holder;
    --lock-timeout waits for it. The locks are released at the end, also on error and
    Ctrl-C. A successful apply records what it applied, for 'sipctl drift' (over RFC 2136 in
    the same UPDATE as the changes and the lock's release). With SIPCTL_SSH_READ_ONLY=1 (the
    read-only login of plan jobs) apply refuses at once, before connecting anywhere: exit 3.

    Examples:

      sipctl apply -f mysite.yaml           # plan, show, ask, apply

      sipctl plan --out plan.json && sipctl apply plan.json

      sipctl apply -f customers/ --auto-approve --parallel 8
    """
    import os

    from sipctl.providers.bookkeeping import check_local_state_dir
    from sipctl.providers.transport.read_gate import refuse_apply

    console = start_console(no_color, verbose)
    # Before any spec is read or host reached: a read-only login can never apply, so the
    # answer (exit 3) must not depend on what a connection would have found.
    refuse_apply(os.environ)
    # Before planning: a state directory apply cannot write in would fail at the first
    # record, after a plan (or "No changes") had been shown.
    check_local_state_dir(os.environ)
    if plan_files and spec_file:
        raise SpecError("give either a saved plan or -f SPEC, not both")
    locks = lock_options(lock_timeout, lock_ttl)
    if plan_files and target:
        raise SpecError("--target belongs to 'sipctl plan'; a saved plan applies what it holds")

    def confirm() -> None:
        if not auto_approve:
            confirm_apply(console)

    paths = plan_files or spec_file or [Path("sipctl.yaml")]
    with DomainRun(console, paths, shard, saved=bool(plan_files)) as run:
        if plan_files:
            run.read_saved()
        else:
            # Read without a lock first: a spec that is already live costs one read and
            # writes nothing at all (no lock record, no serial bump on a nightly apply).
            run.plan(target, force, parallel, keep=True)
            run.show("human")
        # Under the lock the live state must still be the one shown (else exit 3); the
        # changes, the drift record and the lock release then share one UPDATE.
        run.apply(force, locks, parallel, confirm)
        run.verify(no_verify)
        run.summarize("human")
    run.settle()
