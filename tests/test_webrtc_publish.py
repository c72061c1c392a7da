"""``webrtc.publish`` is owned like sipctl's other files: the page moves and goes with the spec.

Through the CLI, on ``dir:`` and ``local`` targets: sipctl records what it published; when
``publish`` names another place, or none, the plan shows the old files' removal and apply
removes exactly the recorded files that still hold what sipctl wrote. A file its admin
changed is named and left; an old place that cannot be reached stays recorded.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.common import free_port
from fixtures.sshd import SshServer
from typer.testing import CliRunner

from sipctl.cli import app
from sipctl.errors import SipctlError
from sipctl.providers.base import RunContext
from sipctl.providers.webrtc_page import PageRecord, record_text
from sipctl.reconciler.render.webrtc import page_files
from sipctl.schemas.loader import load_spec, load_spec_text

SPEC = """\
version: 1
domain: publish.example
transports:
  udp: {port: 5060}
  wss: {port: 8089}
servers:
  - host: pbx.publish.example
    ipv4: [203.0.113.10]
users:
  director: 105
  alex: 106
webrtc:
  page: {names: [director, alex]}
"""


def page_names() -> list[str]:
    return sorted(page_files(load_spec_text(SPEC).spec))


def write(spec_file: Path, publish: str | None, **extra: Any) -> None:
    data = yaml.safe_load(SPEC)
    if publish is not None:
        data["webrtc"]["publish"] = publish
    data.update(extra)
    spec_file.write_text(yaml.safe_dump(data))


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def record_of(spec_file: Path) -> PageRecord:
    loaded = load_spec(spec_file)
    ctx = RunContext(base_dir=loaded.base_dir)
    try:
        return PageRecord(loaded, ctx)
    finally:
        ctx.close()


@pytest.fixture
def spec(tmp_path: Path) -> Iterator[Path]:
    """The spec's path; afterwards sipctl's record on this machine is gone even if the test
    failed half-way (a spec without an asterisk section keeps it in /var/lib/sipctl)."""
    path = tmp_path / "sipctl.yaml"
    yield path
    if path.exists():
        record = record_of(path)
        with contextlib.suppress(SipctlError):
            record.write(None, record.read())


def planned_line(output: str, mark: str, name: str) -> bool:
    """True when the plan lists ``name`` of the webrtc layer with ``mark`` (+, -, ~)."""
    pattern = rf"^  {re.escape(mark)} webrtc \w+ {re.escape(name)}(?: |$)"
    return re.search(pattern, output, re.M) is not None


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def dirs_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())


def test_the_page_moves_on_a_dir_target_and_an_edited_file_stays(
    tmp_path: Path, spec: Path
) -> None:
    write(spec, "dir:web:/var/www/call")
    applied = run("apply", "-f", str(spec), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    old, new = tmp_path / "web/var/www/call", tmp_path / "web/srv/call"
    assert files_under(old) == page_names()
    (old / "sipctl-call.css").write_text("/* the admin's own look */\n")

    write(spec, "dir:web:/srv/call")
    planned = run("plan", "-f", str(spec))
    for name in page_names():
        removed = planned_line(planned.output, "-", f"dir:web:/var/www/call/{name}")
        assert removed == (name != "sipctl-call.css"), planned.output
        assert planned_line(planned.output, "+", f"dir:web:/srv/call/{name}"), planned.output
    assert "sipctl-call.css changed since sipctl published it" in planned.output
    # Moving the page deletes most of what this target held: the usual limit asks for --force.
    applied = run("apply", "-f", str(spec), "--auto-approve", "--force")
    assert applied.exit_code == 0, applied.output
    assert files_under(new) == page_names()
    # nothing of sipctl's is left there, not even a .sipctl.bak; the admin's file stays
    assert files_under(old) == ["sipctl-call.css"]
    # the directories sipctl made there (cards/, vendor/) went once empty; the page's own
    # directory holds the admin's file and stays
    assert dirs_under(old) == []
    assert (old / "sipctl-call.css").read_text() == "/* the admin's own look */\n"
    again = run("plan", "-f", str(spec), "--detailed-exitcode")
    assert again.exit_code == 0, again.output  # the edited file is no longer reported

    record = record_of(spec)
    write(spec, None)  # publish removed: the page goes, and so does the record
    planned = run("plan", "-f", str(spec))
    assert planned_line(planned.output, "-", "dir:web:/srv/call/index.html"), planned.output
    assert re.search(r"^  - webrtc .*record", planned.output, re.M), planned.output
    assert "# webrtc (not published)" in planned.output and "at (not" not in planned.output
    applied = run("apply", "-f", str(spec), "--auto-approve", "--force")
    assert applied.exit_code == 0, applied.output
    assert files_under(new) == [] and dirs_under(new) == []
    assert new.is_dir()  # the page's own directory: the spec named it, sipctl keeps it
    assert record.read() is None
    assert run("plan", "-f", str(spec), "--detailed-exitcode").exit_code == 0


def test_drift_of_a_page_that_is_not_published_is_headed_as_the_plan_heads_it(
    spec: Path,
) -> None:
    write(spec, None)
    applied = run("apply", "-f", str(spec), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    drift = run("drift", "-f", str(spec))
    assert drift.exit_code == 0, drift.output
    assert "  # webrtc (not published) (last applied " in drift.output, drift.output
    assert "at (not published)" not in drift.output
    logged = run("-v", "plan", "-f", str(spec))  # the progress log words it so too
    assert "reading webrtc (not published)" in logged.output, logged.output


def test_from_a_local_target_to_a_dir_target_recorded_on_the_pbx(tmp_path: Path) -> None:
    """With an asterisk section the record lives in the PBX's bookkeeping directory (here a
    ``dir:`` target), where any later spec of the domain finds it."""
    (tmp_path / "pbx/etc/asterisk").mkdir(parents=True)
    (tmp_path / "pbx/etc/asterisk/http.conf").write_text("[general]\n")
    asterisk = {
        "target": "dir:pbx",
        "tls": {"cert_file": "/etc/asterisk/a.pem", "key_file": "/etc/asterisk/a.key"},
    }
    spec = tmp_path / "sipctl.yaml"
    www = tmp_path / "www"
    write(spec, f"local:{www}", asterisk=asterisk)
    applied = run("apply", "-f", str(spec), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert files_under(www) == page_names()
    record = record_of(spec)
    assert record.path.startswith("/var/lib/sipctl/") and "on dir:pbx" in record.where
    assert (tmp_path / "pbx" / record.path.lstrip("/")).exists()

    write(spec, "dir:web:/var/www/call", asterisk=asterisk)
    applied = run("apply", "-f", str(spec), "--auto-approve", "--force")
    assert applied.exit_code == 0, applied.output
    assert files_under(www) == []
    assert dirs_under(www) == [] and www.is_dir()  # emptied over SSH; the spec's own stays
    assert files_under(tmp_path / "web/var/www/call") == page_names()
    recorded = json.loads(record.read() or b"{}")["files"]
    assert sorted(recorded) == [f"dir:web:/var/www/call/{n}" for n in page_names()]
    assert run("plan", "-f", str(spec), "--detailed-exitcode").exit_code == 0

    # WebRTC turned off altogether: that layer is not managed any more, so the page stays,
    # and the asterisk layer's plan says so (it reads the record in its own batch).
    data = yaml.safe_load(spec.read_text())
    del data["webrtc"], data["transports"]["wss"], data["asterisk"]["tls"]
    spec.write_text(yaml.safe_dump(data))
    planned = run("plan", "-f", str(spec))
    assert "the click-to-call page sipctl published (7 file(s) at dir:web:/var/www/call" in (
        planned.output
    ), planned.output
    assert "apply once with the webrtc section but without webrtc.publish" in planned.output


def test_an_unreachable_old_place_stays_recorded(spec: Path) -> None:
    write(spec, "dir:web:/var/www/call")
    record = record_of(spec)
    gone = f"ssh://root@127.0.0.1:{free_port()}:/var/www/call/index.html"
    record.write(record_text({gone: "0" * 64}), None)
    planned = run("plan", "-f", str(spec))
    assert "stays recorded, to be removed by a later apply" in planned.output
    applied = run("apply", "-f", str(spec), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    recorded = json.loads(record.read() or b"{}")["files"]
    assert gone in recorded and len(recorded) == 1 + len(page_names())


@pytest.mark.sshd
def test_a_page_on_an_ssh_target_moves_and_leaves_nothing_there(
    tmp_path: Path, spec: Path, ssh_server: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published over SSH (the login is the user's own: ~/.ssh's key and known_hosts), then
    moved to a dir: target: the old page is removed over SSH, .sipctl.bak copies too."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(ssh_server.key_file, home / ".ssh" / "id_ed25519")
    shutil.copy(ssh_server.known_hosts, home / ".ssh" / "known_hosts")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    www = tmp_path / "www"
    write(spec, f"{ssh_server.target}:{www}")
    applied = run("apply", "-f", str(spec), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert files_under(www) == page_names()
    write(spec, "dir:web:/var/www/call")
    planned = run("plan", "-f", str(spec))
    assert planned_line(planned.output, "-", f"{ssh_server.target}:{www}/index.html"), (
        planned.output
    )
    applied = run("apply", "-f", str(spec), "--auto-approve", "--force")
    assert applied.exit_code == 0, applied.output
    assert files_under(www) == []
    assert dirs_under(www) == [] and www.is_dir()  # emptied over SSH; the spec's own stays
    assert files_under(tmp_path / "web/var/www/call") == page_names()
    write(spec, None)
    assert run("apply", "-f", str(spec), "--auto-approve", "--force").exit_code == 0
    assert record_of(spec).read() is None


ADMIN_INDEX = b"<!doctype html><title>Our own start page</title>\n"


def _publish_over_the_admins_page_and_take_it_down(
    spec: Path, place: str, root: Path, extra: list[str]
) -> None:
    """The admin's index.html is in the web root; publish replaces it; a second apply
    with another page title rotates .sipctl.bak (so the backup is no longer the original);
    taking the page down puts the admin's file back byte for byte, with its mode, and
    leaves no copy of the page."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_bytes(ADMIN_INDEX)
    (root / "index.html").chmod(0o640)
    (root / "robots.txt").write_bytes(b"User-agent: *\n")  # another of the admin's files
    write(spec, place)
    applied = run("apply", "-f", str(spec), "--auto-approve", *extra)
    assert applied.exit_code == 0, applied.output
    assert (root / "index.html").read_bytes() != ADMIN_INDEX
    data = yaml.safe_load(SPEC)
    data["webrtc"]["publish"] = place
    data["webrtc"]["page"]["title"] = "Call us now"
    spec.write_text(yaml.safe_dump(data))
    applied = run("apply", "-f", str(spec), "--auto-approve", *extra)
    assert applied.exit_code == 0, applied.output
    write(spec, None)
    planned = run("plan", "-f", str(spec))
    assert "taking the page down puts back the file it replaced" in planned.output
    applied = run("apply", "-f", str(spec), "--auto-approve", "--force", *extra)
    assert applied.exit_code == 0, applied.output
    assert "put back the original" in applied.output
    assert (root / "index.html").read_bytes() == ADMIN_INDEX
    assert (root / "index.html").stat().st_mode & 0o777 == 0o640
    assert files_under(root) == ["index.html", "robots.txt"], "no page, no .sipctl.bak left"
    assert dirs_under(root) == [], "the directories sipctl made (cards/, vendor/) went too"
    assert record_of(spec).read() is None
    assert run("plan", "-f", str(spec), "--detailed-exitcode").exit_code == 0


def test_taking_the_page_down_puts_back_the_admins_file_on_dir(tmp_path: Path, spec: Path) -> None:
    root = tmp_path / "web" / "var" / "www" / "html"
    _publish_over_the_admins_page_and_take_it_down(spec, "dir:web:/var/www/html", root, [])


def test_taking_the_page_down_puts_back_the_admins_file_on_local(
    tmp_path: Path, spec: Path
) -> None:
    root = tmp_path / "local-www"
    _publish_over_the_admins_page_and_take_it_down(spec, f"local:{root}", root, [])


@pytest.mark.sshd
def test_taking_the_page_down_puts_back_the_admins_file_over_ssh(
    tmp_path: Path, spec: Path, ssh_server: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(ssh_server.key_file, home / ".ssh" / "id_ed25519")
    shutil.copy(ssh_server.known_hosts, home / ".ssh" / "known_hosts")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    root = tmp_path / "www"
    _publish_over_the_admins_page_and_take_it_down(spec, f"{ssh_server.target}:{root}", root, [])
