"""A file on a target is read no further than one limit (MAX_READ_BYTES): an 8 GB
extensions.conf in a dir: target, or a huge zone file, was read whole into memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipctl.cli import run
from sipctl.errors import FileTooLarge
from sipctl.providers.bookkeeping import MAX_READ_BYTES, open_local_dir

SPEC = """\
version: 1
domain: mysite.ru
transports: {udp: {port: 5060}}
servers: [{host: pbx.mysite.ru, ipv4: [203.0.113.10]}]
users: {director: 105}
asterisk: {target: 'dir:pbx'}
dns: {provider: zonefile, file: mysite.ru.zone, create_file: true}
"""


def _sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)


@pytest.mark.parametrize(
    ("huge", "shown"),
    [
        ("pbx/etc/asterisk/extensions.conf", "dir:pbx:/etc/asterisk/extensions.conf"),
        ("mysite.ru.zone", "zone file "),
    ],
)
def test_plan_refuses_a_huge_file_naming_it_its_size_and_the_limit(
    huge: str,
    shown: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pbx").mkdir()
    Path("sipctl.yaml").write_text(SPEC)
    _sparse(tmp_path / huge, 8 << 30)  # 8 GiB, no block on disk
    assert run(["plan", "-f", "sipctl.yaml"]) == 1
    err = capsys.readouterr().err
    assert shown in err and "8,589,934,592 bytes" in err and "64 MiB" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_a_file_of_the_limit_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    _sparse(tmp_path / "at-limit", MAX_READ_BYTES)
    _sparse(tmp_path / "over", MAX_READ_BYTES + 1)
    with open_local_dir(tmp_path) as directory:
        found = directory.read("at-limit")
        assert found is not None and len(found[0]) == MAX_READ_BYTES
        with pytest.raises(FileTooLarge, match=f"{MAX_READ_BYTES + 1:,} bytes"):
            directory.read("over")
    assert (tmp_path / "over").stat().st_size == MAX_READ_BYTES + 1
