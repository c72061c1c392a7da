"""Every SIP method, with its own CSeq and with a forged one, sent by a stranger to every
endpoint sipctl renders that a stranger can reach, on a real Asterisk 22: the plain SIP
guests' endpoint (over UDP, at one company's domain, at a host's customer's, and with
``unknown_callers: challenge``) and the browsers' endpoint of the click-to-call page (over
WSS, From ``sip:guest@webrtc.<domain>``).

Each answer is either the product's on purpose (INVITE to a declared name is a call, logged
"Good call"; OPTIONS is answered 200 as `sipctl verify` and monitors expect) or a refusal
whose log line sipctl's fail2ban filter counts (checked by fail2ban-regex), except the ones
Asterisk decides before any configuration is read, listed in UNLOGGED with the module that
decides them (docs/security.md says the same to the user).
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asterisk_helpers import apply_spec, spec_data, write_spec
from fixtures.asterisk import AsteriskInstance, running_asterisk
from fixtures.fail2ban_reader import fail2ban_regex
from fixtures.hosting import TWO_CUSTOMERS, two_phone_pbx, write_host, write_hoster
from test_webrtc_asterisk import websocket, wss_spec
from websockets.exceptions import InvalidMessage

from sipctl.reconciler.render.asterisk import BROWSERS_ENDPOINT, GUEST_ENDPOINT
from sipctl.reconciler.render.fail2ban import FILTER_TEXT, HOSTING_FILTER_TEXT

pytestmark = pytest.mark.asterisk

# RFC 3261's methods, the extensions' (RFC 3262, 3265, 3311, 3428, 3515, 3903, 6086) and one
# nobody defined.
METHODS = (
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "SUBSCRIBE", "NOTIFY", "PUBLISH",
    "MESSAGE", "REFER", "INFO", "UPDATE", "PRACK", "SIPCTLTEST",
)  # fmt: skip
# The headers each method needs to be taken seriously.
HEADERS = {
    "SUBSCRIBE": ["Event: presence", "Expires: 60", "Accept: application/pidf+xml"],
    "PUBLISH": ["Event: presence", "Expires: 60", "Content-Type: application/pidf+xml"],
    "NOTIFY": ["Event: check-sync", "Subscription-State: active"],
    "REFER": ["Refer-To: <sip:105@mysite.ru>"],
    "MESSAGE": ["Content-Type: text/plain"],
    "REGISTER": ["Expires: 60"],
    "PRACK": ["RAck: 1 1 INVITE"],
}
FORGED = ("INVITE", "OPTIONS")  # what a forged CSeq says: the methods a guest may send
# (method, CSeq's method) -> what Asterisk answers with nothing for fail2ban, and why.
# res_pjsip/pjsip_distributor.c answers BYE and CANCEL outside a dialog 481 before any
# endpoint is looked for, and never answers an ACK. With a forged CSeq the request passes
# the identify sections (they read headers; the request line is none), reaches the guest
# endpoint, and res_pjsip answers 501 where no module takes the method (MESSAGE included:
# a PBX with res_pjsip_messaging answers it 404, message_context); res_pjsip_options fails
# to answer an OPTIONS whose CSeq says INVITE ("Unable to send response (-1)"), res_pjsip
# answers an INVITE whose CSeq says OPTIONS 500 ("Could not create dialog ... Invalid header
# field"): ERRORs without the address. None of these rings a phone or runs the dialplan.
UNLOGGED: dict[tuple[str, str], int | None] = {
    **{(m, c): 481 for m in ("BYE", "CANCEL") for c in (m, *FORGED)},
    ("ACK", "ACK"): None,
    **{(m, c): 501 for m in ("MESSAGE", "INFO", "UPDATE", "PRACK", "SIPCTLTEST") for c in FORGED},
    ("OPTIONS", "INVITE"): None,
    ("INVITE", "OPTIONS"): 500,
}


@dataclass(frozen=True)
class Stranger:
    """Where a stranger's requests go: the endpoint that takes its calls, the address it
    calls (a declared name), the From host it sends, and over what."""

    endpoint: str
    callee: str
    from_host: str
    transport: str  # udp | wss
    filter_text: str = FILTER_TEXT


def request(stranger: Stranger, method: str, cseq: str, via: str) -> str:
    body = "hello" if method == "MESSAGE" else ""
    return "\r\n".join([
        f"{method} sip:{stranger.callee} SIP/2.0",
        f"Via: {via};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport",
        "Max-Forwards: 70",
        f"From: <sip:guest@{stranger.from_host}>;tag={uuid.uuid4().hex[:8]}",
        f"To: <sip:{stranger.callee}>",
        f"Call-ID: {uuid.uuid4().hex}",
        f"CSeq: 1 {cseq}",
        f"Contact: <sip:guest@{stranger.from_host}>",
        *HEADERS.get(method, []),
        f"Content-Length: {len(body)}",
    ]) + "\r\n\r\n" + body  # fmt: skip


def final_status(first_line: str) -> int | None:
    return int(first_line.split()[1]) if first_line.startswith("SIP/2.0 ") else None


def send_udp(pbx: AsteriskInstance, stranger: Stranger, method: str, cseq: str) -> int | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        text = request(stranger, method, cseq, f"SIP/2.0/UDP 127.0.0.1:{sock.getsockname()[1]}")
        sock.sendto(text.encode(), ("127.0.0.1", pbx.sip_port))
        sock.settimeout(1.0)
        try:
            while True:
                status = final_status(sock.recv(65535).decode(errors="replace"))
                if status is not None and status >= 200:
                    return status
        except OSError:
            return None


def send_wss(pbx: AsteriskInstance, stranger: Stranger, method: str, cseq: str) -> int | None:
    for attempt in range(3):  # Asterisk's HTTPS server now and then drops a fresh handshake
        try:
            return _send_wss(pbx, stranger, method, cseq)
        except InvalidMessage:
            if attempt == 2:
                raise
            time.sleep(0.2)
    return None


def _send_wss(pbx: AsteriskInstance, stranger: Stranger, method: str, cseq: str) -> int | None:
    with websocket("127.0.0.1", pbx.wss_port) as ws:
        ws.send(request(stranger, method, cseq, "SIP/2.0/WSS sipctl.invalid"))
        try:
            while True:
                status = final_status(str(ws.recv(timeout=1.0)))
                if status is not None and status >= 200:
                    return status
        except TimeoutError:
            return None


SENDERS: dict[str, Callable[[AsteriskInstance, Stranger, str, str], int | None]] = {
    "udp": send_udp,
    "wss": send_wss,
}


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    """One company's PBX with the click-to-call page's transport (wss)."""
    with running_asterisk() as instance:
        apply_spec(write_spec(tmp_path_factory.mktemp("company"), wss_spec(instance)))
        yield instance


@pytest.fixture(scope="module")
def hoster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    """Host pbx1 and its customers a.example and b.example."""
    with two_phone_pbx() as instance:
        directory = tmp_path_factory.mktemp("hoster")
        write_hoster(directory, write_host(directory, instance), TWO_CUSTOMERS)
        yield instance


@pytest.fixture(scope="module")
def challenging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    """One company's PBX with unknown_callers: challenge."""
    with running_asterisk() as instance:
        data = spec_data(instance, unknown_callers="challenge")
        apply_spec(write_spec(tmp_path_factory.mktemp("challenge"), data))
        yield instance


STRANGERS = {
    "guest": ("company", Stranger(GUEST_ENDPOINT, "director@mysite.ru", "example.org", "udp")),
    "browsers": (
        "company",
        Stranger(BROWSERS_ENDPOINT, "director@mysite.ru", "webrtc.mysite.ru", "wss"),
    ),
    "hosting customer": (
        "hoster",
        Stranger(GUEST_ENDPOINT, "director@a.example", "example.org", "udp", HOSTING_FILTER_TEXT),
    ),
    "challenge": (
        "challenging",
        Stranger(GUEST_ENDPOINT, "director@mysite.ru", "example.org", "udp"),
    ),
}


# What the jail counts, as the test finds each line (a request refused, a forged REGISTER).
_COUNTED_LINES = ("' from '<sip:guest@", "' (127.0.0.1:")


@pytest.mark.parametrize("who", list(STRANGERS))
def test_every_method_is_the_products_answer_or_refused_and_counted(
    who: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fixture, stranger = STRANGERS[who]
    pbx: AsteriskInstance = request.getfixturevalue(fixture)
    send = SENDERS[stranger.transport]
    counted: list[str] = []
    first = pbx.log_size()
    for method in METHODS:
        for cseq in dict.fromkeys((method, *FORGED)):
            if method == "ACK" and cseq != "ACK":
                continue  # an ACK is never answered: nothing to tell apart
            start = pbx.log_size()
            status = send(pbx, stranger, method, cseq)
            where = (who, method, cseq, status)
            if method == cseq == "INVITE":
                pbx.wait_log(r"Good call IP=127\.0\.0\.1", start)  # it rings: the call
                continue
            if method == cseq == "OPTIONS":
                assert status == 200, where  # answered on purpose (verify, monitors)
                continue
            if (method, cseq) in UNLOGGED:
                assert status == UNLOGGED[method, cseq], where
                continue
            if method == "REGISTER" and cseq in FORGED:
                assert status == 403, where  # the guest endpoint has no AOR; Asterisk logs it
                line = f"Endpoint '{stranger.endpoint}' (127.0.0.1:"
            else:
                assert status == 401, where
                line = f"Request '{method}' from '<sip:guest@"
            text = pbx.wait_log(re.escape(line), start)  # the log line follows the answer
            found = [row for row in text.splitlines() if line in row]
            assert len(found) == 1, (where, text)
            counted += found
    # once more over the whole run, a moment after its last answer: no request was counted
    # twice by a line that came after its own was found
    time.sleep(0.5)
    every = pbx.log_since(first).splitlines()
    assert sum(1 for row in every if any(c in row for c in _COUNTED_LINES)) == len(counted)
    log = tmp_path / "messages"
    log.write_text("\n".join(counted) + "\n")
    filter_file = tmp_path / "sipctl-asterisk.conf"
    filter_file.write_text(stranger.filter_text)
    assert fail2ban_regex(log, filter_file) == ["127.0.0.1"] * len(counted)
