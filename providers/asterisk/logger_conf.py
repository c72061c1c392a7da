"""The files Asterisk logs to (``logger.conf``), checked against the fail2ban jail's logpath.

The guest dialplan logs every rejected call as ``Log(WARNING,Wrong call IP=...)``, and the
jail bans on those lines; Asterisk writes a WARNING line to every file channel of
``logger.conf`` whose levels include ``warning`` (or ``*``). On a stock Debian Asterisk 22
that is ``/var/log/asterisk/messages.log`` (``messages.log => notice,warning,error``);
older setups name it ``messages``. A jail on any other file never sees a wrong call, and
nothing else would tell: so the Asterisk provider reads ``logger.conf`` (and
``asterisk.conf`` for ``astlogdir``) whenever the spec has a fail2ban jail, and a plan
stops until the two agree.

Asterisk may run in a chroot or a container (its host profile entry) while fail2ban reads
the same file from outside, under a longer path: a logpath that ends with the file's
path (``/srv/pbx/root/var/log/asterisk/messages`` for ``/var/log/asterisk/messages``), or,
for a file named relative to ``astlogdir``, with its name under a mounted log directory,
is that file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipctl.reconciler.asterisk_conf import logical_lines

if TYPE_CHECKING:
    from sipctl.schemas.spec import Spec

LOGGER_FILE = "logger.conf"
ASTERISK_FILE = "asterisk.conf"
DEFAULT_LOG_DIR = "/var/log/asterisk"
_YES = ("yes", "true", "on", "1")


@dataclass(frozen=True)
class LogFile:
    """One file channel of logger.conf."""

    path: str  # absolute, as Asterisk sees it; ``.<hostname>`` appended with appendhostname
    name: str  # as logger.conf names it (relative names live in astlogdir)
    levels: tuple[str, ...]  # lower case, without arguments: verbose(3) -> verbose

    @property
    def has_warnings(self) -> bool:
        return "warning" in self.levels or "*" in self.levels

    def is_read_at(self, logpath: str) -> bool:
        """True when ``logpath`` (as fail2ban sees it) is this file, also from outside a
        chroot or container."""
        if logpath == self.path or logpath.endswith(self.path):
            return True
        return not self.name.startswith("/") and logpath.endswith("/" + self.name)


def log_files(logger_conf: str, log_dir: str = DEFAULT_LOG_DIR) -> list[LogFile]:
    """The file channels of a ``logger.conf``.

    ``console`` and ``syslog.*`` are not files. A relative name lives in ``log_dir``
    (asterisk.conf's astlogdir). With ``appendhostname = yes`` Asterisk appends
    ``.<hostname>`` to every file name, which no static jail path can match: such files
    carry the marker ``<hostname>`` so the check reports them.
    """
    found: list[LogFile] = []
    section = ""
    append_hostname = False
    for _, line in logical_lines(logger_conf):  # as Asterisk reads it: block comments too
        if line.startswith("[") and "]" in line:
            section = line[1 : line.index("]")].strip().lower()
            continue
        key, sep, value = line.partition("=>") if "=>" in line else line.partition("=")
        if not sep:
            continue
        name, value = key.strip(), value.strip()
        if section == "general" and name.lower() == "appendhostname":
            append_hostname = value.lower() in _YES
        if section != "logfiles" or name == "console" or name.startswith("syslog"):
            continue
        path = name if name.startswith("/") else f"{log_dir.rstrip('/')}/{name}"
        levels = [v.strip().lower() for v in value.split(",") if v.strip()]
        found.append(LogFile(path, name, tuple(lv.split("(", 1)[0] for lv in levels)))
    if append_hostname:
        return [LogFile(f"{f.path}.<hostname>", f"{f.name}.<hostname>", f.levels) for f in found]
    return found


def log_dir_of(asterisk_conf: str) -> str:
    """``astlogdir`` of asterisk.conf's ``[directories]`` (default /var/log/asterisk)."""
    section = ""
    for _, line in logical_lines(asterisk_conf):
        if line.startswith("["):
            section = line[1:].split("]", 1)[0].strip().lower()
            continue
        key, sep, value = line.partition("=>") if "=>" in line else line.partition("=")
        if sep and section == "directories" and key.strip() == "astlogdir":
            return value.strip()
    return DEFAULT_LOG_DIR


def jail_watches_asterisk(spec: Spec) -> bool:
    """True when the spec has a fail2ban jail on Asterisk's log (logger.conf is read)."""
    return spec.fail2ban is not None and spec.fail2ban.enabled


def jail_log_problems(
    spec: Spec,
    where: Callable[[tuple[str, ...]], str],
    logger_conf: bytes | None,
    asterisk_conf: bytes | None,
    target: str,
) -> list[str]:
    """What stops a plan whose fail2ban jail watches a file Asterisk does not write its
    wrong calls to (``where`` gives a spec key's file:line)."""
    if spec.fail2ban is None or not jail_watches_asterisk(spec) or logger_conf is None:
        return []
    log_dir = log_dir_of(_text(asterisk_conf)) if asterisk_conf is not None else DEFAULT_LOG_DIR
    files = log_files(_text(logger_conf), log_dir)
    jail = spec.fail2ban.logpath
    key = where(("fail2ban", "logpath"))
    watched = [f for f in files if f.is_read_at(jail)]
    if not watched:
        writing = [f.path for f in files if f.has_warnings]
        listed = ", ".join(writing) or "no file at WARNING level"
        return [
            f"{key}: the fail2ban jail watches {jail}, but Asterisk at {target} writes its "
            f"'Wrong call' lines (WARNING) to {listed} (logger.conf); set fail2ban.logpath "
            "to that file, or add the file to logger.conf on the PBX"
        ]
    if not any(f.has_warnings for f in watched):
        return [
            f"{key}: Asterisk at {target} writes {jail} without the WARNING level "
            "(logger.conf), where rejected guest calls are logged; add warning to that "
            "file's levels"
        ]
    return []


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
