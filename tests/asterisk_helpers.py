"""Helpers shared by the Asterisk tests: specs for a test PBX, plan and apply one layer."""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from fixtures.asterisk import AsteriskInstance
from fixtures.sip_client import serve_datagrams, sip_response
from fixtures.waiting import WAIT_SECONDS

from sipctl.providers.asterisk.provider import AsteriskProvider
from sipctl.providers.base import RunContext
from sipctl.reconciler.diff import diff
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.asterisk import render_asterisk
from sipctl.reconciler.resources import LiveState
from sipctl.schemas.loader import LoadedSpec, load_spec

USERS = {"director": "105", "alex": "106", "101": "101"}


def spec_data(
    pbx: AsteriskInstance, users: dict[str, str] | None = None, **asterisk: Any
) -> dict[str, Any]:
    return {
        "version": 1,
        "domain": "mysite.ru",
        "transports": {"udp": {"port": pbx.sip_port}, "tcp": {"port": pbx.sip_port}},
        "users": dict(USERS if users is None else users),
        "asterisk": pbx.spec_section(**asterisk),
    }


def zone_records(port: int, tls_port: int | None = None) -> str:
    """A zone's records that send SIP clients (NAPTR, SRV) to a PBX at pbx.<zone>, 127.0.0.1."""
    text = (
        '@ IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp\n'
        '@ IN NAPTR 20 10 "s" "SIP+D2T" "" _sip._tcp\n'
        f"_sip._udp IN SRV 10 0 {port} pbx\n"
        f"_sip._tcp IN SRV 10 0 {port} pbx\n"
        "pbx IN A 127.0.0.1\n"
    )
    if tls_port is not None:
        text += '@ IN NAPTR 30 10 "s" "SIPS+D2T" "" _sips._tcp\n'
        text += f"_sips._tcp IN SRV 10 0 {tls_port} pbx\n"
    return text


def write_spec(directory: Path, data: dict[str, Any], name: str = "sipctl.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def plan_layer(spec_file: Path) -> tuple[AsteriskProvider, RunContext, list[Change], LiveState]:
    loaded: LoadedSpec = load_spec(spec_file)
    ctx = RunContext(base_dir=loaded.base_dir)
    provider = AsteriskProvider(loaded, ctx)
    desired = render_asterisk(loaded.spec)
    live = provider.read(desired)
    return provider, ctx, diff(desired, live), live


def apply_spec(spec_file: Path) -> list[str]:
    """Plan and apply the Asterisk layer of ``spec_file``; fail on plan problems."""
    provider, ctx, changes, live = plan_layer(spec_file)
    try:
        assert not live.problems, live.problems
        return provider.apply(changes, live)
    finally:
        ctx.close()


def pending_changes(spec_file: Path) -> list[Change]:
    _, ctx, changes, _ = plan_layer(spec_file)
    ctx.close()
    return changes


# what a phone that answers (``Phone(answer=200)``) offers: PCMU on a port nobody reads
PHONE_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40010 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class Phone:
    """Extension 105's phone: a UDP socket, answered from a thread, that records requests.

    Every INVITE is answered ``answer``: busy (486) by default, so the caller hears busy and
    the test sees what the guest dialplan does after a Dial that failed; 200 answers at once
    (with ``PHONE_SDP``) and stays in the call. ``invites`` holds the INVITEs, ``requests``
    the method of every request, in order.
    """

    def __init__(self, port: int, answer: int = 486) -> None:
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.05)
        self.invites: list[str] = []
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=serve_datagrams, args=(self.sock, self._stop, self._answer), daemon=True
        )
        self._thread.start()

    def _answer(self, data: bytes, peer: tuple[str, int]) -> None:
        text = data.decode(errors="replace")
        self.requests.append(text.split(" ", 1)[0])
        if text.startswith("INVITE"):
            self.invites.append(text)
            self.sock.sendto(self._final(text).encode(), peer)
        elif text.startswith(("CANCEL", "BYE", "OPTIONS")):
            self.sock.sendto(sip_response(text, 200).encode(), peer)

    def _final(self, invite: str) -> str:
        if self.answer != 200:
            return sip_response(invite, self.answer)
        contact = f"Contact: <sip:105@127.0.0.1:{self.sock.getsockname()[1]}>"
        extra = [contact, "Content-Type: application/sdp"]
        return sip_response(invite, 200, extra=extra, body=PHONE_SDP)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.sock.close()


class RingingPhone:
    """A phone that REGISTERs as one of the PBX's extensions (digest auth, like a desk
    phone) and lets every INVITE ring: 180, never answered, 487 after a CANCEL.

    ``invites`` and ``cancels`` hold the monotonic time of each, so a test can tell when
    the PBX rang the phone and when it gave up.
    """

    def __init__(self, pbx_port: int, extension: str, password: str) -> None:
        self.pbx = ("127.0.0.1", pbx_port)
        self.extension = extension
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.invites: list[float] = []
        self.cancels: list[float] = []
        self._pending: dict[str, str] = {}  # Call-ID -> the INVITE being rung
        self._register(password)
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=serve_datagrams, args=(self.sock, self._stop, self._answer), daemon=True
        )
        self._thread.start()

    def _register(self, password: str) -> None:
        ext, port = self.extension, self.port
        call_id = f"reg-{ext}-{port}"
        uri = f"sip:{self.pbx[0]}:{self.pbx[1]}"

        def request(cseq: int, auth: str = "") -> bytes:
            lines = [
                f"REGISTER {uri} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}{cseq};rport",
                "Max-Forwards: 70",
                f"From: <sip:{ext}@127.0.0.1>;tag={call_id}",
                f"To: <sip:{ext}@127.0.0.1>",
                f"Call-ID: {call_id}",
                f"CSeq: {cseq} REGISTER",
                f"Contact: <sip:{ext}@127.0.0.1:{port}>",
                "Expires: 300",
                *([auth] if auth else []),
                "Content-Length: 0",
            ]
            return ("\r\n".join(lines) + "\r\n\r\n").encode()

        challenge = self._exchange(request(1), "REGISTER")
        params = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge.split("Digest", 1)[1]))
        realm, nonce = params["realm"], params["nonce"]
        ha1 = _md5(f"{ext}:{realm}:{password}")
        ha2 = _md5(f"REGISTER:{uri}")
        cnonce, nc = "0a4f113b", "00000001"
        answer = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        auth = (
            f'Authorization: Digest username="{ext}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{answer}", algorithm=MD5, qop=auth, nc={nc}, '
            f'cnonce="{cnonce}"' + (f', opaque="{params["opaque"]}"' if "opaque" in params else "")
        )
        status = self._exchange(request(2, auth), "REGISTER")
        if not status.startswith("SIP/2.0 200"):
            raise AssertionError(f"phone {ext} could not register: {status.splitlines()[0]}")

    def _exchange(self, request: bytes, method: str) -> str:
        """Send ``request`` and return its final answer. Resent as a UDP SIP client does
        (RFC 3261's timer E: 0.5 s, doubling up to 4 s) until ``WAIT_SECONDS``: a PBX slow
        under load answers late, and a fixed 5 s wait failed the test then."""
        deadline = time.monotonic() + WAIT_SECONDS
        interval = 0.5
        self.sock.sendto(request, self.pbx)
        resend = time.monotonic() + interval
        while (now := time.monotonic()) < deadline:
            self.sock.settimeout(max(0.01, min(resend, deadline) - now))
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                if time.monotonic() >= resend:
                    self.sock.sendto(request, self.pbx)
                    interval = min(interval * 2, 4.0)
                    resend = time.monotonic() + interval
                continue
            text = data.decode(errors="replace")
            final = text.startswith("SIP/2.0") and not text.startswith("SIP/2.0 100")
            if final and f" {method}" in _header(text, "cseq"):
                return text
        raise AssertionError(
            f"phone {self.extension}: no final answer to its {method} within {WAIT_SECONDS:.0f} s"
        )

    def _answer(self, data: bytes, peer: tuple[str, int]) -> None:
        text = data.decode(errors="replace")
        call_id = _header(text, "call-id")
        if text.startswith("INVITE"):
            if call_id not in self._pending:
                self.invites.append(time.monotonic())
            self._pending[call_id] = text
            self.sock.sendto(sip_response(text, 180).encode(), peer)
        elif text.startswith("CANCEL"):
            self.cancels.append(time.monotonic())
            self.sock.sendto(sip_response(text, 200).encode(), peer)
            invite = self._pending.pop(call_id, None)
            if invite is not None:
                self.sock.sendto(sip_response(invite, 487).encode(), peer)
        elif text.startswith(("BYE", "OPTIONS", "NOTIFY")):
            self.sock.sendto(sip_response(text, 200).encode(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.sock.close()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # SIP digest is MD5


def _header(message: str, name: str) -> str:
    for line in message.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return ""
