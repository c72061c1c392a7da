"""Calls by SIPp (Debian's sip-tester), a SIP tester users trust, against the Asterisk 22 chroot.

The promise, seen by a client that is not ours: ``sip:director@mysite.ru`` rings the
director's phone (extension 105, a static contact at 127.0.0.1:<phone_port>, here a SIPp UAS
that answers), and any other name is answered with the reject sound, hung up and logged
"Wrong call" with the caller's address, which sipctl's fail2ban filter takes. With
``unknown_callers: not-found`` an unknown name is refused 404 unanswered, and the line naming
the caller's address is Asterisk's own "extension not found" NOTICE (no "Wrong call" line).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from asterisk_helpers import apply_spec, spec_data, write_spec
from fixtures.asterisk import AsteriskInstance
from fixtures.common import free_port, require
from fixtures.fail2ban_reader import fail2ban_regex
from fixtures.waiting import wait_until

from sipctl.reconciler.render.fail2ban import FILTER_TEXT

pytestmark = pytest.mark.asterisk

SIPP_SECONDS = 20  # sipp's own -timeout; the test waits a little longer for its exit

# The parts of a dialog every request after the INVITE carries.
_DIALOG = """\
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@mysite.ru>[peer_tag_param]
Call-ID: [call_id]
Max-Forwards: 70
"""

_SEND_INVITE = f"""\
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@mysite.ru SIP/2.0
{_DIALOG}CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

    ]]>
  </send>
"""

# The call is answered (by the phone or by the PBX's own sound) and acknowledged.
_INVITE = f"""\
{_SEND_INVITE}  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
[routes]
{_DIALOG}CSeq: 1 ACK
Content-Length: 0

    ]]>
  </send>
"""

# The caller talks a second, then hangs up; the PBX must confirm the BYE.
CALLER_HANGS_UP = f"""\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipctl: a guest calls and hangs up">
{_INVITE}
  <pause milliseconds="1000"/>
  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
[routes]
{_DIALOG}CSeq: 2 BYE
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""

# A wrong name is answered (the reject sound plays) and the PBX hangs up by itself.
PBX_HANGS_UP = f"""\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipctl: a guest dials a wrong name">
{_INVITE}
  <recv request="BYE"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
</scenario>
"""

# ``unknown_callers: not-found``: a wrong name is refused with 404, never answered. The ACK
# of a final non-2xx response belongs to the INVITE's transaction: its Via (branch) and URI.
NOT_FOUND = f"""\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipctl: a guest dials a wrong name and is refused">
{_SEND_INVITE}  <recv response="100" optional="true"/>
  <recv response="404"/>
  <send>
    <![CDATA[
ACK sip:[service]@mysite.ru SIP/2.0
[last_Via:]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@mysite.ru>[peer_tag_param]
Call-ID: [call_id]
Max-Forwards: 70
CSeq: 1 ACK
Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def sipp_program() -> str:
    program = shutil.which("sipp")
    require(program is not None, "sipp (package sip-tester)")
    assert program is not None
    return program


def _udp_bound(port: int) -> bool:
    """Whether some socket on this host is bound to UDP ``port`` (the SIPp phone is ready)."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            if line.split()[1].endswith(wanted):
                return True
    return False


class Sipp:
    """One sipp process this test started; stopped by its pid only."""

    def __init__(self, args: list[str], workdir: Path, name: str) -> None:
        self.output = workdir / f"{name}.out"
        self.workdir = workdir
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sipp_program(), *args,
                    "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", str(free_port()),
                    "-t", "u1", "-m", "1", "-timeout", f"{SIPP_SECONDS}s",
                    "-nostdin", "-trace_err", "-error_file", str(workdir / f"{name}.errors"),
                ],
                cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=SIPP_SECONDS + 10)
        except subprocess.TimeoutExpired:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # by the pid Popen holds: only the sipp this test started
            self.proc.wait(timeout=10)

    def report(self) -> str:
        errors = self.workdir / f"{self.output.stem}.errors"
        text = errors.read_text(errors="replace") if errors.exists() else ""
        return self.output.read_text(errors="replace")[-3000:] + text[-3000:]


@pytest.fixture(scope="module")
def applied(asterisk: AsteriskInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default spec (director is 105) applied once for the module."""
    spec = write_spec(tmp_path_factory.mktemp("spec"), spec_data(asterisk))
    apply_spec(spec)
    return spec


def _call(asterisk: AsteriskInstance, name: str, scenario: str, tmp_path: Path) -> Sipp:
    path = tmp_path / "caller.xml"
    path.write_text(scenario)
    caller = Sipp(
        ["-sf", str(path), "-s", name, f"127.0.0.1:{asterisk.sip_port}"], tmp_path, "caller"
    )
    code = caller.wait()
    assert code == 0, f"sipp caller exited {code}:\n{caller.report()}"
    return caller


@pytest.fixture
def sipp_phone(asterisk: AsteriskInstance, tmp_path: Path) -> Iterator[Sipp]:
    """Extension 105's phone: SIPp's own UAS on the static contact's port; it answers."""
    phone = Sipp(["-sn", "uas", "-p", str(asterisk.phone_port)], tmp_path, "phone")
    try:
        wait_until(
            lambda: _udp_bound(asterisk.phone_port) or phone.proc.poll() is not None,
            "the SIPp phone bound its port",
        )
        assert phone.proc.poll() is None, phone.report()
        yield phone
    finally:
        phone.stop()


def test_sipp_calls_the_director_and_the_phone_answers(
    asterisk: AsteriskInstance, applied: Path, sipp_phone: Sipp, tmp_path: Path
) -> None:
    offset, full = asterisk.log_size(), asterisk.log_size(asterisk.full_log_path)
    _call(asterisk, "director", CALLER_HANGS_UP, tmp_path)
    # the PBX passed the caller's BYE on to the phone: SIPp's UAS completed its one call
    code = sipp_phone.wait()
    assert code == 0, f"sipp phone exited {code}:\n{sipp_phone.report()}"
    text = asterisk.wait_log(r"Good call IP=127\.0\.0\.1\n", offset)
    assert re.search(
        r"NOTICE\[\d+\]\[C-[0-9a-f]+\] Ext\. director: Good call IP=127\.0\.0\.1\n", text
    ), text
    assert "Wrong call" not in text and "Unavailable call" not in text, text
    # the caller's 200 came from the phone, not from a sound the PBX played itself
    verbose = asterisk.wait_log(r"PJSIP/105-\w+ answered", full, asterisk.full_log_path)
    assert "Playback(" not in verbose, verbose


def test_sipp_calls_an_unknown_name_and_fail2ban_takes_its_address(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path
) -> None:
    offset = asterisk.log_size()
    _call(asterisk, "nobody", PBX_HANGS_UP, tmp_path)
    text = asterisk.wait_log(r"Wrong call IP=127\.0\.0\.1\n", offset)
    assert re.search(
        r"WARNING\[\d+\]\[C-[0-9a-f]+\] Ext\. sipctl#wrong-name: Wrong call IP=127\.0\.0\.1\n",
        text,
    ), text
    assert "Good call" not in text and "nobody" not in text, text
    log = tmp_path / "messages"
    log.write_text(text)
    filter_file = tmp_path / "sipctl-asterisk.conf"
    filter_file.write_text(FILTER_TEXT)
    assert fail2ban_regex(log, filter_file) == ["127.0.0.1"], text


def test_sipp_is_refused_404_for_an_unknown_name_in_not_found_mode(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, spec_data(asterisk, unknown_callers="not-found"))
    apply_spec(spec)
    try:
        offset = asterisk.log_size()
        _call(asterisk, "nobody", NOT_FOUND, tmp_path)
        # no "Wrong call" line in this mode: Asterisk's own NOTICE names the caller's address
        text = asterisk.wait_log(r"rejected because extension not found", offset)
        assert re.search(
            r"NOTICE\[\d+\] res_pjsip_session\.c: +sipctl-guest: Call \(UDP:127\.0\.0\.1:\d+\) "
            r"to extension 'nobody' rejected because extension not found",
            text,
        ), text
        assert "Wrong call" not in text and "Good call" not in text, text
    finally:
        apply_spec(applied)
