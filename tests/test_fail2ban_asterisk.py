"""sipctl's fail2ban filter against REAL Asterisk 22 log lines.

``tests/data/asterisk-22-messages.log`` was captured from the Asterisk 22 chroot by
``capture()`` below (the live test runs the same calls again): guest calls to unknown names
over UDP and TCP, IPv4 and IPv6, failed digest authentication, REGISTERs only the guest
endpoint matched, and crafted names, display names and Call-IDs that try to put another
address (6.6.6.x) into the line. fail2ban-regex must take exactly the real caller's address
from every failure line and never one the caller wrote.

Regenerate the file with ``.venv/bin/python tests/test_fail2ban_asterisk.py`` (root).
"""

from __future__ import annotations

import collections
import ipaddress
import random
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_from_bytes

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from fixtures.asterisk import MODULES, AsteriskInstance, running_asterisk
from fixtures.common import require
from fixtures.fail2ban_reader import fail2ban_regex
from fixtures.sip_client import SipCaller
from fixtures.waiting import wait_until

from sipctl.reconciler.render.asterisk import desired_files, include_line
from sipctl.reconciler.render.asterisk_lookup import lookup_target
from sipctl.reconciler.render.fail2ban import FILTER_TEXT
from sipctl.schemas.loader import load_spec_text

pytestmark = pytest.mark.fail2ban

DATA = Path(__file__).parent / "data"
CAPTURED = DATA / "asterisk-22-messages.log"
SMUGGLED = ipaddress.ip_network("6.6.6.0/24")

# The guest setup as the contract describes it: the anonymous endpoint lands in its own
# context; a declared name logs "Good call" at NOTICE, any other name "Wrong call" at
# WARNING with the caller's address last, once as CHANNEL(pjsip,remote_addr) gives it
# (a.b.c.d:port, [v6]:port) and once bare (port popped, brackets filtered away).
GUEST_ENDPOINT = """
[anonymous]
type=endpoint
context=f2b-guest
disallow=all
allow=ulaw,alaw
"""

V6_TRANSPORT = """
[f2b-{proto}6]
type=transport
protocol={proto}
bind=[::1]:{port}
"""

GUEST_DIALPLAN = """
[f2b-guest]
exten => director,1,Log(NOTICE,Good call IP=${CHANNEL(pjsip,remote_addr)})
 same => n,Hangup()
exten => _[0-9A-Za-z#*+._~%].,1,Set(SIPCTL_IP=${CHANNEL(pjsip,remote_addr)})
 same => n,Log(WARNING,Wrong call IP=${SIPCTL_IP})
 same => n,Set(SIPCTL_PORT=${POP(SIPCTL_IP,:)})
 same => n,Log(WARNING,Wrong call IP=${FILTER(0-9a-fA-F.:,${SIPCTL_IP})})
 same => n,Hangup()
"""


@dataclass(frozen=True)
class Probe:
    """One request and the failure lines it must cause: (real address, count)."""

    why: str
    method: str  # INVITE | REGISTER
    user: str  # request-URI user (already %-escaped)
    v6: bool = False
    tcp: bool = False
    from_header: str = ""  # default <sip:stranger@...>
    call_id: str = ""
    auth: bool = False  # a wrong digest answer for endpoint 105
    lines: int = 1  # failure lines expected from this request


def probes() -> list[Probe]:
    return [
        Probe("wrong name, UDP v4", "INVITE", "nobody", lines=2),
        Probe("wrong name, TCP v4", "INVITE", "nobody", tcp=True, lines=2),
        Probe("wrong name, UDP v6", "INVITE", "nobody", v6=True, lines=2),
        Probe("wrong name, TCP v6", "INVITE", "nobody", v6=True, tcp=True, lines=2),
        Probe("declared name", "INVITE", "director", lines=0),
        Probe("name 'x IP=6.6.6.1 '", "INVITE", quote("x IP=6.6.6.1 ", safe=""), lines=2),
        Probe(
            "name 'a:b IP=6.6.6.2:5060'", "INVITE", quote("a:b IP=6.6.6.2:5060", safe=""), lines=2
        ),
        Probe(
            "name repeating the marker",
            "INVITE",
            quote("y: Wrong call IP=6.6.6.3 ", safe=""),
            lines=2,
        ),
        # Not matched by the catch-all (first character): Asterisk's own "not found" line.
        Probe("name not in the catch-all, v4", "INVITE", "%24nobody"),
        Probe("name not in the catch-all, TCP v6", "INVITE", "%24nobody", v6=True, tcp=True),
        Probe(
            "name imitating the not-found line",
            "INVITE",
            quote("$a' (UDP:6.6.6.4:5060) to extension 'b", safe=""),
        ),
        Probe("wrong password, v4", "REGISTER", "", auth=True, from_header="<sip:105@{host}>"),
        Probe(
            "wrong password, v6", "REGISTER", "", v6=True, auth=True, from_header="<sip:105@{host}>"
        ),
        Probe(
            "display name imitating the line",
            "REGISTER",
            "",
            auth=True,
            from_header="\"x' failed for '6.6.6.5:1' (callid: a) - Failed to authenticate\" "
            "<sip:105@{host}>",
        ),
        Probe(
            "Call-ID imitating the line",
            "REGISTER",
            "",
            auth=True,
            from_header="<sip:105@{host}>",
            call_id="c x' failed for '6.6.6.6:1' (callid: a) - Failed to authenticate",
        ),
        Probe(
            "display name with an escaped quote",
            "REGISTER",
            "",
            auth=True,
            from_header="\"a\\\"b>' failed for '6.6.6.7:1' (callid: x\" <sip:105@{host}>",
        ),
        # A tel: From matches no endpoint: "No matching endpoint found", then the guest
        # endpoint takes the request and the wrong answer fails: "Failed to authenticate".
        Probe("tel: From", "REGISTER", "", auth=True, from_header="<tel:105>", lines=2),
        Probe(
            "REGISTER of an unknown user (guest endpoint)",
            "REGISTER",
            "",
            from_header="<sip:scanner@{host}>",
        ),
    ]


def expected_counts() -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for probe in probes():
        counts["::1" if probe.v6 else "127.0.0.1"] += probe.lines
    return counts


# -- the SIP client: raw requests, so that every header is the test's own -----------------------


def send(probe: Probe, port: int, timeout: float = 1.0) -> list[str]:
    """Send one request from loopback; return the status lines received within ``timeout``."""
    family = socket.AF_INET6 if probe.v6 else socket.AF_INET
    host = "::1" if probe.v6 else "127.0.0.1"
    hostport = f"[{host}]" if probe.v6 else host
    kind = socket.SOCK_STREAM if probe.tcp else socket.SOCK_DGRAM
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        if probe.tcp:
            sock.settimeout(timeout)
            sock.connect((host, port))
        local = sock.getsockname()[1]
        proto = "TCP" if probe.tcp else "UDP"
        uri = f"sip:{probe.user}@{hostport}:{port}" if probe.user else f"sip:{hostport}:{port}"
        from_header = (probe.from_header or "<sip:stranger@{host}>").format(host=hostport)
        call_id = probe.call_id or uuid.uuid4().hex
        headers = [
            f"{probe.method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{proto} {hostport}:{local};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport",
            "Max-Forwards: 70",
            f"From: {from_header};tag={uuid.uuid4().hex[:8]}",
            f"To: {from_header if probe.method == 'REGISTER' else f'<{uri}>'}",
            f"Call-ID: {call_id}",
            f"CSeq: 1 {probe.method}",
            f"Contact: <sip:caller@{hostport}:{local}>",
        ]
        if probe.auth:
            headers.append(
                f'Authorization: Digest username="105", realm="asterisk", nonce="00", '
                f'uri="sip:{hostport}:{port}", response="{"0" * 32}", algorithm=MD5'
            )
        body = ""
        if probe.method == "INVITE":
            body = (
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            )
            headers.append("Content-Type: application/sdp")
        if probe.method == "MESSAGE":
            body = "hello"
            headers.append("Content-Type: text/plain")
        if probe.method == "REGISTER":
            headers.append("Expires: 60")
        headers.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(headers) + "\r\n\r\n" + body).encode()
        if probe.tcp:
            sock.sendall(message)
        else:
            sock.sendto(message, (host, port))
        sock.settimeout(timeout)
        statuses: list[str] = []
        try:
            while True:
                data = sock.recv(65535)
                if not data:
                    break
                statuses += [
                    line
                    for line in data.decode(errors="replace").split("\r\n")
                    if line.startswith("SIP/2.0 ")
                ]
                if any(s.split()[1] >= "200" for s in statuses if len(s.split()) > 1):
                    break
        except (TimeoutError, OSError):
            pass
        return statuses


def configure_guest(instance: AsteriskInstance) -> None:
    """Add the guest endpoint, IPv6 transports and the guest dialplan to the running PBX."""
    pjsip = instance.config_dir / "pjsip.conf"
    text = pjsip.read_text()
    added = GUEST_ENDPOINT
    for proto in ("udp", "tcp"):  # unless the base config has it already
        section = rf"protocol={proto}\s+bind=\[::1\]:{instance.sip_port}\b"
        if not re.search(section, text):
            added += V6_TRANSPORT.format(proto=proto, port=instance.sip_port)
    pjsip.write_text(text + added)
    dialplan = instance.config_dir / "extensions.conf"
    dialplan.write_text(dialplan.read_text() + GUEST_DIALPLAN)
    instance.rx("module reload res_pjsip.so")
    instance.rx("dialplan reload")
    shown = instance.rx("pjsip show endpoint anonymous")
    assert "f2b-guest" in shown, shown
    # The reloaded transports come up a moment after the reload command returns.
    wanted = [f"{proto}      0      0  [::1]:{instance.sip_port}" for proto in ("udp", "tcp")]
    wait_until(
        lambda: all(line in instance.rx("pjsip show transports") for line in wanted),
        "the IPv6 transports",
        interval=0.1,
        last=lambda: f"{instance.rx('pjsip show transports')}\n{instance.log_since(0)[-3000:]}",
    )


def capture(instance: AsteriskInstance) -> str:
    """Place every probe against ``instance``; return the new part of its ``messages`` log."""
    configure_guest(instance)
    start = instance.log_size()
    for probe in probes():
        send(probe, instance.sip_port)
    total = sum(p.lines for p in probes())

    # The last lines are written a moment after the final responses arrived.
    def written() -> str | None:
        text = instance.log_since(start)
        return text if sum(1 for ln in text.splitlines() if _is_failure_line(ln)) >= total else None

    return wait_until(written, f"{total} failure lines", last=lambda: instance.log_since(start))


def _is_failure_line(line: str) -> bool:
    return any(
        marker in line
        for marker in ("Wrong call IP=", "rejected because", "failed for", "no configured AORs")
    )


# -- fail2ban-regex ---------------------------------------------------------------------------------


@pytest.fixture
def sipctl_filter(tmp_path: Path) -> Path:
    path = tmp_path / "sipctl-asterisk.conf"
    path.write_text(FILTER_TEXT)
    return path


def _assert_real_addresses_only(found: list[str]) -> None:
    smuggled = [a for a in found if ipaddress.ip_address(a) in SMUGGLED]
    assert not smuggled, f"the filter took addresses a caller wrote: {smuggled}"
    assert collections.Counter(found) == expected_counts()


def test_captured_asterisk_22_lines(sipctl_filter: Path) -> None:
    text = CAPTURED.read_text()
    assert "Ext. x IP=6.6.6.1 : Wrong call IP=127.0.0.1:" in text  # the file is what we think
    found = fail2ban_regex(CAPTURED, sipctl_filter)
    _assert_real_addresses_only(found)


def test_stock_filter_is_fooled_and_blind(tmp_path: Path) -> None:
    """Why sipctl writes its own filter: the stock one, on the same real lines."""
    stock = Path("/etc/fail2ban/filter.d/asterisk.conf")
    require(stock.exists(), "fail2ban's stock filter.d/asterisk.conf")
    # fail2ban-regex resolves "before = common.conf" next to the filter.
    (tmp_path / "filter.d").mkdir()
    for name in ("asterisk.conf", "common.conf"):
        shutil.copy(stock.parent / name, tmp_path / "filter.d" / name)
    found = fail2ban_regex(CAPTURED, tmp_path / "filter.d" / "asterisk.conf")
    # A display name chose the banned address ...
    assert any(ipaddress.ip_address(a) in SMUGGLED for a in found), found
    # ... and Asterisk 22's lines slip by.
    assert len(found) < sum(expected_counts().values())


@pytest.mark.asterisk
def test_live_asterisk_22_lines(sipctl_filter: Path, tmp_path: Path) -> None:
    with running_asterisk() as instance:
        text = capture(instance)
    log = tmp_path / "messages"
    log.write_text(text)
    found = fail2ban_regex(log, sipctl_filter)
    _assert_real_addresses_only(found)


# A dialled name may carry %0A: PJSIP unescapes it, and wherever Asterisk prints the name the
# caller has written a line of their own into the log (at most 79 characters:
# AST_MAX_EXTENSION). sipctl's guest dialplan must leave the name out of every line.
FORGED = "WARNING[1][C-00000001] Ext. y: Wrong call IP=6.6.6.{n}"
NEWLINE_NAMES = (
    quote(f"x\n{FORGED.format(n=8)}\nz", safe=""),  # once taken by the old catch-all's Log()
    quote(f"\n{FORGED.format(n=9)}\n", safe=""),  # once outside it: Asterisk's "not found"
)
# One line of the log as Asterisk writes it: a forged line that does not look like this is
# caught here, one that does is caught by counting the "Wrong call" lines.
ASTERISK_LINE = re.compile(
    r"\[[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\] (?:NOTICE|WARNING|ERROR)\[\d+\](?:\[C-[0-9a-f]+\])? \S"
)
SIPCTL_WRONG_CALL = re.compile(
    r"\] WARNING\[\d+\]\[C-[0-9a-f]+\] Ext\. sipctl#wrong-name: Wrong call IP=127\.0\.0\.1$"
)


@pytest.fixture(scope="module")
def sipctl_pbx() -> Iterator[AsteriskInstance]:
    """A real Asterisk 22 with sipctl's own Asterisk layer (render_asterisk) in it."""
    # res_pjsip_messaging too, as Debian's autoload has it: guests may send MESSAGE.
    modules = "[modules]\nautoload=no\n" + "".join(
        f"load => {module}\n" for module in (*MODULES, "res_pjsip_messaging.so")
    )
    with running_asterisk(extra_files={"modules.conf": modules}) as instance:
        section = instance.spec_section()
        spec = load_spec_text(
            # Boss: 101, a phone that is never registered (Dial fails at once): written
            # in the spec's own case, rung in any case through the catch-all's lookup.
            "version: 1\ndomain: mysite.ru\nusers: {director: 105, Boss: 101}\nasterisk:\n"
            + "".join(f"  {key}: {value!r}\n" for key, value in section.items())
        ).spec
        for name, text in desired_files(spec).items():
            (instance.config_dir / name).write_text(text)
            parent = instance.config_dir / ("extensions.conf" if "ext" in name else "pjsip.conf")
            parent.write_text(parent.read_text() + "\n" + include_line(name) + "\n")
        start = instance.log_size()
        instance.rx("module reload res_pjsip.so")
        instance.rx("dialplan reload")
        assert "'_-.' =>" in instance.rx("dialplan show guest-call")
        # the catch-all is "_." without pbx_config's warning about it
        assert "strongly discouraged" not in instance.log_since(start)
        yield instance


def _wrong_call_lines(instance: AsteriskInstance, start: int, count: int) -> str:
    """The log after ``start`` once ``count`` "Wrong call" lines are in it (and a moment more,
    for whatever else the calls write)."""
    wait_until(lambda: instance.log_since(start).count("Wrong call IP=") >= count,
               f"{count} 'Wrong call' lines", interval=0.02, last=lambda: instance.log_since(start))  # fmt: skip
    time.sleep(0.1)
    return instance.log_since(start)


def _assert_only_sipctl_lines(text: str, calls: int, log: Path, filter_file: Path) -> None:
    lines = text.splitlines()
    foreign = [line for line in lines if not ASTERISK_LINE.match(line)]
    assert not foreign, f"lines Asterisk did not write: {foreign}\n{text}"
    wrong = [line for line in lines if "Wrong call" in line]
    assert len(wrong) == calls and all(SIPCTL_WRONG_CALL.search(w) for w in wrong), text
    assert "rejected because" not in text and "Good call" not in text, text
    log.write_text(text)
    assert fail2ban_regex(log, filter_file) == ["127.0.0.1"] * calls, text


@pytest.mark.asterisk
def test_sipctl_guest_dialplan_lets_no_caller_forge_a_line(
    sipctl_pbx: AsteriskInstance, sipctl_filter: Path, tmp_path: Path
) -> None:
    """sipctl's own Asterisk layer (render_asterisk), live: forged lines must not count."""
    start = sipctl_pbx.log_size()
    for name in NEWLINE_NAMES:
        send(Probe("forged line", "INVITE", name), sipctl_pbx.sip_port)
    text = _wrong_call_lines(sipctl_pbx, start, len(NEWLINE_NAMES))
    assert "6.6.6." not in text, text
    _assert_only_sipctl_lines(text, len(NEWLINE_NAMES), tmp_path / "messages", sipctl_filter)


@pytest.mark.asterisk
def test_a_guest_message_runs_no_dialplan(
    sipctl_pbx: AsteriskInstance, sipctl_filter: Path, tmp_path: Path
) -> None:
    """A stranger's MESSAGE never reaches the guest endpoint (asterisk.REFUSED_REQUESTS):
    401 for every name, one counted line each with the real address; no Dial of a user's
    phone."""
    assert "res_pjsip_messaging.so" in sipctl_pbx.rx("module show like messaging")
    start = sipctl_pbx.log_size()
    names = ("director", "nobody", *NEWLINE_NAMES)
    for name in names:
        statuses = send(Probe("message", "MESSAGE", name), sipctl_pbx.sip_port)
        assert statuses[-1:] == ["SIP/2.0 401 Unauthorized"], (name, statuses)
    every = rf"(?s)(Not match Endpoint ACL.*){{{len(names)}}}"
    text = sipctl_pbx.wait_log(every, start)
    assert not re.search(r"\[C-[0-9a-f]+\]", text), text  # no channel, so no dialplan
    log = tmp_path / "messages"
    log.write_text(text)
    assert fail2ban_regex(log, sipctl_filter) == ["127.0.0.1"] * len(names), text


# Dialled names a caller may send, as bytes (the Request-URI carries them %-escaped).
HOSTILE_NAMES: dict[str, bytes] = {
    "newline inside": f"x\n{FORGED.format(n=10)}\nz".encode(),
    "newline first": f"\n{FORGED.format(n=11)}\n".encode(),
    "CR LF": f"\r\n[Nov 26 16:00:00] {FORGED.format(n=12)}\r\n".encode(),
    "bare CR": f"a\r{FORGED.format(n=13)}".encode(),
    "newline alone": b"\n",
    "NUL first (PJSIP makes it s)": b"\x00\n" + FORGED.format(n=14).encode(),
    "NUL inside": b"ab\x00\ncd",
    "control bytes": bytes(range(1, 32)),
    "escape sequence": b"\x1b[2K\x1b[1Gfake",
    "DEL and 8-bit": b"\x7f\x80\xff\xfe",
    "UTF-8 name": "директор".encode(),
    "UTF-8 line separator": "a\u2028b\u0085c".encode(),
    "too long": b"y" * 300,
    "long, newline at 79": b"z" * 78 + b"\n" + FORGED.format(n=15).encode(),
    "percent and quotes": b"%25'\"\\;,()[]{}<> ",
    "a declared name and more": b"director\n",
    "no name (s)": b"",
    "the fixed extension": b"sipctl#wrong-name",
    "its alias": b"sipctlwrongname",
    "h with dashes (ends, logs nothing)": b"-h-",
    "only dashes (404, quotes dashes)": b"---",
    # Looked up in lower case by the catch-all (asterisk_lookup): only a declared name in
    # another case may ring; anything else, however close, is a wrong call.
    "a declared name in upper case": b"BOSS",
    "as the spec writes it": b"Boss",
    "another case, with a dash": b"Bo-ss",
    "another case, a comma and a priority": b"Boss,1",
    "another case, a comma and a context": b"default,BOSS,1",
    "another case, a label": b"Boss?x:y",
    "another case, a pipe": b"Boss|1",
    "another case, brackets": b"Boss(1)",
    "another case, a space": b"Boss ",
    "another case, a variable": b"${Boss}",
    "another case, a function": b"${SHELL(id)}Boss",
    "another case, an expression": b"$[1]Boss",
    "another case, a percent escape": b"Boss%2C1",
    "another case, NUL then more (Asterisk keeps the C string)": b"BOSS\x00,1",
    "another case, too long": b"BOSS" + b"x" * 200,
    "another case, 8-bit": b"B\xd0\xbess",
    "lower case plus a dash (Asterisk's own match: rings)": b"bo-ss",
    "h in upper case": b"H",
    "T and t": b"T",
    "s in upper case": b"S",
    "fax in upper case": b"FAX",
    "the fixed extension in upper case": b"SIPCTL#WRONG-NAME",
    "the unavailable extension in another case": b"Sipctl#unavailable",
    "the lookup's variable": b"SIPCTL_NAME",
    # chan_pjsip answers features.conf's pickupexten itself, before any dialplan (403, no
    # line): the guest's channel has no pickup code (GUEST_NO_PICKUP), so it is a name too.
    "the call pickup code": b"*8",
}
# The users of sipctl_pbx's spec, as the dialplan holds them.
DECLARED = (b"director", b"boss")


def _reached(dialled: bytes) -> bytes | None:
    """Which declared name a dialled name rings (None: a wrong call): Asterisk's own exact
    match first (it ignores "-"), then the catch-all's lookup in lower case."""
    exact = dialled.replace(b"-", b"")
    if exact in DECLARED:
        return exact
    folded = lookup_target(dialled)
    return folded if folded in DECLARED else None


def _call_and_check(pbx: AsteriskInstance, name: bytes, log: Path, filter_file: Path) -> None:
    """Dial ``name``; the log must then hold what sipctl's dialplan writes for it, no more."""
    # Hypothesis seeds `random` alike for every example, and SipCaller draws its Call-ID and
    # tags from it: the same Call-ID twice is one dialog to Asterisk, and the BYE goes unheard.
    random.seed(uuid.uuid4().int)
    start = pbx.log_size()
    with SipCaller(pbx.sip_port) as caller:
        result = caller.invite(quote_from_bytes(name, safe=""), hold=0.05, timeout=4.0)
    dialled = name.split(b"\x00", 1)[0][:79]  # a C string of AST_MAX_EXTENSION
    looked_up = dialled.replace(b"-", b"")  # Asterisk ignores "-" when it matches
    reached = _reached(dialled)
    if reached == b"director":
        return  # its phone rings for long: a good call (tested elsewhere)
    if reached is not None:
        # Boss's phone is never registered: Good call, then Unavailable call, nothing else
        text = pbx.wait_log(r"Unavailable call IP=127\.0\.0\.1", start)
        # the line names the extension: "boss", or as dialled when Asterisk matched it
        # itself ("bo-ss": it ignores dashes); the lookup jumps to "boss"
        good = re.search(r"Ext\. ([a-z-]+): Good call IP=127\.0\.0\.1$", text, re.M)
        assert good and good[1].replace("-", "") == "boss", text
        assert "Wrong call" not in text, (name, text)
        assert not [line for line in text.splitlines() if not ASTERISK_LINE.match(line)], text
        return
    if dialled and not looked_up:
        # Only dashes: no pattern matches the empty name, so Asterisk answers 404 with its
        # own "not found" NOTICE, which then quotes nothing but dashes.
        assert result.final == 404, (name, result.statuses)
        text = pbx.wait_log(r"rejected because extension not found", start)
        assert re.search(r"to extension '-+' rejected", text), text
        assert not [line for line in text.splitlines() if not ASTERISK_LINE.match(line)], text
        log.write_text(text)
        assert fail2ban_regex(log, filter_file) == ["127.0.0.1"], text
        return
    assert 200 in result.statuses, (name, result.statuses)  # the catch-all answered
    text = _wrong_call_lines(pbx, start, 1)
    _assert_only_sipctl_lines(text, 1, log, filter_file)


@pytest.mark.asterisk
@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_every_hostile_name_leaves_one_fixed_line(
    sipctl_pbx: AsteriskInstance, sipctl_filter: Path, tmp_path: Path, name: bytes
) -> None:
    _call_and_check(sipctl_pbx, name, tmp_path / "messages", sipctl_filter)


@pytest.mark.asterisk
def test_the_pickup_code_is_a_wrong_name_for_guests_and_pickup_for_phones(
    sipctl_pbx: AsteriskInstance, sipctl_filter: Path, tmp_path: Path
) -> None:
    """The PBX's pickup code is the stock ``*8``; a guest who dials it is logged like any
    wrong name (test_every_hostile_name_leaves_one_fixed_line), while an office phone that
    dials it still reaches Asterisk's call pickup: 403 with no call to pick up, no dialplan."""
    shown = sipctl_pbx.rx("features show")
    assert re.search(r"^Pickup\s+\*8\s+\*8\s*$", shown, re.M), shown
    start = sipctl_pbx.log_size()
    with SipCaller(sipctl_pbx.sip_port) as phone:
        result = phone.invite("*8", auth=("105", "secret105"), timeout=4.0)
    assert result.final == 403, result.statuses
    time.sleep(0.2)
    text = sipctl_pbx.log_since(start)
    assert "Wrong call" not in text and "Ext. " not in text, text
    _call_and_check(sipctl_pbx, b"*8", tmp_path / "messages", sipctl_filter)


def _near_a_name() -> st.SearchStrategy[bytes]:
    """A declared name in some case with bytes put before, inside or after it."""
    cases = st.sampled_from(DECLARED).flatmap(
        lambda n: st.lists(st.booleans(), min_size=len(n), max_size=len(n)).map(
            lambda up: bytes(
                c - 32 if u and 97 <= c <= 122 else c for c, u in zip(n, up, strict=True)
            )
        )
    )
    extra = st.binary(min_size=0, max_size=6) | st.sampled_from(
        [b",", b",1", b"-", b"(", b")", b"${", b"}", b"|", b" ", b"%", b"\n", b"."]
    )
    return st.tuples(cases, st.integers(0, 8), extra).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    )


@pytest.mark.asterisk
@settings(
    max_examples=examples(15),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.binary(min_size=1, max_size=120)
    | st.sampled_from([b"h", b"-t-", b"--"])
    | _near_a_name()
)
def test_any_dialled_bytes_leave_only_sipctl_lines(
    sipctl_pbx: AsteriskInstance, sipctl_filter: Path, tmp_path: Path, name: bytes
) -> None:
    _call_and_check(sipctl_pbx, name, tmp_path / "messages", sipctl_filter)


if __name__ == "__main__":
    with running_asterisk() as pbx:
        captured = capture(pbx)
    DATA.mkdir(exist_ok=True)
    CAPTURED.write_text(captured)
    print(f"wrote {CAPTURED}: {len(captured.splitlines())} lines")
