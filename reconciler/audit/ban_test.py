"""``sipctl audit --ban-test``: does fail2ban ban a stranger who keeps dialling wrong names?

Opt-in, and only from a disposable address (one the jail does not ignore): the audit places
``fail2ban.maxretry`` wrong calls, then asks with OPTIONS until the PBX stops answering (the
ban's firewall rule) and reads the jail's list of bans through the fail2ban target; then it
lifts its own ban (``fail2ban-client set <jail> unbanip <address>``) and checks the PBX
answers again. The calls and the unban are all it sends or changes.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from typing import TYPE_CHECKING

from sipctl.providers.sip_attack import SipAgent, Wire
from sipctl.reconciler import ban_state
from sipctl.reconciler.audit.report import AuditReport, Finding
from sipctl.reconciler.render.fail2ban import ALWAYS_IGNORED, JAIL_NAME
from sipctl.reconciler.verify.report import Endpoint

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.spec import Spec

BAN_WAIT = 15.0  # seconds for fail2ban to read the log and ban (its backend polls)


def source_address(target: Endpoint) -> str:
    """The address the PBX sees our packets come from (the route's source address)."""
    return ban_state.source_address(target.address, target.port)


def ignored(address: str, ignoreip: tuple[str, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    for entry in (*ALWAYS_IGNORED, *ignoreip):
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name in ignoreip: fail2ban resolves it, we cannot say
    return False


def run_ban_test(
    spec: Spec, target: Endpoint, ctx: RunContext, report: AuditReport, timeout: float = 2.0
) -> None:
    section = spec.fail2ban
    if section is None or not section.enabled:
        report.errors.append("--ban-test: the spec has no enabled fail2ban section")
        return
    where = f"{target.transport} {target.address}:{target.port}"
    address = source_address(target)
    if ignored(address, section.ignoreip):
        report.errors.append(
            f"--ban-test: this host's address {address} is in the jail's ignoreip (loopback "
            "always is): run the ban test from a disposable address the jail may ban"
        )
        return
    wire: Wire = "udp" if target.transport == "udp" else "tcp"
    count = report.count("ban-test")
    with SipAgent(target.address, target.port, wire, spec.domain) as caller:
        for _ in range(section.maxretry):
            exchange = caller.invite(f"sipctlban{secrets.token_hex(3)}", timeout, 0.1)
            count.requests += 1
            count.packets += exchange.packets
    banned_at = _wait_until_silent(target, wire, spec.domain, report)
    listed = _jail_lists(spec, ctx, address)
    if banned_at is None:
        report.add(
            [
                Finding(
                    "ban-missing",
                    "high",
                    "ban",
                    f"after {section.maxretry} wrong calls (fail2ban.maxretry) the PBX still "
                    f"answers {address}: a toll fraudster can go on guessing"
                    + (
                        " (the jail lists the address as banned: its action blocks nothing)"
                        if listed
                        else ""
                    ),
                    where,
                    "check that the jail runs ('fail2ban-client status sipctl-asterisk'), "
                    "reads fail2ban.logpath, and that 'sipctl plan' shows no fail2ban or "
                    "firewall changes",
                    sent=f"{section.maxretry} INVITEs to undeclared names, then OPTIONS",
                    got=f"answers for {BAN_WAIT:.0f} s after the last wrong call",
                )
            ]
        )
    else:
        report.checks.append(
            f"ban test: {address} banned {banned_at:.1f} s after {section.maxretry} wrong calls"
        )
    if banned_at is not None or listed:
        _unban(spec, ctx, address, target, wire, report)


def _wait_until_silent(
    target: Endpoint, wire: Wire, domain: str, report: AuditReport
) -> float | None:
    started = time.monotonic()
    count = report.count("ban-test")
    while time.monotonic() - started < BAN_WAIT:
        try:
            with SipAgent(target.address, target.port, wire, domain, connect_timeout=1.0) as a:
                exchange = a.transact("OPTIONS", f"sipctlban{secrets.token_hex(2)}", 1.0)
        except OSError:
            return time.monotonic() - started  # TCP: the connection is refused or dropped
        count.requests += 1
        count.packets += exchange.packets
        if exchange.final is None:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def _jail_lists(spec: Spec, ctx: RunContext, address: str) -> bool:
    return ban_state.read_ban_state(spec, ctx, address).banned


def _unban(
    spec: Spec, ctx: RunContext, address: str, target: Endpoint, wire: Wire, report: AuditReport
) -> None:
    done = ban_state.fail2ban_run(spec, ctx, "set", JAIL_NAME, "unbanip", address)
    if done is None:
        report.errors.append(
            f"--ban-test: could not lift the ban of {address} through the fail2ban target: "
            f"run 'fail2ban-client set {JAIL_NAME} unbanip {address}' on the PBX"
        )
        return
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            with SipAgent(target.address, target.port, wire, spec.domain) as agent:
                exchange = agent.transact("OPTIONS", "sipctlunban", 1.0)
        except OSError:
            exchange = None
        if exchange is not None and exchange.final is not None:
            report.checks.append(f"ban test: {address} unbanned, the PBX answers it again")
            return
        time.sleep(0.3)
    report.errors.append(f"--ban-test: {address} was unbanned but the PBX still does not answer")
