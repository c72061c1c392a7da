"""A program is its words: no shell reads them, here or over SSH.

``run_programs`` is what runs the host profile's programs (Asterisk, fail2ban-client) with
the words sipctl adds: every word must arrive as one literal argument, whatever it holds, on
a local target and through a real sshd (with and without sudo), and a pull request's
``command: "curl ... | sh; asterisk"`` is refused before ``plan`` could run anything (a spec
names no program at all: tests/test_host_profile.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.sshd import SshServer

from sipctl.cli import run
from sipctl.errors import ProviderError
from sipctl.providers.asterisk.cli import query_rx, rx_programs
from sipctl.providers.base import RunContext
from sipctl.providers.transport.local import LocalTransport
from sipctl.providers.transport.pool import HostTransport
from sipctl.providers.transport.ssh import SshTransport
from sipctl.schemas.spec import Ssh
from sipctl.schemas.targets import parse_target

# Words a shell would act on; with no shell in between each is one argument, as written.
HOSTILE_WORDS = [
    "$(touch {flag})",
    "`touch {flag}`",
    "; touch {flag}",
    "| touch {flag}",
    "&& touch {flag}",
    "> {flag}",
    "*",
    "~",
    "'quoted'",
    '"double" \\ back',
    "two  spaces",
    "",
    "-n",
    "été",
]


def words_for(flag: Path) -> list[str]:
    return [w.format(flag=flag) for w in HOSTILE_WORDS]


def check_words_arrive_literally(transport: HostTransport, flag: Path) -> None:
    words = words_for(flag)
    printf = ["printf", "<%s>\\n", *words]
    echo_status = ["sh", "-c", "exit 7"]  # sipctl may run sh as a program: it is a word too
    missing = ["/nonexistent/sipctl-no-such-program", "x"]
    first, status, absent = transport.run_programs([printf, echo_status, missing])
    assert first.ok, first
    assert first.stdout == "".join(f"<{w}>\n" for w in words)
    assert status.exit_status == 7
    assert absent.exit_status == 127
    assert not flag.exists(), "a word was run by a shell"


def test_local_programs_get_their_words_literally(tmp_path: Path) -> None:
    local = LocalTransport(parse_target("local"), RunContext(base_dir=tmp_path))
    check_words_arrive_literally(local, tmp_path / "pwned")


@pytest.fixture
def ssh_transport(ssh_server: SshServer, tmp_path: Path) -> Iterator[SshTransport]:
    ssh = Ssh.model_validate(ssh_server.ssh_spec())
    transport = SshTransport(parse_target(ssh_server.target), ssh, RunContext(base_dir=tmp_path))
    yield transport
    transport.close()


@pytest.mark.sshd
def test_programs_over_ssh_get_their_words_literally_in_one_round_trip(
    ssh_transport: SshTransport, tmp_path: Path
) -> None:
    before = ssh_transport.round_trips
    check_words_arrive_literally(ssh_transport, tmp_path / "pwned")
    assert ssh_transport.round_trips - before == 1


@pytest.mark.sshd
def test_programs_over_ssh_with_sudo_get_their_words_literally(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    ssh = Ssh.model_validate(ssh_server.ssh_spec(sudo=True))
    transport = SshTransport(parse_target(ssh_server.target), ssh, RunContext(base_dir=tmp_path))
    try:
        check_words_arrive_literally(transport, tmp_path / "pwned")
    finally:
        transport.close()


def test_the_asterisk_command_becomes_words_then_rx() -> None:
    programs = rx_programs(["docker", "exec", "my pbx", "asterisk"], ["core show version"])
    assert programs == [["docker", "exec", "my pbx", "asterisk", "-rx", "core show version"]]


def test_plan_sends_asterisk_only_show_commands(tmp_path: Path) -> None:
    local = LocalTransport(parse_target("local"), RunContext(base_dir=tmp_path))
    with pytest.raises(ProviderError, match="not a read-only Asterisk query"):
        query_rx(local, ["asterisk"], ["core show version", "core restart now"])


def test_a_pull_request_command_with_a_pipe_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = tmp_path / "pwned"
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: mysite.ru\nasterisk:\n  target: local\n"
        f'  command: "touch {flag} | sh; asterisk"\n'
    )
    assert run(["plan", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:5:3: asterisk.command: a spec no longer names a program" in err
    assert not flag.exists()


def test_no_shell_is_started_by_sipctl_with_spec_text_in_it() -> None:
    """The grep of the issue: shell=True nowhere; every '/bin/sh -c' carries only sipctl's
    own constant script (spec values reach it quoted, as positional words)."""
    repo = Path(__file__).resolve().parents[1]
    found = subprocess.run(
        [
            "git",
            "grep",
            "-nE",
            r"shell=True|/bin/sh.*-c",
            "--",
            "providers",
            "reconciler",
            "schemas",
            "src",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    assert not [line for line in found if "shell=True" in line]
    allowed = {
        "providers/transport/local.py",  # LocalTransport.run: sipctl's own scripts
        "providers/transport/ssh.py",  # sudo wrapper around a command line already quoted
        "providers/transport/host_lock.py",  # the lock script, a constant; paths quoted
        "providers/transport/pool.py",  # a docstring
        # a provider's read script (the firewall's, sipctl's own; its paths quoted) among
        # the round trip's programs: the words go quoted on the stdin of /bin/sh -s
        "providers/transport/batch.py",
    }
    assert {line.split(":", 1)[0] for line in found} <= allowed, found
