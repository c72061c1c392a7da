"""A file sipctl reads on this machine or a dir: target, put there as a FIFO (by anyone who
can write the directory, or named by a merge request's spec), is refused as no regular file
at once: an open that waits for a writer hung plan for ever. Each place a spec names is
tried, in a process of its own with a time limit, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_fifo_is_refused_not_waited_on(tmp_path: Path, place: str) -> None:
    spec, fifo = PLACES[place]
    (tmp_path / "sipctl.yaml").write_text(spec)
    (tmp_path / fifo).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(tmp_path / fifo)
    env = {**os.environ, "SIPCTL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "sipctl", "plan", "-f", "sipctl.yaml", "--no-color"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1, done.stderr
    assert "not a regular file" in done.stderr, done.stderr
    assert "unexpected error" not in done.stderr


def test_a_binary_tsig_secret_file_is_refused_in_words(tmp_path: Path) -> None:
    (tmp_path / "sipctl.yaml").write_text(PLACES["a TSIG secret_file"][0])
    (tmp_path / "secret").write_bytes(bytes(range(256)))
    env = {**os.environ, "SIPCTL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "sipctl", "plan", "-f", "sipctl.yaml", "--no-color"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1, done.stderr
    assert "is not valid base64" in done.stderr, done.stderr


def _sipctl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipctl", *args, "--no-color"],
        cwd=tmp_path,
        env={**os.environ, "SIPCTL_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=30,
    )


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
