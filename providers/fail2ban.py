"""The ``fail2ban`` provider: sipctl's filter and jail files, and a reload of fail2ban.

``read`` (plan time) reads both files in one round trip, proves the filter sipctl is about to
write with ``fail2ban-regex`` (see ``reconciler/fail2ban_proof.py``) and asks the server
whether it runs (``fail2ban-client ping``), in one more round trip that also checks the log
file exists. Nothing is written there, so a filter that would ban the wrong address stops the
plan before any file changes.

``apply`` writes the changed files atomically (the transport keeps ``.sipctl.bak`` copies and
checks that each file is still what ``read`` saw), then runs ``fail2ban-client reload``
when the server runs. If fail2ban refuses the new configuration, the old files are put back,
fail2ban is reloaded again with them, and a ProviderError carries fail2ban's own words.

On a ``dir:`` target only the files are written; where the server does not run, the reload
is skipped. Either way the plan says so in one line.
"""

from __future__ import annotations

import functools
import hashlib
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from sipctl.errors import ProviderError
from sipctl.providers.base import Provider, UpdateRider
from sipctl.providers.load_mark import LoadMark
from sipctl.providers.transport.batch import Fetched, HostRead, fetch
from sipctl.providers.transport.host_profile import (
    host_profile_path,
    offline_program,
    resolve_program,
)
from sipctl.providers.transport.pool import CommandResult, FileWrite
from sipctl.providers.transport.read_gate import GateReads, gated
from sipctl.reconciler.fail2ban_proof import (
    judge,
    log_text,
    proof_lines,
    sshd_proof_lines,
)
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.fail2ban import (
    JAIL_NAME,
    LAYER,
    SSHD_JAIL_NAME,
    filter_path,
    jail_path,
    normalize_ini,
)
from sipctl.reconciler.resources import Address, Kept, LiveState, Resource
from sipctl.schemas.targets import parse_target

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.transport.pool import HostTransport
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Fail2ban, Ssh

_PROOF_TIMEOUT = 60.0
_CLIENT_TIMEOUT = 60.0
STOCK = ("fail2ban-client",)  # without a host profile entry

# Runs fail2ban-regex on the target when this machine has none: the filter text and the test
# log arrive on stdin, split at a marker line, in one round trip.
_REMOTE_PROOF = r"""
d=$(mktemp -d) || exit 70
trap 'rm -rf "$d"' EXIT
awk -v d="$d" -v m="$1" '
  $0 == m { part = 1; next }
  { print > (part ? d "/test.log" : d "/filter.conf") }'
fail2ban-regex -o ip "$d/test.log" "$d/filter.conf"
"""


@dataclass
class Fail2banKept(Kept):
    """What the fail2ban provider's read keeps for its apply.

    raw      sipctl's files as read, exactly (None: missing), by path
    running  the fail2ban server answered ping (a reload can follow the writes)
    mark     the mark of files written and not loaded yet (``LoadMark``), as read
    """

    raw: dict[str, bytes | None] = field(default_factory=dict)
    running: bool = False
    mark: bytes | None = None


class Fail2banProvider(Provider):
    """sipctl's two fail2ban files on one host, and that host's fail2ban server."""

    layer: ClassVar[str] = LAYER
    name: ClassVar[str] = "fail2ban"

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        spec = loaded.spec
        if spec.fail2ban is None:
            raise ProviderError("the spec has no fail2ban section: the layer is not managed")
        self._section: Fail2ban = spec.fail2ban
        self._target = spec.fail2ban_target() or "local"
        self._ssh: Ssh | None = spec.fail2ban_ssh()
        self._ctx = ctx
        self._loaded = loaded
        self._paths = (filter_path(self._section), jail_path(self._section))

    @property
    def target_id(self) -> str:
        return parse_target(self._target).key

    def _transport(self) -> HostTransport:
        return self._ctx.transports.get(self._target, self._ssh)

    def _mark(self) -> LoadMark:
        return LoadMark(LAYER, self._paths[1], "fail2ban", "fail2ban-client reload")

    # -- read ----------------------------------------------------------------------------------

    def host_reads(self, desired: Sequence[Resource]) -> list[HostRead]:
        """The two files and the server's state: the programs are fixed, so they ride with
        the files (and the host's other layers' reads) in one round trip."""
        del desired
        transport = self._transport()
        programs = self._server_programs(self._program(transport)) if transport.can_run else []
        mark = (self._mark().path,) if transport.can_run else ()  # only a reload writes it
        return [
            HostRead(
                transport,
                files=(*self._paths, *mark),
                programs=tuple(tuple(argv) for argv in programs),
                timeout=_CLIENT_TIMEOUT,
            )
        ]

    def read(self, desired: Sequence[Resource]) -> LiveState:
        return self.read_fetched(desired, fetch(self.host_reads(desired)))

    def read_fetched(self, desired: Sequence[Resource], fetched: Sequence[Fetched]) -> LiveState:
        transport = self._transport()
        (got,) = fetched
        files, answers = got.files, got.results
        live = LiveState()
        raw: dict[str, bytes | None] = {}
        for path in self._paths:
            content = files[path].content
            raw[path] = content
            if content is not None:
                text = content.decode("utf-8", "replace")
                live.resources[Address(LAYER, "file", path)] = normalize_ini(text)
        live.kept_as(Fail2banKept).raw = raw
        # The values ignore comments; a saved plan must still notice any edit of the files.
        live.fingerprint_extra = {
            path: None if content is None else hashlib.sha256(content).hexdigest()
            for path, content in raw.items()
        }
        if transport.can_run:
            mark = files[self._mark().path].content
            live.kept_as(Fail2banKept).mark = mark
            self._mark().read(mark, live, self.target_id)
        wanted = {r.address.name: r for r in desired}
        new_filter = wanted.get(self._paths[0])
        if new_filter is not None and live.resources.get(new_filter.address) != new_filter.value:
            self._prove(str(new_filter.payload), transport, live)
        new_jail = wanted.get(self._paths[1])
        jail_changes = (
            new_jail is not None and live.resources.get(new_jail.address) != new_jail.value
        )
        if self._section.sshd and jail_changes:
            self._prove_sshd(live)
        self._server_state(transport, answers, live, new_jail is not None and not jail_changes)
        return live

    def gate_reads(self, desired: Sequence[Resource]) -> list[GateReads]:
        """What ``read`` asks of the host, for its read gate."""
        key = self._key()
        program = offline_program(self._ctx, "fail2ban", self._section.program, key)
        programs = tuple(tuple(argv) for argv in self._server_programs(program or STOCK))
        del desired
        files = (*self._paths, self._mark().path, host_profile_path(self._ctx.env))
        return [GateReads(self._target, files=files, programs=programs)]

    def _key(self) -> str:
        return f"{self._loaded.where(('fail2ban', 'program'))}: fail2ban.program"

    def _program(self, transport: HostTransport) -> tuple[str, ...]:
        """How fail2ban-client runs on the target: its host profile's entry, never the spec."""
        words = resolve_program(
            self._ctx, transport, "fail2ban", self._section.program, self._key()
        )
        return words or STOCK

    def _prove(self, filter_text: str, transport: HostTransport, live: LiveState) -> None:
        """Run fail2ban-regex on the proof log: here if installed, else on the target."""
        lines = proof_lines()
        program = local_fail2ban_regex()
        if program is not None:
            where = "this machine"
            output = _prove_here(program, filter_text, log_text(lines))
        elif gated(transport) is not None:
            live.notes.append(
                f"fail2ban filter NOT proven: fail2ban-regex is not installed on this machine, "
                f"and the read-only login to {transport.ref} runs no scripts; install fail2ban "
                "here to have it checked"
            )
            return
        elif transport.can_run:
            where = str(transport.ref)
            marker = "@sipctl-split@"
            words = ["sh", "-c", _REMOTE_PROOF, "sh", marker]
            stdin = f"{filter_text}\n{marker}\n{log_text(lines)}".encode()
            result = transport.run(
                " ".join(shlex.quote(w) for w in words), stdin=stdin, timeout=_PROOF_TIMEOUT
            )
            if result.exit_status == 127:
                live.notes.append(
                    f"fail2ban filter NOT proven: fail2ban-regex is on neither this machine nor "
                    f"{where}; install fail2ban here to have it checked before it is written"
                )
                return
            output = result.stdout if result.ok else None
            if output is None:
                live.problems.append(
                    f"{self.target_id}: fail2ban-regex failed on the filter sipctl would write: "
                    f"{_words(result)}"
                )
                return
        else:
            live.notes.append(
                f"fail2ban filter NOT proven: fail2ban-regex is not installed on this machine "
                f"and {transport.ref} runs no programs; install fail2ban here to have it checked"
            )
            return
        if output is None:
            live.problems.append(
                "fail2ban-regex (on this machine) refused the filter sipctl would write; "
                "this is a bug in sipctl, please report it"
            )
            return
        problems = judge(lines, output)
        for problem in problems:
            live.problems.append(
                f"the fail2ban filter sipctl would write is wrong (proven with fail2ban-regex on "
                f"{where}): {problem}; nothing was written"
            )
        if not problems:
            self._ctx.log(f"fail2ban filter proven with fail2ban-regex on {where}")

    def _prove_sshd(self, live: LiveState) -> None:
        """The stock sshd filter against sshd's own failure lines, with this machine's
        fail2ban-regex and filter (the jail uses the target's stock filter of that name)."""
        program = local_fail2ban_regex()
        stock = Path("/etc/fail2ban/filter.d/sshd.conf")
        if program is None or not stock.exists():
            live.notes.append(
                "sshd jail NOT proven: fail2ban-regex and the stock sshd filter are not on "
                "this machine; install fail2ban here to have it checked"
            )
            return
        lines = sshd_proof_lines()
        output = _prove_here(program, stock.read_text(), log_text(lines), stock.parent)
        problems = judge(lines, output) if output is not None else ["fail2ban-regex failed"]
        for problem in problems:
            live.problems.append(
                f"the stock sshd filter does not catch sshd's failed logins (proven with "
                f"fail2ban-regex on this machine): {problem}; nothing was written"
            )
        if not problems:
            self._ctx.log("sshd jail proven with fail2ban-regex on this machine")

    def _server_programs(self, program: Sequence[str]) -> list[list[str]]:
        """What ``read`` asks the host about the server (read only): is it running, does
        the log file exist, and which jails it runs."""
        return [[*program, "ping"], ["test", "-e", self._section.logpath], [*program, "status"]]

    def _server_state(
        self,
        transport: HostTransport,
        answers: Sequence[CommandResult],
        live: LiveState,
        jail_settled: bool = False,
    ) -> None:
        """Whether a reload can follow the writes, from the answers to _server_programs;
        ``jail_settled``: sipctl's jail file is as the spec wants (the plan leaves it)."""
        live.kept_as(Fail2banKept).running = False
        if not transport.can_run:
            live.skipped.append(
                f"{transport.ref}: files only; 'fail2ban-client reload' is skipped "
                "(a directory target runs no programs)"
            )
            return
        logpath = self._section.logpath
        ping, log_check, *status_answer = answers
        answer, status, log_exists = ping.stdout.strip(), ping.exit_status, log_check.ok
        if status == 0 and "pong" in answer:
            live.kept_as(Fail2banKept).running = True
            if status_answer and self._section.sshd:
                self._note_admins_sshd_jails(status_answer[0], live)
            if status_answer and jail_settled:
                self._note_jails_not_running(status_answer[0], live)
        elif status == 127:
            live.skipped.append(
                f"{self.target_id}: {self._program(transport)[0]!r} was not found; the "
                "files are written and the reload is skipped (is fail2ban installed?)"
            )
        elif "Is fail2ban running?" in answer:
            live.skipped.append(
                f"{self.target_id}: fail2ban is not running; the files are written and "
                "'fail2ban-client reload' is skipped"
            )
        else:
            # Something else answered (e.g. no permission on the socket): say what it said.
            said = _words(CommandResult(ping.command, status or 1, answer, ""))
            live.skipped.append(
                f"{self.target_id}: fail2ban-client ping failed ({said}); the files are "
                "written and the reload is skipped"
            )
        if self._section.enabled and not log_exists:
            live.notes.append(
                f"{self.target_id}: the log file {logpath} does not exist yet; fail2ban refuses "
                "a jail without its log file (have Asterisk write it, see logger.conf)"
            )

    def _note_jails_not_running(self, result: CommandResult, live: LiveState) -> None:
        """sipctl's jail file is as wanted, yet fail2ban runs not every jail it defines: a
        file fail2ban reads after jail.d/*.conf (jail.local, jail.d/*.local) turned one off,
        or the server was not reloaded. The files alone said "No changes" while no caller
        was banned. ``result``: ``fail2ban-client status``."""
        wanted = [JAIL_NAME] if self._section.enabled else []
        wanted += [SSHD_JAIL_NAME] if self._section.sshd else []
        running = jail_list(result.stdout)
        for jail in wanted:
            if jail not in running:
                live.notes.append(
                    f"{self.target_id}: fail2ban runs no jail {jail}, which sipctl's "
                    f"{self._paths[1]} defines: a file fail2ban reads after it (jail.local, "
                    "jail.d/*.local) turns it off, or fail2ban was not reloaded; nobody is "
                    "banned by it. See 'fail2ban-client -d' for the jails as fail2ban reads them"
                )

    def _note_admins_sshd_jails(self, result: CommandResult, live: LiveState) -> None:
        """An sshd jail of the admin's own (Debian enables ``[sshd]`` by default) is left
        alone; the plan says that both will ban. ``result``: ``fail2ban-client status``."""
        theirs = [
            jail for jail in jail_list(result.stdout) if "sshd" in jail and jail != SSHD_JAIL_NAME
        ]
        if theirs:
            live.notes.append(
                f"{self.target_id}: fail2ban already runs an sshd jail of its own "
                f"({', '.join(theirs)}); sipctl leaves it alone and adds {SSHD_JAIL_NAME} "
                "beside it (each bans on its own; set fail2ban.sshd: false to keep only yours)"
            )

    # -- apply ---------------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        del riders  # no lock site of its own: nothing rides here
        if not changes:
            return []
        kept = live.kept_as(Fail2banKept)
        raw = kept.raw
        writes: list[FileWrite] = []
        lines: list[str] = []
        for change in changes:
            path = change.address.name
            if change.address.layer != LAYER or path not in self._paths:
                raise ProviderError(f"{self.target_id}: {change.address} is not a fail2ban file")
            if change.action == "delete":
                content = None
            else:
                if not isinstance(change.payload, str):
                    raise ProviderError(f"{change.address}: the plan holds no text to write")
                content = change.payload.encode()
            writes.append(FileWrite(path, content, expected=raw.get(path)))
            verb = {"create": "created", "update": "updated", "delete": "deleted"}[change.action]
            lines.append(f"{verb} {path}")
        transport = self._transport()
        if not transport.can_run:
            transport.write_files(writes)
            lines.append(f"{transport.ref}: reload skipped (a directory target runs no programs)")
            return lines
        if not kept.running:  # a server started later reads the files as they are
            transport.write_files(writes)
            lines.append(f"{self.target_id}: fail2ban is not running; reload skipped")
            return lines
        # marked as not loaded before the files are renamed, in the same batch
        mark = self._mark().before(changes, kept.mark)
        transport.ensure_bookkeeping_dir()
        transport.write_files([mark, *writes])
        result = self._client(transport, "reload")
        if result.ok:
            self._mark().loaded(transport, mark)
        else:
            written = [w.path for w in writes]
            try:
                transport.restore_backups(written)
            except ProviderError as exc:
                raise ProviderError(
                    f"{self.target_id}: fail2ban refused the new configuration: "
                    f"{_words(result)}; putting the previous files back failed too: {exc}"
                ) from exc
            again = self._client(transport, "reload")
            if again.ok:
                self._mark().loaded(transport, mark)  # fail2ban runs the old files again
            state = (
                "fail2ban runs with the previous files again"
                if again.ok
                else f"reloading the previous files failed too: {_words(again)}"
            )
            raise ProviderError(
                f"{self.target_id}: fail2ban refused the new configuration: {_words(result)}. "
                f"The previous files are back; {state}"
            )
        lines.append(f"{self.target_id}: fail2ban reloaded")
        return lines

    def _client(self, transport: HostTransport, verb: str) -> CommandResult:
        """fail2ban-client ``verb``: run as a program with its words, never by a shell."""
        argv = [*self._program(transport), verb]
        return transport.run_programs([argv], timeout=_CLIENT_TIMEOUT)[0]


def local_fail2ban_regex() -> str | None:
    """fail2ban-regex on this machine, if installed."""
    return shutil.which("fail2ban-regex")


def _prove_here(
    program: str, filter_text: str, log: str, filter_dir: Path | None = None
) -> str | None:
    """``fail2ban-regex -o ip`` on this machine; its stdout, or None when it failed.

    ``filter_dir``: where the filter's ``before = common.conf`` is found (a stock filter)."""
    try:
        found = Path(program).stat()
        common = None if filter_dir is None else (filter_dir / "common.conf").read_text()
    except OSError as exc:
        raise ProviderError(f"cannot run fail2ban-regex on this machine: {exc}") from exc
    return _proven(program, found.st_size, found.st_mtime_ns, filter_text, common, log)


# What fail2ban-regex answered, by everything its answer depends on: the program (its file's
# size and time, so an upgrade proves again), the filter's exact text, the common.conf it
# includes and the log. It takes a quarter of a second of CPU, and an apply read the host
# twice (for its plan, and again to apply), so it proved the same filter twice; a test
# process, in every test. Bounded, as a fleet worker lives long and meets ever new filters
# (each host's, each version's): the least recently used answers give way (an entry is a
# few KB; a failure to run is raised, never kept).
_PROVEN_ENTRIES = 256


@functools.lru_cache(maxsize=_PROVEN_ENTRIES)
def _proven(
    program: str, _size: int, _mtime_ns: int, filter_text: str, common: str | None, log: str
) -> str | None:
    return _run_fail2ban_regex(program, filter_text, log, common)


def _run_fail2ban_regex(program: str, filter_text: str, log: str, common: str | None) -> str | None:
    with tempfile.TemporaryDirectory(prefix="sipctl-f2b-") as tmp:
        directory = Path(tmp)
        if common is not None:
            (directory / "common.conf").write_text(common)
        (directory / "filter.conf").write_text(filter_text)
        (directory / "test.log").write_text(log)
        try:
            done = subprocess.run(
                [program, "-o", "ip", str(directory / "test.log"), str(directory / "filter.conf")],
                capture_output=True,
                text=True,
                timeout=_PROOF_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProviderError(f"cannot run fail2ban-regex on this machine: {exc}") from exc
    return done.stdout if done.returncode == 0 else None


def jail_list(status: str) -> list[str]:
    """The jails of ``fail2ban-client status`` (its ``Jail list:`` line)."""
    for line in status.splitlines():
        if "Jail list:" in line:
            return [j.strip() for j in line.split("Jail list:", 1)[1].split(",") if j.strip()]
    return []


def _words(result: CommandResult) -> str:
    """fail2ban's own words, one line: its ERROR lines without the log-line prefix."""
    text = f"{result.stdout}\n{result.stderr}"
    errors = []
    for line in text.splitlines():
        if "ERROR" in line:
            errors.append(line.split("ERROR", 1)[1].strip())
    if not errors:
        errors = [line.strip() for line in text.splitlines() if line.strip()][-2:]
    found = "; ".join(dict.fromkeys(errors))
    return found or f"exit status {result.exit_status}"
