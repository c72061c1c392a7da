"""Import of a hand-made setup (BIND + a dir: Asterisk config) and drift since the last apply."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fixtures.bind import SECRET_ENV, UNRELATED_RECORDS, BindServer, bind_env, dns_spec, zone_text

from sipctl.cli import run
from sipctl.reconciler.gitops.drift import apply_detail_path
from sipctl.reconciler.gitops.importer import fresh_context, parse_asterisk
from sipctl.reconciler.render.asterisk import PARENTS, desired_files, include_line
from sipctl.schemas.loader import load_spec_text

# The classic hand-made setup: NAPTR -> SRV -> A, written by an admin (note the odd
# preference 50, the lower-case service, and no TLS).
HAND_MADE_DNS = """\
@           IN NAPTR 10 50 "s" "sip+d2u" "" _sip._udp
@           IN NAPTR 20 50 "S" "SIP+D2T" "" _sip._tcp
_sip._udp   IN SRV   10 0 5060 asterisk
_sip._tcp   IN SRV   10 0 5060 asterisk
_sip._udp   IN SRV   20 5 5060 backup.example.net.
_sip._tcp   IN SRV   20 5 5060 backup.example.net.
asterisk    IN A     192.0.2.10
"""

SIP_CONF = """\
[general]
context=default
allowguest=yes        ; let outside callers in
context=guest-call
udpbindaddr=0.0.0.0

[105]
type=friend
"""

EXTENSIONS_CONF = """\
[general]
static=yes

[default]
exten => 105,1,Dial(SIP/105)

[guest-call]
exten => director,1,Dial(SIP/105)
exten => alex,1,Dial(SIP/106)
exten => 101,1,Dial(SIP/101)
exten => _.,1,Playback(bad-user)
exten => _.,n,Hangup()
"""


@pytest.fixture
def hand_made_zone(bind: BindServer) -> Iterator[str]:
    name = f"hand-{secrets.token_hex(3)}.test"
    bind.new_zone(zone=name, text=zone_text(name, UNRELATED_RECORDS + HAND_MADE_DNS))
    yield name
    bind.delete_zone(name)


def _pbx(tmp_path: Path) -> Path:
    etc = tmp_path / "pbx" / "etc" / "asterisk"
    etc.mkdir(parents=True)
    (etc / "sip.conf").write_text(SIP_CONF)
    (etc / "extensions.conf").write_text(EXTENSIONS_CONF)
    (etc / "rtp.conf").write_text("[general]\nrtpstart=12000\nrtpend=14000\n")
    return tmp_path / "pbx"


def test_import_of_a_hand_made_setup_then_plan_shows_no_changes(
    bind: BindServer,
    hand_made_zone: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(SECRET_ENV, bind.secret)
    z = hand_made_zone
    etc = _pbx(tmp_path) / "etc" / "asterisk"
    before = bind.zone_records(z)
    url = f"rfc2136://{bind.server}/{z}?key={bind.key_name}&secret_env={SECRET_ENV}"
    args = ["import", "--domain", z, "--dns", url, "--asterisk", "dir:pbx"]

    assert run([*args, "--out", "sipctl.yaml"]) == 0
    assert bind.zone_records(z) == before, "import alone reads only"
    assert sorted(p.name for p in etc.iterdir()) == ["extensions.conf", "rtp.conf", "sip.conf"]
    err = capsys.readouterr().err
    assert f"the ownership record TXT _sipctl.{z}" in err
    assert "sipctl's own extensions_sipctl.conf" in err
    assert "one #include line at the end of sip.conf" in err

    text = (tmp_path / "sipctl.yaml").read_text()
    assert "Your hand-written [guest-call] in extensions.conf" in text
    assert "delete it after the first apply" in text
    spec = yaml.safe_load(text)
    assert spec["users"] == {"director": "105", "alex": "106", "101": "101"}
    assert spec["asterisk"]["channel"] == "sip"
    # never the admin's context: sipctl's would merge with it
    assert spec["asterisk"]["guest_context"] == "sipctl-guest"
    assert spec["asterisk"]["reject_sound"] == "bad-user"
    assert spec["asterisk"]["rtp"] == {"start": 12000, "end": 14000}
    assert spec["servers"][0]["host"] == f"asterisk.{z}"
    assert spec["servers"][1] == {"host": "backup.example.net", "priority": 20, "weight": 5}
    assert "tls" not in spec["transports"]

    assert run([*args, "--out", "sipctl.yaml", "--adopt"]) == 0
    changed = set(bind.zone_records(z)) - set(before)
    bookkeeping = {f"_sipctl.{z}.", f"_sipctl-claim.asterisk.{z}.", f"_sipctl-state.{z}."}
    assert {line.split()[0] for line in changed} == bookkeeping, (
        "adopting writes only sipctl's own bookkeeping in DNS"
    )
    out = capsys.readouterr().out
    assert "Apply complete!" in out, "adopting shows what it changes, as apply does"
    # the admin's lines are kept byte for byte; one include line each is added at the end
    assert (etc / "sip.conf").read_text() == SIP_CONF + "#include sip_sipctl.conf\n"
    assert (etc / "extensions.conf").read_text() == (
        EXTENSIONS_CONF + "#include extensions_sipctl.conf\n"
    )
    assert (etc / "rtp.conf").read_text() == "[general]\nrtpstart=12000\nrtpend=14000\n"
    assert "context=sipctl-guest" in (etc / "sip_sipctl.conf").read_text().splitlines()
    dialplan = (etc / "extensions_sipctl.conf").read_text()
    assert "[sipctl-guest]" in dialplan and "[guest-call]" not in dialplan

    assert run(["plan", "-f", "sipctl.yaml", "--detailed-exitcode"]) == 0, "all layers"
    assert "No changes." in capsys.readouterr().out
    assert run(["drift", "-f", "sipctl.yaml"]) == 0
    # the admin deletes the unused hand-made context, as the spec's header says; importing
    # again finds sipctl's own, names it again and has nothing left to do
    hand_made = EXTENSIONS_CONF[EXTENSIONS_CONF.index("[guest-call]") :]
    (etc / "extensions.conf").write_text(
        (etc / "extensions.conf").read_text().replace(hand_made, "")
    )
    assert run([*args, "--out", "again.yaml", "--adopt"]) == 0
    again = yaml.safe_load((tmp_path / "again.yaml").read_text())
    assert (again["asterisk"], again["users"]) == (spec["asterisk"], spec["users"])
    assert "already land in sipctl's own [sipctl-guest]" in (tmp_path / "again.yaml").read_text()
    assert "Apply complete!" not in capsys.readouterr().out


PJSIP_CONF = """\
[transport-udp]
type=transport
protocol=udp
bind=0.0.0.0

[anonymous]
type=endpoint
context=guest-call
disallow=all
allow=ulaw
"""


def test_import_of_a_pjsip_anonymous_endpoint_says_why_it_cannot_adopt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    zone = zone_text("pbx.example", UNRELATED_RECORDS + HAND_MADE_DNS)
    (tmp_path / "pbx.zone").write_text(zone)
    etc = tmp_path / "pbx" / "etc" / "asterisk"
    etc.mkdir(parents=True)
    (etc / "pjsip.conf").write_text(PJSIP_CONF)
    (etc / "extensions.conf").write_text(EXTENSIONS_CONF.replace("SIP/", "PJSIP/"))
    args = ["import", "--domain", "pbx.example", "--dns", "zonefile:pbx.zone"]
    args += ["--asterisk", "dir:pbx", "--out", "sipctl.yaml"]

    assert run(args) == 0, "import alone still writes the spec"
    err = capsys.readouterr().err
    assert "dir:pbx:/etc/asterisk/pjsip.conf section [anonymous]" in err
    assert "delete the [anonymous] section" in err
    spec = yaml.safe_load((tmp_path / "sipctl.yaml").read_text())
    assert spec["asterisk"]["channel"] == "pjsip"
    assert spec["asterisk"]["guest_context"] == "sipctl-guest"
    # Asterisk's own default range, 5000-31000, holds udp/5060: a spec refuses it
    assert "5000-31000 (Asterisk default: rtp.conf sets none)" in err
    assert spec["asterisk"]["rtp"] == {"start": 10000, "end": 20000}
    assert run(["validate", "-f", "sipctl.yaml"]) == 0
    capsys.readouterr()

    assert run([*args, "--adopt"]) == 1
    err = capsys.readouterr().err
    assert "pjsip.conf section [anonymous]" in err
    assert "--adopt stopped before changing anything" in err
    assert (tmp_path / "pbx.zone").read_text() == zone, "no DNS bookkeeping either"
    assert sorted(p.name for p in etc.iterdir()) == ["extensions.conf", "pjsip.conf"]
    assert (etc / "pjsip.conf").read_text() == PJSIP_CONF


def test_the_imported_guest_context_is_one_the_admin_does_not_have() -> None:
    files = {
        "sip.conf": SIP_CONF,
        "extensions.conf": EXTENSIONS_CONF + "[SIPCTL-guest]\nexten => 1,1,Hangup()\n",
    }
    found = parse_asterisk(files, "local", "/etc/asterisk")
    assert found.data["asterisk"]["guest_context"] == "sipctl-guest-2"
    assert fresh_context({"sipctl-guest", "sipctl-guest-2"}) == "sipctl-guest-3"


def test_import_from_a_zone_file_then_plan_shows_no_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "shop.example").write_text(
        zone_text("shop.example", UNRELATED_RECORDS + HAND_MADE_DNS)
    )
    (tmp_path / "specs").mkdir()
    # the spec goes to specs/, its zone stays in zones/: the admin allows that directory
    (tmp_path / "runner-profile.yaml").write_text("version: 1\nzone_files: [zones]\n")
    monkeypatch.setenv("SIPCTL_PROFILE", str(tmp_path / "runner-profile.yaml"))
    args = ["import", "--domain", "shop.example", "--dns", "zonefile:zones/shop.example"]
    assert run([*args, "--out", "specs/shop.yaml", "--adopt"]) == 0
    spec = yaml.safe_load((tmp_path / "specs" / "shop.yaml").read_text())
    assert spec["dns"] == {"provider": "zonefile", "file": "../zones/shop.example", "ttl": 3600}
    assert run(["plan", "-f", "specs/shop.yaml", "--detailed-exitcode"]) == 0


def test_import_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.zone").write_text(zone_text("empty.example"))
    assert run(["import", "--domain", "empty.example", "--dns", "zonefile:empty.zone"]) == 1
    assert run(["import", "--domain", "x.example", "--dns", "http://x"]) == 1
    assert run(["import", "--domain", "x.example", "--dns", "zonefile:z", "--adopt"]) == 1


def test_drift_lists_live_changes_since_the_last_apply_but_not_spec_changes(
    bind: BindServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = bind.new_zone()
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(dns_spec(bind, zone))
    env = bind_env(bind)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_ENV, env[SECRET_ENV])
        assert run(["drift", "-f", str(spec)]) == 1, "no record of an apply yet"
        assert "no record of a last apply" in capsys.readouterr().err
        assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
        assert run(["drift", "-f", str(spec)]) == 0
        assert "No drift." in capsys.readouterr().out

        # the public record names nobody: an opaque id and hashes; who and when stay here
        import socket

        (state,) = bind.query(f"_sipctl-state.{zone}", "TXT")
        text = state.replace('" "', "").replace('\\"', '"')
        for private in (socket.gethostname(), "root@", bind.host, '"by"', "applied_at"):
            assert private not in text, (private, text)
        assert '"id":' in text and '"resources":' in text
        apply_id = text.split('"id":"', 1)[1].split('"', 1)[0]
        assert run(["drift", "-f", str(spec), "--json"]) == 0
        (target,) = json.loads(capsys.readouterr().out)["domains"][0]["drift"]["targets"]
        assert "@" in target["by"] and target["applied_at"], target  # this machine's detail
        detail = apply_detail_path(target["record"])
        kept = detail.read_bytes()
        detail.unlink()  # as on another CI runner
        assert run(["drift", "-f", str(spec), "--json"]) == 0
        (target,) = json.loads(capsys.readouterr().out)["domains"][0]["drift"]["targets"]
        assert target["by"] == f"another machine (apply id {apply_id})", target
        detail.write_bytes(kept)

        # someone edits the zone by hand
        bind.update(
            zone,
            add=[("_sip._udp", 300, "SRV", "10 0 5070 asterisk")],
            delete=[("_sip._udp", "SRV"), ("asterisk", "A")],
        )
        serial = bind.serial(zone)
        assert run(["drift", "-f", str(spec), "--json"]) == 2
        report = json.loads(capsys.readouterr().out)["domains"][0]["drift"]
        drifted = {(d["kind"], d["name"], d["how"]) for d in report["targets"][0]["drift"]}
        assert drifted == {
            ("SRV", f"_sip._udp.{zone}.", "changed"),
            ("A", f"asterisk.{zone}.", "removed"),
        }
        assert report["targets"][0]["by"]
        assert bind.serial(zone) == serial, "drift changes nothing"
        assert run(["drift", "-f", str(spec)]) == 2
        out = capsys.readouterr().out
        assert f"~ SRV _sip._udp.{zone}. was changed on the live side" in out
        assert "now: 10 0 5070" in out

        # apply puts it back and records it; a spec change that is not applied is no drift
        assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
        moved = (
            f"[{{host: asterisk.{zone}, ipv4: [203.0.113.10], priority: 10}}, "
            "{host: sip.example.net, priority: 30}]"
        )
        spec.write_text(dns_spec(bind, zone, servers=moved))
        assert run(["plan", "-f", str(spec), "--detailed-exitcode"]) == 2
        assert run(["drift", "-f", str(spec)]) == 0
    bind.delete_zone(zone)


@pytest.mark.parametrize("channel", ["pjsip", "sip"])
def test_an_adopted_setup_imports_as_the_spec_it_came_from(channel: str) -> None:
    asterisk = {"channel": channel, "guest_context": "sipctl-guest", "reject_sound": "bad-user"}
    spec = load_spec_text(
        yaml.safe_dump(
            {
                "version": 1,
                "domain": "pbx.example",
                "servers": [{"host": "pbx.example", "priority": 10}],
                "users": {
                    "director": "105",
                    "alex": "106",
                    "sales": {"ring": ["106", "107"], "timeout": 15, "fallback": "101"},
                },
                "asterisk": asterisk,
            }
        )
    ).spec
    files = {"pjsip.conf": "[transport-udp]\ntype=transport\n", "sip.conf": "[general]\n"}
    files["extensions.conf"] = "[default]\nexten => 105,1,Dial(PJSIP/105)\n"
    for name, text in desired_files(spec).items():
        files[name] = text
        files[PARENTS[name]] += include_line(name) + "\n"
    found = parse_asterisk(files, "local", "/etc/asterisk")
    assert found.blockers == []
    assert found.data["users"] == {
        "director": "105",
        "alex": "106",
        "sales": {"ring": ["106", "107"], "timeout": 15, "fallback": "101"},
    }
    section = found.data["asterisk"]
    assert (section["channel"], section["guest_context"]) == (channel, "sipctl-guest")
    assert section["reject_sound"] == "bad-user"
