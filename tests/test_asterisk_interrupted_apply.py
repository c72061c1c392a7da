"""An apply killed (SIGKILL) after it wrote Asterisk's files and before Asterisk loaded them.

The files on the PBX are then the spec's, while the running Asterisk still routes by the old
ones: a plan that compared the files alone said "No changes" and left a removed name
reachable. The apply marks the files as written but not loaded, in the same batch as the
files, and clears the mark once Asterisk took them; a later plan plans their reload.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from asterisk_helpers import spec_data, write_spec
from fixtures import host_profile
from fixtures.asterisk import AsteriskInstance
from fixtures.common import run_sipctl
from fixtures.waiting import wait_until

pytestmark = pytest.mark.asterisk


def _guest_names(pbx: AsteriskInstance) -> str:
    return pbx.rx("dialplan show guest-call")


def _stalling_program(pbx: AsteriskInstance, work: Path) -> tuple[list[str], Path]:
    """The PBX's program, but any reload waits (as a slow or stuck Asterisk would) after
    saying so in ``reached``: the test kills the apply there."""
    reached = work / "reached"
    script = work / "asterisk-stalling"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *reload*) : > {reached}; exec sleep 60;; esac\n'
        f'exec {" ".join(pbx.program)} "$@"\n'
    )
    script.chmod(0o755)
    return [str(script)], reached


def test_an_apply_killed_before_the_reload_is_finished_by_the_next_apply(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    users = {"director": "105", "alex": "106"}
    spec = write_spec(tmp_path, spec_data(asterisk, users=users))
    first = run_sipctl("apply", "-f", str(spec), "--auto-approve", "--no-verify", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "exten => alex" in (asterisk.config_dir / "extensions_sipctl.conf").read_text()
    assert "'alex' =>" in _guest_names(asterisk)

    # alex leaves; the apply writes the files and is killed while Asterisk reloads
    write_spec(tmp_path, spec_data(asterisk, users={"director": "105"}))
    work = Path(tempfile.mkdtemp(prefix="sipctl-stall-", dir=tmp_path))
    program, reached = _stalling_program(asterisk, work)
    host_profile.add("asterisk", program)
    apply = subprocess.Popen(
        [sys.executable, "-m", "sipctl", "apply", "-f", str(spec), "--auto-approve"],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group: the reload it waits on dies with it
    )
    try:
        wait_until(reached.exists, "the apply reached Asterisk's reload", timeout=60)
    finally:
        os.killpg(apply.pid, signal.SIGKILL)
        apply.wait(timeout=10)
    asterisk.use()  # the real program again
    assert "exten => alex" not in (asterisk.config_dir / "extensions_sipctl.conf").read_text()
    assert "'alex' =>" in _guest_names(asterisk), "Asterisk still runs the old dialplan"

    planned = run_sipctl("plan", "-f", str(spec), "--detailed-exitcode", cwd=tmp_path)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "~ asterisk file extensions_sipctl.conf" in planned.stdout, planned.stdout
    assert "stopped before Asterisk loaded them" in planned.stdout + planned.stderr

    again = run_sipctl("apply", "-f", str(spec), "--auto-approve", "--no-verify", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Apply complete! 0 added, 1 changed" in again.stdout, again.stdout
    assert "'alex' =>" not in _guest_names(asterisk)
    assert "'director' =>" in _guest_names(asterisk)
    last = run_sipctl("plan", "-f", str(spec), "--detailed-exitcode", cwd=tmp_path)
    assert last.returncode == 0, last.stdout + last.stderr
    assert "No changes" in last.stdout
