"""asterisk.tls.acme: the spec model and the offline checks of certificates by ACME."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipctl.errors import SpecError
from sipctl.schemas.checks import certificate_names, cross_checks
from sipctl.schemas.loader import LoadedSpec, load_spec_text

BASE = """\
version: 1
domain: mysite.ru
transports: {udp: {port: 5060}, tls: {port: 5061}}
servers:
  - {host: asterisk.mysite.ru, ipv4: [203.0.113.10]}
  - {host: second.mysite.ru, ipv4: [203.0.113.11]}
dns:
  provider: rfc2136
  server: 127.0.0.1:53
  tsig: {name: sipctl, secret_env: SIPCTL_TSIG_SECRET}
asterisk:
  tls:
    cert_file: /etc/asterisk/keys/asterisk.pem
    key_file: /etc/asterisk/keys/asterisk.key
    acme:
      directory: https://acme-v02.api.letsencrypt.org/directory
      email: hostmaster@mysite.ru
      renew_days: 30
      ca_file: null
"""


def load(text: str) -> LoadedSpec:
    return load_spec_text(text, source="s.yaml", base_dir=Path("/tmp"))


def test_the_documented_section_loads_and_names_domain_then_servers() -> None:
    loaded = load(BASE)
    assert cross_checks(loaded) == []
    tls = loaded.spec.asterisk.tls  # type: ignore[union-attr]
    assert tls is not None and tls.acme is not None and tls.acme.renew_days == 30
    assert certificate_names(loaded.spec) == [
        "mysite.ru",
        "asterisk.mysite.ru",
        "second.mysite.ru",
    ]


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("directory", "http://acme.example/dir", "https://"),
        ("directory", "https://acme.example/dir x", "https://"),
        ("email", "not an address", "e-mail"),
        ("renew_days", "0", "from 1 to 365 (found 0)"),
        ("renew_days", "400", "from 1 to 365 (found 400)"),
        ("unknown", "1", "unknown"),
    ],
)
def test_bad_values_are_refused_with_file_and_line(key: str, value: str, words: str) -> None:
    text = BASE.replace("      renew_days: 30\n", f"      renew_days: 30\n      {key}: {value}\n")
    if key in ("directory", "email", "renew_days"):
        text = BASE.replace(
            next(line for line in BASE.splitlines() if line.strip().startswith(f"{key}:")),
            f"      {key}: {value}",
        )
    with pytest.raises(SpecError) as raised:
        load(text)
    assert "s.yaml:" in str(raised.value)
    assert words.lower() in str(raised.value).lower() or "extra" in str(raised.value).lower()


def test_acme_without_dns_is_refused() -> None:
    text = BASE.split("dns:\n")[0] + "asterisk:\n" + BASE.split("asterisk:\n")[1]
    [problem] = cross_checks(load(text))
    assert "asterisk.tls.acme" in problem and "dns" in problem


def test_a_name_outside_the_zone_cannot_be_challenged() -> None:
    text = BASE.replace("second.mysite.ru", "pbx.elsewhere.example")
    [problem] = cross_checks(load(text))
    assert "pbx.elsewhere.example" in problem and "_acme-challenge" in problem


def test_cert_and_key_must_differ() -> None:
    text = BASE.replace("/etc/asterisk/keys/asterisk.key", "/etc/asterisk/keys/asterisk.pem")
    with pytest.raises(SpecError, match="two different files"):
        load(text)
