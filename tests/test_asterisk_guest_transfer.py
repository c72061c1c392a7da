"""A stranger can make the call and nothing more: no REFER (transfer) from a guest.

Measured on Asterisk 22 with res_pjsip_refer (Debian's autoload loads it; the tests' module
list did not): before ``allow_transfer=no``, a guest whose call an office phone answered
sent ``REFER`` to ``sip:nobody@`` and got 202 Accepted. The phone's channel was moved into
the guest context, ran ``sipctl#wrong-name`` and logged "Wrong call" with the phone's
address (fail2ban would ban the office); a REFER to a declared name made the office phone
call it. Now the REFER gets 603 and the call goes on.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asterisk_helpers import PHONE_SDP, Phone
from fixtures.asterisk import MODULES, AsteriskInstance, running_asterisk
from fixtures.sip_client import sip_response
from fixtures.waiting import WAIT_SECONDS
from hypothesis import given
from hypothesis import strategies as st

from sipctl.reconciler.asterisk_conf import normalize_sections
from sipctl.reconciler.render.asterisk import desired_files, include_line, pjsip_text
from sipctl.reconciler.render.asterisk_outbound import STRANGER_ENDPOINT_LINES
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.spec import Spec


@given(challenge=st.booleans(), wss=st.booleans(), outbound=st.booleans(), video=st.booleans())
def test_every_endpoint_sipctl_writes_refuses_transfers(
    challenge: bool, wss: bool, outbound: bool, video: bool
) -> None:
    """sipctl writes endpoints for strangers only (guests, browsers, the far ends of calls
    out, and the requests no guest may send, whose ACL lets nobody in): each of them carries
    the one list of lines that leaves a stranger the call alone."""
    asterisk: dict[str, Any] = {"video": video}
    if challenge and not wss:  # the two do not go together (validate says why)
        asterisk["unknown_callers"] = "challenge"
    transports: dict[str, Any] = {"udp": {}}
    if wss:
        transports["wss"] = {"port": 8089}
        asterisk["tls"] = {"cert_file": "/k/c.pem", "key_file": "/k/k.pem"}
    data: dict[str, Any] = {
        "version": 1,
        "domain": "mysite.example",
        "transports": transports,
        "users": {"director": "105"},
        "asterisk": asterisk,
    }
    if outbound:
        data["outbound"] = {"deny": ["denied.example"]}
    sections = normalize_sections(pjsip_text(Spec.model_validate(data)))
    endpoints = {name: lines for name, lines in sections.items() if "type=endpoint" in lines}
    assert len(endpoints) == 2 + wss + outbound, sections
    for name, lines in endpoints.items():
        assert set(STRANGER_ENDPOINT_LINES) <= set(lines), name


@pytest.fixture(scope="module")
def pbx() -> Iterator[AsteriskInstance]:
    modules = "[modules]\nautoload=no\n" + "".join(
        f"load => {module}\n" for module in (*MODULES, "res_pjsip_refer.so")
    )
    with running_asterisk(extra_files={"modules.conf": modules}) as instance:
        section = instance.spec_section()
        spec = load_spec_text(
            "version: 1\ndomain: mysite.example\nusers: {director: 105, alex: 106}\nasterisk:\n"
            + "".join(f"  {key}: {value!r}\n" for key, value in section.items())
        ).spec
        for name, text in desired_files(spec).items():
            (instance.config_dir / name).write_text(text)
            parent = instance.config_dir / ("extensions.conf" if "ext" in name else "pjsip.conf")
            parent.write_text(parent.read_text() + "\n" + include_line(name) + "\n")
        instance.rx("module reload res_pjsip.so")
        instance.rx("dialplan reload")
        assert "res_pjsip_refer.so" in instance.rx("module show like refer")
        yield instance


def _header(message: str, name: str) -> str:
    for line in message.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return ""


class Guest:
    """A caller on loopback with one dialog: INVITE, ACK, then requests inside the call."""

    def __init__(self, pbx: AsteriskInstance) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.pbx = ("127.0.0.1", pbx.sip_port)
        self.uri = f"sip:director@127.0.0.1:{pbx.sip_port}"
        self.to = f"<{self.uri}>"
        self.target = self.uri
        self.cseq = 0

    def send(self, method: str, extra: str = "", body: str = "") -> None:
        if method != "ACK":
            self.cseq += 1
        uri = self.uri if method == "INVITE" else self.target
        self.sock.sendto(
            (
                f"{method} {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{method}{self.cseq};rport\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:stranger@caller.example>;tag=guest\r\n"
                f"To: {self.to}\r\nCall-ID: guest-transfer-{self.port}\r\n"
                f"CSeq: {self.cseq} {method}\r\n"
                f"Contact: <sip:stranger@127.0.0.1:{self.port}>\r\n{extra}"
                + ("Content-Type: application/sdp\r\n" if body else "")
                + f"Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode(),
            self.pbx,
        )

    def final(self, method: str) -> str:
        """The final answer to this guest's last ``method``; answers the PBX's requests."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            text = self.sock.recv(65535).decode(errors="replace")
            if not text.startswith("SIP/2.0"):
                self.sock.sendto(sip_response(text, 200, tag=None).encode(), self.pbx)
            elif not re.match(r"SIP/2\.0 1\d\d", text) and method in _header(text, "cseq"):
                return text
        raise AssertionError(f"no final answer to {method}")


@pytest.mark.asterisk
def test_a_guest_cannot_transfer_the_phone_that_answered(pbx: AsteriskInstance) -> None:
    phone = Phone(pbx.phone_port, answer=200)
    guest = Guest(pbx)
    try:
        start = pbx.log_size()
        guest.send("INVITE", body=PHONE_SDP)
        answer = guest.final("INVITE")
        assert answer.startswith("SIP/2.0 200"), answer
        guest.to = _header(answer, "to")
        contact = re.search(r"<([^>]+)>", _header(answer, "contact"))
        assert contact, answer
        guest.target = contact[1]
        guest.send("ACK")
        for target in ("sip:nobody@127.0.0.1", "sip:alex@127.0.0.1"):
            guest.send("REFER", f"Refer-To: <{target}>\r\nReferred-By: <sip:stranger@x>\r\n")
            assert guest.final("REFER").startswith("SIP/2.0 603"), target
        pbx.wait_log("Endpoint sipctl-guest transfer attempt blocked", start)
        # the call goes on: the phone was rung once and hung up by nobody
        assert phone.requests == ["INVITE", "ACK"], phone.requests
        guest.send("BYE")
        assert guest.final("BYE").startswith("SIP/2.0 200")
        text = pbx.log_since(start)
        assert "Wrong call" not in text and "Unavailable call" not in text, text
        assert text.count("Good call IP=127.0.0.1") == 1, text
    finally:
        guest.sock.close()
        phone.close()
