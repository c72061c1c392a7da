"""sipctl reads only its own names where the plugin's API can list one name (providers/dns/
octodns_reads.py), against a real PowerDNS and moto's Route53, through a counting proxy.

What is read that way must be what the plugin's whole-zone ``populate`` shows at those names
(same records, same TTLs, a foreign NAPTR kept, an absent name absent), and the proxy shows
that no request asks for the whole zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.api_proxy import ApiProxy
from fixtures.moto_route53 import MotoRoute53
from fixtures.powerdns import PowerDnsServer
from octodns_specs import PDNS_KEY_ENV as KEY_ENV
from octodns_specs import pdns_spec, route53_spec

from sipctl.cli import run
from sipctl.providers.base import RunContext
from sipctl.providers.dns import octodns_reads
from sipctl.providers.dns.octodns import OctodnsProvider, collect
from sipctl.providers.dns.owned import base_names
from sipctl.schemas.loader import load_spec_text

UNRELATED = 150


def names_of(zone: str) -> list[tuple[str, str]]:
    """sipctl's names, a host, two unrelated names and one that does not exist."""
    return [
        *base_names(zone),
        (f"sip.{zone}.", "A"),
        (f"sip.{zone}.", "AAAA"),
        (f"www.{zone}.", "A"),
        (f"{zone}.", "MX"),
        (f"nothing-here.{zone}.", "A"),
    ]


def same_as_whole_zone(provider: OctodnsProvider, zone: str) -> None:
    names = names_of(zone)
    narrow_zone = provider.populate(names)
    assert provider.narrow
    whole_zone = provider.populate()
    assert not provider.narrow
    assert collect(narrow_zone, names) == collect(whole_zone, names)
    assert (f"{zone}.", "NAPTR") in collect(narrow_zone, names)  # SIP + the foreign E2U
    assert len(whole_zone.records) > UNRELATED > len(narrow_zone.records)


def sipctl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def pdns_proxy(powerdns: PowerDnsServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiProxy]:
    monkeypatch.setenv(KEY_ENV, powerdns.api_key)
    proxy = ApiProxy(powerdns.api_port)
    yield proxy
    proxy.close()


@pytest.fixture
def route53_proxy(route53_env: MotoRoute53, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiProxy]:
    proxy = ApiProxy(route53_env.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.close()


def test_powerdns_reads_only_sipctls_names(
    powerdns: PowerDnsServer,
    pdns_proxy: ApiProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = [(f"h{i}", "A", 3600, [f"10.0.{i // 256}.{i % 256}"]) for i in range(UNRELATED)]
    z = powerdns.new_zone(extra=extra)
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(pdns_spec(z, pdns_proxy.port))
    assert sipctl(capsys, "apply", "-f", str(spec), "--auto-approve")[0] == 0
    pdns_proxy.reset()
    code, out = sipctl(capsys, "plan", "-f", str(spec), "--detailed-exitcode")
    assert code == 0, out
    zone_reads = [s for s in pdns_proxy.requests("GET") if f"/zones/{z}." in s.path]
    assert zone_reads and all("?rrset_name=" in s.path for s in zone_reads), zone_reads
    loaded = load_spec_text(pdns_spec(z, pdns_proxy.port), base_dir=tmp_path)
    same_as_whole_zone(OctodnsProvider(loaded, RunContext(base_dir=tmp_path)), z)


def test_route53_reads_only_sipctls_names_page_by_page(
    route53_env: MotoRoute53,
    route53_proxy: ApiProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    z = route53_env.new_zone()
    client = route53_env.client()
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": f"h{i}.{z}.",
                "Type": "A",
                "TTL": 3600,
                "ResourceRecords": [{"Value": f"10.0.{i // 256}.{i % 256}"}],
            },
        }
        for i in range(UNRELATED)
    ]
    client.change_resource_record_sets(
        HostedZoneId=route53_env.zone_ids[z], ChangeBatch={"Changes": changes}
    )
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(route53_spec(z))
    assert sipctl(capsys, "apply", "-f", str(spec), "--auto-approve")[0] == 0
    route53_proxy.reset()
    code, out = sipctl(capsys, "plan", "-f", str(spec), "--detailed-exitcode")
    assert code == 0, out
    listings = [s for s in route53_proxy.requests("GET") if "/rrset" in s.path]
    assert listings and all("name=" in s.path for s in listings), listings
    # one rrset per page: the listing of a name goes on page by page until the name ends
    monkeypatch.setattr(octodns_reads, "_ROUTE53_PAGE", "1")
    loaded = load_spec_text(route53_spec(z), base_dir=tmp_path)
    same_as_whole_zone(OctodnsProvider(loaded, RunContext(base_dir=tmp_path)), z)
