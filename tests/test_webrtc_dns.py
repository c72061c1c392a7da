"""dns.naptr_websocket against a real BIND: a SIPS+D2W NAPTR and its _sips._ws SRV appear,
and go again when it is turned off; every other record of the zone stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.bind import BindServer, dns_spec
from test_rfc2136 import converge

pytestmark = pytest.mark.bind

WSS = "{udp: {port: 5060}, wss: {port: 8089}}"


def test_naptr_websocket_publishes_and_withdraws(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    on = "  naptr_websocket: true\n"
    converge(bind, dns_spec(bind, z, transports=WSS, dns_extra=on), tmp_path)
    assert bind.query(f"_sips._ws.{z}", "SRV") == [f"10 0 8089 asterisk.{z}."]
    naptrs = bind.query(z, "NAPTR")
    assert f'40 10 "s" "SIPS+D2W" "" _sips._ws.{z}.' in naptrs
    assert any("E2U+EMAIL" in n for n in naptrs)  # the zone's own NAPTR
    converge(bind, dns_spec(bind, z, transports=WSS), tmp_path)
    assert bind.query(f"_sips._ws.{z}", "SRV") == []
    naptrs = bind.query(z, "NAPTR")
    assert not any("SIPS+D2W" in n for n in naptrs)
    assert any("E2U+EMAIL" in n for n in naptrs)
