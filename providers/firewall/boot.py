"""Does anything load the persist file at boot? Rules that only live in the kernel are gone
after a reboot, and a persist file nothing reads is no better.

What loads one, on the distributions sipctl targets:

- ifupdown: a ``pre-up``/``up``/``post-up`` line in ``/etc/network/interfaces`` (or a file
  in ``interfaces.d``) running ``iptables-restore < FILE`` (``ip6tables-restore`` for IPv6);
- netfilter-persistent (package iptables-persistent): ``/etc/iptables/rules.v4`` and
  ``rules.v6``;
- nftables.service: ``/etc/nftables.conf``, and whatever it ``include``\\ s (globs allowed).

``BOOT_SHELL`` prints the evidence as read-script sections; ``boot_warnings`` (pure) says,
for each persist file nothing loads, the exact line to add.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from collections.abc import Mapping

INTERFACES = "/etc/network/interfaces"
NFTABLES_CONF = "/etc/nftables.conf"
NETFILTER_PERSISTENT = {"ipv4": "/etc/iptables/rules.v4", "ipv6": "/etc/iptables/rules.v6"}
# a file of the netfilter-persistent package: present when it is installed
NETFILTER_PERSISTENT_MARK = "/usr/share/netfilter-persistent/plugins.d/15-ip4tables"

# section name -> shell that prints its evidence (missing files print nothing). Only the
# lines the checks below read leave the host, and no file is read through a link: these
# files are the admin's, and the read gate runs this same shell for a plan job's key.
BOOT_SHELL = {
    "boot interfaces": (
        f'for f in {INTERFACES} {INTERFACES}.d/*; do [ -f "$f" ] && [ ! -L "$f" ] && '
        "grep -hE '^[[:space:]]*(pre-up|up|post-up)[[:space:]].*tables-restore' -- \"$f\"; "
        "done; :"
    ),
    "boot nftables": (
        f"[ -f {NFTABLES_CONF} ] && [ ! -L {NFTABLES_CONF} ] && "
        f"grep -E '^[[:space:]]*include[[:space:]]' {NFTABLES_CONF}; :"
    ),
    "boot netfilter-persistent": f"[ -e {NETFILTER_PERSISTENT_MARK} ] && echo installed; :",
}
# the same evidence as plain files, for a ``dir:`` target (no program runs there)
BOOT_FILES = {
    "boot interfaces": INTERFACES,
    "boot nftables": NFTABLES_CONF,
    "boot netfilter-persistent": NETFILTER_PERSISTENT_MARK,
}

_IFUPDOWN_HOOK = re.compile(r"^\s*(pre-up|up|post-up)\s+(?P<command>.+?)\s*$")
_INCLUDE = re.compile(r'^\s*include\s+"(?P<path>[^"]+)"')


def boot_warnings(backend: str, paths: Mapping[str, str], evidence: Mapping[str, str]) -> list[str]:
    """One warning per persist file (``paths``: family key -> path) that nothing loads."""
    if backend == "nftables":
        path = paths.get("inet")
        if path is None or _nft_includes(evidence.get("boot nftables", ""), path):
            return []
        return [
            f"nothing loads {path} at boot, so the rules are lost at a reboot: add the line "
            f'include "{path}" to {NFTABLES_CONF} and enable nftables.service '
            "(systemctl enable nftables)"
        ]
    warnings = []
    persistent = "installed" in evidence.get("boot netfilter-persistent", "")
    for family, path in paths.items():
        program = "iptables-restore" if family == "ipv4" else "ip6tables-restore"
        if persistent and NETFILTER_PERSISTENT.get(family) == path:
            continue
        if _ifupdown_restores(evidence.get("boot interfaces", ""), program, path):
            continue
        warnings.append(
            f"nothing loads {path} at boot, so the {family} rules are lost at a reboot: add "
            f"the line 'post-up {program} < {path}' to the stanza of the main interface in "
            f"{INTERFACES}"
        )
    return warnings


def _ifupdown_restores(interfaces: str, program: str, path: str) -> bool:
    for line in interfaces.splitlines():
        match = _IFUPDOWN_HOOK.match(line)
        if match is None:
            continue
        try:
            words = shlex.split(match.group("command").replace("<", " < "), comments=True)
        except ValueError:
            continue
        if any(posixpath.basename(w) == program for w in words) and path in words:
            return True
    return False


def _nft_includes(conf: str, path: str) -> bool:
    for line in conf.splitlines():
        match = _INCLUDE.match(line)
        if match is None:
            continue
        pattern = match.group("path")
        if not pattern.startswith("/"):
            pattern = posixpath.join(posixpath.dirname(NFTABLES_CONF), pattern)
        if fnmatch.fnmatchcase(path, pattern):
            return True
    return False
