"""The CLI's error boundary: every SipctlError becomes one line and an exit code (and,
for a command that owes stdout a --json document, that document with the error), a
command's chosen exit code passes through, and anything unexpected is written (scrubbed of
secrets) to a private debug log instead of a traceback on the screen. End of input, Ctrl-C
and a reader that went away (``sipctl plan | head``) end every command here alike.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sipctl import __version__, cli_common
from sipctl.cli_common import current_console
from sipctl.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CommandExit,
    ProviderCrashed,
    RefusedError,
    SipctlError,
    SpecError,
    failure_text,
)
from sipctl.output import Console


def run_guarded(command: Callable[[], object]) -> int:
    """Run ``command``; its exit code, with every error reported as the user should see it."""
    code = _exit_code(command)
    try:
        sys.stdout.flush()  # a reader gone away is met here, not in the exit's last flush
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        return _reader_gone()
    return code


def _exit_code(command: Callable[[], object]) -> int:
    try:
        result = command()
    except CommandExit as exc:
        return exc.code
    except SpecError as exc:
        owed_refusal(failure_text(exc), exc)
        if exc.problems:
            for number, line in enumerate(exc.problems, 1):
                current_console().error(line, exc.hint if number == len(exc.problems) else None)
        else:
            current_console().error(exc.message, exc.hint)
        return exc.exit_code
    except ProviderCrashed as exc:
        where = log_traceback(exc.__cause__ or exc)
        hint = f"{where}; please report this bug in sipctl with it"
        owed_refusal(f"{exc.message} ({where})", exc, hint)
        current_console().error(exc.message, hint)
        return exc.exit_code
    except SipctlError as exc:
        owed_refusal(failure_text(exc), exc)
        current_console().error(exc.message, exc.hint)
        return exc.exit_code
    except EOFError:  # stdin ended where a command asked for a line (a confirmation)
        sys.stderr.write("\n")
        owed_refusal("aborted")
        current_console().error("aborted")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # silent: the user knows, and the shell shows ^C
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            _report_unexpected(exc)
            return EXIT_ERROR
        return _reader_gone()
    except Exception as exc:
        _report_unexpected(exc)
        return EXIT_ERROR
    return int(result) if isinstance(result, int) else EXIT_OK


def owed_refusal(error: str, exc: SipctlError | None = None, hint: str | None = None) -> None:
    """A command that owes stdout a JSON document (--json) or a merge-request comment
    (plan --markdown) and printed none yet prints its failure as one: a pipeline reading
    stdout always gets a document, or a comment that says why, whichever step refused (a
    spec that does not load, an unreadable runner profile, a wrong --shard, a held lock, a
    bug), and the exit code stays the error's. The one place for every command's --json,
    for the file of drift --out, which gets the same document, and for --markdown (which
    ends with the hint the terminal prints: ``hint``, else the error's own)."""
    console = current_console()
    _markdown_refusal(console, error, exc, hint or (exc.hint if exc is not None else None))
    if console.json_promise is None:
        return

    kind, spec = console.json_promise
    status = "refused" if isinstance(exc, RefusedError) else "error"
    text = console.json_text(_refusal_document(kind, spec, status, error))
    if console.json_stdout and not console.wrote_out:
        console.out(text, end="")
    if console.json_file is not None and not console.wrote_json_file:
        from sipctl.cli_report_file import save_report

        try:
            save_report(console, text)
        except SipctlError as problem:  # the run's own error is the one to tell
            if exc is None or problem.message != exc.message:  # the file's own: told once
                console.warn(str(problem.message))


def _markdown_refusal(
    console: Console, error: str, exc: SipctlError | None, hint: str | None
) -> None:
    """plan --markdown's comment of a run that failed before any domain's section: one
    spec's laid out as its failed section (its marker first), several specs' as a section
    of its own after the marker the pipeline writes for them."""
    if not console.owes_markdown or console.wrote_out:
        return
    from sipctl.reconciler import views

    status = "refused" if isinstance(exc, RefusedError) else "error"
    domain = console.markdown_domain
    if domain is not None:
        console.out(views.render_markdown_failure(domain, status, error, hint), end="")
    else:
        top = ["### sipctl plan", ""]
        reason = views.markdown_reason(status, error, hint)
        console.out("\n".join([*top, *reason]) + "\n", end="")


def json_commands() -> tuple[str, ...]:
    """The commands whose --json owes stdout one document (``sipctl schema --kind NAME``,
    a subcommand's name joined to its group's by '-'): the envelope's kinds, and validate
    and fleet status in shapes of their own."""
    from sipctl.reconciler.envelope import KINDS

    return (*KINDS, "validate", "fleet-status")


def _refusal_document(kind: str, spec: str | None, status: str, error: str) -> dict[str, Any]:
    """What ``kind``'s --json prints when its run ended without a report: the same shape
    as its report, so one schema reads both."""
    if kind == "validate":
        from sipctl.schemas.problems import validate_refusal

        return validate_refusal(spec, error)
    if kind == "fleet-status":
        from sipctl.reconciler.fleet.status_view import status_refusal

        return status_refusal(error)
    from sipctl.reconciler.envelope import refusal

    return refusal(kind, spec, status, error)


def _reader_gone() -> int:
    """stdout's reader went away (``sipctl plan | head``): nothing more can be said there, not
    even by the interpreter's last flush, and the run ends with 1."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_ERROR


def debug_log_path() -> Path:
    """A private place (never a fixed name in a shared /tmp, where another user could plant a
    link): ``$SIPCTL_DEBUG_LOG``, else ``debug.log`` in sipctl's state directory."""
    from sipctl.providers.bookkeeping import local_state_dir

    configured = os.environ.get("SIPCTL_DEBUG_LOG")
    if configured:
        return Path(configured)
    return local_state_dir() / "debug.log"


def _write_debug_log(path: Path, text: str) -> None:
    from sipctl.providers.bookkeeping import open_local_dir, private_dir

    if "SIPCTL_DEBUG_LOG" not in os.environ:
        private_dir(path.parent)  # created 0700
    with open_local_dir(path.parent) as directory:
        directory.append(path.name, text, 0o600)


def log_traceback(exc: BaseException) -> str:
    """Write ``exc``'s traceback to the debug log; returns where it is, in words."""
    import traceback  # only for a crash (start-up cost)

    path = debug_log_path()
    text = current_console().scrub("".join(traceback.format_exception(exc)))
    head = f"--- {datetime.now(UTC).isoformat()} sipctl {__version__} {sys.argv[1:]}\n"
    try:
        _write_debug_log(path, head + text)
        return f"the details are in {path}"
    except (OSError, SipctlError) as problem:
        return f"the details could not be written to {path} ({problem})"


def _report_unexpected(exc: BaseException) -> None:
    import traceback  # only for a crash (start-up cost)

    where = log_traceback(exc)
    if cli_common.GLOBAL.debug:
        sys.stderr.write(current_console().scrub("".join(traceback.format_exception(exc))))
    console = current_console()
    summary = console.scrub(str(exc))[:300]
    text = (
        f"unexpected error ({type(exc).__name__}: {summary}); {where}. "
        "This is a bug in sipctl: please report it with that file."
    )
    owed_refusal(text)
    console.error(text)
