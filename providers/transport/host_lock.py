"""Host locks (an exclusive ``flock`` on a lock file) and the file record of the last apply.

Local and ``dir:`` targets lock a file on this machine with ``fcntl.flock``; an ssh target
runs ``flock`` on the host, on a channel of the pooled connection, and keeps it alive until
its stdin is closed. A flock ends with its process, so a killed run leaves no lock behind
(the holder line in the file is then stale and ignored). The zonefile provider gets the same
local flock on ``<zone file>.sipctl.lock``.

The record of the last apply of a host's layers is ``.sipctl-state.json`` in the same
directory as the lock (read and written through the layer's transport); for a zone file
it is ``<zone file>.sipctl-state.json``.
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

import paramiko

from sipctl.errors import ProviderError, SipctlError
from sipctl.providers.transport.pool import FileWrite
from sipctl.reconciler.gitops.locking import LOCK_FILE, Holder, HostPlace, LockSite, unknown_holder
from sipctl.schemas.targets import parse_target

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.transport.pool import HostTransport
    from sipctl.schemas.loader import LoadedSpec

STATE_FILE = ".sipctl-state.json"
_LOCK_WAIT = 15.0  # seconds to wait for the remote flock to answer


class FileLock:
    """An exclusive flock on a file on this machine, held by this process."""

    def __init__(self, path: Path, key: str, where: str) -> None:
        self.path = path
        self.key = key
        self.where = where
        self._fd: int | None = None

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
        self._transport = transport
        self.path = path
        self.key = f"host:{transport.ref.key}:{path}"
        self.where = f"host lock {path} on {transport.ref}"
        self._channel: paramiko.Channel | None = None

    def _script(self, me: Holder | None) -> str:
        f = shlex.quote(self.path)
        d = shlex.quote(posixpath.dirname(self.path) or "/")
        take = "echo FREE"
        if me is not None:
            line = shlex.quote(me.to_text())
            take = f"printf '%s\\n' {line} > {f}; echo LOCKED; cat >/dev/null; : > {f}"
        return (
            "command -v flock >/dev/null 2>&1 || { echo NOFLOCK; exit 0; }; "
            f"mkdir -p {d} && exec 9>>{f} || {{ echo NOFILE; exit 0; }}; "
            f"if flock -n 9; then {take}; else echo BUSY; cat {f}; fi"
        )

    def _open(self, script: str) -> tuple[paramiko.Channel, str, bytes]:
        from sipctl.providers.transport.ssh import SshTransport

        if not isinstance(self._transport, SshTransport):
            raise ProviderError(f"{self._transport.ref}: this transport cannot hold a lock")
        channel = self._transport.exec_channel(f"/bin/sh -c {shlex.quote(script)}")
        first, more = _read_line(channel, _LOCK_WAIT, str(self._transport.ref))
        return channel, first, more

    def acquire(self, me: Holder) -> Holder | None:
        channel, first, more = self._open(self._script(me))
        if first == "LOCKED":
            self._channel = channel
            return None
        rest = _read_rest(channel, _LOCK_WAIT, more)
        channel.close()
        return self._outcome(first, rest)

    def _outcome(self, first: str, rest: str) -> Holder:
        if first == "BUSY":
            return Holder.from_text(rest) or unknown_holder()
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


def zonefile_lock_site(loaded: LoadedSpec) -> LockSite:
    assert loaded.spec.dns is not None and loaded.spec.dns.file is not None
    zone_file = loaded.resolve_path(loaded.spec.dns.file).resolve()
    path = zone_file.with_name(zone_file.name + ".sipctl.lock")
    return FileLock(path, f"file:{path}", f"zone file lock {path}")


def _lock_path(place: HostPlace) -> str:
    return posixpath.join(place.directory, LOCK_FILE)


def host_lock_site(place: HostPlace, loaded: LoadedSpec, ctx: RunContext) -> LockSite:
    """The lock of ``place``'s host: one per host, in the directory of its first layer."""
    ref = parse_target(place.target)
    if ref.kind == "dir":
        root = loaded.resolve_path(ref.path).resolve()
        path = root / LOCK_FILE
        return FileLock(path, f"file:{path}", f"host lock {path} ({ref})")
    if ref.kind == "local":
        path = Path(_lock_path(place))
        return FileLock(path, f"file:{path}", f"host lock {path} (local)")
    return SshFlock(ctx.transports.get(place.target, place.ssh), _lock_path(place))


# --- the record of the last apply, as a file -------------------------------------------------


class HostStateStore:
    """``.sipctl-state.json`` beside the host lock: every layer of that host, by target."""

    def __init__(self, place: HostPlace, ctx: RunContext) -> None:
        self._transport = ctx.transports.get(place.target, place.ssh)
        ref = parse_target(place.target)
        self.path = (
            "/" + STATE_FILE if ref.kind == "dir" else posixpath.join(place.directory, STATE_FILE)
        )
        self.where = f"{self.path} on {ref}"

    def _read_raw(self) -> bytes | None:
        return self._transport.read_files([self.path])[self.path].content

    def read(self) -> dict[str, Any] | None:
        return _parse(self._read_raw())

    def write(self, record: dict[str, Any]) -> None:
        old = self._read_raw()
        content = (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()
        self._transport.write_files([FileWrite(self.path, content, old, 0o600)])


class LocalStateStore:
    """A JSON file on this machine (beside a zone file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def read(self) -> dict[str, Any] | None:
        try:
            return _parse(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ProviderError(f"cannot read {self.path}: {exc.strerror}") from None

    def write(self, record: dict[str, Any]) -> None:
        temp = self.path.with_name(self.path.name + ".tmp")
        try:
            temp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            temp.replace(self.path)
        except OSError as exc:
            raise ProviderError(f"cannot write {self.path}: {exc.strerror}") from None


def zonefile_state_store(loaded: LoadedSpec) -> LocalStateStore:
    assert loaded.spec.dns is not None and loaded.spec.dns.file is not None
    zone_file = loaded.resolve_path(loaded.spec.dns.file).resolve()
    return LocalStateStore(zone_file.with_name(zone_file.name + ".sipctl-state.json"))


def _parse(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
