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

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sipctl.reconciler.resources import Address, Resource, Value
from sipctl.schemas.checks import certificate_names

if TYPE_CHECKING:
    from sipctl.reconciler.plan import Change
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
        time_left = f"{days_left} day(s) left, until {not_after:%Y-%m-%d} (renewal due)"
    else:
        time_left = time_left_text(renew_days)
    return {"names": sorted(names), "issuer": issuer, "time_left": time_left, "key": key}


def describe_certificate_change(change: Change) -> list[str]:
    """The certificate in a plan's words: a new one as its names, issuer and renewal rule
    (``+ certificate a.example.com (ACME acme-v02.api.letsencrypt.org, renewed below 30
    days)``), a renewal as its reasons (``~ certificate renew: 12 day(s) left, until ...``)."""
    before = change.before if isinstance(change.before, Mapping) else {}
    after = change.after if isinstance(change.after, Mapping) else {}
    names = ", ".join(str(n) for n in (after or before).get("names") or []) or "(no name)"
    if change.action == "create":
        return [f"+ certificate {names} ({_short_issuer(after)}, {_renewal_rule(after)})"]
    if change.action == "delete":
        return [f"- certificate {names}"]
    lines: list[str] = []
    old_names = {str(n) for n in before.get("names") or []}
    new_names = {str(n) for n in after.get("names") or []}
    if old_names != new_names:
        added = [f"+ {n}" for n in sorted(new_names - old_names)]
        removed = [f"- {n}" for n in sorted(old_names - new_names)]
        lines.append(f"~ certificate names {', '.join(added + removed)}")
    if before.get("issuer") != after.get("issuer"):
        lines.append(
            f"~ certificate renew: issued by {before.get('issuer')}, not {_short_issuer(after)}"
        )
    if before.get("time_left") != after.get("time_left"):
        lines.append(f"~ certificate renew: {before.get('time_left')}")
    if before.get("key") != after.get("key"):
        lines.append(f"~ certificate renew: the key {before.get('key')}")
    return lines or [f"~ certificate {names}"]


def _short_issuer(value: Mapping[str, Any]) -> str:
    """``ACME <directory host>``: the directory's full URL is in the spec and under -v."""
    issuer = str(value.get("issuer", ""))
    if issuer.startswith("ACME "):
        host = urlsplit(issuer.removeprefix("ACME ")).hostname
        return f"ACME {host}" if host else issuer
    return issuer


def _renewal_rule(value: Mapping[str, Any]) -> str:
    found = re.match(r"(\d+) days or more$", str(value.get("time_left", "")))
    return f"renewed below {found.group(1)} days left" if found else "renewed by sipctl"


def render_certificate(spec: Spec) -> list[Resource]:
    tls = tls_of(spec)
    if tls is None or tls.acme is None:
        return []
    return [Resource(certificate_address(tls), desired_value(spec))]


def certificate_artefacts(spec: Spec) -> dict[str, str]:
    """Nothing to review offline: the certificate comes from the ACME server."""
    del spec
    return {}
