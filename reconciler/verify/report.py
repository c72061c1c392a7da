"""The verify report: what was resolved, what was probed, what is wrong. Pure data and views.

``reconciler/verify/run.py`` gathers (DNS, SIP probes); this module compares the gathered facts with
the spec and renders them. Both the human table and ``--json`` are built from
``VerifyReport.to_json()`` so the two can never disagree.

What the probes can prove (measured on Asterisk 22 with PJSIP): an out-of-dialog OPTIONS with a
user part gets 200 when the identified endpoint's context has a matching extension (pattern
matches count) and 404 when not. So:

- every declared user must answer 200;
- ``unknown_callers: not-found``: the guest context has no catch-all, an unknown name must
  answer 404 (checked with a random canary name);
- ``unknown_callers: challenge``: only a declared name finds the guest endpoint; the canary
  finds none and must be challenged (401), as an office phone's extension is;
- ``unknown_callers: reject``: the catch-all that logs and rejects unknown callers matches
  every name, so OPTIONS cannot tell a declared name from an unknown one. A 200 for the canary
  proves that the catch-all is in place (without it unknown callers would get a silent 404 and
  never reach the log fail2ban reads); verify expects 200 for the canary in this mode.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sipctl.providers.sip_probe import ProbeResult
from sipctl.reconciler.verify.rfc3263 import TRANSPORTS, Defect, Hop, Resolution, Transport
from sipctl.schemas.values import hostport

if TYPE_CHECKING:
    from sipctl.reconciler.ban_state import BanState
    from sipctl.schemas.spec import Spec

FORMAT_VERSION = "1"
CANARY_PREFIX = "sipctlcanary"  # letters and digits only: any catch-all pattern matches it


@dataclass(frozen=True)
class Expectation:
    """A user to probe and the status it must answer (None: any final answer will do)."""

    user: str
    expect: int | None
    role: str  # "user" | "canary"


@dataclass(frozen=True)
class Endpoint:
    """One (transport, address, port) a client would connect to, and the hop it came from."""

    transport: Transport
    address: str
    port: int
    target: str


@dataclass(frozen=True)
class ProbeCheck:
    endpoint: Endpoint
    expectation: Expectation
    result: ProbeResult

    @property
    def ok(self) -> bool:
        status = self.result.status
        if status is None:
            return False
        if self.expectation.expect is None:
            return status >= 200
        return status == self.expectation.expect

    def to_json(self) -> dict[str, Any]:
        data = self.result.to_json()
        data.update(
            {
                "target": self.endpoint.target,
                "role": self.expectation.role,
                "expect": self.expectation.expect,
                "ok": self.ok,
            }
        )
        return data


@dataclass
class VerifyReport:
    domain: str
    nameserver: str | None
    resolution: Resolution
    defects: list[Defect]
    probes: list[ProbeCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wss: list[dict[str, Any]] = field(default_factory=list)  # WssResult.to_json() of each
    media: dict[str, str] = field(default_factory=dict)  # transport -> media_encryption()
    names: list[dict[str, Any]] = field(default_factory=list)  # NameState.to_json() of each

    @property
    def ok(self) -> bool:
        return not self.defects and all(p.ok for p in self.probes)

    def defect_codes(self) -> list[str]:
        return [d.code for d in self.defects]

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "domain": self.domain,
            "nameserver": self.nameserver,
            "mode": self.resolution.mode,
            "chain": [h.to_json() for h in self.resolution.hops],
            "probes": [p.to_json() for p in self.probes],
            "defects": [d.to_json() for d in self.defects],
            "notes": list(self.notes),
            "wss": list(self.wss),
            "media": dict(self.media),
            "names": list(self.names),
            "ok": self.ok,
        }

    def to_text(self, notes: bool = True) -> str:
        return render_text(self.to_json(), notes)


# --- expectations and comparisons (pure) -----------------------------------------------------


def expectations(spec: Spec, canary: str) -> list[Expectation]:
    """Who to probe: every declared user and room (200) and a canary name (see the module
    docstring)."""
    wanted = [Expectation(name, 200, "user") for name in sorted([*spec.users, *spec.rooms])]
    if spec.asterisk is not None and spec.asterisk.unknown_callers == "not-found":
        wanted.append(Expectation(canary, 404, "canary"))
    elif spec.asterisk is not None and spec.asterisk.unknown_callers == "challenge":
        wanted.append(Expectation(canary, 401, "canary"))
    elif spec.asterisk is not None:
        wanted.append(Expectation(canary, 200, "canary"))
    else:
        # The PBX is not ours: any final answer proves the server is reachable and speaks SIP.
        wanted.append(Expectation(canary, None, "canary"))
    return wanted


ENCRYPTED_WHEN_OFFERED = "SRTP (SDES) when the caller offers it, else plain RTP"
PLAIN_MEDIA = "plain RTP (no SRTP)"
ENCRYPTED_ONLY = "SRTP (SDES) only: a plain RTP offer is refused 488"
BROWSER_MEDIA = "DTLS-SRTP, always (WebRTC)"


def media_encryption(spec: Spec) -> dict[str, str]:
    """How the media of a guest call travels, per transport of the spec, as sipctl sets up
    the guest endpoints (empty when the PBX is not sipctl's). Read from what sipctl renders:
    an SRTP answer can only be seen in an answered call, and verify rings no one."""
    from sipctl.reconciler.render.asterisk import encrypts_media

    if spec.asterisk is None:
        return {}
    sdes = encrypts_media(spec)
    tls = spec.transports.tls
    required = tls is not None and tls.media_encryption == "required"
    media = {
        name: (ENCRYPTED_ONLY if required else ENCRYPTED_WHEN_OFFERED) if sdes else PLAIN_MEDIA
        for name in spec.transports.enabled()
        if name != "wss"
    }
    if spec.transports.wss is not None:
        media["wss"] = BROWSER_MEDIA
    return media


def endpoints(hops: Iterable[Hop]) -> list[Endpoint]:
    """Each distinct (transport, address, port) in the client's order."""
    seen: list[Endpoint] = []
    keys: set[tuple[str, str, int]] = set()
    for hop in hops:
        for address in hop.addresses:
            key = (hop.transport, address, hop.port)
            if key not in keys:
                keys.add(key)
                seen.append(Endpoint(hop.transport, address, hop.port, hop.target))
    return seen


def spec_defects(resolution: Resolution, spec: Spec) -> list[Defect]:
    """Where DNS disagrees with the spec: transports, ports, SRV targets, addresses, NAPTR."""
    defects: list[Defect] = []
    wanted = spec.transports.enabled()
    advertised = resolution.transports()
    for name, transport in wanted.items():
        if name not in advertised:
            defects.append(
                Defect(
                    "transport-not-advertised",
                    f"the spec enables {name} (port {transport.port}) but DNS does not "
                    f"advertise it for {resolution.domain}",
                )
            )
    for hop in resolution.hops:
        if hop.transport not in wanted:
            defects.append(
                Defect(
                    "transport-not-in-spec",
                    f"DNS advertises {hop.transport} ({hop.srv_name or hop.target}) but the "
                    "spec does not enable it",
                )
            )
            continue
        port = wanted[hop.transport].port
        if hop.port != port:
            via = hop.srv_name or hop.target
            defects.append(
                Defect(
                    "port-differs",
                    f"{via} sends {hop.transport} callers to {hop.target}:{hop.port} but the "
                    f"spec's transports.{hop.transport}.port is {port}",
                )
            )
    if spec.dns is not None and resolution.hops:
        defects += _dns_ownership_defects(resolution, spec)
    return list(dict.fromkeys(defects))  # each once, in order


def _dns_ownership_defects(resolution: Resolution, spec: Spec) -> list[Defect]:
    """Only when the spec manages DNS: the records must be the ones it publishes."""
    assert spec.dns is not None
    defects: list[Defect] = []
    if spec.dns.naptr and resolution.mode != "naptr":
        defects.append(
            Defect(
                "naptr-missing",
                f"the spec publishes NAPTR (dns.naptr: true) but {resolution.domain} has no "
                "usable SIP NAPTR",
            )
        )
    if not spec.dns.naptr and resolution.mode == "naptr":
        defects.append(
            Defect(
                "naptr-unexpected",
                f"dns.naptr is false but {resolution.domain} has SIP NAPTR records",
            )
        )
    servers = {s.host: s for s in spec.servers}
    if not servers:
        return defects
    targets = {h.target for h in resolution.hops if h.source != "address"}
    for target in sorted(targets - set(servers)):
        defects.append(
            Defect("target-not-in-spec", f"DNS sends callers to {target}, which is not in servers")
        )
    for host in sorted(set(servers) - targets):
        if resolution.mode != "address":
            defects.append(
                Defect("server-not-advertised", f"servers lists {host} but no SRV points at it")
            )
    zone = spec.zone
    for hop in resolution.hops:
        server = servers.get(hop.target)
        inside = hop.target == zone or hop.target.endswith("." + zone)
        if server is None or not inside or not hop.addresses:
            continue
        want = {_norm_ip(a) for a in (*server.ipv4, *server.ipv6)}
        have = {_norm_ip(a) for a in hop.addresses}
        if want != have:
            defects.append(
                Defect(
                    "address-differs",
                    f"{hop.target} has addresses {', '.join(sorted(have))} in DNS but the spec "
                    f"says {', '.join(sorted(want)) or 'none'}",
                )
            )
    return defects


# What a ban looks like from here: the jail's action rejects (ICMP, a refused connection) or
# drops (a timeout).
SILENT_KINDS = frozenset({"refused", "timeout"})


def silent_addresses(checks: Sequence[ProbeCheck]) -> list[Endpoint]:
    """One endpoint per address where every probe met a refusal or a timeout."""
    by_endpoint: dict[Endpoint, list[ProbeCheck]] = {}
    for check in checks:
        by_endpoint.setdefault(check.endpoint, []).append(check)
    found: dict[str, Endpoint] = {}
    for ep, group in by_endpoint.items():
        if all(c.result.status is None and c.result.error_kind in SILENT_KINDS for c in group):
            found.setdefault(ep.address, ep)
    return list(found.values())


def probe_defects(
    checks: Sequence[ProbeCheck], bans: Mapping[str, BanState] | None = None
) -> list[Defect]:
    """Name what the probes found: dead targets, no TLS listener, bad certificate, wrong status.

    ``bans``: per silent address, what sipctl's fail2ban jails say about this machine; a
    banned prober is told so instead of being sent to fix a listener that is fine."""
    defects: list[Defect] = []
    bans = bans or {}
    by_endpoint: dict[Endpoint, list[ProbeCheck]] = {}
    for check in checks:
        by_endpoint.setdefault(check.endpoint, []).append(check)
    for ep, group in by_endpoint.items():
        where = f"{ep.transport} {hostport(ep.address, ep.port)} ({ep.target})"
        failed = [c for c in group if c.result.status is None]
        if failed and len(failed) == len(group):
            first = failed[0].result
            ban = bans.get(ep.address) if first.error_kind in SILENT_KINDS else None
            if ban is not None and ban.banned:
                defects.append(Defect("prober-banned", f"{where}: {first.error}; {ban.words()}"))
                continue
            if ban is not None and not ban.readable:
                first = dataclasses.replace(first, error=f"{first.error} ({ban.words()})")
            if ep.transport == "tls" and first.error_kind in ("refused", "tls", "protocol"):
                defects.append(
                    Defect(
                        "sips-no-tls-listener",
                        f"DNS advertises SIPS at {where} but no TLS listener answers there: "
                        f"{first.error}",
                    )
                )
            elif first.error_kind == "certificate":
                defects.append(Defect("tls-certificate", f"{where}: {first.error}"))
            else:
                defects.append(Defect("target-unreachable", f"{where}: {first.error}"))
            continue
        strays = sorted({c.result.answered_from for c in group if c.result.answered_from})
        if strays:
            defects.append(
                Defect(
                    "reply-from-other-address",
                    f"{where} answered from {', '.join(strays)}, not from the address asked: "
                    "callers behind NAT never see such answers (RFC 3581 wants the reply from "
                    "the address and port the request reached; on Asterisk bind the transport "
                    "to the public address instead of 0.0.0.0)",
                )
            )
        for check in group:
            if check.ok:
                continue
            r, e = check.result, check.expectation
            got = (
                f"{r.status} {r.reason}".strip()
                if r.status is not None
                else (r.error or "no answer")
            )
            if e.role == "user":
                defects.append(
                    Defect(
                        "user-not-reachable",
                        f"sip:{e.user} over {where} answered {got}; "
                        "a declared user must answer 200",
                    )
                )
            elif e.expect == 404:
                defects.append(
                    Defect(
                        "unknown-name-accepted",
                        f"an unknown name (sip:{e.user}) over {where} answered {got}; with "
                        "unknown_callers: not-found it must answer 404",
                    )
                )
            elif e.expect == 401:
                defects.append(
                    Defect(
                        "unknown-name-not-challenged",
                        f"an unknown name (sip:{e.user}) over {where} answered {got}; with "
                        "unknown_callers: challenge it must be challenged (401) like an office "
                        "phone's extension (is another 'anonymous' endpoint defined?)",
                    )
                )
            elif e.expect == 200:
                defects.append(
                    Defect(
                        "reject-catch-all-missing",
                        f"an unknown name (sip:{e.user}) over {where} answered {got}; with "
                        "unknown_callers: reject the guest context's catch-all must take it (200)",
                    )
                )
            else:
                defects.append(Defect("probe-failed", f"sip:{e.user} over {where}: {got}"))
    return defects


def _norm_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


# --- the human view --------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers)] + [line(r) for r in rows]


def render_text(data: dict[str, Any], notes: bool = True) -> str:
    """The human report, from ``VerifyReport.to_json()`` (``notes`` False: without its note
    lines, as ``--quiet`` asks)."""
    out: list[str] = []
    how = {
        "naptr": "NAPTR -> SRV -> A/AAAA",
        "srv": "SRV -> A/AAAA (no NAPTR)",
        "address": "A/AAAA of the domain (no NAPTR, no SRV)",
        "none": "nothing",
    }[data["mode"]]
    asked = f" asking {data['nameserver']}" if data["nameserver"] else ""
    out.append(f"sip:*@{data['domain']}: resolved by {how}{asked}")
    out.append("")
    if data["chain"]:
        rows = []
        for hop in data["chain"]:
            service = hop["service"] or {"srv": "-", "address": "-"}.get(hop["source"], "-")
            share = "" if hop["share"] is None else f"{hop['share'] * 100:.0f}%"
            rows.append(
                [
                    hop["transport"],
                    service,
                    hop["srv_name"] or "-",
                    "" if hop["priority"] is None else str(hop["priority"]),
                    "" if hop["weight"] is None else str(hop["weight"]),
                    share,
                    f"{hop['target']}:{hop['port']}",
                    ", ".join(hop["addresses"]) or "(none)",
                ]
            )
        out += _table(
            ["transport", "service", "SRV", "prio", "weight", "share", "target:port", "addresses"],
            rows,
        )
        out.append("")
    if data["probes"]:
        rows = []
        for p in data["probes"]:
            got = (
                f"{p['status']} {p['reason']}".strip()
                if p["status"] is not None
                else (p["error"] or "no answer")
            )
            if p.get("answered_from"):
                got += f" (from {p['answered_from']})"
            expect = "any" if p["expect"] is None else str(p["expect"])
            rtt = "" if p["rtt_ms"] is None else f"{p['rtt_ms']:.1f} ms"
            rows.append(
                [
                    "ok" if p["ok"] else "FAIL",
                    p["transport"],
                    hostport(p["address"], p["port"]),
                    p["user"] + (" (canary)" if p["role"] == "canary" else ""),
                    expect,
                    got,
                    rtt,
                ]
            )
        out.append("SIP OPTIONS probes:")
        out += _table(["", "transport", "address", "user", "expect", "answer", "rtt"], rows)
        out.append("")
    for check in data.get("wss", []):
        where = f"wss://{check['host']}:{check['port']}/ws ({check['address']})"
        if check["error"]:
            out.append(f"WebSocket: FAIL {where}: {check['error']}")
        else:
            answers = ", ".join(f"{n} {s or 'no answer'}" for n, s in check["statuses"].items())
            out.append(f"WebSocket: {where}, subprotocol sip; OPTIONS: {answers}")
        out.append("")
    for transport, how in data.get("media", {}).items():
        out.append(f"media over {transport}: {how}")
    if data.get("media"):
        out.append("")
    if data.get("names"):
        from sipctl.reconciler.verify.names import render_names

        out += render_names(data["names"])
        out.append("")
    for note in data["notes"] if notes else ():
        out.append(f"note: {note}")
    if data["defects"]:
        out.append(f"{len(data['defects'])} defect(s):")
        for d in data["defects"]:
            out.append(f"  - [{d['code']}] {d['message']}")
    failed = sum(1 for p in data["probes"] if not p["ok"])
    names = data.get("names", [])
    silent = [n["name"] for n in names if n["state"] == "unavailable"]
    turned = [n["name"] for n in names if n["state"] in ("full", "locked")]
    buts = []
    if silent:
        buts.append(
            f"callers of {', '.join(silent)} hear the unavailable sound now (no phone answers)"
        )
    if turned:
        buts.append(f"callers of {', '.join(turned)} are turned away now (full or locked)")
    if data["ok"]:
        but = "".join(f"; {words}" for words in buts)
        out.append(f"verify: OK: {len(data['probes'])} probes answered as expected{but}")
    else:
        out.append(
            f"verify: FAILED: {len(data['defects'])} defect(s), {failed} of "
            f"{len(data['probes'])} probes not as expected"
        )
    return "\n".join(out)


__all__ = [
    "CANARY_PREFIX",
    "TRANSPORTS",
    "Endpoint",
    "Expectation",
    "ProbeCheck",
    "VerifyReport",
    "endpoints",
    "expectations",
    "probe_defects",
    "render_text",
    "spec_defects",
]
