"""The Asterisk layer against a real Asterisk 22, driven locally with ``chroot DIR asterisk``.

One Asterisk serves the whole module; the tests run in file order and each leaves the PBX
as it found it where that matters (the admin's files, the applied spec).
"""

from __future__ import annotations

import contextlib
import random
import re
import shlex
import socket
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from asterisk_helpers import (
    Phone,
    apply_spec,
    pending_changes,
    plan_layer,
    spec_data,
    write_spec,
)
from fixtures import host_profile
from fixtures.asterisk import AsteriskInstance
from fixtures.common import free_port
from fixtures.sip_client import SipCaller
from fixtures.user_names import accepted_user_name
from fixtures.waiting import wait_until

from sipctl.errors import ProviderError
from sipctl.providers.asterisk.cli import dialplan_extensions
from sipctl.reconciler.attention import attention_reasons
from sipctl.reconciler.render.asterisk import (
    CATCH_ALL_PATTERN,
    ENDING_EXTENSIONS,
    UNAVAILABLE_EXTENSION,
    WRONG_NAME_EXTENSION,
)

pytestmark = pytest.mark.asterisk

# Whatever the caller dialled, the line names sipctl's fixed extension, never the name.
WRONG_CALL = r"WARNING\[\d+\]\[C-[0-9a-f]+\] Ext\. sipctl#wrong-name: Wrong call IP=127\.0\.0\.1\n"
GUEST_EXTENSIONS = {
    *ENDING_EXTENSIONS,
    UNAVAILABLE_EXTENSION,
    WRONG_NAME_EXTENSION,
    CATCH_ALL_PATTERN,
}


@pytest.fixture(scope="module")
def admin_files(asterisk: AsteriskInstance) -> dict[str, bytes]:
    """The admin's parent files as they were before sipctl touched them."""
    return {
        name: (asterisk.config_dir / name).read_bytes()
        for name in ("pjsip.conf", "extensions.conf", "rtp.conf")
    }


@pytest.fixture(scope="module")
def applied(
    asterisk: AsteriskInstance,
    admin_files: dict[str, bytes],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The default spec, applied once for the module."""
    spec = write_spec(tmp_path_factory.mktemp("spec"), spec_data(asterisk))
    lines = apply_spec(spec)
    assert any("dialplan reload" in line for line in lines), lines
    return spec


@pytest.fixture
def phone(asterisk: AsteriskInstance) -> Iterator[Phone]:
    p = Phone(asterisk.phone_port)
    yield p
    p.close()


def _without_include(data: bytes, child: str) -> bytes:
    return b"".join(
        line for line in data.splitlines(keepends=True) if line != f"#include {child}\n".encode()
    )


def test_apply_writes_the_files_and_a_second_plan_is_empty(
    asterisk: AsteriskInstance, admin_files: dict[str, bytes], applied: Path
) -> None:
    config = asterisk.config_dir
    assert (config / "pjsip_sipctl.conf").exists()
    assert (config / "extensions_sipctl.conf").exists()
    pjsip = (config / "pjsip.conf").read_bytes()
    assert pjsip.count(b"#include pjsip_sipctl.conf") == 1
    assert _without_include(pjsip, "pjsip_sipctl.conf") == admin_files["pjsip.conf"]
    extensions = (config / "extensions.conf").read_bytes()
    assert _without_include(extensions, "extensions_sipctl.conf") == admin_files["extensions.conf"]
    assert (config / "pjsip.conf.sipctl.bak").read_bytes() == admin_files["pjsip.conf"]
    rtp = (config / "rtp.conf").read_text()
    assert "rtpstart=10000 ; the admin's old range\n" in rtp
    assert "rtpend=20000\n" in rtp and "strictrtp=yes\n" in rtp

    mtimes = {p.name: p.stat().st_mtime_ns for p in config.iterdir()}
    assert pending_changes(applied) == []
    assert apply_spec(applied) == []
    assert {p.name: p.stat().st_mtime_ns for p in config.iterdir()} == mtimes

    shown = asterisk.rx("dialplan show guest-call")
    for name in ("director", "alex", "101", *GUEST_EXTENSIONS):
        assert f"'{name}' =>" in shown
    endpoint = asterisk.rx("pjsip show endpoint sipctl-guest")
    assert re.search(r"context\s*:\s*guest-call", endpoint)
    assert re.search(r"direct_media\s*:\s*false", endpoint)
    assert "RTP Allocating from port range 10000 -> 20000" in asterisk.full_log_path.read_text()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_declared_name_rings_its_extension(
    asterisk: AsteriskInstance, applied: Path, phone: Phone, transport: str
) -> None:
    offset, full = asterisk.log_size(), asterisk.log_size(asterisk.full_log_path)
    with SipCaller(asterisk.sip_port, transport) as caller:
        assert caller.options("director").final == 200
        result = caller.invite("director", timeout=6.0)
    # the phone of 105 got the INVITE and answered busy; the caller is not told "busy"
    # (that would tell a declared name from an undeclared one) but hears the sound
    assert any(i.startswith("INVITE sip:105@") for i in phone.invites), phone.invites
    assert 486 not in result.statuses and 200 in result.statuses, result.statuses
    text = asterisk.wait_log(r"Unavailable call IP=127\.0\.0\.1\n", offset)
    assert re.search(
        r"NOTICE\[\d+\]\[C-[0-9a-f]+\] Ext\. director: Good call IP=127\.0\.0\.1\n", text
    )
    assert re.search(
        r"NOTICE\[\d+\]\[C-[0-9a-f]+\] Ext\. sipctl#unavailable: Unavailable call "
        r"IP=127\.0\.0\.1\n",
        text,
    )
    log = asterisk.wait_log(r"Playback\(", full, asterisk.full_log_path)
    assert "Called PJSIP/105" in log
    # the busy caller is never counted as a wrong call: fail2ban must not ban them
    assert "Wrong call" not in asterisk.log_since(offset)


@pytest.mark.parametrize(("name", "transport"), [("Director", "udp"), ("DIRECTOR", "tcp")])
def test_a_declared_name_rings_in_any_case(
    asterisk: AsteriskInstance, applied: Path, phone: Phone, name: str, transport: str
) -> None:
    """People copy addresses with capitals: sip:Director@ is sip:director@."""
    offset = asterisk.log_size()
    with SipCaller(asterisk.sip_port, transport) as caller:
        assert caller.options(name).final == 200
        result = caller.invite(name, timeout=6.0)
    assert any(i.startswith("INVITE sip:105@") for i in phone.invites), phone.invites
    assert 200 in result.statuses, result.statuses
    text = asterisk.wait_log(r"Unavailable call IP=127\.0\.0\.1\n", offset)
    # logged under the declared name (the pattern jumped there), never the caller's spelling
    assert re.search(r"NOTICE\[\d+\]\[C-[0-9a-f]+\] Ext\. director: Good call IP=127", text)
    assert "Wrong call" not in text and name not in text


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_an_unknown_name_is_logged_told_and_hung_up(
    asterisk: AsteriskInstance, applied: Path, transport: str
) -> None:
    offset = asterisk.log_size()
    with SipCaller(asterisk.sip_port, transport) as caller:
        assert caller.options("nobody").final == 200  # the catch-all exists for every name
        result = caller.invite("nobody", hold=0.3)
    assert 200 in result.statuses, result.statuses  # Playback answered
    asterisk.wait_log(WRONG_CALL, offset)
    assert "Good call" not in asterisk.log_since(offset)


def test_an_ipv6_caller_is_logged_with_its_bare_address(
    asterisk: AsteriskInstance, applied: Path
) -> None:
    offset = asterisk.log_size()
    with SipCaller(asterisk.sip_port, host="::1") as caller:
        result = caller.invite("nobody6", domain="[::1]", hold=0.1)
    assert 200 in result.statuses, result.statuses
    asterisk.wait_log(WRONG_CALL.replace(r"127\.0\.0\.1", "::1"), offset)


def test_special_and_odd_names(asterisk: AsteriskInstance, applied: Path) -> None:
    """h, i, t, T, e (Asterisk's own jumps), s (no name), one letter, mixed case, and the
    extensions the dialplan only jumps to: all wrong calls when a caller dials them."""
    offset = asterisk.log_size()
    names = (
        "h", "i", "t", "T", "e", "s", "", "x", "Directorr", "DIRECTO", "Zed.9", "H",
        "SIPCTL#UNAVAILABLE", UNAVAILABLE_EXTENSION,
    )  # fmt: skip
    with SipCaller(asterisk.sip_port) as caller:
        for name in names:
            result = caller.invite(name, hold=0.1)
            assert 200 in result.statuses, (name, result.statuses)
    wait_until(lambda: asterisk.log_since(offset).count("Wrong call") >= len(names),
               f"{len(names)} 'Wrong call' lines", last=lambda: asterisk.log_since(offset))  # fmt: skip
    # a line too many (an "h" after a hang-up) comes before its call's channel is gone
    wait_until(lambda: "0 active channels" in asterisk.rx("core show channels count"),
               "every call's channel gone", last=lambda: asterisk.rx("core show channels"))  # fmt: skip
    text = asterisk.log_since(offset)
    # exactly one line per call: the "h" that runs after each of these calls hung up
    # ended silently (SIPCTL_IP was set), it did not count a second wrong call
    assert len(re.findall(WRONG_CALL, text)) == len(names), text
    assert "Ext. h:" not in text and "rejected because" not in text
    assert "Unavailable call" not in text
    full = asterisk.full_log_path.read_text()
    assert "Executing [h@guest-call:2] Hangup(" in full


def test_dialplan_show_matches_what_was_meant(asterisk: AsteriskInstance, applied: Path) -> None:
    """The exact extensions win over the catch-all, which takes every other name (and
    looks a declared name in another case up in lower case: no pattern per name)."""
    for name in ("h", "i", "t", "T", "e", "director"):
        out = asterisk.rx(f"dialplan show {name}@guest-call")
        # both match; Asterisk lists (and runs) the exact one first
        first = re.search(r"^\s*'([^']+)' =>", out, re.MULTILINE)
        assert first is not None and first[1] == name, (name, out)
    for name in ("Director", "dIRECTOR", "x", "%41", "#", "ab", "h1", "s", "a",
                 "sipctlwrongname", "Directorx", "H"):  # fmt: skip
        out = asterisk.rx(f"dialplan show {name}@guest-call")
        assert dialplan_extensions(out) == {CATCH_ALL_PATTERN}, (name, out)


def test_an_unreachable_asterisk_stops_the_plan(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, spec_data(asterisk))
    host_profile.add("asterisk", [*asterisk.program, "-s", "/nonexistent.ctl"])
    _, ctx, _, live = plan_layer(spec)
    ctx.close()
    assert len(live.problems) == 1, live.problems
    assert "cannot ask Asterisk (" in live.problems[0]
    assert "Unable to connect to remote asterisk" in live.problems[0]


def test_missing_sound_and_mismatched_transport_are_reported(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path
) -> None:
    data = spec_data(asterisk, reject_sound="custom/bad-user")
    data["transports"]["tls"] = {"port": asterisk.sip_port + 1}
    _, ctx, _, live = plan_layer(write_spec(tmp_path, data))
    ctx.close()
    assert any("custom/bad-user" in note and "not found" in note for note in live.notes), live.notes
    assert any("transports.tls" in p for p in live.problems), live.problems
    assert not any("transports.udp" in p for p in live.problems)


def test_a_foreign_anonymous_endpoint_stops_the_plan(
    asterisk: AsteriskInstance, applied: Path, admin_files: dict[str, bytes]
) -> None:
    pjsip = asterisk.config_dir / "pjsip.conf"
    before = pjsip.read_bytes()
    pjsip.write_bytes(before + b"\n[anonymous]\ntype=endpoint\ncontext=default\n")
    try:
        _, ctx, _, live = plan_layer(applied)
        ctx.close()
    finally:
        pjsip.write_bytes(before)
    assert any("already has an 'anonymous' endpoint" in p for p in live.problems), live.problems


def test_identifier_order_that_puts_guests_first_stops_the_plan(
    asterisk: AsteriskInstance, applied: Path
) -> None:
    pjsip = asterisk.config_dir / "pjsip.conf"
    before = pjsip.read_bytes()
    pjsip.write_bytes(
        before.replace(
            b"user_agent=TestPBX", b"endpoint_identifier_order=anonymous,ip\nuser_agent=TestPBX"
        )
    )
    try:
        _, ctx, _, live = plan_layer(applied)
        ctx.close()
    finally:
        pjsip.write_bytes(before)
    assert any("tries 'anonymous' before" in p for p in live.problems), live.problems


def test_a_failed_reload_puts_the_old_files_back(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path
) -> None:
    """A command that answers reads but fails the reload: old files, old config, exit 1."""
    wrapper = tmp_path / "asterisk-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$*" in *reload*) echo "Unable to reload: the PBX is in maintenance"; exit 1;; esac\n'
        f'exec {shlex.join(asterisk.program)} "$@"\n'
    )
    wrapper.chmod(0o755)
    config = asterisk.config_dir
    before = {p.name: p.read_bytes() for p in config.iterdir() if p.is_file()}
    spec = write_spec(tmp_path, spec_data(asterisk, users={"director": "105", "bob": "106"}))
    host_profile.add("asterisk", [str(wrapper)])
    with pytest.raises(ProviderError) as failed:
        apply_spec(spec)
    message = str(failed.value)
    assert "Unable to reload: the PBX is in maintenance" in message
    assert "old files are back" in message
    after = {
        p.name: p.read_bytes()
        for p in config.iterdir()
        if p.is_file() and not p.name.endswith(".sipctl.bak")
    }
    assert after == {k: v for k, v in before.items() if not k.endswith(".sipctl.bak")}
    assert "'bob' =>" not in asterisk.rx("dialplan show guest-call")
    with SipCaller(asterisk.sip_port) as caller:
        assert caller.options("director").final == 200


def test_a_config_asterisk_rejects_is_rolled_back(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path
) -> None:
    """sipctl's transports on a port another program holds: Asterisk cannot start them."""
    config = asterisk.config_dir
    before = (config / "pjsip_sipctl.conf").read_bytes()
    port = free_port()
    data = spec_data(asterisk, manage_transports=True)
    data["transports"] = {"udp": {"port": port}, "tcp": {"port": port}}
    spec = write_spec(tmp_path, data)
    with contextlib.ExitStack() as held:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            sock = held.enter_context(socket.socket(socket.AF_INET, kind))
            sock.bind(("127.0.0.1", port))
        with pytest.raises(ProviderError) as failed:
            apply_spec(spec)
    message = str(failed.value)
    assert "did not start the transports sipctl-tcp, sipctl-udp" in message, message
    assert "transport-udp udp 127.0.0.1" in message and "old files are back" in message
    assert (config / "pjsip_sipctl.conf").read_bytes() == before
    assert "sipctl-udp" not in asterisk.rx("pjsip show transports")
    with SipCaller(asterisk.sip_port) as caller:
        assert caller.options("director").final == 200


def test_managed_transports_clashing_with_the_admins_are_refused_at_plan(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, spec_data(asterisk, manage_transports=True))
    _, ctx, _, live = plan_layer(spec)
    ctx.close()
    assert any("own transport transport-udp" in p for p in live.problems), live.problems


def test_not_found_mode_and_goto_route(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path, phone: Phone
) -> None:
    spec = write_spec(tmp_path, spec_data(asterisk, unknown_callers="not-found", route="goto"))
    # what the plan tells a reviewer is what Asterisk does below: director's caller runs
    # extension 105 of the admin's context 'default' (and 101's and alex's callers theirs)
    changes = [change.to_json() for change in pending_changes(spec)]
    [reason] = attention_reasons([{"changes": changes}])
    assert "own dialplan in context 'default' (extensions 101, 105, 106, by Goto" in reason, reason
    lines = apply_spec(spec)
    # only the dialplan changed, so only the dialplan is reloaded
    assert [line.split(": ", 1)[1] for line in lines] == [
        "wrote extensions_sipctl.conf",
        "dialplan reload",
    ]
    try:
        offset = asterisk.log_size()
        with SipCaller(asterisk.sip_port) as caller:
            assert caller.options("nobody").final == 404
            assert caller.invite("nobody").final == 404
            result = caller.invite("director", timeout=6.0)
        assert phone.invites
        assert 486 in result.statuses, result.statuses
        text = asterisk.log_since(offset)
        assert "Wrong call" not in text
        asterisk.wait_log(
            r"Goto \(default,105,1\)", 0, asterisk.full_log_path
        )  # flushed late under load
    finally:
        apply_spec(applied)
    assert pending_changes(applied) == []


def test_generated_names_reach_asterisk_exactly_as_written(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path
) -> None:
    """A sample of accepted names, loaded by the real Asterisk: each is its own extension."""
    rng = random.Random(20261126)
    first, rest = (
        string.ascii_letters + string.digits + "+",
        string.ascii_letters + string.digits + "._+*~",
    )
    names: dict[str, str] = {}  # lower case -> as written
    while len(names) < 30:
        name = rng.choice(first) + "".join(rng.choice(rest) for _ in range(rng.randint(0, 12)))
        if accepted_user_name(name):
            names.setdefault(name.lower(), name)
    names["x" * 63] = "X" * 63  # the longest name with letters: its pattern is 253 characters
    spec = write_spec(tmp_path, spec_data(asterisk, users=dict.fromkeys(names.values(), "105")))
    apply_spec(spec)
    try:
        shown = asterisk.rx("dialplan show guest-call")
        assert dialplan_extensions(shown) == set(names) | GUEST_EXTENSIONS
        for name in [*sorted(names.values())[:5], "X" * 63]:
            # in lower case: the name's own extension; in any other: the catch-all, which
            # looks the name up in lower case (test_asterisk_lookup rings them over SIP)
            for spelling in (name.lower(), name.swapcase()):
                out = asterisk.rx(f"dialplan show {spelling}@guest-call")
                assert out.lstrip().startswith("[ Context 'guest-call'"), out
                found = dialplan_extensions(out)
                wanted = name.lower() if spelling == name.lower() else "_-."
                assert wanted in found, (spelling, out)
    finally:
        apply_spec(applied)


def test_change_then_removal_keeps_the_admin_bytes(
    asterisk: AsteriskInstance, applied: Path, admin_files: dict[str, bytes], tmp_path: Path
) -> None:
    config = asterisk.config_dir
    changed = write_spec(
        tmp_path,
        spec_data(asterisk, users={"director": "105", "bob": "106", "101": "101"}),
        "changed.yaml",
    )
    apply_spec(changed)
    shown = asterisk.rx("dialplan show guest-call")
    assert "'bob' =>" in shown and "'alex' =>" not in shown
    for name in ("pjsip.conf", "extensions.conf"):
        child = name.replace(".conf", "_sipctl.conf")
        assert _without_include((config / name).read_bytes(), child) == admin_files[name]

    removed = write_spec(tmp_path, spec_data(asterisk, ensure="absent"), "absent.yaml")
    apply_spec(removed)
    for name in ("pjsip.conf", "extensions.conf"):
        assert (config / name).read_bytes() == admin_files[name]
    assert not (config / "pjsip_sipctl.conf").exists()
    assert not (config / "extensions_sipctl.conf").exists()
    assert "rtpstart=10000" in (config / "rtp.conf").read_text()  # rtp.conf is left alone
    assert "sipctl-guest" not in asterisk.rx("pjsip show endpoints")
    assert "extensions_sipctl.conf" not in asterisk.rx("dialplan show guest-call")
    assert pending_changes(removed) == []
    # and back, for whoever runs after
    apply_spec(applied)


def test_a_foreign_anonymous_endpoint_in_another_file_is_seen_live(
    asterisk: AsteriskInstance, applied: Path, tmp_path: Path
) -> None:
    """Defined in a file sipctl does not read: the running Asterisk still tells."""
    config = asterisk.config_dir
    apply_spec(write_spec(tmp_path, spec_data(asterisk, ensure="absent"), "absent.yaml"))
    pjsip = config / "pjsip.conf"
    before = pjsip.read_bytes()
    (config / "pjsip_guest_by_admin.conf").write_text(
        "[anonymous]\ntype=endpoint\ncontext=default\n"
    )
    pjsip.write_bytes(before + b"#include pjsip_guest_by_admin.conf\n")
    asterisk.rx("module reload res_pjsip.so")
    try:
        assert "anonymous" in asterisk.rx("pjsip show endpoints")
        _, ctx, _, live = plan_layer(applied)
        ctx.close()
        assert live.problems == [
            "the running Asterisk (pjsip show endpoints) already has an 'anonymous' endpoint "
            "that sipctl did not write; it would take every unidentified request before "
            "sipctl's guest endpoint. Remove it (sipctl's own guest endpoint replaces it), or "
            "leave the asterisk section out of the spec"
        ]
    finally:
        pjsip.write_bytes(before)
        (config / "pjsip_guest_by_admin.conf").unlink()
        asterisk.rx("module reload res_pjsip.so")
        apply_spec(applied)
    assert pending_changes(applied) == []


def test_an_older_sipctls_anonymous_guest_endpoint_is_replaced(
    asterisk: AsteriskInstance, applied: Path
) -> None:
    """Upgrade: pjsip_sipctl.conf as an older sipctl wrote it (the guests' endpoint named
    [anonymous], no identify section) is sipctl's own, not a foreign endpoint: the plan has
    no problem, the apply replaces it, and Asterisk then runs no 'anonymous' endpoint."""
    own = asterisk.config_dir / "pjsip_sipctl.conf"
    current = own.read_text()
    older = current.replace("[sipctl-guest]\n", "[anonymous]\n", 1).split(
        "\n[sipctl-guest-requests]"
    )[0]
    older = older.replace("identify_by=header\n", "")
    assert "[anonymous]" in older and "sipctl-guest" not in older
    own.write_text(older + "\n")
    asterisk.rx("module reload res_pjsip.so")
    wait_until(lambda: "anonymous" in asterisk.rx("pjsip show endpoints"), "the old endpoint")
    _, ctx, changes, live = plan_layer(applied)
    ctx.close()
    assert live.problems == [] and changes, live.problems
    apply_spec(applied)
    assert own.read_text() == current
    shown = asterisk.rx("pjsip show endpoints")
    assert "anonymous" not in shown and "sipctl-guest" in shown, shown
    assert pending_changes(applied) == []
