"""transports.wss, the webrtc section and dns.naptr_websocket: what every layer derives."""

from __future__ import annotations

import pytest

from sipctl.errors import SpecError
from sipctl.reconciler.asterisk_conf import parse_sections
from sipctl.reconciler.render.asterisk import pjsip_text
from sipctl.reconciler.render.dns import render_dns
from sipctl.reconciler.render.fail2ban import ban_ports
from sipctl.reconciler.render.firewall import desired_ruleset
from sipctl.schemas.checks import cross_checks
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.values import split_publish

BASE = """\
version: 1
domain: mysite.ru
transports:
  udp: {port: 5060}
  wss: {port: 8089}
servers:
  - host: asterisk.mysite.ru
    ipv4: [203.0.113.10]
users:
  director: 105
  alex: 106
dns:
  provider: rfc2136
  server: 127.0.0.1:53
  tsig: {name: sipctl, secret_env: SIPCTL_TSIG_SECRET}
asterisk:
  tls: {cert_file: /etc/asterisk/keys/a.pem, key_file: /etc/asterisk/keys/a.key}
firewall: {}
fail2ban: {}
webrtc:
  page: {title: "Call us", names: [director]}
"""


TLS_LINE = "  tls: {cert_file: /etc/asterisk/keys/a.pem, key_file: /etc/asterisk/keys/a.key}\n"


def sections_of(text: str) -> dict[str, dict[str, str]]:
    return {s.name: dict(s.items) for s in parse_sections(text)}


def problems(text: str) -> list[str]:
    try:
        return cross_checks(load_spec_text(text, source="sipctl.yaml"))
    except SpecError as exc:
        return exc.problems or [exc.message]


def test_the_base_spec_agrees() -> None:
    assert problems(BASE) == []


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (TLS_LINE, "  rtp: {start: 10000, end: 20000}\n", "asterisk.tls"),
        ("  wss: {port: 8089}\n", "", "transports.wss, which is not enabled"),
        ("names: [director]", "names: [nobody]", "nobody is neither in users"),
        ("  wss: {port: 8089}", "  wss: {port: 22}", "firewall.ssh_port"),
        ("  udp: {port: 5060}", "  tcp: {port: 8089}", "both use TCP port 8089"),
    ],
)
def test_webrtc_mistakes_are_named(old: str, new: str, words: str) -> None:
    text = BASE.replace(old, new)
    found = problems(text)
    assert any(words in p and "sipctl.yaml:" in p for p in found), found


def test_wss_port_is_opened_and_banned() -> None:
    spec = load_spec_text(BASE).spec
    assert "accept tcp 8089" in desired_ruleset(spec)["records"]
    assert "8089" in ban_ports(spec).split(",")


def test_browser_endpoint_is_a_second_guest_in_the_same_context() -> None:
    spec = load_spec_text(BASE).spec
    sections = sections_of(pjsip_text(spec))
    plain, browser = sections["sipctl-guest"], sections["sipctl-browsers"]
    assert plain["context"] == browser["context"] == "guest-call"
    assert "webrtc" not in plain and browser["webrtc"] == "yes"
    assert browser["allow"] == "opus,ulaw,alaw"  # Opus first: passed through to Opus phones
    assert plain["allow"] == "ulaw,alaw,g722,gsm"  # plain SIP guests as before
    assert sections["sipctl-wss"] == {"type": "transport", "protocol": "wss", "bind": "0.0.0.0"}
    assert not any("password" in key or "auth" in key for key in browser)


def test_naptr_websocket_is_off_by_default_and_adds_naptr_and_srv() -> None:
    def records(text: str) -> dict[tuple[str, str], list[str]]:
        spec = load_spec_text(text).spec
        return {(r.address.kind, r.address.name): r.value["records"] for r in render_dns(spec)}

    plain = records(BASE)
    assert ("SRV", "_sips._ws.mysite.ru.") not in plain
    assert not any("SIPS+D2W" in r for r in plain[("NAPTR", "mysite.ru.")])
    on = records(
        BASE.replace("  provider: rfc2136", "  provider: rfc2136\n  naptr_websocket: true")
    )
    assert on[("SRV", "_sips._ws.mysite.ru.")] == ["10 0 8089 asterisk.mysite.ru."]
    assert '40 10 "s" "SIPS+D2W" "" _sips._ws.mysite.ru.' in on[("NAPTR", "mysite.ru.")]


@pytest.mark.parametrize(
    ("value", "target", "path"),
    [
        ("local:/var/www/html/call", "local", "/var/www/html/call"),
        (
            "ssh://root@web.mysite.ru:2222:/var/www/call",
            "ssh://root@web.mysite.ru:2222",
            "/var/www/call",
        ),
        ("dir:state/web:/srv/www", "dir:state/web", "/srv/www"),
    ],
)
def test_publish_is_target_and_path(value: str, target: str, path: str) -> None:
    spec = load_spec_text(BASE + f"  publish: {value}\n").spec
    assert spec.webrtc is not None and spec.webrtc.publish is not None
    assert split_publish(spec.webrtc.publish) == (target, path)


@pytest.mark.parametrize("value", ["/var/www", "local", "ftp://x:/y", "local:relative"])
def test_bad_publish_is_refused(value: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(BASE + f"  publish: {value!r}\n", source="sipctl.yaml")
    assert "publish" in str(info.value.problems or info.value.message)


def test_page_calls_every_user_and_room_by_default() -> None:
    text = BASE.replace(
        '  page: {title: "Call us", names: [director]}\n', "  host: pbx.mysite.ru\n"
    )
    text = text.replace("users:\n", "rooms:\n  seminar: {}\nusers:\n")
    spec = load_spec_text(text).spec
    assert spec.page_names() == ("director", "alex", "seminar")
    assert problems(text) == []


def test_opus_off_leaves_browsers_ulaw_and_alaw() -> None:
    spec = load_spec_text(BASE.replace("wss: {port: 8089}", "wss: {port: 8089, opus: false}")).spec
    assert sections_of(pjsip_text(spec))["sipctl-browsers"]["allow"] == "ulaw,alaw"
