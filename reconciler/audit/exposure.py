"""What a stranger sees from outside: open ports beyond the spec, and TLS certificates. Pure.

The allowed ports are the spec's: the SIP transports (and WSS), the firewall's ``ssh_port``
and ``extra``. The audit knocks on the well-known management and telephony ports beside them
(``MANAGEMENT_PORTS``); one that answers and is not allowed is a finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sipctl.reconciler.audit.report import Finding, Severity
from sipctl.schemas.values import hostport

if TYPE_CHECKING:
    from sipctl.providers.certificate.pem import CertificateFacts
    from sipctl.schemas.spec import Spec

Proto = Literal["tcp", "udp"]


@dataclass(frozen=True)
class KnownPort:
    proto: Proto
    port: int
    service: str
    severity: Severity


MANAGEMENT_PORTS: tuple[KnownPort, ...] = (
    KnownPort("tcp", 5038, "Asterisk Manager Interface (AMI): full control of the PBX", "critical"),
    KnownPort("tcp", 8088, "Asterisk HTTP server (ARI, AJAM)", "high"),
    KnownPort("tcp", 8089, "Asterisk HTTPS server (ARI, AJAM, WSS)", "high"),
    KnownPort("udp", 4569, "IAX2 (a second way to call in, outside the SIP guest setup)", "high"),
    KnownPort("tcp", 2000, "SCCP (Skinny phones)", "high"),
    KnownPort("tcp", 1720, "H.323", "high"),
    KnownPort("udp", 2727, "MGCP", "high"),
    KnownPort("tcp", 5060, "SIP over TCP", "medium"),
    KnownPort("udp", 5060, "SIP over UDP", "medium"),
    KnownPort("tcp", 5061, "SIP over TLS", "medium"),
    KnownPort("tcp", 22, "SSH", "medium"),
    KnownPort("tcp", 3306, "MySQL (CDR, realtime)", "high"),
    KnownPort("tcp", 5432, "PostgreSQL (CDR, realtime)", "high"),
)


def allowed_ports(spec: Spec) -> set[tuple[str, int]]:
    """(proto, port) a stranger may reach by the spec."""
    allowed: set[tuple[str, int]] = set(spec.transports.listening().values())
    firewall = spec.firewall
    if firewall is None:
        allowed.add(("tcp", 22))  # no firewall in the spec: SSH on its usual port is expected
        return allowed
    allowed.add(("tcp", firewall.ssh_port))
    for entry in firewall.extra:
        proto, _, ports = entry.partition("/")
        first, _, last = ports.partition("-")
        for port in range(int(first), int(last or first) + 1):
            if proto in ("tcp", "udp"):
                allowed.add((proto, port))
            else:
                allowed.update({("tcp", port), ("udp", port)})
    return allowed


def ports_to_knock(spec: Spec, extra: Iterable[KnownPort] = ()) -> list[KnownPort]:
    allowed = allowed_ports(spec)
    return [p for p in (*MANAGEMENT_PORTS, *extra) if (p.proto, p.port) not in allowed]


def exposure_findings(address: str, open_ports: Iterable[KnownPort], spec: Spec) -> list[Finding]:
    firewall = "the firewall spec" if spec.firewall is not None else "the spec"
    findings: list[Finding] = []
    for known in open_ports:
        findings.append(
            Finding(
                "port-open",
                known.severity,
                "exposure",
                f"{known.proto.upper()} port {known.port} ({known.service}) answers from "
                f"outside, and {firewall} does not allow it",
                f"{known.proto} {hostport(address, known.port)}",
                _port_fix(known, spec),
                sent=f"{'TCP connect' if known.proto == 'tcp' else 'probe datagram'} "
                f"to {hostport(address, known.port)}",
                got="connection accepted" if known.proto == "tcp" else "an answer",
            )
        )
    return findings


def _port_fix(known: KnownPort, spec: Spec) -> str:
    if spec.firewall is None:
        return (
            "add a firewall section to the spec (default-deny input: only SIP, RTP and SSH "
            "get through), or make the service listen on 127.0.0.1 only"
        )
    return (
        "the firewall spec does not allow this port: check that 'sipctl plan' shows no "
        "firewall changes (a rule added by hand, or the firewall not applied), or bind the "
        "service to 127.0.0.1"
    )


CERTIFICATE_WARN_DAYS = 14  # renewals (ACME: 30 days before) should long be done by then


def certificate_findings(
    where: str,
    facts: CertificateFacts,
    names: Iterable[str],
    now: datetime,
    warn_days: int = CERTIFICATE_WARN_DAYS,
) -> list[Finding]:
    """A served certificate that does not name the domain, or expires within ``warn_days``."""
    from sipctl.reconciler.verify.certificates import covers

    findings: list[Finding] = []
    missing = [n for n in names if not covers(facts, n)]
    shown = f"names {', '.join(facts.names) or 'none'}, valid until {facts.not_after:%Y-%m-%d}"
    if missing:
        findings.append(
            Finding(
                "certificate-name-mismatch",
                "high",
                "exposure",
                f"the TLS certificate does not name {', '.join(missing)}: SIPS callers refuse "
                "it, or learn to click through warnings",
                where,
                "serve a certificate whose subjectAltName holds the SIP domain and the SRV "
                "target (asterisk.tls.acme obtains one)",
                sent="TLS handshake",
                got=shown,
            )
        )
    days = facts.days_left(now)
    if days < warn_days:
        expired = days < 0
        findings.append(
            Finding(
                "certificate-expired" if expired else "certificate-expiring",
                "critical" if expired else "high",
                "exposure",
                "the TLS certificate has expired"
                if expired
                else f"the TLS certificate expires in {days} day(s)",
                where,
                "renew it (asterisk.tls.acme renews by itself), then 'module reload "
                "res_pjsip.so' on the PBX",
                sent="TLS handshake",
                got=shown,
            )
        )
    return findings
