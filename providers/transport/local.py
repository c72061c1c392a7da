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
import os
import posixpath
import shlex
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.errors import ProviderError, StalePlanError
from sipctl.providers.transport.pool import (
    BACKUP_SUFFIX,
    CommandResult,
    FileWrite,
    HostFile,
    HostTransport,
)
from sipctl.schemas.targets import TargetRef

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext

_DEFAULT_MODE = 0o644
_DIR_MODE = 0o755


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
    """Files on a file system this process can reach directly; subclasses map the paths."""

    def __init__(self, ref: TargetRef, ctx: RunContext) -> None:
        self.ref = ref
        self._ctx = ctx
        self.connections = 0
        self.round_trips = 0
        self._last_writes: dict[str, _Undo] = {}

    @property
    def can_run(self) -> bool:
        raise NotImplementedError

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout: float = 60.0
    ) -> CommandResult:
        raise NotImplementedError

    # -- paths -------------------------------------------------------------------------------

    def _local_path(self, host_path: str) -> Path:
        """Where ``host_path`` (absolute, on the target) is on this machine."""
        raise NotImplementedError

    def _checked(self, host_path: str) -> str:
        if not host_path.startswith("/") or "\x00" in host_path:
            raise ProviderError(f"{self.ref}: {host_path!r} is not an absolute path")
        return posixpath.normpath(host_path)

    # -- reading -----------------------------------------------------------------------------

    def read_files(self, paths: Sequence[str]) -> dict[str, HostFile]:
        self.round_trips += 1
        return {path: self._read_one(path) for path in paths}

    def _read_one(self, host_path: str) -> HostFile:
        local = self._local_path(host_path)
        try:
            info = local.stat()
            if not stat.S_ISREG(info.st_mode):
                raise ProviderError(f"{self.ref}: {host_path} is not a regular file")
            content = local.read_bytes()
        except FileNotFoundError:
            return HostFile(host_path, None)
        except NotADirectoryError:
            return HostFile(host_path, None)
        except OSError as exc:
            raise ProviderError(f"{self.ref}: cannot read {host_path}: {exc.strerror}") from exc
        return HostFile(host_path, content, info.st_mtime, stat.S_IMODE(info.st_mode))

    # -- writing -----------------------------------------------------------------------------

    def write_files(self, writes: Sequence[FileWrite]) -> None:
        """Check every ``expected``; then replace every changed file atomically.

        Nothing is written when any file differs from what the plan saw. A file whose new
        content equals its current content is not touched (its mtime stays).
        """
        self.round_trips += 1
        self._last_writes = {}
        self._check_expected(writes)
        todo = [w for w in writes if w.content != w.expected]
        temps: dict[str, Path] = {}
        try:
            for write in todo:
                if write.content is not None:
                    temps[write.path] = self._write_temp(write)
            # Checked again right before the renames: the window in which an edit on the host
            # can be lost is now the few microseconds of the rename loop.
            self._check_expected(todo)
            for write in todo:
                self._replace(write, temps.pop(write.path, None))
        except BaseException:
            for temp in temps.values():
                temp.unlink(missing_ok=True)
            if self._last_writes:
                done = list(self._last_writes)
                with contextlib.suppress(ProviderError):
                    self.restore_backups(done)
            raise

    def _check_expected(self, writes: Sequence[FileWrite]) -> None:
        for write in writes:
            current = self._read_one(self._checked(write.path)).content
            if current != write.expected:
                raise StalePlanError(stale_message(str(self.ref), write.path))
            if write.content != write.expected and self._local_path(write.path).is_symlink():
                raise ProviderError(symlink_message(str(self.ref), write.path))

    def _write_temp(self, write: FileWrite) -> Path:
        assert write.content is not None
        local = self._local_path(write.path)
        self._make_parents(local.parent)
        try:
            old = local.stat()
        except (FileNotFoundError, NotADirectoryError):
            old = None
        try:
            fd, name = tempfile.mkstemp(
                prefix=f".{local.name}.", suffix=".sipctl-tmp", dir=local.parent
            )
        except OSError as exc:
            raise ProviderError(
                f"{self.ref}: cannot write in {posixpath.dirname(write.path)}: {exc.strerror}"
            ) from exc
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(write.content)
                handle.flush()
                os.fsync(handle.fileno())
            if old is not None:
                mode, uid, gid = stat.S_IMODE(old.st_mode), old.st_uid, old.st_gid
                if write.mode is not None:
                    mode = write.mode
            else:
                parent = local.parent.stat()
                mode = write.mode if write.mode is not None else _DEFAULT_MODE
                uid, gid = parent.st_uid, parent.st_gid
            _set_owner(temp, uid, gid, required=old is not None, what=write.path, ref=self.ref)
            temp.chmod(mode)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise ProviderError(f"{self.ref}: cannot write {write.path}: {exc.strerror}") from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp

    def _make_parents(self, directory: Path) -> None:
        if directory.is_dir():
            return
        self._make_parents(directory.parent)
        try:
            directory.mkdir(mode=_DIR_MODE)
            parent = directory.parent.stat()
            _set_owner(
                directory, parent.st_uid, parent.st_gid, required=False, what="", ref=self.ref
            )
        except FileExistsError:
            if not directory.is_dir():
                raise ProviderError(
                    f"{self.ref}: cannot write below {directory}: it is not a directory"
                ) from None
        except OSError as exc:
            raise ProviderError(
                f"{self.ref}: cannot create directory {directory}: {exc.strerror}"
            ) from exc

    def _replace(self, write: FileWrite, temp: Path | None) -> None:
        local = self._local_path(write.path)
        backup = local.with_name(local.name + BACKUP_SUFFIX)
        existed = write.expected is not None
        try:
            if existed:
                _keep_backup(local, backup)
            if temp is not None:
                temp.replace(local)
            else:
                local.unlink(missing_ok=True)
            _fsync_dir(local.parent)
        except OSError as exc:
            raise ProviderError(f"{self.ref}: cannot replace {write.path}: {exc.strerror}") from exc
        self._last_writes[write.path] = _Undo(write.path, existed)

    def restore_backups(self, paths: Sequence[str]) -> None:
        """Undo the last ``write_files`` for ``paths``; paths it did not change are left alone."""
        failed: list[str] = []
        for path in paths:
            undo = self._last_writes.pop(path, None)
            if undo is None:
                continue
            local = self._local_path(path)
            backup = local.with_name(local.name + BACKUP_SUFFIX)
            try:
                if undo.existed:
                    backup.replace(local)
                else:
                    local.unlink(missing_ok=True)
                _fsync_dir(local.parent)
            except OSError as exc:
                failed.append(f"{path} ({exc.strerror})")
        if failed:
            raise ProviderError(f"{self.ref}: could not restore {', '.join(failed)}")

    def fresh(self) -> HostTransport:
        return type(self)(self.ref, self._ctx)

    def close(self) -> None:
        pass


def _keep_backup(local: Path, backup: Path) -> None:
    """Make ``backup`` a copy of ``local`` without a moment in which ``local`` is missing."""
    link = backup.with_name(backup.name + ".tmp")
    link.unlink(missing_ok=True)
    try:
        link.hardlink_to(local)
    except OSError:
        # Some file systems (and some mounts) refuse hard links: copy instead.
        link.write_bytes(local.read_bytes())
        info = local.stat()
        link.chmod(stat.S_IMODE(info.st_mode))
        with contextlib.suppress(PermissionError):
            os.chown(link, info.st_uid, info.st_gid)
    link.replace(backup)


def _set_owner(
    path: Path, uid: int, gid: int, *, required: bool, what: str, ref: TargetRef
) -> None:
    info = path.stat()
    if (info.st_uid, info.st_gid) == (uid, gid):
        return
    try:
        os.chown(path, uid, gid)
    except PermissionError as exc:
        # Keeping the owner of an existing file matters (a daemon may read it as its own
        # user); a new file merely inherits ours when we may not give it the parent's.
        if required:
            raise ProviderError(f"{ref}: cannot keep the owner of {what}: {exc.strerror}") from exc


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalTransport(_FileSystemTransport):
    """This machine: paths are what they say, programs run through ``/bin/sh -c``."""

    @property
    def can_run(self) -> bool:
        return True

    def _local_path(self, host_path: str) -> Path:
        return Path(self._checked(host_path))

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


class DirTransport(_FileSystemTransport):
    """A directory standing in for a host's root: no program runs there."""

    def __init__(self, ref: TargetRef, ctx: RunContext) -> None:
        super().__init__(ref, ctx)
        root = Path(ref.path).expanduser()
        self.root = root if root.is_absolute() else ctx.base_dir / root

    @property
    def can_run(self) -> bool:
        return False

    def _local_path(self, host_path: str) -> Path:
        # normpath has removed every "..", and a leading "/" is stripped: the result is
        # always below the root.
        relative = self._checked(host_path).lstrip("/")
        return self.root / relative if relative else self.root

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout: float = 60.0
    ) -> CommandResult:
        raise ProviderError(
            f"{self.ref} is a directory, not a host: it has no programs, so "
            f"{program_name(command)} cannot run there"
        )


def program_name(command: str) -> str:
    """The program a command line runs, for messages (its arguments may hold secrets)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return repr(words[0]) if words else "an empty command"
