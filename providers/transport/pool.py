"""How providers reach a host: ``local``, ``dir:PATH`` or ``ssh://`` (see schemas/targets.py).

One ``HostTransport`` per host per run, shared by every layer on that host (the Asterisk,
firewall and fail2ban layers of one PBX use one SSH connection). Reads are batched: one
round trip returns any number of files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sipctl.errors import ProviderError
from sipctl.schemas.targets import TargetRef, parse_target

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.spec import Ssh


@dataclass(frozen=True)
class HostFile:
    """A file as read on a host. ``content`` is None when the file does not exist."""

    path: str
    content: bytes | None
    mtime: float | None = None
    mode: int | None = None

    @property
    def exists(self) -> bool:
        return self.content is not None

    def text(self) -> str:
        return (self.content or b"").decode("utf-8", "replace")


@dataclass(frozen=True)
class FileWrite:
    """Replace ``path`` with ``content`` atomically.

    ``expected`` is the content the plan saw (None: the file must not exist); when the file
    holds anything else, nothing at all is written and StalePlanError is raised.
    ``content`` None deletes the file. The old file is kept as ``path + BACKUP_SUFFIX``,
    unless ``keep_backup`` is False: then no copy of the old file stays, and any backup of
    it goes too (a page taken down from a web root leaves no copy there), so
    ``restore_backups`` cannot bring an old file back.
    """

    path: str
    content: bytes | None
    expected: bytes | None
    mode: int | None = None  # default: the old file's mode, else 0o644
    keep_backup: bool = True

    @property
    def removes_all(self) -> bool:
        """A delete that leaves no backup behind."""
        return self.content is None and not self.keep_backup

    @property
    def undoable(self) -> bool:
        """``restore_backups`` can undo it: a backup is kept, or there was no old file."""
        return self.keep_backup or self.expected is None


BACKUP_SUFFIX = ".sipctl.bak"


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class HostTransport(Protocol):
    ref: TargetRef
    connections: int  # connections opened so far (SSH: one per host per run)
    round_trips: int  # exchanges with the host (SSH: exec channels opened)
    read_only: bool  # reads go through the host's read gate (``read_gate.py``): SSH only

    @property
    def can_run(self) -> bool:
        """False for ``dir:`` targets: there is no program to run there."""
        ...

    def read_files(self, paths: Sequence[str]) -> dict[str, HostFile]:
        """Read all ``paths`` (absolute) in one round trip; missing files have content None."""
        ...

    def read_and_run(
        self, paths: Sequence[str], programs: Sequence[Sequence[str]], *, timeout: float = 60.0
    ) -> tuple[dict[str, HostFile], list[CommandResult]]:
        """``read_files(paths)``, then ``run_programs(programs)``, in one round trip: what a
        provider's read needs of a host when the programs do not depend on the files."""
        ...

    def write_files(self, writes: Sequence[FileWrite]) -> None:
        """Check every ``expected``, then replace every file (temp beside it, then rename)."""
        ...

    def restore_backups(self, paths: Sequence[str]) -> None:
        """Put back the ``.sipctl.bak`` of each path written by the last ``write_files``."""
        ...

    def remove_empty_dirs(self, dirs: Sequence[str]) -> list[str]:
        """Remove each of ``dirs`` (absolute, in the order given: deepest first) that is an
        empty directory, in one round trip, as ``rmdir`` does: one that holds anything
        stays. A link (at the name or on the way to it), a file, or a name that is missing
        is left as it is. Returns the directories removed."""
        ...

    def ensure_bookkeeping_dir(self) -> None:
        """Make sure of sipctl's own directory on the host (``BOOKKEEPING_DIR``; below the
        root for ``dir:``): created root-only (0700), refused when it is a link or not the
        login's own. ProviderError (or OSError on this machine) when it cannot be."""
        ...

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout: float = 60.0
    ) -> CommandResult:
        """Run a shell command line on the host (through ``sudo -n`` when configured).

        A non-zero exit is a result, not an error; ProviderError means the host could not
        be reached or ``timeout`` passed. A command that must outlive the call (a rollback
        timer) detaches itself, with no pipe back to us:
        ``setsid sh -c '...' </dev/null >/dev/null 2>&1 &``.
        """
        ...

    def run_programs(
        self, programs: Sequence[Sequence[str]], *, timeout: float = 60.0
    ) -> list[CommandResult]:
        """Run each program - its words: the program, then its arguments - with no shell
        reading them, in order, in one round trip; one result each.

        For every word that comes from a host profile or a spec (programs, paths): the
        words are data, whatever characters they hold. A result's ``stdout``
        holds the program's stdout and stderr interleaved; stdin is closed. A program that
        is not installed exits 127. ProviderError as for ``run``.
        """
        ...

    def fresh(self) -> HostTransport:
        """A NEW connection to the same host, e.g. to prove SSH still works after a firewall
        change. It is not pooled: the caller closes it."""
        ...

    def close(self) -> None: ...


class TransportPool:
    """Hands out one transport per host for the whole run.

    ``stats()`` counts connections and round trips per host, closed transports included, so
    that tests and the benchmark can check "one connection per host per run".
    """

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self._open: dict[str, HostTransport] = {}
        self._options: dict[str, Ssh | None] = {}
        self._closed: dict[str, tuple[int, int]] = {}

    def get(self, target: str, ssh: Ssh | None = None) -> HostTransport:
        ref = parse_target(target)
        transport = self._open.get(ref.key)
        if transport is None:
            transport = self._connect(ref, ssh)
            self._open[ref.key] = transport
            self._options[ref.key] = ssh
        elif ref.kind == "ssh" and ssh is not None and ssh != self._options[ref.key]:
            # Two layers on one host share one connection, so they must agree on how to log in.
            raise ProviderError(
                f"{ref}: two sections reach this host with different ssh options; "
                f"give them the same ssh: settings (or leave them out to use asterisk.ssh)"
            )
        return transport

    def _connect(self, ref: TargetRef, ssh: Ssh | None) -> HostTransport:
        if ref.kind == "dir":
            from sipctl.providers.transport.local import DirTransport

            return DirTransport(ref, self._ctx)
        if ref.kind == "local":
            from sipctl.providers.transport.local import LocalTransport

            return LocalTransport(ref, self._ctx)
        from sipctl.providers.transport.ssh import SshTransport
        from sipctl.schemas.spec import Ssh as SshOptions

        return SshTransport(ref, ssh or SshOptions(), self._ctx)

    def stats(self) -> dict[str, tuple[int, int]]:
        """``{target key: (connections, round trips)}`` for this run so far."""
        counts = dict(self._closed)
        for key, transport in self._open.items():
            before = counts.get(key, (0, 0))
            counts[key] = (before[0] + transport.connections, before[1] + transport.round_trips)
        return counts

    def close_all(self) -> None:
        self._closed = self.stats()
        for transport in self._open.values():
            transport.close()
        self._open.clear()
        self._options.clear()
