"""The customers' DNS records of a hoster's directory on a real BIND: each customer's zone
gets NAPTR and SRV records pointing at its host's server names, applied with the host in
one run, and a second plan of the directory is empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.bind import SECRET_ENV, BindServer

from sipctl.cli import run


def _customer(bind: BindServer, zone: str, context: str) -> str:
    return (
        f"version: 1\ndomain: {zone}\nhost: pbx1\nlocal_context: {context}\n"
        "users: {director: 105}\n"
        "dns:\n  provider: rfc2136\n"
        f"  server: '{bind.server}'\n"
        f"  tsig: {{name: {bind.key_name}, algorithm: {bind.algorithm}, "
        f"secret_env: {SECRET_ENV}}}\n"
        "  timeout: 3\n"
    )


def test_customers_records_point_at_their_hosts_servers(
    bind: BindServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(SECRET_ENV, bind.secret)
    monkeypatch.chdir(tmp_path)
    zones = [bind.new_zone(), bind.new_zone()]
    hoster = tmp_path / "hoster"
    hoster.mkdir()
    (hoster / "pbx1.yaml").write_text(
        "version: 1\ndomain: pbx1.hoster.example\nhosting: {name: pbx1}\n"
        "transports: {udp: {port: 5060}, tcp: {port: 5060}}\n"
        "servers: [{host: sip.hoster.example, priority: 10}]\n"
        f"asterisk: {{target: 'dir:{tmp_path}/pbx1'}}\n"
    )
    for n, zone in enumerate(zones):
        (hoster / f"customer{n}.yaml").write_text(_customer(bind, zone, f"c{n}-phones"))
    try:
        assert run(["apply", "-f", str(hoster), "--auto-approve"]) == 0, capsys.readouterr()
        for zone in zones:
            for service in ("_sip._udp", "_sip._tcp"):
                records = bind.query(f"{service}.{zone}", "SRV")
                assert len(records) == 1 and "sip.hoster.example" in records[0], records
            naptr = bind.query(zone, "NAPTR")
            assert any("_sip._udp." + zone in r for r in naptr), naptr
        dialplan = (tmp_path / "pbx1" / "etc" / "asterisk" / "extensions_sipctl.conf").read_text()
        assert all(f"[sipctl-guest-{zone}]" in dialplan for zone in zones)
        capsys.readouterr()
        assert run(["plan", "-f", str(hoster), "--detailed-exitcode"]) == 0, capsys.readouterr()
    finally:
        for zone in zones:
            bind.delete_zone(zone)


@pytest.mark.asterisk
def test_verify_of_a_host_file_verifies_each_customer(
    bind: BindServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each customer's domain resolves (NAPTR, SRV, A on the real BIND) to the real
    Asterisk, and each of its names answers there."""
    from fixtures.asterisk import running_asterisk

    monkeypatch.setenv(SECRET_ENV, bind.secret)
    monkeypatch.chdir(tmp_path)
    zones = [bind.new_zone(), bind.new_zone()]
    hoster = tmp_path / "hoster"
    hoster.mkdir()
    try:
        with running_asterisk() as pbx:
            section = pbx.spec_section()
            (hoster / "pbx1.yaml").write_text(
                "version: 1\ndomain: pbx1.hoster.example\nhosting: {name: pbx1}\n"
                f"transports: {{udp: {{port: {pbx.sip_port}}}, tcp: {{port: {pbx.sip_port}}}}}\n"
                f"servers: [{{host: sip.{zones[0]}, ipv4: [127.0.0.1], priority: 10}}]\n"
                f"asterisk: {{target: local, config_dir: '{section['config_dir']}'}}\n"
            )
            for n, zone in enumerate(zones):
                (hoster / f"customer{n}.yaml").write_text(_customer(bind, zone, f"c{n}-phones"))
            assert run(["apply", "-f", str(hoster), "--auto-approve"]) == 0, capsys.readouterr()
            capsys.readouterr()
            code = run(["verify", "-f", str(hoster / "pbx1.yaml"), "--nameserver", bind.server])
            shown = capsys.readouterr().out
            assert code == 0, shown
            for zone in zones:
                assert f"=== {zone} ===" in shown, shown
            assert shown.count("verify: OK") == 2, shown
    finally:
        for zone in zones:
            bind.delete_zone(zone)
