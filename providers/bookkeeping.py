"""sipctl's own bookkeeping directory, and the one way sipctl opens a file for writing.

sipctl runs as root, and many directories it writes in belong to a service account
(``/etc/asterisk`` is the asterisk user's on Debian). A file name in such a directory can be
replaced by a symbolic link at any moment, so a plain ``open(path, "w")`` by root writes
wherever that account wants. Two rules close this:

- sipctl's own records (host locks, the record of the last apply, the crash log, an ACME
  account key) live in ``/var/lib/sipctl`` (``BOOKKEEPING_DIR``: root's, mode 0700), or
  for a user who is not root in ``$XDG_STATE_HOME/sipctl`` (``~/.local/state/sipctl``);
  ``SIPCTL_STATE_DIR`` moves this machine's, also as a managed host (target ``local``:
  ``on_this_machine``); another host's stays where it is.
  ``private_dir`` creates such a directory and refuses one that is a link or that others
  may write in. On a ``dir:`` target the same directory sits below the target's root.
- Every write goes through ``SafeDir``: a directory opened by descriptor, walking down from
  a root without following links (``dir:`` targets refuse every linked directory; a local
  path follows only links that root or we own), and every file in it opened relative to that
  descriptor with ``O_NOFOLLOW``; new files (temporaries, backups) with ``O_EXCL``. So a
  link planted anywhere on the way is refused with ``SymlinkRefused``, never written through.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import re
import secrets
import shlex
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from sipctl.errors import ProviderError

BOOKKEEPING_DIR = "/var/lib/sipctl"
"""sipctl's own directory on every host it manages (and on this machine, for root)."""

_PRIVATE_MODE = 0o700
_NEW_DIR_MODE = 0o755
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW_DIR = _OPEN_DIR | os.O_NOFOLLOW


class SymlinkRefused(ProviderError):
    """A path sipctl was to write through is (or passes through) a symbolic link."""


def symlink_refused(path: str, *, where: str = "", directory: bool = False) -> SymlinkRefused:
    what = "a directory on the way to it" if directory else "it"
    prefix = f"{where}: " if where else ""
    return SymlinkRefused(
        f"{prefix}{path}: {what} is a symbolic link; sipctl writes nothing through a link "
        "(another account could point it at any file root can write)",
        hint="replace the link by the real directory or file, or use the path it points to",
    )


# --- where sipctl keeps its own records -------------------------------------------------------


STATE_DIR_ENV = "SIPCTL_STATE_DIR"

# The most sipctl reads of one file on a target (a dir: target's extensions.conf, a zone
# file): the guest dialplan of 10,000 users is 2.5 MB, so 64 MiB is ample for any real PBX
# or zone, and a file named by mistake (a log, a disk image, an 8 GB file) is refused instead
# of read into memory until it ends.
MAX_READ_BYTES = 64 << 20


def local_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """sipctl's bookkeeping directory on this machine (not created here; see ``private_dir``):
    ``SIPCTL_STATE_DIR`` when set to an absolute path (a CI job's own, or a test's)."""
    env = os.environ if env is None else env
    chosen = env.get(STATE_DIR_ENV) or ""
    if chosen.startswith("/"):
        return Path(chosen)
    if os.geteuid() == 0:
        return Path(BOOKKEEPING_DIR)
    base = env.get("XDG_STATE_HOME") or ""
    if not base.startswith("/"):  # the XDG rule: a relative value is ignored
        base = str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "sipctl"


def on_this_machine(host_path: str, env: Mapping[str, str] | None = None) -> str:
    """Where ``host_path`` is when the host is this machine (target ``local``): a path in
    ``BOOKKEEPING_DIR`` is in ``SIPCTL_STATE_DIR`` when that is set (this machine keeps one
    directory of sipctl's own, as runner and as managed host); any other path is itself."""
    env = os.environ if env is None else env
    chosen = env.get(STATE_DIR_ENV) or ""
    if not chosen.startswith("/"):
        return host_path
    if host_path == BOOKKEEPING_DIR or host_path.startswith(BOOKKEEPING_DIR + "/"):
        return chosen.rstrip("/") + host_path[len(BOOKKEEPING_DIR) :]
    return host_path


def check_local_state_dir(env: Mapping[str, str] | None = None, *, writes: bool = True) -> None:
    """Refuse, before a run reads or plans anything, a bookkeeping directory on this machine
    that ``private_dir`` would refuse at the first record, after a plan had been shown (a
    regular file, a link, another user's or a read-only directory, a relative
    ``SIPCTL_STATE_DIR``, or one that cannot be made). Nothing is made here: a run with
    nothing to record writes nothing. ``writes`` False (drift, which only reads records):
    a directory this user cannot write or make is no problem."""
    from sipctl.errors import SpecError

    env = os.environ if env is None else env
    chosen = env.get(STATE_DIR_ENV) or ""
    where = STATE_DIR_ENV if chosen else "sipctl's state directory"
    fix = (
        f"point {STATE_DIR_ENV} at a directory of this user's (sipctl creates a missing one, "
        "mode 0700), or unset it"
        if chosen
        else f"remove it (sipctl recreates it) or set {STATE_DIR_ENV} to a directory of its own"
    )
    if chosen and not chosen.startswith("/"):
        raise SpecError(
            f"{where}={chosen} is a relative path; sipctl keeps its records (locks, the "
            "record of each apply) in an absolute one, whatever the working directory",
            hint=f"give the whole path, like {STATE_DIR_ENV}=$PWD/{chosen}",
        )
    path = local_state_dir(env)
    try:
        info: os.stat_result | None = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    except OSError as exc:
        raise SpecError(f"{where}: cannot read {path}: {exc.strerror}", hint=fix) from None
    if info is not None:
        problem = _private_dir_problem(path, info)
        if problem is None and writes and not os.access(path, os.W_OK | os.X_OK):
            problem = f"{path} is not writable by this user"
    elif not chosen:  # the default, made at the first record (a run may never need it)
        return
    else:  # made at the first record: where it would be made (links followed, as mkdir)
        parent = path.parent
        while True:
            try:
                info = parent.stat()
                break
            except (FileNotFoundError, NotADirectoryError):
                parent = parent.parent
        problem = None
        if not stat.S_ISDIR(info.st_mode):
            problem = f"{parent}, on the way to {path}, is {_file_kind(info)}, not a directory"
        elif writes and not os.access(parent, os.W_OK | os.X_OK):
            problem = f"{path} does not exist and this user cannot create it in {parent}"
    if problem is not None:
        raise SpecError(
            f"{where}: {problem}; sipctl keeps its records (locks, the record of each apply) "
            "in a directory of its own, mode 0700",
            hint=fix,
        )


def _file_kind(info: os.stat_result) -> str:
    if stat.S_ISREG(info.st_mode):
        return "a regular file"
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    return "a special file (a device, a socket or a pipe)"


def _private_dir_problem(path: Path, info: os.stat_result) -> str | None:
    """Why sipctl may not keep its records in the existing ``path`` (None: it may). The one
    rule of ``private_dir`` and of the early ``check_local_state_dir``."""
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link; sipctl writes nothing through a link"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is {_file_kind(info)}, not a directory"
    if info.st_uid != os.geteuid():
        return f"{path} belongs to user id {info.st_uid}, not to this user"
    return None


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if missing; refuse it if it is a link or others may write it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=_PRIVATE_MODE)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise symlink_refused(str(path))
    problem = _private_dir_problem(path, info)
    if problem is not None:
        raise ProviderError(
            f"{problem}; sipctl keeps its records only in a directory of its own",
            hint="remove it (sipctl recreates it) or give it to this user, mode 0700",
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(_PRIVATE_MODE)
    return path


def record_name(directory: str, suffix: str) -> str:
    """A file name in the bookkeeping directory for something that belonged to ``directory``.

    Readable (``etc-asterisk``) and unique (a hash of the full path), so that two specs that
    manage different directories on one host keep separate locks and records.
    """
    readable = re.sub(r"[^A-Za-z0-9._]+", "-", directory.strip("/"))[-60:].strip("-.") or "root"
    digest = hashlib.sha256(directory.encode()).hexdigest()[:8]
    return f"{readable}.{digest}{suffix}"


# --- the safe-open primitives ---------------------------------------------------------------------


class SafeDir:
    """A directory held open by descriptor; every file operation is relative to it.

    Open one with ``SafeDir.walk``. Use it as a context manager (it closes the descriptor).
    """

    def __init__(self, fd: int, shown: str) -> None:
        self.fd = fd
        self.shown = shown  # the directory as messages name it

    @classmethod
    def walk(
        cls,
        root: Path,
        parts: Sequence[str],
        *,
        create: bool = False,
        trust_owned_links: bool = False,
        shown: str | None = None,
    ) -> SafeDir:
        """Open ``root/parts...`` without following a link below ``root``.

        ``create`` makes missing directories (0755, owned like their parent).
        ``trust_owned_links`` follows a linked directory that root or this user owns (the
        admin's own layout on this machine); every other link raises ``SymlinkRefused``.
        ``FileNotFoundError`` when a directory is missing and ``create`` is False.
        """
        fd = os.open(root, _OPEN_DIR)
        walked = str(root).rstrip("/")
        try:
            for part in parts:
                if part in ("", ".", ".."):
                    raise ProviderError(f"{walked}/{part}: not a plain path component")
                walked = f"{walked}/{part}"
                child = _open_child_dir(fd, part, walked, create, trust_owned_links)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, shown or walked or "/")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def path(self, name: str) -> str:
        return f"{self.shown.rstrip('/')}/{name}"

    # -- looking ---------------------------------------------------------------------------

    def lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def is_link(self, name: str) -> bool:
        info = self.lstat(name)
        return info is not None and stat.S_ISLNK(info.st_mode)

    def read(self, name: str) -> tuple[bytes, os.stat_result] | None:
        """The content and status of regular file ``name`` (None: missing); a link, and a file
        larger than MAX_READ_BYTES (``FileTooLarge``), are refused.
        Opened without waiting (``O_NONBLOCK``): a FIFO put there by anyone who can write the
        directory is refused as no regular file, where an open that waits for a writer would
        hang the run for ever (it changes nothing for a regular file)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(name, flags, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise symlink_refused(self.path(name)) from None
            raise
        from sipctl.schemas.admin_files import read_open_file

        with os.fdopen(fd, "rb"):
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ProviderError(f"{self.path(name)} is not a regular file")
            return read_open_file(fd, self.path(name), MAX_READ_BYTES), info

    # -- writing ---------------------------------------------------------------------------

    def create_temp(self, name: str, content: bytes, mode: int, owner: tuple[int, int]) -> str:
        """A new file (``O_EXCL``) beside ``name`` holding ``content``, synced; returns its name."""
        fd, temp = self._exclusive(f".{name}.", ".sipctl-tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                _fchown(handle.fileno(), *owner)
                os.fchmod(handle.fileno(), mode)
                os.fsync(handle.fileno())
        except BaseException:
            self.unlink(temp)
            raise
        return temp

    def copy_to_temp(self, name: str) -> str:
        """A new file (``O_EXCL``) with the content, mode and owner of ``name`` (a hard link
        where the file system allows one, else a copy)."""
        for _ in range(8):
            temp = f".{name}.{secrets.token_hex(6)}.sipctl-tmp"
            try:
                os.link(name, temp, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
                return temp
            except FileExistsError:
                continue
            except OSError:
                break
        found = self.read(name)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", self.path(name))
        content, info = found
        owner = (info.st_uid, info.st_gid)
        return self.create_temp(name, content, stat.S_IMODE(info.st_mode), owner)

    def _exclusive(self, prefix: str, suffix: str) -> tuple[int, str]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        for _ in range(64):
            temp = f"{prefix}{secrets.token_hex(6)}{suffix}"
            try:
                return os.open(temp, flags, 0o600, dir_fd=self.fd), temp
            except FileExistsError:
                continue
        raise ProviderError(f"cannot create a temporary file in {self.shown}")

    def rename(self, src: str, dst: str) -> None:
        """Atomic; a link at ``dst`` is replaced, never followed (callers refuse one first)."""
        os.rename(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def fsync(self) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self.fd)

    def replace(self, name: str, content: bytes, mode: int, owner: tuple[int, int]) -> None:
        """Write ``name`` whole and atomically (temp file, then rename); a link is refused."""
        if self.is_link(name):
            raise symlink_refused(self.path(name))
        temp = self.create_temp(name, content, mode, owner)
        try:
            self.rename(temp, name)
        except BaseException:
            self.unlink(temp)
            raise
        self.fsync()

    def open_lock(self, name: str) -> int:
        """A descriptor of lock file ``name`` (created 0600), for ``flock``; a link is refused."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, 0o600, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise symlink_refused(self.path(name)) from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ProviderError(f"{self.path(name)} is not a regular file")
        return fd

    def append(self, name: str, text: str, mode: int = 0o600) -> None:
        """Append to ``name`` (created with ``mode``); a link or another's file is refused."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, mode, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise symlink_refused(self.path(name)) from None
            raise
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                raise ProviderError(f"{self.path(name)} is not a file of this user")
            handle.write(text)


def _open_child_dir(fd: int, part: str, walked: str, create: bool, trust_owned: bool) -> int:
    for _ in range(3):
        try:
            return os.open(part, _NOFOLLOW_DIR, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise FileNotFoundError(errno.ENOENT, "no such directory", walked) from None
            parent = os.fstat(fd)
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, _NEW_DIR_MODE, dir_fd=fd)
                with contextlib.suppress(PermissionError):
                    os.chown(part, parent.st_uid, parent.st_gid, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode):
                raise ProviderError(f"{walked} is not a directory") from None
            if not (trust_owned and info.st_uid in (0, os.geteuid())):
                raise symlink_refused(walked, directory=True) from None
            return os.open(part, _OPEN_DIR, dir_fd=fd)
    raise ProviderError(f"{walked} keeps changing; nothing was written there")


def _fchown(fd: int, uid: int, gid: int) -> None:
    info = os.fstat(fd)
    if (info.st_uid, info.st_gid) != (uid, gid):
        with contextlib.suppress(PermissionError):  # not root: the file stays ours
            os.fchown(fd, uid, gid)


def open_local_dir(path: Path, *, create: bool = False) -> SafeDir:
    """A directory on this machine: links that root or this user owns are followed."""
    absolute = Path(posixpath.normpath(path.absolute()))
    return SafeDir.walk(
        Path("/"), absolute.parts[1:], create=create, trust_owned_links=True, shown=str(absolute)
    )


@contextlib.contextmanager
def open_private_dir(path: Path) -> Iterator[SafeDir]:
    """``private_dir(path)`` held open by descriptor."""
    private_dir(path)
    with open_local_dir(path) as directory:
        yield directory


def write_private_file(path: Path, content: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` atomically in its private directory (created 0700 if missing)."""
    with open_private_dir(path.parent) as directory:
        directory.replace(path.name, content, mode, (os.geteuid(), os.getegid()))


def read_private_file(path: Path) -> bytes | None:
    """The content of ``path`` (None: missing); a link is refused, never followed."""
    try:
        with open_local_dir(path.parent) as directory:
            found = directory.read(path.name)
    except FileNotFoundError:
        return None
    return None if found is None else found[0]


def open_bookkeeping_below(root: Path) -> SafeDir:
    """``BOOKKEEPING_DIR`` below a ``dir:`` target's root, created 0700, no link on the way."""
    parts = BOOKKEEPING_DIR.strip("/").split("/")
    root.mkdir(parents=True, exist_ok=True)
    directory = SafeDir.walk(root, parts, create=True, shown=f"{root}{BOOKKEEPING_DIR}")
    try:
        if stat.S_IMODE(os.fstat(directory.fd).st_mode) != _PRIVATE_MODE:
            os.fchmod(directory.fd, _PRIVATE_MODE)
    except BaseException:
        directory.close()
        raise
    return directory


def private_dir_script(directory: str) -> str:
    """POSIX sh that makes ``directory`` on a host root's own 0700 directory, else prints
    ``LINK`` or ``NOTPRIVATE`` and exits 0 (for a script whose first line is its answer)."""
    d = shlex.quote(directory)
    return (
        f"[ -L {d} ] && {{ echo LINK; exit 0; }}; "
        f"mkdir -p -m 700 {d} 2>/dev/null; "
        f'[ -d {d} ] && [ ! -L {d} ] && [ "$(stat -c %u {d})" = "$(id -u)" ] '
        f"&& chmod 700 {d} || {{ echo NOTPRIVATE; exit 0; }}; "
    )
