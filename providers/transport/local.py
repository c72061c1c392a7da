"""Transports for this machine: ``local`` (files and programs here) and ``dir:PATH``.

``dir:PATH`` stands in for a host's root file system: ``/etc/asterisk/x.conf`` lands at
``PATH/etc/asterisk/x.conf`` and no program runs there (``can_run`` is False; callers check
it and report a ``skipped`` line rather than calling ``run``).

Both write files the same way (see ``write_files``): every expected content is checked
before anything is written, each new file is written to a temp file beside the old one,
flushed to disk, and renamed into place; the old file stays as ``<path>.sipctl.bak``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shlex
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.errors import FileTooLarge, ProviderError, StalePlanError
from sipctl.providers.bookkeeping import (
    BOOKKEEPING_DIR,
    SafeDir,
    SymlinkRefused,
    on_this_machine,
    open_bookkeeping_below,
    private_dir,
)
from sipctl.providers.transport.files import (
    DIRECTORY_LINK_REFUSED,
    LINK_REFUSED,
    is_kernel_file,
)
from sipctl.providers.transport.pool import (
    BACKUP_SUFFIX,
    CommandResult,
    FileWrite,
    HostFile,
    HostTransport,
)
from sipctl.providers.transport.programs import NOT_FOUND, quoted
from sipctl.schemas.targets import TargetRef
from sipctl.schemas.values import canonical_path

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext

_DEFAULT_MODE = 0o644
# rmdir's answers for a directory that stays: it holds something, it is gone, it is a link
# or a file, it is a mount point
_KEPT_DIRECTORY = frozenset(
    {errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT, errno.ENOTDIR, errno.EBUSY}
)


@dataclass(frozen=True)
class _Undo:
    """How to undo one write of the last ``write_files``: the file existed before, or not."""

    host_path: str
    existed: bool


def stale_message(target: str, path: str) -> str:
    return f"{target}: {path} changed on the host since the plan was made; run plan again"


def symlink_message(target: str, path: str) -> str:
    # Renaming a new file into place would replace the link itself, silently cutting it.
    return (
        f"{target}: {path} is a symbolic link; sipctl replaces files whole and would break "
        f"the link: use the path of the file it points to"
    )


class _FileSystemTransport:
    """Files on a file system this process can reach directly; subclasses map the paths.

    Every file is reached through its directory opened by descriptor (``SafeDir``): no
    link anywhere on the way is followed, for a read as for a write (see
    ``providers/bookkeeping.py``). A link is reported as one, and what it points to is
    neither read nor named: ``/etc/asterisk`` belongs to the asterisk user on Debian, whose
    link to ``/root/.my.cnf`` must not put root's password into a plan.
    """

    read_only = False  # no read gate: this process reads the files itself

    def __init__(self, ref: TargetRef, ctx: RunContext) -> None:
        self.ref = ref
        self._ctx = ctx
        self.connections = 0
        self.round_trips = 0
        self._last_writes: dict[str, _Undo] = {}

    @property
    def can_run(self) -> bool:
        raise NotImplementedError

    def ensure_bookkeeping_dir(self) -> None:
        try:
            self._make_bookkeeping_dir()
        except OSError as exc:
            raise ProviderError(
                f"{self.ref}: cannot create {BOOKKEEPING_DIR}: {exc.strerror or exc}"
            ) from None

    def _make_bookkeeping_dir(self) -> None:
        raise NotImplementedError

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout: float = 60.0
    ) -> CommandResult:
        raise NotImplementedError

    def run_programs(
        self, programs: Sequence[Sequence[str]], *, timeout: float = 60.0
    ) -> list[CommandResult]:
        raise NotImplementedError

    # -- paths -------------------------------------------------------------------------------

    def _root(self) -> Path:
        """The directory host paths are below (``/`` for this machine)."""
        raise NotImplementedError

    def _local_path(self, host_path: str) -> Path:
        """Where ``host_path`` (absolute, on the target) is on this machine (for messages)."""
        relative = self._checked(host_path).lstrip("/")
        return self._root() / relative if relative else self._root()

    def _checked(self, host_path: str) -> str:
        if not host_path.startswith("/") or "\x00" in host_path:
            raise ProviderError(f"{self.ref}: {host_path!r} is not an absolute path")
        # canonical: no "..", so the result is always below the root
        return canonical_path(host_path)

    def _open_parent(self, host_path: str, *, create: bool) -> tuple[SafeDir, str]:
        """The directory of ``host_path``, opened without following a planted link, and the
        file's name in it. ``FileNotFoundError`` when a directory is missing (not ``create``)."""
        clean = self._checked(host_path)
        directory, name = posixpath.split(clean)
        if not name:
            raise ProviderError(f"{self.ref}: {host_path} is not a file path")
        root = self._root()
        if create:
            root.mkdir(parents=True, exist_ok=True)
        parts = [p for p in directory.split("/") if p]
        shown = f"{self.ref}:{directory}" if self.ref.kind == "dir" else directory
        safe = SafeDir.walk(root, parts, create=create, shown=shown)
        return safe, name

    # -- reading -----------------------------------------------------------------------------

    def read_files(self, paths: Sequence[str]) -> dict[str, HostFile]:
        self.round_trips += 1
        return {path: self._read_one(path) for path in paths}

    def read_and_run(
        self, paths: Sequence[str], programs: Sequence[Sequence[str]], *, timeout: float = 60.0
    ) -> tuple[dict[str, HostFile], list[CommandResult]]:
        files = self.read_files(paths)
        return files, self.run_programs(programs, timeout=timeout) if programs else []

    reads_kernel_files = False  # /proc/net, /proc/sys are this machine's kernel's (local)

    def _read_one(self, host_path: str) -> HostFile:
        if self.reads_kernel_files and is_kernel_file(self._checked(host_path)):
            return _read_kernel_file(host_path)
        try:
            directory, name = self._open_parent(host_path, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return HostFile(host_path, None)
        except SymlinkRefused:
            raise self._link_refused(host_path, on_the_way=True) from None
        except OSError as exc:
            raise ProviderError(f"{self.ref}: cannot read {host_path}: {exc.strerror}") from exc
        with directory:
            try:
                found = directory.read(name)
            except SymlinkRefused:
                raise self._link_refused(host_path, on_the_way=False) from None
            except FileTooLarge:
                raise  # it names the file, its size and the limit
            except ProviderError as exc:
                raise ProviderError(f"{self.ref}: {host_path} is not a regular file") from exc
            except OSError as exc:
                raise ProviderError(f"{self.ref}: cannot read {host_path}: {exc.strerror}") from exc
        if found is None:
            return HostFile(host_path, None)
        content, info = found
        return HostFile(host_path, content, info.st_mtime, stat.S_IMODE(info.st_mode))

    # -- writing -----------------------------------------------------------------------------

    def write_files(self, writes: Sequence[FileWrite]) -> None:
        """Check every ``expected``; then replace every changed file atomically.

        Nothing is written when any file differs from what the plan saw, or when a changed
        file is a link. A file whose new content equals its current content is not touched
        (its mtime stays).
        """
        self.round_trips += 1
        self._last_writes = {}
        self._check_expected(writes)
        todo = [w for w in writes if w.content != w.expected]
        temps: dict[str, tuple[SafeDir, str]] = {}
        opened: list[SafeDir] = []
        try:
            for write in todo:
                if write.content is not None:
                    directory, name = self._open_parent(write.path, create=True)
                    opened.append(directory)
                    temps[write.path] = (directory, self._write_temp(write, directory, name))
            # Checked again right before the renames: the window in which an edit on the host
            # can be lost is now the few microseconds of the rename loop.
            self._check_expected(todo)
            for write in todo:
                self._replace(write, temps.pop(write.path, None))
        except BaseException:
            for directory, temp in temps.values():
                directory.unlink(temp)
            if self._last_writes:
                done = list(self._last_writes)
                with contextlib.suppress(ProviderError):
                    self.restore_backups(done)
            raise
        finally:
            for directory in opened:
                directory.close()

    def _check_expected(self, writes: Sequence[FileWrite]) -> None:
        for write in writes:
            current = self._read_one(write.path).content
            if current != write.expected:
                raise StalePlanError(stale_message(str(self.ref), write.path))
            if write.content != write.expected and self._is_link(write.path):
                raise ProviderError(symlink_message(str(self.ref), write.path))

    def _link_refused(self, host_path: str, *, on_the_way: bool) -> SymlinkRefused:
        what = LINK_REFUSED if not on_the_way else DIRECTORY_LINK_REFUSED
        where = f"{self.ref}:" if self.ref.kind == "dir" else ""
        return SymlinkRefused(
            f"{where}{self._checked(host_path)} {what}",
            hint="replace the link by the file or directory itself (a link there is how "
            "another account could make sipctl show or overwrite a file of root's)",
        )

    def _is_link(self, host_path: str) -> bool:
        try:
            directory, name = self._open_parent(host_path, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return False
        with directory:
            return directory.is_link(name)

    def _write_temp(self, write: FileWrite, directory: SafeDir, name: str) -> str:
        assert write.content is not None
        old = directory.lstat(name)
        if old is not None and stat.S_ISREG(old.st_mode):
            mode, uid, gid = stat.S_IMODE(old.st_mode), old.st_uid, old.st_gid
            if write.mode is not None:
                mode = write.mode
        else:
            old = None
            parent = os.fstat(directory.fd)
            mode = write.mode if write.mode is not None else _DEFAULT_MODE
            uid, gid = parent.st_uid, parent.st_gid
        try:
            temp = directory.create_temp(name, write.content, mode, (uid, gid))
        except OSError as exc:
            raise ProviderError(
                f"{self.ref}: cannot write in {posixpath.dirname(write.path)}: {exc.strerror}"
            ) from exc
        made = directory.lstat(temp)
        if old is not None and made is not None and (made.st_uid, made.st_gid) != (uid, gid):
            # Keeping the owner of an existing file matters (a daemon may read it as its own
            # user); a new file merely inherits ours when we may not give it the parent's.
            directory.unlink(temp)
            raise ProviderError(
                f"{self.ref}: cannot keep the owner of {write.path}: operation not permitted"
            )
        return temp

    def _replace(self, write: FileWrite, temp: tuple[SafeDir, str] | None) -> None:
        existed = write.expected is not None
        try:
            if temp is not None:
                directory, temp_name = temp
                name = posixpath.basename(self._checked(write.path))
                if existed and write.keep_backup:
                    _keep_backup(directory, name)
                directory.rename(temp_name, name)
                if not write.keep_backup:
                    directory.unlink(name + BACKUP_SUFFIX)
                directory.fsync()
            else:
                opened, name = self._open_parent(write.path, create=False)
                with opened:
                    if write.removes_all:
                        opened.unlink(name + BACKUP_SUFFIX)
                    elif existed:
                        _keep_backup(opened, name)
                    opened.unlink(name)
                    opened.fsync()
        except OSError as exc:
            raise ProviderError(f"{self.ref}: cannot replace {write.path}: {exc.strerror}") from exc
        if write.undoable:
            self._last_writes[write.path] = _Undo(write.path, existed)

    def restore_backups(self, paths: Sequence[str]) -> None:
        """Undo the last ``write_files`` for ``paths``; paths it did not change are left alone."""
        failed: list[str] = []
        for path in paths:
            undo = self._last_writes.pop(path, None)
            if undo is None:
                continue
            try:
                directory, name = self._open_parent(path, create=False)
                with directory:
                    if undo.existed:
                        directory.rename(name + BACKUP_SUFFIX, name)
                    else:
                        directory.unlink(name)
                    directory.fsync()
            except OSError as exc:
                failed.append(f"{path} ({exc.strerror})")
        if failed:
            raise ProviderError(f"{self.ref}: could not restore {', '.join(failed)}")

    def remove_empty_dirs(self, dirs: Sequence[str]) -> list[str]:
        self.round_trips += 1
        removed: list[str] = []
        for host_path in dirs:
            try:
                # the parent is walked without following a link; rmdir itself never
                # follows one (a link at the name is ENOTDIR) and keeps a non-empty directory
                parent, name = self._open_parent(host_path.rstrip("/") or "/", create=False)
            except (FileNotFoundError, NotADirectoryError, SymlinkRefused):
                continue
            with parent:
                try:
                    os.rmdir(name, dir_fd=parent.fd)
                except OSError as exc:
                    if exc.errno in _KEPT_DIRECTORY:
                        continue
                    raise ProviderError(
                        f"{self.ref}: cannot remove the empty directory {host_path}: {exc.strerror}"
                    ) from exc
                parent.fsync()
            removed.append(host_path)
        return removed

    def fresh(self) -> HostTransport:
        return type(self)(self.ref, self._ctx)

    def close(self) -> None:
        pass


def _keep_backup(directory: SafeDir, name: str) -> None:
    """``name.sipctl.bak`` becomes a copy of ``name``, with no moment in which ``name`` is
    missing; a link planted at the backup's name is replaced, not followed."""
    temp = directory.copy_to_temp(name)
    try:
        directory.rename(temp, name + BACKUP_SUFFIX)
    except BaseException:
        directory.unlink(temp)
        raise


def _read_kernel_file(host_path: str) -> HostFile:
    """A file below /proc/net or /proc/sys, reached through /proc's own links (which no one
    can make or change)."""
    try:
        with Path(host_path).open("rb") as handle:
            return HostFile(host_path, handle.read())
    except (FileNotFoundError, NotADirectoryError):
        return HostFile(host_path, None)
    except OSError as exc:
        raise ProviderError(f"local: cannot read {host_path}: {exc.strerror}") from exc


class LocalTransport(_FileSystemTransport):
    """This machine: paths are what they say (sipctl's own directory may be moved:
    ``on_this_machine``), programs run through ``/bin/sh -c``."""

    reads_kernel_files = True

    @property
    def can_run(self) -> bool:
        return True

    def _root(self) -> Path:
        return Path("/")

    def _checked(self, host_path: str) -> str:
        return on_this_machine(super()._checked(host_path))

    def _make_bookkeeping_dir(self) -> None:
        private_dir(Path(on_this_machine(BOOKKEEPING_DIR)))

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout: float = 60.0
    ) -> CommandResult:
        self.round_trips += 1
        try:
            done = subprocess.run(
                ["/bin/sh", "-c", command],
                input=stdin if stdin is not None else b"",
                env=dict(self._ctx.env),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ProviderError(
                f"local: {program_name(command)} did not finish within {timeout:g} s"
            ) from exc
        except OSError as exc:
            raise ProviderError(
                f"local: cannot run {program_name(command)}: {exc.strerror}"
            ) from exc
        return CommandResult(
            command,
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )

    def run_programs(
        self, programs: Sequence[Sequence[str]], *, timeout: float = 60.0
    ) -> list[CommandResult]:
        """Each program by ``subprocess`` with its words as the argument vector: no shell."""
        results: list[CommandResult] = []
        for argv in programs:
            self.round_trips += 1
            try:
                done = subprocess.run(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=dict(self._ctx.env),
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise ProviderError(
                    f"local: {argv[0]!r} did not finish within {timeout:g} s"
                ) from exc
            except (FileNotFoundError, NotADirectoryError):
                results.append(CommandResult(quoted(argv), NOT_FOUND, "", "not found"))
                continue
            except OSError as exc:
                raise ProviderError(f"local: cannot run {argv[0]!r}: {exc.strerror}") from exc
            output = done.stdout.decode("utf-8", "replace")
            results.append(CommandResult(quoted(argv), done.returncode, output, ""))
        return results


class DirTransport(_FileSystemTransport):
    """A directory standing in for a host's root: no program runs there."""

    def __init__(self, ref: TargetRef, ctx: RunContext) -> None:
        super().__init__(ref, ctx)
        root = Path(ref.path).expanduser()
        self.root = root if root.is_absolute() else ctx.base_dir / root

    @property
    def can_run(self) -> bool:
        return False

    def _root(self) -> Path:
        return self.root

    def _make_bookkeeping_dir(self) -> None:
        open_bookkeeping_below(self.root).close()

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout: float = 60.0
    ) -> CommandResult:
        raise ProviderError(
            f"{self.ref} is a directory, not a host: it has no programs, so "
            f"{program_name(command)} cannot run there"
        )

    def run_programs(
        self, programs: Sequence[Sequence[str]], *, timeout: float = 60.0
    ) -> list[CommandResult]:
        first = repr(programs[0][0]) if programs and programs[0] else "a program"
        raise ProviderError(
            f"{self.ref} is a directory, not a host: it has no programs, so {first} "
            "cannot run there"
        )


def program_name(command: str) -> str:
    """The program a command line runs, for messages (its arguments may hold secrets)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return repr(words[0]) if words else "an empty command"
