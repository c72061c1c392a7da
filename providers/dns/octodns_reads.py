"""Reading only sipctl's names through an octoDNS plugin, where the plugin's API can list one.

An octoDNS plugin's ``populate`` reads a whole zone and builds an octoDNS record for every
rrset of it (about 2.6 ms each: 16 s for a zone of 10,000). Two APIs can list one name, and
there sipctl asks for its own names only, through the plugin's own client (same credentials,
endpoint, TLS settings and retries), and lets the plugin turn what came back into records with
its own converters, so a record reads the same as through ``populate``:

- PowerDNS: ``GET .../zones/ZONE?rrset_name=NAME`` (the rrsets at one name; PowerDNS 4.7.3,
  Debian bookworm's, answers it). A server that ignored the filter would answer the whole
  zone: only the asked name is kept either way.
- Route53: ``ListResourceRecordSets`` from ``StartRecordName`` (the rrsets at and after one
  name, in DNS order), read until the name ends. The rrsets are handed to the plugin as its
  cache of the zone, so ``populate`` converts exactly those, and ``apply`` (which reads the
  zone for its own bookkeeping) does not list the whole zone either.

Every other plugin: ``None``, and the caller populates the whole zone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from sipctl.json_text import read_json
from sipctl.providers.dns.octodns_plugin import quiet

# one page of ListResourceRecordSets: a name holds a few types, sipctl's names hold one or two
_ROUTE53_PAGE = "20"


def _instance_of(plugin: Any, module: str, class_name: str) -> bool:
    """``plugin`` is (a subclass of) ``module.class_name``; the module is imported already
    when a plugin of it exists, so nothing is imported here."""
    cls = getattr(sys.modules.get(module), class_name, None)
    return isinstance(cls, type) and isinstance(plugin, cls)


def narrow_kind(plugin: Any) -> str | None:
    """``"powerdns"`` or ``"route53"`` when the plugin's API can list one name, else None."""
    if _instance_of(plugin, "octodns_powerdns", "PowerDnsBaseProvider"):
        return "powerdns"
    if _instance_of(plugin, "octodns_route53", "Route53Provider"):
        return "route53"
    return None


def populate_names(plugin: Any, zone: Any, owners: Iterable[str]) -> bool | None:
    """Fill ``zone`` (an empty octoDNS Zone) with the records at ``owners`` (absolute names).

    True: the zone exists; False: the provider has no such zone; None: this plugin cannot
    list one name (populate the whole zone instead). Errors are the plugin's own (the
    caller's ``call`` translates them)."""
    names = sorted({owner.lower() for owner in owners})
    kind = narrow_kind(plugin)
    if kind == "powerdns":
        return _powerdns(plugin, zone, names)
    if kind == "route53":
        zone_id = plugin._get_zone_id(zone.name)
        if not zone_id:
            return False
        plugin._r53_rrsets[zone_id] = route53_rrsets(plugin, zone_id, names)
        with quiet():
            return bool(plugin.populate(zone, target=True, lenient=True))
    return None


def prepare_apply(plugin: Any, zone_name: str, owners: Iterable[str]) -> None:
    """Before ``plugin.apply``: Route53's plugin reads the zone's rrsets to build a change
    batch (for its alias and health-check bookkeeping); give it those at ``owners`` only."""
    if narrow_kind(plugin) != "route53":
        return
    zone_id = plugin._get_zone_id(zone_name)
    if zone_id:
        names = sorted({owner.lower() for owner in owners})
        plugin._r53_rrsets[zone_id] = route53_rrsets(plugin, zone_id, names)


def _powerdns(plugin: Any, zone: Any, names: list[str]) -> bool:
    from octodns.record import Record
    from octodns_powerdns import _encode_zone_name
    from requests import HTTPError

    encoded = _encode_zone_name(zone.name)
    found = []
    for name in names:
        try:
            answer = plugin._get(f"zones/{encoded}?rrset_name={quote(name, safe='')}")
        except HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                return False  # PowerDNS 4.2+: no such zone
            raise
        found += [
            r for r in read_json(answer.content).get("rrsets", []) if r["name"].lower() == name
        ]
    supported = plugin.SUPPORTS
    with quiet():
        for rrset in found:
            rdtype = rrset["type"]
            if rdtype not in supported:
                continue
            data = getattr(plugin, f"_data_for_{rdtype}")(rrset)
            name = zone.hostname_from_fqdn(rrset["name"].lower())
            record = Record.new(zone, name, data, source=plugin, lenient=True)
            zone.add_record(record, lenient=True)
    return True


def route53_rrsets(plugin: Any, zone_id: str, names: list[str]) -> list[dict[str, Any]]:
    """The Route53 rrsets at ``names``, one listing from each name until the name ends."""
    from octodns_route53.provider import _octal_replace

    rrsets: list[dict[str, Any]] = []
    for name in names:
        start: dict[str, str] = {"StartRecordName": name}
        while True:
            page = plugin._conn.list_resource_record_sets(
                HostedZoneId=zone_id, MaxItems=_ROUTE53_PAGE, **start
            )
            past = False
            for rrset in page["ResourceRecordSets"]:
                if _octal_replace(rrset["Name"]).lower() != name:
                    past = True
                    break
                rrsets.append(rrset)
            if past or not page.get("IsTruncated"):
                break
            start = {
                "StartRecordName": page["NextRecordName"],
                "StartRecordType": page["NextRecordType"],
            }
            if "NextRecordIdentifier" in page:
                start["StartRecordIdentifier"] = page["NextRecordIdentifier"]
    return rrsets
