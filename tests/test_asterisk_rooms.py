"""Rooms, video, ring groups and unreachable names against a real Asterisk 22.

One Asterisk serves the module (its own instance); each test applies the spec it needs.
Callers are tests/fixtures/sip_client.py; phones register with digest auth like desk phones.
"""

from __future__ import annotations

import json
import random
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asterisk_helpers import (
    Phone,
    RingingPhone,
    apply_spec,
    pending_changes,
    spec_data,
    write_spec,
    zone_records,
)
from fixtures.asterisk import AsteriskInstance
from fixtures.bind import BindServer
from fixtures.sip_client import AUDIO_OFFER, VIDEO_OFFER, SipCaller, SipResult
from fixtures.waiting import wait_until

from sipctl.cli import run
from sipctl.providers.asterisk.rooms import parse_confbridge_list
from sipctl.reconciler.render.asterisk_rooms import room_place
from sipctl.schemas.names import MAX_ASTERISK_NAME

pytestmark = pytest.mark.asterisk

ROOM_USERS = {"director": "105", "alex": "106"}


def _apply(pbx: AsteriskInstance, directory: Path, **extra: Any) -> Path:
    rooms = extra.pop("rooms", {"seminar": {"max_members": 2}})
    users = extra.pop("users", ROOM_USERS)
    data = spec_data(pbx, users, **extra)
    data["rooms"] = rooms
    spec = write_spec(directory, data)
    apply_spec(spec)
    assert pending_changes(spec) == []  # a second plan is empty
    return spec


def _video_port(sdp: str) -> int | None:
    match = re.search(r"^m=video (\d+) ", sdp, re.MULTILINE)
    return int(match.group(1)) if match else None


def _call_in_thread(
    pbx: AsteriskInstance, name: str, hold: float
) -> tuple[threading.Thread, list[SipResult]]:
    results: list[SipResult] = []

    def call() -> None:
        with SipCaller(pbx.sip_port) as caller:
            results.append(caller.invite(name, hold=hold, timeout=hold + 8.0))

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, results


def _room_members(pbx: AsteriskInstance, room: str) -> int:
    facts = parse_confbridge_list(pbx.rx("confbridge list")).get(room)
    return facts.members if facts is not None else 0


def _wait_members(pbx: AsteriskInstance, room: str, count: int) -> None:
    wait_until(lambda: _room_members(pbx, room) == count, f"{room} with {count} members",
               interval=0.1, last=lambda: pbx.rx("confbridge list"))  # fmt: skip


def test_rooms_live_in_sipctls_own_confbridge_file(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    assert not (asterisk.config_dir / "confbridge.conf").exists()
    _apply(asterisk, tmp_path)
    parent = (asterisk.config_dir / "confbridge.conf").read_text()
    # created minimal, with the one include line
    assert parent.splitlines()[-1] == "#include confbridge_sipctl.conf"
    assert len(parent.splitlines()) == 2
    profiles = asterisk.rx("confbridge show profile bridge sipctl-room-seminar")
    assert re.search(r"Max Members:\s+2", profiles), profiles
    # the local context reaches the room too (through sipctl-rooms)
    local = asterisk.rx("dialplan show seminar@default")
    assert "sipctl-rooms" in local and "ConfBridge(seminar" in local, local
    # ... in any case: the room's pattern in sipctl-rooms jumps to it
    local = asterisk.rx("dialplan show SeMiNaR@default")
    assert "_[sS][eE][mM][iI][nN][aA][rR]" in local and "Goto(seminar,1)" in local, local


def test_two_guests_meet_and_a_third_is_turned_away(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    _apply(asterisk, tmp_path)
    offset = asterisk.log_size()
    # one room whatever case a caller writes it in
    first, first_result = _call_in_thread(asterisk, "seminar", hold=6.0)
    second, second_result = _call_in_thread(asterisk, "Seminar", hold=6.0)
    _wait_members(asterisk, "seminar", 2)
    started = time.monotonic()
    with SipCaller(asterisk.sip_port) as caller:
        third = caller.invite("SEMINAR", hold=20.0, timeout=20.0)
    turned_away = time.monotonic() - started
    # answered, told (ConfBridge's "locked" sound), hung up by the PBX: a BYE, not ours
    assert 200 in third.statuses and third.bye_received, third.statuses
    assert turned_away < 15.0, turned_away
    assert _room_members(asterisk, "seminar") == 2
    for thread in (first, second):
        thread.join(timeout=20)
    assert first_result[0].final == 200 and second_result[0].final == 200
    text = asterisk.wait_log(r"Room left ROOM=seminar IP=127\.0\.0\.1\n(?s:.*)Room left", offset)
    joins = re.findall(
        r"Ext\. seminar: Room join ROOM=seminar MEMBERS=(\d)/2 IP=127\.0\.0\.1\n", text
    )
    assert len(joins) == 3 and joins[-1] == "2", text  # the third saw a full room
    assert "ERROR" not in "".join(line for line in text.splitlines() if "onfBridge" in line)
    assert "Wrong call" not in text


def test_a_room_of_the_longest_name_asterisk_keeps_is_joined(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    """79 characters: the conference's name as written (ConfBridge refuses 80), its bridge
    profile (sipctl-room-<name> would be cut) a digest that Asterisk keeps whole."""
    room = "7" * MAX_ASTERISK_NAME
    _apply(asterisk, tmp_path, rooms={room: {"max_members": 3}})
    profile = room_place(None).profile(room)
    assert len(profile) <= MAX_ASTERISK_NAME and profile != f"sipctl-room-{room}"
    shown = asterisk.rx(f"confbridge show profile bridge {profile}")
    assert re.search(r"Max Members:\s+3", shown), shown
    offset = asterisk.log_size()
    thread, results = _call_in_thread(asterisk, room, hold=4.0)
    _wait_members(asterisk, room, 1)  # confbridge list shows the room by its whole name
    thread.join(timeout=20)
    assert results and results[0].final == 200, results
    text = asterisk.wait_log(rf"Room left ROOM={room} IP=127\.0\.0\.1", offset)
    assert f"Room join ROOM={room} MEMBERS=0/3" in text, text
    assert "does not exist" not in text and "does not accept" not in text, text


def test_verify_says_how_many_are_in_each_room(
    asterisk: AsteriskInstance, bind: BindServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """verify reads ConfBridge through the asterisk target: an empty room is open with 0 in
    it, one caller makes it 1, a second fills it (max_members 2: the next is turned away)."""
    zone = bind.new_zone(extra=zone_records(asterisk.sip_port))
    data = spec_data(asterisk, ROOM_USERS)
    data["domain"] = zone
    data["servers"] = [{"host": f"pbx.{zone}", "ipv4": ["127.0.0.1"]}]
    data["rooms"] = {"seminar": {"max_members": 2}, "lobby": {"max_members": 5}}
    spec = write_spec(tmp_path, data)
    apply_spec(spec)
    verify = ["verify", "-f", str(spec), "--nameserver", bind.server]

    def rooms() -> dict[str, tuple[str, int | None]]:
        assert run([*verify, "--json"]) == 0
        [domain] = json.loads(capsys.readouterr().out)["domains"]
        names = domain["verify"]["names"]
        return {n["name"]: (n["state"], n["members"]) for n in names if n["kind"] == "room"}

    try:
        assert rooms() == {"lobby": ("open", 0), "seminar": ("open", 0)}
        first, _ = _call_in_thread(asterisk, "seminar", hold=8.0)
        _wait_members(asterisk, "seminar", 1)
        assert rooms() == {"lobby": ("open", 0), "seminar": ("open", 1)}
        assert run(verify) == 0
        text = capsys.readouterr().out
        assert "seminar (room): open, 1 in the room: " in text, text
        second, _ = _call_in_thread(asterisk, "seminar", hold=6.0)
        _wait_members(asterisk, "seminar", 2)
        assert rooms() == {"lobby": ("open", 0), "seminar": ("full", 2)}
        assert run(verify) == 0
        text = capsys.readouterr().out
        assert "seminar (room): full, 2 in the room: 2 of max_members 2" in text, text
        assert "callers of seminar are turned away now" in text, text
        for thread in (first, second):
            thread.join(timeout=20)
    finally:
        bind.delete_zone(zone)


def test_a_video_offer_to_a_room_gets_video_only_when_the_spec_allows_it(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    _apply(asterisk, tmp_path, video=False)
    with SipCaller(asterisk.sip_port) as caller:
        audio_only = caller.invite("seminar", sdp=VIDEO_OFFER, hold=0.3)
    assert audio_only.final == 200, audio_only.statuses  # answered, never refused
    assert _video_port(audio_only.answer_sdp) == 0, audio_only.answer_sdp  # video declined

    _apply(asterisk, tmp_path, video=True)
    endpoint = asterisk.rx("pjsip show endpoint sipctl-guest")
    assert re.search(r"allow\s*:\s*\(ulaw\|alaw\|g722\|gsm\|vp8\|h264\)", endpoint), endpoint
    bridge = asterisk.rx("confbridge show profile bridge sipctl-room-seminar")
    assert re.search(r"Video Mode:\s+follow_talker", bridge), bridge
    with SipCaller(asterisk.sip_port) as caller:
        video = caller.invite("seminar", sdp=VIDEO_OFFER, hold=0.3)
    assert video.final == 200, video.statuses
    port = _video_port(video.answer_sdp)
    assert port is not None and port > 0, video.answer_sdp
    assert re.search(r"a=rtpmap:\d+ (VP8|H264)/90000", video.answer_sdp), video.answer_sdp


def _answer_time(pbx: AsteriskInstance, name: str) -> tuple[list[int], float]:
    """What an outsider sees of one INVITE: the status codes and the time to the answer."""
    with SipCaller(pbx.sip_port) as caller:
        started = time.monotonic()
        result = caller.invite(name, hold=0.05)
    answered = next(
        (t for s, t in zip(result.statuses, result.times, strict=True) if s >= 200), 0.0
    )
    return result.statuses, answered - started


def test_declared_but_unreachable_looks_like_undeclared(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    """Enumeration by INVITE: busy (director: 105 answers 486), unregistered (alex: 106 has
    no phone yet), failing Dial (ghost: 107 is no endpoint) and undeclared names give the same
    codes, and answer times within the reject sound's own answer time of each other."""
    users = {"director": "105", "alex": "106", "ghost": "107"}
    _apply(asterisk, tmp_path, users=users, rooms={})
    busy = Phone(asterisk.phone_port)
    offset = asterisk.log_size()
    samples: dict[str, list[float]] = {"nobody": [], "alex": [], "director": [], "ghost": []}
    codes: dict[str, set[tuple[int, ...]]] = {name: set() for name in samples}
    try:
        for _ in range(5):
            for name in samples:
                statuses, elapsed = _answer_time(asterisk, name)
                codes[name].add(tuple(statuses))
                samples[name].append(elapsed)
    finally:
        busy.close()
    assert len(busy.invites) == 5  # director's phone did ring, and said busy
    assert all(seen == {(100, 200)} for seen in codes.values()), codes
    undeclared = statistics.median(samples["nobody"])
    for name in ("alex", "director", "ghost"):
        gap = abs(statistics.median(samples[name]) - undeclared)
        # the reject sound's answer time is the scale; 0.25 s of margin for a loaded machine
        assert gap < undeclared + 0.25, (name, samples)
    text = asterisk.log_since(offset)
    assert text.count("Wrong call") == 5 and text.count("Unavailable call") == 15, text
    print(
        "median answer time (s): "
        + ", ".join(f"{n} {statistics.median(v):.3f}" for n, v in samples.items())
    )


@pytest.fixture
def phones(asterisk: AsteriskInstance) -> Iterator[dict[str, Any]]:
    """106 and 101 registered and ringing for ever; 105 (the fixture's phone) answers busy."""
    ringing = {ext: RingingPhone(asterisk.sip_port, ext, f"secret{ext}") for ext in ("106", "101")}
    busy = Phone(asterisk.phone_port)
    yield {**ringing, "105": busy}
    for phone in ringing.values():
        phone.close()
    busy.close()


def test_a_ring_group_rings_both_then_the_fallback(
    asterisk: AsteriskInstance, tmp_path: Path, phones: dict[str, Any]
) -> None:
    users = {"sales": {"ring": ["106", "101"], "timeout": 3, "fallback": "105"}}
    _apply(asterisk, tmp_path, users=users, rooms={})
    offset = asterisk.log_size()
    started = time.monotonic()
    with SipCaller(asterisk.sip_port) as caller:
        result = caller.invite("sales", hold=0.3, timeout=20.0)
    first, second, fallback = phones["106"], phones["101"], phones["105"]
    assert len(first.invites) == 1 and len(second.invites) == 1, (first.invites, second.invites)
    # both at once, then both given up after the timeout
    assert abs(first.invites[0] - second.invites[0]) < 1.0
    assert first.cancels and second.cancels
    rang = first.cancels[0] - first.invites[0]
    assert 2.5 < rang < 6.0, rang
    # then the fallback rang (it answers busy), and the caller heard the unavailable sound
    assert len(fallback.invites) == 1, fallback.invites
    assert 180 in result.statuses and result.final == 200, result.statuses
    assert time.monotonic() - started > 2.5
    text = asterisk.wait_log(r"Unavailable call IP=127\.0\.0\.1\n", offset)
    assert "Wrong call" not in text


def test_a_phone_that_rings_for_ever_is_given_up_after_the_dial_timeout(
    asterisk: AsteriskInstance, tmp_path: Path, phones: dict[str, Any]
) -> None:
    """A guest who never CANCELs cannot keep a phone ringing: every Dial has a limit
    (asterisk.dial_timeout for the short form of a user; 30 s unless the spec says)."""
    _apply(asterisk, tmp_path, users={"alex": "106"}, rooms={}, dial_timeout=3)
    offset = asterisk.log_size()
    with SipCaller(asterisk.sip_port) as caller:
        result = caller.invite("alex", hold=0.3, timeout=20.0)  # the caller never cancels
    phone = phones["106"]
    assert len(phone.invites) == 1 and phone.cancels, (phone.invites, phone.cancels)
    rang = phone.cancels[0] - phone.invites[0]
    assert 2.5 < rang < 6.0, rang
    assert 180 in result.statuses and result.final == 200, result.statuses
    text = asterisk.wait_log(r"Unavailable call IP=127\.0\.0\.1\n", offset)
    assert "Wrong call" not in text


def test_a_guests_video_offer_reaches_a_video_phone_only_with_video(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    """105 is a video phone (vp8, h264 on its endpoint; it answers busy)."""
    seen: dict[bool, str] = {}
    for video in (True, False):
        _apply(asterisk, tmp_path, users={"director": "105"}, rooms={}, video=video)
        phone = Phone(asterisk.phone_port)
        try:
            with SipCaller(asterisk.sip_port) as caller:
                result = caller.invite("director", sdp=VIDEO_OFFER, hold=0.1)
        finally:
            phone.close()
        assert result.final == 200, result.statuses  # the unavailable sound answered
        assert len(phone.invites) == 1, phone.invites
        seen[video] = phone.invites[0]
    port = _video_port(seen[True])
    assert port is not None and port > 0, seen[True]
    assert re.search(r"a=rtpmap:\d+ (VP8|H264)/90000", seen[True]), seen[True]
    assert not _video_port(seen[False]), seen[False]  # no video stream offered onwards


def _invite_and_cancel(port: int, user: str, delay: float) -> None:
    """An INVITE CANCELed after ``delay`` s: the caller gives up before any step ran."""
    token = f"{random.getrandbits(48):x}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    local = sock.getsockname()[1]

    def request(method: str, body: str = "") -> bytes:
        head = (
            f"{method} sip:{user}@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{token};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:x@caller.example>;tag={token}\r\n"
            f"To: <sip:{user}@127.0.0.1>\r\nCall-ID: {token}\r\nCSeq: 1 {method}\r\n"
            f"Contact: <sip:x@127.0.0.1:{local}>\r\n"
        )
        kind = "Content-Type: application/sdp\r\n" if body else ""
        return (head + kind + f"Content-Length: {len(body)}\r\n\r\n{body}").encode()

    sdp = AUDIO_OFFER
    sock.sendto(request("INVITE", sdp), ("127.0.0.1", port))
    time.sleep(delay)
    sock.sendto(request("CANCEL"), ("127.0.0.1", port))
    # A CANCEL that overtakes its INVITE finds no call (481) and the call goes on, ringing
    # the phone an earlier test of the module left registered until the dial timeout (the
    # test took 36 s instead of 8): the caller cancels again, as a phone does once the call
    # exists, until the INVITE is answered 487 or nothing more comes.
    sock.settimeout(0.2)
    deadline = time.monotonic() + 5
    try:
        while time.monotonic() < deadline:
            answer = sock.recv(65536)
            if answer.startswith(b"SIP/2.0 487"):
                break
            if answer.startswith(b"SIP/2.0 481") and b"CSeq: 1 CANCEL" in answer:
                sock.sendto(request("CANCEL"), ("127.0.0.1", port))
    except TimeoutError:
        pass
    sock.close()


def test_a_caller_who_gives_up_at_once_is_never_a_wrong_call(
    asterisk: AsteriskInstance, tmp_path: Path
) -> None:
    """The "h" that ends every call logs a wrong call only when our steps never ran; a
    CANCEL right after the INVITE must not get there (a real caller would be banned)."""
    _apply(asterisk, tmp_path, users={"director": "105", "alex": "106"}, rooms={})
    offset = asterisk.log_size()
    for delay in (0.0, 0.0, 0.001, 0.005, 0.02):
        for name in ("director", "alex"):
            _invite_and_cancel(asterisk.sip_port, name, delay)
    # every call over, its "h" run (where a wrong call would be counted), its first steps
    # logged: the event the test is about, not a second that hopes for it
    wait_until(
        lambda: (
            "0 active channels" in asterisk.rx("core show channels count")
            and asterisk.log_since(offset).count("Good call") >= 5
        ),
        "the calls ended and logged",
        last=lambda: asterisk.log_since(offset),
    )
    text = asterisk.log_since(offset)
    assert "Wrong call" not in text, text
    # each call that got to the dialplan ran its first steps (a CANCEL may overtake its own
    # INVITE: then PJSIP answers it 481 and the call never starts)
    assert 5 <= text.count("Good call") <= 10, text
