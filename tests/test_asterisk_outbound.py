"""Calls out to another company, against a real Asterisk 22 and BIND.

The other company is ``other.example`` (not under ``.test``: Asterisk's unbound answers
every ``.test`` name NXDOMAIN itself): its NAPTR and SRV live in the test BIND and point at
a SIP user agent on 127.0.0.2. Asterisk asks that BIND through ``res_resolver_unbound``
(``resolver_unbound.conf``: ``nameserver = 127.0.0.1@PORT``), as a PBX asks its resolver.
Office phone 105 (director) calls ``sip:bob@other.example`` with its password, as a phone
does: the call leaves over TLS (the other side's first NAPTR) with an SRTP offer; a guest who
dials the same address reaches only the guest context.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from asterisk_helpers import apply_spec, pending_changes, plan_layer, spec_data, write_spec
from fixtures.asterisk import (
    MODULES,
    TEST_CERT_FILE,
    TEST_KEY_FILE,
    AsteriskInstance,
    running_asterisk,
)
from fixtures.bind import BindServer, zone_text
from fixtures.certs import server_certificate
from fixtures.common import free_port
from fixtures.fail2ban_reader import fail2ban_regex
from fixtures.sip_client import SipCaller, serve_datagrams, sip_response
from fixtures.waiting import wait_until

from sipctl.reconciler.render.asterisk_outbound import OUTBOUND_ENDPOINT
from sipctl.reconciler.render.fail2ban import FILTER_TEXT

pytestmark = pytest.mark.asterisk

OTHER = "other.example"
OTHER_HOST = "127.0.0.2"


def _busy(invite: str) -> bytes:
    return sip_response(invite, 486, tag="other").encode()


class OtherCompany:
    """The other side's SIP UA on 127.0.0.2, over UDP and TLS (the test certificate):
    records each INVITE with its transport and answers it busy."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((OTHER_HOST, 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((OTHER_HOST, 0))
        self.listener.listen(5)
        self.listener.settimeout(0.05)
        self.tls_port = int(self.listener.getsockname()[1])
        cert, key = server_certificate()
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(cert, key)
        self.invites: list[str] = []
        self.transports: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=serve_datagrams, args=(self.sock, self._stop, self._on_udp), daemon=True
            ),
            threading.Thread(target=self._serve_tls, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _on_udp(self, data: bytes, peer: tuple[str, int]) -> None:
        text = data.decode(errors="replace")
        if text.startswith("INVITE"):
            self.invites.append(text)
            self.transports.append("udp")
            self.sock.sendto(_busy(text), peer)

    def _serve_tls(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), self._tls.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(0.2)
            buffer = b""
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    chunk = tls.recv(65535)
                    if not chunk:
                        return
                    buffer += chunk
                while b"\r\n\r\n" in buffer:
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = re.search(rb"(?im)^content-length\s*:\s*(\d+)", head)
                    size = int(length[1]) if length else 0
                    if len(rest) < size:
                        break
                    text = (head + b"\r\n\r\n" + rest[:size]).decode(errors="replace")
                    buffer = rest[size:]
                    if text.startswith("INVITE"):
                        self.invites.append(text)
                        self.transports.append("tls")
                        tls.sendall(_busy(text))

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=1)
        self.sock.close()
        self.listener.close()


@pytest.fixture(scope="module")
def other() -> Iterator[OtherCompany]:
    company = OtherCompany()
    yield company
    company.close()


@pytest.fixture(scope="module")
def bind_other(other: OtherCompany) -> Iterator[BindServer]:
    server = BindServer()
    # TLS first (NAPTR order 10), UDP after it (20): RFC 3263 clients take TLS
    records = (
        f'@ IN NAPTR 10 10 "S" "SIPS+D2T" "" _sips._tcp.{OTHER}.\n'
        f'@ IN NAPTR 20 10 "S" "SIP+D2U" "" _sip._udp.{OTHER}.\n'
        f"_sips._tcp IN SRV 0 0 {other.tls_port} sip.{OTHER}.\n"
        f"_sip._udp IN SRV 0 0 {other.port} sip.{OTHER}.\n"
        f"sip IN A {OTHER_HOST}\n"
    )
    server.start({OTHER: zone_text(OTHER, extra=records)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def pbx(bind_other: BindServer, tls_port: int) -> Iterator[AsteriskInstance]:
    modules = (*MODULES, "res_resolver_unbound.so")
    extra = {
        "modules.conf": "[modules]\nautoload=no\n" + "".join(f"load => {m}\n" for m in modules),
        "resolver_unbound.conf": f"[general]\nnameserver = 127.0.0.1@{bind_other.port}\n",
    }
    with running_asterisk(extra_files=extra) as instance:
        # The admin's TLS transport, there when Asterisk starts: PJSIP's lookups use only the
        # transports it had when it loaded (measured: one added by a reload is not used).
        pjsip = instance.config_dir / "pjsip.conf"
        pjsip.write_text(
            pjsip.read_text()
            + f"\n[transport-tls]\ntype=transport\nprotocol=tls\nbind=127.0.0.1:{tls_port}\n"
            f"cert_file={TEST_CERT_FILE}\npriv_key_file={TEST_KEY_FILE}\nmethod=tlsv1_2\n"
        )
        _restart(instance)
        yield instance


def _restart(pbx: AsteriskInstance) -> None:
    """``core restart now``, then wait for the boot. The process execs itself again and,
    being a daemon, forks anew: the fixture must stop the new pid (the pid file's), or the
    restarted Asterisk outlives the tests."""
    pbx.rx("core restart now")
    pid_file = pbx.root / "run" / "asterisk" / "asterisk.pid"

    def back() -> bool:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            booted = "fully booted" in pbx.rx("core waitfullybooted", timeout=5)
            return booted and "transport-tls" in pbx.rx("pjsip show transports")
        return False

    wait_until(back, "Asterisk back after core restart now", interval=0.2)
    pbx.pid = int(pid_file.read_text().strip())


@pytest.fixture(scope="module")
def outbound_spec(
    pbx: AsteriskInstance, tls_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    data = spec_data(pbx, tls={"cert_file": TEST_CERT_FILE, "key_file": TEST_KEY_FILE})
    data["transports"]["tls"] = {"port": tls_port}
    data["domain"] = "mysite.example"
    data["outbound"] = {"deny": ["denied.example"]}
    spec = write_spec(tmp_path_factory.mktemp("outbound"), data)
    apply_spec(spec)
    assert pending_changes(spec) == []
    return spec


def _wait_for(condition: Callable[[], bool]) -> None:
    wait_until(condition, "the other company's INVITE")


def test_an_office_phone_calls_another_company_by_name(
    pbx: AsteriskInstance, outbound_spec: Path, other: OtherCompany
) -> None:
    before, offset = len(other.invites), pbx.log_size()
    with SipCaller(pbx.sip_port) as phone:
        result = phone.invite("bob", domain=OTHER, auth=("105", "secret105"), timeout=8.0)
    _wait_for(lambda: len(other.invites) > before)
    assert len(other.invites) == before + 1, result.statuses
    invite = other.invites[-1]
    # found by NAPTR -> SRV -> A in the test BIND, over TLS (the other side's first NAPTR),
    # and sent as director@mysite.example
    assert invite.startswith(f"INVITE sip:bob@{OTHER} SIP/2.0"), invite
    assert other.transports[-1] == "tls", other.transports
    # the phones' calls out offer SRTP where they can (SDES, optimistic: RTP/AVP + crypto)
    assert re.search(r"^a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:", invite, re.M), invite
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
    # the guest's call over (its dialplan can dial nothing more), not a time that hopes so
    wait_until(lambda: "0 active channels" in pbx.rx("core show channels count"),
               "the guest's call ended", last=lambda: pbx.rx("core show channels"))  # fmt: skip
    assert len(other.invites) == before
    assert "Outbound call" not in pbx.log_since(offset)


def test_a_stranger_is_never_the_outbound_endpoint(
    pbx: AsteriskInstance, outbound_spec: Path, tmp_path: Path
) -> None:
    """A From user named like the outbound endpoint finds the guest endpoint, as any
    stranger does: before identify_by=ip it was sipctl-outbound, and Asterisk's "not found"
    NOTICE for its context quoted the dialled name with its line breaks, a log line of the
    caller's that made fail2ban ban 6.6.6.9 (and not the caller)."""
    offset = pbx.log_size()
    forged = quote("\nWARNING[1][C-00000001] Ext. y: Wrong call IP=6.6.6.9\n", safe="")
    with SipCaller(pbx.sip_port) as stranger:
        result = stranger.invite(forged, from_user=OUTBOUND_ENDPOINT, timeout=6.0, hold=0.1)
    assert 200 in result.statuses, result.statuses  # the guests' reject sound answered
    text = pbx.wait_log(r"Wrong call IP=127\.0\.0\.1", offset)
    assert "6.6.6.9" not in text and "rejected because" not in text, text
    log, jail_filter = tmp_path / "messages", tmp_path / "filter.conf"
    log.write_text(text)
    jail_filter.write_text(FILTER_TEXT)
    assert fail2ban_regex(log, jail_filter) == ["127.0.0.1"], text


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
