"""The Asterisk renderer and the edits of the admin's files: pure, fast, no Asterisk."""

from __future__ import annotations

import string
from itertools import pairwise
from typing import Any

import pytest
from fixtures.posix_regex import PosixRegex
from fixtures.properties import examples
from fixtures.user_names import accepted_user_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.providers.asterisk.cli import (
    identifier_order_problem,
    parse_endpoint_names,
    parse_transports,
)
from sipctl.providers.asterisk.edit import count_includes, read_rtp, set_include, set_rtp
from sipctl.reconciler.asterisk_conf import normalize_dialplan, normalize_sections, parse_dialplan
from sipctl.reconciler.render.asterisk import (
    CATCH_ALL_PATTERN,
    ENDING_EXTENSIONS,
    GUEST_METHODS,
    GUEST_NO_PICKUP,
    GUEST_REQUESTS,
    REFUSED_REQUESTS,
    UNAVAILABLE_EXTENSION,
    UNREFUSED_METHODS,
    WRONG_NAME_EXTENSION,
    asterisk_artefacts,
    dialplan_text,
    ending_steps,
    not_found_log_note,
    other_words_pattern,
    pjsip_text,
    reject_steps,
    render_asterisk,
    sip_text,
    unavailable_steps,
    user_steps,
)
from sipctl.reconciler.render.asterisk_lookup import lookup_steps
from sipctl.schemas.spec import Spec


def make_spec(users: dict[str, str] | None = None, **asterisk: Any) -> Spec:
    return Spec.model_validate(
        {
            "version": 1,
            "domain": "mysite.ru",
            "users": users if users is not None else {"director": "105", "101": "101"},
            "asterisk": asterisk,
        }
    )


def test_dialplan_of_the_example() -> None:
    spec = make_spec()
    steps = parse_dialplan(dialplan_text(spec))
    assert {s.context for s in steps} == {"guest-call"}
    director = [s for s in steps if s.exten == "director"]
    assert [s.app for s in director] == ["Set", "Set", "Log", "Dial", "Goto"]
    assert director[2].args == "NOTICE,Good call IP=${FILTER(0-9a-fA-F.:,${SIPCTL_IP})}"
    assert director[3].args == "PJSIP/105,30"
    assert director[4].args == "sipctl#unavailable,1"
    unavailable = [s for s in steps if s.exten == UNAVAILABLE_EXTENSION]
    assert [s.app for s in unavailable] == ["GotoIf", "Log", "Playback", "Hangup"]
    assert unavailable[1].args == "NOTICE,Unavailable call IP=${FILTER(0-9a-fA-F.:,${SIPCTL_IP})}"
    assert unavailable[2].args == "ss-noservice"  # the reject sound unless said otherwise
    wrong = [s for s in steps if s.exten == WRONG_NAME_EXTENSION]
    assert [s.app for s in wrong] == ["Set", "Set", "Log", "Playback", "Hangup"]
    assert wrong[2].args == "WARNING,Wrong call IP=${FILTER(0-9a-fA-F.:,${SIPCTL_IP})}"
    assert wrong[3].args == "ss-noservice"
    # one pattern, the catch-all, of one step: a name in another case is looked up once
    # more in lower case (asterisk_lookup), the rest goes to the fixed extension that logs
    patterns = [s for s in steps if s.exten.startswith("_")]
    folded = "${FILTER(0-9a-z._+*~,${TOLOWER(${EXTEN})})}"
    wanted = (
        f"$[${{LEN({folded})}} = ${{LEN(${{EXTEN}})}} & "
        "${LEN(${FILTER(0-9a-z._+*~,${EXTEN})})} < ${LEN(${EXTEN})}]"
    )
    assert [(s.exten, s.priority, s.app, s.args) for s in patterns] == [
        ("_-.", "1", "Goto", f"${{IF({wanted}?{folded}:sipctl#wrong-name)}},1"),
    ]
    for name in ("h", "i", "t", "T", "e"):
        assert [(s.priority, s.app, s.args) for s in steps if s.exten == name] == [
            ("1", "GotoIf", '$["${SIPCTL_IP}" = ""]?sipctl#wrong-name,1'),
            ("n", "Hangup", ""),
        ]


def test_ring_group_rings_all_then_the_fallback_then_ends_like_a_wrong_name() -> None:
    users = {"sales": {"ring": [106, 107], "timeout": 20, "fallback": 101}, "alex": 108}
    spec = make_spec(users, unavailable_sound="custom/away")
    steps = parse_dialplan(dialplan_text(spec))
    sales = [(s.app, s.args) for s in steps if s.exten == "sales"][2:]
    assert sales == [
        ("Log", "NOTICE,Good call IP=${FILTER(0-9a-fA-F.:,${SIPCTL_IP})}"),
        ("Dial", "PJSIP/106&PJSIP/107,20"),
        ("Dial", "PJSIP/101,20"),
        ("Goto", "sipctl#unavailable,1"),
    ]
    assert ("Playback", "custom/away") in [(s.app, s.args) for s in steps]
    no_fallback = make_spec({"sales": {"ring": ["106"]}}, route="goto")
    dials = [s.args for s in parse_dialplan(dialplan_text(no_fallback)) if s.app == "Dial"]
    assert dials == ["Local/106@default,20"]
    # without the catch-all (not-found), the unreachable name is answered 404 like others
    quiet = parse_dialplan(dialplan_text(make_spec(unknown_callers="not-found")))
    assert [(s.app, s.args) for s in quiet if s.exten == UNAVAILABLE_EXTENSION][-1] == (
        "Hangup",
        "1",
    )


def test_not_found_mode_with_fail2ban_is_flagged() -> None:
    """Asterisk's own NOTICE quotes the raw name (test_fail2ban_asterisk measures why)."""

    def spec(unknown_callers: str, fail2ban: dict[str, Any] | None) -> Spec:
        data = make_spec(unknown_callers=unknown_callers).model_dump()
        return Spec.model_validate({**data, "fail2ban": fail2ban})

    assert not_found_log_note(spec("reject", {})) is None
    assert not_found_log_note(spec("not-found", None)) is None
    assert not_found_log_note(spec("not-found", {"enabled": False})) is None
    note = not_found_log_note(spec("not-found", {}))
    assert note is not None and "unknown_callers: reject" in note


def test_no_user_name_can_be_one_of_the_guest_extensions() -> None:
    """Asterisk ignores '-' in extension names: "sipctl-wrong-name" would be a valid user."""
    for name in (
        WRONG_NAME_EXTENSION,
        UNAVAILABLE_EXTENSION,
        *ENDING_EXTENSIONS,
        CATCH_ALL_PATTERN,
    ):
        for alias in (name, name.replace("-", "")):
            assert not accepted_user_name(alias), alias
    assert accepted_user_name("sipctlwrongname")  # why the fixed extension has a '#'
    assert not accepted_user_name("a-b")


def test_route_goto_not_found_and_chan_sip() -> None:
    text = dialplan_text(make_spec(route="goto", unknown_callers="not-found"))
    steps = parse_dialplan(text)
    assert {s.exten for s in steps} == {
        "director",
        "_[dD][iI][rR][eE][cC][tT][oO][rR]",  # not-found too: every case of a name rings it
        "101",
        UNAVAILABLE_EXTENSION,
        "i",  # the pickup code: 404 and a Wrong call line (invalid_steps)
    }
    assert [s.app for s in steps if s.exten == "i"][-2:] == ["Log", "Hangup"]
    assert [s for s in steps if s.exten == "director"][-1].args == "default,105,1"
    sip = make_spec(channel="sip")
    assert "Set(SIPCTL_IP=${CHANNEL(peerip)})" in dialplan_text(sip)
    assert "Dial(SIP/105,30)" in dialplan_text(sip)
    assert "[general](+)\nallowguest=yes\ncontext=guest-call\n" in sip_text(sip)
    names = {str(r.address) for r in render_asterisk(sip)}
    assert "asterisk.file[sip_sipctl.conf]" in names
    assert "asterisk.include[sip.conf]" in names


def test_guest_endpoint_and_managed_transports() -> None:
    text = pjsip_text(make_spec())
    # not [anonymous]: the anonymous identifier would hand it every method (GUEST_ENDPOINT)
    assert list(normalize_sections(text)) == [
        "[sipctl-guest]", "[sipctl-guest-requests]",
        # tried first (by name): every other method is refused by its ACL (REFUSED_REQUESTS)
        "[sipctl-refused]", "[sipctl-0-refused-method]", "[sipctl-0-refused-event]", "[sipctl-0-refused-refer]",
    ]  # fmt: skip
    assert "type=global" not in text and "[global]" not in text
    assert (
        "[sipctl-guest-requests]\ntype=identify\nendpoint=sipctl-guest\n"
        "match_header=CSeq: /^[0-9]+ (INVITE|OPTIONS)$/\n"
    ) in text
    for line in (
        "[sipctl-guest]",
        "identify_by=header",
        "type=endpoint",
        "context=guest-call",
        "direct_media=no",
        "message_context=sipctl-no-guest-messages",
    ):
        assert f"\n{line}\n" in text
    managed = make_spec(
        manage_transports=True, tls={"cert_file": "/k/c.pem", "key_file": "/k/k.pem"}
    ).model_copy()
    spec = Spec.model_validate(
        {**managed.model_dump(), "transports": {"udp": {}, "tls": {"port": 5061}}}
    )
    text = pjsip_text(spec)
    assert "[sipctl-udp]\ntype=transport\nprotocol=udp\nbind=0.0.0.0:5060\n" in text
    assert "cert_file=/k/c.pem\npriv_key_file=/k/k.pem\n" in text


def test_ensure_absent_renders_nothing_and_artefacts() -> None:
    assert render_asterisk(make_spec(ensure="absent")) == []
    files = asterisk_artefacts(make_spec())
    assert set(files) == {"pjsip_sipctl.conf", "extensions_sipctl.conf", "README"}


def test_normalized_values_ignore_comments_spaces_and_option_order() -> None:
    a = "[anonymous]\ntype=endpoint\ncontext=guest\ndisallow=all\nallow=ulaw\n"
    b = "; hello\n[anonymous] ; x\n  context = guest\ntype => endpoint\n\ndisallow=all\nallow=ulaw\n"
    assert normalize_sections(a) == normalize_sections(b)
    c = "[anonymous]\ntype=endpoint\ncontext=guest\nallow=ulaw\ndisallow=all\n"
    assert normalize_sections(a) != normalize_sections(c)  # codec order matters
    d1 = "[g]\nexten => a,1,NoOp(x) ; c\n same => n,Hangup()\n"
    d2 = ";-- block\ncomment --;\n[g]\nexten=>a,1,NoOp(x)\nsame=>n,Hangup()\n"
    assert normalize_dialplan(d1) == normalize_dialplan(d2)


ADMIN = b"; mine\n[global]\ntype=global\n\n[t]\ntype=transport ; \xff not utf-8\n"


def test_include_lines_are_added_once_and_removed_byte_exactly() -> None:
    added = set_include(ADMIN, "pjsip_sipctl.conf", "/etc/asterisk", present=True)
    assert added == ADMIN + b"#include pjsip_sipctl.conf\n"
    assert set_include(added, "pjsip_sipctl.conf", "/etc/asterisk", present=True) == added
    doubled = added + b'#include "/etc/asterisk/pjsip_sipctl.conf"\n'
    assert count_includes(doubled, "pjsip_sipctl.conf", "/etc/asterisk") == 2
    assert set_include(doubled, "pjsip_sipctl.conf", "/etc/asterisk", present=True) == added
    assert set_include(added, "pjsip_sipctl.conf", "/etc/asterisk", present=False) == ADMIN
    no_newline = b"[x]\na=b"
    assert set_include(no_newline, "f.conf", "/e", True) == b"[x]\na=b\n#include f.conf\n"
    assert set_include(None, "f.conf", "/e", True) == b"#include f.conf\n"


def test_rtp_keys_are_set_and_everything_else_kept() -> None:
    old = b"; rtp\n[general]\nrtpstart = 16384 ; old\nstrictrtp=yes\n[other]\nrtpend=1\n"
    new = set_rtp(old, 10000, 20000)
    assert (
        new
        == b"; rtp\n[general]\nrtpend=20000\nrtpstart = 10000 ; old\nstrictrtp=yes\n[other]\nrtpend=1\n"
    )
    assert read_rtp(new) == (10000, 20000)
    assert set_rtp(new, 10000, 20000) == new
    assert set_rtp(None, 10000, 20000) == b"[general]\nrtpstart=10000\nrtpend=20000\n"
    assert read_rtp(b"[general]\nrtpstart=x\n") == (None, None)


def test_cli_parsers_on_captured_output() -> None:
    transports = (
        "Transport:  <TransportId........>  <Type>  <cos>  <tos>  <BindAddress....>\n"
        "==========\n\n"
        "Transport:  transport-tcp             tcp      0      0  127.0.0.1:48423\n"
        "Transport:  transport-udp6            udp      0      0  [::]:5060\n"
    )
    found = parse_transports(transports)
    assert [(t.name, t.protocol, t.address, t.port) for t in found] == [
        ("transport-tcp", "tcp", "127.0.0.1", 48423),
        ("transport-udp6", "udp", "::", 5060),
    ]
    endpoints = (
        " Endpoint:  <Endpoint/CID.....>  <State.....>  <Channels.>\n"
        " Endpoint:  101                  Invalid       0 of inf\n"
        " Endpoint:  anonymous            Not in use    0 of inf\n"
    )
    assert parse_endpoint_names(endpoints) == ["101", "anonymous"]
    assert identifier_order_problem("ip,username,anonymous") is None
    assert identifier_order_problem("ip,username") is None
    assert identifier_order_problem("username,ip,header,anonymous") is None
    assert identifier_order_problem("anonymous,ip,username") is not None
    assert identifier_order_problem("ip,anonymous") is not None
    # the plain SIP guests are found by the header identifier: it too comes after both
    assert identifier_order_problem("header,ip,username") is not None
    assert identifier_order_problem("ip,header,username,anonymous") is not None
    assert identifier_order_problem("ip,username,request_uri,header") is None


# --- names are data: the rendered dialplan means exactly what was meant --------------------

_SYNTAX = ",;()[]{}\"'\\=>/-_!.#%&$ \t"
_ALPHABET = string.ascii_letters + string.digits + "+*~._" + _SYNTAX + "é\u200b"


names = st.one_of(
    st.from_regex(r"[A-Za-z0-9+][A-Za-z0-9._+*~]{0,20}", fullmatch=True),
    st.text(alphabet=_ALPHABET, min_size=1, max_size=12),
).filter(accepted_user_name)


@settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
@given(
    st.lists(names, min_size=1, max_size=4, unique_by=str.lower),
    st.sampled_from(["dial", "goto"]),
)
def test_no_accepted_name_changes_the_meaning_of_the_dialplan(
    user_names: list[str], route: str
) -> None:
    spec = make_spec({name: str(100 + i) for i, name in enumerate(user_names)}, route=route)
    section = spec.asterisk
    assert section is not None
    steps = parse_dialplan(dialplan_text(spec))
    meant: dict[str, list[str]] = {}
    for name, ext in spec.users.items():
        # the name in lower case, once: other cases are looked up by the catch-all
        meant[name.lower()] = user_steps(section, ext)
    for name in ENDING_EXTENSIONS:
        meant[name] = ending_steps(section)
    meant[UNAVAILABLE_EXTENSION] = unavailable_steps(section)
    meant[WRONG_NAME_EXTENSION] = reject_steps(section)
    meant[CATCH_ALL_PATTERN] = lookup_steps(WRONG_NAME_EXTENSION)
    parsed: dict[str, list[str]] = {}
    for step in steps:
        assert step.context == "guest-call"
        assert not step.label
        parsed.setdefault(step.exten, []).append(f"{step.app}({step.args})")
    assert parsed == meant
    for name in user_names:
        # what pbx_config would treat as a pattern, a caller-id match, or strip away
        assert not name.startswith("_") and "/" not in name and "-" not in name
        assert name.strip() == name and name.isprintable()
        first = next(s for s in steps if s.exten == name.lower())
        assert first.priority == "1"


def test_plans_can_name_users_and_rooms_in_the_specs_words() -> None:
    from sipctl.reconciler.render.asterisk_names import (
        described_names,
        dialplan_name_lines,
        name_changes,
        names_from_dialplan,
    )

    users = {"director": "105", "sales": {"ring": [106, 107], "fallback": 101}}
    spec = Spec.model_validate(
        {**make_spec(users).model_dump(), "rooms": {"seminar": {"max_members": 5}}}
    )
    after = described_names(spec)
    assert after["user sales"] == "106 & 107 (20 s), then 101"
    # the dialplan says the same as the spec, for both routes
    for route in ("dial", "goto"):
        routed = Spec.model_validate({**spec.model_dump(), "asterisk": {"route": route}})
        read = names_from_dialplan(normalize_dialplan(dialplan_text(routed)))
        assert read == described_names(routed)
    # every Dial has a limit: the short form rings asterisk.dial_timeout seconds
    assert after["user director"] == "105 (30 s)"
    assert described_names(routed)["user director"] == "105"  # goto: the local context's
    before = {"user director": "104 (30 s)", "user old": "100"}
    assert name_changes(before, after) == [
        "+ room seminar → room (ConfBridge)",
        "~ user director → 105 (30 s) (was 104 (30 s))",
        "- user old → 100",
        "+ user sales → 106 & 107 (20 s), then 101",
    ]
    change = {
        "address": {"layer": "asterisk", "kind": "file", "name": "extensions_sipctl.conf"},
        "before": None,
        "after": normalize_dialplan(dialplan_text(spec)),
    }
    assert "+ user sales → 106 & 107 (20 s), then 101" in dialplan_name_lines(change)


def test_sipctls_own_contexts_cannot_be_chosen_in_the_spec() -> None:
    from sipctl.reconciler.render.asterisk_hosting import DOMAINS_CONTEXT
    from sipctl.reconciler.render.asterisk_outbound import (
        NOWHERE_CONTEXT,
        OUTBOUND_CALL_CONTEXT,
        OUTBOUND_CONTEXT,
        OUTBOUND_NAMES_CONTEXT,
    )
    from sipctl.reconciler.render.asterisk_rooms import ROOM_EVENTS_CONTEXT, ROOMS_CONTEXT
    from sipctl.schemas.names import SIPCTL_CONTEXTS

    assert {
        ROOMS_CONTEXT,
        ROOM_EVENTS_CONTEXT,
        NOWHERE_CONTEXT,
        OUTBOUND_CONTEXT,
        OUTBOUND_CALL_CONTEXT,
        OUTBOUND_NAMES_CONTEXT,
        DOMAINS_CONTEXT,
    } == SIPCTL_CONTEXTS
    for name in SIPCTL_CONTEXTS:
        try:
            make_spec(guest_context=name)
        except ValueError as exc:
            assert "reserved" in str(exc)
        else:
            raise AssertionError(name)


def test_video_reaches_both_guest_endpoints() -> None:
    def endpoints(video: bool) -> dict[str, list[str]]:
        spec = Spec.model_validate(
            {
                "version": 1,
                "domain": "mysite.ru",
                "transports": {"udp": {}, "wss": {"port": 8089}},
                "users": {"director": "105"},
                "asterisk": {
                    "video": video,
                    "tls": {"cert_file": "/k/c.pem", "key_file": "/k/k.pem"},
                },
            }
        )
        return normalize_sections(pjsip_text(spec))

    with_video = endpoints(True)
    assert "allow=ulaw,alaw,g722,gsm,vp8,h264" in with_video["[sipctl-guest]"]
    assert "allow=opus,ulaw,alaw,vp8,h264" in with_video["[sipctl-browsers]"]
    without = endpoints(False)
    assert "allow=ulaw,alaw,g722,gsm" in without["[sipctl-guest]"]
    assert "allow=opus,ulaw,alaw" in without["[sipctl-browsers]"]


@pytest.mark.parametrize("unknown_callers", ["reject", "not-found", "challenge"])
def test_no_guest_endpoint_has_the_pickup_code(unknown_callers: str) -> None:
    """Every guest endpoint (SIP and browser, every mode) empties its channel's pickup code;
    the outbound endpoint and the refused requests' one are nobody's guest (the latter's ACL
    lets nobody in) and are left as they were."""
    browsers = unknown_callers != "challenge"  # challenge refuses transports.wss
    spec = Spec.model_validate(
        {
            "version": 1,
            "domain": "mysite.ru",
            "transports": {"udp": {}, **({"wss": {"port": 8089}} if browsers else {})},
            "users": {"director": "105"},
            "outbound": {"allow": ["example.com"]},
            "asterisk": {
                "unknown_callers": unknown_callers,
                "tls": {"cert_file": "/k/c.pem", "key_file": "/k/k.pem"},
            },
        }
    )
    sections = normalize_sections(pjsip_text(spec))
    guests = [name for name, lines in sections.items() if any("context=" in ln for ln in lines)]
    with_pickup_off = [name for name in guests if GUEST_NO_PICKUP in sections[name]]
    nobodys = ("outbound", "refused")
    assert with_pickup_off == [n for n in guests if not any(w in n for w in nobodys)], sections
    assert len(with_pickup_off) == (2 if browsers else 1), sections


contexts = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,12}", fullmatch=True)
sounds = st.from_regex(
    r"[A-Za-z0-9_][A-Za-z0-9_-]{0,8}(?:/[A-Za-z0-9_][A-Za-z0-9_-]{0,8})?", fullmatch=True
)
extensions = st.from_regex(r"[0-9]{1,6}", fullmatch=True)
targets = st.one_of(
    extensions,
    st.fixed_dictionaries(
        {"ring": st.lists(extensions, min_size=1, max_size=3), "timeout": st.integers(1, 600)},
        optional={"fallback": extensions},
    ),
)


@st.composite
def dialplan_specs(draw: st.DrawFn) -> Spec:
    user_names = draw(st.lists(names, max_size=5, unique=True))
    room_names = draw(st.lists(names, max_size=3, unique=True))
    asterisk: dict[str, Any] = {
        "route": draw(st.sampled_from(["dial", "goto"])),
        "channel": draw(st.sampled_from(["pjsip", "sip"])),
        "unknown_callers": draw(st.sampled_from(["reject", "not-found"])),
        "guest_context": draw(contexts),
        "local_context": draw(contexts),
        "reject_sound": draw(sounds),
        "video": draw(st.booleans()),
    }
    if draw(st.booleans()):
        asterisk["unavailable_sound"] = draw(sounds)
    servers = [{"host": "pbx.mysite.ru", "ipv4": ["192.0.2.7"]}]
    if draw(st.booleans()):
        servers[0]["ipv6"] = ["2001:db8::7"]
    data = {
        "version": 1,
        "domain": "mysite.ru",
        "servers": servers,
        "users": {name: draw(targets) for name in user_names},
        "rooms": {name: {"max_members": draw(st.integers(2, 1000))} for name in room_names},
        "asterisk": asterisk,
    }
    try:
        return Spec.model_validate(data)
    except ValueError:
        from hypothesis import reject

        reject()


@settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
@given(dialplan_specs())
def test_the_dialplans_value_is_what_its_text_reads_as(spec: Spec) -> None:
    """A plan takes the rendered dialplan's value from the writer, never parsing its own
    text; it must be exactly what the parser (which reads the live file) makes of it."""
    from sipctl.reconciler.render.asterisk import dialplan

    written = dialplan(spec)
    assert written.value() == normalize_dialplan(written.text())
    assert list(written.value()) == list(normalize_dialplan(written.text()))


# Steps as a writer may be handed them: spaces around the application or the step,
# missing or unbalanced parentheses, commas, a label-like priority text.
_space = st.sampled_from(["", "", " ", "\t", "  "])
_steps = st.one_of(
    st.builds(
        "".join,
        st.tuples(
            _space,
            st.sampled_from(["Dial", "Goto", "", "n", "1(x)", "Set"]),
            _space,
            st.sampled_from(["(", "", "(("]),
            st.text(alphabet="PJSIP/,&x1 ()", max_size=8),
            st.sampled_from([")", "", "))"]),
            _space,
        ),
    ),
    st.text(alphabet="Dial()PJSIP/Goto, \t&x1n", min_size=1, max_size=14),
).filter(bool)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(names, st.lists(_steps, min_size=1, max_size=4)), max_size=4))
def test_the_writers_step_values_are_what_the_parser_reads(
    extensions: list[tuple[str, list[str]]],
) -> None:
    """DialplanWriter takes a step already in its value's form as it is and parses any
    other one: either way the value is the parser's (or both refuse the step)."""
    from sipctl.reconciler.asterisk_conf import DialplanSyntaxError, DialplanWriter

    written = DialplanWriter()
    written.context("guest-call")
    try:
        for name, steps in extensions:
            written.extension(name, steps)
    except DialplanSyntaxError:  # its lines are written first: the parser meets the step
        with pytest.raises(DialplanSyntaxError):
            normalize_dialplan(written.text())
        return
    assert written.value() == normalize_dialplan(written.text())


def test_outbound_renders_the_phones_way_out_and_nothing_for_guests() -> None:
    from sipctl.reconciler.asterisk_conf import normalize_dialplan
    from sipctl.reconciler.render.asterisk import dialplan

    base = {
        "version": 1,
        "domain": "mysite.ru",
        "transports": {"udp": {}, "tls": {}},
        "servers": [{"host": "pbx.mysite.ru", "ipv4": ["192.0.2.1"]}],
        "users": {"Director": "105", "sales": {"ring": ["106"]}},
        "asterisk": {"tls": {"cert_file": "/k/a.pem", "key_file": "/k/a.key"}},
    }
    assert "sipctl-outbound" not in dialplan_text(Spec.model_validate(base))
    spec = Spec.model_validate({**base, "outbound": {"allow": ["partner.example"]}})
    written = dialplan(spec)
    assert normalize_dialplan(written.text()) == written.value()
    value = written.value()
    # the local context reaches the way out; the guest context does not
    assert value["default include =>"] == ["sipctl-outbound"]
    assert not any(key.startswith("guest-call include") for key in value)
    assert not any(
        "sipctl-outbound" in step
        for k, v in value.items()
        if k.startswith("guest-call,")
        for step in v
    )
    assert value["sipctl-outbound,_-."] == ["1,Goto(sipctl-outbound-call,s,1)"]
    assert value["sipctl-outbound-names,105"] == ["1,Return(director)"]
    checks = "\n".join(value["sipctl-outbound-call,s"])
    assert '"mysite.ru"]?local,1' in checks and '"pbx.mysite.ru"]?local,1' in checks
    assert '"partner.example"]?allowed,1' in checks and checks.endswith("Goto(refused,1)")
    endpoint = normalize_sections(pjsip_text(spec))["[sipctl-outbound]"]
    assert "from_domain=mysite.ru" in endpoint and "context=sipctl-no-guest-messages" in endpoint
    assert "media_encryption=sdes" in endpoint  # the phones' TLS calls out may use SRTP too


# --- unknown_callers: challenge ---------------------------------------------------------------

_USER_NAMES = st.from_regex(r"\A[A-Za-z0-9+][A-Za-z0-9._+*~]{0,12}\Z")


_LABELS = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?\Z")
_DOMAINS = st.lists(_LABELS, min_size=2, max_size=3).map(".".join)


def _any_case(text: str, flips: list[bool]) -> str:
    """``text`` with the case of its letters flipped where ``flips`` says (cycling)."""
    return "".join(
        c.swapcase() if flips[i % len(flips)] else c for i, c in enumerate(text)
    )  # fmt: skip


@settings(max_examples=examples(200), suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(_USER_NAMES, min_size=1, max_size=4, unique_by=str.lower),
    other=_USER_NAMES,
    flips=st.lists(st.booleans(), min_size=1, max_size=13),
)
def test_the_guests_request_uri_pattern_takes_the_declared_names_in_any_case_and_nothing_else(
    names: list[str], other: str, flips: list[bool]
) -> None:
    """The match_request_uri regex of a spec of one domain, run by the C library's POSIX
    engine as Asterisk runs it (regcomp REG_EXTENDED | REG_NOSUB): a request URI whose
    user part is a declared name in any case, over sip: and sips:, with any host and
    parameters, and no other user part."""
    from fixtures.posix_regex import PosixRegex

    from sipctl.reconciler.render.asterisk import guest_uri_pattern

    pattern = guest_uri_pattern(names)
    assert pattern.startswith("/") and pattern.endswith("/")
    regex = PosixRegex(pattern[1:-1])
    for name in names:
        assert regex.matches(f"sip:{_any_case(name, flips)}@mysite.ru")
        assert regex.matches(f"sips:{name}@127.0.0.1:5061;transport=tls")
    declared = {n.lower() for n in names}
    assert regex.matches(f"sip:{other}@mysite.ru") == (other.lower() in declared)
    assert not regex.matches("sip:mysite.ru")  # a REGISTER's request URI
    # one character more is another name (unless that one is declared too: '0' and 'X0')
    for longer in (f"x{names[0]}", f"{names[0]}x"):
        assert regex.matches(f"sip:{longer}@mysite.ru") == (longer.lower() in declared)


@settings(max_examples=examples(200), suppress_health_check=[HealthCheck.too_slow])
@given(
    declared=st.dictionaries(
        _DOMAINS,
        st.lists(_USER_NAMES, min_size=1, max_size=3, unique_by=str.lower),
        min_size=1,
        max_size=3,
    ),
    name=_USER_NAMES,
    domain=_DOMAINS,
    flips=st.lists(st.booleans(), min_size=1, max_size=13),
    tail=st.sampled_from(["", ".", ":5060", ".:5061", ";transport=tcp", ":5060;user=phone"]),
    junk=st.sampled_from(["", "x", "-x", ".x", "x.", "_x"]),
)
def test_a_hosts_patterns_take_exactly_each_customers_names_at_its_own_domain(
    declared: dict[str, list[str]],
    name: str,
    domain: str,
    flips: list[bool],
    tail: str,
    junk: str,
) -> None:
    """A host has one identify section per customer; res_pjsip takes a request for the
    guest endpoint when any of them matches. Run by the C library's POSIX engine: a
    (name, domain) pair matches exactly when the domain is a customer's and the name one
    of that customer's, in any case, whatever port, trailing dot or parameters follow,
    and a host that only begins or ends like a customer's domain matches nothing."""
    from fixtures.posix_regex import PosixRegex

    from sipctl.reconciler.render.asterisk import guest_uri_pattern

    patterns = [guest_uri_pattern(n, d) for d, n in declared.items()]
    # Asterisk's config reader ends a value at ';' (a comment): the pattern has none.
    assert not any(";" in pattern for pattern in patterns)
    regexes = [PosixRegex(pattern[1:-1]) for pattern in patterns]

    def taken(user: str, host: str) -> bool:
        uri = f"sip:{_any_case(user, flips)}@{_any_case(host, flips)}{tail}"
        return any(regex.matches(uri) for regex in regexes)

    for customer, names in declared.items():
        for declared_name in names:
            assert taken(declared_name, customer)
            if junk:
                assert not taken(declared_name, customer + junk)
                assert not taken(declared_name, junk + customer)
    owners = {d for d, n in declared.items() if name.lower() in {x.lower() for x in n}}
    assert taken(name, domain) == (domain in owners)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(1, 400),
    stem=st.from_regex(r"\A[a-zA-Z]{0,58}\Z"),
    domain=st.one_of(st.none(), _DOMAINS),
    other=_USER_NAMES,
)
def test_the_guests_names_take_as_many_identify_sections_as_keep_each_line_readable(
    count: int, stem: str, domain: str | None, other: str
) -> None:
    """Asterisk skips a config line longer than MAX_LINE (tests/test_asterisk_challenge_
    lines.py): a spec's names, one company's or a customer's, take as many identify
    sections as keep each match_request_uri line within it, and no more (two neighbouring
    groups would not fit one line). Each name is in one group, and the groups' patterns,
    run by the C library's POSIX engine, take each declared name once and nothing else.
    One company's pjsip_sipctl.conf holds exactly the sections apply checks."""
    from fixtures.posix_regex import PosixRegex

    from sipctl.reconciler.asterisk_conf import MAX_LINE
    from sipctl.reconciler.render.asterisk import (
        challenge_identify_sections,
        guest_uri_pattern,
        name_groups,
    )

    names = [f"{stem}{n}" for n in range(count)]
    groups = name_groups(names, domain)
    assert sorted(name for group in groups for name in group) == sorted(names)

    def line(group: list[str]) -> str:
        return f"match_request_uri={guest_uri_pattern(group, domain)}"

    assert all(len(line(group)) <= MAX_LINE for group in groups)
    assert all(len(line(a + b)) > MAX_LINE for a, b in pairwise(groups))
    regexes = [PosixRegex(guest_uri_pattern(group, domain)[1:-1]) for group in groups]
    host = domain or "mysite.ru"
    declared = {name.lower() for name in names}
    for name in (names[0], names[-1], other):
        taken = sum(regex.matches(f"sip:{name}@{host}") for regex in regexes)
        assert taken == (name.lower() in declared), (name, taken)
    if domain is None:
        spec = make_spec(dict.fromkeys(names, "105"), unknown_callers="challenge")
        text = pjsip_text(spec)
        assert max(len(line) for line in text.splitlines()) <= MAX_LINE
        sections = normalize_sections(text)
        identify = [
            n
            for n, body in sections.items()
            if "type=identify" in body and "sipctl-0-refused" not in n
        ]
        assert identify == [f"[{name}]" for name in challenge_identify_sections(spec)] != []


def test_a_customers_identify_section_name_fits_asterisk() -> None:
    from sipctl.reconciler.render.asterisk import identify_section

    assert identify_section("A.Example") == "sipctl-guest-names-a.example"
    long = ("x" * 50) + ".example"
    assert len(identify_section(long)) <= 79
    assert identify_section(long) != identify_section("y" + long)


def test_challenge_names_the_guest_endpoint_apart_and_finds_it_by_the_called_name() -> None:
    spec = make_spec(unknown_callers="challenge", target="local")
    text = pjsip_text(spec)
    assert "[anonymous]" not in text
    assert "[sipctl-guest]\ntype=endpoint\ncontext=guest-call\n" in text
    assert "identify_by=request_uri\n" in text
    assert "match_request_uri=/^sips?:(101|[dD][iI][rR][eE][cC][tT][oO][rR])@/" in text
    # the guest dialplan is the reject one: a declared name nobody answers hears the sound
    assert dialplan_text(spec) == dialplan_text(make_spec(target="local"))
    # reject: the same endpoint, found by the request's method instead
    assert "identify_by=header\n" in pjsip_text(make_spec(target="local"))


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"transports": {"udp": {"port": 5060}, "wss": {"port": 8089}}}, "transports.wss"),
    ],
)
def test_challenge_is_refused_where_a_guest_is_found_another_way(
    extra: dict[str, Any], words: str
) -> None:
    from pydantic import ValidationError

    data: dict[str, Any] = {
        "version": 1,
        "domain": "mysite.ru",
        "users": {"director": "105"},
        "asterisk": {
            "target": "local",
            "unknown_callers": "challenge",
            "tls": {"cert_file": "/a.pem", "key_file": "/a.key"},
        },
    }
    data.update(extra)
    with pytest.raises(ValidationError, match=words):
        Spec.model_validate(data)


# SIP method tokens: what pjsip prints after the number in CSeq.
_METHOD_TOKENS = st.text(alphabet="ACEIKNOPRSTUVXBDFGHLMQWYZ-.!%*_+`'~", min_size=1, max_size=12)


@settings(max_examples=examples(300), deadline=None)
@given(
    method=st.one_of(
        _METHOD_TOKENS, st.sampled_from(["INVITE", "OPTIONS", "ACK", "INVITEX", "OPT", "ACKS"])
    )
)
def test_the_refused_methods_are_every_cseq_but_a_guests(method: str) -> None:
    """glibc's regexec (what Asterisk runs) on REFUSED_REQUESTS' CSeq section: a guest's
    methods (and ACK) pass, everything else (a prefix of one, one with more after it) is
    refused; the guests' own section takes a guest's methods and nothing refused."""
    refused = PosixRegex(
        REFUSED_REQUESTS["sipctl-0-refused-method"]
        .format(methods=other_words_pattern(UNREFUSED_METHODS))
        .split(": ", 1)[1]
        .strip("/")
    )
    guests = PosixRegex(GUEST_REQUESTS.split(": ", 1)[1].strip("/"))
    value = f"1 {method}"
    assert refused.matches(value) == (method not in UNREFUSED_METHODS), method
    assert guests.matches(value) == (method in GUEST_METHODS), method
