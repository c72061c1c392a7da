"""What the iptables and nftables providers share: reading in one round trip, the SSH
lockout check, applying with confirm-or-rollback, and the persist files.

A backend supplies four things: the shell that snapshots its live rules (``snapshot``),
the parser of that snapshot into the canonical value of ``render_firewall``
(``parse_snapshot``), the shell that makes a value live (``apply_shell``) and the shell that
puts back what the snapshot saw (``rollback_shell``).

Reading runs ONE shell script on the host (``/bin/sh -s``): the snapshot, the persist files
and ``$SSH_CONNECTION``, as sections between random boundary lines. The snapshot also prints
a checksum of exactly what we own; ``apply`` recomputes it on the host in the same script
that changes the rules and stops (StalePlanError, nothing changed) when it differs.

Confirm-or-rollback on an SSH target: the apply script saves the old rules as a rollback
script on the host, arms a timer detached from the SSH session (``setsid``, its own process
group, stdio closed) that runs the rollback after ``confirm_seconds`` unless the marker file
``.armed`` is gone, and then changes the rules. sipctl then opens a NEW SSH connection (the
old one lives on through conntrack's ESTABLISHED state, so it proves nothing) and removes
the marker through it. Whoever removes the marker first wins (``rm`` is atomic), so a
confirmation that arrives after the rollback started is reported as rolled back.
"""

from __future__ import annotations

import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sipctl.errors import ProviderError, RolledBackError, SipctlError, SpecError, StalePlanError
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render_firewall import (
    accepts_tcp,
    file_address,
    persist_paths,
    ruleset_address,
    wants_ipv6,
)
from sipctl.reconciler.resources import LiveState, Resource, Value
from sipctl.schemas.targets import TargetRef, parse_target

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.transport import HostTransport
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Firewall, Spec, Ssh

# Where the rollback script, its timer's pid and the marker live on the host: a tmpfs that
# a reboot empties, like the timer itself.
STATE_DIR = "/run/sipctl"
SCRIPT_TIMEOUT = 60.0
# $SSH_CONNECTION of the session we run in. sudo clears the environment, so when it is empty
# the parents' environments are searched (sudo itself, then the login shell): as root we may
# read them, and the first one that has it is our own SSH session.
SSH_CONNECTION_SHELL = """\
c="${SSH_CONNECTION:-}"; p=$$; n=0
while [ -z "$c" ] && [ "$n" -lt 8 ] && [ "$p" -gt 1 ]; do
  p=$(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null); [ -n "$p" ] || break
  c=$({ tr '\\0' '\\n' < /proc/$p/environ; } 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p')
  n=$((n + 1))
done
printf '%s' "$c"
"""
# How long after the rollback should have run we still try to reach the host.
ROLLBACK_MARGIN = 2.0


@dataclass(frozen=True)
class Section:
    """One section of a read script's output: what a command printed, and its exit code."""

    body: str
    status: int


def new_boundary() -> str:
    return f"SIPCTL-{secrets.token_hex(8)}"


def section_shell(boundary: str, name: str, command: str) -> str:
    """Shell that prints ``command``'s output as section ``name``, then its exit code."""
    return (
        f"printf '\\n%s %s\\n' '{boundary}' '{name}'\n"
        f"{command}\n"
        f"printf '\\n%s rc=%s\\n' '{boundary}' \"$?\"\n"
    )


def parse_sections(output: str, boundary: str) -> dict[str, Section]:
    """The sections printed by scripts made of ``section_shell`` parts."""
    chunks = output.split(f"\n{boundary} ")
    sections: dict[str, Section] = {}
    for head, tail in zip(chunks[1::2], chunks[2::2], strict=False):
        name, _, body = head.partition("\n")
        match = re.match(r"rc=(\d+)", tail)
        sections[name] = Section(body, int(match.group(1)) if match else 255)
    return sections


def heredoc(command: str, text: str, delimiter: str) -> str:
    """``command`` fed ``text`` through a quoted here-document (nothing in it is expanded)."""
    if not text.endswith("\n"):
        text += "\n"
    return f"{command} <<'{delimiter}'\n{text}{delimiter}\n"


@dataclass(frozen=True)
class SshPort:
    """The port (and family) of the SSH connection sipctl arrives through, as the host sees it."""

    port: int
    family: str
    source: str  # where the port came from, for messages


class FirewallProvider(ABC):
    """The common part of the iptables and nftables providers (see the module docstring)."""

    layer: ClassVar[str] = "firewall"
    name: ClassVar[str]

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        spec = loaded.spec
        if spec.firewall is None:
            raise SpecError(f"{loaded.source}: the {self.name} provider needs a firewall section")
        target = spec.firewall_target()
        assert target is not None
        self._loaded = loaded
        self._ctx = ctx
        self.spec: Spec = spec
        self.fw: Firewall = spec.firewall
        self.target = target
        self.ref: TargetRef = parse_target(target)
        asterisk_ssh = spec.asterisk.ssh if spec.asterisk is not None else None
        self.ssh: Ssh | None = self.fw.ssh or asterisk_ssh

    @property
    def target_id(self) -> str:
        return self.ref.key

    def transport(self) -> HostTransport:
        return self._ctx.transports.get(self.target, self.ssh)

    def persist_files(self) -> dict[str, str]:
        """Persist paths by family key (see ``render_firewall.persist_paths``)."""
        present = self.fw.ensure == "present"
        return persist_paths(self.fw, present and wants_ipv6(self.spec))

    # -- backend ---------------------------------------------------------------------------

    @abstractmethod
    def snapshot(self) -> str:
        """Shell that sets shell variables holding the live rules and ``sipctl_digest``,
        a checksum of exactly what sipctl owns."""

    @abstractmethod
    def snapshot_sections(self, boundary: str) -> str:
        """Shell that prints the variables set by ``snapshot`` as sections."""

    @abstractmethod
    def parse_snapshot(self, sections: dict[str, Section], live: LiveState) -> Value:
        """The canonical value of the live rules (None: nothing of ours), filling
        ``live.private`` with what ``apply_shell``/``rollback_shell`` need and
        ``live.problems`` with what stops the plan."""

    @abstractmethod
    def parse_persist(self, files: dict[str, str | None]) -> Value:
        """The canonical value held by the persist files (a ``dir:`` target's live state)."""

    @abstractmethod
    def apply_shell(self, value: Value, private: dict[str, Any], delimiter: str) -> str:
        """Shell that makes ``value`` live (None: removes ours); nonzero exit on failure."""

    @abstractmethod
    def rollback_shell(self, value: Value, private: dict[str, Any], delimiter: str) -> str:
        """Shell that puts back the rules the snapshot saw, once ``value`` was applied."""

    @abstractmethod
    def describe(self, value: Value) -> str:
        """One line naming what was written, for the apply report."""

    # -- read --------------------------------------------------------------------------------

    def read(self, desired: Sequence[Resource]) -> LiveState:
        live = LiveState()
        transport = self.transport()
        paths = self.persist_files()
        desired_rules = next(
            (r.value for r in desired if r.address == ruleset_address(self.fw)), None
        )
        if not transport.can_run:
            self._read_dir(transport, paths, live)
            return live
        boundary = new_boundary()
        script = [self.snapshot(), self.snapshot_sections(boundary)]
        script.append(section_shell(boundary, "ssh", SSH_CONNECTION_SHELL))
        for path in paths.values():
            script.append(section_shell(boundary, f"file {path}", _cat_shell(path)))
        result = transport.run("/bin/sh -s", stdin="".join(script).encode(), timeout=SCRIPT_TIMEOUT)
        sections = parse_sections(result.stdout, boundary)
        if "ssh" not in sections:
            raise ProviderError(
                f"{self.target_id}: reading the firewall failed (exit {result.exit_status}): "
                f"{_first_line(result.stderr)}"
            )
        value = self.parse_snapshot(sections, live)
        if value is not None:
            live.resources[ruleset_address(self.fw)] = value
        self._files_from_sections(sections, paths, live)
        self._check_ssh(desired_rules, sections["ssh"].body.strip(), live)
        dropped = set(value["families"] if value else ()) - set(
            desired_rules["families"] if desired_rules else ()
        )
        if desired_rules is not None and "ipv6" in dropped:
            live.notes.append(
                "sipctl's IPv6 rules will be removed: no server in the spec has an IPv6 "
                "address (give one its ipv6 to keep IPv6 filtered)"
            )
        return live

    def _read_dir(self, transport: HostTransport, paths: dict[str, str], live: LiveState) -> None:
        """A ``dir:`` target: the persist files are the whole live state; nothing runs."""
        if not paths:
            live.problems.append(
                f"firewall.target {self.target} is a directory, where no rules can be loaded, "
                "and firewall.persist is not set: there is nothing to write. Set firewall.persist "
                "(e.g. /etc/iptables.up) or give firewall a host as target"
            )
            return
        found = transport.read_files(list(paths.values()))
        texts: dict[str, str | None] = {}
        for path in paths.values():
            host_file = found[path]
            text = host_file.text() if host_file.exists else None
            texts[path] = text
            live.private.setdefault("files", {})[path] = host_file.content
            if text is not None:
                live.resources[file_address(path)] = text
        value = self.parse_persist({key: texts[path] for key, path in paths.items()})
        if value is not None:
            live.resources[ruleset_address(self.fw)] = value
        live.skipped.append(
            f"{self.target} is a directory: only {', '.join(paths.values())} "
            "written, no rules loaded (the host loads them from there at boot)"
        )

    def _files_from_sections(
        self, sections: dict[str, Section], paths: dict[str, str], live: LiveState
    ) -> None:
        files: dict[str, bytes | None] = {}
        for path in paths.values():
            section = sections.get(f"file {path}")
            if section is None or section.status not in (0, 3):
                status = "no answer" if section is None else section.body.strip()
                live.problems.append(f"cannot read {path}: {status or 'unreadable'}")
                continue
            if section.status == 3:
                files[path] = None
                continue
            files[path] = section.body.encode()
            live.resources[file_address(path)] = section.body
        live.private["files"] = files

    # -- the SSH lockout check -------------------------------------------------------------

    def ssh_port(self, ssh_connection: str) -> SshPort | None:
        """The port sipctl's own SSH session arrives on, after any DNAT, when known.

        ``$SSH_CONNECTION`` (client ip, client port, server ip, server port) is what sshd
        saw, so its port is the one the INPUT chain sees even when a router or the host's
        own nat table forwards another port to it. Without it (sudo clears the environment),
        the port sipctl dialled is the best guess.
        """
        words = ssh_connection.split()
        if len(words) == 4 and words[3].isdigit():
            family = "ipv6" if ":" in words[2] else "ipv4"
            return SshPort(int(words[3]), family, "$SSH_CONNECTION on the host")
        if self.ref.kind == "ssh":
            family = "ipv6" if ":" in self.ref.host else "ipv4"
            return SshPort(self.ref.port, family, f"the port of {self.ref.key}")
        local = self._ctx.env.get("SSH_CONNECTION", "").split()
        if self.ref.kind == "local" and len(local) == 4 and local[3].isdigit():
            family = "ipv6" if ":" in local[2] else "ipv4"
            return SshPort(int(local[3]), family, "the SSH session sipctl runs in")
        return None

    def _check_ssh(self, desired: Value, ssh_connection: str, live: LiveState) -> None:
        port = self.ssh_port(ssh_connection)
        if port is None or accepts_tcp(desired, port.port, port.family):
            return
        live.hazards.append(
            f"the new rules do not accept TCP port {port.port}, which sipctl's SSH session "
            f"arrives on ({port.source}): applying them would cut SSH. Set firewall.ssh_port "
            f'to {port.port}, or add "tcp/{port.port}" to firewall.extra'
        )

    # -- apply -------------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], live: LiveState) -> list[str]:
        transport = self.transport()
        rules = [c for c in changes if c.address == ruleset_address(self.fw)]
        files = [c for c in changes if c.address.kind == "file"]
        lines: list[str] = []
        if rules and transport.can_run:
            lines.extend(self._apply_rules(transport, rules[0], live))
        if files:
            lines.extend(self._write_files(transport, files, live))
        return lines

    def _write_files(
        self, transport: HostTransport, changes: Sequence[Change], live: LiveState
    ) -> list[str]:
        from sipctl.providers.transport import FileWrite

        known: dict[str, bytes | None] = live.private.get("files", {})
        writes = [
            FileWrite(
                path=c.address.name,
                content=None if c.after is None else str(c.after).encode(),
                expected=known.get(c.address.name),
            )
            for c in changes
        ]
        transport.write_files(writes)
        return [f"{self.target_id}: wrote {w.path}" for w in writes]

    def _apply_rules(self, transport: HostTransport, change: Change, live: LiveState) -> list[str]:
        token = secrets.token_hex(6)
        delimiter = f"SIPCTL_EOF_{token}"
        stem = f"{STATE_DIR}/firewall-{token}"
        boundary = new_boundary()
        confirm = self.ref.kind == "ssh"
        script = self._apply_script(change.after, live, stem, boundary, delimiter, confirm)
        started = time.monotonic()
        try:
            result = transport.run("/bin/sh -s", stdin=script.encode(), timeout=SCRIPT_TIMEOUT)
        except ProviderError as exc:
            if not confirm:
                raise
            raise ProviderError(
                f"{exc}; if the new firewall rules were applied before the connection was "
                f"lost, the host puts the old ones back by itself within "
                f"{self.fw.confirm_seconds} s (the rollback timer is armed before any change)"
            ) from exc
        outcome = result.stdout
        if f"{boundary} stale" in outcome:
            raise StalePlanError(
                f"{self.target_id}: the firewall rules changed since the plan was read; "
                "nothing was changed. Run plan again"
            )
        if f"{boundary} failed" in outcome:
            log = outcome.split(f"{boundary} failed", 1)[1].strip()
            raise ProviderError(
                f"{self.target_id}: {self.name} refused the new rules, so the old ones were "
                f"put back: {_first_line(log) or 'no message'}"
            )
        if f"{boundary} applied" not in outcome:
            armed = f"; a rollback is armed on the host ({stem}.rollback.sh)" if confirm else ""
            raise ProviderError(
                f"{self.target_id}: applying the firewall rules failed (exit "
                f"{result.exit_status}): {_first_line(result.stderr or outcome)}{armed}"
            )
        what = self.describe(change.after)
        if not confirm:
            return [f"{self.target_id}: {what}"]
        self._confirm(transport, stem, started)
        return [f"{self.target_id}: {what}; confirmed over a new SSH connection"]

    def _apply_script(
        self,
        value: Value,
        live: LiveState,
        stem: str,
        boundary: str,
        delimiter: str,
        confirm: bool,
    ) -> str:
        expected = live.private.get("digest", "")
        apply_sh = self.apply_shell(value, live.private, delimiter)
        rollback_sh = self.rollback_shell(value, live.private, delimiter)
        seconds = self.fw.confirm_seconds
        lines = [
            "umask 077",
            self.snapshot(),
            f"if [ \"$sipctl_digest\" != '{expected}' ]; then echo '{boundary} stale'; exit 0; fi",
            f"mkdir -p {STATE_DIR} || exit 1",
            heredoc(f"cat > {stem}.apply.sh", apply_sh, delimiter + "_OUTER"),
            heredoc(f"cat > {stem}.rollback.sh", rollback_sh, delimiter + "_OUTER"),
        ]
        if confirm:
            # The timer: its own session and process group, stdio closed, so the SSH
            # session dying does not take it along; "$0" is the stem.
            timer = (
                'echo $$ > "$0.pid"; sleep ' + str(seconds) + "; "
                'if rm "$0.armed" 2>/dev/null; then '
                'sh "$0.rollback.sh" > "$0.rollback.log" 2>&1; fi; '
                'rm -f "$0.pid" "$0.apply.sh" "$0.rollback.sh"; '
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
            "fi",
            f"rm -f {stem}.log",
        ]
        if not confirm:
            lines.append(f"rm -f {stem}.apply.sh {stem}.rollback.sh")
        return "\n".join(lines) + "\n"

    def _confirm(self, transport: HostTransport, stem: str, started: float) -> None:
        """Disarm the rollback through a NEW connection; raise RolledBackError if we cannot."""
        cancel = (
            f"if rm {stem}.armed 2>/dev/null; then "
            f'[ -s {stem}.pid ] && kill -TERM -- "-$(cat {stem}.pid)" 2>/dev/null; '
            f"rm -f {stem}.pid {stem}.apply.sh {stem}.rollback.sh; echo confirmed; "
            "else echo too-late; fi"
        )
        failure = ""
        try:
            fresh = transport.fresh()
            try:
                answer = fresh.run(cancel, timeout=SCRIPT_TIMEOUT).stdout
            finally:
                fresh.close()
        except SipctlError as exc:
            failure = f"a new connection failed: {exc}"
        else:
            if "confirmed" in answer:
                return
            failure = "a new connection came only after the rollback had started"
        seconds = self.fw.confirm_seconds
        time.sleep(max(0.0, started + seconds + ROLLBACK_MARGIN - time.monotonic()))
        reachable = self._reachable(transport)
        after = (
            "SSH works again"
            if reachable
            else "SSH is still unreachable: check the host on its console"
        )
        raise RolledBackError(
            f"rolled back: the new rules would cut SSH to {self.target_id} ({failure}); the "
            f"host restored the old rules after {seconds} s and {after}"
        )

    def _reachable(self, transport: HostTransport) -> bool:
        try:
            fresh = transport.fresh()
            try:
                return fresh.run("true", timeout=SCRIPT_TIMEOUT).ok
            finally:
                fresh.close()
        except SipctlError:
            return False


def _cat_shell(path: str) -> str:
    """Print a file; exit 3 when it does not exist (a quoted path: it comes from the spec)."""
    quoted = "'" + path.replace("'", "'\\''") + "'"
    return f"( if [ -e {quoted} ]; then cat {quoted}; else exit 3; fi )"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""
