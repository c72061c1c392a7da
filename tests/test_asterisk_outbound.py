"""Calls out to another company, against a real Asterisk 22 and BIND.

The other company is ``other.example`` (not under ``.test``: Asterisk's unbound answers
every ``.test`` name NXDOMAIN itself): its NAPTR and SRV live in the test BIND and point at
a SIP user agent on 127.0.0.2. Asterisk asks that BIND through ``res_resolver_unbound``
(``resolver_unbound.conf``: ``nameserver = 127.0.0.1@PORT``), as a PBX asks its resolver.
Office phone 105 (director) calls ``sip:bob@other.example`` with its password, as a phone
does; a guest who dials the same address reaches only the guest context.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from asterisk_helpers import apply_spec, pending_changes, plan_layer, spec_data, write_spec
from fixtures.asterisk import MODULES, AsteriskInstance, running_asterisk
from fixtures.bind import BindServer, zone_text
from fixtures.sip_client import SipCaller

pytestmark = pytest.mark.asterisk

OTHER = "other.example"
OTHER_HOST = "127.0.0.2"


class OtherCompany:
    """The other side's SIP UA on 127.0.0.2: records INVITEs and answers them busy."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((OTHER_HOST, 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.invites: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            text = data.decode(errors="replace")
            if not text.startswith("INVITE"):
                continue
            self.invites.append(text)
            head = text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
            keep = [
                h
                for h in head
                if h.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")
            ]
            keep = [h + ";tag=other" if h.lower().startswith("to:") else h for h in keep]
            reply = (
                "SIP/2.0 486 Busy Here\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
            )
            self.sock.sendto(reply.encode(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.sock.close()


@pytest.fixture(scope="module")
def other() -> Iterator[OtherCompany]:
    company = OtherCompany()
    yield company
    company.close()


@pytest.fixture(scope="module")
def bind_other(other: OtherCompany) -> Iterator[BindServer]:
    server = BindServer()
    records = (
        f'@ IN NAPTR 10 10 "S" "SIP+D2U" "" _sip._udp.{OTHER}.\n'
        f"_sip._udp IN SRV 0 0 {other.port} sip.{OTHER}.\n"
        f"sip IN A {OTHER_HOST}\n"
    )
    server.start({OTHER: zone_text(OTHER, extra=records)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pbx(bind_other: BindServer) -> Iterator[AsteriskInstance]:
    modules = (*MODULES, "res_resolver_unbound.so")
    extra = {
        "modules.conf": "[modules]\nautoload=no\n" + "".join(f"load => {m}\n" for m in modules),
        "resolver_unbound.conf": f"[general]\nnameserver = 127.0.0.1@{bind_other.port}\n",
    }
    with running_asterisk(extra_files=extra) as instance:
        yield instance


@pytest.fixture(scope="module")
def outbound_spec(pbx: AsteriskInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = spec_data(pbx)
    data["domain"] = "mysite.example"
    data["outbound"] = {"deny": ["denied.example"]}
    spec = write_spec(tmp_path_factory.mktemp("outbound"), data)
    apply_spec(spec)
    assert pending_changes(spec) == []
    return spec


def _wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_an_office_phone_calls_another_company_by_name(
    pbx: AsteriskInstance, outbound_spec: Path, other: OtherCompany
) -> None:
    before, offset = len(other.invites), pbx.log_size()
    with SipCaller(pbx.sip_port) as phone:
        result = phone.invite("bob", domain=OTHER, auth=("105", "secret105"), timeout=8.0)
    _wait_for(lambda: len(other.invites) > before)
    assert len(other.invites) == before + 1, result.statuses
    invite = other.invites[-1]
    # found by NAPTR -> SRV -> A in the test BIND, and sent as director@mysite.example
    assert invite.startswith(f"INVITE sip:bob@{OTHER} SIP/2.0"), invite
    assert "From: <sip:director@mysite.example>" in invite or (
        '"director" <sip:director@mysite.example>' in invite
    ), invite
    assert 486 in result.statuses, result.statuses  # the other side's answer came back
    pbx.wait_log(r"Outbound call FROM=director TO=other\.example", offset)


def test_a_guest_cannot_call_out(
    pbx: AsteriskInstance, outbound_spec: Path, other: OtherCompany
) -> None:
    before, offset = len(other.invites), pbx.log_size()
    with SipCaller(pbx.sip_port) as guest:
        result = guest.invite("bob", domain=OTHER, timeout=6.0, hold=0.1)
    assert 200 in result.statuses, result.statuses  # the reject sound answered
    pbx.wait_log(r"Wrong call IP=127\.0\.0\.1", offset)
    time.sleep(0.3)
    assert len(other.invites) == before
    assert "Outbound call" not in pbx.log_since(offset)


def test_a_denied_domain_and_dialled_text_are_refused(
    pbx: AsteriskInstance, outbound_spec: Path, other: OtherCompany
) -> None:
    before, offset = len(other.invites), pbx.log_size()
    with SipCaller(pbx.sip_port) as phone:
        denied = phone.invite("bob", domain="denied.example", auth=("105", "secret105"))
        odd = phone.invite("bob&PJSIP%2F101", domain=OTHER, auth=("105", "secret105"))
    assert 403 in denied.statuses and 403 in odd.statuses, (denied.statuses, odd.statuses)
    text = pbx.wait_log(r"(?s)refused.*refused", offset)
    assert "Outbound call refused FROM=105 TO=denied.example" in text
    assert len(other.invites) == before


def test_the_phones_own_domain_is_not_called_out(
    pbx: AsteriskInstance, outbound_spec: Path, other: OtherCompany
) -> None:
    before = len(other.invites)
    with SipCaller(pbx.sip_port) as phone:
        own = phone.invite("nobody", domain="mysite.example", auth=("105", "secret105"))
        address = phone.invite("nobody", domain="127.0.0.1", auth=("105", "secret105"))
    assert 404 in own.statuses and 404 in address.statuses, (own.statuses, address.statuses)
    assert len(other.invites) == before


def test_plan_says_when_the_resolver_module_is_missing(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    """The tests' stock PBX loads no res_resolver_unbound: calls out could not resolve."""
    data = spec_data(asterisk)
    data["outbound"] = {}
    _, ctx, _, live = plan_layer(write_spec(tmp_path, data))
    ctx.close()
    assert any("has not loaded res_resolver_unbound.so" in p for p in live.problems), live.problems
