"""Encrypted media for guests over TLS, against a real Asterisk 22: an SRTP offer (RTP/SAVP
with an SDES crypto line) is answered SRTP and media flows both ways through libsrtp; a plain
caller over UDP still gets plain RTP; the browsers' endpoint keeps DTLS-SRTP."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from asterisk_helpers import apply_spec, pending_changes, plan_layer, spec_data, write_spec
from fixtures.asterisk import TEST_CERT_FILE, TEST_KEY_FILE, AsteriskInstance
from fixtures.common import free_port
from fixtures.rtp_phone import AnsweringPhone, CallerMedia
from fixtures.sip_client import SipCaller
from fixtures.waiting import wait_until
from pylibsrtp import Error as SrtpError
from pylibsrtp import Policy, Session

from sipctl.reconciler.verify.report import (
    ENCRYPTED_WHEN_OFFERED,
    PLAIN_MEDIA,
    VerifyReport,
    media_encryption,
)
from sipctl.reconciler.verify.rfc3263 import Resolution
from sipctl.schemas.loader import load_spec

pytestmark = pytest.mark.asterisk

SUITE = "AES_CM_128_HMAC_SHA1_80"


def srtp_offer(rtp_port: int, key: bytes) -> str:
    inline = base64.b64encode(key).decode()
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=crypto:1 {SUITE} inline:{inline}\r\na=sendrecv\r\n"
    )


def answer_key(sdp: str) -> bytes:
    match = re.search(rf"^a=crypto:\d+ {SUITE} inline:([A-Za-z0-9+/=]+)", sdp, re.M)
    assert match is not None, sdp
    return base64.b64decode(match[1])


class SrtpCaller(CallerMedia):
    """The caller's media as SRTP (its key offered by ``srtp_offer``); what Asterisk sends
    back is kept encrypted, decrypted after the call."""

    def __init__(self) -> None:
        self.key = os.urandom(30)  # 16 bytes key, 14 bytes salt
        outbound = Session(Policy(key=self.key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        super().__init__(protect=outbound.protect)


@pytest.fixture(scope="module")
def tls_spec(asterisk: AsteriskInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sipctl's own transports (UDP, TCP, TLS on ports of their own) with the test
    certificate, applied once for the module."""
    data = spec_data(
        asterisk,
        manage_transports=True,
        tls={"cert_file": TEST_CERT_FILE, "key_file": TEST_KEY_FILE},
    )
    sip, tls = free_port(), free_port()
    data["transports"] = {"udp": {"port": sip}, "tcp": {"port": sip}, "tls": {"port": tls}}
    spec = write_spec(tmp_path_factory.mktemp("srtp"), data)
    apply_spec(spec)
    assert pending_changes(spec) == []
    return spec


@pytest.fixture
def phone(asterisk: AsteriskInstance) -> Iterator[AnsweringPhone]:
    answering = AnsweringPhone(asterisk.phone_port)
    yield answering
    answering.close()


def _ports(spec: Path) -> tuple[int, int]:
    text = spec.read_text()
    udp = re.search(r"udp:\n\s+port: (\d+)", text)
    tls = re.search(r"tls:\n\s+port: (\d+)", text)
    assert udp is not None and tls is not None, text
    return int(udp[1]), int(tls[1])


def test_the_guest_endpoint_offers_sdes_optimistically(
    asterisk: AsteriskInstance, tls_spec: Path
) -> None:
    shown = asterisk.rx("pjsip show endpoint sipctl-guest")
    assert re.search(r"media_encryption\s*:\s*sdes", shown), shown
    assert re.search(r"media_encryption_optimistic\s*:\s*true", shown), shown
    assert "sipctl-tls" in asterisk.rx("pjsip show transports")


def test_an_srtp_offer_over_tls_is_answered_srtp_and_media_flows(
    asterisk: AsteriskInstance, tls_spec: Path, phone: AnsweringPhone
) -> None:
    _, tls_port = _ports(tls_spec)
    media = SrtpCaller()
    try:
        with SipCaller(tls_port, "tls") as caller:
            result = caller.invite(
                "director",
                timeout=8.0,
                hold=1.5,
                sdp=srtp_offer(media.port, media.key),
                on_answer=media.answered,
            )
    finally:
        media.close()
    assert 200 in result.statuses, result.statuses
    answer = result.answer_sdp
    assert re.search(r"^m=audio \d+ RTP/SAVP ", answer, re.M), answer
    key = answer_key(answer)
    # Asterisk's packets are SRTP under the key it announced: libsrtp authenticates and
    # decrypts them (a plain packet, or one under another key, fails its HMAC)
    inbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    plain: list[bytes] = []
    for packet in media.received:
        try:
            plain.append(inbound.unprotect(packet))
        except SrtpError:
            continue
    assert len(plain) >= 20, (len(media.received), len(plain))
    assert all(len(p) == 12 + 160 for p in plain)  # PCMU frames once decrypted
    assert all(len(p) == 12 + 160 + 10 for p in media.received[:5])  # the 80-bit tag
    # ... and ours reached the office phone as plain RTP: Asterisk decrypted them
    assert media.sent >= 20 and phone.received_types[0] >= 20, (media.sent, phone.received_types)
    assert "RTP/SAVP" not in phone.offer()  # the phone's leg is its own business


def test_a_plain_caller_over_udp_still_gets_through(
    asterisk: AsteriskInstance, tls_spec: Path, phone: AnsweringPhone
) -> None:
    udp_port, _ = _ports(tls_spec)
    with SipCaller(udp_port, "udp") as caller:
        result = caller.invite("director", timeout=8.0, hold=0.5)
    assert 200 in result.statuses and 488 not in result.statuses, result.statuses
    answer = result.answer_sdp
    assert re.search(r"^m=audio \d+ RTP/AVP ", answer, re.M) and "a=crypto" not in answer
    wait_until(lambda: phone.invites, "the phone's INVITE")


def test_plan_says_when_res_srtp_is_not_loaded(asterisk: AsteriskInstance, tls_spec: Path) -> None:
    asterisk.rx("module unload res_srtp.so")
    try:
        _, ctx, _, live = plan_layer(tls_spec)
        ctx.close()
        assert any("has not loaded res_srtp.so" in p for p in live.problems), live.problems
    finally:
        asterisk.rx("module load res_srtp.so")
    _, ctx, _, live = plan_layer(tls_spec)
    ctx.close()
    assert not live.problems, live.problems


def test_verify_reports_which_transports_carry_encrypted_media(tls_spec: Path) -> None:
    spec = load_spec(tls_spec).spec
    media = media_encryption(spec)
    assert media == {
        "udp": ENCRYPTED_WHEN_OFFERED,
        "tcp": ENCRYPTED_WHEN_OFFERED,
        "tls": ENCRYPTED_WHEN_OFFERED,
    }
    without_tls = spec.model_copy(
        update={"transports": spec.transports.model_copy(update={"tls": None})}
    )
    assert set(media_encryption(without_tls).values()) == {PLAIN_MEDIA}
    report = VerifyReport(
        domain=spec.domain,
        nameserver=None,
        resolution=Resolution(spec.domain, "none", (), ()),
        defects=[],
        media=media,
    )
    assert f"media over tls: {ENCRYPTED_WHEN_OFFERED}" in report.to_text()
    assert report.to_json()["media"] == media


def test_required_refuses_plain_media(
    asterisk: AsteriskInstance, tls_spec: Path, phone: AnsweringPhone, tmp_path: Path
) -> None:
    """media_encryption: required: a plain RTP offer is refused 488 before any phone rings
    (over UDP too: Asterisk cannot tell the transport before it answers); SRTP gets through."""
    data = yaml.safe_load(tls_spec.read_text())
    data["transports"]["tls"]["media_encryption"] = "required"
    required = write_spec(tmp_path, data)
    apply_spec(required)
    udp_port, tls_port = _ports(required)
    try:
        with SipCaller(tls_port, "tls") as caller:
            plain = caller.invite("director", timeout=6.0)
        with SipCaller(udp_port, "udp") as caller:
            plain_udp = caller.invite("director", timeout=6.0)
        assert plain.final == 488 and plain_udp.final == 488, (plain.statuses, plain_udp.statuses)
        assert not phone.invites
        media = SrtpCaller()
        try:
            with SipCaller(tls_port, "tls") as caller:
                secure = caller.invite(
                    "DIRECTOR", timeout=8.0, hold=0.5, sdp=srtp_offer(media.port, media.key),
                    on_answer=media.answered,
                )  # fmt: skip
        finally:
            media.close()
        assert 200 in secure.statuses and "RTP/SAVP" in secure.answer_sdp, secure.statuses
    finally:
        apply_spec(tls_spec)
