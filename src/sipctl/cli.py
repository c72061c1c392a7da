"""The sipctl command line. The only place that prints results and chooses exit codes.

The commands live in small modules (cli_validate: validate; cli_plan: plan and apply;
cli_gitops: force-unlock, drift, import; cli_gate: read-gate; cli_verify: verify; cli_audit:
audit; cli_fleet: fleet; cli_docs: docs; the options several share: cli_params); this one
holds the app, the table of commands (COMMANDS) and the simple commands. typer builds a
command, and its module is imported, only when that command runs or is listed, so
``--version`` costs typer and the root's options, and a plan its own command alone. The
error boundary that turns every SipctlError into one line and an exit code is cli_boundary.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core
import typer.main
from typer.models import CommandInfo, TyperInfo

from sipctl import __version__
from sipctl.cli_boundary import run_guarded
from sipctl.cli_common import (
    GlobalOptions,
    current_console,
    load_checked,
    plan_format,
    plan_json_or_view,
    read_plan_file,
    reset_globals,
    set_globals,
    start_console,
    write_output_file,
)
from sipctl.cli_params import NoColor, SpecOption, Verbose
from sipctl.errors import EXIT_CODES_TEXT, EXIT_ERROR, EXIT_OK, CommandExit, SipctlError, SpecError

if TYPE_CHECKING:
    from sipctl.output import Console
    from sipctl.schemas.spec import Spec

# Each command: the module and the name of its function (or sub-app), in the order --help
# lists them. A command's module is imported, and typer reads its signature, only when that
# command runs, completes, or --help lists it: --version and a plan pay for their own alone.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("sipctl.cli_validate", "validate"),
    "plan": ("sipctl.cli_plan", "plan"),
    "apply": ("sipctl.cli_plan", "apply"),
    "force-unlock": ("sipctl.cli_gitops", "force_unlock"),
    "read-gate": ("sipctl.cli_gate", "read_gate"),
    "drift": ("sipctl.cli_gitops", "drift"),
    "import": ("sipctl.cli_gitops", "import_"),
    "show": ("sipctl.cli", "show"),
    "render": ("sipctl.cli", "render"),
    "schema": ("sipctl.cli", "schema"),
    "version": ("sipctl.cli", "version_command"),
    "verify": ("sipctl.cli_verify", "verify_command"),
    "audit": ("sipctl.cli_audit", "audit_command"),
    "fleet": ("sipctl.cli_fleet", "fleet_app"),
    "docs": ("sipctl.cli_docs", "docs_command"),
}


class _Commands(MutableMapping[str, Any]):
    """The root group's commands: a click command is built by typer from its function the
    first time it is looked up (click's documented lazy subcommands, inside the one parser).
    Commands registered on ``app`` the ordinary way come first."""

    def __init__(self, registered: MutableMapping[str, Any]) -> None:
        self._built: dict[str, Any] = dict(registered)

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = _build_command(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._built

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS.keys() | self._built.keys())


class _SipctlGroup(typer.core.TyperGroup):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _Commands(self.commands)


def _build_command(name: str) -> Any:
    module, attribute = COMMANDS[name]
    # __import__, not importlib.import_module: -X importtime (tests/test_import_budget.py)
    # sees only imports made through it.
    target = getattr(__import__(module, fromlist=[attribute]), attribute)
    if isinstance(target, typer.Typer):
        command: Any = typer.main.get_group_from_info(
            TyperInfo(target),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
            suggest_commands=app.suggest_commands,
        )
    else:
        command = typer.main.get_command_from_info(
            CommandInfo(name=name, callback=target),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )
    plain_metavars(command)
    return command


app = typer.Typer(
    cls=_SipctlGroup,
    name="sipctl",
    help=(
        "Make your own domain reachable for SIP calls (sip:director@mysite.ru), from one "
        "YAML spec in git.\n\n"
        "sipctl derives DNS (NAPTR -> SRV -> A), Asterisk guest access, the firewall and a "
        "fail2ban jail from the spec. 'plan' shows what differs from the live systems; "
        "'apply' closes the gap, idempotently.\n\n"
        f"Exit codes: {EXIT_CODES_TEXT}"
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def show(
    plan_file: Annotated[
        Path, typer.Argument(help="A plan saved by 'sipctl plan --out'.", dir_okay=False)
    ],
    json_: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON (sipctl schema --kind plan).")
    ] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the plan as Markdown.")
    ] = False,
    no_color: NoColor = False,
) -> None:
    """Show a saved plan, without reading any live system."""
    console = start_console(no_color, 0)
    fmt = plan_format(json_, markdown)
    if fmt == "json":  # a refusal is JSON too (cli_boundary)
        console.promise_json("plan", str(plan_file))
    saved = read_plan_file(plan_file)
    plan_json_or_view(console, saved, fmt)


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
    rules, fail2ban jail, the click-to-call page, business cards with QR codes) into a
    directory for review. Reads and changes no live system.
    """
    console = start_console(no_color, verbose)
    from sipctl.reconciler.layers import LAYERS
    from sipctl.reconciler.render.cards import CARDS_DIR
    from sipctl.reconciler.render.review_dir import left_over, refuse_live_directory

    loaded = load_checked(spec_file)
    refuse_live_directory(directory, loaded.spec)
    written: set[str] = set()
    for layer in LAYERS:
        if not layer.rendered(loaded.spec):
            continue
        for name, text in sorted(layer.artefacts(loaded.spec).items()):
            console.out(_write_artefact(directory, f"{layer.name}/{name}", text.encode()))
            written.add(f"{layer.name}/{name}")
    written |= _render_cards(console, loaded.spec, directory)
    console.info(f"Wrote {len(written)} file(s) under {directory}.")
    ours = {layer.name for layer in LAYERS} | {CARDS_DIR}
    for stale in left_over(directory, written, ours):
        console.warn(
            f"{directory / stale}: not written by this render (an earlier render's, of "
            "something the spec no longer has?): remove it, or render into an empty directory"
        )


def _render_cards(console: Console, spec: Spec, directory: Path) -> set[str]:
    """The business cards of every user and room (cards/); the vCards even without the
    QR code library, and then a line that says how to get the rest."""
    from sipctl.reconciler.render import cards

    if not cards.card_names(spec):
        return set()
    files: dict[str, bytes] = {k: v.encode() for k, v in cards.vcards(spec).items()}
    try:
        files = cards.card_files(spec)
    except cards.CardsExtraMissing as exc:
        console.warn(str(exc))
    for name, data in sorted(files.items()):
        console.out(_write_artefact(directory, f"{cards.CARDS_DIR}/{name}", data))
    return {f"{cards.CARDS_DIR}/{name}" for name in files}


def _write_artefact(directory: Path, relative: str, data: bytes) -> str:
    """Write ``directory/relative`` whole; returns the path written. Never through a link:
    the directory is often a checkout, where a merge request can add ``cards -> ~/.ssh``
    or a linked ``webrtc/index.html``, and render would write wherever it points."""
    from sipctl.providers.bookkeeping import SafeDir, symlink_refused

    *parts, name = relative.split("/")
    path = directory.joinpath(*parts, name)
    try:
        if directory.is_symlink():
            raise symlink_refused(str(directory))
        directory.mkdir(parents=True, exist_ok=True)
        with SafeDir.walk(directory, parts, create=True, shown=str(path.parent)) as safe:
            safe.replace(name, data, 0o644, (os.geteuid(), os.getegid()))
    except OSError as exc:
        raise SipctlError(f"{path}: cannot write: {exc.strerror}") from None
    return str(path)


def _complete_kind(incomplete: str) -> list[str]:
    """Shell completion of schema --kind: the kinds that begin with what is typed."""
    from sipctl.schemas.outputs import KINDS

    return [kind for kind in KINDS if kind.startswith(incomplete)]


def schema(
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            "--output",
            help="What to print: spec (the spec's JSON Schema), reference (the spec reference "
            "in Markdown, sipctl docs spec), commands (every command's --help in Markdown), man "
            "(the man page), host-profile or runner-profile (the JSON Schema of that "
            "profile), or the JSON Schema of a command's --json output: validate, plan, "
            "drift, verify, audit, fleet-status (one envelope each), or plan-file (a plan "
            "saved by plan --out). --output is the older spelling.",
            metavar="KIND",
            autocompletion=_complete_kind,
        ),
    ] = "spec",
    out_file: Annotated[
        Path | None,
        typer.Option("--out-file", help="Write to this file instead of stdout.", dir_okay=False),
    ] = None,
    old_out: Annotated[
        str | None,
        typer.Option("--out", "-o", hidden=True, help="Refused: say --kind or --out-file."),
    ] = None,
) -> None:
    """Print the JSON Schema of the spec (for editors and CI linters), the spec reference,
    or the JSON Schema of a command's --json output.

    Examples:

      sipctl schema --kind plan

      sipctl schema --kind spec --out-file sipctl.schema.json
    """
    from sipctl.schemas.outputs import KINDS, output_text

    if old_out is not None:
        # 'schema -o plan' once wrote the spec's schema to a file named plan.
        meant = f"--kind {old_out}" if old_out in KINDS else f"--out-file {old_out}"
        raise SpecError(
            f"schema takes no -o/--out: say what to print with --kind KIND, and where with "
            f"--out-file FILE (did you mean {meant}?)"
        )
    if out_file is not None:
        from sipctl.cli_report_file import check_out_file

        check_out_file(out_file, f"the output of --kind {kind}", "--out-file")
    text = output_text(kind)
    if out_file is None:
        sys.stdout.write(text)
    else:
        # sipctl's own public text (a man page others read): 0644, not a plan's 0600
        write_output_file(out_file, text, f"the output of --kind {kind}", 0o644)


def version_command() -> None:
    """Print sipctl's version (the same as --version)."""
    sys.stdout.write(f"sipctl {__version__}\n")


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
    verbose: Annotated[
        int,
        typer.Option(
            "-v",
            "--verbose",
            count=True,
            show_default=False,
            help="Say what is read and written, and where (-vv: more).",
        ),
    ] = 0,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            help="Print the result (plan, report, JSON), warnings and errors only: no "
            "progress, no notes (what sipctl did or assumed on the way, a report's note: "
            "lines). Of several domains (plan or apply -f DIR), only the domains with "
            "changes, refusals or errors, and one line of counts. -v outranks it.",
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Most detail, and tracebacks of unexpected errors."),
    ] = False,
    no_color: NoColor = False,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            metavar="FILE",
            help="The runner profile: which credentials a spec may name and where each may "
            "go, and which places and layers of this machine it may use (zone files, dir: "
            "targets, local layers and their paths, known_hosts). Giving one makes the run "
            "strict, as CI does (see: sipctl docs security, Strict or not); default: "
            "$SIPCTL_PROFILE.",
        ),
    ] = None,
) -> None:
    """Global options; they may also follow the subcommand."""
    set_globals(GlobalOptions(verbose=verbose, quiet=quiet, debug=debug, no_color=no_color))
    if profile is not None:
        from sipctl.reconciler.bindings import PROFILE_OPTION_ENV
        from sipctl.schemas.profiles import RUNNER_PROFILE_ENV

        os.environ[RUNNER_PROFILE_ENV] = str(profile.resolve())
        os.environ[PROFILE_OPTION_ENV] = str(profile)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this)."""
    from sipctl.cli_args import normalize_argv

    args = normalize_argv(list(sys.argv[1:] if argv is None else argv))
    reset_globals()
    return run_guarded(lambda: _run_typer(args))


# Set by the completion script a shell sources (sipctl --show-completion): the shell asks
# for the words that may follow, typer answers and exits.
COMPLETE_VAR = "_SIPCTL_COMPLETE"


def _run_typer(args: list[str]) -> object:
    from sipctl.cli_args import refuse_empty_spec

    refuse_empty_spec(args)
    command = _command()
    if os.environ.get(COMPLETE_VAR):
        command.main(args=args, prog_name="sipctl", complete_var=COMPLETE_VAR)
    try:
        # Not command.main(): end of input, Ctrl-C and a closed stdout reach run_guarded,
        # which handles them for every command alike.
        with command.make_context("sipctl", args) as ctx:
            return command.invoke(ctx)
    except typer.Exit as exc:
        raise CommandExit(int(exc.exit_code)) from None
    except typer.Abort:
        current_console().error("aborted")
        raise CommandExit(EXIT_ERROR) from None
    except typer.TyperException as exc:
        # Usage errors: click would exit 2, which means "changes present" here.
        _usage_error_as_json(command, args, exc)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            current_console().error(exc.message)
        code = EXIT_OK if type(exc).__name__ == "NoArgsIsHelpError" else EXIT_ERROR
        raise CommandExit(code) from None


def _usage_error_as_json(command: Any, args: list[str], exc: typer.TyperException) -> None:
    """--json promises stdout one document, and a usage error (an unknown option, a value
    out of range) ends the run before the command could say so: the error is that
    document, as a refusal inside the command would be (a pipeline reads stdout)."""
    if "--json" not in args:
        return
    from sipctl.cli_boundary import json_commands, owed_refusal

    name = _command_name(command, args)
    if name not in json_commands():
        return

    current_console().promise_json(name, None)
    # as stderr says it: "Invalid value for '--parallel': ..." (str() drops the option)
    owed_refusal(exc.format_message())


def _command_name(command: Any, args: list[str]) -> str | None:
    """The command the words name, a subcommand's joined to its group's by '-' (``fleet
    status``: fleet-status, as ``schema --kind`` names its document); None: none."""
    words: list[str] = []
    commands: dict[str, Any] = command.commands
    for arg in args:
        if arg in commands:
            words.append(arg)
            commands = getattr(commands[arg], "commands", {})  # only a group has any
    return "-".join(words) or None


_COMMAND: Any = None


def _command() -> Any:
    """The click command, built once, with metavars in words instead of Python types."""
    global _COMMAND
    if _COMMAND is None:
        _COMMAND = typer.main.get_command(app)
        plain_metavars(_COMMAND)
    return _COMMAND


# Option name -> what its value is, in the words of the help text.
_METAVARS = {
    "--file": "SPEC",
    "--out": "FILE",
    "--out-file": "FILE",
    "--parallel": "N",
    "--dir": "DIR",
    "--nameserver": "IP[:PORT]",
}


def plain_metavars(command: Any) -> None:
    """Metavars in words (SPEC, N, PLAN...) for every option and argument that has none, so
    --help never shows a Python type like <list[Path]> or {plan_file}. The root's lazy
    commands get theirs when they are built."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            if getattr(param, "count", False):
                param.show_default = False
            continue
        if param.param_type_name == "argument":
            name = param.metavar or (param.name or "value").upper().removesuffix("_FILE")
            param.metavar = name
            usage = name if param.required else f"[{name}]"
            usage += "..." if param.nargs != 1 else ""
            # typer's own usage form is {name} or [[NAME]...]...: the plain form instead
            param._usage_display_name = lambda usage=usage: usage
            param.display_type_rich = lambda ctx: None  # no <list[Path]> beside the name
        elif param.metavar is None:
            longest = max(param.opts, key=len)
            param.metavar = _METAVARS.get(longest, longest.lstrip("-").replace("-", "_").upper())
    commands = getattr(command, "commands", {})
    if not isinstance(commands, _Commands):
        for sub in commands.values():
            plain_metavars(sub)
