"""dns.provider octodns against a real PowerDNS Authoritative, through octodns_powerdns.

PowerDNS (sqlite3 backend) runs in the foreground on loopback ports (tests/fixtures/
powerdns.py); sipctl drives it only through the octoDNS plugin's HTTP API client, and the
tests check what PowerDNS really holds (its API) and serves (dig on its DNS port).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.common import free_port, require
from fixtures.powerdns import PowerDnsServer
from octodns_specs import PDNS_KEY_ENV as KEY_ENV
from octodns_specs import allow_test_plugins, pdns_spec, sipctl, write
from verify_responder import Responder

# octoDNS holds NAPTR flags in upper case (they are case-insensitive, RFC 3403): an rrset it
# writes back has "U" where the admin wrote "u"; the entry means the same.
E2U = '100 10 "U" "E2U+email" "!^.*$!mailto:info@example.org!" .'


def spec_text(
    pdns: PowerDnsServer,
    zone: str,
    servers: str = "",
    ttl: int = 300,
    port: int | None = None,
    users: str = "",
    transports: str = "",
) -> str:
    return pdns_spec(
        zone, port or pdns.api_port, servers=servers, ttl=ttl, users=users, transports=transports
    )


@pytest.fixture
def keyed(powerdns: PowerDnsServer, monkeypatch: pytest.MonkeyPatch) -> PowerDnsServer:
    monkeypatch.setenv(KEY_ENV, powerdns.api_key)
    monkeypatch.setenv("NO_COLOR", "1")
    return powerdns


def test_plan_apply_noop_and_foreign_records_untouched(
    keyed: PowerDnsServer, powerdns_zone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    z = powerdns_zone
    before = keyed.rrsets(z)
    spec = write(tmp_path, spec_text(keyed, z))
    code, out = sipctl(capsys, "plan", "-f", spec, "--detailed-exitcode")
    assert code == 2, out
    assert "cannot refuse a concurrent edit" in out  # said once, in the plan
    assert out.count("cannot refuse a concurrent edit") == 1
    code, out = sipctl(capsys, "apply", "-f", spec, "--auto-approve")
    assert code == 0, out
    assert "in one change set" in out
    code, out = sipctl(capsys, "plan", "-f", spec, "--detailed-exitcode")
    assert code == 0, out
    after = keyed.rrsets(z)
    # every foreign rrset is as it was (SOA aside: PowerDNS bumps its serial)
    for key, value in before.items():
        if key[1] == "NAPTR":
            continue
        if key[1] != "SOA":
            assert after[key] == value, key
    naptr_ttl, naptrs = after[(f"{z}.", "NAPTR")]
    assert E2U in naptrs  # the non-SIP entry of the shared apex rrset survives
    assert f'10 10 "S" "SIP+D2U" "" _sip._udp.{z}.' in naptrs
    assert naptr_ttl == 3600  # shared with a foreign entry: it keeps its TTL
    assert after[(f"_sip._udp.{z}.", "SRV")] == (300, [f"10 0 5060 sip.{z}."])
    assert after[(f"sip.{z}.", "A")] == (300, ["192.0.2.10"])
    assert after[(f"www.{z}.", "A")] == (3600, ["192.0.2.80"])
    assert keyed.api_key not in out


def test_ttl_change_and_server_removal(
    keyed: PowerDnsServer, powerdns_zone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    z = powerdns_zone
    two = (
        f"  - {{host: sip.{z}, ipv4: [192.0.2.10], priority: 10}}\n"
        f"  - {{host: sip2.{z}, ipv4: [192.0.2.11], priority: 20}}\n"
    )
    spec = write(tmp_path, spec_text(keyed, z, servers=two))
    assert sipctl(capsys, "apply", "-f", spec, "--auto-approve")[0] == 0
    assert keyed.rrsets(z)[(f"sip2.{z}.", "A")] == (300, ["192.0.2.11"])
    # one server less, and a new TTL
    spec = write(tmp_path, spec_text(keyed, z, ttl=900))
    # (a third of the owned records change: the safety limit wants --force)
    code, out = sipctl(capsys, "apply", "-f", spec, "--auto-approve", "--force")
    assert code == 0, out
    after = keyed.rrsets(z)
    assert (f"sip2.{z}.", "A") not in after  # listed in the registry, so removed
    assert after[(f"_sip._tcp.{z}.", "SRV")] == (900, [f"10 0 5060 sip.{z}."])
    assert after[(f"sip.{z}.", "A")] == (900, ["192.0.2.10"])
    assert after[(f"_sipctl.{z}.", "TXT")] == (
        900,
        [f'"host=sip.{z}."', '"sipctl-registry=1"'],
    )
    assert sipctl(capsys, "plan", "-f", spec, "--detailed-exitcode")[0] == 0


def test_stale_saved_plan_is_refused_with_exit_3(
    keyed: PowerDnsServer, powerdns_zone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    z = powerdns_zone
    spec = write(tmp_path, spec_text(keyed, z))
    plan = str(tmp_path / "plan.json")
    assert sipctl(capsys, "plan", "-f", spec, "--out", plan)[0] == 0
    assert keyed.api_key not in Path(plan).read_text()
    keyed.set_rrset(z, f"_sip._udp.{z}.", "SRV", 60, [f"1 1 5060 elsewhere.{z}."])
    snapshot = keyed.rrsets(z)
    code, out = sipctl(capsys, "apply", plan, "--auto-approve")
    assert code == 3, out
    assert "stale" in out and "Traceback" not in out

    def records(rrsets: dict[tuple[str, str], object]) -> dict[tuple[str, str], object]:
        # PowerDNS bumps the SOA serial for each write: the lock's, taken and released
        return {k: v for k, v in rrsets.items() if k[1] != "SOA"}

    assert records(keyed.rrsets(z)) == records(snapshot)  # nothing changed, lock released


def test_an_edit_between_read_and_write_is_refused(
    keyed: PowerDnsServer, powerdns_zone: str, tmp_path: Path
) -> None:
    """No conditional write in the PowerDNS API: sipctl re-reads just before writing."""
    from sipctl.errors import StalePlanError
    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.octodns import OctodnsProvider
    from sipctl.reconciler.diff import diff
    from sipctl.reconciler.render.dns import render_dns
    from sipctl.schemas.loader import load_spec_text

    z = powerdns_zone
    loaded = load_spec_text(spec_text(keyed, z), base_dir=tmp_path)
    provider = OctodnsProvider(loaded, RunContext(base_dir=tmp_path))
    desired = render_dns(loaded.spec)
    live = provider.read(desired)
    keyed.set_rrset(z, f"_sip._tcp.{z}.", "SRV", 60, [f"1 1 5060 slipped.{z}."])
    snapshot = keyed.rrsets(z)
    with pytest.raises(StalePlanError, match="changed since it was read"):
        provider.apply(diff(desired, live), live)
    assert provider.applies == 0
    assert keyed.rrsets(z) == snapshot


def test_wrong_key_and_dead_server_are_one_clear_line(
    keyed: PowerDnsServer,
    powerdns_zone: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    z = powerdns_zone
    spec = write(tmp_path, spec_text(keyed, z))
    wrong = "wrong-" + keyed.api_key[:10]
    monkeypatch.setenv(KEY_ENV, wrong)
    code, out = sipctl(capsys, "plan", "-f", spec)
    assert code == 1, out
    assert "refused the credentials" in out and "Traceback" not in out
    assert wrong not in out and keyed.api_key not in out
    assert len(out.strip().splitlines()) <= 2, out
    monkeypatch.setenv(KEY_ENV, keyed.api_key)
    dead = write(tmp_path, spec_text(keyed, z, port=free_port()))
    code, out = sipctl(capsys, "apply", "-f", dead, "--auto-approve")
    assert code == 1, out
    assert "cannot reach the DNS provider's API" in out and "Traceback" not in out
    assert keyed.api_key not in out
    monkeypatch.delenv(KEY_ENV)
    code, out = sipctl(capsys, "plan", "-f", spec)
    assert code == 1 and f"environment variable {KEY_ENV} is not set" in out, out


def test_unknown_zone_is_a_clear_error(
    keyed: PowerDnsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path, spec_text(keyed, "nowhere-sipctl.test"))
    code, out = sipctl(capsys, "plan", "-f", spec)
    assert code == 1, out
    assert "has no zone nowhere-sipctl.test." in out and "Traceback" not in out


@pytest.fixture
def responder() -> Iterator[Responder]:
    sip = Responder(users={"director", "101"}).start()
    yield sip
    sip.stop()


def test_dig_shows_the_chain_and_verify_passes(
    keyed: PowerDnsServer,
    powerdns_zone: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    responder: Responder,
) -> None:
    require(shutil.which("dig") is not None, "dig (apt-get install bind9-dnsutils)")
    z = powerdns_zone
    text = spec_text(
        keyed,
        z,
        servers=f"  - {{host: sip.{z}, ipv4: [127.0.0.1]}}\n",
        users="users: {director: 105, '101': 101}\n",
        transports=(
            f"transports: {{udp: {{port: {responder.udp_port}}}, "
            f"tcp: {{port: {responder.tcp_port}}}}}\n"
        ),
    )
    spec = write(tmp_path, text)
    assert sipctl(capsys, "apply", "-f", spec, "--auto-approve")[0] == 0

    def dig(name: str, rdtype: str) -> str:
        return subprocess.run(
            ["dig", "+short", "-p", str(keyed.dns_port), "@127.0.0.1", name, rdtype],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout

    assert f'"SIP+D2U" "" _sip._udp.{z}.' in dig(z, "NAPTR")
    assert f"10 0 {responder.udp_port} sip.{z}." in dig(f"_sip._udp.{z}", "SRV")
    assert dig(f"sip.{z}", "A").strip() == "127.0.0.1"
    code, out = sipctl(
        capsys, "verify", "-f", spec, "--nameserver", keyed.nameserver, "--json", "--timeout", "2"
    )
    assert code == 0, out
    report = json.loads(out[out.index("{") :])["domains"][0]["verify"]
    assert report["ok"] is True


def test_validate_names_the_package_to_install(
    keyed: PowerDnsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = spec_text(keyed, "example.test").replace(
        "octodns_powerdns.PowerDnsProvider", "octodns_nosuch.NoSuchProvider"
    )
    code, out = sipctl(capsys, "validate", "-f", write(tmp_path, text))
    assert code == 1, out
    assert "sipctl.yaml:9:5: dns.octodns.class octodns_nosuch.NoSuchProvider" in out
    assert "is not installed" in out and "pip install" in out
    text = spec_text(keyed, "example.test").replace("PowerDnsProvider", "NoSuchProvider")
    code, out = sipctl(capsys, "validate", "-f", write(tmp_path, text))
    assert code == 1 and "has no octoDNS provider class 'NoSuchProvider'" in out, out
    code, out = sipctl(capsys, "validate", "-f", write(tmp_path, spec_text(keyed, "x.test")))
    assert code == 0, out


def test_a_plugin_without_naptr_publishes_srv_only(
    keyed: PowerDnsServer,
    powerdns_zone: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIPCTL_PROFILE", str(allow_test_plugins(tmp_path, keyed.api_port)))
    z = powerdns_zone
    text = spec_text(keyed, z).replace(
        "octodns_powerdns.PowerDnsProvider", "octodns_test_plugins.PowerDnsSrvOnly"
    )
    spec = write(tmp_path, text)
    code, out = sipctl(capsys, "validate", "-f", spec)
    assert code == 0 and "does not support NAPTR" in out, out  # a warning, not a failure
    code, out = sipctl(capsys, "apply", "-f", spec, "--auto-approve")
    assert code == 0, out
    assert "fall back to SRV" in out
    after = keyed.rrsets(z)
    assert after[(f"{z}.", "NAPTR")] == (3600, [E2U.replace('"U"', '"u"')])  # untouched
    assert after[(f"_sip._udp.{z}.", "SRV")] == (300, [f"10 0 5060 sip.{z}."])
    assert sipctl(capsys, "plan", "-f", spec, "--detailed-exitcode")[0] == 0


def test_import_through_the_plugin_then_drift(
    keyed: PowerDnsServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hand-made setup is imported through the plugin; apply adopts it (the registry only);
    an edit made later in PowerDNS is drift."""
    import yaml

    z = keyed.new_zone(
        extra=[
            ("", "NAPTR", 3600, ['10 10 "S" "SIP+D2U" "" _sip._udp.{zone}.']),
            ("_sip._udp", "SRV", 3600, ["10 0 5060 pbx.{zone}."]),
            ("pbx", "A", 3600, ["192.0.2.44"]),
        ]
    )
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "pdns.yaml"
    config.write_text(
        "class: octodns_powerdns.PowerDnsProvider\n"
        f"host: 127.0.0.1\nport: {keyed.api_port}\napi_key: env/{KEY_ENV}\n"
    )
    code, out = sipctl(
        capsys, "import", "--domain", z, "--dns", f"octodns:{config}", "--out", "imported.yaml"
    )
    assert code == 0, out
    spec = yaml.safe_load((tmp_path / "imported.yaml").read_text())
    assert spec["dns"]["provider"] == "octodns"
    assert spec["dns"]["octodns"]["api_key"] == f"env/{KEY_ENV}"  # the reference, not the key
    assert spec["servers"][0]["host"] == f"pbx.{z}"
    assert keyed.api_key not in (tmp_path / "imported.yaml").read_text() + out
    code, out = sipctl(capsys, "apply", "-f", "imported.yaml", "--auto-approve")
    assert code == 0, out
    assert "_sipctl" in out and "Recorded the applied state" in out
    code, out = sipctl(capsys, "drift", "-f", "imported.yaml")
    assert code == 0 and "No drift" in out, out
    keyed.set_rrset(z, f"_sip._udp.{z}.", "SRV", 3600, [f"10 0 5070 pbx.{z}."])
    code, out = sipctl(capsys, "drift", "-f", "imported.yaml")
    assert code != 0, out
    assert f"SRV _sip._udp.{z}. was changed on the live side" in out


def test_many_domain_run_on_powerdns(
    keyed: PowerDnsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `apply -f DIR` writes the zones at once: PowerDNS on sqlite answers some of those writes
    # 500 "database is locked", which call() retries with backoff. `plan -f DIR` plans in
    # forked workers; each read builds a fresh plugin instance there.
    zones = [keyed.new_zone() for _ in range(3)]
    specs = tmp_path / "specs"
    specs.mkdir()
    for z in zones:
        (specs / f"{z}.yaml").write_text(spec_text(keyed, z))
    before = {z: keyed.rrsets(z) for z in zones}
    code, out = sipctl(capsys, "apply", "-f", str(specs), "--auto-approve", "--no-verify")
    assert code == 0, out + keyed.log_tail()
    for z in zones:
        live = keyed.rrsets(z)
        assert live[(f"_sip._udp.{z}.", "SRV")][1] == [f"10 0 5060 sip.{z}."], out
        assert live[(f"sip.{z}.", "A")][1] == ["192.0.2.10"]
        for key, value in before[z].items():  # foreign records untouched (the SOA serial moves)
            if key[1] not in ("SOA", "NAPTR"):
                assert live[key] == value
    code, out = sipctl(capsys, "plan", "-f", str(specs), "--detailed-exitcode")
    assert code == 0, out
    assert keyed.api_key not in out
