"""Keys a spec may no longer hold, because they said *how* (a program) and not *what*.

``asterisk.command``, ``fail2ban.command`` and ``dns.reload_command`` named programs sipctl
ran as root; a merge request could make them a shell. They moved to the host profile
(``schemas/profiles.py``, docs/security.md). A spec that still has one gets a message with
the exact YAML to put in that profile, instead of "unknown key".
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

from sipctl.schemas.profiles import DEFAULT_ENTRY, HOST_PROFILE_PATH, STOCK_PROGRAMS

# (section, key) -> (the host profile's role, where that profile is, the key a spec uses now)
RETIRED: dict[tuple[str, str], tuple[str, str, str]] = {
    ("asterisk", "command"): ("asterisk", "on the PBX (the asterisk target)", "asterisk.program"),
    ("fail2ban", "command"): ("fail2ban", "on the fail2ban target", "fail2ban.program"),
    ("dns", "reload_command"): ("zone_reload", "on the machine that runs sipctl", "dns.reload"),
}


def retired_keys(data: Any, where: Callable[[tuple[str, str]], str]) -> list[str]:
    """One message per retired key in ``data`` (the spec's raw mapping), at ``where(path)``."""
    if not isinstance(data, dict):
        return []
    problems = []
    for (section, key), (role, place, successor) in RETIRED.items():
        body = data.get(section)
        if not isinstance(body, dict) or key not in body:
            continue
        problems.append(
            f"{where((section, key))}: {section}.{key}: "
            + _message(section, key, body[key], role, place, successor)
        )
    return problems


def _message(section: str, key: str, value: Any, role: str, place: str, successor: str) -> str:
    try:
        words = tuple(shlex.split(value)) if isinstance(value, str) else ()
    except ValueError:
        words = ()
    head = (
        "a spec no longer names a program: which program runs as root is the host's to say, "
        "not a merge request's (see: sipctl docs security)."
    )
    if words and words == STOCK_PROGRAMS.get(role):
        return (
            f"{head} {value!r} is the stock program, used without a host profile: delete "
            f"{section}.{key}"
        )
    entry = json.dumps(list(words), ensure_ascii=False) if words else "[PROGRAM, ARG, ...]"
    return (
        f"{head} Put it in the host profile {place}, {HOST_PROFILE_PATH} (owned by root, "
        f"not writable by others):\n"
        f"    version: 1\n"
        f"    {role}:\n"
        f"      {DEFAULT_ENTRY}: {entry}\n"
        f"then delete {section}.{key} from the spec (to pick another entry of that profile: "
        f"{successor}: NAME)"
    )
