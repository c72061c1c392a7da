"""The zonefile provider: owned records only, serial bump, atomic writes, reloads; BIND loads it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import dns.zone
import pytest
from fixtures import host_profile
from fixtures.bind import UNRELATED_RECORDS, BindServer, zone_text

from sipctl.errors import ProviderError, StalePlanError
from sipctl.providers.base import RunContext
from sipctl.providers.dns.zonefile import ZoneFileProvider, next_serial
from sipctl.reconciler.diff import diff
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.dns import render_dns
from sipctl.reconciler.resources import LiveState
from sipctl.schemas.loader import load_spec_text

ZONE = "mysite.test"
OWNED_PREFIXES = ("_sip._udp.", "_sip._tcp.", "_sips._tcp.", "_sipctl.", "_sipctl-claim.")
SERVERS = (
    f"[{{host: asterisk.{ZONE}, ipv4: [203.0.113.10], priority: 10}}, "
    f"{{host: second.{ZONE}, ipv4: [203.0.113.11], ipv6: ['2001:db8::11'], priority: 20}}]"
)


def spec_text(
    file: str = "zones/mysite.zone",
    servers: str = SERVERS,
    transports: str = "{udp: {}, tcp: {}, tls: {}}",
    extra: str = "",
) -> str:
    return (
        f"version: 1\ndomain: {ZONE}\ntransports: {transports}\nservers: {servers}\n"
        f"dns:\n  provider: zonefile\n  file: {file}\n  ttl: 3600\n{extra}"
    )


class Run:
    def __init__(self, tmp_path: Path, text: str) -> None:
        self.loaded = load_spec_text(text, source=str(tmp_path / "sipctl.yaml"), base_dir=tmp_path)
        self.provider = ZoneFileProvider(self.loaded, RunContext(base_dir=tmp_path))
        self.desired = render_dns(self.loaded.spec)

    def plan(self) -> tuple[LiveState, list[Change]]:
        live = self.provider.read(self.desired)
        return live, diff(self.desired, live)

    def apply(self) -> list[str]:
        live, changes = self.plan()
        return self.provider.apply(changes, live)


def converge(tmp_path: Path, text: str) -> Run:
    run = Run(tmp_path, text)
    run.apply()
    assert Run(tmp_path, text).plan()[1] == [], "a second plan after apply must be empty"
    return run


def records(path: Path, owned: bool) -> list[str]:
    """The zone's records (not the SOA) as text, either those sipctl owns or the others."""
    zone = dns.zone.from_file(str(path), origin=ZONE, relativize=False)
    found = []
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            for rdata in rdataset:
                rtype = dns.rdatatype.to_text(rdataset.rdtype)
                if rtype == "SOA":
                    continue
                line = f"{name} {rdataset.ttl} {rtype} {rdata}"
                is_owned = (
                    str(name).startswith(OWNED_PREFIXES)
                    or (
                        rtype in ("A", "AAAA") and str(name).split(".")[0] in ("asterisk", "second")
                    )
                    or (rtype == "NAPTR" and '"SIP' in str(rdata).upper())
                )
                if is_owned == owned:
                    found.append(line)
    return sorted(found)


def serial(path: Path) -> int:
    zone = dns.zone.from_file(str(path), origin=ZONE, relativize=False)
    return int(zone.get_rdataset(f"{ZONE}.", "SOA")[0].serial)


@pytest.fixture
def zone_file(tmp_path: Path) -> Path:
    path = tmp_path / "zones" / "mysite.zone"
    path.parent.mkdir()
    path.write_text("; hand-written zone\n" + zone_text(ZONE, UNRELATED_RECORDS, serial=2024010101))
    path.chmod(0o640)
    return path


def test_a_missing_file_or_directory_is_an_error_unless_creation_is_asked(
    tmp_path: Path,
) -> None:
    live, _ = Run(tmp_path, spec_text()).plan()
    [problem] = live.problems
    assert "directory" in problem and "does not exist" in problem
    assert not (tmp_path / "zones").exists()
    (tmp_path / "zones").mkdir()
    live, _ = Run(tmp_path, spec_text()).plan()
    [problem] = live.problems
    assert "dns.create_file: true" in problem
    assert not (tmp_path / "zones" / "mysite.zone").exists()


@pytest.mark.programs
def test_a_missing_file_is_created_and_loads_in_named(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    text = spec_text(extra="  create_file: true\n")
    live, changes = Run(tmp_path, text).plan()
    assert any("does not exist" in note for note in live.notes)
    assert len(changes) == 10  # NAPTR, 3 SRV, 3 A/AAAA, the registry, 2 hosts' claims
    converge(tmp_path, text)
    path = tmp_path / "zones" / "mysite.zone"
    checker = shutil.which("named-checkzone") or "/usr/bin/named-checkzone"
    import subprocess

    result = subprocess.run([checker, ZONE, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert serial(path) == int(dt.datetime.now(dt.UTC).strftime("%Y%m%d")) * 100 + 1
    assert f'"SIPS+D2T" "" _sips._tcp.{ZONE}.' in " ".join(records(path, owned=True))


def test_other_records_are_kept_serial_bumped_and_mode_kept(
    tmp_path: Path, zone_file: Path
) -> None:
    others = records(zone_file, owned=False)
    converge(tmp_path, spec_text())
    assert records(zone_file, owned=False) == others
    assert zone_file.stat().st_mode & 0o777 == 0o640
    first = serial(zone_file)
    assert first == next_serial(2024010101, dt.datetime.now(dt.UTC).date())
    assert first // 100 == int(dt.datetime.now(dt.UTC).strftime("%Y%m%d"))
    owned = records(zone_file, owned=True)
    assert f"_sip._udp.{ZONE}. 3600 SRV 20 0 5060 second.{ZONE}." in owned
    assert f"second.{ZONE}. 3600 AAAA 2001:db8::11" in owned

    # a second apply of the same spec writes nothing at all
    mtime = zone_file.stat().st_mtime_ns
    assert Run(tmp_path, spec_text()).apply() == []
    assert zone_file.stat().st_mtime_ns == mtime

    # removal keeps the others too, and the non-SIP NAPTR
    converge(tmp_path, spec_text(extra="  ensure: absent\n"))
    assert records(zone_file, owned=True) == []
    assert records(zone_file, owned=False) == others
    assert serial(zone_file) == first + 1


def test_a_plain_serial_is_incremented(tmp_path: Path, zone_file: Path) -> None:
    zone_file.write_text(zone_text(ZONE, UNRELATED_RECORDS, serial=41))
    converge(tmp_path, spec_text())
    assert serial(zone_file) == 42
    assert next_serial(2**32 - 1, dt.date(2024, 1, 1)) == 1
    assert next_serial(2024010199, dt.date(2024, 1, 1)) == 2024010200
    assert next_serial(2099010101, dt.date(2024, 1, 1)) == 2099010102


def test_removing_a_server_and_a_transport_removes_exactly_their_records(
    tmp_path: Path, zone_file: Path
) -> None:
    converge(tmp_path, spec_text())
    before = records(zone_file, owned=True)
    one = f"[{{host: asterisk.{ZONE}, ipv4: [203.0.113.10], priority: 10}}]"
    converge(tmp_path, spec_text(servers=one, transports="{udp: {}, tcp: {}}"))
    after = records(zone_file, owned=True)
    gone = sorted(set(before) - set(after))
    assert all("second" in line or "_sips._tcp" in line or '"SIPS+D2T"' in line for line in gone), (
        gone
    )
    assert f"second.{ZONE}. 3600 A 203.0.113.11" in gone
    assert f"second.{ZONE}. 3600 AAAA 2001:db8::11" in gone
    assert f"asterisk.{ZONE}. 3600 A 203.0.113.10" in after
    assert not any("_sips._tcp" in line for line in after)


def test_an_edit_of_owned_records_after_the_read_makes_apply_stale(
    tmp_path: Path, zone_file: Path
) -> None:
    converge(tmp_path, spec_text())
    run = Run(tmp_path, spec_text(servers=f"[{{host: asterisk.{ZONE}, priority: 5}}]"))
    live, changes = run.plan()
    edited = zone_file.read_text() + f"_sip._udp.{ZONE}. 60 IN SRV 1 1 5060 other.{ZONE}.\n"
    zone_file.write_text(edited)
    with pytest.raises(StalePlanError, match="nothing was changed"):
        run.provider.apply(changes, live)
    assert zone_file.read_text() == edited


def test_an_unrelated_edit_after_the_read_is_kept(tmp_path: Path, zone_file: Path) -> None:
    run = Run(tmp_path, spec_text())
    live, changes = run.plan()
    zone_file.write_text(zone_file.read_text() + 'extra IN TXT "added meanwhile"\n')
    run.provider.apply(changes, live)
    assert f'extra.{ZONE}. 3600 TXT "added meanwhile"' in records(zone_file, owned=False)


def _script(path: Path, body: str) -> Path:
    """A reload program (a command is run without a shell, so shell syntax goes in a file)."""
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_the_host_profiles_zone_reload_runs_after_a_change(tmp_path: Path, zone_file: Path) -> None:
    marker = tmp_path / "reloaded"
    script = _script(tmp_path / "reload", f"echo reload >> {marker}")
    host_profile.add("zone_reload", [str(script), "mysite.ru"], entry="bind")
    extra = "  reload: bind\n"
    run = converge(tmp_path, spec_text(extra=extra))
    assert marker.read_text() == "reload\n"
    assert run.provider.reloads == 1
    assert Run(tmp_path, spec_text(extra=extra)).apply() == []
    assert marker.read_text() == "reload\n"  # no change, no reload


def test_a_failing_reload_restores_the_file(tmp_path: Path, zone_file: Path) -> None:
    original = zone_file.read_bytes()
    script = _script(tmp_path / "reload", "echo zone not loaded >&2; exit 4")
    host_profile.add("zone_reload", [str(script)])
    extra = ""
    with pytest.raises(ProviderError) as info:
        Run(tmp_path, spec_text(extra=extra)).apply()
    assert "exit status 4" in str(info.value) and "zone not loaded" in str(info.value)
    assert "restored" in str(info.value)
    assert zone_file.read_bytes() == original
    assert zone_file.stat().st_mode & 0o777 == 0o640


def test_a_broken_zone_file_is_one_clear_error(tmp_path: Path, zone_file: Path) -> None:
    zone_file.write_text(zone_file.read_text() + "www IN A not-an-address\n")
    with pytest.raises(ProviderError) as info:
        Run(tmp_path, spec_text()).plan()
    assert str(zone_file) in str(info.value) and "\n" not in str(info.value)


def test_the_written_file_is_stable(tmp_path: Path, zone_file: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "zones", copy / "zones")
    converge(tmp_path, spec_text())
    converge(copy, spec_text())
    assert zone_file.read_text() == (copy / "zones" / "mysite.zone").read_text()


HAND_MADE = """\
; mysite.test, kept by hand.  Do not reformat!
$TTL 1h
$ORIGIN mysite.test.
@       IN  SOA ns1 hostmaster (
                2024010101 ; serial
                3600       ; refresh
                600 86400 300 )
        IN  NS  ns1
        IN  MX  10 mail          ; the mail server
        IN  NAPTR 100 10 "u" "E2U+email" "!^.*$!mailto:info@example.org!" .
ns1     IN  A   127.0.0.1
mail    IN  A   192.0.2.25

; hosts
asterisk        IN A 203.0.113.99   ; old address, sipctl's to change
$ORIGIN office.mysite.test.
printer IN A 192.0.2.9
$INCLUDE INCLUDED
www.mysite.test.  300 IN A 192.0.2.80
"""


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    import difflib

    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return (
        [line[2:] for line in diff if line.startswith("- ")],
        [line[2:] for line in diff if line.startswith("+ ")],
    )


def _owned(line: str) -> bool:
    """A line that holds a record sipctl owns (or the SOA serial)."""
    words = line.split()
    return bool(words) and (
        words[0].startswith(("_sip", "asterisk", "second", "@"))
        or "SIP" in line
        or "; serial" in line
    )


@pytest.mark.root
@pytest.mark.programs
def test_a_hand_made_zone_keeps_every_line_not_owned_byte_for_byte(tmp_path: Path) -> None:
    """Comments, $TTL, $ORIGIN, $INCLUDE, relative names and layout stay; owner and mode too;
    named-checkzone accepts every version, through apply, a change and removal."""
    zones = tmp_path / "zones"
    zones.mkdir()
    included = zones / "extra.inc"
    included.write_text("; included by hand\nftp IN A 192.0.2.21\n")
    path = zones / "mysite.zone"
    text = HAND_MADE.replace("INCLUDED", str(included))
    path.write_text(text)
    os.chown(path, 1234, 4321)  # like bind:bind
    path.chmod(0o640)
    checker = shutil.which("named-checkzone") or "/usr/sbin/named-checkzone"
    import subprocess

    versions = [text]
    for spec in (
        spec_text(),
        spec_text(servers=f"[{{host: asterisk.{ZONE}, ipv4: [203.0.113.10], priority: 5}}]"),
        spec_text(extra="  ensure: absent\n"),
    ):
        converge(tmp_path, spec)
        now = path.read_text()
        removed, added = _changed_lines(versions[-1], now)
        assert all(_owned(line) for line in removed + added), (removed, added)
        info = path.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (1234, 4321, 0o640)
        assert (zones / "mysite.zone.sipctl.bak").read_text() == versions[-1]
        result = subprocess.run([checker, ZONE, str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        versions.append(now)
    # every line that is not sipctl's is still there, in order, byte for byte
    theirs = [line for line in text.splitlines() if not _owned(line)]
    assert [line for line in versions[-1].splitlines() if not _owned(line)] == theirs
    assert "asterisk" not in versions[-1]  # the old A record went with the layer
    # added at the end, after "$ORIGIN office...": owners are written absolute there
    assert "\n_sip._udp.mysite.test.\t3600\tIN\tSRV\t" in versions[1]
    assert "asterisk\t3600\tIN\tA\t203.0.113.10\n" in versions[1], "relative next to its name"


def test_a_linked_zone_file_is_edited_where_it_points(tmp_path: Path, zone_file: Path) -> None:
    link = tmp_path / "zones" / "link.zone"
    link.symlink_to(zone_file)
    live, _ = Run(tmp_path, spec_text(file="zones/link.zone")).plan()
    assert any("symbolic link" in note and str(zone_file) in note for note in live.notes)
    converge(tmp_path, spec_text(file="zones/link.zone"))
    assert link.is_symlink() and link.readlink() == zone_file
    assert records(zone_file, owned=True)


@pytest.mark.bind
def test_bind_loads_the_file_and_serves_the_records(bind: BindServer, tmp_path: Path) -> None:
    zone = bind.new_zone()
    path = bind.dir / f"{zone}.zone"
    rndc = shutil.which("rndc") or "/usr/sbin/rndc"
    text = (
        f"version: 1\ndomain: {zone}\nservers: [{{host: asterisk.{zone}, ipv4: [203.0.113.10]}}]\n"
        f"dns:\n  provider: zonefile\n  file: {path}\n"
    )
    host_profile.add("zone_reload", [rndc, "-c", str(bind.dir / "rndc.conf"), "reload", zone])
    # a dynamic zone must be frozen while its file is edited by hand
    assert bind.rndc("freeze", zone).returncode == 0
    try:
        loaded = load_spec_text(text, base_dir=tmp_path)
        # the zone lives in BIND's directory, not beside the spec: the admin allows it
        profile = tmp_path / "runner-profile.yaml"
        profile.write_text(f"version: 1\nzone_files: [{bind.dir}]\n")
        env = {**os.environ, "SIPCTL_PROFILE": str(profile)}
        provider = ZoneFileProvider(loaded, RunContext(base_dir=tmp_path, env=env))
        desired = render_dns(loaded.spec)
        live = provider.read(desired)
        provider.apply(diff(desired, live), live)
    finally:
        bind.rndc("thaw", zone)
    assert bind.query(f"_sip._udp.{zone}", "SRV") == [f"10 0 5060 asterisk.{zone}."]
    assert bind.query(f"asterisk.{zone}", "A") == ["203.0.113.10"]
    assert bind.query(f"www.{zone}", "A") == ["192.0.2.80"]
    bind.delete_zone(zone)
