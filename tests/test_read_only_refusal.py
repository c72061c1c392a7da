"""`apply` with the read-only plan login refuses before any connection, with exit 3."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fixtures.state_dir import child_env
from fixtures.tcp_server import tcp_server


@pytest.fixture
def listener() -> Iterator[tuple[int, list[int]]]:
    """A TCP port on loopback that counts the connections made to it (sipctl's SSH would
    connect there)."""
    accepted: list[int] = []
    with tcp_server(lambda _conn, _stop: accepted.append(1)) as port:
        yield port, accepted


def _sipctl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(
        {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "NO_COLOR": "1",
            "HOME": str(tmp_path),
            "SIPCTL_SSH_READ_ONLY": "1",
        }
    )
    return subprocess.run(
        [str(Path(sys.executable).parent / "sipctl"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_apply_with_the_read_only_login_exits_3_before_connecting(
    tmp_path: Path, listener: tuple[int, list[int]]
) -> None:
    port, accepted = listener
    spec = {
        "version": 1,
        "domain": "example.test",
        "transports": {"udp": {"port": 5060}},
        "servers": [{"host": "pbx.example.test", "ipv4": ["127.0.0.1"]}],
        "users": {"director": 105},
        "asterisk": {"target": f"ssh://root@127.0.0.1:{port}"},
    }
    (tmp_path / "sipctl.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    done = _sipctl(tmp_path, "apply", "-f", "sipctl.yaml", "--auto-approve")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "SIPCTL_SSH_READ_ONLY" in done.stderr and "nothing was done" in done.stderr
    assert "Traceback" not in done.stderr
    assert accepted == [], "apply connected before refusing"


def test_import_adopt_with_the_read_only_login_exits_3_before_connecting(
    tmp_path: Path, listener: tuple[int, list[int]]
) -> None:
    port, accepted = listener
    done = _sipctl(
        tmp_path,
        "import",
        "--domain",
        "example.test",
        "--dns",
        f"rfc2136://127.0.0.1:{port}/example.test",
        "--asterisk",
        f"ssh://root@127.0.0.1:{port}",
        "--out",
        "spec.yaml",
        "--adopt",
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "SIPCTL_SSH_READ_ONLY" in done.stderr
    assert accepted == [], "import --adopt connected before refusing"
    assert not (tmp_path / "spec.yaml").exists()
