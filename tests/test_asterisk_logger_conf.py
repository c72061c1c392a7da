"""The fail2ban jail must watch a file Asterisk writes its 'Wrong call' lines to.

The Asterisk provider reads logger.conf (and asterisk.conf's astlogdir) on every plan with a
fail2ban jail; the real test PBX logs WARNING to ``messages`` and ``full`` in its chroot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from asterisk_helpers import spec_data, write_spec
from fixtures.asterisk import AsteriskInstance, running_asterisk

from sipctl.cli import run
from sipctl.providers.asterisk.logger_conf import jail_log_problems, log_dir_of, log_files
from sipctl.schemas.loader import load_spec_text

CONF = (
    "[general]\ndateformat=%F %T\n\n[logfiles]\n"
    "console => notice,warning,error\n"
    "messages => notice,warning,error ; what fail2ban reads\n"
    "full => notice,warning,error,verbose(3),dtmf\n"
    "/srv/log/pbx.log => warning\n"
    "syslog.local0 => warning\n"
)


@pytest.fixture(scope="module")
def pbx() -> Iterator[AsteriskInstance]:
    with running_asterisk() as instance:
        yield instance


def _plan(pbx: AsteriskInstance, tmp_path: Path, logpath: Path) -> Path:
    data = spec_data(pbx)
    data["fail2ban"] = {"enabled": True, "logpath": str(logpath)}
    return write_spec(tmp_path, data)


def test_a_jail_on_a_file_asterisk_does_not_write_stops_the_plan(
    pbx: AsteriskInstance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_dir = pbx.root / "var" / "log" / "asterisk"
    spec = _plan(pbx, tmp_path, log_dir / "messages.log")  # Debian's name; this PBX's is messages
    assert run(["plan", "-f", str(spec), "--target", "asterisk"]) == 1
    err = capsys.readouterr().err
    assert f"the fail2ban jail watches {log_dir}/messages.log" in err
    assert "writes its 'Wrong call' lines (WARNING) to" in err
    assert "/var/log/asterisk/messages, /var/log/asterisk/full (logger.conf)" in err
    assert "sipctl.yaml:" in err  # the spec key's file and line

    # the file Asterisk really writes, seen from outside its chroot: the plan goes on
    spec = _plan(pbx, tmp_path, pbx.log_path)
    assert run(["plan", "-f", str(spec), "--target", "asterisk"]) == 0
    assert "fail2ban.logpath" not in capsys.readouterr().err


def test_a_file_without_the_warning_level_stops_the_plan(
    pbx: AsteriskInstance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = pbx.root / "var" / "log" / "asterisk" / "quiet"
    pbx.write_admin_file(
        "logger.conf", "[logfiles]\nmessages => notice,warning,error\nquiet => notice\n"
    )
    try:
        spec = _plan(pbx, tmp_path, quiet)
        assert run(["plan", "-f", str(spec), "--target", "asterisk"]) == 1
        assert "without the WARNING level" in capsys.readouterr().err
    finally:
        pbx.write_admin_file(
            "logger.conf",
            "[general]\n\n[logfiles]\nmessages => notice,warning,error\n"
            "full => notice,warning,error,verbose(3),dtmf\n",
        )


def test_logger_conf_file_channels() -> None:
    found = {f.path: f.levels for f in log_files(CONF, "/var/log/asterisk")}
    assert found == {
        "/var/log/asterisk/messages": ("notice", "warning", "error"),
        "/var/log/asterisk/full": ("notice", "warning", "error", "verbose", "dtmf"),
        "/srv/log/pbx.log": ("warning",),
    }
    assert log_dir_of("[directories]\nastlogdir => /opt/log\n") == "/opt/log"
    assert log_dir_of("[options]\nverbose=3\n") == "/var/log/asterisk"


def test_the_check_names_the_files_and_sees_through_mounts() -> None:
    def problems(logpath: str, conf: str = CONF, astlogdir: str = "/var/log/asterisk") -> list[str]:
        text = f"version: 1\ndomain: a.example\nfail2ban: {{logpath: {logpath}}}\n"
        loaded = load_spec_text(text, base_dir=Path())
        asterisk_conf = f"[directories]\nastlogdir => {astlogdir}\n".encode()
        return jail_log_problems(
            loaded.spec, loaded.where, conf.encode(), asterisk_conf, "ssh://pbx"
        )

    assert problems("/var/log/asterisk/messages") == []
    assert problems("/srv/pbx/root/var/log/asterisk/messages") == []  # outside a chroot
    assert problems("/srv/pbx-logs/messages") == []  # a container's log dir, mounted
    [wrong] = problems("/var/log/asterisk/messages.log")
    assert "/var/log/asterisk/messages, /var/log/asterisk/full, /srv/log/pbx.log" in wrong
    assert problems("/opt/log/messages", astlogdir="/opt/log") == []
    [hostname] = problems("/var/log/asterisk/messages", "[general]\nappendhostname = yes\n" + CONF)
    assert "messages.<hostname>" in hostname


def test_log_files_are_the_channels_asterisk_reads(pbx: AsteriskInstance) -> None:
    # a channel inside a block comment (or after a '\r', one line to Asterisk) is no file
    # Asterisk writes; sipctl took it for one, and a jail on it was never told of a caller
    text = (
        "[general]\n[logfiles]\n"
        ";--\nhidden1 => notice,warning\n--;\n"
        ";---\nshown1 => warning\n"
        "; note\rhidden2 => warning\n"
        ";-- a ;-- b --; hidden3 => warning --; shown2 => warning\n"
        "messages => notice,warning,error\n"
    )
    pbx.write_admin_file("logger.conf", text)
    try:
        pbx.rx("logger reload")
        shown = pbx.rx("logger show channels")
        log_dir = "/var/log/asterisk"
        written = {
            f"{log_dir}/{n}"
            for n in ("shown1", "shown2", "messages", "hidden1", "hidden2", "hidden3")
            if f"{log_dir}/{n}" in shown
        }
        assert written == {f"{log_dir}/shown1", f"{log_dir}/shown2", f"{log_dir}/messages"}, shown
        assert {f.path for f in log_files(text, log_dir)} == written
    finally:
        pbx.write_admin_file(
            "logger.conf",
            "[general]\n\n[logfiles]\nmessages => notice,warning,error\n"
            "full => notice,warning,error,verbose(3),dtmf\n",
        )
        pbx.rx("logger reload")
