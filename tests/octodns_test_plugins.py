"""octoDNS plugins for tests: real plugins with less support, as some providers have."""

from __future__ import annotations

from typing import Any

from octodns_powerdns import PowerDnsProvider, _encode_zone_name


class PowerDnsSrvOnly(PowerDnsProvider):  # type: ignore[misc]
    """PowerDNS as a provider without NAPTR support (like Azure or Hetzner) sees it."""

    SUPPORTS = PowerDnsProvider.SUPPORTS - {"NAPTR"}


class PowerDnsPerRecord(PowerDnsProvider):  # type: ignore[misc]
    """PowerDNS written the way per-record APIs (Cloudflare, ...) are: one request per change
    of the plan, so one ``provider.apply`` is many API calls and can fail half-way."""

    def _apply(self, plan: Any) -> None:
        zone = _encode_zone_name(plan.desired.name)
        for change in plan.changes:
            mods = getattr(self, f"_mod_{type(change).__name__}")(change)
            self._patch(
                f"zones/{zone}", data={"rrsets": mods if isinstance(mods, list) else [mods]}
            )
