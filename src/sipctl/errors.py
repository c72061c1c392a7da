"""The exceptions sipctl raises, and the exit code each one means.

Everything a user can cause or meet derives from ``SipctlError``; the CLI is the only place
that turns one into a printed line and an exit code. Providers wrap the errors of the
libraries and programs beneath them (``raise ProviderError(...) from exc``) so that no
library traceback reaches the user::

    SipctlError                      exit 1
    ├── SpecError                    the spec file is unreadable or invalid
    ├── ProviderError                a live system refused, failed or could not be reached
    │   ├── VerifyFailed             applied, but the end-to-end check failed
    │   └── ProviderCrashed          a provider raised something unexpected (its cause: a bug)
    └── RefusedError                 exit 3: refused for safety
        ├── StalePlanError           live state changed since the plan was made
        ├── UnsafePlanError          the plan destroys too much or would cut SSH
        ├── LockHeldError            another run holds the lock
        └── RolledBackError          applied, then rolled back (e.g. confirmation lost)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130  # Ctrl-C: the shell's own code for a process ended by SIGINT
# What the exit codes mean, as --help and the man page say it (one text for both).
EXIT_CODES_TEXT = (
    "0 success (with --detailed-exitcode: no changes), 1 error, 2 something to act on "
    "(plan --detailed-exitcode: changes; drift: drift; audit: findings at or above "
    "--fail-on), 3 refused for safety."
)


class SipctlError(Exception):
    """An error meant for a human: its message is printed as it is, without a traceback."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SpecError(SipctlError):
    """The spec (or a plan file) cannot be read or does not validate.

    ``problems`` holds one line per problem, each starting with ``file:line:col:``.
    """

    def __init__(
        self, message: str, problems: list[str] | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []


def hint_line(hint: str) -> str:
    """How a hint is told after its error: on the terminal (indented under ``Error:``), in a
    domain's report and in a merge-request comment alike, so none says it in other words."""
    return f"hint: {hint}"


def failure_text(exc: SipctlError) -> str:
    """What an error says as data (a JSON ``error``): every problem on its own line, or the
    message when it has none."""
    problems = getattr(exc, "problems", None)
    return "\n".join(problems) if problems else exc.message


class ProviderError(SipctlError):
    """A live system (DNS server, PBX, firewall, fail2ban, SSH) failed or refused."""


class FileTooLarge(ProviderError):
    """A file larger than sipctl reads of its kind (``read_open_file``): the message names
    the file, its size and the limit, and what to do; a caller puts what the file is to it
    in front (``f"the TSIG secret file {exc}"``)."""

    def __init__(self, shown: str, size: int, limit: int) -> None:
        self.shown, self.size, self.limit = shown, size, limit
        most = f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit:,} bytes"
        super().__init__(
            f"{shown} is {size:,} bytes, more than the {most} sipctl reads of such a file: is "
            "it the right file? Name the right one, or make it smaller"
        )


class VerifyFailed(ProviderError):
    """The end-to-end check after an apply found defects."""


class ProviderCrashed(ProviderError):
    """A provider raised an exception no one expected. The message says what was already
    applied; the CLI writes the traceback of ``__cause__`` to its private debug log."""


class RefusedError(SipctlError):
    """sipctl refused to go on because going on would be unsafe (exit 3)."""

    exit_code = EXIT_REFUSED


class StalePlanError(RefusedError):
    """The live state changed since the saved plan was made."""


class UnsafePlanError(RefusedError):
    """The plan would destroy too much, or lock the operator out: ``head`` (what refuses it
    and how to override) and one line per reason; ``listed``: the reasons were listed
    already (a plan's view), and the message only points there."""

    def __init__(self, head: str, reasons: Sequence[str], *, listed: bool = False) -> None:
        told = ": see the reasons above" if listed else ":\n  " + "\n  ".join(reasons)
        super().__init__(head + told)
        self.head = head
        self.reasons = list(reasons)
        self.listed = listed

    def __reduce__(self) -> tuple[Any, ...]:  # pickled by a worker process: all three kept
        return (_unsafe_plan_error, (self.head, self.reasons, self.listed))

    def listed_above(self) -> UnsafePlanError:
        """This refusal once a plan's view has listed its reasons: a pointer to them, so
        that a terminal does not tell each reason again under the plan."""
        return UnsafePlanError(self.head, self.reasons, listed=True)


def _unsafe_plan_error(head: str, reasons: Sequence[str], listed: bool) -> UnsafePlanError:
    return UnsafePlanError(head, reasons, listed=listed)


class LockHeldError(RefusedError):
    """Another run holds the lock of a target."""


class RolledBackError(RefusedError):
    """The change was applied and then rolled back (e.g. the new firewall cut SSH)."""


class CommandExit(Exception):
    """A command is done and exits with ``code`` (2: changes present, say), having printed
    all it had to say. Commands raise this rather than typer's Exit, so that every exit code
    leaves through one place (cli_boundary.run_guarded)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code
