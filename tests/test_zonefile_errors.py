"""A zone file's parse error names file:line and the kind of problem, never a token of it.

The zone file may be in a place the runner's admin allows (``zone_files``: BIND's directory),
and the error reaches a merge-request comment: dnspython's words quote a line's token
(``unknown rdatatype 'WORD'``), sipctl's do not (providers/dns/zonefile_errors.py). Read by
the real provider through dnspython, the real parser.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import dns.exception
import dns.zone
import dns.zonefile
import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import ProviderError
from sipctl.providers.base import RunContext
from sipctl.providers.dns.zonefile import ZoneFileProvider
from sipctl.providers.dns.zonefile_errors import problem_kind
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


def _dnspython_exceptions() -> list[type[dns.exception.DNSException]]:
    """Every exception class of dnspython's zone reading and its checks of a whole zone."""
    return sorted(
        {
            kind
            for module in (dns.zone, dns.zonefile, dns.exception)
            for kind in vars(module).values()
            if isinstance(kind, type) and issubclass(kind, dns.exception.DNSException)
        },
        key=lambda kind: f"{kind.__module__}.{kind.__name__}",
    )


@settings(max_examples=examples(50), deadline=None)
@given(secret=SECRET)
def test_no_exception_class_is_told_by_its_name(secret: str) -> None:
    """Whatever dnspython raises (each class of dns.zone, dns.zonefile, dns.exception, a new
    one too), the words are sipctl's or dnspython's fixed ones: never the class's name, never
    what it was given; each check of a whole zone (dns.zone) in words of its own."""
    for kind in _dnspython_exceptions():
        for exc in (kind(), kind(secret)):
            words = problem_kind(str(exc), exc, ZONE + ".")
            assert kind.__name__ not in words and secret not in words, (kind, words)
            assert f"{kind.__module__}." not in words and words.strip(), (kind, words)
        if kind.__module__ == "dns.zone":
            assert words != str(kind()), (kind, words)
    assert _dnspython_exceptions()  # the enumeration found the classes


@pytest.mark.parametrize("kind", [k for k in _dnspython_exceptions() if k.__module__ == "dns.zone"])
def test_each_check_of_a_whole_zone_has_words_of_its_own(
    kind: type[dns.exception.DNSException],
) -> None:
    """dns.zone's classes each say what is wrong there, not their base's words."""
    words = problem_kind(str(kind()), kind(), ZONE)
    bases = [b for b in kind.__mro__[1:] if b.__module__ == "dns.zone"]
    assert all(words != problem_kind(str(b()), b(), ZONE) for b in bases), (kind, words)


def test_another_domain_s_zone_says_it_has_no_soa_here(tmp_path: Path) -> None:
    """The spec's domain changed while dns.file is still the old domain's zone: the file
    parses but holds no SOA at the zone's origin, and the error says so in words."""
    zone = tmp_path / "z.zone"
    zone.write_text(SOA.replace(ZONE, "old-site.test"))
    loaded = load_spec_text(SPEC, str(tmp_path / "s.yaml"), tmp_path)
    provider = ZoneFileProvider(loaded, RunContext(base_dir=tmp_path, env={}))
    with pytest.raises(ProviderError) as raised:
        provider.read(render_dns(loaded.spec))
    message = raised.value.message
    assert message == (
        f"zone file {zone} is not a valid zone for {ZONE}.: the file holds no SOA record at "
        f"the zone's origin {ZONE}: is dns.file the zone file of this domain? (a zone file's "
        "SOA is named by its domain)"
    ), message
