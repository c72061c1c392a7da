"""The certificate a SIPS endpoint serves, compared with the spec and with ``cert_file``.

Pure: the facts come in (what the listener showed, what the file holds), defects go out.
``run.py`` fetches them. A SIPS client checks the domain (RFC 5922) and most also the SRV
target it connected to; a certificate the file holds but the listener does not show is a
renewal that has not reached Asterisk (the commonest outage of TLS setups).
"""

from __future__ import annotations

from datetime import datetime

from sipctl.providers.certificate.pem import CertificateFacts
from sipctl.reconciler.verify.rfc3263 import Defect


def covers(facts: CertificateFacts, name: str) -> bool:
    """True when the certificate is valid for ``name`` (exactly, or by a one-label wildcard)."""
    return facts.covers(name)


def served_defects(
    where: str,
    served: CertificateFacts,
    names: list[str],
    in_file: CertificateFacts | None,
    cert_file: str,
    now: datetime,
) -> list[Defect]:
    """What is wrong with the certificate ``where`` (e.g. ``tls 192.0.2.1:5061``) serves."""
    defects = []
    missing = [n for n in names if not covers(served, n)]
    if missing:
        defects.append(
            Defect(
                "certificate-name-missing",
                f"{where} serves a certificate for {', '.join(served.names) or 'no name'}, "
                f"without {', '.join(missing)}: SIPS clients refuse it",
            )
        )
    if served.days_left(now) < 0:
        defects.append(
            Defect(
                "certificate-expired",
                f"{where} serves a certificate that expired on {served.not_after:%Y-%m-%d}",
            )
        )
    if in_file is not None and in_file.sha256 != served.sha256:
        defects.append(
            Defect(
                "certificate-not-live",
                f"{where} serves serial {served.serial} (until {served.not_after:%Y-%m-%d}), "
                f"but {cert_file} holds serial {in_file.serial} (until "
                f"{in_file.not_after:%Y-%m-%d}): Asterisk has not loaded the file; "
                "'module reload res_pjsip.so' loads it when its name stayed the same",
            )
        )
    return defects
