"""Declared host reads, fetched together: one round trip per host for every layer's reads.

A provider whose read needs files (and programs whose words do not depend on any file) of a
host declares them before anything is read (``Provider.host_reads``: a list of ``HostRead``).
The engine gathers every declaration of a run - each layer's, the host's record of the last
apply, a page's record - and ``fetch`` asks each host for all of them in ONE round trip
(``HostTransport.read_and_run``: the files, then the programs); each provider then reads
from what was fetched (``Provider.read_fetched``). Through the read gate (a read-only login)
that round trip is one request to the gate, whose table is the union of the same reads; a
private key is answered there only as its sha256 and public key (``HostRead.keys``).

A provider's own ``read`` fetches its declaration alone (``fetch`` of its reads): the same
rule, one round trip per host it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sipctl.errors import ProviderError
from sipctl.providers.transport.pool import CommandResult, HostFile, HostTransport
from sipctl.providers.transport.read_gate import PublicKeyAnswer, gated


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
            files, keys, results = _one_round_trip(mine)
        except ProviderError as exc:
            fetched.update((i, Fetched(reads[i], error=exc)) for i in indexes)
            continue
        for i in indexes:
            read = reads[i]
            own_files = {p: files[p] for p in (*read.files, *read.keys) if p in files}
            own_keys = {p: keys[p] for p in read.keys if p in keys}
            own_results = [results[argv] for argv in read.programs]
            fetched[i] = Fetched(read, own_files, own_results, own_keys)
    return [fetched[i] for i in range(len(reads))]


def _one_round_trip(
    reads: Sequence[HostRead],
) -> tuple[dict[str, HostFile], dict[str, PublicKeyAnswer], dict[tuple[str, ...], CommandResult]]:
    """The reads of one host (one transport), asked at once."""
    transport = reads[0].transport
    paths = list(dict.fromkeys(p for read in reads for p in read.files))
    keys = list(dict.fromkeys(p for read in reads for p in read.keys if p not in paths))
    programs = list(dict.fromkeys(argv for read in reads for argv in read.programs))
    if not paths and not keys and not programs:
        return {}, {}, {}
    timeout = max(read.timeout for read in reads)
    gate = gated(transport)
    answers: dict[str, PublicKeyAnswer] = {}
    if gate is not None and keys:
        files, keyed, results = gate.gate_read(paths, keys, programs, timeout=timeout)
        answers = {answer.path: answer for answer in keyed}
    else:
        files, results = transport.read_and_run(paths + keys, programs, timeout=timeout)
    return files, answers, dict(zip(programs, results, strict=True))
