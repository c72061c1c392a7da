"""Links planted on sipctl's bookkeeping paths: nothing is written through them.

An account that owns a directory sipctl writes in (the asterisk user owns /etc/asterisk on
Debian) can put a symbolic link wherever sipctl will open a file: the lock, the record of the
last apply, a temporary file, the backup, the debug log, or a directory below a ``dir:``
root. Each plant here points at a "victim" file outside the target, and each run must leave
that victim byte for byte as it was, and say clearly what it refused.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from sipctl.cli import run
from sipctl.errors import ProviderError
from sipctl.providers.base import RunContext
from sipctl.providers.bookkeeping import (
    BOOKKEEPING_DIR,
    SafeDir,
    SymlinkRefused,
    local_state_dir,
    on_this_machine,
    open_local_dir,
    record_name,
)
from sipctl.providers.transport.host_lock import HOST_LOCK_NAME
from sipctl.providers.transport.local import DirTransport
from sipctl.providers.transport.pool import BACKUP_SUFFIX, FileWrite
from sipctl.schemas.targets import parse_target

SPEC = """\
version: 1
domain: example.org
transports: {udp: {port: 5060}}
servers: [{host: pbx.example.org, ipv4: [192.0.2.5]}]
users: {director: 105}
asterisk:
  target: "dir:pbx"
  config_dir: /etc/asterisk
"""
VICTIM = b"root's own file\n"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sipctl.yaml").write_text(SPEC)
    (tmp_path / "pbx" / "etc" / "asterisk").mkdir(parents=True)
    (tmp_path / "victim").write_bytes(VICTIM)
    return tmp_path


def apply() -> int:
    return run(["apply", "--auto-approve", "--no-verify"])


def victim_untouched(workspace: Path) -> None:
    victim = workspace / "victim"
    assert victim.read_bytes() == VICTIM, "written through a planted link"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


def bookkeeping(workspace: Path) -> Path:
    return workspace / "pbx" / BOOKKEEPING_DIR.lstrip("/")


def test_lock_and_record_live_in_a_private_directory_and_an_old_record_moves(
    workspace: Path,
) -> None:
    old = workspace / "pbx" / ".sipctl-state.json"
    old.write_text(json.dumps({"format": 1, "targets": {}}))
    assert apply() == 0
    directory = bookkeeping(workspace)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    state = directory / record_name("/etc/asterisk", ".state.json")
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert "asterisk" in state.read_text()
    assert (directory / HOST_LOCK_NAME).is_file()
    assert not old.exists(), "the record at the old place is removed once moved"
    assert not list((workspace / "pbx" / "etc" / "asterisk").glob(".sipctl*"))


@pytest.mark.parametrize("suffix", [".lock", ".state.json"])
def test_a_link_at_the_lock_or_the_record_is_refused(
    workspace: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = bookkeeping(workspace)
    directory.mkdir(parents=True, mode=0o700)
    name = HOST_LOCK_NAME if suffix == ".lock" else record_name("/etc/asterisk", suffix)
    (directory / name).symlink_to(workspace / "victim")
    code = apply()
    err = capsys.readouterr().err
    victim_untouched(workspace)
    # no lock, no apply; and the plan reads the record (the domain last applied there)
    assert code == 1
    assert "symbolic link" in err
    assert not (workspace / "pbx" / "etc" / "asterisk" / "extensions_sipctl.conf").exists()


def test_a_linked_bookkeeping_directory_is_refused(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = workspace / "elsewhere"
    elsewhere.mkdir()
    (workspace / "pbx" / "var" / "lib").mkdir(parents=True)
    bookkeeping(workspace).symlink_to(elsewhere)
    assert apply() == 1
    assert "symbolic link" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


def test_a_linked_directory_inside_the_dir_root_is_refused(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = workspace / "pbx" / "etc" / "asterisk"
    conf.rmdir()
    elsewhere = workspace / "elsewhere"
    elsewhere.mkdir()
    conf.symlink_to(elsewhere)
    code = run(["plan"])
    err = capsys.readouterr().err
    assert code == 1
    assert "/etc/asterisk" in err and "symbolic link" in err
    assert apply() == 1
    assert list(elsewhere.iterdir()) == [], "nothing was written through the linked directory"


def test_a_link_at_the_backup_is_replaced_not_followed(workspace: Path) -> None:
    assert apply() == 0
    conf = workspace / "pbx" / "etc" / "asterisk"
    backup = conf / ("extensions.conf" + BACKUP_SUFFIX)
    backup.unlink(missing_ok=True)
    backup.symlink_to(workspace / "victim")
    (workspace / "sipctl.yaml").write_text(SPEC.replace("director: 105", "director: 106"))
    assert apply() == 0
    victim_untouched(workspace)
    dialplan = conf / ("extensions_sipctl.conf" + BACKUP_SUFFIX)
    assert dialplan.is_file() and not dialplan.is_symlink()


def test_a_link_at_a_changed_file_is_refused(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = workspace / "pbx" / "etc" / "asterisk"
    (conf / "extensions_sipctl.conf").symlink_to(workspace / "victim")
    assert run(["plan"]) == 1
    assert "symbolic link" in capsys.readouterr().err, "a dir: target never reads through one"
    assert apply() == 1
    victim_untouched(workspace)


def test_temporaries_are_new_files_never_an_existing_name(tmp_path: Path) -> None:
    (tmp_path / "victim").write_bytes(VICTIM)
    with open_local_dir(tmp_path) as directory:
        names = set()
        for _ in range(20):
            temp = directory.create_temp("x.conf", b"new\n", 0o644, (os.geteuid(), os.getegid()))
            assert not directory.is_link(temp)
            names.add(temp)
        assert len(names) == 20
    assert (tmp_path / "victim").read_bytes() == VICTIM


def test_the_transport_refuses_a_linked_directory_on_the_way(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "etc" / "fail2ban").symlink_to(tmp_path / "outside")
    transport = DirTransport(parse_target(f"dir:{root}"), RunContext(base_dir=tmp_path))
    with pytest.raises(SymlinkRefused, match="is reached through a symbolic link"):
        transport.write_files([FileWrite("/etc/fail2ban/jail.d/sipctl.conf", b"x\n", None)])
    assert list((tmp_path / "outside").iterdir()) == []


@pytest.mark.root
def test_local_paths_follow_only_links_root_owns(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "mine").symlink_to(tmp_path / "real")
    with SafeDir.walk(Path("/"), [*tmp_path.parts[1:], "mine"], trust_owned_links=True) as d:
        assert os.fstat(d.fd).st_ino == (tmp_path / "real").stat().st_ino
    os.chown(tmp_path / "mine", 1234, 1234, follow_symlinks=False)
    with pytest.raises(SymlinkRefused):
        SafeDir.walk(Path("/"), [*tmp_path.parts[1:], "mine"], trust_owned_links=True)


def test_the_state_directory_is_private_per_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sipctl.cli_boundary import debug_log_path as _debug_log_path

    monkeypatch.delenv("SIPCTL_DEBUG_LOG", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    moved = os.environ["SIPCTL_STATE_DIR"]  # the tests' own (fixtures/state_dir.py)
    assert _debug_log_path() == Path(moved) / "debug.log"
    assert on_this_machine(f"{BOOKKEEPING_DIR}/host.lock") == f"{moved}/host.lock"
    assert on_this_machine("/var/lib/sipctlx/a") == "/var/lib/sipctlx/a"
    monkeypatch.delenv("SIPCTL_STATE_DIR")
    assert _debug_log_path() == Path(BOOKKEEPING_DIR) / "debug.log"
    assert on_this_machine(f"{BOOKKEEPING_DIR}/host.lock") == f"{BOOKKEEPING_DIR}/host.lock"
    assert local_state_dir({"SIPCTL_STATE_DIR": "relative"}) == Path(BOOKKEEPING_DIR)
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": "/home/u"}
    assert local_state_dir(env) == tmp_path / "state" / "sipctl"
    assert local_state_dir({"HOME": "/home/u"}) == Path("/home/u/.local/state/sipctl")
    assert local_state_dir({"XDG_STATE_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.local/state/sipctl"
    )


def test_the_debug_log_is_0600_and_never_written_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sipctl.cli_boundary import log_traceback as _log_traceback

    log = tmp_path / "logs" / "debug.log"
    log.parent.mkdir(mode=0o700)
    monkeypatch.setenv("SIPCTL_DEBUG_LOG", str(log))
    assert "are in" in _log_traceback(RuntimeError("boom"))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "RuntimeError: boom" in log.read_text()
    log.unlink()
    (tmp_path / "victim").write_bytes(VICTIM)
    log.symlink_to(tmp_path / "victim")
    said = _log_traceback(RuntimeError("boom"))
    assert "could not be written" in said and "symbolic link" in said
    assert (tmp_path / "victim").read_bytes() == VICTIM


def test_a_provider_crash_names_what_was_applied(tmp_path: Path) -> None:
    from sipctl.errors import ProviderCrashed
    from sipctl.reconciler.engine import ApplyReport, _after_failure

    report = ApplyReport(applied=["firewall local"])
    assert "already applied before this failure: firewall local" in _after_failure(report)
    assert issubclass(ProviderCrashed, ProviderError)


def test_plan_out_creates_no_directory_and_follows_no_link(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "--out", "plnas/plan.json"]) == 1
    assert "plnas does not exist" in capsys.readouterr().err
    assert not (workspace / "plnas").exists()
    (workspace / "plan.json").symlink_to(workspace / "victim")
    assert run(["plan", "--out", "plan.json"]) == 1
    assert "symbolic link" in capsys.readouterr().err
    victim_untouched(workspace)
    (workspace / "plan.json").unlink()
    assert run(["plan", "--out", "plan.json"]) == 0
    assert stat.S_IMODE((workspace / "plan.json").stat().st_mode) == 0o600


RENDER_SPEC = """\
version: 1
domain: mysite.ru
transports: {udp: {port: 5060}, wss: {port: 8089}}
servers: [{host: pbx.mysite.ru, ipv4: [203.0.113.10]}]
users: {director: 105}
asterisk:
  target: 'dir:pbx'
  tls: {cert_file: /etc/asterisk/keys/a.pem, key_file: /etc/asterisk/keys/a.key}
webrtc: {host: pbx.mysite.ru}
"""


@pytest.mark.parametrize(
    "plant",
    ["out", "out/cards", "out/webrtc", "out/webrtc/index.html", "out/cards/director.vcf"],
)
def test_render_writes_nothing_through_a_link_in_its_directory(
    plant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """render's directory is often a checkout, where a merge request can add a link
    (``cards -> ~/.ssh``, a linked ``index.html``): render refused none and wrote through."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(RENDER_SPEC)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim"
    victim.write_text("precious\n")
    link = tmp_path / plant
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(victim if plant.endswith((".html", ".vcf")) else elsewhere)
    assert run(["render", "-f", str(spec), "--dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "symbolic link" in err and len(err.strip().splitlines()) <= 2
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["victim"]


def test_render_writes_into_a_plain_directory_again_and_again(tmp_path: Path) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(RENDER_SPEC)
    for _ in range(2):
        assert run(["render", "-f", str(spec), "--dir", str(tmp_path / "out")]) == 0
    page = tmp_path / "out" / "webrtc" / "index.html"
    assert 'data-sipctl-call="director"' in page.read_text()
    assert not list((tmp_path / "out").rglob("*.sipctl-tmp"))


def test_render_names_the_files_an_earlier_render_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rendered again into the same directory after a user was removed, the removed user's
    card stayed in cards/ beside the current ones, unsaid: render names each file under its
    own subdirectories it did not write, and deletes nothing."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(RENDER_SPEC.replace("{director: 105}", "{director: 105, alex: 106}"))
    out = tmp_path / "out"
    assert run(["render", "-f", str(spec), "--dir", str(out)]) == 0
    (out / "notes.txt").write_text("the reviewer's own\n")
    assert run(["render", "-f", str(spec), "--dir", str(out)]) == 0
    assert "not written by this render" not in capsys.readouterr().err
    spec.write_text(RENDER_SPEC)
    assert run(["render", "-f", str(spec), "--dir", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{out / 'cards' / 'alex.vcf'}: not written by this render" in err, err
    assert f"{out / 'webrtc' / 'cards' / 'alex.vcf'}: not written by this render" in err, err
    assert "director.vcf" not in err and "notes.txt" not in err, err
    assert (out / "cards" / "alex.vcf").exists()


def test_apply_refuses_a_state_directory_it_cannot_write_before_planning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIPCTL_STATE_DIR naming a file (or a path through one, another user's directory, a
    relative path) is refused before anything is planned, naming it, what sipctl needs
    and what to do: a no-op apply printed "No changes" and then failed on its first record."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: example.org\nusers: {director: 105}\n"
        "servers: [{host: pbx.example.org, ipv4: [192.0.2.5]}]\n"
        "dns: {provider: zonefile, file: example.org.zone, create_file: true}\n"
    )
    good = tmp_path / "state" / "new"
    monkeypatch.setenv("SIPCTL_STATE_DIR", str(good))
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    assert good.is_dir() and stat.S_IMODE(good.stat().st_mode) == 0o700  # made as before
    capsys.readouterr()
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    other = tmp_path / "other"
    other.mkdir()
    os.chown(other, 65534, 65534)
    for value, said in [
        (str(a_file), f"{a_file} is a regular file, not a directory"),
        (str(a_file / "sub"), f"{a_file}, on the way to {a_file}/sub, is a regular file"),
        ("/dev/null", "/dev/null is a special file"),
        (str(other), f"{other} belongs to user id 65534, not to this user"),
        ("state", "SIPCTL_STATE_DIR=state is a relative path"),
    ]:
        monkeypatch.setenv("SIPCTL_STATE_DIR", value)
        assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 1
        out, err = capsys.readouterr()
        assert "No changes" not in out + err and "Plan:" not in out + err
        assert said in err and "SIPCTL_STATE_DIR" in err, err
        assert "hint:" in err and "Traceback" not in err


def test_drift_refuses_a_state_directory_it_cannot_read_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """drift with SIPCTL_STATE_DIR naming a file failed late ("... is not a directory"):
    refused as apply refuses it, in its text, its --json and its --out file."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: example.org\nusers: {director: 105}\n"
        "servers: [{host: pbx.example.org, ipv4: [192.0.2.5]}]\n"
        "dns: {provider: zonefile, file: example.org.zone, create_file: true}\n"
    )
    monkeypatch.setenv("SIPCTL_STATE_DIR", str(tmp_path / "state"))
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.setenv("SIPCTL_STATE_DIR", str(a_file))
    said = f"SIPCTL_STATE_DIR: {a_file} is a regular file, not a directory"
    capsys.readouterr()
    assert run(["drift", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert said in err and "hint:" in err and "Traceback" not in err, err
    assert run(["drift", "-f", str(spec), "--json"]) == 1
    (entry,) = json.loads(capsys.readouterr().out)["domains"]
    assert entry["status"] == "error" and entry["error"].startswith(said), entry
    out = tmp_path / "drift.json"
    assert run(["drift", "-f", str(spec), "--out", str(out)]) == 1
    assert said in capsys.readouterr().err
    (entry,) = json.loads(out.read_text())["domains"]
    assert entry["error"].startswith(said), entry


@pytest.mark.parametrize("spelt", ["/", "/../", "/etc", "/etc/fail2ban", "LINK", "LINK/etc"])
def test_render_refuses_a_directory_holding_a_live_configuration(
    spelt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """render --dir / (or /etc, a link to /) wrote /etc/fail2ban/jail.d/sipctl.conf and the
    Asterisk files: a directory that is or holds a live configuration directory is refused,
    saying why and what to name instead, and nothing is written."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(RENDER_SPEC)
    link = tmp_path / "root-link"
    link.symlink_to("/")
    before = sorted(Path("/").iterdir()), sorted(Path("/etc").iterdir())
    directory = spelt.replace("LINK", str(link))
    assert run(["render", "-f", str(spec), "--dir", directory]) == 1
    err = capsys.readouterr().err
    assert "live" in err and "empty review directory" in err and "Traceback" not in err
    assert (sorted(Path("/").iterdir()), sorted(Path("/etc").iterdir())) == before


def test_render_refuses_the_parent_of_the_specs_own_config_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "sipctl.yaml"
    live = tmp_path / "srv" / "asterisk"
    spec.write_text(RENDER_SPEC.replace("asterisk:\n", f"asterisk:\n  config_dir: {live}\n"))
    assert run(["render", "-f", str(spec), "--dir", str(tmp_path / "srv")]) == 1
    assert str(live) in capsys.readouterr().err
    assert not (tmp_path / "srv").exists()
    assert run(["render", "-f", str(spec), "--dir", str(tmp_path / "out")]) == 0
