"""Where a layer's files live and its programs run: the ``target`` of a spec section.

``ssh://[user@]host[:port]``
    a remote host reached over SSH (paramiko, host key checked against known_hosts).
``local``
    this machine: files are read and written here and programs (``asterisk -rx``,
    ``iptables-restore``, ``fail2ban-client``) run here.
``dir:PATH``
    a directory that stands in for a host's root file system: every absolute path of the
    layer lands below PATH, and no program is run (reloads are skipped, and the plan says
    so). PATH is relative to the spec file. This is how a spec is tried, reviewed or
    staged without any server.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from sipctl.schemas.names import check_connect_host

_SSH_RE = re.compile(
    r"ssh://(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]{0,31})@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?/?"
)


@dataclass(frozen=True)
class TargetRef:
    """A parsed target. ``key`` identifies the host: one connection per key per run."""

    kind: Literal["ssh", "local", "dir"]
    host: str = ""
    port: int = 22
    user: str | None = None
    path: str = ""

    @property
    def key(self) -> str:
        if self.kind == "ssh":
            host = f"[{self.host}]" if ":" in self.host else self.host
            user = f"{self.user}@" if self.user else ""
            return f"ssh://{user}{host}:{self.port}"
        if self.kind == "dir":
            return f"dir:{self.path}"
        return "local"

    def __str__(self) -> str:
        return self.key


def parse_target(text: str) -> TargetRef:
    """Parse a target string; raises ValueError with a message for humans."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a target must be 'local', 'dir:PATH' or 'ssh://[user@]host[:port]'")
    text = text.strip()
    if text == "local":
        return TargetRef(kind="local")
    if text.startswith("dir:"):
        path = text[4:]
        if not path or "\x00" in path:
            raise ValueError("'dir:' needs a directory, like dir:state/pbx")
        return TargetRef(kind="dir", path=path)
    match = _SSH_RE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a target: use 'local', 'dir:PATH' or 'ssh://[user@]host[:port]'"
        )
    host = match["host"]
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    else:
        check_connect_host(host)
    port = int(match["port"]) if match["port"] else 22
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (1-65535)")
    return TargetRef(kind="ssh", host=host.lower(), port=port, user=match["user"])


def check_target(value: str) -> str:
    """A spec's target: exactly as parse_target reads it, without surrounding spaces."""
    if isinstance(value, str) and value != value.strip():
        raise ValueError(f"{value!r}: remove the spaces around the target")
    parse_target(value)
    return value


# 1-65535, leading zeros allowed as int() reads them (at most five digits).
PORT_PATTERN = (
    "(?:0{0,4}[1-9]|0{0,3}[1-9][0-9]|0{0,2}[1-9][0-9]{2}|0?[1-9][0-9]{3}"
    "|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)
# What the JSON Schema can say of a target; the host part of ssh:// is checked further by
# parse_target (an IPv6 address in brackets must be one).
TARGET_PATTERN = (
    r"^(?:local|dir:[\s\S]+|ssh://(?:[A-Za-z0-9._][A-Za-z0-9._-]{0,31}@)?"
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::" + PORT_PATTERN + r")?/?)$"
)
