"""One jail for every customer of a host: a real fail2ban-server (in a namespace, as in
test_fail2ban_jail) bans a prober of either customer's domain from the lines a host's
dialplan writes (``Wrong call IP=<addr> domain=<domain>``, measured in
test_hosting_asterisk)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fixtures import host_profile
from test_fail2ban_jail import MAXRETRY, Fail2banHost, _plan_and_apply, _wait, f2b

from sipctl.schemas.loader import load_spec

pytestmark = pytest.mark.netns

__all__ = ["f2b"]  # the namespace and fail2ban-server of test_fail2ban_jail, one per module


def _host_spec(f2b: Fail2banHost) -> Path:
    host_profile.add("fail2ban", f2b.client_command.split())
    path = f2b.work / "pbx1.yaml"
    path.write_text(
        "version: 1\n"
        "domain: pbx1.hoster.example\n"
        "hosting: {name: pbx1}\n"
        "transports: {udp: {port: 5060}, tcp: {port: 5060}}\n"
        f"asterisk: {{target: 'dir:{f2b.work}/pbx'}}\n"
        "fail2ban:\n"
        "  target: local\n"
        f"  config_dir: {f2b.conf}\n"
        f"  logpath: {f2b.messages}\n"
        f"  maxretry: {MAXRETRY}\n"
        "  findtime: 600\n"
        "  bantime: 600\n"
    )
    return path


def _probes(f2b: Fail2banHost, address: str, domains: list[str]) -> None:
    stamp = time.strftime("%b %d %H:%M:%S")
    with f2b.messages.open("a") as log:
        for n, domain in enumerate(domains):
            log.write(
                f"[{stamp}] WARNING[4242][C-0000{n:04x}] Ext. sipctl#wrong-name: "
                f"Wrong call IP={address} domain={domain}\n"
            )


def test_the_jail_bans_a_prober_of_either_domain(f2b: Fail2banHost) -> None:
    _plan_and_apply(load_spec(_host_spec(f2b)), f2b.work)
    assert "domain=" in (f2b.conf / "filter.d" / "sipctl-asterisk.conf").read_text()
    counted = f2b.total_failed()
    _probes(f2b, "198.51.100.1", ["a.example"] * MAXRETRY)
    _probes(f2b, "198.51.100.2", ["b.example"] * MAXRETRY)
    # One jail counts a prober's wrong calls at every domain together.
    _probes(f2b, "198.51.100.3", ["a.example", "b.example", "c.example"] * MAXRETRY)
    _probes(f2b, "198.51.100.4", ["a.example"] * (MAXRETRY - 1))
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        _wait(address, f2b)
    f2b.wait_counted(counted + 6 * MAXRETRY - 1)  # every line above read, the last ones too
    assert "198.51.100.4" not in f2b.banned()  # one short of maxretry
