"""The audit report: findings with what was sent, what came back and how to fix it; its views.

Pure data. ``to_json()`` is the documented document (``schema.py`` holds its JSON Schema);
the human view is rendered from that same document, grouped by severity, so the two can never
disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

FORMAT_VERSION = "1"
Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
Area = Literal["dialplan", "calls", "registration", "messages", "enumeration", "exposure", "ban"]


@dataclass(frozen=True)
class Finding:
    """One way in. ``where`` names the place (extension, file:line, address:port)."""

    code: str  # stable, for machines: "dialplan-pattern", "port-open", ...
    severity: Severity
    area: Area
    title: str  # one line: what a stranger can do
    where: str  # the extension and line, or the address and port
    fix: str  # what the admin does about it
    sent: str | None = None  # the probe, when one proved it
    got: str | None = None  # what came back
    details: tuple[str, ...] = ()  # e.g. what an include makes reachable

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "area": self.area,
            "title": self.title,
            "where": self.where,
            "fix": self.fix,
            "sent": self.sent,
            "got": self.got,
            "details": list(self.details),
        }


@dataclass
class ProbeCount:
    """What one kind of probe cost: requests (transactions) and packets sent."""

    kind: str  # "options", "invite", "register", "message", "port"
    requests: int = 0
    packets: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "requests": self.requests, "packets": self.packets}


@dataclass
class AuditReport:
    domain: str
    nameserver: str | None
    targets: list[str] = field(default_factory=list)  # "udp 192.0.2.1:5060" as resolved
    findings: list[Finding] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # what was looked at, one line each
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # parts that could not run
    counts: dict[str, ProbeCount] = field(default_factory=dict)
    seconds: float = 0.0
    fail_on: Severity = "medium"  # the lowest severity that fails the audit (exit 2)

    def count(self, kind: str) -> ProbeCount:
        return self.counts.setdefault(kind, ProbeCount(kind))

    def add(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    @property
    def packets(self) -> int:
        return sum(c.packets for c in self.counts.values())

    def failing(self) -> list[Finding]:
        """The findings at or above ``fail_on``: the ones that fail the audit."""
        return [f for f in self.findings if at_least(f.severity, self.fail_on)]

    @property
    def exit_code(self) -> int:
        """2 a finding at or above ``fail_on``, 1 a part could not run (and nothing failing
        was found), else 0; findings below the threshold are printed but do not fail."""
        if self.failing():
            return 2
        return 1 if self.errors else 0

    def codes(self) -> list[str]:
        return sorted(f.code for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        ordered = sorted(
            self.findings, key=lambda f: (SEVERITIES.index(f.severity), f.area, f.where)
        )
        return {
            "format_version": FORMAT_VERSION,
            "domain": self.domain,
            "nameserver": self.nameserver,
            "targets": list(self.targets),
            "findings": [f.to_json() for f in ordered],
            "summary": {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES},
            "checks": list(self.checks),
            "notes": list(self.notes),
            "errors": list(self.errors),
            "probes": [self.counts[k].to_json() for k in sorted(self.counts)],
            "packets": self.packets,
            "seconds": round(self.seconds, 2),
            "fail_on": self.fail_on,
            "exit_code": self.exit_code,
        }

    def to_text(self, notes: bool = True) -> str:
        return render_text(self.to_json(), notes)


def render_text(data: dict[str, Any], notes: bool = True) -> str:
    """The human view of ``AuditReport.to_json()``: findings by severity, each with its fix
    (``notes`` False: without its note lines, as ``--quiet`` asks)."""
    lines = [f"audit of {data['domain']}" + _via(data)]
    for target in data["targets"]:
        lines.append(f"  target {target}")
    for severity in SEVERITIES:
        group = [f for f in data["findings"] if f["severity"] == severity]
        if not group:
            continue
        lines.append("")
        lines.append(f"{severity.upper()} ({len(group)})")
        for finding in group:
            lines.append(f"  - {finding['title']}")
            lines.append(f"    where: {finding['where']}")
            if finding["sent"]:
                lines.append(f"    sent:  {finding['sent']}")
            if finding["got"]:
                lines.append(f"    got:   {finding['got']}")
            for detail in finding["details"]:
                lines.append(f"      {detail}")
            lines.append(f"    fix:   {finding['fix']}")
    if data["checks"]:
        lines.append("")
        lines.append("checked:")
        lines += [f"  {check}" for check in data["checks"]]
    for note in data["notes"] if notes else ():
        lines.append(f"note: {note}")
    for error in data["errors"]:
        lines.append(f"could not run: {error}")
    probes = ", ".join(f"{p['requests']} {p['kind']}" for p in data["probes"] if p["requests"])
    lines.append("")
    lines.append(
        f"sent {data['packets']} packets ({probes or 'no probes'}) in {data['seconds']:.1f} s"
    )
    summary = data["summary"]
    total = sum(summary.values())
    fail_on = data["fail_on"]
    failing = sum(n for s, n in summary.items() if at_least(s, fail_on))
    if total:
        counts = ", ".join(f"{summary[s]} {s}" for s in SEVERITIES if summary[s])
        below = "" if failing else f"; none at or above --fail-on {fail_on}"
        lines.append(f"audit: {total} finding(s): {counts}{below}")
    elif data["errors"]:
        lines.append("audit: INCOMPLETE, nothing found in the parts that ran")
    else:
        lines.append("audit: nothing found")
    return "\n".join(lines)


def at_least(severity: str, threshold: str) -> bool:
    """``severity`` is ``threshold`` or graver (critical > high > medium > low)."""
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


def _via(data: dict[str, Any]) -> str:
    return f" (DNS asked at {data['nameserver']})" if data["nameserver"] else ""
