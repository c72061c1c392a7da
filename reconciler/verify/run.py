"""``sipctl verify``: resolve the domain as a SIP client does, then probe every user.

Read-only: DNS queries and SIP OPTIONS, nothing else. The pure parts live in
``rfc3263.py`` (the chain) and ``verify_report.py`` (the comparisons and the views); this
module only does the I/O in order and collects the facts::

    report = run_verify(loaded, nameserver="127.0.0.1:53", timeout=5.0)
    print(report.to_text())          # or json.dumps(report.to_json())
    exit_code = 0 if report.ok else 1
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import dns.resolver

from sipctl.errors import SpecError, VerifyFailed
from sipctl.providers.dns.query import (
    Nameserver,
    gather,
    make_resolver,
    parse_nameserver,
    system_resolver_or_none,
)
from sipctl.providers.sip_probe import T1, probe
from sipctl.reconciler.probe_scope import ProbeScope, verify_scope
from sipctl.reconciler.verify.report import (
    CANARY_PREFIX,
    SILENT_KINDS,
    Endpoint,
    ProbeCheck,
    VerifyReport,
    endpoints,
    expectations,
    media_encryption,
    probe_defects,
    silent_addresses,
    spec_defects,
)
from sipctl.reconciler.verify.rfc3263 import Defect, resolve
from sipctl.schemas.loader import LoadedSpec
from sipctl.schemas.values import hostport

if TYPE_CHECKING:
    from sipctl.output import Console
    from sipctl.reconciler.ban_state import BanState

DEFAULT_TIMEOUT = 5.0
MAX_PARALLEL_PROBES = 16


def run_verify(
    loaded: LoadedSpec,
    nameserver: str | Nameserver | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    ssl_context: ssl.SSLContext | None = None,
    t1: float = T1,
    canary: str | None = None,
    log: Callable[[str], None] = lambda _line: None,
) -> VerifyReport:
    """Resolve ``loaded.spec.domain`` (RFC 3263) and probe every target with SIP OPTIONS.

    ``nameserver``: ``IP[:PORT]`` (or a host name) to ask instead of the system resolver; after
    an apply pass ``nameserver_after_apply(loaded)``. ``timeout`` bounds each DNS lookup and each
    probe. ``ssl_context`` checks TLS certificates (default: the system CAs). Never raises for
    what it finds; raises SpecError only for a bad ``nameserver`` argument.
    """
    # verify reads the PBX through its target, and asks fail2ban through its own (ban_states)
    if loaded.spec.asterisk is not None or loaded.spec.fail2ban is not None:
        from sipctl.providers.base import RunContext
        from sipctl.reconciler.bindings import enforce_bindings

        enforce_bindings(loaded, RunContext(base_dir=loaded.base_dir))
    spec = loaded.spec
    server = _nameserver(nameserver)
    resolver: dns.resolver.Resolver = make_resolver(server, timeout)
    log(f"resolving {spec.domain} (RFC 3263)")
    # Asked only for SRV targets the given server refuses (hosts outside its zones).
    fallback = functools.cache(lambda: system_resolver_or_none(timeout)) if server else None
    answers = gather(spec.domain, resolver, fallback)
    resolution = resolve(answers)
    defects = list(resolution.defects) + spec_defects(resolution, spec)
    report = VerifyReport(
        domain=spec.domain,
        nameserver=str(server) if server is not None else None,
        resolution=resolution,
        defects=defects,
        notes=list(resolution.notes),
        media=media_encryption(spec),
    )
    name = canary or f"{CANARY_PREFIX}{secrets.token_hex(4)}"
    wanted = expectations(spec, name)
    scope = verify_scope(loaded, os.environ)
    allowed = [
        ep
        for ep in endpoints(resolution.hops)
        if _in_scope(scope, report, ep.address, ep.target, ep.port)
    ]
    jobs = [(ep, e) for ep in allowed for e in wanted]
    if spec.asterisk is not None and spec.asterisk.unknown_callers == "reject":
        report.notes.append(
            "unknown_callers is reject: the guest catch-all answers every name 200 to OPTIONS, "
            "so the probes prove each declared name is routed and the catch-all is in place, "
            "not that unknown names are refused"
        )
    if (spec.served_by or spec).transports.wss is not None:
        _check_websocket(loaded, report, scope, timeout, ssl_context, log)
    if not jobs:
        return report
    log(f"probing {len(jobs)} (target, user) pairs with SIP OPTIONS")
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PROBES, len(jobs))) as pool:
        results = pool.map(
            lambda job: probe(
                job[0].address,
                job[0].port,
                job[0].transport,
                job[1].user,
                spec.domain,
                timeout=timeout,
                t1=t1,
                ssl_context=ssl_context,
            ),
            jobs,
        )
        report.probes = [ProbeCheck(ep, e, r) for (ep, e), r in zip(jobs, results, strict=True)]
    report.defects += probe_defects(report.probes, ban_states(loaded, report.probes, log))
    _check_certificates(loaded, report, scope, allowed, timeout, log)
    _check_names(loaded, report, timeout, log)
    return report


MAX_PHONES = 500  # extensions read per verify (one CLI command each, in one round trip)


def _check_names(
    loaded: LoadedSpec, report: VerifyReport, timeout: float, log: Callable[[str], None]
) -> None:
    """What a caller of each declared name gets now, from the live PBX (read-only) and
    OPTIONS to the contacts nobody qualifies: no phone rings (``names.py``)."""
    from sipctl.errors import SipctlError
    from sipctl.providers.asterisk.cli import asterisk_program
    from sipctl.providers.asterisk.phones import PhoneFacts, read_phones
    from sipctl.providers.asterisk.rooms import LiveRooms, read_rooms
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.render.asterisk_rooms import conference_name
    from sipctl.reconciler.verify.names import (
        contact_target,
        name_states,
        needs_options,
        phone_state,
    )

    spec = loaded.spec
    section = spec.asterisk
    if section is None or section.ensure == "absent" or not (spec.users or spec.rooms):
        return
    if section.channel != "pjsip":
        report.notes.append("channel sip: the phones behind the names are not read")
        return
    users = {
        name: list((t,) if isinstance(t, str) else t.extensions()) for name, t in spec.users.items()
    }
    extensions = list(dict.fromkeys(e for exts in users.values() for e in exts))
    if len(extensions) > MAX_PHONES:
        report.notes.append(f"the phones of the first {MAX_PHONES} extensions were read")
        extensions = extensions[:MAX_PHONES]
    log(f"reading {len(extensions)} phone(s) through the asterisk target")
    ctx = RunContext(base_dir=loaded.base_dir)
    facts: dict[str, PhoneFacts | None] = {}
    live_rooms: LiveRooms | None = None
    try:
        transport = ctx.transports.get(section.target, section.ssh)
        if not transport.can_run:
            report.notes.append("asterisk.target is a directory: the phones are not read")
            return
        program = asterisk_program(ctx, transport, loaded)
        facts = read_phones(transport, program, extensions)
        if spec.rooms:
            live_rooms = read_rooms(transport, program)
    except SipctlError as exc:
        report.notes.append(f"the phones could not be read: {exc.message}")
        return
    finally:
        ctx.close()
    asks = {
        c.uri: target
        for f in facts.values()
        if f is not None
        for c in f.contacts
        if needs_options(c) and (target := contact_target(c.uri)) is not None
    }
    answered: dict[str, bool] = {}
    if asks:
        log(f"OPTIONS to {len(asks)} contact(s) nobody qualifies")
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PROBES, len(asks))) as pool:
            results = pool.map(
                lambda item: probe(
                    item[1].address, item[1].port, item[1].transport, "sipctl-verify",
                    item[1].address, timeout=min(timeout, 2.0),
                ),
                asks.items(),
            )  # fmt: skip
            answered = {uri: r.status is not None for uri, r in zip(asks, results, strict=True)}
    phones = {ext: phone_state(ext, facts.get(ext), answered) for ext in extensions}
    ring_groups = frozenset(n for n, t in spec.users.items() if not isinstance(t, str))
    customer = spec.domain if spec.host is not None else None  # a host's customer's rooms
    rooms = {n: (conference_name(n, customer), r.max_members) for n, r in spec.rooms.items()}
    states = name_states(users, ring_groups, rooms, phones, _routed(report), live_rooms)
    # a wrong name is already a defect of its probes (user-not-reachable)
    report.names = [s.to_json() for s in states]


def _routed(report: VerifyReport) -> dict[str, str | None]:
    """Per declared name: None when a probe got a declared name's answer, else what came
    (only names that got some other answer: silence is the targets' defect)."""
    found: dict[str, str | None] = {}
    for check in report.probes:
        if check.expectation.role != "user":
            continue
        name, result = check.expectation.user, check.result
        if check.ok:
            found[name] = None
        elif name not in found and result.status is not None:
            found[name] = f"{result.status} {result.reason}".strip()
    return found


def ban_states(
    loaded: LoadedSpec, probes: list[ProbeCheck], log: Callable[[str], None]
) -> dict[str, BanState]:
    """For each address that refused or ignored every probe: is this machine banned there?"""
    silent = silent_addresses(probes)
    if silent:
        log(f"{len(silent)} address(es) silent: asking sipctl's fail2ban jails about this machine")
    found = {ep.address: _ban_state(loaded, ep.address, ep.port) for ep in silent}
    return {address: state for address, state in found.items() if state is not None}


def _ban_state(loaded: LoadedSpec, address: str, port: int) -> BanState | None:
    """What sipctl's jails say about this machine, seen from ``address`` (None: no route)."""
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.ban_state import read_ban_state, source_address

    ctx = RunContext(base_dir=loaded.base_dir)
    try:
        return read_ban_state(loaded.spec, ctx, source_address(address, port))
    except OSError:
        return None
    finally:
        ctx.close()


def _in_scope(scope: ProbeScope, report: VerifyReport, address: str, name: str, port: int) -> bool:
    """The one gate of every connection verify makes (OPTIONS, WebSocket, a certificate's
    fetch): True when ``scope`` allows ``address``, else the refusal is noted once."""
    if scope.allows(address, name):
        return True
    if (refusal := scope.refusal(address, name, port)) not in report.notes:
        report.notes.append(refusal)
    return False


def _check_certificates(
    loaded: LoadedSpec,
    report: VerifyReport,
    scope: ProbeScope,
    allowed: list[Endpoint],
    timeout: float,
    log: Callable[[str], None],
) -> None:
    """Each TLS listener's certificate (SIPS endpoints as resolved and allowed, the WSS host
    when in scope) against the names its clients check and against ``asterisk.tls``'s
    file."""
    from datetime import UTC, datetime

    from sipctl.providers.certificate.pem import read_certificate, read_der_certificate
    from sipctl.providers.certificate.served import fetch_served
    from sipctl.reconciler.verify.certificates import served_defects

    spec = loaded.spec
    # (where, address, port, the names its clients check)
    listeners = [
        (f"tls {ep.address}:{ep.port} ({ep.target})", ep.address, ep.port,
         [spec.domain])
        for ep in allowed
        if ep.transport == "tls"
    ]  # fmt: skip
    wss, host = spec.transports.wss, spec.webrtc_host()
    if wss is not None and host is not None:
        for address in _host_addresses(loaded, host)[:1]:
            if _in_scope(scope, report, address, host, wss.port):
                listeners.append((f"wss {address}:{wss.port} ({host})", address, wss.port, [host]))
    if not listeners:
        return
    tls = spec.asterisk.tls if spec.asterisk is not None else None
    in_file = None
    if tls is not None:
        content = _read_cert_file(loaded, report)
        if content is not None:
            try:
                in_file = read_certificate(content)
            except ValueError:
                report.notes.append(f"{tls.cert_file} holds no PEM certificate")
    log(f"fetching the certificates of {len(listeners)} TLS listener(s)")
    now = datetime.now(UTC)
    file_name = tls.cert_file if tls is not None else ""
    for where, address, port, names in listeners:
        served = fetch_served(address, port, names[-1], timeout)
        if served.der is None:
            continue  # the probe of this endpoint says why
        facts = read_der_certificate(served.der)
        report.defects += served_defects(where, facts, names, in_file, file_name, now)


def _read_cert_file(loaded: LoadedSpec, report: VerifyReport) -> bytes | None:
    """``asterisk.tls.cert_file`` read on the asterisk target (read-only), or None."""
    from sipctl.errors import ProviderError
    from sipctl.providers.base import RunContext

    asterisk = loaded.spec.asterisk
    if asterisk is None or asterisk.tls is None:
        return None
    ctx = RunContext(base_dir=loaded.base_dir)
    try:
        transport = ctx.transports.get(asterisk.target, asterisk.ssh)
        return transport.read_files([asterisk.tls.cert_file])[asterisk.tls.cert_file].content
    except ProviderError as exc:
        report.notes.append(f"could not read {asterisk.tls.cert_file} to compare: {exc}")
        return None
    finally:
        ctx.close()


def _check_websocket(
    loaded: LoadedSpec,
    report: VerifyReport,
    scope: ProbeScope,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
    log: Callable[[str], None],
) -> None:
    """What a browser does: TLS to webrtc.host, upgrade on /ws (sip), OPTIONS per page name."""
    from sipctl.providers.wss_probe import check_wss
    from sipctl.reconciler.render.webrtc import page_from_host

    spec = loaded.spec
    # a host's customer: the host's WebSocket, whatever transports its own records name
    wss, host = (spec.served_by or spec).transports.wss, spec.webrtc_host()
    if wss is None or host is None:
        return
    addresses = _host_addresses(loaded, host)
    if not addresses:
        report.defects.append(
            Defect("wss-host-unresolved", f"the WebRTC host {host} has no address")
        )
        return
    if not _in_scope(scope, report, addresses[0], host, wss.port):
        return
    names = list(spec.page_names())
    log(f"WebSocket: wss://{host}:{wss.port}/ws at {addresses[0]}, OPTIONS {len(names)} names")
    result = check_wss(
        host, addresses[0], wss.port, names, spec.domain, page_from_host(spec),
        timeout=timeout, ssl_context=ssl_context,
    )  # fmt: skip
    report.wss.append(result.to_json())
    where = f"wss://{host}:{wss.port}/ws ({addresses[0]})"
    if result.error is not None:
        if result.error_kind in SILENT_KINDS:
            ban = _ban_state(loaded, addresses[0], wss.port)
            if ban is not None and ban.banned:
                report.defects.append(
                    Defect("prober-banned", f"{where}: {result.error}; {ban.words()}")
                )
                return
        report.defects.append(Defect(f"wss-{result.error_kind}", f"{where}: {result.error}"))
        return
    for name, status in result.statuses.items():
        if status != 200:
            report.defects.append(
                Defect(
                    "wss-options",
                    f"{where}: OPTIONS sip:{name}@{spec.domain} over WebSocket was answered "
                    f"{status or 'nothing'}, not 200",
                )
            )


def _host_addresses(loaded: LoadedSpec, host: str) -> list[str]:
    """The spec's own addresses of ``host`` when it is a server, else the system's answer."""
    for server in loaded.spec.servers:
        if server.host == host and (server.ipv4 or server.ipv6):
            return [*server.ipv4, *server.ipv6]
    try:
        info = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(str(i[4][0]) for i in info))


def nameserver_after_apply(loaded: LoadedSpec) -> str | None:
    """The server a post-apply verify asks: the spec's own primary (authoritative, no caches).

    None when the spec's DNS provider names no such server (``authoritative_server``): then
    the system resolver is asked, and a fresh change may not have reached it yet.
    """
    from sipctl.providers.base import load_provider

    dns_section = loaded.spec.dns
    if dns_section is None:
        return None
    return load_provider(dns_section.provider).authoritative_server(loaded)


def post_apply_skip_reason(loaded: LoadedSpec) -> str | None:
    """Why a post-apply verify cannot ask the servers just changed, or None when it can."""
    spec = loaded.spec
    if spec.dns is not None and nameserver_after_apply(loaded) is None:
        # A zone file is served by someone else, later: the system resolver may not see it yet.
        return f"dns.provider {spec.dns.provider} has no server sipctl can ask"
    if spec.asterisk is not None and spec.asterisk.target.startswith("dir:"):
        return "asterisk.target is a directory, not a running PBX"
    return None


def _nameserver(value: str | Nameserver | None) -> Nameserver | None:
    if value is None or isinstance(value, Nameserver):
        return value
    try:
        return parse_nameserver(value)
    except SpecError:
        host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "53")
        if not any(c.isalpha() for c in host) or not port.isdigit():
            raise  # an address written wrong (999.1.1.1, [::1]:99999): no name to look up
    # A host name (dns.server may be ns1.example.com:53): the system resolves it once.
    try:
        info = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        raise SpecError(f"nameserver {value!r}: cannot resolve the host name {host!r}") from None
    address = str(info[0][4][0])
    return parse_nameserver(hostport(address, port))


def post_apply_verify(
    loaded: LoadedSpec, console: Console, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """The end of ``sipctl apply``: verify against the spec's own DNS server.

    Runs only when the spec manages both DNS and Asterisk (otherwise a failure could be
    somebody else's layer). Prints the report; raises VerifyFailed with the defects.
    """
    spec = loaded.spec
    if spec.dns is None or spec.asterisk is None:
        return
    if spec.dns.ensure == "absent" or spec.asterisk.ensure == "absent":
        return
    skip = post_apply_skip_reason(loaded)
    if skip is not None:
        console.info(f"verify skipped: {skip}; run 'sipctl verify' once it is live")
        return
    console.info("verify: resolving and probing as a SIP client would (--no-verify skips this)")
    report = run_verify(loaded, nameserver_after_apply(loaded), timeout, log=console.detail)
    console.out(report.to_text(console.notes))
    if not report.ok:
        first = report.defects[0].message if report.defects else "a probe failed"
        more = f" (and {len(report.defects) - 1} more)" if len(report.defects) > 1 else ""
        raise VerifyFailed(
            f"applied, but verify failed: {first}{more}",
            hint="the changes are live; fix the defects above and run 'sipctl verify'",
        )
