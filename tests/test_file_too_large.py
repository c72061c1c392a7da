"""Every file sipctl reads on this machine, larger than it reads of such a file, is refused
by one rule (``read_open_file``) with one error: the file, its size, the limit and what to
do, after what the file is to the spec. Each place a spec or the environment names is tried
as a user runs it, with a sparse file one byte over its limit (nothing is read of it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sipctl.cli import run
from sipctl.errors import FileTooLarge
from sipctl.schemas.admin_files import MAX_ADMIN_FILE_BYTES, read_regular_file

HEAD = "version: 1\ndomain: example.org\n"
SERVERS = "servers: [{host: pbx.example.org, ipv4: [192.0.2.1]}]\n"
SSH = "asterisk: {target: 'ssh://root@127.0.0.1:1', ssh: {connect_timeout: 2, "
MIB = 1 << 20
# what the file is to the spec (before its name in the error), the spec, the file, the
# file as the error names it, its limit in MiB
PLACES = {
    "zone file": (HEAD + SERVERS + "dns: {provider: zonefile, file: big.zone}\n", "big.zone", 64),
    "dir:pbx:": (  # a target's file is named by its target
        HEAD + "users: {ab: 1}\nasterisk: {target: 'dir:pbx'}\n",
        "pbx/etc/asterisk/extensions.conf",
        64,
    ),
    "the TSIG secret file": (
        HEAD + SERVERS + "dns: {provider: rfc2136, server: '127.0.0.1:1', "
        "tsig: {name: k, secret_file: secret}}\n",
        "secret",
        1,
    ),
    "known_hosts": (HEAD + "users: {ab: 1}\n" + SSH + "known_hosts: hosts}}\n", "hosts", 64),
    "ssh.key_file": (
        HEAD + "users: {ab: 1}\n" + SSH + "key_file: key, known_hosts: hosts}}\n",
        "key",
        1,
    ),
}


def _sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)


@pytest.mark.parametrize("what", sorted(PLACES))
def test_each_place_refuses_a_file_over_its_limit_in_one_wording(
    what: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, name, mib = PLACES[what]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIPCTL_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "sipctl.yaml").write_text(spec)
    (tmp_path / "hosts").touch()
    _sparse(tmp_path / name, mib * MIB + 1)
    assert run(["plan", "-f", "sipctl.yaml", "--no-color"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    size = f"{mib * MIB + 1:,}"
    shown = name.removeprefix("pbx") if what.startswith("dir:") else f" {tmp_path / name}"
    assert f"{what}{shown} is {size} bytes, more than the {mib} MiB " in err, err
    assert "sipctl reads of such a file: is it the right file?" in err, err
    assert "unexpected error" not in err


def test_the_runner_profile_over_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sipctl.yaml").write_text(
        HEAD + SERVERS + "dns: {provider: zonefile, file: z.zone, create_file: true}\n"
    )
    _sparse(tmp_path / "profile", MAX_ADMIN_FILE_BYTES + 1)
    monkeypatch.setenv("SIPCTL_PROFILE", "profile")
    assert run(["plan", "-f", "sipctl.yaml", "--no-color"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert (
        f"SIPCTL_PROFILE=profile: the runner profile profile is {MAX_ADMIN_FILE_BYTES + 1:,} "
        "bytes, more than the 1 MiB sipctl reads of such a file" in err
    ), err


def test_read_regular_file_reads_up_to_its_limit_and_refuses_more(tmp_path: Path) -> None:
    at, over = tmp_path / "at", tmp_path / "over"
    at.write_bytes(b"x" * 1000)
    over.write_bytes(b"x" * 1001)
    assert read_regular_file(at, 1000) == b"x" * 1000
    with pytest.raises(FileTooLarge) as caught:
        read_regular_file(over, 1000)
    assert (caught.value.size, caught.value.limit) == (1001, 1000)
    assert str(caught.value).startswith(f"{over} is 1,001 bytes, more than the 1,000 bytes ")
    with pytest.raises(OSError, match="not a regular file"):
        read_regular_file(Path(os.devnull), 1000)


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_ssh_key_file_of_each_type_is_the_key_paramiko_reads(kind: str, tmp_path: Path) -> None:
    """The one reader's size and FIFO gate comes before paramiko, which finds the key's type
    from the file itself: each kind of key loads as paramiko loads it."""
    import paramiko
    from fixtures.sshd import make_key

    from sipctl.providers.transport.ssh_login import _load_key
    from sipctl.schemas.targets import parse_target

    key = make_key(tmp_path / f"id_{kind}", kind=kind)
    before = paramiko.PKey.from_path(key)
    loaded = _load_key(parse_target("ssh://root@127.0.0.1:22"), key)
    assert type(loaded) is type(before)
    assert loaded.fingerprint == before.fingerprint
    assert loaded.asbytes() == before.asbytes()
