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
