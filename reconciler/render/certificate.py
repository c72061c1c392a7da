"""The certificate layer's desired state: one resource per ``asterisk.tls.acme``.

Its value is what decides whether an ACME order is due, in words a plan can show:

    names       the names the certificate must carry (the domain, then every server host)
    issuer      "ACME <directory>": obtained by sipctl from that directory
    time_left   "<renew_days> days or more"
    key         "matches the certificate"

``live_value`` normalizes what the provider read to the same shape, so a certificate that
needs nothing reads exactly as desired (no order), and each reason to renew shows as the one
field that differs: names changed, another directory, too few days left, a key that does
not belong to the certificate. Without ``acme`` nothing is desired: the certificate is only
checked (warnings).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sipctl.reconciler.resources import Address, Resource, Value
from sipctl.schemas.checks import certificate_names
from sipctl.schemas.spec import Spec, TlsFiles

LAYER = "certificate"
KEY_MATCHES = "matches the certificate"


def tls_of(spec: Spec) -> TlsFiles | None:
    """The TLS section the layer manages: present while the asterisk layer is."""
    if spec.asterisk is None or spec.asterisk.ensure == "absent":
        return None
    return spec.asterisk.tls


def certificate_address(tls: TlsFiles) -> Address:
    return Address(LAYER, "certificate", tls.cert_file)


def issuer_text(directory: str) -> str:
    return f"ACME {directory}"


def time_left_text(renew_days: int) -> str:
    return f"{renew_days} days or more"


def desired_value(spec: Spec) -> Value:
    tls = tls_of(spec)
    assert tls is not None and tls.acme is not None
    return {
        "names": sorted(certificate_names(spec)),
        "issuer": issuer_text(tls.acme.directory),
        "time_left": time_left_text(tls.acme.renew_days),
        "key": KEY_MATCHES,
    }


def live_value(
    *,
    names: tuple[str, ...],
    issuer: str,
    not_after: datetime,
    days_left: int,
    renew_days: int,
    key: str,
) -> Value:
    """The live certificate in the shape of ``desired_value`` (see the module docstring)."""
    if days_left < 0:
        time_left = f"expired {-days_left} day(s) ago ({not_after:%Y-%m-%d})"
    elif days_left < renew_days:
        time_left = f"{days_left} day(s), until {not_after:%Y-%m-%d} (renewal due)"
    else:
        time_left = time_left_text(renew_days)
    return {"names": sorted(names), "issuer": issuer, "time_left": time_left, "key": key}


def describe_certificate(kind: str, name: str, value: Any) -> dict[str, str]:
    """The certificate in a plan's words: one line per field, so a renewal reads as its
    reason (``~ certificate time left → 30 days or more (was 9 day(s), ...)``)."""
    del kind, name
    if not isinstance(value, Mapping):
        return {}
    names = value.get("names")
    found = {
        "certificate names": ", ".join(str(n) for n in names) if names else "none",
        "certificate issuer": str(value.get("issuer", "")),
        "certificate time left": str(value.get("time_left", "")),
        "certificate key": str(value.get("key", "")),
    }
    return found


def render_certificate(spec: Spec) -> list[Resource]:
    tls = tls_of(spec)
    if tls is None or tls.acme is None:
        return []
    return [Resource(certificate_address(tls), desired_value(spec))]


def certificate_artefacts(spec: Spec) -> dict[str, str]:
    """Nothing to review offline: the certificate comes from the ACME server."""
    del spec
    return {}
