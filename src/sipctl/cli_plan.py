"""``sipctl plan`` and ``sipctl apply``, for one spec or many domains at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
from sipctl.errors import EXIT_CHANGES, CommandExit, SipctlError, SpecError, UnsafePlanError
from sipctl.output import Console

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.engine import PlanRun
    from sipctl.reconciler.gitops.guarded import LockOptions, Outcome
    from sipctl.reconciler.gitops.multi import Domain
    from sipctl.reconciler.gitops.spec_files import SpecSelection
    from sipctl.schemas.loader import LoadedSpec

from sipctl.cli_common import (
    confirm_apply,
    load_checked,
    lock_options,
    plan_format,
    plan_json_or_view,
    print_plan,
    read_plan_file,
    run_context,
    start_console,
    verify_after_apply,
    write_plan_file,
)


def plan(
    spec_file: SpecFiles = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Save the plan to this file, for 'sipctl apply FILE'.",
            dir_okay=False,
        ),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON (sipctl schema --output plan).")
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
    from sipctl.reconciler.engine import make_plan

    specs = spec_file or [Path("sipctl.yaml")]
    many = shard is not None or len(specs) > 1 or specs[0].is_dir()
    if fmt == "json":  # a refusal is JSON too (cli_boundary)
        console.promise_json("plan", None if many else str(specs[0]))
    if many:
        _plan_many(console, specs, fmt, out, detailed_exitcode, target, force, parallel, shard)
        return
    loaded = load_checked(specs[0])
    with run_context(loaded.base_dir, console, force) as ctx:
        plan_run = make_plan(loaded, ctx, target)
        plan_json_or_view(console, plan_run.plan, fmt)
        _refuse_unsafe_or_save(console, plan_run, force, out)
    if detailed_exitcode and plan_run.plan.has_changes:
        raise CommandExit(EXIT_CHANGES)


def _refuse_unsafe_or_save(
    console: Console, plan_run: PlanRun, force: bool, out: Path | None
) -> None:
    """After the plan is shown: refuse what apply would refuse, else save it (--out)."""
    from sipctl.reconciler.safety import refusal_reasons

    reasons = refusal_reasons(plan_run.plan)
    if reasons and not force:
        raise UnsafePlanError(
            "this plan would be refused by apply (use --force if it is really meant):\n  "
            + "\n  ".join(reasons)
        )
    if out is not None:
        write_plan_file(out, plan_run.plan.to_json())
        console.info(f"Saved the plan to {out}. Apply exactly this plan with: sipctl apply {out}")


def _refuse_overlaps(domains: list[Domain], what: str) -> None:
    from sipctl.reconciler.gitops import multi

    multi.refuse_overlaps(domains, what)


def _context_factory(console: Console, force: bool) -> Callable[[LoadedSpec], RunContext]:
    import os

    from sipctl.providers.base import RunContext

    # One copy of the environment for the run, not one per domain (nothing writes to it).
    env = dict(os.environ)

    def make_ctx(loaded: LoadedSpec) -> RunContext:
        return RunContext(base_dir=loaded.base_dir, env=env, log=console.progress, force=force)

    return make_ctx


def _plan_domains(
    console: Console,
    selection: SpecSelection,
    target: list[str] | None,
    force: bool,
    parallel: int,
    shard: str | None = None,
) -> list[Domain]:
    from sipctl.reconciler.gitops import multi, shards

    domains = multi.load_all(selection.paths, load_checked)
    # Every spec is checked against every other, also when this run takes one share.
    _refuse_overlaps(domains, multi.OVERLAPS_BEFORE_PLAN)
    domains = shards.take_shard(domains, shard)
    multi.plan_all(domains, _context_factory(console, force), target, parallel)
    for domain in domains:
        if domain.ctx is not None:
            console.add_secrets(domain.ctx.secrets)
    return domains


def _plan_domains_to_show(
    console: Console,
    selection: SpecSelection,
    target: list[str] | None,
    force: bool,
    parallel: int,
    shard: str | None,
) -> list[Domain]:
    """Like _plan_domains, for a plan that is only shown: loaded, checked and planned in
    worker processes."""
    from sipctl.reconciler.gitops import multi

    make_ctx = _context_factory(console, force)
    domains, secrets = multi.plan_only(
        selection.paths, load_checked, make_ctx, target, parallel, shard
    )
    console.add_secrets(secrets)
    return domains


def _select(specs: list[Path]) -> SpecSelection:
    """The specs of a many-spec run, and the files of its directories that are none (the
    summary table or the JSON names each, with the reason)."""
    from sipctl.reconciler.gitops import spec_files

    return spec_files.select_specs(specs)


def _print_domains(
    console: Console, domains: list[Domain], fmt: str, selection: SpecSelection | None = None
) -> None:
    from sipctl.reconciler import views
    from sipctl.reconciler.gitops import domain_report

    if fmt == "json":
        skipped = selection.skipped if selection is not None else []
        console.out(views.render_json(domain_report.plans_json(domains, skipped)), end="")
        return
    for domain in domains:
        title = f"{domain.name} ({domain.path})"
        console.out(f"## {title}\n" if fmt == "markdown" else f"=== {title} ===")
        if domain.plan is not None:
            print_plan(console, domain.plan.to_json(), fmt)
        if domain.failed:
            console.out(f"{domain.status}: {domain.message}")
        console.out("")


def _any_changes(domains: list[Domain]) -> bool:
    return any(d.plan is not None and d.plan.has_changes for d in domains)


def _plan_many(
    console: Console,
    specs: list[Path],
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    target: list[str] | None,
    force: bool,
    parallel: int,
    shard: str | None,
) -> None:
    from sipctl.reconciler.gitops import domain_report, multi

    selection = _select(specs)
    domains = _plan_domains_to_show(console, selection, target, force, parallel, shard)
    try:
        multi.check_all_safe(domains, force)
        _print_domains(console, domains, fmt, selection)
        if out is not None:
            try:  # --out names this directory: it may be created, its parents may not
                out.mkdir(exist_ok=True)
            except OSError as exc:
                raise SipctlError(f"{out}: cannot create the directory: {exc.strerror}") from None
            for domain in domains:
                if domain.plan is not None and not domain.failed:
                    path = out / f"{domain.name}.plan.json"
                    write_plan_file(path, domain.plan.to_json())
            console.info(f"Saved one plan per domain in {out}/ (apply each: sipctl apply FILE).")
        if fmt == "markdown":
            console.out(f"```\n{domain_report.summary_table(domains, selection.skipped)}```")
        elif fmt == "human":
            console.out(domain_report.summary_table(domains, selection.skipped), end="")
    finally:
        multi.close_all(domains)
    code = domain_report.exit_code(domains)
    if code:
        raise CommandExit(code)
    if detailed_exitcode and _any_changes(domains):
        raise CommandExit(EXIT_CHANGES)


def _apply_many(
    console: Console,
    specs: list[Path],
    target: list[str] | None,
    force: bool,
    auto_approve: bool,
    locks: LockOptions,
    parallel: int,
    no_verify: bool,
    shard: str | None,
) -> None:
    from sipctl.reconciler.gitops import domain_report, multi

    selection = _select(specs)
    domains = _plan_domains(console, selection, target, force, parallel, shard)
    try:
        multi.check_all_safe(domains, force)
        _print_domains(console, domains, "human")
        if _any_changes(domains) and not auto_approve:
            confirm_apply(console)
        multi.apply_all(domains, force, locks, parallel, console.info)
        _verify_and_summarize(console, domains, no_verify, selection)
    finally:
        multi.close_all(domains)
    code = domain_report.exit_code(domains)
    if code:
        raise CommandExit(code)


def _verify_and_summarize(
    console: Console,
    domains: list[Domain],
    no_verify: bool,
    selection: SpecSelection | None = None,
) -> None:
    from sipctl.reconciler.gitops import domain_report

    if not no_verify:
        for domain in domains:
            if domain.status == "applied" and domain.loaded is not None:
                try:
                    verify_after_apply(console, domain.loaded)
                except SipctlError as exc:
                    domain.fail(exc)
    skipped = selection.skipped if selection is not None else []
    console.out(domain_report.summary_table(domains, skipped), end="")


def _apply_saved_many(
    console: Console,
    paths: list[Path],
    force: bool,
    locks: LockOptions,
    parallel: int,
    no_verify: bool,
    shard: str | None,
) -> None:
    from sipctl.reconciler.gitops import domain_report, multi, shards, spec_files

    selection = spec_files.select_plans(paths)
    domains = multi.load_saved(selection.paths, read_plan_file)
    _refuse_overlaps(domains, "plans' specs; nothing was changed")
    domains = shards.take_shard(domains, shard)
    make_ctx = _context_factory(console, force)
    try:
        multi.apply_saved_all(domains, make_ctx, force, locks, parallel, console.info)
        for domain in domains:
            if domain.ctx is not None:
                console.add_secrets(domain.ctx.secrets)
        _verify_and_summarize(console, domains, no_verify, selection)
    finally:
        multi.close_all(domains)
    code = domain_report.exit_code(domains)
    if code:
        raise CommandExit(code)


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
    applied and sipctl exits 3. Changes go out in a safe order: DNS records that stop
    advertising first, then firewall, fail2ban, Asterisk, and DNS records that advertise last.

    Before reading anything, sipctl takes a lock per domain and per host (a TXT record
    _sipctl-lock.<domain> over RFC 2136, a flock beside a zone file or in the managed
    directory of a host) and holds it through the confirmation; a saved plan is re-checked
    under it. A lock held by another run means exit 3 naming the holder; --lock-timeout
    waits for it. The locks are released at the end, also on error and Ctrl-C. A successful
    apply records what it applied, for 'sipctl drift' (over RFC 2136 in the same UPDATE as
    the changes and the lock's release). With SIPCTL_SSH_READ_ONLY=1 (the read-only login of
    plan jobs) apply refuses at once, before connecting anywhere: exit 3.

    Examples:

      sipctl apply -f mysite.yaml           # plan, show, ask, apply

      sipctl plan --out plan.json && sipctl apply plan.json

      sipctl apply -f customers/ --auto-approve --parallel 8
    """
    import os

    from sipctl.providers.transport.read_gate import refuse_apply

    console = start_console(no_color, verbose)
    # Before any spec is read or host reached: a read-only login can never apply, so the
    # answer (exit 3) must not depend on what a connection would have found.
    refuse_apply(os.environ)
    from sipctl.reconciler.engine import check_safe, make_plan
    from sipctl.reconciler.gitops.guarded import guarded_apply, record_if_needed

    if plan_files and spec_file:
        raise SpecError("give either a saved plan or -f SPEC, not both")
    locks = lock_options(lock_timeout, lock_ttl)
    if plan_files and (shard is not None or len(plan_files) > 1 or plan_files[0].is_dir()):
        if target:
            raise SpecError("--target belongs to 'sipctl plan'; a saved plan applies what it holds")
        _apply_saved_many(console, plan_files, force, locks, parallel, no_verify, shard)
        return
    plan_file = plan_files[0] if plan_files else None
    if plan_file is not None:
        if target:
            raise SpecError("--target belongs to 'sipctl plan'; a saved plan applies what it holds")
        saved = read_plan_file(plan_file)
        base_dir = Path(saved.spec_source).parent.resolve()

        def show_and_check(fresh: PlanRun) -> None:
            print_plan(console, fresh.plan.to_json(), "human")
            check_safe(fresh.plan, force)

        with run_context(base_dir, console, force) as ctx:
            outcome = guarded_apply(
                saved,
                str(plan_file),
                ctx,
                force=force,
                locks=locks,
                before=show_and_check,
                say=console.info,
                detail=console.detail,
            )
            report_outcome(console, outcome)
            loaded = outcome.plan_run.loaded
    else:
        specs = spec_file or [Path("sipctl.yaml")]
        if shard is not None or len(specs) > 1 or specs[0].is_dir():
            _apply_many(
                console, specs, target, force, auto_approve, locks, parallel, no_verify, shard
            )
            return
        loaded = load_checked(specs[0])
        with run_context(loaded.base_dir, console, force) as ctx:
            # Read without a lock first: a spec that is already live costs one read and
            # writes nothing at all (no lock record, no serial bump on a nightly apply).
            plan_run = make_plan(loaded, ctx, target)
            print_plan(console, plan_run.plan.to_json(), "human")
            check_safe(plan_run.plan, force)
            if not plan_run.plan.has_changes:
                for line in record_if_needed(plan_run, ctx, locks, console.info, console.detail):
                    console.info(line)
            else:

                def confirm(_fresh: PlanRun) -> None:
                    if not auto_approve:
                        confirm_apply(console)

                # Under the lock the live state must still be the one shown (else exit 3);
                # the changes, the drift record and the lock release then share one UPDATE.
                outcome = guarded_apply(
                    plan_run.plan,
                    "the plan",
                    ctx,
                    force=force,
                    locks=locks,
                    before=confirm,
                    say=console.info,
                    detail=console.detail,
                )
                report_outcome(console, outcome)
    if not no_verify:
        verify_after_apply(console, loaded)


def report_outcome(console: Console, outcome: Outcome) -> None:
    if outcome.report is not None:
        for line in outcome.report.lines:
            console.info(line)
        counts = outcome.plan_run.plan.counts()
        console.out(
            f"\nApply complete! {counts['add']} added, {counts['change']} changed, "
            f"{counts['destroy']} destroyed."
        )
    for line in outcome.lines:
        console.info(line)
