"""octoDNS plugins for tests: real plugins with less support, as some providers have."""

from __future__ import annotations

from octodns_powerdns import PowerDnsProvider


class PowerDnsSrvOnly(PowerDnsProvider):  # type: ignore[misc]
    """PowerDNS as a provider without NAPTR support (like Azure or Hetzner) sees it."""

    SUPPORTS = PowerDnsProvider.SUPPORTS - {"NAPTR"}
