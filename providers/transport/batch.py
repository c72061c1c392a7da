"""Declared host reads, fetched together: one round trip per host for every layer's reads.

A provider whose read needs files (and programs whose words do not depend on any file) of a
host declares them before anything is read (``Provider.host_reads``: a list of ``HostRead``).
The engine gathers every declaration of a run - each layer's, the host's record of the last
apply, a page's record - and ``fetch`` asks each host for all of them in ONE round trip
(``HostTransport.read_and_run``: the files, then the programs); each provider then reads
from what was fetched (``Provider.read_fetched``). Through the read gate (a read-only login)
that round trip is one request to the gate, whose table is the union of the same reads.

A provider's own ``read`` fetches its declaration alone (``fetch`` of its reads): the same
rule, one round trip per host it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sipctl.errors import ProviderError
from sipctl.providers.transport.pool import CommandResult, HostFile, HostTransport


@dataclass(frozen=True)
class HostRead:
    """Files and programs one read asks of one host, known before anything is read.

    ``programs`` are words (``run_programs``); they run after every file of the round trip
    is read, and their results come back in the order given."""

    transport: HostTransport
    files: tuple[str, ...] = ()
    programs: tuple[tuple[str, ...], ...] = ()
    timeout: float = 60.0


@dataclass
class Fetched:
    """What one ``HostRead`` got: its files by path and its programs' results; or the error
    of its host's round trip (raised by ``files`` and ``results``, so a provider that can
    live without that host asks ``error`` first)."""

    read: HostRead
    _files: dict[str, HostFile] = field(default_factory=dict)
    _results: list[CommandResult] = field(default_factory=list)
    error: ProviderError | None = None

    @property
    def files(self) -> dict[str, HostFile]:
        if self.error is not None:
            raise self.error
        return self._files

    @property
    def results(self) -> list[CommandResult]:
        if self.error is not None:
            raise self.error
        return self._results


def fetch(reads: Sequence[HostRead]) -> list[Fetched]:
    """Each of ``reads`` fetched, all reads of one host in one round trip (a file asked by
    several reads is read once); one ``Fetched`` per read, in order."""
    by_host: dict[int, list[int]] = {}
    for index, read in enumerate(reads):
        by_host.setdefault(id(read.transport), []).append(index)
    fetched: list[Fetched | None] = [None] * len(reads)
    for indexes in by_host.values():
        mine = [reads[i] for i in indexes]
        paths = list(dict.fromkeys(p for read in mine for p in read.files))
        programs = [list(argv) for read in mine for argv in read.programs]
        if not paths and not programs:
            for i in indexes:
                fetched[i] = Fetched(reads[i])
            continue
        transport = mine[0].transport
        timeout = max(read.timeout for read in mine)
        try:
            files, results = transport.read_and_run(paths, programs, timeout=timeout)
        except ProviderError as exc:
            for i in indexes:
                fetched[i] = Fetched(reads[i], error=exc)
            continue
        start = 0
        for i in indexes:
            read = reads[i]
            own = results[start : start + len(read.programs)]
            start += len(read.programs)
            fetched[i] = Fetched(read, {p: files[p] for p in read.files}, own)
    return [f for f in fetched if f is not None]
