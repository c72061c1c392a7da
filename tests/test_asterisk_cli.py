"""The Asterisk layer through the CLI: saved plans, a ``dir:`` target, and SSH to the chroot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asterisk_helpers import spec_data, write_spec
from fixtures.asterisk import AsteriskInstance
from fixtures.host_profile import ENV as HOST_PROFILE_ENV
from fixtures.sip_client import SipCaller
from fixtures.sshd import SshServer, make_key, start_sshd
from fixtures.state_dir import child_env

pytestmark = pytest.mark.asterisk


def sipctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "sipctl"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=child_env(
            {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "NO_COLOR": "1",
                "HOME": str(cwd),
                HOST_PROFILE_ENV: os.environ[HOST_PROFILE_ENV],
            }
        ),
    )


def test_edited_file_after_plan_makes_apply_plan_stop(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, spec_data(asterisk))
    planned = sipctl("plan", "-f", str(spec), "--out", "plan.json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    extensions = asterisk.config_dir / "extensions.conf"
    before = extensions.read_bytes()
    extensions.write_bytes(before + b"; the admin was here\n")
    try:
        applied = sipctl("apply", "plan.json", "--auto-approve", "--no-verify", cwd=tmp_path)
    finally:
        extensions.write_bytes(before)
    assert applied.returncode == 3, applied.stdout + applied.stderr
    assert not (asterisk.config_dir / "extensions_sipctl.conf").exists()

    # made again, the plan applies, and then there is nothing left to do
    assert sipctl("plan", "-f", str(spec), "--out", "plan.json", cwd=tmp_path).returncode == 0
    applied = sipctl("apply", "plan.json", "--auto-approve", "--no-verify", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = sipctl("plan", "-f", str(spec), "--detailed-exitcode", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_dir_target_writes_files_and_skips_the_reload(tmp_path: Path) -> None:
    data: dict[str, Any] = {
        "version": 1,
        "domain": "mysite.ru",
        "users": {"director": 105},
        "asterisk": {"target": "dir:state/pbx", "config_dir": "/etc/asterisk"},
    }
    spec = write_spec(tmp_path, data)
    done = sipctl("apply", "-f", str(spec), "--auto-approve", "--no-verify", cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "asterisk: dir target, reload skipped" in output
    config = tmp_path / "state/pbx/etc/asterisk"
    assert (config / "extensions_sipctl.conf").exists()
    # no global section yet: sipctl's own, first, for a Server header without a version
    assert (config / "pjsip.conf").read_text() == (
        "[global] ; sipctl\ntype=global ; sipctl\nuser_agent=PBX ; sipctl\n"
        "#include pjsip_sipctl.conf\n"
    )
    assert (config / "rtp.conf").read_text() == "[general]\nrtpstart=10000\nrtpend=20000\n"
    again = sipctl("plan", "-f", str(spec), "--detailed-exitcode", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def _ssh_spec(pbx: AsteriskInstance, server: SshServer, **ssh: Any) -> dict[str, Any]:
    return spec_data(
        pbx,
        target=server.target,
        ssh=server.ssh_spec(**ssh),
        config_dir=str(pbx.config_dir),
    )


@pytest.fixture
def late_sshd(asterisk: AsteriskInstance) -> Iterator[SshServer]:
    """An sshd started after the Asterisk chroot is mounted: the session's sshd lives in a
    mount namespace of its own (private), which never sees a mount made after it started."""
    work = Path(tempfile.mkdtemp(prefix="sipctl-sshd-"))
    server = start_sshd("127.0.0.1", workdir=work, own_dirs={"/var/lib/sipctl": work / "state"})
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.mark.sshd
def test_ssh_apply_drives_the_chroot(
    asterisk: AsteriskInstance, late_sshd: SshServer, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, _ssh_spec(asterisk, late_sshd))
    done = sipctl("apply", "-f", str(spec), "--auto-approve", "--no-verify", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'director' =>" in asterisk.rx("dialplan show guest-call")
    offset = asterisk.log_size()
    with SipCaller(asterisk.sip_port, "tcp") as caller:
        assert 200 in caller.invite("stranger", hold=0.1).statuses
    asterisk.wait_log(r"Ext\. sipctl#wrong-name: Wrong call IP=127\.0\.0\.1\n", offset)
    again = sipctl("plan", "-f", str(spec), "--detailed-exitcode", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_ssh_unknown_host_key_is_refused(
    asterisk: AsteriskInstance, ssh_server: SshServer, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    spec = write_spec(tmp_path, _ssh_spec(asterisk, ssh_server, known_hosts=str(empty)))
    done = sipctl("plan", "-f", str(spec), cwd=tmp_path)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert "SHA256:" in output, output


def test_ssh_wrong_key_is_refused(
    asterisk: AsteriskInstance, ssh_server: SshServer, tmp_path: Path
) -> None:
    other = make_key(tmp_path / "other_key")
    spec = write_spec(tmp_path, _ssh_spec(asterisk, ssh_server, key_file=str(other)))
    done = sipctl("plan", "-f", str(spec), cwd=tmp_path)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert len(output.splitlines()) <= 3, output
