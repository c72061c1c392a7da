"""Confirm-or-rollback: a firewall change on a remote host that undoes itself unless sipctl
proves, over a NEW SSH connection, that SSH still works with the new rules.

One script (one round trip) does it all on the host: it recomputes the checksum of what we
own and stops if it differs from what the plan read (stale), saves the rollback script,
arms the timer, and changes the rules; if the change fails it rolls back at once. The timer
is detached from the SSH session (``setsid``: its own session and process group, stdio
closed), so the session dying does not take it along, and it runs the rollback after
``confirm_seconds`` unless the marker file ``.armed`` is gone by then.

sipctl then opens a NEW connection (the old one lives on through conntrack's ESTABLISHED
state, so it proves nothing) and removes the marker through it. Whoever removes the marker
first wins (``rm`` is atomic), so a confirmation that arrives after the rollback started is
reported as rolled back, never as confirmed.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipctl.errors import RolledBackError, SipctlError
from sipctl.providers.firewall.shell import heredoc, new_boundary

if TYPE_CHECKING:
    from sipctl.providers.transport.pool import HostTransport

# Where the rollback script, its timer's pid and the marker live on the host: a tmpfs that
# a reboot empties, like the timer itself.
STATE_DIR = "/run/sipctl"
SCRIPT_TIMEOUT = 60.0
# How long after the rollback should have run we still wait before trying the host again.
ROLLBACK_MARGIN = 2.0


@dataclass(frozen=True)
class Step:
    """One atomic change (one ``iptables-restore`` or ``nft -f``) and the shell that undoes it.

    The undo runs only when the step completed (a ``.done-KEY`` marker): a refused restore
    changed nothing, so undoing it would damage what is there (e.g. add a second jump).
    """

    key: str
    apply: str
    rollback: str


@dataclass(frozen=True)
class ApplyNames:
    """The names one apply uses on the host and in its script."""

    token: str
    boundary: str

    @classmethod
    def new(cls) -> ApplyNames:
        return cls(secrets.token_hex(6), new_boundary())

    @property
    def stem(self) -> str:
        return f"{STATE_DIR}/firewall-{self.token}"

    @property
    def delimiter(self) -> str:
        return f"SIPCTL_EOF_{self.token}"


def apply_script(
    names: ApplyNames,
    *,
    snapshot: str,
    expected_digest: str,
    steps: list[Step],
    confirm_seconds: int | None,
) -> str:
    """The script of one apply; it prints ``BOUNDARY stale|applied|failed`` (see above).

    ``confirm_seconds`` None: no timer (a ``local`` target; nobody reaches it over SSH).
    """
    stem, boundary, delimiter = names.stem, names.boundary, names.delimiter
    apply_sh = ["set -e"]
    for step in steps:
        apply_sh += [step.apply.rstrip("\n"), f": > {stem}.done-{step.key}"]
    rollback_sh = [":"]
    for step in reversed(steps):
        rollback_sh += [f"if [ -e {stem}.done-{step.key} ]; then", step.rollback.rstrip("\n"), "fi"]
    lines = [
        "umask 077",
        snapshot,
        f"if [ \"$sipctl_digest\" != '{expected_digest}' ]; then",
        f"  echo '{boundary} stale'; exit 0",
        "fi",
        f"mkdir -p {STATE_DIR} || exit 1",
        heredoc(f"cat > {stem}.apply.sh", "\n".join(apply_sh), delimiter + "_OUTER"),
        heredoc(f"cat > {stem}.rollback.sh", "\n".join(rollback_sh), delimiter + "_OUTER"),
    ]
    if confirm_seconds is not None:
        # "$0" is the stem. The rollback's log is kept only when it said something.
        timer = (
            f'echo $$ > "$0.pid"; sleep {confirm_seconds}; '
            'if rm "$0.armed" 2>/dev/null; then '
            'sh "$0.rollback.sh" > "$0.rollback.log" 2>&1; fi; '
            'rm -f "$0.pid" "$0.apply.sh" "$0.rollback.sh" "$0".done-*; '
            '[ -s "$0.rollback.log" ] || rm -f "$0.rollback.log"'
        )
        lines += [
            f": > {stem}.armed",
            f"setsid sh -c '{timer}' {stem} </dev/null >/dev/null 2>&1 &",
        ]
    lines += [
        f"if sh {stem}.apply.sh > {stem}.log 2>&1; then",
        f"  echo '{boundary} applied'",
        "else",
        f"  rm -f {stem}.armed; sh {stem}.rollback.sh >/dev/null 2>&1",
        f"  echo '{boundary} failed'; cat {stem}.log",
        f"  rm -f {stem}.done-*",
        "fi",
        f"rm -f {stem}.log",
    ]
    if confirm_seconds is None:
        lines.append(f"rm -f {stem}.apply.sh {stem}.rollback.sh {stem}.done-*")
    return "\n".join(lines) + "\n"


def cancel_command(stem: str) -> str:
    """Disarm the timer: prints ``confirmed``, or ``too-late`` when the rollback won."""
    return (
        f"if rm {stem}.armed 2>/dev/null; then "
        f'[ -s {stem}.pid ] && kill -TERM -- "-$(cat {stem}.pid)" 2>/dev/null; '
        f"rm -f {stem}.pid {stem}.apply.sh {stem}.rollback.sh {stem}.done-*; echo confirmed; "
        "else echo too-late; fi"
    )


def confirm(
    transport: HostTransport, stem: str, started: float, seconds: int, target_id: str
) -> None:
    """Disarm the rollback through a NEW connection; raise RolledBackError if we cannot."""
    failure = ""
    try:
        fresh = transport.fresh()
        try:
            answer = fresh.run(cancel_command(stem), timeout=SCRIPT_TIMEOUT).stdout
        finally:
            fresh.close()
    except SipctlError as exc:
        failure = f"a new connection failed: {exc}"
    else:
        if "confirmed" in answer:
            return
        failure = "a new connection came only after the rollback had started"
    time.sleep(max(0.0, started + seconds + ROLLBACK_MARGIN - time.monotonic()))
    after = (
        "SSH works again"
        if reachable(transport)
        else "SSH is still unreachable: check the host on its console"
    )
    raise RolledBackError(
        f"rolled back: the new rules would cut SSH to {target_id} ({failure}); the host "
        f"restored the old rules after {seconds} s and {after}"
    )


def reachable(transport: HostTransport) -> bool:
    """Whether a new SSH connection to the host gets a command through."""
    try:
        fresh = transport.fresh()
        try:
            return fresh.run("true", timeout=SCRIPT_TIMEOUT).ok
        finally:
            fresh.close()
    except SipctlError:
        return False
