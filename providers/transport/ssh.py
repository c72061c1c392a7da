"""A host reached over SSH (paramiko): one connection per host per run, reads batched.

The connection is opened on first use and kept until ``close``: every layer on the host
(Asterisk, firewall, fail2ban) shares it through ``ctx.transports``. Each exchange is one
exec channel; ``connections`` and ``round_trips`` count them so that tests and the benchmark
can hold us to "one connection per host, batched reads".

With ``SIPCTL_SSH_READ_ONLY=1`` in the environment (the plan jobs of a pipeline) the login
is read-only: every read goes to the host's read gate as a request (``read_gate.py``), never
as a script, and whatever writes (``run``, ``write_files``, the host lock) is refused before
anything is sent. The key of such a job is tied to the gate by ``command=`` on the host.

The login (host key, user, key) is ``ssh_login.SshLogin``.
"""

from __future__ import annotations

import re
import select
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from sipctl.errors import FileTooLarge, ProviderError, RefusedError, StalePlanError
from sipctl.providers.bookkeeping import (
    BOOKKEEPING_DIR,
    MAX_READ_BYTES,
    private_dir_script,
    symlink_refused,
)
from sipctl.providers.transport.files import (
    TOO_LARGE,
    ScriptOutputError,
    new_marker,
    parse_read_output,
    parse_rmdir_output,
    parse_write_output,
    read_command,
    restore_failures,
    restore_script,
    rmdir_script,
    write_script,
)
from sipctl.providers.transport.local import program_name, stale_message, symlink_message
from sipctl.providers.transport.pool import CommandResult, FileWrite, HostFile, HostTransport
from sipctl.providers.transport.programs import batch_script, parse_batch_output
from sipctl.providers.transport.read_gate import (
    GATE_REFUSED,
    READ_ONLY_ENV,
    SSH_COMMAND,
    GateError,
    PublicKeyAnswer,
    parse_keys,
    read_only_login,
)
from sipctl.providers.transport.read_gate import request as gate_request
from sipctl.providers.transport.ssh_login import SshLogin
from sipctl.schemas.targets import TargetRef
from sipctl.schemas.values import canonical_path

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.spec import Ssh

_IO_TIMEOUT = 120.0  # for the batched file scripts
_OUTPUT_GRACE = 0.5  # how long to wait for output after the exit status, with none arriving
# The most one command may send back (stdout and stderr together): a batched read's files
# (each at most MAX_READ_BYTES, base64) and programs' answers are far less; a host that
# sends without end (a program that never stops writing) is cut off here, not read into
# memory until the timeout.
MAX_OUTPUT_BYTES = 4 * MAX_READ_BYTES


class ReadOnlyLoginError(RefusedError):
    """A write (or a script) asked of a read-only login: refused before anything is sent."""


def gate_hint(ref: object) -> str:
    return (
        f"render the gate for this spec with `sipctl read-gate -f SPEC` and install it on {ref} "
        f"(`sipctl read-gate --help` shows how); or unset {READ_ONLY_ENV} to use a normal login"
    )


class SshTransport:
    """Files and programs on a remote host. Constructed without I/O; connects on first use."""

    def __init__(self, ref: TargetRef, options: Ssh, ctx: RunContext) -> None:
        self.ref = ref
        self._options = options
        self._ctx = ctx
        self._client: paramiko.SSHClient | None = None
        self._last_writes: dict[str, bool] = {}  # path -> existed before the last write_files
        self.connections = 0
        self.round_trips = 0
        # Directories this run has made sure of on the host: root's own, 0700, not a link
        # (only root could change that since). The host lock's script does it first thing.
        self.private_dirs: set[str] = set()
        self._login = SshLogin(ref, options, ctx)
        self.user = self._login.user
        self.read_only = read_only_login(ctx.env)

    @property
    def can_run(self) -> bool:
        return True

    @property
    def sudo(self) -> bool:
        return self._options.sudo

    # -- connecting (the login itself: ssh_login.py) ------------------------------------------

    @property
    def known_hosts(self) -> Path:
        return self._login.known_hosts

    def _connected(self) -> paramiko.SSHClient:
        if self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return self._client
            self._client.close()
            self._client = None
            # A connection that dropped is re-made once; counted, so a test notices.
        self.connections += 1
        self._client = self._login.connect()
        if self.read_only:
            self._ctx.log(
                f"{self.ref}: read-only login ({READ_ONLY_ENV}): every read goes through the "
                "host's read gate; no host lock is taken and nothing can be written"
            )
        return self._client

    # -- running -----------------------------------------------------------------------------

    def _refuse_write(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyLoginError(
                f"{self.ref}: {what} needs a login that may write, and this one is read-only "
                f"({READ_ONLY_ENV} is set): nothing was sent to the host",
                hint="plan with the read-only login; apply from a job that has the write key "
                f"and no {READ_ONLY_ENV}",
            )

    def _wrap(self, command: str) -> str:
        if not self._options.sudo or self.read_only:
            return command
        return f"sudo -n /bin/sh -c {shlex.quote(command)}"

    def _open_channel(self) -> paramiko.Channel:
        client = self._connected()
        transport = client.get_transport()
        assert transport is not None
        self.round_trips += 1
        try:
            return transport.open_session(timeout=self._options.connect_timeout)
        except (paramiko.SSHException, OSError) as exc:
            raise ProviderError(f"{self.ref}: cannot open a channel: {exc}") from exc

    def exec_channel(self, command: str) -> paramiko.Channel:
        """Start ``command`` (through sudo when configured) and hand over its live channel.

        For what must stay open while the run goes on, like the host lock (a ``flock`` that
        holds until its stdin closes). The caller reads it and closes it; it counts as one
        round trip on this connection.
        """
        self._refuse_write(f"running {program_name(command)} (a held command, e.g. the host lock)")
        channel = self._open_channel()
        try:
            channel.exec_command(self._wrap(command))
        except (paramiko.SSHException, OSError) as exc:
            channel.close()
            raise ProviderError(f"{self.ref}: cannot run {program_name(command)}: {exc}") from exc
        return channel

    def _exec(
        self, command: str, stdin: bytes | None, timeout: float, what: str
    ) -> tuple[int, bytes, bytes]:
        """One exec channel: returns exit status, stdout and stderr (raw)."""
        channel = self._open_channel()
        deadline = time.monotonic() + timeout
        out: list[bytes] = []
        err: list[bytes] = []
        try:
            channel.exec_command(self._wrap(command))
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            last_data = time.monotonic()
            received = [0]

            def take() -> int:
                """Read what has come (a bounded share); refuse output without end."""
                got = _drain(channel, out, err)
                received[0] += got
                if received[0] > MAX_OUTPUT_BYTES:
                    raise ProviderError(
                        f"{self.ref}: {what} sent more than {MAX_OUTPUT_BYTES >> 20} MiB of "
                        "output, more than sipctl reads of one command; stopped it. Is it the "
                        "program the host's profile names, and does it end?"
                    )
                return got

            while True:
                if take():
                    last_data = time.monotonic()
                now = time.monotonic()
                if channel.exit_status_ready() or channel.closed:
                    if channel.eof_received or channel.closed:
                        break
                    # The exit status can come before the last output; wait for the end of
                    # the output, unless a detached process holds the pipes open and is quiet.
                    if now - last_data > _OUTPUT_GRACE:
                        break
                if now >= deadline:
                    if channel.exit_status_ready():
                        break
                    raise ProviderError(
                        f"{self.ref}: {what} did not finish within {timeout:g} s "
                        f"(it may still be running on the host)"
                    )
                if channel.eof_received:
                    time.sleep(0.01)  # the pipe stays readable after EOF: do not spin
                else:
                    select.select([channel], [], [], min(deadline - now, 0.25))
            while take():
                pass
            status = channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as exc:
            raise ProviderError(
                f"{self.ref}: the connection failed while running {what}: {exc}"
            ) from exc
        finally:
            channel.close()
        stdout, stderr = b"".join(out), b"".join(err)
        self._check_sudo(status, stderr)
        return status, stdout, stderr

    def _check_sudo(self, status: int, stderr: bytes) -> None:
        if not self._options.sudo or self.read_only or status == 0:
            return
        text = stderr.decode("utf-8", "replace")
        if status == 127 and "sudo" in text and "not found" in text:
            raise ProviderError(
                f"{self.ref}: ssh.sudo is set, but sudo is not installed on the host"
            )
        if text.startswith("sudo:") and (
            "password is required" in text or "terminal is required" in text
        ):
            raise ProviderError(
                f"{self.ref}: sudo asks user {self.user!r} for a password; sipctl runs `sudo -n`: "
                f"allow it without a password (NOPASSWD) or log in as root"
            )

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout: float = 60.0
    ) -> CommandResult:
        self._refuse_write(f"running a script ({program_name(command)})")
        status, stdout, stderr = self._exec(command, stdin, timeout, program_name(command))
        return CommandResult(
            command, status, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")
        )

    def run_programs(
        self, programs: Sequence[Sequence[str]], *, timeout: float = 60.0
    ) -> list[CommandResult]:
        """All programs in one exec of ``/bin/sh -s``: the script, every word quoted, on
        stdin (see providers/transport/programs.py)."""
        if not programs:
            return []
        if self.read_only:
            return self.read_and_run([], programs, timeout=timeout)[1]
        marker = new_marker()
        script = batch_script(programs, marker).encode()
        first = repr(programs[0][0]) if programs[0] else "a program"
        status, stdout, stderr = self._exec("/bin/sh -s", script, timeout, first)
        return self._programs_run(programs, stdout, marker, status, stderr)

    @staticmethod
    def _programs_run(
        programs: Sequence[Sequence[str]], stdout: bytes, marker: str, status: int, stderr: bytes
    ) -> list[CommandResult]:
        """The results of a batch script's output (see programs.py)."""
        output = stdout.decode("utf-8", "replace")
        results = parse_batch_output(programs, output, marker, status)
        if stderr.strip() and results and not results[-1].ok:
            last = results[-1]
            words = stderr.decode("utf-8", "replace")
            results[-1] = CommandResult(last.command, last.exit_status, last.stdout, words)
        return results

    # -- files -------------------------------------------------------------------------------

    def read_files(self, paths: Sequence[str]) -> dict[str, HostFile]:
        if not paths:
            return {}
        if self.read_only:
            return self.read_and_run(paths, [])[0]
        for path in paths:
            _check_path(self.ref, path)
        marker = new_marker()
        status, stdout, stderr = self._exec(
            read_command([canonical_path(p) for p in paths], marker, MAX_READ_BYTES),
            None,
            _IO_TIMEOUT,
            "reading files",
        )
        return self._files_read(paths, stdout, marker, status, stderr)

    def read_and_run(
        self, paths: Sequence[str], programs: Sequence[Sequence[str]], *, timeout: float = 60.0
    ) -> tuple[dict[str, HostFile], list[CommandResult]]:
        """One ``/bin/sh -s`` script: its first line is the read command of ``read_files``
        (framed by its own marker, ending with its END line), then the programs as in
        ``run_programs``. A read-only login sends the same as one request to the gate."""
        if self.read_only:
            return self._gate_read_and_run(paths, programs, timeout)
        if not paths or not programs:
            return self.read_files(paths), self.run_programs(programs, timeout=timeout)
        for path in paths:
            _check_path(self.ref, path)
        read_marker, run_marker = new_marker(), new_marker()
        canonical = [canonical_path(p) for p in paths]
        script = read_command(canonical, read_marker, MAX_READ_BYTES)
        script += "\n" + batch_script(programs, run_marker)
        status, stdout, stderr = self._exec(
            "/bin/sh -s", script.encode(), max(timeout, _IO_TIMEOUT), "reading files"
        )
        end = f"{read_marker} END\n".encode()
        head, found, tail = stdout.partition(end)
        files = self._files_read(paths, head + found, read_marker, status, stderr)
        return files, self._programs_run(programs, tail, run_marker, status, stderr)

    def _files_read(
        self, paths: Sequence[str], stdout: bytes, marker: str, status: int, stderr: bytes
    ) -> dict[str, HostFile]:
        """The files of a read script's output; ProviderError for what cannot be read."""
        try:
            files, problems = parse_read_output(paths, stdout, marker)
        except ScriptOutputError as exc:
            raise ProviderError(
                f"{self.ref}: reading files failed ({exc}; exit {status}): {_last_line(stderr)}"
            ) from exc
        for problem in problems:
            if problem.why == TOO_LARGE:
                raise FileTooLarge(f"{problem.path} on {self.ref}", problem.size, MAX_READ_BYTES)
        for path, found in files.items():
            if found.content is not None and len(found.content) > MAX_READ_BYTES:  # it grew
                raise FileTooLarge(f"{path} on {self.ref}", len(found.content), MAX_READ_BYTES)
        links = [p for p in problems if p.refused_link]
        if links:  # the link is the news: what it points to is never read, nor named
            raise ProviderError(
                f"{self.ref}: {links[0].path} {links[0].why}",
                hint="replace the link by the file itself (a link there is how another "
                "account could make sipctl show a file of root's)",
            )
        if problems:
            listed = ", ".join(f"{p.path} ({p.why})" for p in problems)
            raise ProviderError(f"{self.ref}: cannot read {listed}")
        return files

    def write_files(self, writes: Sequence[FileWrite]) -> None:
        self._refuse_write("writing " + ", ".join(w.path for w in writes[:3]))
        self._last_writes = {}
        if not writes:
            return
        for write in writes:
            _check_path(self.ref, write.path)
        marker = new_marker()
        script = write_script(writes, marker).encode()
        status, stdout, stderr = self._exec("/bin/sh -s", script, _IO_TIMEOUT, "writing files")
        outcome = parse_write_output(writes, stdout.decode("utf-8", "replace"), marker)
        if outcome.stale is not None:
            raise StalePlanError(stale_message(str(self.ref), outcome.stale))
        if outcome.link is not None:
            raise ProviderError(symlink_message(str(self.ref), outcome.link))
        if outcome.directory_link is not None:
            raise symlink_refused(outcome.directory_link, where=str(self.ref), directory=True)
        if outcome.failed is not None:
            path, reason = outcome.failed
            raise ProviderError(f"{self.ref}: cannot write {path}: {reason} (nothing was changed)")
        if not outcome.done:
            raise ProviderError(
                f"{self.ref}: writing files failed (exit {status}): {_last_line(stderr)}; "
                f"check the files and their {'.sipctl.bak'} copies on the host"
            )
        self._last_writes = {
            w.path: w.expected is not None for w in writes if w.content != w.expected and w.undoable
        }

    def restore_backups(self, paths: Sequence[str]) -> None:
        self._refuse_write("restoring backups")
        undo = [(path, self._last_writes.pop(path)) for path in paths if path in self._last_writes]
        if not undo:
            return
        marker = new_marker()
        script = restore_script(undo, marker).encode()
        _status, stdout, stderr = self._exec("/bin/sh -s", script, _IO_TIMEOUT, "restoring backups")
        text = stdout.decode("utf-8", "replace")
        failed = restore_failures(text, marker)
        if failed or f"{marker} DONE" not in text:
            which = ", ".join(failed) or _last_line(stderr)
            raise ProviderError(f"{self.ref}: could not restore {which}")

    def ensure_bookkeeping_dir(self) -> None:
        """Once per run and host: the host lock's script makes sure of the same directory
        the same way first thing (and says so in ``private_dirs``)."""
        if BOOKKEEPING_DIR in self.private_dirs:
            return
        result = self.run(
            "/bin/sh -c " + shlex.quote(private_dir_script(BOOKKEEPING_DIR) + "echo OK")
        )
        answer = result.stdout.strip()
        if answer != "OK":
            raise ProviderError(
                f"{self.ref}: {BOOKKEEPING_DIR} is a symbolic link or not root's own "
                f"directory ({answer or result.stderr.strip() or 'no answer'})",
                hint=f"remove {BOOKKEEPING_DIR} on the host: sipctl recreates it (0700)",
            )
        self.private_dirs.add(BOOKKEEPING_DIR)

    def remove_empty_dirs(self, dirs: Sequence[str]) -> list[str]:
        if not dirs:
            return []
        self._refuse_write("removing directories " + ", ".join(dirs[:3]))
        for path in dirs:
            _check_path(self.ref, path)
        marker = new_marker()
        script = rmdir_script(dirs, marker).encode()
        status, stdout, stderr = self._exec(
            "/bin/sh -s", script, _IO_TIMEOUT, "removing directories"
        )
        removed = parse_rmdir_output(dirs, stdout.decode("utf-8", "replace"), marker)
        if removed is None:
            raise ProviderError(
                f"{self.ref}: removing empty directories failed (exit {status}): "
                f"{_last_line(stderr)}"
            )
        return removed

    # -- the read gate (a read-only login) --------------------------------------------------

    def _gate(self, body: bytes, timeout: float, what: str) -> tuple[int, bytes, bytes]:
        """One request to the host's read gate; GateRefusedError when it refuses it."""
        status, stdout, stderr = self._exec(SSH_COMMAND, body, timeout, what)
        text = stderr.decode("utf-8", "replace")
        if status == GATE_REFUSED and "sipctl-read-gate: refused:" in text:
            reason = text.split("sipctl-read-gate: refused:", 1)[1].strip().splitlines()[0]
            raise ProviderError(
                f"{self.ref}: the read gate refused {what}: {reason}. The gate installed there "
                "does not match this spec (a path, program or layer changed since it was "
                "rendered)",
                hint=gate_hint(self.ref),
            )
        if status == 127 and not stdout.strip():
            raise ProviderError(
                f"{self.ref}: {READ_ONLY_ENV} is set, but this key is not tied to sipctl's "
                f"read gate on the host (it tried to run `{SSH_COMMAND}` as a command: "
                f"{_last_line(stderr)})",
                hint=gate_hint(self.ref),
            )
        return status, stdout, stderr

    def _gate_read_and_run(
        self, paths: Sequence[str], programs: Sequence[Sequence[str]], timeout: float
    ) -> tuple[dict[str, HostFile], list[CommandResult]]:
        files, _, results, _ = self.gate_read(paths, (), programs, timeout=timeout)
        return files, results

    def gate_read(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        programs: Sequence[Sequence[str]],
        *,
        script: str | None = None,
        timeout: float = _IO_TIMEOUT,
    ) -> tuple[
        dict[str, HostFile], list[PublicKeyAnswer], list[CommandResult], tuple[str, str] | None
    ]:
        """Read-only login, ONE request to the gate: ``paths`` as ``read_files``, of each
        private key in ``keys`` only its sha256 and public key, ``programs`` as
        ``run_programs``, then the gate's script ``script``. The gate answers in that order:
        the files up to its END line, one line per key, each program's output and status,
        then the script's sections, whose boundary is the request's marker: returned last as
        (marker, output), None without a script."""
        if not paths and not keys and not programs and script is None:
            return {}, [], [], None
        marker = new_marker()
        body = self._gate_body(marker, files=paths, keys=keys, programs=programs, script=script)
        what = (
            "reading files"
            if paths or keys
            else f"running {programs[0][0]!r}"
            if programs
            else f"its script {script!r}"
        )
        status, stdout, stderr = self._gate(body, max(timeout, _IO_TIMEOUT), what)
        files: dict[str, HostFile] = {}
        answers: list[PublicKeyAnswer] = []
        tail = stdout
        if paths or keys:
            end = f"{marker} END\n".encode()
            head, found, tail = stdout.partition(end)
            if paths:
                files = self._files_read(paths, head + found, marker, status, stderr)
        if keys:
            try:
                answers = parse_keys(head + found + tail, marker, keys)
            except ValueError as exc:
                raise ProviderError(
                    f"{self.ref}: reading the keys {', '.join(keys)} failed ({exc}; exit "
                    f"{status}): {_last_line(stderr)}"
                ) from exc
            # one answer line per key, then the programs' output
            tail = tail.split(b"\n", len(keys))[-1] if tail.count(b"\n") >= len(keys) else b""
        sections = b""
        if script is not None:
            tail, sections = _after_statuses(tail, marker, len(programs))
        results = self._programs_run(programs, tail, marker, status, stderr) if programs else []
        shown = (marker, sections.decode("utf-8", "replace")) if script is not None else None
        return files, answers, results, shown

    def gate_script(self, name: str, timeout: float) -> tuple[str, str, int, str]:
        """Read-only login: run the gate's script ``name``; (marker, output, status, stderr).
        The script prints sections whose boundary is the marker."""
        marker = new_marker()
        status, stdout, stderr = self._gate(
            self._gate_body(marker, script=name), timeout, f"its script {name!r}"
        )
        text = stdout.decode("utf-8", "replace")
        return marker, text, status, stderr.decode("utf-8", "replace")

    def _gate_body(
        self,
        marker: str,
        *,
        files: Sequence[str] = (),
        keys: Sequence[str] = (),
        programs: Sequence[Sequence[str]] = (),
        script: str | None = None,
    ) -> bytes:
        try:
            return gate_request(marker, files=files, keys=keys, programs=programs, script=script)
        except GateError as exc:
            raise ProviderError(f"{self.ref}: cannot ask the read gate: {exc}") from exc

    # -- lifetime ----------------------------------------------------------------------------

    def fresh(self) -> HostTransport:
        return SshTransport(self.ref, self._options, self._ctx)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _after_statuses(output: bytes, marker: str, count: int) -> tuple[bytes, bytes]:
    """``output`` cut after its ``count``-th program status line (``<marker> <status>``):
    the programs' part, and what the gate's script printed after it."""
    if count == 0:
        return b"", output
    found = list(re.finditer(rb"\n" + re.escape(marker.encode()) + rb" -?\d+\n", output))
    if len(found) < count:
        return output, b""
    end = found[count - 1].end()
    return output[:end], b"\n" + output[end:]


_DRAIN_BYTES = 1 << 20  # read per call at most: a host that never stops sending is checked


def _drain(channel: paramiko.Channel, out: list[bytes], err: list[bytes]) -> int:
    """Read what has arrived on stdout and stderr, up to about _DRAIN_BYTES of each (so the
    caller's deadline and limit are looked at between calls); the count of bytes read."""
    got = 0
    for ready, receive, chunks in (
        (channel.recv_ready, channel.recv, out),
        (channel.recv_stderr_ready, channel.recv_stderr, err),
    ):
        taken = 0
        while taken < _DRAIN_BYTES and ready():
            chunk = receive(65536)
            chunks.append(chunk)
            taken += len(chunk)
        got += taken
    return got


def _check_path(ref: TargetRef, path: str) -> None:
    if not path.startswith("/") or "\x00" in path or "\n" in path:
        raise ProviderError(f"{ref}: {path!r} is not an absolute path")


def _last_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else "no message"
