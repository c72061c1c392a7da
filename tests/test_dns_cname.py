"""A CNAME where the spec wants records stops the plan, on every way DNS is read.

A name with a CNAME holds no other record (RFC 1034 3.6.2): BIND accepts an UPDATE adding an
SRV beside one and adds nothing (RFC 2136 3.4.2.2), and a zone file holding both does not
load. sipctl planned the SRV, said 'Apply complete!', planned it again on every run, and
callers kept following the CNAME (``_sip._udp CNAME other``, ``other SRV ... evil.example.``).
Over RFC 2136 (BIND), from a zone file, and through octoDNS (PowerDNS, Route53 in moto).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.bind import BindServer, bind_env, dns_spec, zone_text
from fixtures.common import run_sipctl, sipctl_in_process
from fixtures.moto_route53 import MotoRoute53
from fixtures.powerdns import PowerDnsServer
from octodns_specs import PDNS_KEY_ENV, pdns_spec, route53_spec, write
from octodns_specs import sipctl as octodns_sipctl

from sipctl.providers.base import RunContext
from sipctl.providers.dns.octodns import OctodnsProvider, collect
from sipctl.schemas.loader import load_spec_text

# owner (relative) -> what the spec wants there
OWNED = {"_sip._udp": "SRV", "_sipctl": "TXT", "asterisk": "A"}
# a zone larger than one transfer message: read by queries
FILLER = "".join(f'filler{i} IN TXT "{"x" * 60}"\n' for i in range(600))


@pytest.mark.parametrize("owner", sorted(OWNED))
@pytest.mark.parametrize("read", ["transfer", "queries"])
def test_a_cname_at_an_owned_name_stops_the_plan_over_rfc2136(
    bind: BindServer, tmp_path: Path, owner: str, read: str
) -> None:
    extra = f"{owner} IN CNAME other\nother IN SRV 10 0 5060 evil.example.\n"
    zone = bind.new_zone(extra=extra + (FILLER if read == "queries" else ""))
    try:
        spec = tmp_path / "sipctl.yaml"
        spec.write_text(dns_spec(bind, zone))
        for command in (["plan"], ["apply", "--auto-approve"]):
            result = run_sipctl(*command, "-f", str(spec), env=bind_env(bind))
            text = " ".join(result.stderr.split())
            assert result.returncode == 1, result.stdout + result.stderr
            assert f"DNS {owner}.{zone}. is a CNAME (to other.{zone}.)" in text
            assert f"sipctl's {OWNED[owner]} there" in text
            assert f"delete the CNAME at {owner}.{zone}." in text
        assert f"{owner}.{zone}. 3600 CNAME other.{zone}." in bind.zone_records(zone)
    finally:
        bind.delete_zone(zone)


def test_a_cname_at_an_owned_name_stops_the_plan_on_a_zone_file(tmp_path: Path) -> None:
    zone = "mysite.test"
    (tmp_path / "state").mkdir()
    zone_file = tmp_path / "state" / f"{zone}.zone"
    zone_file.write_text(zone_text(zone, "_sip._tcp IN CNAME other\nother IN A 192.0.2.1\n"))
    before = zone_file.read_text()
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        f"version: 1\ndomain: {zone}\ntransports: {{tcp: {{port: 5060}}}}\n"
        f"servers: [{{host: pbx.{zone}, ipv4: [203.0.113.10]}}]\n"
        f"dns: {{provider: zonefile, file: state/{zone}.zone}}\n"
    )
    result = sipctl_in_process("apply", "-f", str(spec), "--auto-approve")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"DNS _sip._tcp.{zone}. is a CNAME (to other.{zone}.)" in " ".join(result.stderr.split())
    assert zone_file.read_text() == before  # a zone BIND would not load was not written


# through octoDNS: what the spec of tests/octodns_specs.py wants at each owner
OCTODNS_OWNED = {"_sip._udp": "SRV", "_sipctl": "TXT", "sip": "A"}


def assert_cname_stops(
    capsys: pytest.CaptureFixture[str], spec: str, zone: str, owner: str
) -> None:
    for command in (["plan"], ["apply", "--auto-approve"]):
        code, out = octodns_sipctl(capsys, *command, "-f", spec)
        text = " ".join(out.split())
        assert code == 1, out
        assert f"DNS {owner}.{zone}. is a CNAME (to other.{zone}.)" in text
        assert f"sipctl's {OCTODNS_OWNED[owner]} there" in text
        assert f"delete the CNAME at {owner}.{zone}." in text


@pytest.mark.parametrize("owner", sorted(OCTODNS_OWNED))
def test_a_cname_at_an_owned_name_stops_the_plan_through_octodns_powerdns(
    powerdns: PowerDnsServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    owner: str,
) -> None:
    monkeypatch.setenv(PDNS_KEY_ENV, powerdns.api_key)
    cname = [
        (owner, "CNAME", 3600, ["other.{zone}."]),
        ("other", "SRV", 3600, ["10 0 5060 evil.example."]),
    ]
    zone = powerdns.new_zone(extra=cname)
    spec = write(tmp_path, pdns_spec(zone, powerdns.api_port))
    assert_cname_stops(capsys, spec, zone, owner)
    assert powerdns.rrsets(zone)[(f"{owner}.{zone}.", "CNAME")] == (3600, [f"other.{zone}."])
    assert (f"{owner}.{zone}.", OCTODNS_OWNED[owner]) not in powerdns.rrsets(zone)
    # a plugin that cannot list one name populates the whole zone: it sees the CNAME too
    provider = OctodnsProvider(
        load_spec_text(pdns_spec(zone, powerdns.api_port), base_dir=tmp_path),
        RunContext(base_dir=tmp_path),
    )
    asked = [(f"{owner}.{zone}.", OCTODNS_OWNED[owner]), (f"{owner}.{zone}.", "CNAME")]
    whole = collect(provider.populate(), asked)
    assert not provider.narrow and asked[1] in whole
    assert provider.read_rrsets(asked[:1]) == whole and provider.narrow


# PowerDNS refuses a CNAME beside another rrset at its name (422 "Conflicts with another
# RRset"), as Route53 does; moto holds both: there the read sees both, and the CNAME still
# stops the plan.
@pytest.mark.parametrize("beside", [False, True], ids=["alone", "beside-the-srv"])
def test_a_cname_at_an_owned_name_stops_the_plan_through_octodns_route53(
    route53_env: MotoRoute53, tmp_path: Path, capsys: pytest.CaptureFixture[str], beside: bool
) -> None:
    zone = route53_env.new_zone()
    if beside:
        route53_env.change(zone, "CREATE", "_sip._udp", "SRV", 300, [f"10 0 5060 sip.{zone}."])
    route53_env.change(zone, "CREATE", "_sip._udp", "CNAME", 3600, ["other.{zone}."])
    spec = write(tmp_path, route53_spec(zone))
    assert_cname_stops(capsys, spec, zone, "_sip._udp")
    after = route53_env.rrsets(zone)
    assert after[(f"_sip._udp.{zone}.", "CNAME")] == (3600, [f"other.{zone}."])
    assert ((f"_sip._udp.{zone}.", "SRV") in after) == beside  # nothing was written
