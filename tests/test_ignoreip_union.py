"""fail2ban.ignoreip never lets the jail ignore everyone, one entry or several together.

``0.0.0.0/0`` was refused, but ``[0.0.0.0/1, 128.0.0.0/1]`` (every IPv4 address in two
halves) passed with two warnings: a merge request could switch the jail off while it still
looked configured. The rule (``spec_rules.ignoreip_leaves_someone``) is proven here against
fail2ban's own address code (``fail2ban.server.ipdns.IPAddr``, the installed fail2ban's, run
by the system's Python): an accepted list leaves an address fail2ban would ban, a refused one
leaves none of a sample.
"""

from __future__ import annotations

import ipaddress
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import require
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.schemas.spec import Spec

_FAIL2BAN = Path("/usr/lib/python3/dist-packages/fail2ban/server/ipdns.py")

_IGNORED = """
import json, sys
sys.path.insert(0, "/usr/lib/python3/dist-packages")
from fail2ban.server.ipdns import IPAddr
nets, addresses = json.load(sys.stdin)
nets = [IPAddr(n) for n in nets]
print(json.dumps([any(IPAddr(a).isInNet(n) for n in nets) for a in addresses]))
"""


def _ignored_by_fail2ban(networks: list[str], addresses: list[str]) -> list[bool]:
    # fails, never skips, without fail2ban: scripts/test and .ci/run install it
    require(_FAIL2BAN.is_file(), "fail2ban (Debian package fail2ban)")
    done = subprocess.run(
        ["/usr/bin/python3", "-c", _IGNORED],
        input=json.dumps([networks, addresses]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: list[bool] = json.loads(done.stdout)
    return result


# Halves, quarters and eighths of each address space: lists of them often cover it whole.
def _part(network: type[Any], bits: int) -> st.SearchStrategy[str]:
    return st.integers(1, 3).flatmap(
        lambda prefix: st.integers(0, 2**prefix - 1).map(
            lambda n: str(network((n << (bits - prefix), prefix)))
        )
    )


_v4 = _part(ipaddress.IPv4Network, 32)
_v6 = _part(ipaddress.IPv6Network, 128)


def _networks(draw: st.DrawFn) -> list[str]:
    return draw(st.lists(st.one_of(_v4, _v6), min_size=1, max_size=8))


def _spec(ignoreip: list[str]) -> dict[str, Any]:
    return {
        "version": 1,
        "domain": "mysite.example",
        "servers": [{"host": "pbx.mysite.example", "ipv4": ["192.0.2.7"]}],
        "asterisk": {"target": "dir:pbx"},
        "fail2ban": {"ignoreip": ignoreip},
    }


def _uncovered(networks: list[str], version: int) -> str | None:
    """An address of ``version`` that no network of the list holds (None: there is none)."""
    space = ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
    remaining = [space]
    for text in networks:
        network = ipaddress.ip_network(text, strict=False)
        if network.version != version:
            continue
        kept: list[Any] = []
        for block in remaining:
            if network.supernet_of(block):
                continue
            if block.supernet_of(network):
                kept += block.address_exclude(network)
            else:
                kept.append(block)
        remaining = kept
    return str(remaining[0].network_address + 1) if remaining else None


@pytest.mark.fail2ban
@settings(max_examples=examples(60), deadline=None)
@given(st.composite(_networks)())
def test_an_accepted_ignoreip_leaves_addresses_fail2ban_bans(networks: list[str]) -> None:
    try:
        Spec.model_validate(_spec(networks))
    except ValueError as refused:
        assert "cover every IPv" in str(refused) or "covers every address" in str(refused)
        version = 4 if "IPv4" in str(refused) else 6
        rng = random.Random(len(networks))
        bits = 32 if version == 4 else 128
        sample = [str(ipaddress.ip_address(rng.getrandbits(bits))) for _ in range(50)]
        assert all(_ignored_by_fail2ban(networks, sample)), "refused, yet fail2ban bans some"
        return
    witnesses = [w for w in (_uncovered(networks, 4), _uncovered(networks, 6)) if w]
    assert len(witnesses) == 2, networks  # each space keeps an address to ban
    assert _ignored_by_fail2ban(networks, witnesses) == [False, False]


def test_two_halves_of_the_ipv4_space_are_refused_as_the_whole_is() -> None:
    with pytest.raises(ValueError, match=r"128\.0\.0\.0/1 together cover every IPv4"):
        Spec.model_validate(_spec(["0.0.0.0/1", "192.0.2.0/24", "128.0.0.0/1"]))
