"""The spec reference (docs/spec.md) and the JSON Schema say what `sipctl validate` enforces.

- docs/spec.md is generated from the models and committed: it must be current;
- every field has a description and every rule only validate checks has a docstring (the
  reference lists them): a test names the field that lacks one;
- a real JSON Schema validator (jsonschema, Draft 2020-12, formats checked) gives the same
  verdict as `sipctl validate` for every example and for a table of good and bad specs, one
  row per rule the schema can express;
- the messages for the usual mistakes say what to do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from fixtures.common import EXAMPLES, REPO

from sipctl.cli import run
from sipctl.errors import SpecError
from sipctl.schemas.checks import cross_checks
from sipctl.schemas.jsonschema import spec_schema
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.reference import (
    REFERENCE_FILE,
    missing_descriptions,
    missing_rule_docs,
    reference_text,
)

REGENERATE = "run: sipctl schema --kind reference > docs/spec.md"


def test_committed_reference_is_up_to_date() -> None:
    committed = (REPO / REFERENCE_FILE).read_text(encoding="utf-8")
    assert committed == reference_text(), f"docs/spec.md is out of date: {REGENERATE}"


def test_every_field_has_a_description() -> None:
    missing = missing_descriptions()
    assert not missing, (
        "these spec fields have no description (add Field(description=...) in "
        "schemas/spec.py; docs/spec.md, the JSON Schema and editors show it), then "
        f"{REGENERATE}: " + "; ".join(missing)
    )


def test_every_rule_validate_alone_checks_has_a_docstring() -> None:
    missing = missing_rule_docs()
    assert not missing, (
        "these validators/checks have no docstring; docs/spec.md lists each rule from its "
        "docstring (one sentence saying what must hold): " + ", ".join(missing)
    )


def test_every_schema_property_has_a_description() -> None:
    schema = spec_schema()
    missing: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, prop in node.get("properties", {}).items():
                if "description" not in prop:
                    missing.append(f"{path}{key}")
                walk(prop, f"{path}{key}.")
            for key in ("items", "additionalProperties"):
                walk(node.get(key), path)

    walk(schema, "")
    for name, definition in schema.get("$defs", {}).items():
        walk(definition, f"$defs.{name}.")
    assert not missing, missing


def test_optional_sections_are_object_or_null_not_any_of() -> None:
    schema = spec_schema()
    for section in ("dns", "asterisk", "firewall", "fail2ban"):
        node = schema["properties"][section]
        assert node["type"] == ["object", "null"], section
        assert "anyOf" not in node and "properties" in node
    assert "anyOf" not in json.dumps(schema["properties"]["dns"]["properties"]["tsig"])[:20]


def test_the_reference_says_what_a_user_name_and_a_host_name_may_hold() -> None:
    """The reference gave a name's type as "user name" or "host name" and nothing more: a
    new user learnt from the error of a first try that ivan-petrov and a domain in Cyrillic
    are refused. It says it in the words of the error itself."""
    from sipctl.schemas.names import USER_NAME_RULE, check_user_name
    from sipctl.schemas.reference import reference_text

    text = reference_text()
    assert "A **user name** (the keys of `users`, `rooms` and `cards.names`, and " in text
    assert USER_NAME_RULE in text and "punycode" in text
    with pytest.raises(ValueError, match=re.escape(USER_NAME_RULE)):
        check_user_name("ivan-petrov")


def test_the_reference_lists_every_key() -> None:
    text = reference_text()
    for key in ("`ttl`", "`secret_env`", "`guest_context`", "`confirm_seconds`", "`ignoreip`"):
        assert key in text
    assert "## Rules only `sipctl validate` checks" in text
    assert "DESIGN" not in text


# --- the schema and validate agree ------------------------------------------------------------

BASE: dict[str, Any] = {
    "version": 1,
    "domain": "mysite.ru",
    "servers": [{"host": "asterisk.mysite.ru", "ipv4": ["203.0.113.10"]}],
    "users": {"director": 105, "alex": "106"},
    "dns": {"server": "127.0.0.1:53", "tsig": {"name": "sipctl", "secret_env": "TSIG"}},
    "asterisk": {"target": "local", "rtp": {"start": 10000, "end": 20000}},
    "firewall": {"extra": ["tcp/443"]},
    "fail2ban": {"ignoreip": ["192.0.2.0/24"]},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """BASE with the key at dotted ``path`` set to ``value`` (``...`` deletes it)."""
    data = json.loads(json.dumps(BASE))
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return data


def _users(name: str, ext: Any = 105) -> dict[str, Any]:
    return {**BASE, "users": {name: ext}}


# (id, spec data, valid?) — one row per rule the JSON Schema can express.
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("base", BASE, True),
    ("version 2", _with("version", 2), False),
    ("version missing", _with("version", ...), False),
    ("domain missing", _with("domain", ...), False),
    ("unknown top key", _with("usres", {}), False),
    ("unknown dns key", _with("dns.tll", 60), False),
    ("domain one label", _with("domain", "localhost"), False),
    ("domain trailing dot", _with("domain", "mysite.ru."), True),
    ("domain label dash", _with("domain", "-bad.ru"), False),
    ("domain numeric tld", _with("domain", "10.0.0.1"), False),
    ("domain underscore", _with("domain", "my_site.ru"), False),
    ("domain label 64", _with("domain", "a" * 64 + ".ru"), False),
    ("extension int", _users("bob", 105), True),
    ("extension digits text", _users("bob", "0105"), True),
    ("extension letters", _users("bob", "10a"), False),
    ("extension negative", _users("bob", -5), False),
    ("extension float", _users("bob", 1.5), False),
    ("extension bool", _users("bob", True), False),
    ("extension 21 digits", _users("bob", "1" * 21), False),
    ("user special h", _users("h"), False),
    ("user special fax", _users("fax"), False),
    ("user leading underscore", _users("_X."), False),
    ("user dash", _users("a-b"), False),
    ("user plus first", _users("+49"), True),
    ("user star tilde", _users("a*b~c"), True),
    ("user space", _users("a b"), False),
    ("user 81 chars", _users("a" * 81), False),
    ("user special in capitals", _users("FAX"), False),
    ("user special S", _users("S"), False),
    ("user 63 letters", _users("a" * 63), True),
    ("user 64 letters", _users("a" * 63 + "1"), False),
    ("user 79 digits", _users("1" * 79), True),
    ("user 80 digits (Asterisk keeps 79)", _users("1" * 80), False),
    ("port text", _with("transports", {"udp": {"port": "5060"}}), False),
    ("port zero", _with("transports", {"udp": {"port": 0}}), False),
    ("port 65536", _with("transports", {"udp": {"port": 65536}}), False),
    ("port bool", _with("transports", {"udp": {"port": True}}), False),
    ("target local", _with("asterisk.target", "local"), True),
    ("target dir", _with("asterisk.target", "dir:state/pbx"), True),
    ("target ssh", _with("asterisk.target", "ssh://root@pbx.mysite.ru:22"), True),
    ("target ssh v6", _with("asterisk.target", "ssh://[2001:db8::1]:2222"), True),
    ("target ssh port 0", _with("asterisk.target", "ssh://pbx.mysite.ru:0"), False),
    ("target ssh port 70000", _with("asterisk.target", "ssh://pbx.mysite.ru:70000"), False),
    ("target http", _with("asterisk.target", "http://pbx"), False),
    ("target spaces", _with("asterisk.target", " local"), False),
    ("target user bad", _with("asterisk.target", "ssh://ro ot@pbx"), False),
    ("portspec range", _with("firewall.extra", ["udp/4000-4999"]), True),
    ("portspec colon", _with("firewall.extra", ["tcp/8000:8010"]), True),
    ("portspec proto", _with("firewall.extra", ["sctp/443"]), False),
    ("portspec no proto", _with("firewall.extra", ["443"]), False),
    ("portspec port 0", _with("firewall.extra", ["tcp/0"]), False),
    ("portspec 65536", _with("firewall.extra", ["tcp/65536"]), False),
    ("abs path", _with("asterisk.config_dir", "/opt/asterisk/etc"), True),
    ("relative path", _with("asterisk.config_dir", "etc/asterisk"), False),
    ("persist relative", _with("firewall.persist", "rules.v4"), False),
    ("ipv4 ok", _with("servers", [{"host": "a.mysite.ru", "ipv4": ["192.0.2.1"]}]), True),
    ("ipv4 octet", _with("servers", [{"host": "a.mysite.ru", "ipv4": ["192.0.2.256"]}]), False),
    ("ipv4 zero pad", _with("servers", [{"host": "a.mysite.ru", "ipv4": ["192.0.2.01"]}]), False),
    ("ipv4 is v6", _with("servers", [{"host": "a.mysite.ru", "ipv4": ["::1"]}]), False),
    ("ipv6 ok", _with("servers", [{"host": "a.mysite.ru", "ipv6": ["2001:db8::1"]}]), True),
    ("ipv6 bad", _with("servers", [{"host": "a.mysite.ru", "ipv6": ["2001:db8::g"]}]), False),
    ("ipv6 is v4", _with("servers", [{"host": "a.mysite.ru", "ipv6": ["192.0.2.1"]}]), False),
    ("server port", _with("dns.server", "192.0.2.53:5353"), True),
    ("server port 0", _with("dns.server", "192.0.2.53:0"), False),
    ("server v6", _with("dns.server", "[::1]:53"), True),
    ("context reserved", _with("asterisk.guest_context", "General"), False),
    ("context dot", _with("asterisk.guest_context", "guest.call"), False),
    ("context ok", _with("asterisk.guest_context", "guests_1"), True),
    ("sound path", _with("asterisk.reject_sound", "custom/bad-user"), True),
    ("sound extension", _with("asterisk.reject_sound", "bad.gsm"), False),
    ("sound dotdot", _with("asterisk.reject_sound", "../x"), False),
    ("tsig name", _with("dns.tsig", {"name": "a..b", "secret_env": "T"}), False),
    ("tsig env name", _with("dns.tsig", {"name": "k", "secret_env": "1BAD"}), False),
    (
        "tsig algorithm",
        _with("dns.tsig", {"name": "k", "secret_env": "T", "algorithm": "md5"}),
        False,
    ),
    ("provider name", _with("dns.provider", "Route53"), False),
    ("channel", _with("asterisk.channel", "iax"), False),
    ("rtp out of range", _with("asterisk.rtp", {"start": 10000, "end": 70000}), False),
    ("ttl zero", _with("dns.ttl", 0), False),
    ("timeout zero", _with("dns.timeout", 0), False),
    ("bantime forever", _with("fail2ban.bantime", -1), True),
    ("bantime -2", _with("fail2ban.bantime", -2), False),
    ("confirm 4", _with("firewall.confirm_seconds", 4), False),
    ("section null", _with("firewall", None), True),
    ("section list", _with("firewall", ["x"]), False),
    ("servers not list", _with("servers", {"host": "a.mysite.ru"}), False),
    ("naptr text", _with("dns.naptr", "yes"), False),
    ("program empty", _with("asterisk.program", "   "), False),
    ("program named", _with("asterisk.program", "pbx-1"), True),
]


def _validate_verdict(data: dict[str, Any]) -> bool:
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        loaded = load_spec_text(text, source="case.yaml")
    except SpecError:
        return False
    # the cross-layer checks are validate's alone; the table keeps them satisfied
    assert not cross_checks(loaded), cross_checks(loaded)
    return True


def _schema_verdict(data: dict[str, Any]) -> bool:
    validator = jsonschema.Draft202012Validator(
        spec_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return not list(validator.iter_errors(data))


@pytest.mark.parametrize(
    ("data", "valid"), [(d, v) for _, d, v in CASES], ids=[c[0] for c in CASES]
)
def test_schema_and_validate_agree(data: dict[str, Any], valid: bool) -> None:
    assert _validate_verdict(data) is valid
    assert _schema_verdict(data) is valid


def test_the_schema_itself_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(spec_schema())


def _is_spec(path: Path) -> bool:
    lines = path.read_text().splitlines()
    return "version: 1" in (ln.strip() for ln in lines) and any(
        ln.startswith("domain:") for ln in lines
    )


@pytest.mark.parametrize(
    "path",
    sorted(p for p in EXAMPLES.rglob("*.y*ml") if _is_spec(p)),
    ids=lambda p: str(p.relative_to(EXAMPLES)),
)
def test_every_example_passes_the_schema(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    errors = [e.message for e in jsonschema.Draft202012Validator(spec_schema()).iter_errors(data)]
    assert not errors


# --- messages -----------------------------------------------------------------------------------


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, source="s.yaml")
    return info.value.problems or [info.value.message]


HEAD = "version: 1\ndomain: mysite.ru\n"


def test_unknown_key_gets_a_did_you_mean() -> None:
    [problem] = _problems(HEAD + "dns:\n  server: 127.0.0.1\n  tll: 60\n")
    assert problem.startswith("s.yaml:5:3: dns.tll: unknown key 'tll'; did you mean 'ttl'?")
    assert "dns takes: provider, zone, server" in problem
    assert "DESIGN" not in problem
    [top] = _problems(HEAD + "usres: {}\n")
    assert "did you mean 'users'?" in top


def test_tabs_quoted_ports_and_booleans_are_said_in_plain_words() -> None:
    [tab] = _problems(HEAD + "users:\n\tdirector: 105\n")
    assert "use spaces, not tabs" in tab
    [port] = _problems(HEAD + "transports:\n  udp: {port: '5060'}\n")
    assert port.endswith(
        "transports.udp.port: remove the quotes: this is a whole number from 1 to 65535"
    )
    [flag] = _problems(HEAD + "dns:\n  server: 127.0.0.1\n  naptr: 'yes'\n")
    assert flag.endswith(
        "dns.naptr: remove the quotes: must be true or false, and 'yes' in quotes is text to YAML"
    )
    [section] = _problems(HEAD + "firewall: yes\n")
    assert "must be a section" in section
    [low] = _problems(HEAD + "firewall:\n  confirm_seconds: 2\n")
    assert low.endswith("must be a whole number of seconds from 5 to 3600 (found 2)")
    [quoted] = _problems("version: '1'\ndomain: mysite.ru\n")
    assert quoted.endswith("version: remove the quotes: version is the number 1")
    [other] = _problems("version: 2\ndomain: mysite.ru\n")
    assert other.endswith("version: must be 1 (the only spec version so far)")


def test_schema_output_reference_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schema", "--output", "reference"]) == 0
    assert capsys.readouterr().out == reference_text()
    assert run(["schema", "--output", "nonsense"]) == 1
