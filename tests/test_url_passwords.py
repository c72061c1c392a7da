"""A URL's password written into any string of a spec is never repeated in sipctl's output.

A spec's error goes to CI logs and merge request comments (the plan job's), wider than the
repository: ``asterisk.target: ssh://root:PASSWORD@pbx`` and ``asterisk.tls.acme.directory:
https://user:PASSWORD@acme.example/directory`` were quoted back whole. Every string field of
the schema (tests/spec_strategies.py) gets such a URL, in every command that reads a spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import FULL_SPEC, set_at, string_paths

from sipctl.cli import run
from sipctl.output import without_passwords

# "Q9" starts and "Z8" ends no word of a message: found in the output, a part of the password
# was repeated from the spec. User and password hold every character a URL's user part may
# (RFC 3986 sub-delims: quotes too) and more: both quotes at once, whitespace, '@' and ':',
# which no scrub of the text can tell from the end of a quoted value
password = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789@/:%!$&*+,;=.'()~\" \t", max_size=16
).map(lambda text: f"Q9{text}Z8")
scheme = st.sampled_from(["ssh", "https", "http", "dir", "sftp"])
user = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-'!$&()*+,;=~\" \t@:", max_size=8)
host = st.sampled_from(["pbx.mysite.ru", "192.0.2.1", "[2001:db8::1]", "acme.example:8443"])
tail = st.sampled_from(["", "/", "/directory", ":/var/www/call", ":22"])


@settings(max_examples=examples(300), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(string_paths()),
    url=st.tuples(scheme, user, password, host, tail),
)
def test_no_error_repeats_a_urls_password(
    path: tuple[str | int, ...],
    url: tuple[str, str, str, str, str],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kind, name, secret, where, rest = url
    data = set_at(FULL_SPEC, path, f"{kind}://{name}:{secret}@{where}{rest}")
    spec = tmp_path_factory.mktemp("url") / "sipctl.yaml"
    spec.write_text(yaml.safe_dump(data, allow_unicode=True))
    for command in (["validate"], ["validate", "--json"]):
        code = run([*command, "-f", str(spec)])
        out, err = capsys.readouterr()
        assert "Q9" not in out + err and "Z8" not in out + err, out + err
        assert code == 0 or str(spec) in out + err  # a path that takes it: a file's name


def test_only_the_password_is_hidden() -> None:
    assert (
        without_passwords("'ssh://root:p@ss/w:rd@pbx:22' is not a target")
        == "'ssh://root:***@pbx:22' is not a target"
    )
    unchanged = ["'ssh://root@pbx'", "sip:director@mysite.ru", "'https://a.example/x:y@z'"]
    assert [without_passwords(text) for text in unchanged] == unchanged


def test_a_password_in_a_target_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        yaml.safe_dump(set_at(FULL_SPEC, ("asterisk", "target"), "ssh://root:Q9hunter2@pbx"))
    )
    assert run(["plan", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "asterisk.target: 'ssh://root:***@pbx' is not a target" in err
    assert "Q9hunter2" not in err


@pytest.mark.parametrize("target", ["ssh://root:pa ss@pbx", "ssh://ro'ot:p\"a'ss@pbx"])
def test_a_password_of_whitespace_or_both_quotes_is_masked_whole(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(yaml.safe_dump(set_at(FULL_SPEC, ("asterisk", "target"), target)))
    for command in (["validate"], ["validate", "--json"]):
        assert run([*command, "-f", str(spec)]) == 1
        out, err = capsys.readouterr()
        assert "ss@pbx" not in out + err and "***@pbx" in out + err, out + err


# Asterisk's dial strings and switches as `dialplan show` prints them (audit, import quote
# those lines): a trunk's password there is hidden, a variable's substring is not.
_DIAL_SECRET = st.text("abcdefghijklmnopqrstuvwxyz0123456789!%*+-_.~#", min_size=1, max_size=16)


@given(
    tech=st.sampled_from(["IAX2", "SIP", "iax2", "Realtime", "DAHDI2"]),
    user=st.text("abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=12),
    secret=_DIAL_SECRET,
    shape=st.sampled_from(
        [
            "Dial({t}/{u}:Q9{s}Z8@192.0.2.1/${{EXTEN}},30)",
            "Dial(PJSIP/105&{t}/{u}:Q9{s}Z8@trunk.example.net)",
            "switch => {t}/{u}:Q9{s}Z8@192.0.2.2/context [extensions.conf:9]",
            "'{t}/{u}:Q9{s}Z8@host'",
            "contact=sip:{u}:Q9{s}Z8@192.0.2.3:5060",
        ]
    ),
)
def test_a_dial_strings_password_is_hidden(tech: str, user: str, secret: str, shape: str) -> None:
    text = shape.format(t=tech, u=user, s=secret)
    shown = without_passwords(text)
    assert "Q9" not in shown and "Z8" not in shown, shown
    assert f"{user}:***@" in shown


def test_dial_strings_without_a_password_are_kept() -> None:
    kept = [
        "Dial(PJSIP/${EXTEN:1}@trunk)",
        "Dial(SIP/${EXTEN:1:3}@trunk,30)",
        "Dial(PJSIP/relay/sip:${EXTEN}@${SIPDOMAIN})",
        "Dial(PJSIP/0049301234@trunk)",
        "switch => Realtime/foo@bar",
        "sip:director@mysite.ru",
        "'https://a.example/x:y@z'",
        "rfc2136://[::1]:53/mysite.ru",
        "dir:/srv/pbx:a@b",
    ]
    assert [without_passwords(text) for text in kept] == kept


_NAMES = st.one_of(
    st.tuples(  # a name holding a word that says secret
        st.sampled_from(["", "TRUNK_", "my-", "Sip.", "db_"]),
        st.sampled_from(["PASSWORD", "secret", "Token", "creds", "passwd", "apikey"]),
        st.sampled_from(["", "_2", "_OLD"]),
    ),
    st.tuples(  # or ending in one
        st.sampled_from(["", "TRUNK_", "my-", "Sip.", "db_"]),
        st.sampled_from(["key", "PIN", "pwd", "Pw"]),
        st.sampled_from(["", "2", "_2", ".old"]),  # a version of the secret
    ),
    st.tuples(  # or in camelCase (boxPin, userKey, adminPIN)
        st.sampled_from(["box", "user", "trunk2", "sipTrunk", "db_admin"]),
        st.sampled_from(["Key", "Pin", "PIN", "Pwd", "Pw"]),
        st.sampled_from(["", "2", "_2", ".Old"]),
    ),
).map("".join)


@settings(max_examples=examples(200), deadline=None)
@given(
    name=_NAMES,
    value=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz0123456789!#$%&*+-./:<>?@[]^_`{}~", min_size=1
    ),
    around=st.sampled_from(["Set({})", "{}", "exten => 1,1,Set({},1)", "?{}&x=1", "a {} b"]),
    equals=st.sampled_from(["=", " = ", "\t=\t", " =", "= ", " => "]),
)
def test_a_value_whose_key_names_a_secret_is_never_printed(
    name: str, value: str, around: str, equals: str
) -> None:
    """Live config quoted in a message (a dialplan's ``Set(TRUNK_PASSWORD=...)``, a config
    line ``TRUNK_PASSWORD = ...``) is shown as the read gate answers it: the key's name
    (secret_names) hides its value."""
    shown = without_passwords(around.format(f"{name}{equals}Q9{value}"))
    assert "Q9" not in shown and f"{name}{equals}***" in shown


def test_an_option_and_an_ordinary_value_are_shown() -> None:
    for text in ("--password-file=PATH", "pinned=yes", "type=auth", "tlsprivatekey=/k.pem",
                 "tlsPrivateKey=/k.pem", "monkey=1", "turkey=1",
                 "pinned = yes", "key == 2", "password = (hidden by the read gate)"):  # fmt: skip
        assert without_passwords(text) == text
