"""A file sipctl reads on this machine or a dir: target, put there as a FIFO (by anyone who
can write the directory, or named by a merge request's spec), is refused as no regular file
at once: an open that waits for a writer hung plan for ever. Each place a spec names is
tried by a run in the test's process (``sipctl_in_process``) with a time limit: a read
still waiting on a FIFO after it is let go (a writer opens and closes it), so the run
ends and the test fails, never hangs. Process substitution and /dev/stdin need a process
of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fixtures.common import sipctl_in_process

HEAD = "version: 1\ndomain: example.org\n"
SERVERS = "servers: [{host: pbx.example.org, ipv4: [192.0.2.1]}]\n"
PLACES = {
    "a dir: target's config file": (
        HEAD + "users: {ab: 1}\nasterisk: {target: 'dir:pbx'}\n",
        "pbx/etc/asterisk/pjsip.conf",
    ),
    "a zone file": (HEAD + SERVERS + "dns: {provider: zonefile, file: fifo.zone}\n", "fifo.zone"),
    "a TSIG secret_file": (
        HEAD + SERVERS + "dns: {provider: rfc2136, server: '127.0.0.1:1', "
        "tsig: {name: k, secret_file: secret}}\n",
        "secret",
    ),
    "known_hosts": (
        HEAD + "users: {ab: 1}\nasterisk: {target: 'ssh://root@127.0.0.1:1', "
        "ssh: {known_hosts: hosts, connect_timeout: 2}}\n",
        "hosts",
    ),
}


WAITED = 20.0  # seconds: a run that reads nothing from a FIFO is done in well under one


@contextmanager
def never_waited_on(fifo: Path) -> Iterator[None]:
    """Fails the test when a read of ``fifo`` is still waiting for a writer ``WAITED`` s
    after the block began, and lets that read go (a writer opens and closes the FIFO: an
    open for writing that does not wait succeeds only while a reader waits)."""
    done = threading.Event()
    waited: list[bool] = []

    def let_go() -> None:
        while not done.wait(WAITED):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # ENXIO: no reader waits
                continue
            waited.append(True)

    guard = threading.Thread(target=let_go, daemon=True)
    guard.start()
    try:
        yield
    finally:
        done.set()
        guard.join()
    assert not waited, f"{fifo} was waited on for a writer"


def _plan(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIPCTL_STATE_DIR": str(tmp_path / "state")}
    return sipctl_in_process("plan", "-f", "sipctl.yaml", "--no-color", cwd=tmp_path, env=env)


@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_fifo_is_refused_not_waited_on(tmp_path: Path, place: str) -> None:
    spec, fifo = PLACES[place]
    (tmp_path / "sipctl.yaml").write_text(spec)
    (tmp_path / fifo).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(tmp_path / fifo)
    with never_waited_on(tmp_path / fifo):
        done = _plan(tmp_path)
    assert done.returncode == 1, done.stderr
    assert "not a regular file" in done.stderr, done.stderr
    assert "unexpected error" not in done.stderr


def test_a_binary_tsig_secret_file_is_refused_in_words(tmp_path: Path) -> None:
    (tmp_path / "sipctl.yaml").write_text(PLACES["a TSIG secret_file"][0])
    (tmp_path / "secret").write_bytes(bytes(range(256)))
    done = _plan(tmp_path)
    assert done.returncode == 1, done.stderr
    assert "is not valid base64" in done.stderr, done.stderr


def _sipctl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIPCTL_STATE_DIR": str(tmp_path / "state")}
    with never_waited_on(tmp_path / "fifo.yaml"):
        return sipctl_in_process(*args, "--no-color", cwd=tmp_path, env=env)


def test_a_spec_file_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    """``validate -f fifo.yaml`` (and its --json) waited for a writer for ever."""
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "good.yaml").write_text(HEAD + "users: {ab: 1}\n")
    for args in (["validate", "-f", "fifo.yaml"], ["plan", "-f", "fifo.yaml"]):
        done = _sipctl(tmp_path, *args)
        assert done.returncode == 1, done.stderr
        assert "fifo.yaml: cannot read the spec: a FIFO no program writes to" in done.stderr
    done = _sipctl(tmp_path, "validate", "-f", "fifo.yaml", "--json")
    assert done.returncode == 1 and "a FIFO no program writes to" in done.stdout, done.stdout
    done = _sipctl(tmp_path, "validate", "-f", ".")  # a directory's FIFO: skipped
    assert done.returncode == 0 and "fifo.yaml: skipped" in done.stdout, done.stdout


def test_a_spec_from_a_program_s_pipe_is_read(tmp_path: Path) -> None:
    """``-f <(make-spec)`` and ``-f /dev/stdin`` read the pipe to its end, however slowly
    the program writes it."""
    (tmp_path / "good.yaml").write_text(HEAD + "users: {ab: 1}\n")
    sipctl = f"{sys.executable} -m sipctl validate --no-color -f"
    for shell in (
        f"{sipctl} <(sleep 1; cat good.yaml)",
        f"{sipctl} <(cat good.yaml)",
        f"cat good.yaml | {sipctl} /dev/stdin",
    ):
        done = subprocess.run(
            ["bash", "-c", shell], cwd=tmp_path, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0 and "valid. Domain example.org" in done.stdout, done.stderr
