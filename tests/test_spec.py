"""The spec: every error names file:line:col and the key; names are data, never code."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import SpecError
from sipctl.schemas import load_spec, load_spec_text
from sipctl.schemas.checks import cross_checks
from sipctl.schemas.names import check_user_name

BASE = """\
version: 1
domain: mysite.ru
users:
  director: 105
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, source="sipctl.yaml")
    return info.value.problems or [info.value.message]


def test_minimal_spec_has_sane_defaults() -> None:
    spec = load_spec_text(BASE).spec
    assert spec.domain == "mysite.ru"
    assert spec.users == {"director": "105"}
    assert set(spec.transports.enabled()) == {"udp", "tcp"}
    assert spec.transports.udp is not None and spec.transports.udp.port == 5060
    assert spec.dns is None and spec.asterisk is None


def test_bad_user_name_is_reported_with_line_and_key() -> None:
    text = BASE + "  dir ector: 106\n"
    [problem] = problems_of(text)
    assert problem.startswith("sipctl.yaml:5:3: users.dir ector: ")
    assert "' '" in problem


def test_unknown_key_names_its_place() -> None:
    text = BASE + "dns:\n  provider: rfc2136\n  server: 127.0.0.1\n  zonee: mysite.ru\n"
    [problem] = problems_of(text)
    assert problem.startswith("sipctl.yaml:8:3: dns.zonee: unknown key")


def test_inline_secret_is_refused_and_says_why() -> None:
    text = BASE + "dns:\n  server: 127.0.0.1\n  tsig: {name: k, secret: c2VjcmV0}\n"
    [problem] = problems_of(text)
    assert "sipctl.yaml:7:3: dns.tsig:" in problem
    assert "secret_env" in problem and "c2VjcmV0" not in problem


@pytest.mark.parametrize(
    "value",
    ["c2lwY3RsLXNlY3JldC1rZXk+Zm9v/YmFy=", "c2lwY3RsLXNl Y3JldA", "1c2lwY3RsLXNlY3JldA"],
)
def test_a_secret_env_that_is_no_name_is_not_quoted_back(value: str) -> None:
    """What stands in secret_env when it is no variable's name is most often the secret
    itself, pasted there: the error says so and never shows it."""
    text = BASE + f"dns:\n  server: 127.0.0.1\n  tsig: {{name: k, secret_env: '{value}'}}\n"
    [problem] = problems_of(text)
    assert "sipctl.yaml:7:3: dns.tsig:" in problem and "not an environment variable name" in problem
    assert value not in problem and value[:8] not in problem


def test_extensions_keep_their_text() -> None:
    spec = load_spec_text(BASE.replace("105", "0105") + '  "101": 101\n').spec
    assert spec.users == {"director": "0105", "101": "101"}


def test_duplicate_keys_are_an_error() -> None:
    [problem] = problems_of(BASE + "  director: 106\n")
    assert problem.startswith("sipctl.yaml:5:3: users.director: this key is given twice")


def test_bad_yaml_names_the_line() -> None:
    [problem] = problems_of("version: 1\ndomain: [mysite.ru\n")
    assert problem.startswith("sipctl.yaml:3:1: not valid YAML")


@pytest.mark.parametrize("lead", ["", "---\n", "# a spec\n---\n"])
def test_a_second_yaml_document_names_its_line_and_says_to_split(
    lead: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two documents said only "but found another document"."""
    from sipctl.cli import run

    spec = tmp_path / "sipctl.yaml"
    spec.write_text(lead + BASE + "---\n" + BASE)
    second = lead.count("\n") + BASE.count("\n") + 1
    assert run(["validate", "-f", str(spec)]) != 0
    err = capsys.readouterr().err
    assert f"sipctl.yaml:{second}:1: not valid YAML: the file holds one YAML document" in err
    assert "split them into two files" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "name",
    [
        "_X.",
        "a,b",
        "a;b",
        "a(b)",
        "a[1]",
        "x{y}",
        'q"',
        "q'",
        "a\\b",
        "a b",
        "a\tb",
        "h",
        "i",
        "t",
        "s",
        "-x",
        "a-b",
        "Ω",
        "a\nb",
        "x" * 81,
        "x" * 64,  # its pattern of every case would not fit Asterisk's 255 characters
        "S",  # s in any case is Asterisk's own extension
        "Fax",
        "",
        ".x",
        "!x",
        "a/b",
        "a@b",
        "a|b",
    ],
)
def test_hostile_user_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        check_user_name(name)


@pytest.mark.parametrize(
    "name",
    ["director", "101", "john.smith", "Alex", "+74951234567", "a_b", "sales*1", "x" * 63, "1" * 79],
)
def test_ordinary_user_names_are_accepted(name: str) -> None:
    assert check_user_name(name) == name


@pytest.mark.parametrize(
    ("snippet", "key", "words"),
    [
        ("users:\n  director: 10a5\n", "users.director", "not an extension"),
        ("servers:\n  - host: 'bad host.x'\n", "servers[0].host", "not a valid host name"),
        (
            "transports:\n  udp: {port: 70000}\n",
            "transports.udp.port",
            "from 1 to 65535 (found 70000)",
        ),
        ("asterisk:\n  rtp: {start: 20000, end: 10000}\n", "asterisk.rtp", "below rtp.end"),
        ("asterisk:\n  rtp: {start: 10001, end: 20000}\n", "asterisk.rtp", "even"),
        ("asterisk:\n  target: ftp://x\n", "asterisk.target", "not a target"),
        ("asterisk:\n  guest_context: default\n", "asterisk", "must differ"),
        ("firewall:\n  extra: ['tcp/0']\n", "firewall.extra[0]", "1-65535"),
        ("dns:\n  provider: zonefile\n", "dns", "needs 'file'"),
        ("dns:\n  provider: rfc2136\n", "dns", "needs 'server'"),
        ("transports: {}\n", "transports", "at least one transport"),
    ],
)
def test_each_error_names_the_key(snippet: str, key: str, words: str) -> None:
    text = "version: 1\ndomain: mysite.ru\n" + snippet
    problems = problems_of(text)
    assert any(f": {key}: " in p and words in p for p in problems), problems
    assert all(p.startswith("sipctl.yaml:") for p in problems)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert "no such spec file" in info.value.message


def test_relative_paths_resolve_against_the_spec(tmp_path: Path) -> None:
    spec_file = tmp_path / "sub" / "s.yaml"
    spec_file.parent.mkdir()
    spec_file.write_text(BASE)
    loaded = load_spec(spec_file)
    assert loaded.resolve_path("state/x.zone") == tmp_path / "sub" / "state" / "x.zone"


def test_user_long_form_rooms_video_and_sshd() -> None:
    text = BASE + (
        "  sales: {ring: [106, '107'], timeout: 15, fallback: 101}\n"
        "rooms:\n  seminar: {max_members: 3}\n  lobby: {}\n"
        "asterisk: {video: true, unavailable_sound: custom/away}\n"
        "fail2ban: {sshd: true}\n"
    )
    spec = load_spec_text(text).spec
    sales = spec.users["sales"]
    assert not isinstance(sales, str)
    assert (sales.ring, sales.timeout, sales.fallback) == (("106", "107"), 15, "101")
    assert sales.extensions() == ("106", "107", "101")
    assert spec.users["director"] == "105"  # the short form is unchanged
    assert spec.rooms["seminar"].max_members == 3 and spec.rooms["lobby"].max_members == 50
    assert spec.asterisk is not None and spec.asterisk.video
    assert spec.asterisk.sound_when_unavailable == "custom/away"
    assert spec.fail2ban is not None and spec.fail2ban.sshd


def test_bad_ring_group_and_room_are_reported_with_their_key() -> None:
    [problem] = problems_of(BASE + "  sales: {ring: [], fallback: 101}\n")
    assert problem.startswith("sipctl.yaml:5:11: users.sales.ring: ")
    problems = problems_of(BASE + "  sales: {ring: [10a]}\n")
    assert any("users.sales" in p and "10a" in p for p in problems), problems
    [problem] = problems_of(BASE + "rooms:\n  h: {}\n")
    assert problem.startswith("sipctl.yaml:6:3: rooms.h") and "special extension" in problem
    [problem] = problems_of(BASE + "rooms:\n  seminar: {max_members: 1}\n")
    assert "rooms.seminar.max_members" in problem


def test_a_room_named_like_a_user_is_refused_naming_both_lines() -> None:
    text = BASE + "  seminar: 106\nrooms:\n  seminar: {max_members: 5}\n"
    [problem] = cross_checks(load_spec_text(text, source="sipctl.yaml"))
    assert problem.startswith("sipctl.yaml:7:3: rooms.seminar has the name of users.seminar")
    assert "(sipctl.yaml:5:3)" in problem


def test_every_true_false_key_takes_only_true_or_false() -> None:
    """Every bool field of every model is strict (spec.py's Flag): pydantic alone would read
    'yes', 'no', 1 or "true" as a boolean. A field declared as a plain bool fails here."""
    from pydantic import BaseModel
    from pydantic.types import Strict

    from sipctl.schemas import spec as models

    flags = []
    for model in vars(models).values():
        if isinstance(model, type) and issubclass(model, BaseModel) and model is not BaseModel:
            for name, field in model.model_fields.items():
                if field.annotation is bool:
                    flags.append(f"{model.__name__}.{name}")
                    strict = any(isinstance(m, Strict) and m.strict for m in field.metadata)
                    assert strict, f"{model.__name__}.{name} is a plain bool: declare it as Flag"
    assert "Dns.naptr" in flags
    said = {
        "'yes'": "remove the quotes: must be true or false, and 'yes' in quotes is text to YAML",
        "1": "must be true or false, not the number 1",
        '"true"': "remove the quotes: must be true or false, and 'true' in quotes is text",
        "0": "must be true or false, not the number 0",
    }
    for text, words in said.items():
        [problem] = problems_of(BASE + f"dns:\n  server: 127.0.0.1\n  naptr: {text}\n")
        assert f"dns.naptr: {words}" in problem, problem


# The flags a property test sets, at a place where each is all that is wrong.
FLAG_PLACES = {
    "dns.naptr": "dns:\n  server: 127.0.0.1\n  naptr: {}\n",
    "fail2ban.enabled": "fail2ban:\n  enabled: {}\n",
    "firewall.allow_ping": "firewall:\n  allow_ping: {}\n",
}


@settings(max_examples=examples(60), deadline=None, derandomize=True, database=None)
@given(
    place=st.sampled_from(sorted(FLAG_PLACES)),
    value=st.one_of(
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(["yes", "no", "on", "off", "true", "False", "maybe", "1", "y", ""]),
        st.text(alphabet="abcxyz01 ", max_size=8),
        st.none(),
        st.lists(st.integers(), max_size=2),
    ),
)
def test_a_flag_that_is_not_true_or_false_says_what_yaml_made_of_it(
    place: str, value: object
) -> None:
    """Through the loader, for any value YAML writes that is not a boolean: the message
    says what was found (the number, the text, nothing, a list), and asks to remove quotes
    only from text that YAML reads as true or false without them."""
    import yaml

    written = yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
    [problem] = problems_of(BASE + FLAG_PLACES[place].format(written))
    message = problem.split(f"{place}: ", 1)[1]
    assert message.startswith(("must be true or false", "remove the quotes: must be true")), problem
    plain_bool = isinstance(value, str) and isinstance(yaml.safe_load(value or "~"), bool)
    assert ("quotes" in message) == plain_bool, problem
    if isinstance(value, str):
        assert repr(value) in message, problem
    elif isinstance(value, int):
        assert f"the number {value}" in message, problem
    elif value is None:
        assert "no value" in message, problem
    elif isinstance(value, list):
        assert "a list" in message, problem
