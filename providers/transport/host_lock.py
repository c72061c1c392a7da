"""Host locks (an exclusive ``flock`` on a lock file) and the file record of the last apply.

Local and ``dir:`` targets lock a file on this machine with ``fcntl.flock``; an ssh target
runs ``flock`` on the host, on a channel of the pooled connection, and keeps it alive until
its stdin is closed. A flock ends with its process, so a killed run leaves no lock behind
(the holder line in the file is then stale and ignored). The zonefile provider gets the same
local flock on ``<zone file>.sipctl.lock``.

Locks and the record of the last apply live in sipctl's own directory, ``/var/lib/sipctl``
(``providers/bookkeeping.py``): on the host for a host's layers (below the root for a
``dir:`` target), on this machine for a zone file. Each is named after what it belongs to
(the layers' managed directory, the zone file), so two specs that manage different
directories of one host keep apart. A record left by an older sipctl in the managed
directory itself (``.sipctl-state.json``, ``.sipctl.lock``) is still read, and moved on the
next apply that records its state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import posixpath
import select
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipctl.errors import ProviderError, SipctlError
from sipctl.json_text import read_json
from sipctl.providers.bookkeeping import (
    BOOKKEEPING_DIR,
    local_state_dir,
    on_this_machine,
    open_bookkeeping_below,
    open_local_dir,
    open_private_dir,
    private_dir_script,
    read_private_file,
    record_name,
    write_private_file,
)
from sipctl.providers.transport.pool import FileWrite
from sipctl.reconciler.gitops.locking import LOCK_FILE, Holder, HostPlace, LockSite, unknown_holder
from sipctl.schemas.targets import parse_target

if TYPE_CHECKING:
    from collections.abc import Sequence

    import paramiko

    from sipctl.providers.base import RunContext
    from sipctl.providers.transport.batch import Fetched, HostRead
    from sipctl.providers.transport.pool import HostTransport
    from sipctl.schemas.loader import LoadedSpec

STATE_FILE = ".sipctl-state.json"
_LOCK_WAIT = 15.0  # seconds to wait for the remote flock to answer


class FileLock:
    """An exclusive flock on a file on this machine, held by this process.

    ``root`` given: the lock is in ``BOOKKEEPING_DIR`` below that ``dir:`` root; else its
    directory is a private one of this machine (created 0700). A link is never followed.
    """

    def __init__(self, path: Path, key: str, where: str, root: Path | None = None) -> None:
        self.path = path
        self.key = key
        self.where = where
        self.taken_over: Holder | None = None  # a flock ends with its holder: never taken over
        self.ends_with_holder = True
        self.public = False  # in sipctl's root-only directory
        self._root = root
        self._fd: int | None = None

    def _open(self) -> int:
        try:
            if self._root is not None:
                with open_bookkeeping_below(self._root) as directory:
                    return directory.open_lock(self.path.name)
            with open_private_dir(self.path.parent) as directory:
                return directory.open_lock(self.path.name)
        except OSError as exc:
            raise ProviderError(
                f"cannot open the lock file {self.path}: {exc.strerror or exc}"
            ) from None

    def _read_holder(self, fd: int) -> Holder:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace")
        return Holder.from_text(text) or unknown_holder()

    def acquire(self, me: Holder) -> Holder | None:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            return holder
        os.ftruncate(fd, 0)
        os.pwrite(fd, (me.to_text() + "\n").encode(), 0)
        self._fd = fd
        return None

    def release(self, me: Holder) -> str | None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor ends the flock
            self._fd = None
        return None

    def holder(self) -> Holder | None:
        if not self.path.exists():
            return None
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self._read_holder(fd)
        finally:
            os.close(fd)
        return None  # nobody holds it (a line left by a killed run is stale)

    def force_unlock(self, lock_id: str) -> str:
        current = self.holder()
        if current is None:
            return f"{self.where}: not locked any more (a flock ends with its process)"
        raise SipctlError(
            f"{self.where} is held by a live process: {current.describe()}. A flock cannot be "
            "broken from outside and ends with its process: stop that run instead"
        )


class SshFlock:
    """An exclusive flock on the host, held by ``flock`` on an SSH channel until stdin closes."""

    def __init__(self, transport: HostTransport, path: str) -> None:
        from sipctl.providers.transport.ssh import SshTransport

        if not isinstance(transport, SshTransport):
            raise ProviderError(f"{transport.ref}: this transport cannot hold a lock")
        self._transport = transport
        self.path = path
        self.key = f"host:{transport.ref.key}:{path}"
        self.where = f"host lock {path} on {transport.ref}"
        self.taken_over: Holder | None = None  # a flock ends with its holder: never taken over
        self.ends_with_holder = True
        self.public = False  # in sipctl's root-only directory
        self._channel: paramiko.Channel | None = None

    def _script(self, me: Holder | None) -> str:
        f = shlex.quote(self.path)
        take = "echo FREE"
        if me is not None:
            # by name: the directory is root's own (checked first), nobody else can swap it
            line = shlex.quote(me.to_text())
            take = f"printf '%s\\n' {line} > {f}; echo LOCKED; cat >/dev/null; : > {f}"
        return (
            "command -v flock >/dev/null 2>&1 || { echo NOFLOCK; exit 0; }; "
            + private_dir_script(posixpath.dirname(self.path) or "/")
            + f"[ -L {f} ] && {{ echo LINK; exit 0; }}; "
            f"exec 9>>{f} || {{ echo NOFILE; exit 0; }}; "
            f"if flock -n 9; then {take}; else echo BUSY; cat {f}; fi"
        )

    def _open(self, script: str) -> tuple[paramiko.Channel, str, bytes]:
        channel = self._transport.exec_channel(f"/bin/sh -c {shlex.quote(script)}")
        first, more = _read_line(channel, _LOCK_WAIT, str(self._transport.ref))
        return channel, first, more

    def acquire(self, me: Holder) -> Holder | None:
        channel, first, more = self._open(self._script(me))
        if first == "LOCKED":
            self._channel = channel
            # The script made sure of the lock's directory first (root's own, 0700, no link):
            # the run's later writes there need not ask again (``ensure_bookkeeping_dir``).
            self._transport.private_dirs.add(posixpath.dirname(self.path) or "/")
            return None
        rest = _read_rest(channel, _LOCK_WAIT, more)
        channel.close()
        return self._outcome(first, rest)

    def _outcome(self, first: str, rest: str) -> Holder:
        if first == "BUSY":
            return Holder.from_text(rest) or unknown_holder()
        if first in ("LINK", "NOTPRIVATE"):
            raise ProviderError(
                f"{self._transport.ref}: {self.path} or its directory is a symbolic link or "
                "not root's own (mode 0700); sipctl takes no lock there",
                hint=f"remove {posixpath.dirname(self.path)} on the host: sipctl recreates it",
            )
        if first == "NOFLOCK":
            raise ProviderError(
                f"{self._transport.ref}: the host has no 'flock' program (util-linux); "
                "install it so sipctl can lock the host"
            )
        raise ProviderError(
            f"{self._transport.ref}: cannot create the lock file {self.path} "
            f"({first or 'no answer'})"
        )

    def release(self, me: Holder) -> str | None:
        channel, self._channel = self._channel, None
        if channel is None:
            return None
        import paramiko  # loaded with the channel; not at import (a local run has no SSH)

        try:
            channel.shutdown_write()  # cat sees end of input: the file is cleared, flock exits
            deadline = time.monotonic() + _LOCK_WAIT
            while not channel.exit_status_ready() and time.monotonic() < deadline:
                select.select([channel], [], [], 0.5)
        except (paramiko.SSHException, OSError):
            pass  # the connection is gone: so is the remote flock
        finally:
            channel.close()
        return None

    def holder(self) -> Holder | None:
        channel, first, more = self._open(self._script(None))
        rest = _read_rest(channel, _LOCK_WAIT, more)
        channel.close()
        if first == "FREE":
            return None
        return self._outcome(first, rest)

    def force_unlock(self, lock_id: str) -> str:
        current = self.holder()
        if current is None:
            return f"{self.where}: not locked any more (a flock ends with its process)"
        raise SipctlError(
            f"{self.where} is held by a live process: {current.describe()}. A flock ends with "
            "its process (or its SSH session): stop that run instead"
        )


def _read_line(channel: paramiko.Channel, timeout: float, where: str) -> tuple[str, bytes]:
    """The first line the channel sends, and what came after it."""
    buffer = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProviderError(f"{where}: the host lock did not answer within {timeout:g} s")
        select.select([channel], [], [], min(left, 0.5))
        if channel.recv_ready():
            chunk = channel.recv(4096)
            if not chunk:
                break
            buffer += chunk
        elif channel.exit_status_ready() and not channel.recv_ready():
            break
    first, _, more = buffer.partition(b"\n")
    return first.decode("utf-8", "replace").strip(), more


def _read_rest(channel: paramiko.Channel, timeout: float, out: bytes) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if channel.recv_ready():
            out += channel.recv(65536)
            continue
        if channel.exit_status_ready():
            break
        select.select([channel], [], [], 0.2)
    return out.decode("utf-8", "replace")


def _zone_file(loaded: LoadedSpec) -> Path:
    assert loaded.spec.dns is not None and loaded.spec.dns.file is not None
    return loaded.resolve_path(loaded.spec.dns.file).resolve()


def zonefile_lock_site(loaded: LoadedSpec) -> LockSite:
    zone_file = _zone_file(loaded)
    path = local_state_dir() / record_name(str(zone_file), ".lock")
    return FileLock(path, f"file:{path}", f"zone file lock {path} (for {zone_file})")


def _record_base(place: HostPlace) -> str:
    """Where a host's lock and record live, without the suffix."""
    return posixpath.join(BOOKKEEPING_DIR, record_name(place.directory, ""))


# One lock per host, whatever layers and directories a run manages there: a run takes it
# once and releases it once (each layer's own lock cost a round trip each way over SSH).
HOST_LOCK_NAME = "host.lock"


def host_lock_site(place: HostPlace, loaded: LoadedSpec, ctx: RunContext) -> LockSite:
    """The lock of ``place``'s host, ``BOOKKEEPING_DIR/host.lock`` (the records of the last
    apply stay one per managed directory)."""
    ref = parse_target(place.target)
    host_path = posixpath.join(BOOKKEEPING_DIR, HOST_LOCK_NAME)
    if ref.kind == "dir":
        root = loaded.resolve_path(ref.path).resolve()
        path = root / host_path.lstrip("/")
        return FileLock(path, f"file:{path}", f"host lock {path} ({ref})", root=root)
    if ref.kind == "local":
        path = Path(on_this_machine(host_path))
        return FileLock(path, f"file:{path}", f"host lock {path} (local)")
    return SshFlock(ctx.transports.get(place.target, place.ssh), host_path)


# --- the record of the last apply, as a file -------------------------------------------------


class HostStateStore:
    """The record of every layer of one host (by target), in ``BOOKKEEPING_DIR`` on the host.

    A record an older sipctl kept in the managed directory is read when there is no new one,
    and removed by the next ``write`` (which writes it at the new place)."""

    def __init__(self, place: HostPlace, ctx: RunContext) -> None:
        self._transport = ctx.transports.get(place.target, place.ssh)
        ref = parse_target(place.target)
        self.target = place.target
        self.path = _record_base(place) + ".state.json"
        old_directory = "/" if ref.kind == "dir" else place.directory
        self.old_paths = [posixpath.join(old_directory, n) for n in (STATE_FILE, LOCK_FILE)]
        self.where = f"{self.path} on {ref}"
        self.public = False  # root's file on the host
        self._raw: dict[str, bytes | None] | None = None  # what ``read`` found

    def record_read(self) -> HostRead:
        """What reading the record asks of the host (a plan fetches it with the layers'
        reads of the host: ``providers/transport/batch.py``)."""
        from sipctl.providers.transport.batch import HostRead

        return HostRead(self._transport, files=(self.path, *self.old_paths))

    def _take_raw(self, fetched: Fetched) -> dict[str, bytes | None]:
        """The record's files as ``fetched`` found them: what a ``write`` then expects."""
        self._raw = {path: fetched.files[path].content for path in (self.path, *self.old_paths)}
        return self._raw

    def _read_raw(self) -> dict[str, bytes | None]:
        from sipctl.providers.transport.batch import fetch

        (fetched,) = fetch([self.record_read()])
        return self._take_raw(fetched)

    def read(self) -> dict[str, Any] | None:
        return self._parsed(self._read_raw())

    def read_from(self, fetched: Fetched) -> dict[str, Any] | None:
        """``read``, from what ``record_read`` fetched."""
        return self._parsed(self._take_raw(fetched))

    def _parsed(self, raw: dict[str, bytes | None]) -> dict[str, Any] | None:
        current = raw[self.path]
        return _parse(current if current is not None else raw[self.old_paths[0]])

    def write(self, record: dict[str, Any]) -> None:
        """Replace the record; what ``read`` found is what the write expects (else it is
        read now): a record changed in between refuses the write, as any stale file does."""
        raw = self._raw if self._raw is not None else self._read_raw()
        self._raw = None
        content = (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()
        self._transport.ensure_bookkeeping_dir()
        writes = [FileWrite(self.path, content, raw[self.path], 0o600)]
        writes += [FileWrite(p, None, raw[p]) for p in self.old_paths if raw[p] is not None]
        self._transport.write_files(writes)


class LocalStateStore:
    """A JSON file in a private directory of this machine (the record of a zone file's
    domain).

    ``old_paths``: where older sipctls kept it; the first there is read when there is no new
    record, and all are removed by the next ``write``."""

    def __init__(self, path: Path, old_paths: Sequence[Path] = ()) -> None:
        self.path = path
        self.old_paths = tuple(old_paths)
        self.where = str(path)
        self.public = False  # a private file of this machine

    def read(self) -> dict[str, Any] | None:
        try:
            for path in (self.path, *self.old_paths):
                raw = read_private_file(path)
                if raw is not None:
                    return _parse(raw)
            return None
        except OSError as exc:
            raise ProviderError(f"cannot read {self.path}: {exc.strerror}") from None

    def write(self, record: dict[str, Any]) -> None:
        content = (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()
        try:
            write_private_file(self.path, content)
            for old in self.old_paths:
                with open_local_dir(old.parent) as directory:
                    directory.unlink(old.name)
        except OSError as exc:
            raise ProviderError(f"cannot write {self.path}: {exc.strerror}") from None

    def forget(self) -> None:
        """Remove the record (a departed customer's zone: nothing of it is applied any more)."""
        for path in (self.path, *self.old_paths):
            try:
                with open_local_dir(path.parent) as directory:
                    directory.unlink(path.name)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ProviderError(f"cannot remove {path}: {exc.strerror}") from None


def zonefile_state_store(loaded: LoadedSpec) -> LocalStateStore:
    """The record of the last apply of ``loaded``'s domain in its zone file: one per domain,
    as several domains may live in one zone file (one record per file had each domain's
    apply replace the others', and their drift compare with it)."""
    zone_file = _zone_file(loaded)
    path = local_state_dir() / record_name(f"{zone_file}/{loaded.spec.domain}", ".state.json")
    # the one record of the zone file, then beside it (older sipctls)
    older = local_state_dir() / record_name(str(zone_file), ".state.json")
    return LocalStateStore(
        path, (older, zone_file.with_name(zone_file.name + ".sipctl-state.json"))
    )


def _parse(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = read_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
