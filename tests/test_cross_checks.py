"""Cross-layer checks: each mismatch is caught offline and names both sides with file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fixtures.common import EXAMPLES
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.schemas.checks import cross_checks, cross_warnings
from sipctl.schemas.loader import LoadedSpec, load_spec, load_spec_text

BASE = """\
version: 1
domain: mysite.ru
transports:
  udp: {port: 5060}
  tcp: {port: 5060}
  tls: {port: 5061}
servers:
  - host: asterisk.mysite.ru
    ipv4: [203.0.113.10]
users:
  director: 105
  "101": 101
dns:
  provider: rfc2136
  server: 127.0.0.1:53
  tsig: {name: sipctl, secret_env: SIPCTL_TSIG_SECRET}
asterisk:
  rtp: {start: 10000, end: 20000}
  tls: {cert_file: /etc/asterisk/keys/a.pem, key_file: /etc/asterisk/keys/a.key}
firewall:
  ssh_port: 22
fail2ban:
  logpath: /var/log/asterisk/messages
"""


def load(text: str) -> LoadedSpec:
    return load_spec_text(text, source="s.yaml", base_dir=Path("/tmp"))


def positions(message: str) -> list[str]:
    """The ``file:line`` parts of a message (columns left out)."""
    return re.findall(r"s\.yaml:\d+(?=:\d+)", message)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_have_no_cross_layer_problems(example: Path) -> None:
    assert cross_checks(load_spec(example)) == []


def test_base_is_consistent() -> None:
    assert cross_checks(load(BASE)) == []
    assert cross_warnings(load(BASE)) == []


def test_tls_without_cert_names_both_sides() -> None:
    text = BASE.replace(
        "  tls: {cert_file: /etc/asterisk/keys/a.pem, key_file: /etc/asterisk/keys/a.key}\n", ""
    )
    [problem] = cross_checks(load(text))
    assert "transports.tls" in problem and "asterisk.tls" in problem
    assert positions(problem) == ["s.yaml:6", "s.yaml:17"]


def test_tls_and_tcp_on_one_port() -> None:
    [problem] = cross_checks(load(BASE.replace("tls: {port: 5061}", "tls: {port: 5060}")))
    assert "transports.tls and transports.tcp" in problem
    assert len(positions(problem)) == 2


def test_sip_port_inside_rtp_range() -> None:
    text = BASE.replace("udp: {port: 5060}", "udp: {port: 12000}")
    [problem] = cross_checks(load(text))
    assert "transports.udp port 12000 lies inside asterisk.rtp 10000-20000" in problem
    assert problem.endswith("move the port or the range")  # what to do, not only what is
    assert positions(problem) == ["s.yaml:4", "s.yaml:18"]


def test_sip_port_equal_to_ssh_port() -> None:
    text = BASE.replace("tcp: {port: 5060}", "tcp: {port: 2222}").replace(
        "ssh_port: 22", "ssh_port: 2222"
    )
    [problem] = cross_checks(load(text))
    assert "firewall.ssh_port" in problem and "transports.tcp" in problem
    assert "give SIP another port" in problem and "or set ssh_port" in problem
    assert len(positions(problem)) == 2


def test_dns_without_servers() -> None:
    text = BASE.replace("servers:\n  - host: asterisk.mysite.ru\n    ipv4: [203.0.113.10]\n", "")
    [problem] = cross_checks(load(text))
    assert "NAPTR and SRV" in problem and "servers is empty" in problem


def test_server_inside_zone_without_address() -> None:
    text = BASE.replace("    ipv4: [203.0.113.10]\n", "")
    [problem] = cross_checks(load(text))
    assert "asterisk.mysite.ru is inside the zone mysite.ru" in problem
    assert positions(problem) == ["s.yaml:8", "s.yaml:12"]


def test_server_outside_zone_is_fine_but_noted() -> None:
    text = BASE.replace("host: asterisk.mysite.ru", "host: pbx.hosted.example")
    assert cross_checks(load(text)) == []
    [note] = cross_warnings(load(text))
    assert "outside the zone" in note


def test_a_renderer_that_drifts_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # The checks read the firewall and fail2ban renderers; one that forgets TLS is caught.
    import sipctl.schemas.checks as checks

    def records(spec: object) -> list[tuple[str, int, int]]:
        return [("udp", 5060, 5060), ("tcp", 5060, 5060), ("udp", 10000, 10999)]

    def jail(spec: object) -> set[tuple[str, int]]:
        return {("udp", 5060), ("tcp", 5060)}

    monkeypatch.setattr(checks, "firewall_records", records)
    monkeypatch.setattr(checks, "jail_ports", jail)
    problems = cross_checks(load(BASE))
    assert len(problems) == 3, problems
    assert "transports.tls listens on tcp/5061" in problems[0]
    assert "does not open it" in problems[0]
    assert "fail2ban jail" in problems[1] and "tcp/5061" in problems[1]
    assert "asterisk.rtp is 10000-20000" in problems[2]
    assert "opens the UDP ranges 10000-10999" in problems[2]
    assert all(len(positions(p)) == 2 for p in problems)


def test_the_real_renderers_agree_with_the_spec() -> None:
    from sipctl.schemas.checks import firewall_opens, jail_ports

    spec = load(BASE).spec
    assert firewall_opens(spec, "udp", 5060) and firewall_opens(spec, "tcp", 5061)
    assert firewall_opens(spec, "udp", 10000, 20000)
    assert not firewall_opens(spec, "udp", 5061)
    assert {("udp", 5060), ("tcp", 5060), ("tcp", 5061)} <= jail_ports(spec)


def test_user_warnings() -> None:
    text = BASE.replace('  "101": 101\n', '  "105": 101\n')
    notes = cross_warnings(load(text))
    assert any("sip:105 rings 101" in n and "users.director" in n for n in notes)
    assert cross_checks(load(text)) == []  # two names may share one extension: allowed


def test_names_that_differ_only_in_case_are_one_name() -> None:
    """Callers reach a name in any case, so Director and director would be one address."""
    text = BASE.replace('  "101": 101\n', "  Director: 107\n")
    [problem] = cross_checks(load(text))
    assert "users.Director differs only in case from users.director" in problem
    assert len(positions(problem)) == 2
    rooms = BASE + "rooms:\n  DIRECTOR: {}\n"
    [problem] = cross_checks(load(rooms))
    assert "rooms.DIRECTOR differs only in case from users.director" in problem


@settings(max_examples=examples(150), deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["101", "102", "103", "alex", "Alex"]),
        st.one_of(st.sampled_from(["101", "102", "103"]), st.just({"ring": ["101"]})),
        min_size=1,
    )
)
def test_the_extension_owner_note_names_the_first_other_user(users: dict[str, object]) -> None:
    """users.NAME (digits) that rings something else, while NAME is another user's
    extension: the note names the first such user, as a scan of all users would."""
    import json

    body = "".join(f"  {json.dumps(n)}: {json.dumps(t)}\n" for n, t in users.items())
    text = BASE.replace('  director: 105\n  "101": 101\n', body)
    loaded = load(text)
    expected = []
    for name, ext in loaded.spec.users.items():
        owner = next((n for n, e in loaded.spec.users.items() if e == name and n != name), None)
        if name.isdigit() and name != ext and owner is not None:
            expected.append((name, owner))
    notes = cross_warnings(loaded)
    found = [
        re.search(r"sip:(\S+) rings .*is also the extension of users\.(\S+) \(", n) for n in notes
    ]
    assert [m.groups() for m in found if m] == expected


def test_validate_shows_the_warnings(tmp_path: Path) -> None:
    """validate prints what is allowed but probably a mistake (on stderr, exit 0): the
    warnings are for the user, not only for these tests."""
    from fixtures.common import sipctl_in_process

    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE.replace('  "101": 101\n', '  "105": 101\n'))
    result = sipctl_in_process("validate", "-f", str(spec))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert re.search(r"Warning: .*sip:105 rings 101", result.stderr), result.stderr


def test_outbound_needs_pjsip() -> None:
    assert cross_checks(load(BASE + "outbound: {}\n")) == []
    [problem] = cross_checks(
        load(BASE.replace("asterisk:\n", "asterisk:\n  channel: sip\n") + "outbound: {}\n")
    )
    assert "channel: pjsip" in problem


def test_a_hosting_customer_is_not_warned_of_its_hosts_servers(tmp_path: Path) -> None:
    """A customer's SRV records point at its host's servers, outside its zone by design; a
    customer that gives servers of its own is warned of them as any spec is."""
    hosting = EXAMPLES / "hosting"
    for path in sorted(hosting.glob("*.yaml")):
        (tmp_path / path.name).write_text(path.read_text())
    alpha = tmp_path / "alpha.example.yaml"
    assert cross_warnings(load_spec(alpha)) == []
    alpha.write_text(
        alpha.read_text() + "servers:\n  - host: pbx1.hoster.example\n    ipv4: [203.0.113.10]\n"
    )
    [note] = cross_warnings(load_spec(alpha))
    assert note.startswith(f"{alpha}:20:5: pbx1.hoster.example is outside the zone"), note
