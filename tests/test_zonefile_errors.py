"""A zone file's parse error names file:line and the kind of problem, never a token of it.

The zone file may be in a place the runner's admin allows (``zone_files``: BIND's directory),
and the error reaches a merge-request comment: dnspython's words quote a line's token
(``unknown rdatatype 'WORD'``), sipctl's do not (providers/dns/zonefile_errors.py). Read by
the real provider through dnspython, the real parser.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import ProviderError
from sipctl.providers.base import RunContext
from sipctl.providers.dns.zonefile import ZoneFileProvider
from sipctl.reconciler.render.dns import render_dns
from sipctl.schemas.loader import load_spec_text

ZONE = "mysite.test"
SOA = (
    f"$ORIGIN {ZONE}.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\n"
    "ns1 IN A 127.0.0.1\n"
)
SPEC = (
    f"version: 1\ndomain: {ZONE}\nservers: [{{host: asterisk.{ZONE}, ipv4: [203.0.113.10]}}]\n"
    "dns: {provider: zonefile, file: z.zone}\n"
)
# lines dnspython refuses wherever the secret token {t} stands (the token starts with 'q',
# so it is never a number, a TTL, a class or a type)
BAD_LINES = (
    "www IN {t} 192.0.2.1",
    "www {t} IN A 192.0.2.1",
    "www IN A {t}",
    "www IN AAAA {t}",
    "{t} IN A 300.1.1.1",
    "www IN A 192.0.2.1 {t}",
    "www IN MX {t} mail",
    "www IN MX 10 mail {t}",
    "_sip._udp IN SRV 10 0 {t} sip",
    "_sip._udp IN SRV 10 0 5060 sip {t}",
    '@ IN NAPTR 10 {t} "S" "SIP+D2U" "" _sip._udp',
    '@ IN NAPTR 10 10 "S" "SIP+D2U" "" _sip._udp {t}',
    'www IN TXT "{t}',
    "www IN SSHFP 1 1 {t}",
    "www IN TYPE65534 \\# 3 {t}",
    "www IN HINFO {t}",
    "www IN SOA {t}",
    "${t} value",
    "$TTL {t}",
    "$GENERATE 1-{t} a$ A 192.0.2.1",
    "{t}{t}{t}{t}{t}{t}{t}{t} IN A 192.0.2.1",
    "{t} IN CNAME elsewhere\n{t} IN A 192.0.2.1",
    "www {t}",
    "{t}",
)
GOOD_LINE = st.sampled_from(
    ["www IN A 192.0.2.80", 'www IN TXT "hello"', "mail IN MX 10 mail", "", "; a comment"]
)
SECRET = st.from_regex(r"q[a-z0-9]{7,15}", fullmatch=True)


@settings(max_examples=examples(200), deadline=None)
@given(
    before=st.lists(GOOD_LINE, max_size=4),
    bad=st.sampled_from(BAD_LINES),
    after=st.lists(GOOD_LINE, max_size=4),
    secret=SECRET,
)
def test_a_parse_error_never_shows_a_token_of_the_zone_file(
    before: list[str], bad: str, after: list[str], secret: str
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        zone = base / "z.zone"
        zone.write_text(SOA + "\n".join([*before, bad.format(t=secret), *after]) + "\n")
        loaded = load_spec_text(SPEC, str(base / "s.yaml"), base)
        provider = ZoneFileProvider(loaded, RunContext(base_dir=base, env={}))
        with pytest.raises(ProviderError) as raised:
            provider.read(render_dns(loaded.spec))
    message = raised.value.message
    assert secret not in message.lower(), message
    assert message.startswith(f"zone file {zone} is not a valid zone for {ZONE}."), message


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("www IN QSECRET 192.0.2.1", "unknown record type"),
        ("www IN A 192.0.2.1 qsecret", "more fields than the record type has"),
        ("$QSECRET value", "a $ directive that is unknown or not allowed"),
        ("www IN A qsecret", "Text input is malformed."),
        ("www IN MX qsecret mail", "expecting an integer"),
    ],
)
def test_the_error_says_where_and_what_kind(tmp_path: Path, line: str, kind: str) -> None:
    zone = tmp_path / "z.zone"
    zone.write_text(f"{SOA}www IN A 192.0.2.80\n{line}\n")
    loaded = load_spec_text(SPEC, str(tmp_path / "s.yaml"), tmp_path)
    provider = ZoneFileProvider(loaded, RunContext(base_dir=tmp_path, env={}))
    with pytest.raises(ProviderError) as raised:
        provider.read(render_dns(loaded.spec))
    message = raised.value.message
    # line 7; dnspython names the next when it finds the error at the line's end
    assert message.endswith((f"{zone}:7: {kind}", f"{zone}:8: {kind}")), message
