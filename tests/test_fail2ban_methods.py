"""A scanner that never calls, against a real Asterisk 22 and a real fail2ban, in namespaces.

Before: a stranger's SUBSCRIBE, PUBLISH, MESSAGE (REFER, NOTIFY, INFO, ...) reached the
guest endpoint ``anonymous`` and was refused with lines that name no address (603
"Subscriptions not permitted for endpoint anonymous", 489, 404 with no line at all), so
fail2ban never counted them. sipctl's guest endpoint is now found by the request's method
(GUEST_REQUESTS: INVITE and OPTIONS); every other request from a stranger is refused
(REFUSED_REQUESTS), answered 401 and logged with the caller's address, which sipctl's filter
counts. tests/test_guest_methods.py sends every method to every endpoint a stranger reaches.

The lab is test_audit_ban's: the Asterisk and fail2ban layers applied by sipctl, the PBX and
fail2ban-server in a server namespace, the scanner in a client namespace the jail does not
ignore.
"""

from __future__ import annotations

import shutil
import socket
import time
import uuid
from pathlib import Path

import pytest
from asterisk_helpers import apply_spec, spec_data, write_spec
from fixtures.asterisk import running_asterisk
from fixtures.common import require
from fixtures.fail2ban_reader import fail2ban_regex
from fixtures.sip_client import SipCaller
from fixtures.waiting import wait_until
from test_audit_ban import BanLab, ban_lab

from sipctl.reconciler.render.fail2ban import FILTER_TEXT

pytestmark = [pytest.mark.asterisk, pytest.mark.netns]

MAXRETRY = 3
JAIL = "sipctl-asterisk"
# What a scanner sends besides calls, with the headers each needs to be taken seriously.
METHODS: dict[str, list[str]] = {
    "SUBSCRIBE": ["Event: presence", "Expires: 60", "Accept: application/pidf+xml"],
    "PUBLISH": ["Event: presence", "Expires: 60", "Content-Type: application/pidf+xml"],
    "MESSAGE": ["Content-Type: text/plain"],
    "REFER": ["Refer-To: <sip:105@mysite.ru>"],
    "NOTIFY": ["Event: check-sync", "Subscription-State: active"],
    "INFO": [],
    "REGISTER": ["Expires: 60"],
}


def send(lab: BanLab, method: str, user: str = "director", cseq: str = "") -> str | None:
    """One request from the client namespace; the final status line, None when unanswered."""
    host, port = lab.link.a_ip, lab.pbx.sip_port
    with lab.client.entered(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((lab.link.b_ip, 0))
        local = sock.getsockname()[1]
        uri = f"sip:{user}@{host}:{port}"
        body = "hello" if method == "MESSAGE" else ""
        head = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {lab.link.b_ip}:{local};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport",
            "Max-Forwards: 70",
            f"From: <sip:scanner@{lab.link.b_ip}>;tag={uuid.uuid4().hex[:8]}",
            f"To: <{uri}>",
            f"Call-ID: {uuid.uuid4().hex}",
            f"CSeq: 1 {cseq or method}",
            f"Contact: <sip:scanner@{lab.link.b_ip}:{local}>",
            *METHODS.get(method, []),
            f"Content-Length: {len(body)}",
        ]
        sock.sendto(("\r\n".join(head) + "\r\n\r\n" + body).encode(), (host, port))
        sock.settimeout(1.5)
        try:
            while True:
                status = sock.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
                if status.startswith("SIP/2.0 ") and not status.startswith("SIP/2.0 1"):
                    return status
        except OSError:
            return None


def banned(lab: BanLab) -> list[str]:
    status = lab.fail2ban("status", JAIL, check=True).stdout
    return status.split("Banned IP list:", 1)[1].split()


def failures(lab: BanLab) -> int:
    status = lab.fail2ban("status", JAIL, check=True).stdout
    return int(status.split("Total failed:", 1)[1].split()[0])


def test_each_method_but_invite_and_options_is_refused_and_logged_with_the_address(
    tmp_path: Path,
) -> None:
    """Every method a stranger may send out of a dialog: 401 and one counted line each, to
    a declared name and to an undeclared one; under maxretry, no ban yet."""
    with ban_lab(tmp_path, maxretry=100) as lab:
        start = lab.pbx.log_size()
        for method in METHODS:
            for user in ("director", "nobody"):
                assert send(lab, method, user) == "SIP/2.0 401 Unauthorized", (method, user)
        wanted = 2 * len(METHODS)
        wait_until(lambda: failures(lab) >= wanted, f"{wanted} failures", interval=0.2,
                   last=lambda: lab.pbx.log_since(start))  # fmt: skip
        text = lab.pbx.log_since(start)
        for method in METHODS:
            line = (
                f"Request '{method}' from '<sip:scanner@{lab.link.b_ip}>' failed for "
                f"'{lab.link.b_ip}:"
            )
            assert text.count(line) == 2, (method, text)
        assert failures(lab) == wanted and banned(lab) == []


def test_a_scanner_that_only_subscribes_publishes_and_messages_is_banned(
    tmp_path: Path,
) -> None:
    """sipvicious' svmap with -m SUBSCRIBE, PUBLISH, MESSAGE: one request each, and the
    third makes maxretry: the scanner's address is banned, and the PBX stops answering it."""
    svmap = shutil.which("sipvicious_svmap") or str(Path(".venv/bin/sipvicious_svmap").resolve())
    require(Path(svmap).exists(), "sipvicious_svmap (pip install sipvicious)")
    with ban_lab(tmp_path, maxretry=MAXRETRY) as lab:
        b_ip = lab.link.b_ip
        for n, method in enumerate(("SUBSCRIBE", "PUBLISH", "MESSAGE"), start=1):
            scan = lab.client.run(
                svmap, "-m", method, "-b", b_ip, "-x", b_ip, "-p", str(lab.pbx.sip_port),
                "-t", "0.2", lab.link.a_ip, check=False, timeout=60,
            )  # fmt: skip
            assert scan.returncode == 0, scan.stdout + scan.stderr
            if n < MAXRETRY:
                wait_until(lambda n=n: failures(lab) >= n, f"{n} failures", interval=0.2)
                assert banned(lab) == [], (method, lab.pbx.log_since(0)[-2000:])
        wait_until(lambda: b_ip in banned(lab), f"{b_ip} banned", interval=0.2,
                   last=lambda: lab.pbx.log_since(0)[-3000:])  # fmt: skip
        assert send(lab, "OPTIONS") is None  # dropped by the ban's firewall rule


def test_calls_options_and_dialogs_are_never_counted(tmp_path: Path) -> None:
    """No false positive, on a PBX on loopback with sipctl's Asterisk layer and filter: a
    stranger's OPTIONS (every name 200, as before; `sipctl verify` and monitors send it), an
    office phone's OPTIONS keepalive (challenged as before, no line), and a guest's call to a
    declared name with its in-dialog ACK and BYE (the dialog's endpoint, never identified
    again)."""
    with running_asterisk() as pbx:
        apply_spec(write_spec(tmp_path, spec_data(pbx)))
        start = pbx.log_size()
        with SipCaller(pbx.sip_port) as caller:
            for user in ("director", "nobody", "105"):
                assert caller.options(user).final == 200, user
            keepalive = caller.options("105", from_user="105")
            assert keepalive.final == 401, keepalive.statuses  # the phone then answers it
            # 101 is never registered: Dial fails, the caller hears unavailable_sound
            # (answered), and the caller's BYE ends the call
            call = caller.invite("101", hold=0.3, timeout=6.0)
        assert 200 in call.statuses, call.statuses
        pbx.wait_log(r"Unavailable call IP=127\.0\.0\.1", start)
        time.sleep(0.5)  # the BYE's answer and whatever it logs
        text = pbx.log_since(start)
    log = tmp_path / "messages"
    log.write_text(text)
    filter_file = tmp_path / "sipctl-asterisk.conf"
    filter_file.write_text(FILTER_TEXT)
    assert fail2ban_regex(log, filter_file) == [], text
    assert "failed for" not in text and "Wrong call" not in text, text


def test_a_forged_cseq_on_a_subscribe_is_refused_and_counted(tmp_path: Path) -> None:
    """The method is read from CSeq, the caller's text: a SUBSCRIBE that writes "1 INVITE"
    there passes the method's identify section, but its Event header finds
    sipctl-0-refused-event first (asterisk.REFUSED_REQUESTS): 401 and one counted line (it
    was refused unlogged, 603, before). What a forged CSeq still gets unlogged is listed in
    test_guest_methods.UNLOGGED."""
    with ban_lab(tmp_path, maxretry=100) as lab:
        assert send(lab, "SUBSCRIBE", cseq="INVITE") == "SIP/2.0 401 Unauthorized"
        wait_until(lambda: failures(lab) == 1, "1 failure", interval=0.2,
                   last=lambda: lab.pbx.log_since(0)[-2000:])  # fmt: skip


def test_sipp_reference_client_messages_are_refused_401(tmp_path: Path) -> None:
    """SIPp (Debian's sip-tester) sending MESSAGE from a scenario: 401, counted."""
    require(shutil.which("sipp") is not None, "sipp (Debian package sip-tester)")
    scenario = tmp_path / "message.xml"
    scenario.write_text(
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        '<scenario name="message">\n'
        '  <send retrans="500"><![CDATA[\n'
        "MESSAGE sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n"
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        "From: <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]\n"
        "To: <sip:[service]@[remote_ip]:[remote_port]>\n"
        "Call-ID: [call_id]\n"
        "CSeq: 1 MESSAGE\n"
        "Max-Forwards: 70\n"
        "Content-Type: text/plain\n"
        "Content-Length: [len]\n"
        "\n"
        "hello\n"
        "  ]]></send>\n"
        '  <recv response="401"/>\n'
        "</scenario>\n"
    )
    with ban_lab(tmp_path, maxretry=100) as lab:
        run = lab.client.run(
            "sipp", "-sf", str(scenario), "-s", "director", "-m", "1", "-i", lab.link.b_ip,
            "-timeout", "10", "-nostdin", f"{lab.link.a_ip}:{lab.pbx.sip_port}",
            check=False, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        wait_until(lambda: failures(lab) >= 1, "SIPp's MESSAGE counted", interval=0.2)
