"""The sipctl command line. The only place that prints results and chooses exit codes."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sipctl import __version__
from sipctl.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, SipctlError, SpecError, UnsafePlanError
from sipctl.output import Console

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.engine import PlanRun
    from sipctl.reconciler.guarded import LockOptions, Outcome
    from sipctl.reconciler.multi import Domain
    from sipctl.reconciler.plan import Plan
    from sipctl.schemas.loader import LoadedSpec

app = typer.Typer(
    name="sipctl",
    help=(
        "Make your own domain reachable for SIP calls (sip:director@mysite.ru), from one "
        "YAML spec in git.\n\n"
        "sipctl derives DNS (NAPTR -> SRV -> A), Asterisk guest access, the firewall and a "
        "fail2ban jail from the spec. 'plan' shows what differs from the live systems; "
        "'apply' closes the gap, idempotently.\n\n"
        "Exit codes: 0 success (with --detailed-exitcode: no changes), 1 error, "
        "2 changes present (--detailed-exitcode only), 3 refused for safety."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The console of the running command: the error handler scrubs secrets with it.
_console: Console = Console()

SpecOption = Annotated[
    Path,
    typer.Option(
        "-f",
        "--file",
        help="The spec file (YAML, version 1).",
        show_default=True,
        dir_okay=False,
    ),
]
NoColor = Annotated[
    bool,
    typer.Option("--no-color", help="Plain output (also when not a terminal, or NO_COLOR is set)."),
]
Verbose = Annotated[
    int,
    typer.Option("-v", "--verbose", count=True, help="Say what is read and written, and where."),
]
TargetLayers = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        help="Only this layer (dns, asterisk, firewall, fail2ban); repeat for several.",
        metavar="LAYER",
    ),
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Go on although the plan was refused for safety (destroys >30% of a target's "
        "records, removes every NAPTR/SRV, or the firewall would not accept your SSH port).",
    ),
]

SpecFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "-f",
        "--file",
        help="The spec file (default: sipctl.yaml). Repeat, or give a directory of specs, to "
        "plan several domains in one run.",
    ),
]
Parallel = Annotated[
    int,
    typer.Option(
        "--parallel",
        min=1,
        max=64,
        help="With several specs: how many domains are read and applied at once.",
    ),
]


def _start(no_color: bool, verbose: int) -> Console:
    global _console
    _console = Console(no_color=no_color, verbose=verbose)
    return _console


@contextmanager
def _run_context(base_dir: Path, console: Console, force: bool = False) -> Iterator[RunContext]:
    from sipctl.providers.base import RunContext

    ctx = RunContext(base_dir=base_dir, log=console.detail, force=force)
    try:
        yield ctx
    finally:
        console.add_secrets(ctx.secrets)
        ctx.close()


def _offline_problems(loaded: LoadedSpec) -> list[str]:
    from sipctl.schemas.checks import cross_checks

    return list(cross_checks(loaded))


def _load(spec_file: Path) -> LoadedSpec:
    from sipctl.schemas.loader import load_spec

    loaded = load_spec(spec_file)
    problems = _offline_problems(loaded)
    if problems:
        raise SpecError(
            problems[0] if len(problems) == 1 else f"{spec_file}: {len(problems)} problems",
            problems,
        )
    return loaded


# --- validate ---------------------------------------------------------------------------------


@app.command()
def validate(
    spec_file: SpecOption = Path("sipctl.yaml"),
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Check the spec: schema, names, and cross-layer agreement. No network.

    Example: sipctl validate -f sipctl.yaml
    """
    console = _start(no_color, verbose)
    from sipctl.providers.base import available_providers
    from sipctl.reconciler.layers import LAYERS

    loaded = _load(spec_file)
    managed = [layer.name for layer in LAYERS if layer.managed(loaded.spec)]
    installed = available_providers()
    for layer in LAYERS:
        if layer.managed(loaded.spec) and layer.provider_name(loaded.spec) not in installed:
            raise SpecError(
                f"{loaded.where((layer.name,))}: {layer.name}: no provider named "
                f"{layer.provider_name(loaded.spec)!r} is installed "
                f"(installed: {', '.join(sorted(installed))})"
            )
    console.out(
        f"{spec_file}: valid. Domain {loaded.spec.domain}, "
        f"{len(loaded.spec.users)} user(s), layers: {', '.join(managed) or 'none'}."
    )


# --- plan -------------------------------------------------------------------------------------


def _print_plan(console: Console, data: dict[str, object], fmt: str) -> None:
    from sipctl.reconciler import views

    if fmt == "json":
        console.out(views.render_json(data), end="")
    elif fmt == "markdown":
        console.out(views.render_markdown(data), end="")
    else:
        console.out(views.render_human(data, color=console.color), end="")


def _format(json_: bool, markdown: bool) -> str:
    if json_ and markdown:
        raise SpecError("choose one of --json and --markdown")
    return "json" if json_ else "markdown" if markdown else "human"


def _write_plan_file(path: Path, data: dict[str, object]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        tmp.replace(path)
    except OSError as exc:
        raise SipctlError(f"{path}: cannot write the plan: {exc.strerror}") from None


@app.command()
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
    json_: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
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
    """
    console = _start(no_color, verbose)
    fmt = _format(json_, markdown)
    from sipctl.reconciler.engine import make_plan
    from sipctl.reconciler.safety import refusal_reasons

    specs = spec_file or [Path("sipctl.yaml")]
    if len(specs) > 1 or specs[0].is_dir():
        _plan_many(console, specs, fmt, out, detailed_exitcode, target, force, parallel)
        return
    loaded = _load(specs[0])
    with _run_context(loaded.base_dir, console, force) as ctx:
        plan_run = make_plan(loaded, ctx, target)
        data = plan_run.plan.to_json()
        _print_plan(console, data, fmt)
        reasons = refusal_reasons(plan_run.plan)
        if reasons and not force:
            raise UnsafePlanError(
                "this plan would be refused by apply (use --force if it is really meant):\n  "
                + "\n  ".join(reasons)
            )
        if out is not None:
            _write_plan_file(out, data)
            console.info(
                f"Saved the plan to {out}. Apply exactly this plan with: sipctl apply {out}"
            )
    if detailed_exitcode and plan_run.plan.has_changes:
        raise typer.Exit(EXIT_CHANGES)


# --- many domains -----------------------------------------------------------------------------


def _plan_domains(
    console: Console,
    specs: list[Path],
    target: list[str] | None,
    force: bool,
    parallel: int,
) -> list[Domain]:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler import multi

    domains = multi.load_all(multi.spec_paths(specs), _load)
    conflicts = multi.claim_conflicts(domains)
    if conflicts:
        raise SpecError(
            f"{len(conflicts)} overlapping claim(s) between the specs; nothing was read or changed",
            conflicts,
        )

    def make_ctx(loaded: LoadedSpec) -> RunContext:
        return RunContext(base_dir=loaded.base_dir, log=console.detail, force=force)

    multi.plan_all(domains, make_ctx, target, parallel)
    for domain in domains:
        if domain.ctx is not None:
            console.add_secrets(domain.ctx.secrets)
    return domains


def _print_domains(console: Console, domains: list[Domain], fmt: str) -> None:
    from sipctl.reconciler import multi, views

    if fmt == "json":
        console.out(views.render_json(multi.plans_json(domains)), end="")
        return
    for domain in domains:
        title = f"{domain.name} ({domain.path})"
        console.out(f"## {title}\n" if fmt == "markdown" else f"=== {title} ===")
        if domain.plan_run is not None:
            _print_plan(console, domain.plan_run.plan.to_json(), fmt)
        if domain.failed:
            console.out(f"{domain.status}: {domain.message}")
        console.out("")


def _plan_many(
    console: Console,
    specs: list[Path],
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    target: list[str] | None,
    force: bool,
    parallel: int,
) -> None:
    from sipctl.reconciler import multi

    domains = _plan_domains(console, specs, target, force, parallel)
    try:
        multi.check_all_safe(domains, force)
        _print_domains(console, domains, fmt)
        if out is not None:
            for domain in domains:
                if domain.plan_run is not None and not domain.failed:
                    path = out / f"{domain.name}.plan.json"
                    _write_plan_file(path, domain.plan_run.plan.to_json())
            console.info(f"Saved one plan per domain in {out}/ (apply each: sipctl apply FILE).")
        if fmt == "markdown":
            console.out(f"```\n{multi.summary_table(domains)}```")
        elif fmt == "human":
            console.out(multi.summary_table(domains), end="")
    finally:
        multi.close_all(domains)
    code = multi.exit_code(domains)
    if code:
        raise typer.Exit(code)
    changes = any(d.plan_run is not None and d.plan_run.plan.has_changes for d in domains)
    if detailed_exitcode and changes:
        raise typer.Exit(EXIT_CHANGES)


def _apply_many(
    console: Console,
    specs: list[Path],
    target: list[str] | None,
    force: bool,
    auto_approve: bool,
    locks: LockOptions,
    parallel: int,
    no_verify: bool,
) -> None:
    from sipctl.reconciler import multi

    domains = _plan_domains(console, specs, target, force, parallel)
    try:
        multi.check_all_safe(domains, force)
        _print_domains(console, domains, "human")
        changes = any(d.plan_run is not None and d.plan_run.plan.has_changes for d in domains)
        if changes and not auto_approve:
            _confirm(console)
        multi.apply_all(domains, force, locks, parallel, console.info)
        if not no_verify:
            for domain in domains:
                if domain.status == "applied" and domain.loaded is not None:
                    try:
                        _post_apply_verify(console, domain.loaded)
                    except SipctlError as exc:
                        domain.fail(exc)
        console.out(multi.summary_table(domains), end="")
    finally:
        multi.close_all(domains)
    code = multi.exit_code(domains)
    if code:
        raise typer.Exit(code)


def _apply_saved_many(
    console: Console,
    paths: list[Path],
    force: bool,
    locks: LockOptions,
    parallel: int,
    no_verify: bool,
) -> None:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler import multi

    files = multi.plan_paths(paths)
    domains = multi.load_saved(files, _read_plan_file)
    conflicts = multi.claim_conflicts(domains)
    if conflicts:
        raise SpecError(
            f"{len(conflicts)} overlapping claim(s) between the plans' specs; nothing was changed",
            conflicts,
        )

    def make_ctx(loaded: LoadedSpec) -> RunContext:
        return RunContext(base_dir=loaded.base_dir, log=console.detail, force=force)

    try:
        multi.apply_saved_all(domains, make_ctx, force, locks, parallel, console.info)
        for domain in domains:
            if domain.ctx is not None:
                console.add_secrets(domain.ctx.secrets)
        if not no_verify:
            for domain in domains:
                if domain.status == "applied" and domain.loaded is not None:
                    try:
                        _post_apply_verify(console, domain.loaded)
                    except SipctlError as exc:
                        domain.fail(exc)
        console.out(multi.summary_table(domains), end="")
    finally:
        multi.close_all(domains)
    code = multi.exit_code(domains)
    if code:
        raise typer.Exit(code)


# --- apply ------------------------------------------------------------------------------------


def _read_plan_file(path: Path) -> Plan:
    from sipctl.reconciler.plan import Plan

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the plan: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise SpecError(
            f"{path} is not a plan file (plans are JSON, written by 'sipctl plan --out'); "
            f"to apply a spec, use: sipctl apply -f {path}"
        ) from None
    return Plan.from_json(data, source=str(path))


def _confirm(console: Console) -> None:
    if not sys.stdin.isatty():
        raise SipctlError(
            "apply needs a confirmation and there is no terminal to ask on; "
            "pass --auto-approve, or apply a saved plan (sipctl plan --out FILE; sipctl apply FILE)"
        )
    console.out("\nDo you want to apply these changes? Only 'yes' is accepted.")
    answer = input("  Enter a value: ").strip()
    if answer != "yes":
        raise SipctlError("apply cancelled; nothing was changed")


LockTimeout = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        help="When another run holds a lock, wait up to this long (60s, 5m) before giving up "
        "with exit 3. Default: do not wait.",
        metavar="DURATION",
    ),
]
LockTtl = Annotated[
    str,
    typer.Option(
        "--lock-ttl",
        help="How long this run's DNS lock stays valid should the run die (then another run "
        "may take it over). Must exceed the longest apply.",
        metavar="DURATION",
    ),
]


def _lock_options(lock_timeout: str, lock_ttl: str) -> LockOptions:
    from datetime import timedelta

    from sipctl.reconciler.guarded import LockOptions
    from sipctl.reconciler.locking import parse_duration

    ttl = parse_duration(lock_ttl, "--lock-ttl")
    if ttl < 1:
        raise SpecError(f"--lock-ttl {lock_ttl!r}: give at least 1s")
    return LockOptions(parse_duration(lock_timeout, "--lock-timeout"), timedelta(seconds=ttl))


@app.command()
def apply(
    plan_files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="A plan saved by 'sipctl plan --out'; applied exactly, if still current. "
            "Several plans, or a directory of them (plan -f DIR --out DIR), apply several "
            "domains in one run.",
            metavar="[PLAN]...",
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
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Make the live systems match the spec (or apply a saved plan exactly).

    A saved plan is re-checked first: if any target changed since it was made, nothing is
    applied and sipctl exits 3. Changes go out in a safe order: DNS records that stop
    advertising first, then firewall, fail2ban, Asterisk, and DNS records that advertise last.

    Before anything changes, sipctl takes a lock per domain and per host (a TXT record
    _sipctl-lock.<domain> over RFC 2136, a flock beside a zone file or in the managed
    directory of a host) and re-reads the live state under it. A lock held by another run
    means exit 3 naming the holder; --lock-timeout waits for it. The locks are released at
    the end, also on error and Ctrl-C. A successful apply records what it applied, for
    'sipctl drift'.

    Examples:

      sipctl apply -f mysite.yaml           # plan, show, ask, apply

      sipctl plan --out plan.json && sipctl apply plan.json

      sipctl apply -f customers/ --auto-approve --parallel 8
    """
    console = _start(no_color, verbose)
    from sipctl.reconciler.engine import check_safe, make_plan
    from sipctl.reconciler.guarded import guarded_apply, record_if_needed

    if plan_files and spec_file:
        raise SpecError("give either a saved plan or -f SPEC, not both")
    locks = _lock_options(lock_timeout, lock_ttl)
    if plan_files and (len(plan_files) > 1 or plan_files[0].is_dir()):
        if target:
            raise SpecError("--target belongs to 'sipctl plan'; a saved plan applies what it holds")
        _apply_saved_many(console, plan_files, force, locks, parallel, no_verify)
        return
    plan_file = plan_files[0] if plan_files else None
    if plan_file is not None:
        if target:
            raise SpecError("--target belongs to 'sipctl plan'; a saved plan applies what it holds")
        saved = _read_plan_file(plan_file)
        base_dir = Path(saved.spec_source).parent.resolve()

        def show_and_check(fresh: PlanRun) -> None:
            _print_plan(console, fresh.plan.to_json(), "human")
            check_safe(fresh.plan, force)

        with _run_context(base_dir, console, force) as ctx:
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
            _report_outcome(console, outcome)
            loaded = outcome.plan_run.loaded
    else:
        specs = spec_file or [Path("sipctl.yaml")]
        if len(specs) > 1 or specs[0].is_dir():
            _apply_many(console, specs, target, force, auto_approve, locks, parallel, no_verify)
            return
        loaded = _load(specs[0])
        with _run_context(loaded.base_dir, console, force) as ctx:
            plan_run = make_plan(loaded, ctx, target)
            data = plan_run.plan.to_json()
            _print_plan(console, data, "human")
            check_safe(plan_run.plan, force)
            if plan_run.plan.has_changes:

                def confirm(_fresh: PlanRun) -> None:
                    if not auto_approve:
                        _confirm(console)

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
                _report_outcome(console, outcome)
            else:
                for line in record_if_needed(plan_run, ctx, locks, console.info, console.detail):
                    console.info(line)
    if not no_verify:
        _post_apply_verify(console, loaded)


def _report_outcome(console: Console, outcome: Outcome) -> None:
    if outcome.report is not None:
        for line in outcome.report.lines:
            console.info(line)
        counts = outcome.plan_run.plan.counts()
        console.out(
            f"\nApply complete! Resources: {counts['add']} added, {counts['change']} changed, "
            f"{counts['destroy']} destroyed."
        )
    for line in outcome.lines:
        console.info(line)


def _post_apply_verify(console: Console, loaded: LoadedSpec) -> None:
    """When the spec has both DNS and Asterisk, prove that a caller gets through."""
    try:
        from sipctl.reconciler.verify import post_apply_verify
    except ImportError:
        return
    post_apply_verify(loaded, console)


# --- locks and drift ---------------------------------------------------------------------------


@app.command("force-unlock")
def force_unlock(
    lock_id: Annotated[
        str,
        typer.Argument(
            help="The ID of the lock to remove, as printed by the run that found it held.",
            metavar="ID",
        ),
    ],
    spec_file: SpecOption = Path("sipctl.yaml"),
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Remove a lock left behind by a run that died, and only the lock with this ID.

    A DNS lock (TXT _sipctl-lock.<domain>) outlives a killed run until it expires
    (--lock-ttl of that run); this removes it sooner. It is removed only if it still
    holds exactly this ID, so a lock taken meanwhile by another run is never touched.
    Host and zone-file locks are flocks: they end with their process and need no unlock.

    Example: sipctl force-unlock 3f2a9c0d1e4b5a67 -f mysite.yaml
    """
    console = _start(no_color, verbose)
    from sipctl.reconciler.locking import force_unlock as remove_lock
    from sipctl.reconciler.locking import lock_sites

    loaded = _load(spec_file)
    with _run_context(loaded.base_dir, console) as ctx:
        for line in remove_lock(lock_sites(loaded, ctx), lock_id.strip().lower()):
            console.out(line)


@app.command()
def drift(
    spec_file: SpecOption = Path("sipctl.yaml"),
    json_: Annotated[bool, typer.Option("--json", help="Print the drift as JSON.")] = False,
    target: TargetLayers = None,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """List what changed on the live side since the last apply, per layer. Changes nothing,
    and proposes nothing: 'sipctl plan' shows what apply would do about it.

    Every successful apply records a hash of each resource it left live, where the target
    lives: DNS over RFC 2136 in TXT _sipctl-state.<domain>; a zone file in
    <zone file>.sipctl-state.json; a host in .sipctl-state.json in the layer's managed
    directory (asterisk config_dir, fail2ban config_dir, the firewall's persist directory or
    /run/lock). drift compares the live state with that record, not with the spec, so a
    spec change that was not applied yet is not drift.

    Exit codes: 0 no drift, 2 drift, 1 error (also: no record of a last apply).

    Example (nightly): sipctl drift -f sipctl.yaml --json > drift.json
    """
    console = _start(no_color, verbose)
    from sipctl.reconciler import views
    from sipctl.reconciler.drift import check_drift_result, find_drift, render_drift
    from sipctl.reconciler.engine import make_plan

    loaded = _load(spec_file)
    with _run_context(loaded.base_dir, console) as ctx:
        report = find_drift(make_plan(loaded, ctx, target), ctx)
    check_drift_result(report)
    if json_:
        console.out(views.render_json(report.to_json()), end="")
    else:
        console.out(render_drift(report), end="")
    if report.drifted:
        raise typer.Exit(EXIT_CHANGES)
    if report.unrecorded:
        raise typer.Exit(EXIT_ERROR)


# --- import -----------------------------------------------------------------------------------


@app.command("import")
def import_(
    domain: Annotated[str, typer.Option("--domain", help="The SIP domain (sip:user@DOMAIN).")],
    dns_url: Annotated[
        str,
        typer.Option(
            "--dns",
            help="Where the zone is: rfc2136://SERVER[:PORT]/ZONE?key=NAME&secret_env=VAR "
            "(also secret_file=, algorithm=), or zonefile:PATH.",
            metavar="URL",
        ),
    ],
    asterisk: Annotated[
        str | None,
        typer.Option(
            "--asterisk",
            help="Also read the PBX's guest setup: ssh://root@pbx, local, or dir:PATH.",
            metavar="TARGET",
        ),
    ] = None,
    config_dir: Annotated[
        str, typer.Option("--config-dir", help="Asterisk's configuration directory.")
    ] = "/etc/asterisk",
    ssh_key: Annotated[
        str | None, typer.Option("--ssh-key", help="SSH private key for --asterisk ssh://.")
    ] = None,
    known_hosts: Annotated[
        str, typer.Option("--known-hosts", help="known_hosts for --asterisk ssh://.")
    ] = "~/.ssh/known_hosts",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the spec here (default: print it).", dir_okay=False
        ),
    ] = None,
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="Also record sipctl's ownership in the zone (TXT _sipctl.<domain>, the only "
            "change a plan of the imported spec shows) and the record of this state for "
            "'sipctl drift'. Nothing a caller sees changes. Needs --out.",
        ),
    ] = False,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Write the spec of a SIP setup made by hand, read from what is live.

    Reads the SIP NAPTR/SRV records and the A/AAAA of SRV targets inside the zone, and
    (with --asterisk) the classic guest context: allowguest/context in sip.conf or the
    anonymous endpoint in pjsip.conf, with extensions like exten => director,1,Dial(SIP/105).
    Applying the spec written changes no DNS record; anything the spec cannot express is
    listed. Reads only, unless --adopt.

    Example:

      sipctl import --domain mysite.ru --out sipctl.yaml \\
        --dns 'rfc2136://192.0.2.53/mysite.ru?key=sipctl&secret_env=SIPCTL_TSIG_SECRET' \\
        --asterisk ssh://root@pbx.mysite.ru
    """
    console = _start(no_color, verbose)
    from sipctl.reconciler import importer
    from sipctl.schemas.loader import load_spec_text
    from sipctl.schemas.names import check_hostname
    from sipctl.schemas.spec import Ssh

    if adopt and out is None:
        raise SpecError("--adopt needs --out: the spec must be kept to be applied later")
    try:
        domain = check_hostname(domain.strip().rstrip("."))
    except ValueError as exc:
        raise SpecError(f"--domain {domain!r}: {exc}") from None
    base_dir = (out.parent if out is not None else Path.cwd()).resolve()
    with _run_context(Path.cwd(), console) as ctx:
        found = importer.read_dns(domain, dns_url, ctx, Path.cwd())
        if found.data["dns"].get("provider") == "zonefile" and out is not None:
            zone_file = (Path.cwd() / found.data["dns"]["file"]).resolve()
            found.data["dns"]["file"] = os.path.relpath(zone_file, base_dir)
        if asterisk is not None:
            ssh = Ssh(key_file=ssh_key, known_hosts=known_hosts)
            pbx = importer.read_asterisk(asterisk, config_dir, ssh, ctx)
            found.data.update(pbx.data)
            found.notes.extend(pbx.notes)
    header = [
        f"sipctl spec imported from the live setup of {domain}",
        f"by 'sipctl import' on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        *(f"note: {n}" for n in found.notes),
        *(f"not expressible, so a plan will show it: {g}" for g in found.gaps),
    ]
    text = importer.spec_yaml(found.data, header)
    source = str(out) if out is not None else "<imported spec>"
    loaded = load_spec_text(text, source=source, base_dir=base_dir)  # it must validate
    if out is None:
        console.out(text, end="")
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise SipctlError(f"{out}: cannot write the spec: {exc.strerror}") from None
        console.info(f"Wrote {out}.")
    for gap in found.gaps:
        console.warn(f"the spec cannot express this, so a plan will show it: {gap}")
    _check_import(console, loaded, adopt)


def _check_import(console: Console, loaded: LoadedSpec, adopt: bool) -> None:
    """Plan the imported spec's DNS: say whether applying it would change anything."""
    from sipctl.reconciler.engine import make_plan
    from sipctl.reconciler.guarded import guarded_apply
    from sipctl.reconciler.importer import bookkeeping_only

    with _run_context(loaded.base_dir, console) as ctx:
        plan_run = make_plan(loaded, ctx, ["dns"])
        changes = [(t.layer, c) for t, c in plan_run.plan.changes()]
        if not changes:
            console.info("A plan of its DNS layer shows no changes.")
            return
        if not bookkeeping_only(changes, loaded.spec.domain):
            console.warn(
                f"a plan of its DNS layer shows {len(changes)} change(s); see 'sipctl plan -f "
                f"{loaded.source}'"
            )
            if adopt:
                raise SipctlError("--adopt records ownership only when nothing else would change")
            return
        if not adopt:
            console.info(
                "A plan of its DNS layer shows one change: the ownership record TXT "
                f"_sipctl.{loaded.spec.domain} (no record a caller sees); --adopt writes it."
            )
            return
        guarded_apply(plan_run.plan, loaded.source, ctx, say=console.info, detail=console.detail)
        console.info(
            f"Adopted: recorded sipctl's ownership of the SIP records of {loaded.spec.domain}."
        )


# --- show, render, schema ----------------------------------------------------------------------


@app.command()
def show(
    plan_file: Annotated[
        Path, typer.Argument(help="A plan saved by 'sipctl plan --out'.", dir_okay=False)
    ],
    json_: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the plan as Markdown.")
    ] = False,
    no_color: NoColor = False,
) -> None:
    """Show a saved plan, without reading any live system."""
    console = _start(no_color, 0)
    saved = _read_plan_file(plan_file)
    _print_plan(console, saved.to_json(), _format(json_, markdown))


@app.command()
def render(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", "-d", help="Write the artefacts into this directory.", file_okay=False
        ),
    ],
    spec_file: SpecOption = Path("sipctl.yaml"),
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Write every derived artefact (zone snippet, update-policy, Asterisk files, firewall
    rules, fail2ban jail) into a directory for review. Reads and changes no live system.
    """
    console = _start(no_color, verbose)
    from sipctl.reconciler.layers import LAYERS

    loaded = _load(spec_file)
    written = 0
    for layer in LAYERS:
        if not layer.managed(loaded.spec):
            continue
        for name, text in sorted(layer.artefacts(loaded.spec).items()):
            path = directory / layer.name / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise SipctlError(f"{path}: cannot write: {exc.strerror}") from None
            console.out(str(path))
            written += 1
    console.info(f"Wrote {written} file(s) under {directory}.")


@app.command()
def schema(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write to this file instead of stdout.", dir_okay=False),
    ] = None,
) -> None:
    """Print the JSON Schema of the spec (for editors and CI linters)."""
    from sipctl.schemas.jsonschema import schema_text

    text = schema_text()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def _register_verify() -> None:
    # Lives in its own module: it pulls in the resolver and the SIP probe only when run.
    from sipctl.cli_verify import verify_command

    app.command("verify")(verify_command)


_register_verify()


def _version_callback(value: bool) -> None:
    if value:
        sys.stdout.write(f"sipctl {__version__}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = None,
) -> None:
    """Global options."""


# --- entry point ------------------------------------------------------------------------------


def _debug_log_path() -> Path:
    configured = os.environ.get("SIPCTL_DEBUG_LOG")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"sipctl-debug-{os.getuid()}.log"


def _report_unexpected(exc: BaseException) -> None:
    path = _debug_log_path()
    text = _console.scrub("".join(traceback.format_exception(exc)))
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(
                f"--- {datetime.now(UTC).isoformat()} sipctl {__version__} {sys.argv[1:]}\n"
            )
            handle.write(text)
        where = f"the details are in {path}"
    except OSError:
        where = "the details could not be written to a debug log"
    _console.error(
        f"unexpected error ({type(exc).__name__}: {_console.scrub(str(exc))[:300]}); {where}. "
        "This is a bug in sipctl: please report it with that file."
    )


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this)."""
    try:
        result = app(args=argv, prog_name="sipctl", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        _console.error("aborted")
        return EXIT_ERROR
    except typer.TyperException as exc:
        # Usage errors: click would exit 2, which means "changes present" here.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _console.error(exc.message)
        return EXIT_OK if type(exc).__name__ == "NoArgsIsHelpError" else EXIT_ERROR
    except SpecError as exc:
        if exc.problems:
            for line in exc.problems:
                _console.error(line)
        else:
            _console.error(exc.message, exc.hint)
        return exc.exit_code
    except SipctlError as exc:
        _console.error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        _console.error("interrupted")
        return EXIT_ERROR
    except Exception as exc:
        _report_unexpected(exc)
        return EXIT_ERROR
    return int(result) if isinstance(result, int) else EXIT_OK


def main() -> NoReturn:
    sys.exit(run())
