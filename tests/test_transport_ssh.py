"""SshTransport against a real OpenSSH sshd on 127.0.0.1 (tests/fixtures/sshd.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from fixtures.common import free_port
from fixtures.sshd import SshServer, make_key, start_sshd
from fixtures.waiting import wait_until

from sipctl.errors import FileTooLarge, ProviderError, StalePlanError
from sipctl.providers.base import RunContext
from sipctl.providers.bookkeeping import MAX_READ_BYTES
from sipctl.providers.transport.files import write_script
from sipctl.providers.transport.pool import BACKUP_SUFFIX, FileWrite, TransportPool
from sipctl.providers.transport.ssh import SshTransport
from sipctl.schemas.spec import Ssh
from sipctl.schemas.targets import parse_target

pytestmark = pytest.mark.sshd


def transport(
    server: SshServer, tmp_path: Path, target: str | None = None, **options: object
) -> SshTransport:
    ssh = Ssh.model_validate(server.ssh_spec(**options))
    return SshTransport(parse_target(target or server.target), ssh, RunContext(base_dir=tmp_path))


@pytest.fixture
def ssh(ssh_server: SshServer, tmp_path: Path) -> Iterator[SshTransport]:
    t = transport(ssh_server, tmp_path)
    yield t
    t.close()


def test_batched_read_is_one_round_trip_on_one_connection(
    ssh: SshTransport, tmp_path: Path
) -> None:
    files = {tmp_path / f"f{i}.conf": f"file {i}\n".encode() for i in range(20)}
    files[tmp_path / "binary"] = bytes(range(256)) * 3
    files[tmp_path / "empty"] = b""
    files[tmp_path / "name with 'quotes' and $x"] = b"odd name\n"
    files[tmp_path / "no-newline"] = b"last line"
    for path, content in files.items():
        path.write_bytes(content)
    (tmp_path / "f0.conf").chmod(0o640)
    paths = [str(p) for p in files] + [str(tmp_path / "missing"), "/nonexistent/dir/x"]
    read = ssh.read_files(paths)
    assert (ssh.connections, ssh.round_trips) == (1, 1)
    for path, content in files.items():
        assert read[str(path)].content == content
    assert read[str(tmp_path / "f0.conf")].mode == 0o640
    assert read[str(tmp_path / "missing")].content is None
    assert read["/nonexistent/dir/x"].content is None
    ssh.read_files(paths[:2])
    ssh.run("true")
    assert (ssh.connections, ssh.round_trips) == (1, 3)


def test_read_of_a_directory_is_a_clear_error(ssh: SshTransport, tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match=r"cannot read .* \(not a regular file\)"):
        ssh.read_files([str(tmp_path)])


def test_a_file_over_the_read_limit_is_refused_by_its_size_alone(
    ssh: SshTransport, tmp_path: Path
) -> None:
    """A file on the host larger than sipctl reads of a file (as a local or dir: target's):
    refused by its size, none of it sent, in the one wording of FileTooLarge; the files at
    or below the limit are read as ever, in the same round trip."""
    big, fits = tmp_path / "extensions.conf", tmp_path / "pjsip.conf"
    with big.open("wb") as sparse:
        sparse.truncate(MAX_READ_BYTES + 1)
    with fits.open("wb") as sparse:
        sparse.truncate(3 << 20)
    started = time.monotonic()
    with pytest.raises(FileTooLarge) as info:
        ssh.read_files([str(fits), str(big)])
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert f"{big} on {ssh.ref} is {MAX_READ_BYTES + 1:,} bytes, more than the 64 MiB" in message
    assert len(ssh.read_files([str(fits)])[str(fits)].content or b"") == 3 << 20
    with pytest.raises(FileTooLarge):
        ssh.read_and_run([str(big)], [["true"]])


def test_a_command_that_never_stops_writing_is_stopped_at_the_output_limit(
    ssh: SshTransport,
) -> None:
    """A program on the host that writes without end (faster than it is read) is cut off at
    the limit of one command's output, well before its timeout, with a one-line error."""
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"'cat' sent more than 256 MiB of output"):
        ssh.run("cat /dev/zero", timeout=120)
    assert time.monotonic() - started < 60


def test_write_and_read_back_keeps_mode_owner_and_backup(ssh: SshTransport, tmp_path: Path) -> None:
    old = tmp_path / "pjsip_sipctl.conf"
    old.write_bytes(b"old\n")
    old.chmod(0o640)
    os.chown(old, 1234, 4321)
    same = tmp_path / "same.conf"
    same.write_bytes(b"same\n")
    os.utime(same, (1_000_000, 1_000_000))
    new = tmp_path / "etc" / "new.conf"
    writes = [
        FileWrite(str(old), b"new\n", expected=b"old\n"),
        FileWrite(str(same), b"same\n", expected=b"same\n"),
        FileWrite(str(new), bytes(range(256)), expected=None, mode=0o600),
    ]
    ssh.write_files(writes)
    assert ssh.round_trips == 1
    info = old.stat()
    assert (old.read_bytes(), info.st_mode & 0o7777, info.st_uid, info.st_gid) == (
        b"new\n",
        0o640,
        1234,
        4321,
    )
    assert (tmp_path / ("pjsip_sipctl.conf" + BACKUP_SUFFIX)).read_bytes() == b"old\n"
    assert same.stat().st_mtime == 1_000_000
    assert not (tmp_path / ("same.conf" + BACKUP_SUFFIX)).exists()
    assert new.read_bytes() == bytes(range(256))
    assert new.stat().st_mode & 0o7777 == 0o600
    read = ssh.read_files([str(old), str(new)])
    assert read[str(old)].content == b"new\n"
    assert read[str(new)].content == bytes(range(256))
    assert not [p for p in tmp_path.rglob("*sipctl-tmp*")]


def test_stale_content_writes_nothing(ssh: SshTransport, tmp_path: Path) -> None:
    first, second = tmp_path / "first.conf", tmp_path / "second.conf"
    first.write_bytes(b"first\n")
    second.write_bytes(b"edited on the host\n")
    with pytest.raises(StalePlanError, match=r"second\.conf changed on the host since the plan"):
        ssh.write_files(
            [
                FileWrite(str(first), b"new\n", expected=b"first\n"),
                FileWrite(str(second), b"new\n", expected=b"second\n"),
                FileWrite(str(tmp_path / "third.conf"), b"new\n", expected=None),
            ]
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.conf", "second.conf"]
    assert first.read_bytes() == b"first\n"


def test_delete_and_restore_backups(ssh: SshTransport, tmp_path: Path) -> None:
    kept, gone, created = tmp_path / "kept.conf", tmp_path / "gone.conf", tmp_path / "created.conf"
    kept.write_bytes(b"kept v1\n")
    gone.write_bytes(b"gone v1\n")
    ssh.write_files(
        [
            FileWrite(str(kept), b"kept v2\n", expected=b"kept v1\n"),
            FileWrite(str(gone), None, expected=b"gone v1\n"),
            FileWrite(str(created), b"created\n", expected=None),
        ]
    )
    assert kept.read_bytes() == b"kept v2\n"
    assert not gone.exists()
    ssh.restore_backups([str(kept), str(gone), str(created)])
    assert (kept.read_bytes(), gone.read_bytes(), created.exists()) == (
        b"kept v1\n",
        b"gone v1\n",
        False,
    )
    assert ssh.round_trips == 2


def test_delete_without_backup_takes_the_backup_too(ssh: SshTransport, tmp_path: Path) -> None:
    page, older = tmp_path / "index.html", tmp_path / ("index.html" + BACKUP_SUFFIX)
    page.write_bytes(b"v2")
    older.write_bytes(b"v1")
    kept = tmp_path / "other.html"
    kept.write_bytes(b"x")
    ssh.write_files(
        [
            FileWrite(str(page), None, b"v2", keep_backup=False),
            FileWrite(str(kept), None, b"x"),
        ]
    )
    assert not page.exists() and not older.exists()
    assert not kept.exists() and (tmp_path / ("other.html" + BACKUP_SUFFIX)).read_bytes() == b"x"
    ssh.restore_backups([str(page), str(kept)])  # only what was kept comes back
    assert not page.exists() and kept.read_bytes() == b"x"


def test_run_status_output_stdin_and_timeout(ssh: SshTransport) -> None:
    result = ssh.run("cat; echo err >&2; exit 4", stdin=b"hello\n")
    assert (result.exit_status, result.stdout, result.stderr) == (4, "hello\n", "err\n")
    big = ssh.run("head -c 3000000 /dev/zero | tr '\\0' x; head -c 2000000 /dev/zero >&2")
    assert (len(big.stdout), len(big.stderr)) == (3_000_000, 2_000_000)
    with pytest.raises(ProviderError, match=r"'sleep' did not finish within 0\.3 s"):
        ssh.run("sleep 5", timeout=0.3)


def test_pool_shares_one_connection_and_fresh_makes_another(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    ctx = RunContext(base_dir=tmp_path)
    ssh = Ssh.model_validate(ssh_server.ssh_spec())
    pool = TransportPool(ctx)
    first = pool.get(ssh_server.target, ssh)
    first.run("true")
    second = pool.get(ssh_server.target, ssh)
    second.read_files([str(tmp_path / "x")])
    assert second is first and first.connections == 1
    other = first.fresh()
    try:
        assert other.run("echo ok").stdout == "ok\n"
        assert (other.connections, first.connections) == (1, 1)
    finally:
        other.close()
        pool.close_all()


def test_relative_key_and_known_hosts_are_relative_to_the_spec(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    shutil.copy(ssh_server.key_file, tmp_path / "key")
    shutil.copy(ssh_server.known_hosts, tmp_path / "kh")
    ssh = Ssh(key_file="key", known_hosts="kh")
    t = SshTransport(parse_target(ssh_server.target), ssh, RunContext(base_dir=tmp_path))
    try:
        assert t.run("echo ok").stdout == "ok\n"
    finally:
        t.close()


# -- refusals: one clear line each, exit 1 (ProviderError), no key material -------------------


def _refusal(t: SshTransport) -> str:
    with pytest.raises(ProviderError) as caught:
        t.run("true")
    t.close()
    message = str(caught.value)
    assert "\n" not in message
    assert "PRIVATE KEY" not in message
    assert caught.value.exit_code == 1
    return message


def _fingerprint(server: SshServer) -> str:
    key = paramiko.PKey.from_path(server.host_key)
    return str(key.fingerprint)


def test_unknown_host_key_is_refused_with_its_fingerprint(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    message = _refusal(transport(ssh_server, tmp_path, known_hosts=str(empty)))
    assert "host key not known" in message
    assert f"ssh-ed25519 {_fingerprint(ssh_server)}" in message
    assert f"ssh-keyscan -p {ssh_server.port} 127.0.0.1 >> {empty}" in message
    assert empty.read_text() == ""  # never added


def test_missing_known_hosts_file_refuses_too(ssh_server: SshServer, tmp_path: Path) -> None:
    message = _refusal(transport(ssh_server, tmp_path, known_hosts=str(tmp_path / "none")))
    assert "host key not known" in message
    assert not (tmp_path / "none").exists()


def test_hashed_known_hosts_entry_is_accepted(ssh_server: SshServer, tmp_path: Path) -> None:
    hashed = tmp_path / "known_hosts"
    hashed.write_text(ssh_server.host_key_line())
    subprocess.run(["ssh-keygen", "-H", "-f", str(hashed)], check=True, capture_output=True)
    assert hashed.read_text().startswith("|1|")
    t = transport(ssh_server, tmp_path, known_hosts=str(hashed))
    try:
        assert t.run("echo ok").stdout == "ok\n"
    finally:
        t.close()


def test_changed_host_key_is_refused(ssh_server: SshServer, tmp_path: Path) -> None:
    other = make_key(tmp_path / "other_host_key")
    kind, blob = (tmp_path / "other_host_key.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{ssh_server.port} {kind} {blob}\n")
    message = _refusal(transport(ssh_server, tmp_path, known_hosts=str(known)))
    assert "host key CHANGED" in message
    assert _fingerprint(ssh_server) in message
    assert str(paramiko.PKey.from_path(other).fingerprint) in message


def test_wrong_user_key_is_refused(ssh_server: SshServer, tmp_path: Path) -> None:
    wrong = make_key(tmp_path / "wrong_key")
    message = _refusal(transport(ssh_server, tmp_path, key_file=str(wrong)))
    assert f"refused to log in user 'root' (tried: key file {wrong})" in message


def test_passphrase_protected_key_is_a_clear_error(ssh_server: SshServer, tmp_path: Path) -> None:
    locked = make_key(tmp_path / "locked_key", passphrase="sekrit-passphrase")
    message = _refusal(transport(ssh_server, tmp_path, key_file=str(locked)))
    assert "protected by a passphrase" in message and "ssh-add" in message
    assert "sekrit" not in message


def test_agent_is_used_without_key_file(
    ssh_server: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if socket_path.exists():
                break
            subprocess.run(["sleep", "0.01"], check=True)
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(
            ["ssh-add", str(ssh_server.key_file)], env=env, check=True, capture_output=True
        )
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        ssh = Ssh(known_hosts=str(ssh_server.known_hosts))
        t = SshTransport(parse_target(ssh_server.target), ssh, RunContext(base_dir=tmp_path))
        try:
            assert t.run("echo ok").stdout == "ok\n"
        finally:
            t.close()
    finally:
        agent.terminate()
        agent.wait(timeout=5)


def test_connection_refused_is_one_line(tmp_path: Path, ssh_server: SshServer) -> None:
    port = free_port()
    message = _refusal(transport(ssh_server, tmp_path, target=f"ssh://root@127.0.0.1:{port}"))
    assert (
        message
        == f"ssh://root@127.0.0.1:{port}: connection refused on port {port}: is sshd running?"
    )


def test_unresolvable_host_is_one_line(tmp_path: Path, ssh_server: SshServer) -> None:
    message = _refusal(transport(ssh_server, tmp_path, target="ssh://root@no-such-host.invalid:22"))
    assert "cannot resolve host name 'no-such-host.invalid'" in message


def test_silent_port_times_out_in_one_line_and_nothing_else(tmp_path: Path) -> None:
    # A listener that never speaks: the SSH banner never comes. Run in a fresh interpreter,
    # as the CLI runs, to see that paramiko's own tracebacks do not reach stderr.
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sipctl.errors import ProviderError\n"
        "from sipctl.providers.base import RunContext\n"
        "from sipctl.providers.transport.ssh import SshTransport\n"
        "from sipctl.schemas.spec import Ssh\n"
        "from sipctl.schemas.targets import parse_target\n"
        "t = SshTransport(parse_target(sys.argv[1]), Ssh(connect_timeout=0.5), "
        "RunContext(base_dir=Path('.')))\n"
        "try:\n"
        "    t.run('true')\n"
        "except ProviderError as exc:\n"
        "    print(exc)\n"
    )
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", script, f"ssh://root@127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
    assert done.stdout == (
        f"ssh://root@127.0.0.1:{port}: no SSH answer on port {port} within 0.5 s "
        "(is an SSH server listening there?)\n"
    )
    assert done.stderr == ""


def test_sudo_mode(ssh_server: SshServer, tmp_path: Path) -> None:
    t = transport(ssh_server, tmp_path, sudo=True)
    try:
        if shutil.which("sudo") is None:
            message = _refusal(t)
            assert "sudo is not installed on the host" in message
        else:
            assert t.run("id -u").stdout == "0\n"
            target = tmp_path / "via-sudo.conf"
            t.write_files([FileWrite(str(target), b"x\n", expected=None)])
            assert t.read_files([str(target)])[str(target)].content == b"x\n"
    finally:
        t.close()


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_ecdsa_and_rsa_user_keys(ssh_server: SshServer, tmp_path: Path, kind: str) -> None:
    key = make_key(tmp_path / f"user_{kind}", kind=kind)
    authorized = ssh_server.workdir / "authorized_keys"
    with authorized.open("a") as out:
        out.write((tmp_path / f"user_{kind}.pub").read_text())
    t = transport(ssh_server, tmp_path, key_file=str(key))
    try:
        assert t.run("echo ok").stdout == "ok\n"
    finally:
        t.close()


def test_detached_command_outlives_the_call_and_the_connection(
    ssh: SshTransport, tmp_path: Path
) -> None:
    # How a rollback timer is started: detached, with no pipe back to the channel.
    flag = tmp_path / "fired"
    started = time.monotonic()
    # The command sleeps long enough that a loaded machine's slow channel cannot pass for the
    # call waiting on it.
    result = ssh.run(f"setsid sh -c 'sleep 4; touch {flag}' </dev/null >/dev/null 2>&1 &")
    assert result.ok and time.monotonic() - started < 3.5
    assert not flag.exists()
    ssh.close()
    wait_until(flag.exists, "the detached job's flag after the session closed")


def test_pool_refuses_two_ssh_options_for_one_host_and_counts(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    pool = TransportPool(RunContext(base_dir=tmp_path))
    try:
        t = pool.get(ssh_server.target, Ssh.model_validate(ssh_server.ssh_spec()))
        t.run("true")
        t.read_files(["/etc/hostname"])
        with pytest.raises(ProviderError, match="different ssh options"):
            pool.get(ssh_server.target, Ssh.model_validate(ssh_server.ssh_spec(sudo=True)))
        assert pool.get(ssh_server.target) is t
    finally:
        pool.close_all()
    assert pool.stats() == {f"ssh://root@127.0.0.1:{ssh_server.port}": (1, 2)}


@pytest.mark.netns
def test_sshd_in_a_network_namespace(tmp_path: Path) -> None:
    """start_sshd(netns=...) as the firewall lockout test uses it: reached over a veth pair."""
    ns, outer, inner = (
        f"sipctl-tx-{os.getpid()}",
        f"stx{os.getpid() % 100000}a",
        f"stx{os.getpid() % 100000}b",
    )

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", ns)
    server = None
    try:
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", ns)
        ip("addr", "add", "10.231.77.1/30", "dev", outer)
        ip("link", "set", outer, "up")
        ip("-n", ns, "addr", "add", "10.231.77.2/30", "dev", inner)
        ip("-n", ns, "link", "set", inner, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        server = start_sshd("10.231.77.2", 2222, netns=ns, workdir=tmp_path / "sshd")
        assert server.target == "ssh://root@10.231.77.2:2222"
        t = transport(server, tmp_path)
        try:
            assert t.run(f"ip -o link show {inner} >/dev/null && echo in-ns").stdout == "in-ns\n"
        finally:
            t.close()
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["ip", "link", "del", outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_symlink_is_not_replaced(ssh: SshTransport, tmp_path: Path) -> None:
    real = tmp_path / "real.conf"
    real.write_bytes(b"real\n")
    link = tmp_path / "link.conf"
    link.symlink_to(real)
    other = tmp_path / "other.conf"
    with pytest.raises(ProviderError, match=r"link\.conf is a symbolic link"):
        ssh.write_files(
            [
                FileWrite(str(other), b"other\n", expected=None),
                FileWrite(str(link), b"new\n", expected=b"real\n"),
            ]
        )
    assert link.is_symlink() and real.read_bytes() == b"real\n" and not other.exists()


def test_failed_write_changes_nothing(ssh: SshTransport, tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    first = tmp_path / "first.conf"
    first.write_bytes(b"v1\n")
    with pytest.raises(
        ProviderError, match=r"cannot write .*not-a-dir/x\.conf: .*nothing was changed"
    ):
        ssh.write_files(
            [
                FileWrite(str(first), b"v2\n", expected=b"v1\n"),
                FileWrite(str(tmp_path / "not-a-dir" / "x.conf"), b"x\n", expected=None),
            ]
        )
    assert first.read_bytes() == b"v1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.conf", "not-a-dir"]


def test_exec_channel_stays_open_until_closed(ssh: SshTransport) -> None:
    channel = ssh.exec_channel("echo held; cat >/dev/null; echo released")
    try:
        channel.settimeout(5)
        assert channel.recv(100) == b"held\n"
        channel.shutdown_write()
        assert channel.recv_exit_status() == 0
    finally:
        channel.close()
    assert ssh.round_trips == 1


def test_broken_lines_in_known_hosts_are_skipped(ssh_server: SshServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(
        "# a comment\n\nbroken ssh-ed25519 !!!notbase64\n"
        "@cert-authority *.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDxl\n"
        "other.example,10.0.0.9 ssh-rsa AAAA\n" + ssh_server.host_key_line()
    )
    t = transport(ssh_server, tmp_path, known_hosts=str(known))
    try:
        assert t.run("echo ok").stdout == "ok\n"
    finally:
        t.close()


def test_a_link_at_the_backup_or_a_temp_name_is_never_followed(
    ssh: SshTransport, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"root's own\n")
    conf = tmp_path / "x.conf"
    conf.write_bytes(b"v1\n")
    conf.chmod(0o640)
    os.chown(conf, 1234, 4321)
    (tmp_path / ("x.conf" + BACKUP_SUFFIX)).symlink_to(victim)
    ssh.write_files([FileWrite(str(conf), b"v2\n", expected=b"v1\n")])
    assert victim.read_bytes() == b"root's own\n"
    backup = tmp_path / ("x.conf" + BACKUP_SUFFIX)
    assert not backup.is_symlink() and backup.read_bytes() == b"v1\n"
    info = conf.stat()
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o640, 1234, 4321)
    # the script writes new files only with O_EXCL: a name that exists is never opened
    script = write_script([FileWrite(str(conf), b"v3\n", expected=b"v2\n")], "@m@")
    assert "conv=excl" in script and "chown -h" in script
    assert '> "$t' not in script and '>"$t' not in script
