"""What every sipctl command shares: the console, global flags, loading specs and plans.
The options several commands take are declared in cli_params.py."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipctl.errors import SipctlError, SpecError
from sipctl.output import Console

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.gitops.guarded import LockOptions
    from sipctl.reconciler.plan import Plan
    from sipctl.schemas.loader import LoadedSpec


# The console of the running command: the error handler scrubs secrets with it.
_CONSOLE: Console = Console()


def current_console() -> Console:
    return _CONSOLE


@dataclass
class GlobalOptions:
    """What the root command read before the subcommand (sipctl -v --no-color plan)."""

    verbose: int = 0
    quiet: bool = False
    debug: bool = False
    no_color: bool = False


GLOBAL = GlobalOptions()


def reset_globals() -> None:
    """A run starts afresh: no global flags, and a console of its own until the command
    starts one (a run in the same process must not inherit the last one's promise of a JSON
    document, its output so far, or its secrets)."""
    global GLOBAL, _CONSOLE
    GLOBAL = GlobalOptions()
    _CONSOLE = Console()


def set_globals(options: GlobalOptions) -> None:
    global GLOBAL
    GLOBAL = options


def start_console(no_color: bool, verbose: int) -> Console:
    """The console of this command, with the global flags given before the subcommand."""
    global _CONSOLE
    level = max(verbose, GLOBAL.verbose, 2 if GLOBAL.debug else 0)
    _CONSOLE = Console(
        no_color=no_color or GLOBAL.no_color, verbose=level, quiet=GLOBAL.quiet and not level
    )
    return _CONSOLE


@contextmanager
def run_context(base_dir: Path, console: Console, force: bool = False) -> Iterator[RunContext]:
    from sipctl.providers.base import RunContext

    ctx = RunContext(base_dir=base_dir, log=console.progress, notice=console.info, force=force)
    try:
        yield ctx
    finally:
        console.add_secrets(ctx.secrets)
        ctx.close()


def offline_problems(loaded: LoadedSpec) -> list[str]:
    from sipctl.schemas.checks import cross_checks

    return list(cross_checks(loaded))


def load_checked(spec_file: Path) -> LoadedSpec:
    from sipctl.schemas.loader import load_spec

    loaded = load_spec(spec_file)
    problems = offline_problems(loaded)
    if problems:
        raise SpecError(
            problems[0] if len(problems) == 1 else f"{spec_file}: {len(problems)} problems",
            problems,
        )
    return loaded


def print_plan(console: Console, data: dict[str, object], fmt: str) -> None:
    from sipctl.reconciler import views

    if fmt == "json":
        console.out(console.json_text(data), end="")
    elif fmt == "markdown":
        console.out(views.render_markdown(data), end="")
    else:
        detail = console.verbose > 0
        text = views.render_human(data, console.color, detail, notes=console.notes)
        console.out(text, end="")


def print_json_report(
    console: Console,
    kind: str,
    spec: Path | str,
    domain: str,
    status: str,
    report: dict[str, Any],
    error: str | None = None,
) -> None:
    """A one-spec run's --json: the same envelope as a run over many specs."""
    from sipctl.reconciler.envelope import single

    document = single(kind, str(spec), domain, status, report, error)
    console.out(console.json_text(document), end="")


def plan_json_or_view(console: Console, plan: Plan, fmt: str, refusal: str | None = None) -> None:
    """Print a plan as the user asked: JSON in the envelope, else Markdown or text.
    ``refusal``: why apply would refuse it (the JSON's status is then ``refused``, as a
    refused domain's is in a run over many specs, and its ``error`` says why)."""
    from sipctl.reconciler.envelope import plan_status

    data = plan.to_json()
    if fmt == "json":
        status = plan_status(plan.has_changes) if refusal is None else "refused"
        print_json_report(console, "plan", plan.spec_source, plan.domain, status, data, refusal)
    else:
        print_plan(console, data, fmt)


def plan_format(json_: bool, markdown: bool) -> str:
    if json_ and markdown:
        raise SpecError("choose one of --json and --markdown")
    return "json" if json_ else "markdown" if markdown else "human"


def write_plan_file(path: Path, data: dict[str, object]) -> None:
    """Write a plan (0600, atomically, never through a link). Its directory must exist:
    a typo in ``--out`` must not create directories."""
    if not path.parent.is_dir():
        raise SipctlError(
            f"{path}: the directory {path.parent} does not exist; sipctl creates none for a plan",
            hint=f"create it first (mkdir -p {path.parent}) if that is the place you meant",
        )
    write_output_file(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", "the plan")


def refuse_special_file(path: Path, option: str = "--out") -> None:
    """An output file is replaced whole (a new file renamed over it): one that is a device or
    a pipe (--out /dev/null as root) would be replaced by a regular file, so it is refused."""
    import stat

    try:
        mode = path.lstat().st_mode
    except OSError:
        return  # not there (or not visible): the write says what is wrong
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode)):
        raise SipctlError(
            f"{option} {path}: is not a regular file (a device, a pipe or a socket); sipctl "
            "writes a new file in its place, which would replace it",
            hint=f"name a regular file, or leave out {option} to write no file",
        )


def write_output_file(path: Path, text: str, what: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` (``mode``, 0600 unless it is public, atomically, never
    through a link) in its existing directory; ``what`` names it in the error."""
    from sipctl.providers.bookkeeping import open_local_dir

    refuse_special_file(path)
    try:
        with open_local_dir(path.parent) as directory:
            owner = (os.geteuid(), os.getegid())
            directory.replace(path.name, text.encode("utf-8"), mode, owner)
    except OSError as exc:
        raise SipctlError(f"{path}: cannot write {what}: {exc.strerror}") from None


def read_plan_file(path: Path) -> Plan:
    from sipctl.reconciler.plan import Plan

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the plan: {exc}") from None
    from sipctl.json_text import JsonTooDeep, read_json

    try:
        data = read_json(text)
    except JsonTooDeep as exc:
        raise SpecError(
            f"{path}:{exc.lineno}:{exc.colno}: the plan is {exc.msg}; no plan sipctl writes "
            "is (a damaged or hand-made file?)",
            hint="make the plan again: sipctl plan -f SPEC --out FILE",
        ) from None
    except json.JSONDecodeError:
        raise SpecError(
            f"{path} is not a plan file (plans are JSON, written by 'sipctl plan --out'); "
            f"to apply a spec, use: sipctl apply -f {path}"
        ) from None
    from sipctl.reconciler.envelope import is_envelope, the_only_plan

    if is_envelope(data):  # 'plan --json' output of one domain is a plan too
        data = the_only_plan(data, str(path))
    return Plan.from_json(data, source=str(path))


def confirm_apply(console: Console) -> None:
    if not sys.stdin.isatty():
        raise SipctlError(
            "apply needs a confirmation and there is no terminal to ask on; "
            "pass --auto-approve, or apply a saved plan (sipctl plan --out FILE; sipctl apply FILE)"
        )
    console.out("\nDo you want to apply these changes? Only 'yes' is accepted.")
    sys.stdout.write("  Enter a value: ")
    sys.stdout.flush()
    if _read_line().strip() != "yes":
        raise SipctlError("apply cancelled; nothing was changed")


def _read_line() -> str:
    """A line from stdin, waiting in short steps: a signal (a cancelled CI job, SIGTERM,
    Ctrl-C) that arrives just before the read still ends the wait, and the locks held through
    the question are released. A read that has already begun would wait for a line that
    never comes, since the signal's handler runs only once the read returns."""
    import select

    while not select.select([sys.stdin], [], [], 0.2)[0]:
        pass
    line = sys.stdin.readline()
    if not line:
        raise EOFError  # as input() does: the CLI says "aborted"
    return line


def lock_options(lock_timeout: str, lock_ttl: str) -> LockOptions:
    from datetime import timedelta

    from sipctl.reconciler.gitops.guarded import LockOptions
    from sipctl.reconciler.gitops.locking import parse_duration

    ttl = parse_duration(lock_ttl, "--lock-ttl")
    if ttl < 1:
        raise SpecError(f"--lock-ttl {lock_ttl!r}: give at least 1s")
    return LockOptions(parse_duration(lock_timeout, "--lock-timeout"), timedelta(seconds=ttl))


def verify_after_apply(console: Console, loaded: LoadedSpec) -> None:
    """When the spec has both DNS and Asterisk, prove that a caller gets through."""
    try:
        from sipctl.reconciler.verify.run import post_apply_verify
    except ImportError:
        return
    post_apply_verify(loaded, console)
