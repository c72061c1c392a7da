"""Import reads back everything sipctl writes: a setup sipctl applied (rooms, TLS, WSS for
browsers, video, its own transports, dial timeouts, ring groups) imports as a spec whose
plan says No changes, on a zone file and a dir: PBX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.sshd import SshServer

from sipctl.cli import run

BASE: dict[str, Any] = {
    "version": 1,
    "domain": "round.example",
    "transports": {"udp": {"port": 5060}, "tcp": {"port": 5060}},
    "servers": [{"host": "pbx.round.example", "ipv4": ["192.0.2.10"], "priority": 10}],
    "users": {
        "director": 105,
        "sales": {"ring": [106, 107], "timeout": 20, "fallback": 101},
    },
    "dns": {"provider": "zonefile", "file": "zones/round.example", "create_file": True},
    "asterisk": {"target": "dir:pbx", "config_dir": "/etc/asterisk"},
}
TLS = {"cert_file": "/etc/asterisk/keys/pbx.pem", "key_file": "/etc/asterisk/keys/pbx.key"}

VARIANTS: dict[str, dict[str, Any]] = {
    "rooms": {"rooms": {"seminar": {"max_members": 12}, "board": {}}},
    # the admin's own TLS transport names the certificate (sipctl checks it, writes none)
    "tls": {"transports": {"tls": {"port": 5061}}, "asterisk": {"tls": TLS}},
    "wss and video": {
        "transports": {"wss": {"port": 8089}},
        "asterisk": {"tls": TLS, "video": True},
        "rooms": {"seminar": {"max_members": 5}},
    },
    "the published page": {
        "transports": {"wss": {"port": 8089}},
        "asterisk": {"tls": TLS, "video": True},
        "webrtc": {
            "host": "pbx.round.example",
            "page": {"title": "Call <Round> & co", "names": ["sales", "director"]},
            "publish": "dir:web:/srv/www/call",
        },
        "cards": {"organization": "Round, Inc; \\Ltd", "names": {"sales": "Sales desk"}},
    },
    "wss without opus": {
        "transports": {"tls": {"port": 5061}, "wss": {"port": 8443, "opus": False}},
        "asterisk": {"tls": TLS},
    },
    "extensions hidden (unknown_callers: challenge), rooms": {
        "asterisk": {"unknown_callers": "challenge"},
        "rooms": {"seminar": {}},
    },
    "own transports, a dial timeout": {
        "transports": {"tls": {"port": 5061}},
        "asterisk": {"tls": TLS, "manage_transports": True, "dial_timeout": 45},
    },
}


ADMINS_PJSIP = f"""\
[transport-udp]
type=transport
protocol=udp
bind=0.0.0.0:5060

[transport-tls]
type=transport
protocol=tls
bind=0.0.0.0:5061
cert_file={TLS["cert_file"]}
priv_key_file={TLS["key_file"]}
"""


def _spec(variant: dict[str, Any]) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in variant.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize("name", list(VARIANTS))
def test_import_of_what_sipctl_applied_plans_no_changes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zones").mkdir()
    etc = tmp_path / "pbx" / "etc" / "asterisk"
    etc.mkdir(parents=True)
    (etc / "pjsip.conf").write_text(ADMINS_PJSIP)
    original = _spec(VARIANTS[name])
    Path("applied.yaml").write_text(yaml.safe_dump(original, sort_keys=False))
    assert run(["apply", "-f", "applied.yaml", "--auto-approve", "--no-verify"]) == 0
    assert run(["plan", "-f", "applied.yaml", "--detailed-exitcode"]) == 0
    capsys.readouterr()

    args = ["import", "--domain", "round.example", "--dns", "zonefile:zones/round.example"]
    assert run([*args, "--asterisk", "dir:pbx", "--out", "imported.yaml"]) == 0
    said = capsys.readouterr()
    assert "A plan of it shows no changes." in said.err, said.err
    assert run(["plan", "-f", "imported.yaml", "--detailed-exitcode"]) == 0, capsys.readouterr()

    imported = yaml.safe_load(Path("imported.yaml").read_text())
    assert imported.get("rooms", {}).keys() == original.get("rooms", {}).keys()
    assert imported["transports"].keys() == original["transports"].keys()
    for key in ("video", "tls", "manage_transports", "dial_timeout", "unknown_callers"):
        assert imported["asterisk"].get(key) == original["asterisk"].get(key), key
    assert imported.get("webrtc") == original.get("webrtc")
    assert imported.get("cards") == original.get("cards")
    wss = original["transports"].get("wss")
    if wss is not None:
        assert imported["transports"]["wss"]["port"] == wss["port"]
        assert imported["transports"]["wss"].get("opus", True) == wss.get("opus", True)


def test_the_example_imports_as_a_spec_that_plans_no_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/mysite.yaml, applied: its DNS, PBX (users, ring group, room, TLS, WSS,
    video) and its published page with the business cards come back from import."""
    from fixtures.common import EXAMPLES

    monkeypatch.chdir(tmp_path)
    Path("mysite.yaml").write_text((EXAMPLES / "mysite.yaml").read_text())
    assert run(["apply", "-f", "mysite.yaml", "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()
    args = ["import", "--domain", "mysite.ru", "--dns", "zonefile:state/mysite.ru.zone"]
    # the read's own login options: --known-hosts is never written into the spec (a runner
    # profile would refuse a known_hosts it does not list), as import --help says, and
    # --ssh-key only with an ssh:// PBX (a dir: PBX logs in nowhere)
    args += ["--known-hosts", str(tmp_path / "elsewhere"), "--ssh-key", str(tmp_path / "k")]
    assert run([*args, "--asterisk", "dir:state/pbx", "--out", "imported.yaml"]) == 0
    assert "A plan of it shows no changes." in capsys.readouterr().err
    written = Path("imported.yaml").read_text()
    assert "known_hosts" not in written, written
    assert "elsewhere" not in written and f"{tmp_path}/k" not in written, written
    assert run(["plan", "-f", "imported.yaml", "--detailed-exitcode"]) == 0
    example = yaml.safe_load((EXAMPLES / "mysite.yaml").read_text())
    imported = yaml.safe_load(Path("imported.yaml").read_text())
    assert imported["rooms"] == example["rooms"]
    assert imported["webrtc"]["page"] == example["webrtc"]["page"]
    # the cards of the page's names are published with it (a room's card is not)
    page_names = example["webrtc"]["page"]["names"]
    assert imported["cards"] == {
        "organization": example["cards"]["organization"],
        "names": {name: example["cards"]["names"][name] for name in page_names},
    }


def test_a_spec_imported_into_another_directory_names_its_dir_places_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """import --out specs/imported.yaml named the zone file from specs/ but left
    asterisk.target and webrtc.publish as read from here (dir:state/pbx): the spec pointed
    at specs/state/pbx, a PBX that is not there, and its plan created every file anew."""
    from fixtures.common import EXAMPLES

    monkeypatch.chdir(tmp_path)
    Path("mysite.yaml").write_text((EXAMPLES / "mysite.yaml").read_text())
    assert run(["apply", "-f", "mysite.yaml", "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()
    Path("specs").mkdir()
    # the zone and the dir: targets stay in state/, beside specs/: the admin allows it in
    # the runner profile
    Path("runner-profile.yaml").write_text(
        "version: 1\nzone_files: [state]\ndir_targets: [state]\n"
    )
    monkeypatch.setenv("SIPCTL_PROFILE", str(tmp_path / "runner-profile.yaml"))
    args = ["import", "--domain", "mysite.ru", "--dns", "zonefile:state/mysite.ru.zone"]
    assert run([*args, "--asterisk", "dir:state/pbx", "--out", "specs/imported.yaml"]) == 0
    said = capsys.readouterr().err
    # the record of the published page names its place as the spec spells it: only that
    # bookkeeping changes (docs/hosting.md says so of a host's import)
    changes = said.split("(--adopt does it):\n", 1)[-1].strip().splitlines()
    assert changes == ["webrtc: update record published page"], said
    imported = yaml.safe_load(Path("specs/imported.yaml").read_text())
    assert imported["asterisk"]["target"] == "dir:../state/pbx", imported["asterisk"]
    assert imported["webrtc"]["publish"] == "dir:../state/web:/var/www/html/call"
    assert run(["plan", "-f", "specs/imported.yaml", "--json"]) == 0
    (domain,) = json.loads(capsys.readouterr().out)["domains"]
    changed = [c["address"] for t in domain["plan"]["targets"] for c in t["changes"]]
    assert changed == [{"layer": "webrtc", "kind": "record", "name": "published page"}], changed
    assert not Path("specs/state").exists()


def test_import_over_ssh_writes_its_ssh_key_and_the_spec_logs_in_with_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ssh_server: SshServer,
) -> None:
    """import --ssh-key read the PBX with the key, but the spec it wrote named none: its
    first plan could not log in. The key is written as asterisk.ssh.key_file (relative:
    named from the spec's directory; absolute: as typed), and the import's own plan of the
    written spec logs in over SSH with it."""
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    # the spec's known_hosts stays the runner's own ~/.ssh/known_hosts: here, this HOME's
    (home / ".ssh" / "known_hosts").write_text(ssh_server.host_key_line())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the key given can log in
    Path("keys").mkdir()
    Path("keys/pbx").write_bytes(ssh_server.key_file.read_bytes())
    Path("keys/pbx").chmod(0o600)
    etc = tmp_path / "pbx" / "etc" / "asterisk"
    etc.mkdir(parents=True)
    (etc / "pjsip.conf").write_text(ADMINS_PJSIP.split("\n\n")[0] + "\n")
    spec = {
        "version": 1,
        "domain": "round.example",
        "transports": {"udp": {"port": 5060}},
        "servers": [{"host": "pbx.round.example", "ipv4": ["127.0.0.1"]}],
        "users": {"director": 105},
        "dns": {"provider": "zonefile", "file": "round.example.zone", "create_file": True},
        "asterisk": {"target": f"dir:{tmp_path / 'pbx'}"},
    }
    Path("specs").mkdir()  # the zone beside the specs, where a spec may name it
    Path("specs/applied.yaml").write_text(yaml.safe_dump(spec))
    assert run(["apply", "-f", "specs/applied.yaml", "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()
    target = f"ssh://root@127.0.0.1:{ssh_server.port}"
    args = ["import", "--domain", "round.example", "--dns", "zonefile:specs/round.example.zone"]
    args += ["--asterisk", target, "--config-dir", str(etc)]
    # The import's plan of the written spec logs in with the key the spec names and gets as
    # far as asking for Asterisk, which this sshd's host has not (without the key in the
    # spec it found none: no key_file, no agent, no ~/.ssh/id_* in this HOME).
    assert run([*args, "--ssh-key", "keys/pbx", "--out", "specs/imported.yaml"]) == 1
    said = capsys.readouterr().err
    assert "Wrote specs/imported.yaml." in said, said
    assert "cannot ask Asterisk ('pjsip show transports')" in said, said
    assert "no key" not in said and "Traceback" not in said, said
    imported = yaml.safe_load(Path("specs/imported.yaml").read_text())
    assert imported["asterisk"]["target"] == target
    assert imported["asterisk"]["ssh"] == {"key_file": "../keys/pbx"}, imported["asterisk"]
    key = str(tmp_path / "keys" / "pbx")
    assert run([*args, "--ssh-key", key, "--out", "specs/again.yaml"]) == 1
    assert "cannot ask Asterisk ('pjsip show transports')" in capsys.readouterr().err
    imported = yaml.safe_load(Path("specs/again.yaml").read_text())
    assert imported["asterisk"]["ssh"] == {"key_file": key}
