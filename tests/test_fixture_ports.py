"""The test servers' ports (fixtures.ports): what parallel workers reserve never overlaps,
never lies where the kernel hands out ports by itself, and is given back when a process
releases it or ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fixtures.ports import _kernel_range, _locked_entries, release_ports, reserve_port

TESTS = Path(__file__).resolve().parent

# A worker: reserves N ports, prints them, and holds them until its stdin closes.
WORKER = """\
import sys
from fixtures.ports import reserve_port
print(" ".join(str(reserve_port()) for _ in range(int(sys.argv[1]))), flush=True)
sys.stdin.read()
"""


def test_workers_reserving_at_once_never_share_a_port() -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, "40"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=TESTS,
            env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"},
        )
        for _ in range(4)
    ]
    try:
        held = {
            w.pid: [int(p) for p in (w.stdout.readline() if w.stdout else "").split()]
            for w in workers
        }
        ports = [port for own in held.values() for port in own]
        assert len(ports) == 4 * 40 and len(set(ports)) == len(ports), held
        kernel = _kernel_range()
        assert not [port for port in ports if port in kernel], "the kernel could hand it out"
        with _locked_entries() as entries:
            for pid, own in held.items():
                assert all(entries.get(port) == pid for port in own), (pid, own)
    finally:
        for worker in workers:
            worker.communicate("", timeout=30)
    # the workers are gone: their reservations with them
    with _locked_entries() as entries:
        assert not set(entries) & set(ports)


def test_a_released_port_is_no_longer_reserved() -> None:
    port = reserve_port()
    with _locked_entries() as entries:
        assert port in entries
    release_ports(port)
    with _locked_entries() as entries:
        assert port not in entries
