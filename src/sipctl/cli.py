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
    spec_file: SpecOption = Path("sipctl.yaml"),
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
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Show what apply would change. Reads the live systems; changes nothing.

    Examples:

      sipctl plan                          # sipctl.yaml here, all layers

      sipctl plan -f mysite.yaml --out plan.json --markdown > comment.md

      sipctl plan --detailed-exitcode      # nightly drift check: exit 2 = drift
    """
    console = _start(no_color, verbose)
    fmt = _format(json_, markdown)
    from sipctl.reconciler.engine import make_plan
    from sipctl.reconciler.safety import refusal_reasons

    loaded = _load(spec_file)
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


@app.command()
def apply(
    plan_file: Annotated[
        Path | None,
        typer.Argument(
            help="A plan saved by 'sipctl plan --out'; applied exactly, if still current.",
            dir_okay=False,
        ),
    ] = None,
    spec_file: Annotated[
        Path | None,
        typer.Option(
            "-f",
            "--file",
            help="Plan this spec and apply it (default: sipctl.yaml).",
            dir_okay=False,
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
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Make the live systems match the spec (or apply a saved plan exactly).

    A saved plan is re-checked first: if any target changed since it was made, nothing is
    applied and sipctl exits 3. Changes go out in a safe order: DNS records that stop
    advertising first, then firewall, fail2ban, Asterisk, and DNS records that advertise last.

    Examples:

      sipctl apply -f mysite.yaml           # plan, show, ask, apply

      sipctl plan --out plan.json && sipctl apply plan.json
    """
    console = _start(no_color, verbose)
    from sipctl.reconciler.engine import check_safe, make_plan, refresh

    if plan_file is not None and spec_file is not None:
        raise SpecError("give either a saved plan or -f SPEC, not both")
    if plan_file is not None:
        if target:
            raise SpecError("--target belongs to 'sipctl plan'; a saved plan applies what it holds")
        saved = _read_plan_file(plan_file)
        base_dir = Path(saved.spec_source).parent.resolve()
        with _run_context(base_dir, console, force) as ctx:
            plan_run = refresh(saved, ctx, str(plan_file))
            data = plan_run.plan.to_json()
            _print_plan(console, data, "human")
            check_safe(plan_run.plan, force)
            _apply_and_report(console, plan_run, ctx, force)
            loaded = plan_run.loaded
    else:
        loaded = _load(spec_file or Path("sipctl.yaml"))
        with _run_context(loaded.base_dir, console, force) as ctx:
            plan_run = make_plan(loaded, ctx, target)
            data = plan_run.plan.to_json()
            _print_plan(console, data, "human")
            check_safe(plan_run.plan, force)
            if plan_run.plan.has_changes:
                if not auto_approve:
                    _confirm(console)
                _apply_and_report(console, plan_run, ctx, force)
    if not no_verify:
        _post_apply_verify(console, loaded)


def _apply_and_report(console: Console, plan_run: PlanRun, ctx: RunContext, force: bool) -> None:
    from sipctl.reconciler.engine import apply_plan

    if not plan_run.plan.has_changes:
        return
    report = apply_plan(plan_run, ctx, force=force)
    for line in report.lines:
        console.info(line)
    counts = plan_run.plan.counts()
    console.out(
        f"\nApply complete! Resources: {counts['add']} added, {counts['change']} changed, "
        f"{counts['destroy']} destroyed."
    )


def _post_apply_verify(console: Console, loaded: LoadedSpec) -> None:
    """When the spec has both DNS and Asterisk, prove that a caller gets through."""
    try:
        from sipctl.reconciler.verify import post_apply_verify
    except ImportError:
        return
    post_apply_verify(loaded, console)


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
