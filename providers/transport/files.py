"""The POSIX sh scripts that read and write a batch of files on a remote host in one exec.

Pure: this module builds scripts and parses their output; ``providers/transport/ssh.py`` runs them.
The scripts use only POSIX sh plus ``base64``, ``sha256sum``, ``stat -c`` and ``mktemp``
(GNU coreutils and busybox both have them). File contents travel base64-encoded, so any
byte survives, and every line the script prints for us starts with a random marker, so that
whatever a login script prints on the channel cannot be mistaken for file data.

Writing follows the same steps as ``LocalTransport.write_files``: check every expected
sha256 (nothing written on any mismatch), write each new file to a temp file beside it with
the old file's mode and owner, sync, check again right before the renames, keep the old file
as ``<path>.sipctl.bak``, rename into place; if a rename fails, undo the ones already done.
No file is written through a link: a changed path that is a link is refused, and temp and
backup files are created new (``dd conv=excl``: ``O_EXCL``, GNU coreutils) under random
names with their final mode (umask), their owner set with ``chown -h``; everything else is
a rename or an unlink, which never follow a link.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from sipctl.providers.transport.pool import BACKUP_SUFFIX, FileWrite, HostFile
from sipctl.schemas.values import canonical_path

_DEFAULT_MODE = 0o644


def new_marker() -> str:
    return f"@sipctl-{secrets.token_hex(8)}@"


# -- reading -----------------------------------------------------------------------------------

# For each path: "<M> F <mode> <mtime>", the base64 lines, "<M> ." ; or "<M> B <size>" (larger
# than the limit the reader gives: not sent), "<M> M" (missing),
# "<M> D" (not a regular file), "<M> E" (unreadable), "<M> L" (the file is a symbolic link),
# "<M> P" (a directory on the way to it is one). Reads are as strict as writes: no link is
# followed anywhere in the path. The file is opened once (fd 3) and its real path, read back
# through /proc, must be the path asked for (callers send canonical paths: no "//", "/./",
# "..", trailing "/"); so a link swapped in after the checks is refused too, never read.
# The kernel's own files are the exception: /proc/net is the kernel's link to self/net, and
# no one can make or change a link below /proc.
KERNEL_FILES = ("/proc/net/", "/proc/sys/")


def is_kernel_file(path: str) -> bool:
    """A file of the kernel's (``path`` canonical), read where /proc's own links lead."""
    return path.startswith(KERNEL_FILES) and ".." not in path.split("/")


_READ_SCRIPT = r"""
m=$1; limit=$2; shift 2
for p do
  case $p in /proc/net/*|/proc/sys/*) kernel=1 ;; *) kernel= ;; esac
  if [ -L "$p" ] && [ -z "$kernel" ]; then
    printf '%s L\n' "$m"
  elif [ -f "$p" ]; then
    if ! { command exec 3<"$p"; } 2>/dev/null; then
      printf '%s E\n' "$m"
    elif [ -z "$kernel" ] && [ "$(readlink /proc/self/fd/3 2>/dev/null)" != "$p" ]; then
      printf '%s P\n' "$m"
    elif meta=$(stat -L -c '%a %Y %s' /proc/self/fd/3 2>/dev/null) && [ -f /proc/self/fd/3 ]; then
      if [ "${meta##* }" -gt "$limit" ]; then
        printf '%s B %s\n' "$m" "${meta##* }"
      else
        printf '%s F %s\n' "$m" "${meta% *}"
        head -c "$((limit + 1))" <&3 | base64 || exit 70
        printf '%s .\n' "$m"
      fi
    else
      printf '%s E\n' "$m"
    fi
    exec 3<&-
  elif [ -e "$p" ]; then
    printf '%s D\n' "$m"
  else
    printf '%s M\n' "$m"
  fi
done
printf '%s END\n' "$m"
"""


def read_command(paths: Sequence[str], marker: str, limit: int) -> str:
    """``sh -c SCRIPT sh MARKER LIMIT PATH...``: prints every file, framed by ``marker``; a
    file larger than ``limit`` bytes is answered by its size alone ("B"), never sent (a
    file that grows while read is sent up to ``limit + 1`` bytes, which the reader refuses)."""
    words = ["sh", "-c", _READ_SCRIPT, "sh", marker, str(limit), *paths]
    return " ".join(shlex.quote(word) for word in words)


NOT_THROUGH_LINKS = "sipctl does not read through links"
LINK_REFUSED = f"is a symbolic link; {NOT_THROUGH_LINKS}"
DIRECTORY_LINK_REFUSED = f"is reached through a symbolic link; {NOT_THROUGH_LINKS}"


class ScriptOutputError(ValueError):
    """The host's answer is not what the script prints (a broken shell or a missing tool)."""


TOO_LARGE = "too large"


@dataclass(frozen=True)
class ReadProblem:
    path: str
    why: str  # "not a regular file" | "not readable" | LINK_REFUSED | DIRECTORY_LINK_REFUSED
    size: int = 0  # of a file TOO_LARGE to be read

    @property
    def refused_link(self) -> bool:
        return self.why in (LINK_REFUSED, DIRECTORY_LINK_REFUSED)


def parse_read_output(
    paths: Sequence[str], output: bytes, marker: str
) -> tuple[dict[str, HostFile], list[ReadProblem]]:
    prefix = marker.encode() + b" "
    lines = [line for line in output.split(b"\n")]
    start = next((i for i, line in enumerate(lines) if line.startswith(prefix)), None)
    if start is None:
        raise ScriptOutputError("the read script printed nothing")
    files: dict[str, HostFile] = {}
    problems: list[ReadProblem] = []
    i = start
    for path in paths:
        if i >= len(lines) or not lines[i].startswith(prefix):
            raise ScriptOutputError(f"no answer for {path}")
        head = lines[i][len(prefix) :].decode("ascii", "replace").split()
        i += 1
        kind = head[0] if head else ""
        if kind == "M":
            files[path] = HostFile(path, None)
        elif kind == "D":
            problems.append(ReadProblem(path, "not a regular file"))
        elif kind == "E":
            problems.append(ReadProblem(path, "not readable"))
        elif kind == "L":  # the file, or (read gate) anything on the way, is a link
            problems.append(ReadProblem(path, LINK_REFUSED))
        elif kind == "P":
            problems.append(ReadProblem(path, DIRECTORY_LINK_REFUSED))
        elif kind == "B" and len(head) == 2 and head[1].isdigit():
            problems.append(ReadProblem(path, TOO_LARGE, int(head[1])))
        elif (kind == "F" and len(head) == 3) or (kind == "R" and len(head) == 4):
            # R: the read gate's copy with secret values hidden (read_gate.redact); its last
            # word is no longer used (an older gate sent the real file's sha256 there)
            chunks: list[bytes] = []
            while i < len(lines) and lines[i] != prefix + b".":
                chunks.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ScriptOutputError(f"the content of {path} was cut short")
            i += 1
            try:
                content = base64.b64decode(b"".join(chunks), validate=True)
                mode, mtime = int(head[1], 8), float(head[2])
            except ValueError as exc:
                raise ScriptOutputError(f"the content of {path} is garbled") from exc
            if kind == "R":
                # hidden again by this sipctl's rule: a gate installed by an older one hid
                # fewer keys, and what it left in clear is never kept (idempotent for a
                # current gate's answer; a gate's answers come from a read-only login only).
                # Imported here: read_gate imports this module.
                from sipctl.providers.transport.read_gate import redact

                content = redact(content)
            files[path] = HostFile(path, content, mtime, mode)
        else:
            raise ScriptOutputError(f"unexpected answer for {path}")
    if i >= len(lines) or lines[i] != prefix + b"END":
        raise ScriptOutputError("the read script did not finish")
    return files, problems


# -- writing -----------------------------------------------------------------------------------

# Functions shared by the write and restore scripts. $M is the marker; each failure prints
# "<M> STALE i" or "<M> FAIL i reason" and exits non-zero.
_WRITE_FUNCTIONS = r"""
say() { printf '%s %s\n' "$M" "$*"; }
sha() { sha256sum < "$1" | cut -d ' ' -f 1; }
check() { # check INDEX PATH EXPECTED_SHA256_OR_- [changing]
  if [ -n "${4:-}" ] && [ -L "$2" ]; then say LINK "$1"; cleanup; exit 1; fi
  if [ -n "${4:-}" ]; then # no directory on the way is a link: its real path is its path
    d=$(dirname -- "$2")
    if [ -d "$d" ] && [ "$(cd -P -- "$d" 2>/dev/null && pwd -P)" != "$d" ]; then
      say DIRLINK "$1"; cleanup; exit 1
    fi
  fi
  if [ "$3" = - ]; then
    if [ -e "$2" ] || [ -L "$2" ]; then say STALE "$1"; cleanup; exit 3; fi
  else
    if [ ! -f "$2" ]; then say STALE "$1"; cleanup; exit 3; fi
    cur=$(sha "$2") || fail "$1" "cannot read the file"
    if [ "$cur" != "$3" ]; then say STALE "$1"; cleanup; exit 3; fi
  fi
}
fail() { say FAIL "$1" "$2"; cleanup; undo; exit 1; }
excl() { # excl MODE FILE : stdin into FILE, created new (O_EXCL: never through a link)
  (umask "$(printf '%o' $(( 0777 & ~0$1 )))" && dd of="$2" conv=excl status=none 2>/dev/null)
}
temp() { # temp INDEX PATH MODE_OR_- : t = a new temp name beside PATH; mode, owner for it
  dir=$(dirname -- "$2")
  if [ ! -d "$dir" ]; then
    err=$(mkdir -p -- "$dir" 2>&1) || fail "$1" "cannot create the directory: $err"
  fi
  t=$(mktemp -u "$dir/.sipctl-tmp.XXXXXXXXXX" 2>&1) || fail "$1" "cannot name a temp file: $t"
  if [ -f "$2" ]; then
    owner=$(stat -c '%u:%g' -- "$2") && mode=$(stat -c '%a' -- "$2") || fail "$1" "cannot stat"
  else
    owner=$(stat -c '%u:%g' -- "$dir") || fail "$1" "cannot stat the directory"
    mode=644
  fi
  [ "$3" = - ] || mode=$3
}
own() { # own INDEX FILE : FILE gets $owner; -h: a link swapped in is not followed
  err=$(chown -h "$owner" "$2" 2>&1) || fail "$1" "$err"
}
backup() { # backup PATH : PATH.sipctl.bak becomes a copy of PATH; PATH stays in place
  bt=$(mktemp -u "$(dirname -- "$1")/.sipctl-bak.XXXXXXXXXX") || return 1
  if ! ln -- "$1" "$bt" 2>/dev/null; then
    bo=$(stat -c '%u:%g' -- "$1") && bm=$(stat -c '%a' -- "$1") || return 1
    excl "$bm" "$bt" < "$1" || { rm -f -- "$bt"; return 1; }
    chown -h "$bo" "$bt" 2>/dev/null
  fi
  mv -f -- "$bt" "$1$B"
}
"""


@dataclass(frozen=True)
class WriteOutcome:
    stale: str | None  # the path that changed since the plan
    link: str | None  # a path that is a symbolic link (refused: the rename would cut it)
    directory_link: str | None  # a path whose directory is reached through a link (refused)
    failed: tuple[str, str] | None  # (path, the host's reason)
    done: bool


def _sha(content: bytes | None) -> str:
    return "-" if content is None else hashlib.sha256(content).hexdigest()


def write_script(writes: Sequence[FileWrite], marker: str) -> str:
    """A script for ``sh -s`` that checks every write, then replaces the changed files.

    Files whose content equals ``expected`` are checked but not touched.
    """
    q = shlex.quote
    out = [f"M={q(marker)}", f"B={q(BACKUP_SUFFIX)}", "set -u", "umask 022"]
    changing = [(i, w) for i, w in enumerate(writes) if w.content != w.expected]
    temps = " ".join(f'"${{t{i}:-}}"' for i, w in changing if w.content is not None)
    out.append(f"cleanup() {{ rm -f -- {temps}; }}" if temps else "cleanup() { :; }")
    # undo() puts back what the rename loop already replaced; r<i>=1 marks a replaced file.
    undo = []
    for i, w in changing:
        path = q(canonical_path(w.path))
        if not w.undoable:
            continue  # nothing kept to put back
        if w.expected is not None:
            undo.append(f'[ -z "${{r{i}:-}}" ] || mv -f -- {path}"$B" {path}')
        else:
            undo.append(f'[ -z "${{r{i}:-}}" ] || rm -f -- {path}')
    out.append("undo() { " + "; ".join([*undo, ":"]) + "; }")
    out.append(_WRITE_FUNCTIONS)
    for i, w in enumerate(writes):
        changes = " changing" if w.content != w.expected else ""
        out.append(f"check {i} {q(canonical_path(w.path))} {_sha(w.expected)}{changes}")
    nonce = secrets.token_hex(8)
    for i, w in changing:
        if w.content is None:
            continue
        mode = "-" if w.mode is None else format(w.mode, "o")
        out.append(f"temp {i} {q(canonical_path(w.path))} {mode}; t{i}=$t")
        encoded = base64.encodebytes(w.content).decode("ascii")
        out.append(
            f'base64 -d <<\'SIPCTL_{nonce}\' | excl "$mode" "$t{i}"\n{encoded}SIPCTL_{nonce}'
        )
        out.append(f'[ $? -eq 0 ] || fail {i} "cannot write a new temp file"')
        out.append(f'own {i} "$t{i}"')
    synced = " ".join(f'"$t{i}"' for i, w in changing if w.content is not None)
    if synced:
        out.append(f"sync -- {synced} 2>/dev/null || sync")
    # Checked again right before the renames: an edit made on the host while the temp files
    # were written is not lost.
    for i, w in changing:  # also: a directory swapped for a link since is refused here
        out.append(f"check {i} {q(canonical_path(w.path))} {_sha(w.expected)} changing")
    for i, w in changing:
        path = q(canonical_path(w.path))
        if w.removes_all:
            out.append(f'err=$(rm -f -- {path} {path}"$B" 2>&1) || fail {i} "$err"')
            continue
        if w.expected is not None and w.keep_backup:
            out.append(f'backup {path} || fail {i} "cannot keep a backup"')
        if w.content is not None:
            out.append(f'err=$(mv -f -- "$t{i}" {path} 2>&1) || fail {i} "$err"; r{i}=1')
            if not w.keep_backup:
                out.append(f'rm -f -- {path}"$B"')
        else:
            out.append(f'err=$(rm -f -- {path} 2>&1) || fail {i} "$err"; r{i}=1')
    out.append("say DONE")
    return "\n".join(out) + "\n"


def rmdir_script(dirs: Sequence[str], marker: str) -> str:
    """A script for ``sh -s`` that removes each of ``dirs`` (in order) that is an empty
    directory: ``rmdir`` keeps one that holds anything and never follows a link at the name;
    a directory whose real path is not its path (a link on the way) is left alone. Prints
    ``<marker> GONE <i>`` for each removed, then ``<marker> DONE``."""
    q = shlex.quote
    out = [f"M={q(marker)}"]
    for i, path in enumerate(dirs):
        d = q(canonical_path(path))
        out.append(
            f'if [ -d {d} ] && [ ! -L {d} ] && [ "$(cd -P -- {d} 2>/dev/null && pwd -P)" = {d} ]'
            f" && rmdir -- {d} 2>/dev/null; then printf '%s GONE {i}\\n' \"$M\"; fi"
        )
    out.append("printf '%s DONE\\n' \"$M\"")
    return "\n".join(out) + "\n"


def parse_rmdir_output(dirs: Sequence[str], output: str, marker: str) -> list[str] | None:
    """The directories an ``rmdir_script`` removed (None: it did not run to its end)."""
    removed: list[str] = []
    done = False
    for line in output.splitlines():
        words = line.split(" ")
        if len(words) == 3 and words[0] == marker and words[1] == "GONE" and words[2].isdigit():
            index = int(words[2])
            if index < len(dirs):
                removed.append(dirs[index])
        elif words == [marker, "DONE"]:
            done = True
    return removed if done else None


def restore_script(undo: Sequence[tuple[str, bool]], marker: str) -> str:
    """Undo writes: ``(path, existed)`` → put the backup back, or remove the new file."""
    q = shlex.quote
    out = [f"M={q(marker)}", f"B={q(BACKUP_SUFFIX)}", "failed=0"]
    for path, existed in undo:
        action = f'mv -f -- {q(path)}"$B" {q(path)}' if existed else f"rm -f -- {q(path)}"
        out.append(
            f"{action} 2>/dev/null || {{ printf '%s FAIL %s\\n' \"$M\" {q(path)}; failed=1; }}"
        )
    out.append("printf '%s DONE\\n' \"$M\"")
    out.append('exit "$failed"')
    return "\n".join(out) + "\n"


def parse_write_output(writes: Sequence[FileWrite], output: str, marker: str) -> WriteOutcome:
    for line in output.splitlines():
        if not line.startswith(marker + " "):
            continue
        words = line[len(marker) + 1 :].split(" ", 2)
        if words[0] == "STALE" and len(words) >= 2 and words[1].isdigit():
            return WriteOutcome(writes[int(words[1])].path, None, None, None, False)
        if words[0] == "LINK" and len(words) >= 2 and words[1].isdigit():
            return WriteOutcome(None, writes[int(words[1])].path, None, None, False)
        if words[0] == "DIRLINK" and len(words) >= 2 and words[1].isdigit():
            return WriteOutcome(None, None, writes[int(words[1])].path, None, False)
        if words[0] == "FAIL" and len(words) >= 2 and words[1].isdigit():
            reason = words[2].strip() if len(words) > 2 else "failed"
            return WriteOutcome(None, None, None, (writes[int(words[1])].path, reason), False)
        if words[0] == "DONE":
            return WriteOutcome(None, None, None, None, True)
    return WriteOutcome(None, None, None, None, False)


def restore_failures(output: str, marker: str) -> list[str]:
    prefix = marker + " FAIL "
    return [line[len(prefix) :] for line in output.splitlines() if line.startswith(prefix)]
