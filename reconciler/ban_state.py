"""Is this machine banned by one of sipctl's fail2ban jails? Told apart from a dead listener.

A ban looks exactly like nothing listening: the jail's action rejects with ICMP port
unreachable (a refused TCP connection) or drops (a timeout). So before ``verify`` or
``audit`` says "nothing listens", it asks the jails, read-only, through the fail2ban target
(``fail2ban-client status`` and ``status <jail>`` of every ``sipctl-*`` jail) whether the
address the PBX sees this machine by is banned, and then says how to lift the ban and what
to put in ``fail2ban.ignoreip``. When the jails cannot be read, it says that a ban is possible
and how to check.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipctl.errors import SipctlError
from sipctl.providers.transport.host_profile import resolve_program
from sipctl.schemas.values import same_host

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.spec import Spec

JAIL_PREFIX = "sipctl-"
_JAIL_LIST = re.compile(r"Jail list:\s*(?P<names>.*)$", re.MULTILINE)
_BANNED_LIST = re.compile(r"Banned IP list:\s*(?P<addresses>.*)$", re.MULTILINE)


@dataclass(frozen=True)
class BanState:
    """What the jails say about ``address`` (the address the PBX sees this machine by)."""

    address: str
    jails: tuple[str, ...]  # the sipctl jails that ban it now
    readable: bool  # the jails could be read through the fail2ban target
    why_not: str = ""  # why they could not

    @property
    def banned(self) -> bool:
        return bool(self.jails)

    def words(self) -> str:
        """What to tell the admin about a silent target, in one sentence or two."""
        if self.banned:
            jail = self.jails[0]
            return (
                f"this machine ({self.address}) is banned by fail2ban (jail "
                f"{', '.join(self.jails)}), so the PBX does not answer it: the listener is not "
                f"the problem. Lift the ban: 'fail2ban-client set {jail} unbanip "
                f"{self.address}' on the PBX; add {self.address} to fail2ban.ignoreip so that "
                "verify and audit are never banned"
            )
        if self.readable:
            return f"this machine ({self.address}) is not banned by sipctl's jails"
        return (
            f"a fail2ban ban of this machine ({self.address}) looks the same, and the jails "
            f"could not be read ({self.why_not}): check 'fail2ban-client status "
            f"sipctl-asterisk' on the PBX"
        )


def source_address(address: str, port: int) -> str:
    """The address the PBX at ``address`` sees our packets come from (the route's source)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((address, port))
        return str(probe.getsockname()[0])


def fail2ban_run(spec: Spec, ctx: RunContext, *verb: str) -> str | None:
    """``fail2ban-client VERB...`` through the fail2ban target; None when it cannot run."""
    section = spec.fail2ban
    if section is None:
        return None
    try:
        transport = ctx.transports.get(spec.fail2ban_target() or "local", spec.fail2ban_ssh())
        if not transport.can_run:
            return None
        key = "fail2ban.program"
        program = resolve_program(ctx, transport, "fail2ban", section.program, key)
        argv = [*(program or ("fail2ban-client",)), *verb]
        result = transport.run_programs([argv], timeout=30.0)[0]
    except SipctlError:
        return None
    return result.stdout if result.ok else None


def parse_jails(status: str) -> list[str]:
    """``fail2ban-client status`` -> the jail names."""
    match = _JAIL_LIST.search(status)
    if match is None:
        return []
    return [n.strip() for n in match["names"].split(",") if n.strip()]


def parse_banned(status: str) -> set[str]:
    """``fail2ban-client status JAIL`` -> the banned addresses."""
    match = _BANNED_LIST.search(status)
    return set(match["addresses"].split()) if match is not None else set()


def read_ban_state(spec: Spec, ctx: RunContext, address: str) -> BanState:
    """Whether a sipctl jail bans ``address`` now, read through the fail2ban target."""
    if spec.fail2ban is None or not spec.fail2ban.enabled:
        return BanState(address, (), False, "the spec has no enabled fail2ban section")
    overview = fail2ban_run(spec, ctx, "status")
    if overview is None:
        return BanState(address, (), False, "fail2ban-client status failed on the target")
    banning: list[str] = []
    for jail in (j for j in parse_jails(overview) if j.startswith(JAIL_PREFIX)):
        status = fail2ban_run(spec, ctx, "status", jail) or ""
        if any(same_host(address, banned) for banned in parse_banned(status)):
            banning.append(jail)
    return BanState(address, tuple(banning), True)
