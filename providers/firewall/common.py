"""What the iptables and nftables providers share: reading in one round trip, the SSH
lockout check, applying with confirm-or-rollback, and the persist files.

A backend supplies: the shell that snapshots its live rules (``snapshot``), the parser of
that snapshot into the canonical value of ``render_firewall`` (``parse_snapshot``), and the
steps that make a value live, each with the shell that puts back what the snapshot saw
(``steps``).

Reading runs ONE shell script on the host (``/bin/sh -s``): the snapshot, the persist files
and ``$SSH_CONNECTION``, as sections between random boundary lines. The snapshot also prints
a checksum of exactly what we own; ``apply`` recomputes it on the host in the same script
that changes the rules and stops (StalePlanError, nothing changed) when it differs.

On an SSH target every change of the rules is confirmed or rolled back by the host itself
(``firewall_confirm``). The persist files are written only after that, so a reboot never
brings back rules that were not confirmed.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from sipctl.errors import ProviderError, SpecError, StalePlanError
from sipctl.providers.base import Provider, UpdateRider
from sipctl.providers.firewall.boot import BOOT_FILES, BOOT_SHELL, boot_warnings
from sipctl.providers.firewall.confirm import (
    SCRIPT_TIMEOUT,
    ApplyNames,
    Step,
    apply_script,
    confirm,
)
from sipctl.providers.firewall.shell import (
    SSH_CONNECTION_SHELL,
    Section,
    cat_shell,
    first_line,
    parse_sections,
    section_shell,
)
from sipctl.providers.transport.batch import Fetched, HostRead, HostScript, fetch
from sipctl.providers.transport.read_gate import GateReads
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.firewall import (
    accepts_tcp,
    file_address,
    persist_file_shown,
    persist_paths,
    ruleset_address,
    wants_ipv6,
)
from sipctl.reconciler.resources import Kept, LiveState, Resource, Value
from sipctl.schemas.targets import TargetRef, parse_target

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.transport.pool import HostTransport
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Firewall, Spec, Ssh


@dataclass(frozen=True)
class SshPort:
    """The port (and family) of the SSH connection sipctl arrives through, as the host sees it."""

    port: int
    family: str
    source: str  # where the port came from, for messages


@dataclass
class FirewallKept(Kept):
    """What a firewall provider's read keeps for its apply (each backend adds its own).

    files   the persist files as read, exactly (None: missing), by path
    digest  the checksum of exactly what sipctl owns in the live rules (apply refuses
            rules that changed since)
    """

    files: dict[str, bytes | None] = field(default_factory=dict)
    digest: str = ""


class FirewallProvider(Provider):
    """The common part of the iptables and nftables providers (see the module docstring)."""

    kept_type: ClassVar[type[FirewallKept]] = FirewallKept  # what this backend's read keeps

    layer: ClassVar[str] = "firewall"
    name: ClassVar[str]
    # shell: are the other backend's rules still loaded (after a change of backend)?
    other_backend_shell: ClassVar[str]

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
        self.ssh: Ssh | None = spec.firewall_ssh()

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
    def snapshot_sections(self) -> dict[str, str]:
        """Shell that prints each of the backend's own sections, by name, from the variables
        set by ``snapshot`` (``read_script`` adds the digest and ``other_backend_shell``)."""

    @abstractmethod
    def parse_snapshot(self, sections: dict[str, Section], live: LiveState) -> Value:
        """The canonical value of the live rules (None: nothing of ours), filling
        ``live.kept`` (``kept_type``) with what ``steps`` needs and
        ``live.problems`` with what stops the plan."""

    @abstractmethod
    def parse_persist(self, files: dict[str, str | None]) -> Value:
        """The canonical value held by the persist files (a ``dir:`` target's live state)."""

    @abstractmethod
    def steps(self, value: Value, live: LiveState, delimiter: str) -> list[Step]:
        """The atomic changes that make ``value`` live (None: remove ours), each with its
        undo back to what the snapshot saw; here-documents end with ``delimiter``."""

    @abstractmethod
    def describe(self, value: Value) -> str:
        """One line naming what was written, for the apply report."""

    # -- read --------------------------------------------------------------------------------

    def host_reads(self, desired: Sequence[Resource]) -> list[HostRead]:
        """The read script (the snapshot, the persist files, ``$SSH_CONNECTION``, the boot
        evidence), in the host's one round trip; through a read gate, the gate's own copy of
        it. A directory runs no script: nothing declared (``read`` reads its files)."""
        del desired
        transport = self.transport()
        if not transport.can_run:
            return []
        script = HostScript(self.gate_script_name, self.read_script)
        return [HostRead(transport, script=script, timeout=SCRIPT_TIMEOUT)]

    def read(self, desired: Sequence[Resource]) -> LiveState:
        reads = self.host_reads(desired)
        if not reads:
            live = LiveState()
            self._read_dir(self.transport(), self.persist_files(), live)
            return live
        return self.read_fetched(desired, fetch(reads))

    def read_fetched(self, desired: Sequence[Resource], fetched: Sequence[Fetched]) -> LiveState:
        live = LiveState()
        paths = self.persist_files()
        desired_rules = next(
            (r.value for r in desired if r.address == ruleset_address(self.fw)), None
        )
        (got,) = fetched
        output = got.script
        sections = parse_sections(output.stdout, output.boundary)
        if "ssh" not in sections:
            raise ProviderError(
                f"{self.target_id}: reading the firewall failed (exit {output.status}): "
                f"{first_line(output.stderr) or _last_line(output.stdout)}"
            )
        value = self.parse_snapshot(sections, live)
        if value is not None:
            live.resources[ruleset_address(self.fw)] = value
        self._files_from_sections(sections, paths, live)
        self._check_ssh(desired_rules, sections["ssh"].body.strip(), live)
        evidence = {name: sections[name].body for name in BOOT_SHELL if name in sections}
        self._check_boot(paths, evidence, live)
        return live

    @property
    def gate_script_name(self) -> str:
        return f"firewall-{self.name}"

    def read_script(self, boundary: str) -> str:
        """The script ``read`` runs: the snapshot, the persist files, ``$SSH_CONNECTION``
        and the boot evidence, as sections between ``boundary`` lines."""
        sections = {
            **self.snapshot_sections(),
            "digest": 'printf "%s" "$sipctl_digest"',
            "other": self.other_backend_shell,
            "ssh": SSH_CONNECTION_SHELL,
        }
        script = [self.snapshot()]
        script += [section_shell(boundary, name, shell) for name, shell in sections.items()]
        for path in self.persist_files().values():
            script.append(section_shell(boundary, f"file {path}", cat_shell(path)))
        for name, shell in BOOT_SHELL.items():
            script.append(section_shell(boundary, name, shell))
        return "".join(script)

    def gate_reads(self, desired: Sequence[Resource]) -> list[GateReads]:
        """What ``read`` asks of the host, for its read gate: the script, with the gate's
        marker ``$m`` as its boundary."""
        del desired
        return [GateReads(self.target, scripts=((self.gate_script_name, self.read_script("$m")),))]

    def _check_boot(self, paths: dict[str, str], evidence: dict[str, str], live: LiveState) -> None:
        if self.fw.ensure == "present":
            live.notes.extend(boot_warnings(self.fw.backend, paths, evidence))

    def _read_dir(self, transport: HostTransport, paths: dict[str, str], live: LiveState) -> None:
        """A ``dir:`` target: the persist files are the whole live state; nothing runs."""
        if not paths:
            live.problems.append(
                f"firewall.target {self.target} is a directory, where no rules can be loaded, "
                "and firewall.persist is not set: there is nothing to write. Set firewall.persist "
                "(e.g. /etc/iptables.up) or give firewall a host as target"
            )
            return
        found = transport.read_files([*paths.values(), *BOOT_FILES.values()])
        evidence = {
            name: ("installed" if found[path].exists and name.endswith("persistent") else "")
            or found[path].text()
            for name, path in BOOT_FILES.items()
        }
        texts: dict[str, str | None] = {}
        for path in paths.values():
            host_file = found[path]
            text = host_file.text() if host_file.exists else None
            texts[path] = text
            live.kept_as(self.kept_type).files[path] = host_file.content
            if text is not None:
                live.resources[file_address(path)] = persist_file_shown(text)
        value = self.parse_persist({key: texts[path] for key, path in paths.items()})
        if value is not None:
            live.resources[ruleset_address(self.fw)] = value
        live.skipped.append(
            f"{self.target} is a directory: only {', '.join(paths.values())} "
            "written, no rules loaded (the host loads them from there at boot)"
        )
        self._check_boot(paths, evidence, live)

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
            live.resources[file_address(path)] = persist_file_shown(section.body)
        live.kept_as(self.kept_type).files = files

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

    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        del riders  # no lock site of its own: nothing rides here
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
        from sipctl.providers.transport.pool import FileWrite

        known = live.kept_as(self.kept_type).files
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
        names = ApplyNames.new()
        confirming = self.ref.kind == "ssh"
        script = apply_script(
            names,
            snapshot=self.snapshot(),
            expected_digest=live.kept_as(self.kept_type).digest,
            steps=self.steps(change.after, live, names.delimiter),
            confirm_seconds=self.fw.confirm_seconds if confirming else None,
        )
        started = time.monotonic()
        try:
            result = transport.run("/bin/sh -s", stdin=script.encode(), timeout=SCRIPT_TIMEOUT)
        except ProviderError as exc:
            if not confirming:
                raise
            raise ProviderError(
                f"{exc}; if the new firewall rules were applied before the connection was "
                f"lost, the host puts the old ones back by itself within "
                f"{self.fw.confirm_seconds} s (the rollback timer is armed before any change)"
            ) from exc
        outcome = result.stdout
        if f"{names.boundary} stale" in outcome:
            raise StalePlanError(
                f"{self.target_id}: the firewall rules changed since the plan was read; "
                "nothing was changed. Run plan again"
            )
        if f"{names.boundary} failed" in outcome:
            log = outcome.split(f"{names.boundary} failed", 1)[1].strip()
            raise ProviderError(
                f"{self.target_id}: {self.name} refused the new rules, so the old ones were "
                f"put back: {first_line(log) or 'no message'}"
            )
        if f"{names.boundary} applied" not in outcome:
            armed = f"; a rollback is armed on the host ({names.stem})" if confirming else ""
            raise ProviderError(
                f"{self.target_id}: applying the firewall rules failed (exit "
                f"{result.exit_status}): {first_line(result.stderr or outcome)}{armed}"
            )
        what = self.describe(change.after)
        if not confirming:
            return [f"{self.target_id}: {what}"]
        self._confirm(transport, names.stem, started)
        return [f"{self.target_id}: {what}; confirmed over a new SSH connection"]

    def _confirm(self, transport: HostTransport, stem: str, started: float) -> None:
        confirm(transport, stem, started, self.fw.confirm_seconds, self.target_id)


def _last_line(text: str) -> str:
    """The last line a script printed (its stderr is in its output with a normal login)."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no answer"
