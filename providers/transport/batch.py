"""Declared host reads, fetched together: one round trip per host for every layer's reads.

A provider whose read needs files, private keys, programs whose words do not depend on any
file, or a read script (the firewall's) of a host declares them before anything is read
(``Provider.host_reads``: a list of ``HostRead``). The engine gathers every declaration of a
run - each layer's, the host's record of the last apply, a page's record - and ``fetch`` asks
each host for all of them in ONE round trip (``HostTransport.read_and_run``: the files, then
the programs, the scripts last as ``/bin/sh -c``); each provider then reads
from what was fetched (``Provider.read_fetched``). Through the read gate (a read-only login)
that round trip is one request to the gate, whose table is the union of the same reads; a
private key is answered there only as its sha256 and public key (``HostRead.keys``).

A provider's own ``read`` fetches its declaration alone (``fetch`` of its reads): the same
rule, one round trip per host it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sipctl.errors import ProviderError
from sipctl.providers.transport.files import new_marker
from sipctl.providers.transport.pool import CommandResult, HostFile, HostTransport
from sipctl.providers.transport.read_gate import PublicKeyAnswer, gated


@dataclass(frozen=True)
class HostScript:
    """A read-only POSIX sh script that prints sections between boundary lines: ``text``
    given the boundary. With a normal login it runs as ``/bin/sh -c`` among the round trip's
    programs; through a read gate the gate runs its own copy, ``gate_name`` (rendered from
    ``gate_reads``), with the request's marker as the boundary."""

    gate_name: str
    text: Callable[[str], str]


@dataclass(frozen=True)
class ScriptOutput:
    """What a ``HostScript`` printed: the boundary of its sections, its output, its exit
    status and its stderr (through a gate: the gate's own status and stderr)."""

    boundary: str
    stdout: str
    status: int
    stderr: str


@dataclass(frozen=True)
class HostRead:
    """Files and programs one read asks of one host, known before anything is read.

    ``keys`` are private keys: read as files (into ``Fetched.files``) with a normal login;
    through a read gate only their sha256 and public key are answered (``Fetched.keys``).
    ``programs`` are words (``run_programs``); they run after every file of the round trip
    is read, and their results come back in the order given."""

    transport: HostTransport
    files: tuple[str, ...] = ()
    programs: tuple[tuple[str, ...], ...] = ()
    keys: tuple[str, ...] = ()
    script: HostScript | None = None
    timeout: float = 60.0


@dataclass
class Fetched:
    """What one ``HostRead`` got: its files by path, its keys' answers through a read gate,
    its programs' results; or the error of its host's round trip (raised by each of them, so
    a provider that can live without that host asks ``error`` first)."""

    read: HostRead
    _files: dict[str, HostFile] = field(default_factory=dict)
    _results: list[CommandResult] = field(default_factory=list)
    _keys: dict[str, PublicKeyAnswer] = field(default_factory=dict)
    _script: ScriptOutput | None = None
    error: ProviderError | None = None

    def _checked(self) -> None:
        if self.error is not None:
            raise self.error

    @property
    def files(self) -> dict[str, HostFile]:
        self._checked()
        return self._files

    @property
    def results(self) -> list[CommandResult]:
        self._checked()
        return self._results

    @property
    def keys(self) -> dict[str, PublicKeyAnswer]:
        """Through a read gate: each key's answer (with a normal login keys are files)."""
        self._checked()
        return self._keys

    @property
    def script(self) -> ScriptOutput:
        """What the read's ``script`` printed."""
        self._checked()
        if self._script is None:
            raise ValueError("sipctl bug: this read declared no script")
        return self._script


def fetch(reads: Sequence[HostRead]) -> list[Fetched]:
    """Each of ``reads`` fetched, all reads of one host in one round trip (a file or program
    asked by several reads is asked once); one ``Fetched`` per read, in order."""
    by_host: dict[int, list[int]] = {}
    for index, read in enumerate(reads):
        by_host.setdefault(id(read.transport), []).append(index)
    fetched: dict[int, Fetched] = {}
    for indexes in by_host.values():
        mine = [reads[i] for i in indexes]
        try:
            got = _RoundTrip(mine)
        except ProviderError as exc:
            fetched.update((i, Fetched(reads[i], error=exc)) for i in indexes)
            continue
        for i in indexes:
            read = reads[i]
            own_files = {p: got.files[p] for p in (*read.files, *read.keys) if p in got.files}
            own_keys = {p: got.keys[p] for p in read.keys if p in got.keys}
            own_results = [got.results[argv] for argv in read.programs]
            script = got.scripts.get(id(read.script)) if read.script is not None else None
            fetched[i] = Fetched(read, own_files, own_results, own_keys, script)
    return [fetched[i] for i in range(len(reads))]


class _RoundTrip:
    """The reads of one host (one transport), asked at once: through a read gate one
    request of files, keys, programs and the first script; with a normal login one
    ``read_and_run`` whose programs end with the scripts (``/bin/sh -c``)."""

    def __init__(self, reads: Sequence[HostRead]) -> None:
        transport = reads[0].transport
        paths = list(dict.fromkeys(p for read in reads for p in read.files))
        keys = list(dict.fromkeys(p for read in reads for p in read.keys if p not in paths))
        programs = list(dict.fromkeys(argv for read in reads for argv in read.programs))
        scripts = [read.script for read in reads if read.script is not None]
        timeout = max(read.timeout for read in reads)
        self.files: dict[str, HostFile] = {}
        self.keys: dict[str, PublicKeyAnswer] = {}
        self.results: dict[tuple[str, ...], CommandResult] = {}
        self.scripts: dict[int, ScriptOutput] = {}
        if not paths and not keys and not programs and not scripts:
            return
        gate = gated(transport)
        if gate is not None:
            first = scripts[0] if scripts else None
            name = first.gate_name if first is not None else None
            self.files, answers, results, shown = gate.gate_read(
                paths, keys, programs, script=name, timeout=timeout
            )
            self.keys = {answer.path: answer for answer in answers}
            if first is not None and shown is not None:
                self.scripts[id(first)] = ScriptOutput(shown[0], shown[1], 0, "")
            for script in scripts[1:]:  # a second script: a request of its own
                boundary, stdout, status, stderr = gate.gate_script(script.gate_name, timeout)
                self.scripts[id(script)] = ScriptOutput(boundary, stdout, status, stderr)
        else:
            boundaries = [new_marker() for _ in scripts]
            runs = [
                ("/bin/sh", "-c", script.text(boundary))
                for script, boundary in zip(scripts, boundaries, strict=True)
            ]
            asked = [list(argv) for argv in (*programs, *runs)]
            self.files, results = transport.read_and_run(paths + keys, asked, timeout=timeout)
            for script, boundary, result in zip(
                scripts, boundaries, results[len(programs) :], strict=True
            ):
                self.scripts[id(script)] = ScriptOutput(
                    boundary, result.stdout, result.exit_status, result.stderr
                )
            results = results[: len(programs)]
        self.results = dict(zip(programs, results, strict=True))
