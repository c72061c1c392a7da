"""An ACME directory URL with a user or password in it is refused saying so, with the URL to
write instead, and the password is never printed (validate --json included)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run

SPEC = """\
version: 1
domain: example.org
transports: {udp: {}, tls: {}}
servers:
  - host: pbx.example.org
    ipv4: [192.0.2.5]
dns:
  provider: zonefile
  file: example.zone
asterisk:
  target: dir:pbx
  tls:
    cert_file: /etc/asterisk/k.pem
    key_file: /etc/asterisk/k.key
    acme: {directory: "DIRECTORY", email: hostmaster@example.org}
"""

WORD = st.text(string.ascii_letters + string.digits + "-._~!$&'()*+,;=%", min_size=6, max_size=12)


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(user=WORD, password=WORD)
def test_a_user_or_password_in_the_acme_url_is_refused_without_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], user: str, password: str
) -> None:
    password = f"Secret{password}"  # nothing else of the spec or the message holds it
    spec = tmp_path / "sipctl.yaml"
    directory = f"https://{user}:{password}@acme.example.org/directory"
    spec.write_text(SPEC.replace("DIRECTORY", directory.replace('"', '\\\\"')))
    capsys.readouterr()
    assert run(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "carries no user or password" in err, err
    assert "write 'https://acme.example.org/directory'" in err
    assert password not in err
    assert run(["validate", "-f", str(spec), "--json"]) == 1
    out = capsys.readouterr().out
    assert password not in out
    assert "carries no user or password" in json.loads(out)["errors"][0]["message"]
