"""The DNS renderer and the canonical record text: pure, fast."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.update
import pytest
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV
from fixtures.bind import BindServer
from hypothesis import given
from hypothesis import strategies as st

from sipctl.reconciler.dns_records import (
    _absolute,
    absolute,
    canonical,
    canonical_text,
    naptr_text,
    parse,
    registry_hosts,
    registry_owner,
    srv_owner,
)
from sipctl.reconciler.render.dns import dns_artefacts, render_dns
from sipctl.reconciler.resources import Address
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.spec import Spec

BASE = """\
version: 1
domain: mysite.ru
transports: {udp: {port: 5060}, tcp: {port: 5060}, tls: {port: 5061}}
servers:
  - {host: asterisk.mysite.ru, ipv4: [203.0.113.10], ipv6: ['2001:DB8::0:10'], priority: 10}
  - {host: Second.MySite.ru., ipv4: [203.0.113.11], priority: 20, weight: 5}
  - {host: pbx.example.net, priority: 30}
dns:
  provider: rfc2136
  server: 192.0.2.53
  tsig: {name: sipctl, secret_env: SIPCTL_TSIG_SECRET}
  ttl: 600
"""


def spec(text: str = BASE) -> Spec:
    return load_spec_text(text).spec


def by_address(text: str = BASE) -> dict[Address, object]:
    return {r.address: r.value for r in render_dns(spec(text))}


def test_the_seed_renders_naptr_srv_a_aaaa_and_the_registry() -> None:
    found = by_address()
    assert found[Address("dns", "NAPTR", "mysite.ru.")] == {
        "ttl": 600,
        "records": [
            '10 10 "s" "SIP+D2U" "" _sip._udp.mysite.ru.',
            '20 10 "s" "SIP+D2T" "" _sip._tcp.mysite.ru.',
            '30 10 "s" "SIPS+D2T" "" _sips._tcp.mysite.ru.',
        ],
    }
    assert found[Address("dns", "SRV", "_sips._tcp.mysite.ru.")] == {
        "ttl": 600,
        "records": [
            "10 0 5061 asterisk.mysite.ru.",
            "20 5 5061 second.mysite.ru.",
            "30 0 5061 pbx.example.net.",
        ],
    }
    assert found[Address("dns", "A", "second.mysite.ru.")] == {
        "ttl": 600,
        "records": ["203.0.113.11"],
    }
    assert found[Address("dns", "AAAA", "asterisk.mysite.ru.")] == {
        "ttl": 600,
        "records": ["2001:db8::10"],
    }
    assert found[Address("dns", "TXT", "_sipctl.mysite.ru.")] == {
        "ttl": 600,
        "records": [
            '"host=asterisk.mysite.ru."',
            '"host=second.mysite.ru."',
            '"sipctl-registry=1"',
        ],
    }
    # each host of the zone carries the domain's claim on it (several domains may use it)
    for host in ("asterisk", "second"):
        assert found[Address("dns", "TXT", f"_sipctl-claim.{host}.mysite.ru.")] == {
            "ttl": 600,
            "records": ['"domain=mysite.ru."'],
        }
    # a host outside the zone gets no address records, and no claim
    assert not any("example.net" in a.name for a in found)
    assert len(found) == 10


def test_orders_can_be_overridden_and_naptr_turned_off() -> None:
    text = BASE.replace("udp: {port: 5060}", "udp: {port: 5060, order: 50, preference: 7}")
    naptr = by_address(text)[Address("dns", "NAPTR", "mysite.ru.")]
    assert isinstance(naptr, dict)
    assert '50 7 "s" "SIP+D2U" "" _sip._udp.mysite.ru.' in naptr["records"]
    off = by_address(BASE + "  naptr: false\n")
    assert Address("dns", "NAPTR", "mysite.ru.") not in off
    assert Address("dns", "SRV", "_sip._udp.mysite.ru.") in off


def test_a_disabled_transport_has_no_records() -> None:
    found = by_address(BASE.replace(", tls: {port: 5061}", ""))
    assert Address("dns", "SRV", "_sips._tcp.mysite.ru.") not in found
    naptr = found[Address("dns", "NAPTR", "mysite.ru.")]
    assert isinstance(naptr, dict) and len(naptr["records"]) == 2


def test_ensure_absent_renders_nothing() -> None:
    assert render_dns(spec(BASE + "  ensure: absent\n")) == []


def test_a_domain_inside_a_parent_zone() -> None:
    text = BASE.replace("domain: mysite.ru", "domain: voice.mysite.ru").replace(
        "  ttl: 600", "  ttl: 600\n  zone: mysite.ru"
    )
    found = by_address(text)
    assert Address("dns", "TXT", "_sipctl.voice.mysite.ru.") in found
    assert Address("dns", "A", "asterisk.mysite.ru.") in found  # in the zone, not the domain


def test_canonical_text_normalizes_case_dots_and_quoting() -> None:
    assert canonical_text("NAPTR", '10 10 S sip+d2u "" _SIP._UDP.MySite.RU') == (
        '10 10 "s" "SIP+D2U" "" _sip._udp.mysite.ru.'
    )
    assert naptr_text(10, 10, "S", "sip+d2u", "", "_sip._udp.mysite.ru") == (
        canonical_text("NAPTR", '10 10 "s" "SIP+D2U" "" _sip._udp.mysite.ru.')
    )
    assert canonical_text("SRV", "10 0 5060 Asterisk.MySite.ru") == "10 0 5060 asterisk.mysite.ru."
    assert canonical_text("AAAA", "2001:DB8:0:0::1") == "2001:db8::1"
    assert canonical_text("TXT", "plain") == '"plain"'
    hosts = registry_hosts([parse("TXT", '"host=A.mysite.ru" "junk"'), parse("TXT", '"x"')])
    assert hosts == ["a.mysite.ru."]


# Any name dnspython can hold: labels of any bytes (spaces, quotes, dots, \DDD), absolute or
# relative, the root alone.
_label = st.binary(min_size=1, max_size=8)
_name = st.builds(
    lambda labels, absolute: dns.name.Name([*labels, b""] if absolute else labels),
    st.lists(_label, max_size=4),
    st.booleans(),
).filter(lambda name: len(name.labels) > 0)
_u16 = st.integers(min_value=0, max_value=0xFFFF)
_string = st.binary(max_size=12)


@given(
    order=_u16,
    preference=_u16,
    flags=_string,
    service=_string,
    regexp=_string,
    name=_name,
    port=_u16,
)
def test_a_read_record_has_one_canonical_text_whether_its_own_text_is_given_or_not(
    order: int,
    preference: int,
    flags: bytes,
    service: bytes,
    regexp: bytes,
    name: dns.name.Name,
    port: int,
) -> None:
    """A read passes each record's own to_text() to canonical(), which then takes the NAPTR's
    replacement and the SRV's target from its end instead of writing them again."""
    naptr = NAPTR(
        dns.rdataclass.IN, dns.rdatatype.NAPTR, order, preference, flags, service, regexp, name
    )
    srv = SRV(dns.rdataclass.IN, dns.rdatatype.SRV, order, preference, port, name)
    for rdata in (naptr, srv):
        assert canonical(rdata, text=rdata.to_text()) == canonical(rdata)


@given(name=_name, transport=st.sampled_from(["udp", "tcp", "tls", "wss"]))
def test_the_names_below_a_domain_are_in_the_absolute_form_they_are_made_in(
    name: dns.name.Name, transport: str
) -> None:
    """absolute() of an owner name sipctl made below a domain is that text itself, as
    writing it again from its dnspython name gives."""
    if name == dns.name.root:
        return  # no domain
    try:
        owners = [srv_owner(transport, name.to_text()), registry_owner(name.to_text())]
    except dns.name.NameTooLong:
        return
    for owner in owners:
        assert absolute(owner) == owner == _absolute(owner)


@pytest.mark.programs
def test_artefacts_are_a_zone_snippet_and_an_update_policy_bind_accepts(tmp_path: Path) -> None:
    files = dns_artefacts(spec())
    assert sorted(files) == ["mysite.ru.update-policy.conf", "mysite.ru.zone-snippet"]
    snippet = files["mysite.ru.zone-snippet"]
    assert "_sip._udp.mysite.ru. 600 IN SRV 20 5 5060 second.mysite.ru." in snippet
    policy = files["mysite.ru.update-policy.conf"]
    assert 'grant "sipctl" name _sipctl-lock.mysite.ru. TXT;' in policy
    assert 'grant "sipctl" name second.mysite.ru. A AAAA;' in policy
    assert "pbx.example.net" not in policy
    assert "zonesub" not in policy and "subdomain" not in policy  # least privilege

    # BIND itself accepts the policy inside a zone block, and the snippet inside a zone
    (tmp_path / "zone.db").write_text(
        "$TTL 600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\n"
        "ns1 IN A 192.0.2.53\n" + snippet
    )
    (tmp_path / "named.conf").write_text(
        'key "sipctl" { algorithm hmac-sha256; secret "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"; };\n'
        f'zone "mysite.ru" {{ type primary; file "{tmp_path}/zone.db";\n{policy}}};\n'
    )
    checkconf = shutil.which("named-checkconf") or "/usr/bin/named-checkconf"
    result = subprocess.run(
        [checkconf, "-z", str(tmp_path / "named.conf")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_zonefile_spec_has_no_update_policy() -> None:
    text = BASE.replace(
        "  provider: rfc2136\n  server: 192.0.2.53\n  tsig: {name: sipctl, secret_env: SIPCTL_TSIG_SECRET}\n",
        "  provider: zonefile\n  file: mysite.zone\n",
    )
    assert sorted(dns_artefacts(spec(text))) == ["mysite.ru.zone-snippet"]


@pytest.mark.bind
def test_the_update_policy_lets_the_key_answer_acme_challenges_for_the_certificate_names(
    bind: BindServer,
) -> None:
    """With asterisk.tls.acme, apply writes TXT _acme-challenge.<name> with the same key:
    the rendered policy once left those names out, so BIND refused the first order. BIND
    itself, loaded with the rendered policy, now takes exactly those challenges."""
    zone = f"acme-{secrets.token_hex(3)}.test"
    text = (
        f"version: 1\ndomain: {zone}\ntransports: {{udp: {{port: 5060}}, tls: {{port: 5061}}}}\n"
        f"servers: [{{host: asterisk.{zone}, ipv4: [203.0.113.10]}}]\n"
        f"dns:\n  provider: rfc2136\n  server: '{bind.server}'\n"
        f"  tsig: {{name: {bind.key_name}, secret_env: SIPCTL_TSIG_SECRET}}\n"
        "asterisk:\n  target: dir:/nonexistent\n  tls:\n"
        "    cert_file: /etc/asterisk/keys/asterisk.pem\n"
        "    key_file: /etc/asterisk/keys/asterisk.key\n"
        f"    acme: {{email: hostmaster@{zone}}}\n"
    )
    policy = dns_artefacts(spec(text))[f"{zone}.update-policy.conf"]
    block = "".join(line for line in policy.splitlines() if not line.startswith("//"))
    bind.new_zone(zone, policy=block)
    try:

        def answer(name: str) -> str:
            update = dns.update.UpdateMessage(zone, keyring=bind.keyring)
            update.add(f"_acme-challenge.{name}.", 60, "TXT", '"token"')
            response = dns.query.tcp(update, bind.host, port=bind.port, timeout=10)
            return dns.rcode.to_text(response.rcode())

        assert answer(zone) == "NOERROR"
        assert answer(f"asterisk.{zone}") == "NOERROR"
        assert answer(f"other.{zone}") == "REFUSED"  # still least privilege
    finally:
        bind.delete_zone(zone)


def test_only_a_provider_that_updates_by_rfc2136_gets_an_update_policy() -> None:
    """The policy grants the spec's TSIG key; a zone file or an API (octoDNS) has no use
    for it, so ``render`` writes the zone snippet alone for them."""
    rfc2136 = BASE.split("dns:\n")[0]
    zonefile = rfc2136 + "dns: {provider: zonefile, file: mysite.ru.zone}\n"
    octodns = rfc2136 + (
        "dns:\n  provider: octodns\n  zone: mysite.ru\n"
        "  octodns: {class: octodns_powerdns.PowerDnsProvider, api_key: env/PDNS_API_KEY}\n"
    )
    assert sorted(dns_artefacts(spec(zonefile))) == ["mysite.ru.zone-snippet"]
    assert sorted(dns_artefacts(spec(octodns))) == ["mysite.ru.zone-snippet"]
    assert "mysite.ru.update-policy.conf" in dns_artefacts(spec())
