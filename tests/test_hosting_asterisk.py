"""A PBX host serving two customer domains, against the real Asterisk 22.

Both customers have a ``director`` at extension 105, each in its own ``local_context``: a
call to each domain rings that customer's phone (real SIP, RTP both ways); a name only the
other customer has, or a domain no customer has, is a wrong call logged with the domain,
and sipctl's fail2ban filter takes the caller's address from those real lines. Both
customers have a room ``meeting``: two conferences, each reached at its own domain only.
A customer whose file is gone is removed (its rooms too) and the other keeps working.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from asterisk_helpers import apply_spec, pending_changes
from fixtures.asterisk import AsteriskInstance
from fixtures.fail2ban_reader import fail2ban_regex
from fixtures.hosting import (
    TWO_CUSTOMERS,
    host_spec,
    write_hoster,
)
from fixtures.rtp_phone import AnsweringPhone, CallerMedia
from fixtures.sip_client import SipCaller
from fixtures.waiting import wait_until

from sipctl.providers.asterisk.rooms import parse_confbridge_list
from sipctl.reconciler.render.fail2ban import HOSTING_FILTER_TEXT

pytestmark = pytest.mark.asterisk


@pytest.fixture(scope="module")
def hoster(hosting_pbx: AsteriskInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hoster's directory: host pbx1, customers a.example and b.example, applied."""
    return write_hoster(tmp_path_factory.mktemp("hoster"), host_spec(hosting_pbx), TWO_CUSTOMERS)


def _call(hosting_pbx: AsteriskInstance, user: str, domain: str) -> tuple[list[int], CallerMedia]:
    media = CallerMedia()
    try:
        with SipCaller(hosting_pbx.sip_port) as caller:
            result = caller.invite(
                user, domain=domain, timeout=8.0, hold=1.0, sdp=media.offer(),
                on_answer=media.answered,
            )  # fmt: skip
    finally:
        media.close()
    return result.statuses, media


def test_the_plan_is_done(hoster: Path) -> None:
    assert pending_changes(hoster / "pbx1.yaml") == []


@pytest.mark.parametrize(("domain", "which"), [("a.example", 0), ("b.example", 1)])
def test_each_domain_rings_its_own_customers_phone(
    hosting_pbx: AsteriskInstance,
    hoster: Path,
    hosting_phones: tuple[AnsweringPhone, AnsweringPhone],
    domain: str,
    which: int,
) -> None:
    statuses, media = _call(hosting_pbx, "director", domain)
    assert 200 in statuses, statuses
    rang, other = hosting_phones[which], hosting_phones[1 - which]
    assert len(rang.invites) == 1 and not other.invites
    # RTP both ways: ours reached the phone, Asterisk's reached us
    assert media.sent >= 20 and rang.rtp_received >= 20, (media.sent, rang.rtp_received)
    assert len(media.received) >= 20, len(media.received)


def test_the_domain_is_folded_as_callers_write_it(
    hosting_pbx: AsteriskInstance,
    hoster: Path,
    hosting_phones: tuple[AnsweringPhone, AnsweringPhone],
) -> None:
    statuses, _ = _call(hosting_pbx, "Director", "A.Example.")
    assert 200 in statuses, statuses
    assert len(hosting_phones[0].invites) == 1 and not hosting_phones[1].invites


@pytest.mark.parametrize(
    ("user", "domain", "logged"),
    [
        ("alex", "b.example", "b.example"),  # a's name, at b: b's guests never reach a's
        ("boardroom", "b.example", "b.example"),  # a's room, at b
        ("sipctl-rooms-a.example", "b.example", "b.example"),  # a's rooms context by name
        ("director", "c.example", "c.example"),  # no customer's domain
        ("director", "127.0.0.1", "127.0.0.1"),  # the PBX's address is no customer's domain
        ("director", "h", "h"),  # a domain named like Asterisk's hangup extension
        ("h", "a.example", ""),  # the hangup extension dialled: before any of our steps
        ("H", "a.example", "a.example"),  # in another case: folded to h, then the same
        # a's declared name in another case with more: folded, the rest is no name's
        ("Direc-tor", "a.example", "a.example"),
        ("Director%2C1", "a.example", "a.example"),
        ("DIRECTOR%20", "a.example", "a.example"),
        ("Director(1)", "a.example", "a.example"),
        ("%24%7BDirector%7D", "a.example", "a.example"),
        ("ALEX", "b.example", "b.example"),  # a's name, at b, in another case
    ],
)
def test_a_name_or_domain_no_customer_declared_is_a_wrong_call(
    hosting_pbx: AsteriskInstance,
    hoster: Path,
    hosting_phones: tuple[AnsweringPhone, AnsweringPhone],
    user: str,
    domain: str,
    logged: str,
) -> None:
    offset = hosting_pbx.log_size()
    statuses, _ = _call(hosting_pbx, user, domain)
    assert not hosting_phones[0].invites and not hosting_phones[1].invites
    text = hosting_pbx.wait_log(rf"Wrong call IP=127\.0\.0\.1 domain={re.escape(logged)}$", offset)
    assert re.search(rf"Wrong call IP=127\.0\.0\.1 domain={re.escape(logged)}\n", text), text
    assert statuses, statuses


def test_a_comma_in_the_name_writes_no_caller_line(
    hosting_pbx: AsteriskInstance, hoster: Path
) -> None:
    offset = hosting_pbx.log_size()
    with SipCaller(hosting_pbx.sip_port) as caller:
        caller.invite("x%2Cbad%0AWrong%20call%20IP=6.6.6.6", domain="a.example", timeout=4)
    text = hosting_pbx.wait_log(r"Wrong call IP=127\.0\.0\.1 domain=a\.example$", offset)
    assert "6.6.6.6" not in text, text


def test_the_filter_takes_the_callers_address_from_the_real_lines(
    hosting_pbx: AsteriskInstance, hoster: Path, tmp_path: Path
) -> None:
    offset = hosting_pbx.log_size()
    for domain in ("a.example", "b.example", "c.example"):
        with SipCaller(hosting_pbx.sip_port) as caller:
            caller.invite("nobody", domain=domain, timeout=4)
    text = hosting_pbx.wait_log(r"domain=c\.example$", offset)
    assert text.count("Wrong call IP=127.0.0.1 domain=") == 3, text
    log = tmp_path / "messages"
    log.write_text(text)
    filter_file = tmp_path / "sipctl-asterisk.conf"
    filter_file.write_text(HOSTING_FILTER_TEXT)
    assert fail2ban_regex(log, filter_file) == ["127.0.0.1"] * 3


def _conferences(hosting_pbx: AsteriskInstance) -> dict[str, int]:
    """``confbridge list``: each conference's name and how many are in it."""
    rooms = parse_confbridge_list(hosting_pbx.rx("confbridge list"))
    return {name: facts.members for name, facts in rooms.items()}


def _join_in_thread(hosting_pbx: AsteriskInstance, room: str, domain: str) -> threading.Thread:
    def call() -> None:
        with SipCaller(hosting_pbx.sip_port) as caller:
            caller.invite(room, domain=domain, hold=4.0, timeout=12.0)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def test_the_same_room_name_at_two_customers_is_two_conferences(
    hosting_pbx: AsteriskInstance, hoster: Path
) -> None:
    offset = hosting_pbx.log_size()
    callers = [
        _join_in_thread(hosting_pbx, "meeting", "a.example"),
        _join_in_thread(hosting_pbx, "Meeting", "B.example."),  # any case, a trailing dot
        _join_in_thread(hosting_pbx, "meeting", "b.example"),
    ]
    wanted = {"meeting@a.example": 1, "meeting@b.example": 2}
    wait_until(lambda: _conferences(hosting_pbx) == wanted, f"the rooms {wanted}", interval=0.1,
               last=lambda: hosting_pbx.rx("confbridge list"))  # fmt: skip
    for thread in callers:
        thread.join(timeout=15)
    text = hosting_pbx.wait_log(r"(?s)(Room left.*){3}", offset)
    assert len(re.findall(r"Room join ROOM=meeting@a\.example MEMBERS=0/5 IP=127", text)) == 1
    assert len(re.findall(r"Room join ROOM=meeting@b\.example MEMBERS=\d/5 IP=127", text)) == 2
    assert "Wrong call" not in text, text
    profiles = hosting_pbx.rx("confbridge show profile bridges")
    assert "sipctl-room-meeting@a.example" in profiles, profiles
    assert "sipctl-room-meeting@b.example" in profiles, profiles


def test_a_customers_phones_reach_its_own_rooms_only(
    hosting_pbx: AsteriskInstance, hoster: Path
) -> None:
    """Each local_context includes its customer's rooms context, and no other."""
    a = hosting_pbx.rx("dialplan show meeting@a-phones")
    assert "ConfBridge(meeting@a.example," in a and "b.example" not in a, a
    b = hosting_pbx.rx("dialplan show boardroom@b-phones")
    assert "ConfBridge" not in b, b


def test_removing_a_customers_file_removes_the_customer_only(
    hosting_pbx: AsteriskInstance,
    hoster: Path,
    hosting_phones: tuple[AnsweringPhone, AnsweringPhone],
) -> None:
    dialplan = hosting_pbx.config_dir / "extensions_sipctl.conf"
    before = dialplan.read_text()
    a_lines = [ln for ln in before.splitlines() if "a.example" in ln]
    (hoster / "b.yaml").unlink()
    apply_spec(hoster / "pbx1.yaml")
    after = dialplan.read_text()
    assert "b.example" not in after
    assert [ln for ln in after.splitlines() if "a.example" in ln] == a_lines
    # its rooms went with it: the bridge profiles too, and a's stayed
    assert "b.example" not in (hosting_pbx.config_dir / "confbridge_sipctl.conf").read_text()
    profiles = hosting_pbx.rx("confbridge show profile bridges")
    assert "sipctl-room-meeting@b.example" not in profiles, profiles
    assert "sipctl-room-meeting@a.example" in profiles, profiles
    offset = hosting_pbx.log_size()
    statuses, _ = _call(hosting_pbx, "director", "b.example")
    hosting_pbx.wait_log(r"Wrong call IP=127\.0\.0\.1 domain=b\.example$", offset)
    assert not hosting_phones[1].invites
    statuses, _ = _call(hosting_pbx, "director", "a.example")
    assert 200 in statuses and len(hosting_phones[0].invites) == 1, statuses
