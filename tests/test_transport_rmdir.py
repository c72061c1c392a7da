"""``remove_empty_dirs``: a transport removes only empty directories, never through a link.

The same layout on each transport (local, dir:, and SSH against the real sshd fixture):
empty directories go deepest first, one that holds anything stays (rmdir semantics), a link
at the name or on the way is left with what it points to, a file or a missing name is left.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.sshd import SshServer

from sipctl.providers.base import RunContext
from sipctl.providers.transport.local import DirTransport, LocalTransport
from sipctl.providers.transport.pool import HostTransport
from sipctl.providers.transport.ssh import SshTransport
from sipctl.schemas.spec import Ssh
from sipctl.schemas.targets import parse_target


def _layout(root: Path) -> dict[str, Path]:
    """An emptied page (deep/er/est), a directory still holding the admin's file, a link to
    an empty directory elsewhere, an empty directory reached through a linked parent, a file."""
    (root / "page" / "deep" / "er" / "est").mkdir(parents=True)
    (root / "page" / "kept").mkdir()
    (root / "page" / "kept" / "admins.txt").write_text("mine\n")
    elsewhere = root / "elsewhere"
    (elsewhere / "empty").mkdir(parents=True)
    (root / "page" / "link").symlink_to(elsewhere / "empty")
    (root / "page" / "via").symlink_to(elsewhere)
    (root / "page" / "file").write_text("x\n")
    return {
        "est": root / "page" / "deep" / "er" / "est",
        "er": root / "page" / "deep" / "er",
        "deep": root / "page" / "deep",
        "kept": root / "page" / "kept",
        "link": root / "page" / "link",
        "via": root / "page" / "via" / "empty",
        "file": root / "page" / "file",
        "missing": root / "page" / "missing",
    }


def _prove(transport: HostTransport, root: Path, host_root: str) -> None:
    paths = _layout(root)
    order = ["est", "er", "deep", "kept", "link", "via", "file", "missing"]
    asked = [host_root + str(paths[k].relative_to(root)) for k in order]
    removed = transport.remove_empty_dirs(asked)
    assert removed == asked[:3]
    assert not (root / "page" / "deep").exists()
    assert (paths["kept"] / "admins.txt").read_text() == "mine\n"
    assert paths["link"].is_symlink() and (root / "elsewhere" / "empty").is_dir()
    assert paths["via"].is_dir() and (root / "page" / "via").is_symlink()
    assert paths["file"].is_file()
    assert transport.remove_empty_dirs([]) == []


def test_local_and_dir_targets_remove_only_empty_directories(tmp_path: Path) -> None:
    ctx = RunContext(base_dir=tmp_path)
    local = tmp_path / "local"
    local.mkdir()
    _prove(LocalTransport(parse_target("local"), ctx), local, f"{local}/")
    dir_root = tmp_path / "web"
    dir_root.mkdir()
    _prove(DirTransport(parse_target("dir:web"), ctx), dir_root, "/")


@pytest.mark.sshd
def test_an_ssh_target_removes_only_empty_directories(
    tmp_path: Path, ssh_server: SshServer
) -> None:
    ssh = Ssh.model_validate(ssh_server.ssh_spec())
    transport = SshTransport(parse_target(ssh_server.target), ssh, RunContext(base_dir=tmp_path))
    try:
        before = transport.round_trips
        _prove(transport, tmp_path, f"{tmp_path}/")
        assert transport.round_trips - before == 1  # one script for all of them
    finally:
        transport.close()
