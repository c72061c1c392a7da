"""The host profile: which programs sipctl runs on a host, read from the host itself.

A spec never names a program (``schemas/retired.py``); it may pick an entry of the host
profile by name (``asterisk.program: staging``). The profile is ``/etc/sipctl/host.yaml`` on
the target (``SIPCTL_HOST_PROFILE``, from the runner's environment, moves it; on a ``dir:``
target it lies below the directory), read through the target's own transport:

- it is trusted only when no one but root (or the account sipctl runs as there, which could
  run anything anyway) can change it: the file and every directory on the way to it are
  owned by root or that account, and none is writable by group or others (a root-owned
  sticky directory such as ``/tmp`` is accepted for the directories). Anything else refuses
  the run;
- no symbolic link is followed, on the way or at the end: a link is refused as such;
- a missing profile means the stock programs (``asterisk``, ``fail2ban-client``; no zone
  reload). A missing entry the spec names is an error, never a fallback.

Over SSH the check is one ``sh`` script (``stat -c`` of each step, then the file in
base64); through the read gate (a read-only login) the file is one of the gate's files,
which the gate itself never reads through a link. The profile is read once per host per run.

The same script resolves the places on the host a spec names (``realpath -m``: ``..`` and
the host's links), which ``reconciler/host_places.py`` holds to the profile's ``places``:
no round trip of their own.
"""

from __future__ import annotations

import base64
import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sipctl.errors import ProviderError, SpecError
from sipctl.providers.transport.files import new_marker
from sipctl.schemas.profiles import (
    DEFAULT_ENTRY,
    HOST_PROFILE_ENV,
    HOST_PROFILE_PATH,
    STOCK_PROGRAMS,
    HostProfile,
    parse_profile,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sipctl.providers.base import RunContext
    from sipctl.providers.transport.pool import HostTransport

Role = Literal["asterisk", "fail2ban", "zone_reload"]
MAX_PROFILE_BYTES = 1 << 20


def host_profile_path(env: Mapping[str, str]) -> str:
    """Where the host profile is on every target (absolute, normalised)."""
    path = env.get(HOST_PROFILE_ENV) or HOST_PROFILE_PATH
    if not path.startswith("/") or "\x00" in path:
        raise SpecError(f"{HOST_PROFILE_ENV}={path!r}: give an absolute path")
    return posixpath.normpath(path)


@dataclass(frozen=True)
class LoadedHostProfile:
    """The profile of one host (None: it has none) and where it was read."""

    target: str
    path: str
    profile: HostProfile | None
    # the paths sipctl asked to resolve on the host -> where they are there ("": unresolvable)
    resolved: dict[str, str] = field(default_factory=dict)

    def program(self, role: Role, entry: str | None, key: str) -> tuple[str, ...] | None:
        """The words of ``role``'s program: the spec's ``entry`` (named at ``key``), else the
        profile's default entry, else the stock program (None: nothing to run)."""
        entries = getattr(self.profile, role) if self.profile is not None else {}
        if entry is not None:
            if entry in entries:
                return tuple(entries[entry])
            if self.profile is None:
                raise ProviderError(
                    f"{key}: {entry!r} names an entry of the host profile, and {self.target} "
                    f"has none ({self.path})",
                    hint=f"create {self.path} on {self.target} (owned by root) with "
                    f"'version: 1' and '{role}: {{{entry}: [PROGRAM, ARG, ...]}}', or "
                    f"delete {key} to use the stock program",
                )
            known = ", ".join(sorted(entries)) or "none"
            raise ProviderError(
                f"{key}: {entry!r} is not an entry of {role} in {self.target}:{self.path} "
                f"(its entries: {known})"
            )
        if DEFAULT_ENTRY in entries:
            return tuple(entries[DEFAULT_ENTRY])
        return STOCK_PROGRAMS.get(role)


def host_programs(
    ctx: RunContext, transport: HostTransport, resolve: Sequence[str] = ()
) -> LoadedHostProfile:
    """The host profile of ``transport``'s host, read once per run (cached in ``ctx``), with
    the absolute paths ``resolve`` resolved on an ssh:// host (its ``resolved``): in the same
    round trip when the profile is read now, else in one of their own."""
    key = transport.ref.key
    cached = ctx.host_profiles.get(key)
    if isinstance(cached, LoadedHostProfile):
        missing = [p for p in dict.fromkeys(resolve) if p not in cached.resolved]
        if missing:
            cached.resolved.update(_resolve_only(transport, missing))
        return cached
    path = host_profile_path(ctx.env)
    found: dict[str, str] = {}
    text = _read(ctx, transport, path, list(dict.fromkeys(resolve)), found)
    source = f"{key}:{path}"
    profile = None if text is None else parse_profile(text, source, HostProfile)
    loaded = LoadedHostProfile(key, path, profile, found)
    ctx.host_profiles[key] = loaded
    return loaded


def resolve_program(
    ctx: RunContext, transport: HostTransport, role: Role, entry: str | None, key: str
) -> tuple[str, ...] | None:
    return host_programs(ctx, transport).program(role, entry, key)


# --- reading, strictly -------------------------------------------------------------------------


def _refused(target: str, path: str, why: str) -> ProviderError:
    return ProviderError(
        f"{target}: the host profile {path} is not trusted: {why}",
        hint="the host profile says which programs run as root: keep it and every directory "
        "above it owned by root and writable by no one else (chown root:root; chmod 0644), "
        "and no symbolic link on the way",
    )


def _read(
    ctx: RunContext,
    transport: HostTransport,
    path: str,
    resolve: Sequence[str] = (),
    found: dict[str, str] | None = None,
) -> str | None:
    kind = transport.ref.kind
    if kind == "ssh":
        return _read_ssh(transport, path, resolve, {} if found is None else found)
    if kind == "dir":
        root = Path(transport.ref.path).expanduser()
        root = root if root.is_absolute() else ctx.base_dir / root
        owners = {0, os.geteuid()}
        return _read_local(root, path, str(transport.ref), owners)
    return _read_local(Path("/"), path, "local", {0, os.geteuid()})


def _check_step(target: str, shown: str, st: os.stat_result, owners: set[int], last: bool) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise _refused(target, shown, f"{shown} is a symbolic link")
    if last and not stat.S_ISREG(st.st_mode):
        raise _refused(target, shown, "it is not a regular file")
    if not last and not stat.S_ISDIR(st.st_mode):
        raise _refused(target, shown, f"{shown} is not a directory")
    if st.st_uid not in owners:
        raise _refused(target, shown, f"{shown} belongs to uid {st.st_uid}, not root")
    writable = st.st_mode & 0o022
    sticky = not last and st.st_mode & stat.S_ISVTX and st.st_uid == 0
    if writable and not sticky:
        raise _refused(
            target, shown, f"{shown} is writable by others (mode {st.st_mode & 0o7777:o})"
        )


def _read_local(root: Path, path: str, target: str, owners: set[int]) -> str | None:
    parts = [p for p in path.split("/") if p]
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ProviderError(f"{target}: cannot open {root}: {exc.strerror}") from None
    try:
        shown = ""
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            shown += "/" + part
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise _refused(target, path, f"{shown}: {exc.strerror}") from None
            _check_step(target, shown, st, owners, last)
            try:
                child = os.open(part, flags | (0 if last else os.O_DIRECTORY), dir_fd=fd)
            except OSError as exc:
                raise _refused(target, path, f"{shown}: {exc.strerror}") from None
            os.close(fd)
            fd = child
            if (os.fstat(fd).st_ino, os.fstat(fd).st_dev) != (st.st_ino, st.st_dev):
                raise _refused(target, path, f"{shown} changed while it was read")
        if not parts:
            raise _refused(target, path, "it is not a regular file")
        data = os.read(fd, MAX_PROFILE_BYTES + 1)
    finally:
        os.close(fd)
    return _text(data, target, path)


def _text(data: bytes, target: str, path: str) -> str:
    if len(data) > MAX_PROFILE_BYTES:
        raise ProviderError(f"{target}: the host profile {path} is larger than 1 MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProviderError(f"{target}: the host profile {path} is not UTF-8 text") from None


# "<M> U <uid of the login>", then for "/" and each step of the path:
# "<M> S <uid> <raw mode, hex> <step>"; the walk stops at
# a missing step ("<M> M") or a link (its S line is the last); then "<M> C", the base64
# lines, "<M> .".
#
# Before it, for each further argument (a place a spec names): "<M> R <where it is>", empty
# when realpath cannot say.
_RESOLVE = r"""
for q; do printf '%s R %s\n' "$m" "$(realpath -m -- "$q" 2>/dev/null)"; done
"""
_SSH_SCRIPT = (
    r"""
m=$1; p=$2; shift 2
"""
    + _RESOLVE
    + r"""
printf '%s U %s\n' "$m" "$(id -u)"
printf '%s S %s /\n' "$m" "$(stat -c '%u %f' /)"
cur=; rest=${p#/}
while [ -n "$rest" ]; do
  case $rest in */*) part=${rest%%/*}; rest=${rest#*/};; *) part=$rest; rest=;; esac
  [ -n "$part" ] || continue
  cur=$cur/$part
  if [ ! -e "$cur" ] && [ ! -L "$cur" ]; then printf '%s M\n' "$m"; exit 0; fi
  printf '%s S %s %s\n' "$m" "$(stat -c '%u %f' -- "$cur")" "$cur"
  if [ -L "$cur" ]; then exit 0; fi
done
printf '%s C\n' "$m"
head -c 1048577 -- "$cur" | base64
printf '%s .\n' "$m"
"""
)


def _places_found(lines: Sequence[str], marker: str, resolve: Sequence[str]) -> dict[str, str]:
    """The answers of ``_RESOLVE`` in ``lines``, by the path asked (in the order asked)."""
    prefix = marker + " R "
    answers = [line[len(prefix) :] for line in lines if line.startswith(prefix)]
    return {path: answer for path, answer in zip(resolve, answers, strict=False)}


def _resolve_only(transport: HostTransport, resolve: Sequence[str]) -> dict[str, str]:
    """``resolve`` resolved on the host, in a round trip of their own (the profile was read
    already this run, for another spec)."""
    import shlex

    from sipctl.providers.transport.ssh import SshTransport

    assert isinstance(transport, SshTransport)
    if transport.read_only:  # the gate runs no script: nothing resolved (see _read_ssh)
        return {}
    marker = new_marker()
    words = ["sh", "-c", "m=$1; shift\n" + _RESOLVE, "sh", marker, *resolve]
    result = transport.run(" ".join(shlex.quote(w) for w in words), timeout=30.0)
    return _places_found(result.stdout.split("\n"), marker, resolve)


def _read_ssh(
    transport: HostTransport, path: str, resolve: Sequence[str], places: dict[str, str]
) -> str | None:
    from sipctl.providers.transport.ssh import SshTransport

    assert isinstance(transport, SshTransport)
    target = str(transport.ref)
    if transport.read_only:
        # The read gate runs no script of sipctl's: nothing is resolved, and a read-only
        # login writes nothing (reconciler/host_places.py checks the apply job's login).
        # The read gate answers the file (never through a link); its owner is the gate's.
        found = transport.read_files([path])[path]
        if found.content is None:
            return None
        if found.mode is not None and found.mode & 0o022:
            raise _refused(target, path, f"it is writable by others (mode {found.mode:o})")
        return _text(found.content, target, path)
    import shlex

    marker = new_marker()
    words = ["sh", "-c", _SSH_SCRIPT, "sh", marker, path, *resolve]
    result = transport.run(" ".join(shlex.quote(w) for w in words), timeout=30.0)
    prefix = marker + " "
    lines = result.stdout.split("\n")
    places.update(_places_found(lines, marker, resolve))
    body: list[str] = []
    inside = False
    steps = [line for line in lines if line.startswith(prefix + "S ")]
    login = [line[len(prefix) + 2 :] for line in lines if line.startswith(prefix + "U ")]
    owners = {0} | {int(u) for u in login[:1] if u.strip().isdigit()}
    for line in lines:
        if line == prefix + "C":
            inside = True
        elif line == marker + " .":
            inside = False
        elif inside:
            body.append(line)
    for index, line in enumerate(steps):
        fields = line[len(prefix) + 2 :].split(" ", 2)
        if len(fields) != 3:
            raise ProviderError(f"{target}: reading the host profile {path} failed: {line!r}")
        uid, raw, shown = int(fields[0]), int(fields[1], 16), fields[2]
        st = os.stat_result((raw, 0, 0, 0, uid, 0, 0, 0, 0, 0))
        _check_step(target, shown, st, owners, last=index == len(steps) - 1 and shown == path)
    if any(line == prefix + "M" for line in lines):
        return None
    if not any(line == prefix + "C" for line in lines):
        raise ProviderError(
            f"{target}: reading the host profile {path} failed (exit {result.exit_status}): "
            f"{(result.stderr or result.stdout).strip()[-200:]}"
        )
    try:
        data = base64.b64decode("".join(body), validate=True)
    except ValueError:
        raise ProviderError(f"{target}: the host profile {path} came back garbled") from None
    return _text(data, target, path)


def offline_program(
    ctx: RunContext, role: Role, entry: str | None, key: str
) -> tuple[str, ...] | None:
    """``resolve_program`` without connecting, for the read gate's table (``sipctl
    read-gate``): the host profile at its path on this machine, which is the PBX itself or
    holds a copy of its profile (``SIPCTL_HOST_PROFILE``); owned by root or by the user who
    renders the gate."""
    path = host_profile_path(ctx.env)
    cached = ctx.host_profiles.get(f"offline:{path}")
    if not isinstance(cached, LoadedHostProfile):
        text = _read_local(Path("/"), path, "this machine", {0, os.geteuid()})
        profile = None if text is None else parse_profile(text, path, HostProfile)
        cached = LoadedHostProfile("this machine", path, profile)
        ctx.host_profiles[f"offline:{path}"] = cached
    return cached.program(role, entry, key)
