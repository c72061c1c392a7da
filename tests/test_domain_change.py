"""A single company's spec whose domain changes: the plan says that the old domain's records
stay published, and the README's way of changing it leaves no record behind and the new
domain whole (real zone file and ``dir:`` PBX; the same rule holds for every provider)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipctl.cli import run

SPEC = """\
version: 1
domain: DOMAIN
transports: {udp: {port: 5060}}
servers: [{host: pbx.mysite.ru, ipv4: [192.0.2.5]}]
users: {director: 105}
dns: {provider: zonefile, file: mysite.ru.zone, zone: mysite.ru, create_file: true ENSURE}
"""
PBX = "asterisk: {target: 'dir:pbx'}\n"
NOTE = "the last apply on this PBX was of domain mysite.ru, and the spec now names voip.mysite.ru"


def _spec(domain: str, *, pbx: bool = True, absent: bool = False) -> str:
    ensure = ", ensure: absent" if absent else ""
    return SPEC.replace("DOMAIN", domain).replace(" ENSURE", ensure) + (PBX if pbx else "")


def test_a_changed_domain_is_told_and_the_documented_way_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(_spec("mysite.ru"))
    assert run(["apply", "--auto-approve"]) == 0
    assert run(["plan"]) == 0
    assert NOTE not in capsys.readouterr().out + capsys.readouterr().err

    spec.write_text(_spec("voip.mysite.ru"))
    assert run(["plan"]) == 0
    said = capsys.readouterr()
    assert NOTE in said.out + said.err
    assert "dns.ensure: absent" in said.out + said.err

    # the README's way: the old domain's records go first, then the new domain is applied
    (tmp_path / "old.yaml").write_text(_spec("mysite.ru", pbx=False, absent=True))
    assert run(["apply", "-f", "old.yaml", "--auto-approve", "--force"]) == 0
    assert run(["apply", "--auto-approve"]) == 0
    capsys.readouterr()
    assert run(["plan", "--detailed-exitcode"]) == 0
    said = capsys.readouterr()
    assert "No changes" in said.out and NOTE not in said.out + said.err
    zone = (tmp_path / "mysite.ru.zone").read_text()
    assert "_sip._udp.voip" in zone and "pbx" in zone and "192.0.2.5" in zone
    assert "_sipctl\t" not in zone and "_sip._udp\t" not in zone, zone


def test_the_old_domain_removed_after_the_new_one_keeps_their_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other order: the new domain is applied first, then the old one removed. Both
    point at pbx.mysite.ru; the old domain's removal leaves its A record to the new one."""
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(_spec("mysite.ru"))
    assert run(["apply", "--auto-approve"]) == 0
    spec.write_text(_spec("voip.mysite.ru"))
    assert run(["apply", "--auto-approve"]) == 0
    (tmp_path / "old.yaml").write_text(_spec("mysite.ru", pbx=False, absent=True))
    assert run(["apply", "-f", "old.yaml", "--auto-approve", "--force"]) == 0
    said = capsys.readouterr()
    assert "pbx.mysite.ru. keeps its addresses: voip.mysite.ru. uses it too" in said.out
    assert run(["plan", "--detailed-exitcode"]) == 0
    zone = (tmp_path / "mysite.ru.zone").read_text()
    assert "192.0.2.5" in zone and "_sip._udp\t" not in zone, zone
