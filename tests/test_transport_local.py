"""LocalTransport and DirTransport: batched reads, atomic writes with backup, stale checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sipctl.errors import ProviderError, StalePlanError
from sipctl.providers.base import RunContext
from sipctl.providers.transport.local import DirTransport, LocalTransport
from sipctl.providers.transport.pool import BACKUP_SUFFIX, FileWrite, HostTransport, TransportPool
from sipctl.schemas.targets import parse_target


def local(tmp_path: Path) -> LocalTransport:
    return LocalTransport(parse_target("local"), RunContext(base_dir=tmp_path))


def test_read_files_reports_content_mode_and_missing(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_bytes(b"one\n")
    (tmp_path / "a.conf").chmod(0o640)
    transport = local(tmp_path)
    found = transport.read_files([str(tmp_path / "a.conf"), str(tmp_path / "none.conf")])
    assert found[str(tmp_path / "a.conf")].content == b"one\n"
    assert found[str(tmp_path / "a.conf")].mode == 0o640
    assert not found[str(tmp_path / "none.conf")].exists
    assert transport.round_trips == 1


@pytest.mark.root
def test_write_replaces_atomically_keeps_mode_owner_and_backup(tmp_path: Path) -> None:
    target = tmp_path / "pjsip_sipctl.conf"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    os.chown(target, 1234, 4321)
    old_inode = target.stat().st_ino
    transport = local(tmp_path)
    transport.write_files([FileWrite(str(target), b"new\n", expected=b"old\n")])
    assert target.read_bytes() == b"new\n"
    info = target.stat()
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o640, 1234, 4321)
    assert info.st_ino != old_inode  # renamed into place, not rewritten in place
    assert (tmp_path / ("pjsip_sipctl.conf" + BACKUP_SUFFIX)).read_bytes() == b"old\n"
    assert not [p for p in tmp_path.iterdir() if "sipctl-tmp" in p.name or p.name.endswith(".tmp")]


@pytest.mark.root
def test_new_file_gets_default_mode_and_parent_owner(tmp_path: Path) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    os.chown(conf, 1000, 1001)
    transport = local(tmp_path)
    transport.write_files(
        [
            FileWrite(str(conf / "a.conf"), b"a\n", expected=None),
            FileWrite(str(conf / "sub" / "b.conf"), b"b\n", expected=None, mode=0o600),
        ]
    )
    a = (conf / "a.conf").stat()
    assert (a.st_mode & 0o7777, a.st_uid, a.st_gid) == (0o644, 1000, 1001)
    assert (conf / "sub" / "b.conf").stat().st_mode & 0o7777 == 0o600
    assert not (conf / ("a.conf" + BACKUP_SUFFIX)).exists()


def test_unchanged_content_is_not_touched(tmp_path: Path) -> None:
    target = tmp_path / "same.conf"
    target.write_bytes(b"same\n")
    os.utime(target, (1_000_000, 1_000_000))
    local(tmp_path).write_files([FileWrite(str(target), b"same\n", expected=b"same\n")])
    assert target.stat().st_mtime == 1_000_000
    assert not (tmp_path / ("same.conf" + BACKUP_SUFFIX)).exists()


def test_stale_expected_content_writes_nothing(tmp_path: Path) -> None:
    first, second = tmp_path / "first.conf", tmp_path / "second.conf"
    first.write_bytes(b"first\n")
    second.write_bytes(b"edited by the admin\n")
    with pytest.raises(StalePlanError, match=r"second\.conf changed on the host since the plan"):
        local(tmp_path).write_files(
            [
                FileWrite(str(first), b"new first\n", expected=b"first\n"),
                FileWrite(str(second), b"new second\n", expected=b"second\n"),
            ]
        )
    assert first.read_bytes() == b"first\n"
    assert second.read_bytes() == b"edited by the admin\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.conf", "second.conf"]


def test_file_that_appeared_since_the_plan_is_stale(tmp_path: Path) -> None:
    (tmp_path / "new.conf").write_bytes(b"someone else\n")
    with pytest.raises(StalePlanError, match=r"new\.conf"):
        local(tmp_path).write_files([FileWrite(str(tmp_path / "new.conf"), b"x", expected=None)])


def test_delete_keeps_backup_and_restore_undoes_everything(tmp_path: Path) -> None:
    kept, gone, created = tmp_path / "kept.conf", tmp_path / "gone.conf", tmp_path / "created.conf"
    kept.write_bytes(b"kept v1\n")
    gone.write_bytes(b"gone v1\n")
    transport = local(tmp_path)
    transport.write_files(
        [
            FileWrite(str(kept), b"kept v2\n", expected=b"kept v1\n"),
            FileWrite(str(gone), None, expected=b"gone v1\n"),
            FileWrite(str(created), b"created\n", expected=None),
        ]
    )
    assert not gone.exists()
    assert (tmp_path / ("gone.conf" + BACKUP_SUFFIX)).read_bytes() == b"gone v1\n"
    transport.restore_backups([str(kept), str(gone), str(created)])
    assert kept.read_bytes() == b"kept v1\n"
    assert gone.read_bytes() == b"gone v1\n"
    assert not created.exists()


def test_restore_ignores_files_the_last_write_left_alone(tmp_path: Path) -> None:
    same = tmp_path / "same.conf"
    same.write_bytes(b"current\n")
    # A backup from some earlier run must not be put back.
    (tmp_path / ("same.conf" + BACKUP_SUFFIX)).write_bytes(b"ancient\n")
    transport = local(tmp_path)
    transport.write_files([FileWrite(str(same), b"current\n", expected=b"current\n")])
    transport.restore_backups([str(same)])
    assert same.read_bytes() == b"current\n"


def test_local_run_returns_status_and_output(tmp_path: Path) -> None:
    transport = local(tmp_path)
    assert transport.can_run
    result = transport.run("cat; echo err >&2; exit 3", stdin=b"in\n")
    assert (result.exit_status, result.stdout, result.stderr, result.ok) == (
        3,
        "in\n",
        "err\n",
        False,
    )
    with pytest.raises(ProviderError, match=r"'sleep' did not finish within 0\.2 s"):
        transport.run("sleep 5", timeout=0.2)


def test_dir_target_maps_absolute_paths_below_its_root(tmp_path: Path) -> None:
    ctx = RunContext(base_dir=tmp_path)
    transport = DirTransport(parse_target("dir:state/pbx"), ctx)
    transport.write_files([FileWrite("/etc/asterisk/x.conf", b"x\n", expected=None)])
    assert (tmp_path / "state/pbx/etc/asterisk/x.conf").read_bytes() == b"x\n"
    # ".." never leaves the root.
    transport.write_files([FileWrite("/../../escape.conf", b"e\n", expected=None)])
    assert (tmp_path / "state/pbx/escape.conf").exists()
    assert not (tmp_path / "escape.conf").exists()
    read = transport.read_files(["/etc/asterisk/x.conf", "/etc/missing"])
    assert read["/etc/asterisk/x.conf"].content == b"x\n"
    assert read["/etc/missing"].content is None


def test_dir_target_runs_no_programs(tmp_path: Path) -> None:
    transport = DirTransport(parse_target("dir:state"), RunContext(base_dir=tmp_path))
    assert not transport.can_run
    with pytest.raises(ProviderError, match=r"dir:state .*no programs.*'asterisk'"):
        transport.run("asterisk -rx 'dialplan reload'")


def test_pool_hands_out_one_transport_per_target(tmp_path: Path) -> None:
    pool = TransportPool(RunContext(base_dir=tmp_path))
    first: HostTransport = pool.get("local")
    assert pool.get("local") is first
    assert pool.get("dir:a") is pool.get("dir:a")
    assert pool.get("dir:a") is not pool.get("dir:b")
    pool.close_all()


def test_symlink_is_not_replaced(tmp_path: Path) -> None:
    real = tmp_path / "real.conf"
    real.write_bytes(b"real\n")
    link = tmp_path / "link.conf"
    link.symlink_to(real)
    with pytest.raises(ProviderError, match=r"link\.conf is a symbolic link"):
        local(tmp_path).write_files([FileWrite(str(link), b"new\n", expected=b"real\n")])
    assert link.is_symlink() and real.read_bytes() == b"real\n"


def test_run_uses_the_context_environment(tmp_path: Path) -> None:
    ctx = RunContext(base_dir=tmp_path, env={"PATH": os.environ["PATH"], "SIPCTL_X": "42"})
    transport = LocalTransport(parse_target("local"), ctx)
    assert transport.run("echo $SIPCTL_X").stdout == "42\n"


def test_failed_write_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    first = tmp_path / "first.conf"
    first.write_bytes(b"v1\n")
    with pytest.raises(ProviderError, match=r"not-a-dir"):
        local(tmp_path).write_files(
            [
                FileWrite(str(first), b"v2\n", expected=b"v1\n"),
                FileWrite(str(tmp_path / "not-a-dir" / "x.conf"), b"x\n", expected=None),
            ]
        )
    assert first.read_bytes() == b"v1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.conf", "not-a-dir"]
