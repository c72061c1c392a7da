"""Cross-layer checks: the layers of one spec must agree with each other.

Offline and pure:

- ``cross_checks(loaded)`` (offline, for ``sipctl validate`` and every command that loads a
  spec): the spec's own layers against each other - ports opened by the firewall and watched
  by the fail2ban jail, the RTP range, TLS files, users, servers. ``cross_warnings(loaded)``
  lists what is allowed but probably a mistake.

What only the live side can answer is checked by the provider that reads it (Asterisk's
live transports and the file it really logs to: ``providers/asterisk/``).

Every message names both sides of a disagreement with ``file:line:col`` and says which side
to fix. The firewall and fail2ban sides are read from their renderers (``desired_ruleset``,
``ban_ports``), the same functions that write the live rules, so a renderer that drifts from
the spec is caught here rather than on the live host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from sipctl.schemas.loader import LoadedSpec

if TYPE_CHECKING:
    from sipctl.schemas.spec import Spec

PortKey = tuple[str, int]  # ("udp" | "tcp", port)


# --- what the other layers derive from the spec ----------------------------------------------


def expected_sip_ports(spec: Spec) -> dict[str, PortKey]:
    """transport name -> (protocol, port): what the firewall opens and the jail bans."""
    return spec.transports.listening()


def firewall_records(spec: Spec) -> list[tuple[str, int, int]]:
    """(protocol, first port, last port) of every port rule the firewall renderer writes."""
    from sipctl.reconciler.render.firewall import desired_ruleset

    found: list[tuple[str, int, int]] = []
    for record in desired_ruleset(spec)["records"]:
        words = str(record).split()
        if words and words[0] in ("ipv4", "ipv6"):
            words = words[1:]
        if len(words) != 3 or words[0] != "accept" or words[1] not in ("tcp", "udp"):
            continue
        first, _, last = words[2].partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            found.append((words[1], int(first), int(last or first)))
    return found


def firewall_opens(spec: Spec, proto: str, first: int, last: int | None = None) -> bool:
    """Whether the rendered firewall accepts every port of ``first``-``last`` over ``proto``."""
    end = first if last is None else last
    return any(p == proto and a <= first and end <= b for p, a, b in firewall_records(spec))


def firewall_udp_ranges(spec: Spec) -> list[tuple[int, int]]:
    return [(a, b) for p, a, b in firewall_records(spec) if p == "udp" and b > a]


def jail_ports(spec: Spec) -> set[PortKey]:
    """(protocol, port) pairs the fail2ban jail bans, from its renderer."""
    from sipctl.reconciler.render.fail2ban import BAN_PROTOCOLS, ban_ports

    ports = [int(p) for p in ban_ports(spec).split(",") if p.strip().isdigit()]
    protocols = [p.strip() for p in str(BAN_PROTOCOLS).split(",") if p.strip()]
    return {(proto, port) for proto in protocols for port in ports}


def firewall_rtp_range(spec: Spec) -> tuple[int, int]:
    """The RTP range the firewall opens: the rendered UDP range rule (asterisk.rtp's own)."""
    rtp = spec.asterisk.rtp if spec.asterisk is not None else None
    ranges = firewall_udp_ranges(spec) if spec.firewall is not None else []
    if rtp is not None and (rtp.start, rtp.end) in ranges:
        return rtp.start, rtp.end
    if ranges:
        return ranges[0]
    return (rtp.start, rtp.end) if rtp is not None else (10000, 20000)


# --- offline checks --------------------------------------------------------------------------


def cross_checks(loaded: LoadedSpec) -> list[str]:
    """Problems that make the layers of this spec disagree; empty when they agree."""
    return [problem for check in offline_checks() for problem in check(loaded)]


def offline_checks() -> tuple[Callable[[LoadedSpec], list[str]], ...]:
    """Every offline cross-layer check; their docstrings are listed in docs/spec.md."""
    return (
        _port_checks,
        _rtp_checks,
        _tls_checks,
        _acme_checks,
        _dns_checks,
        _webrtc_checks,
        _name_checks,
        _outbound_checks,
    )


def cross_warnings(loaded: LoadedSpec) -> list[str]:
    """Allowed, but probably not what was meant (shown, never fatal)."""
    spec, w = loaded.spec, loaded.where
    notes: list[str] = []
    # extension -> the first user that rings it (a lookup per name, not a scan of all users;
    # a name that rings another extension is never the one found for its own)
    first_ringing: dict[str, str] = {}
    for other, target in spec.users.items():
        if isinstance(target, str):
            first_ringing.setdefault(target, other)
    for name, ext in spec.users.items():
        owner = first_ringing.get(name)
        if name.isdigit() and name != ext and owner is not None:
            notes.append(
                f"{w(('users', name))}: sip:{name} rings {ext}, but {name} is also the "
                f"extension of users.{owner} ({w(('users', owner))}); a caller may expect "
                f"sip:{name} to ring {owner}"
            )
    tls_used = spec.transports.tls is not None or spec.transports.wss is not None
    if spec.asterisk is not None and spec.asterisk.tls is not None and not tls_used:
        notes.append(
            f"{w(('asterisk', 'tls'))}: asterisk.tls is set but neither transports.tls nor "
            f"transports.wss is enabled ({w(('transports',))}); the certificate is unused"
        )
    # A hosting customer's servers are its host's (unless it gives its own): they lie
    # outside its zone by design, and this file says nothing of them to be warned about.
    own_servers = loaded.positions.get(("servers",)) is not None
    if spec.dns is not None and own_servers:
        for i, server in enumerate(spec.servers):
            if not _in_zone(server.host, spec.zone) and (server.ipv4 or server.ipv6):
                notes.append(
                    f"{w(('servers', i, 'host'))}: {server.host} is outside the zone "
                    f"{spec.zone} ({w(('dns', 'zone'))}); its addresses are not published "
                    "by sipctl and are only used by verify"
                )
    from sipctl.schemas.hosting import stale_bindings

    notes += stale_bindings(loaded)  # a deleted customer's line left in the host file
    if spec.dns is not None and spec.dns.server is not None and spec.dns.tsig is None:
        notes.append(
            f"{w(('dns',))}: dns.tsig is not set: updates are unsigned and any host the "
            "server trusts could change the same records"
        )
    if spec.fail2ban is not None and spec.fail2ban.enabled and spec.asterisk is None:
        notes.append(
            f"{w(('fail2ban', 'logpath'))}: asterisk is not managed, so sipctl cannot check "
            "that the jail's logpath is the file Asterisk logs to"
        )
    notes += _ignoreip_warnings(loaded)
    if spec.firewall is not None and spec.asterisk is None:
        start, end = firewall_rtp_range(spec)
        notes.append(
            f"{w(('firewall',))}: asterisk is not managed; the firewall opens RTP "
            f"{start}-{end}, check that it is the PBX's rtp.conf range"
        )
    return notes


# Networks this wide are a large share of the Internet: probably a typo of the prefix length.
_WIDE_IGNORED_PREFIX = {4: 8, 6: 32}


def _ignoreip_warnings(loaded: LoadedSpec) -> list[str]:
    """ignoreip entries so wide that the jail hardly bans anyone (/0 is refused outright)."""
    spec, w = loaded.spec, loaded.where
    if spec.fail2ban is None:
        return []
    notes: list[str] = []
    for i, entry in enumerate(spec.fail2ban.ignoreip):
        network = ipaddress.ip_network(entry, strict=False)
        if network.prefixlen < _WIDE_IGNORED_PREFIX[network.version]:
            notes.append(
                f"{w(('fail2ban', 'ignoreip', i))}: fail2ban.ignoreip {entry} covers "
                f"{network.num_addresses:.3g} addresses; the jail never bans any of them "
                "(did you mean a longer prefix?)"
            )
    return notes


def _port_checks(loaded: LoadedSpec) -> list[str]:
    """Every transport's port is opened by the firewall and banned by the fail2ban jail;
    transports.tcp and transports.tls use different ports; no transport uses firewall.ssh_port."""
    spec, w = loaded.spec, loaded.where
    problems: list[str] = []
    wanted = expected_sip_ports(spec)
    if spec.firewall is not None and spec.firewall.ensure == "present":
        for name, key in wanted.items():
            if not firewall_opens(spec, *key):
                problems.append(
                    f"{w(('transports', name, 'port'))}: transports.{name} listens on "
                    f"{key[0]}/{key[1]} but the firewall ({w(('firewall',))}) does not open it"
                )
    if spec.fail2ban is not None and spec.fail2ban.enabled:
        banned = jail_ports(spec)
        for name, key in wanted.items():
            if key not in banned:
                problems.append(
                    f"{w(('transports', name, 'port'))}: transports.{name} ({key[0]}/{key[1]}) "
                    f"is not in the ports of the fail2ban jail ({w(('fail2ban',))}): a banned "
                    "scanner could still call over it"
                )
    # Two TCP transports on one port cannot both listen.
    on_tcp = [(n, port) for n, (proto, port) in wanted.items() if proto == "tcp"]
    for i, (name, port) in enumerate(on_tcp):
        for other, other_port in on_tcp[:i]:
            if port == other_port:
                problems.append(
                    f"{w(('transports', name, 'port'))}: transports.{name} and "
                    f"transports.{other} ({w(('transports', other, 'port'))}) both use TCP "
                    f"port {port}; give each its own port (5060 tcp, 5061 tls, 8089 wss)"
                )
    if spec.firewall is not None:
        for name, (proto, port) in wanted.items():
            if proto == "tcp" and port == spec.firewall.ssh_port:
                problems.append(
                    f"{w(('transports', name, 'port'))}: transports.{name} uses TCP port {port}, "
                    f"which is firewall.ssh_port ({w(('firewall', 'ssh_port'))}); give SIP "
                    "another port (5060 tcp, 5061 tls, 8089 wss), or set ssh_port to the port "
                    "sshd listens on"
                )
    return problems


def _rtp_checks(loaded: LoadedSpec) -> list[str]:
    """The firewall opens the whole asterisk.rtp range; no UDP transport's port lies inside it."""
    spec, w = loaded.spec, loaded.where
    problems: list[str] = []
    if spec.asterisk is None:
        return problems
    rtp = spec.asterisk.rtp
    firewall_on = spec.firewall is not None and spec.firewall.ensure == "present"
    if firewall_on and not firewall_opens(spec, "udp", rtp.start, rtp.end):
        ranges = ", ".join(f"{a}-{b}" for a, b in firewall_udp_ranges(spec)) or "none"
        problems.append(
            f"{w(('asterisk', 'rtp'))}: asterisk.rtp is {rtp.start}-{rtp.end} but the "
            f"firewall ({w(('firewall',))}) opens the UDP ranges {ranges}"
        )
    for name, (proto, port) in expected_sip_ports(spec).items():
        if proto == "udp" and rtp.start <= port <= rtp.end:
            problems.append(
                f"{w(('transports', name, 'port'))}: transports.{name} port {port} lies inside "
                f"asterisk.rtp {rtp.start}-{rtp.end} ({w(('asterisk', 'rtp'))}); media and "
                "signalling would compete for it: move the port or the range"
            )
    return problems


def _tls_checks(loaded: LoadedSpec) -> list[str]:
    """transports.tls needs asterisk.tls (cert_file, key_file) when Asterisk is managed."""
    spec, w = loaded.spec, loaded.where
    if spec.transports.tls is None or spec.asterisk is None or spec.asterisk.ensure == "absent":
        return []
    if spec.asterisk.tls is None:
        return [
            f"{w(('transports', 'tls'))}: transports.tls is enabled but asterisk.tls "
            f"(cert_file, key_file) is missing in asterisk ({w(('asterisk',))}); Asterisk "
            "cannot offer SIPS without them"
        ]
    return []


def certificate_names(spec: Spec) -> list[str]:
    """The names a certificate of the spec must carry: the SIP domain (RFC 5922 clients
    check it), then every server host (most clients check the SRV target; browsers check
    the wss:// host)."""
    names = [spec.domain]
    names += [s.host for s in spec.servers if s.host not in names]
    host = spec.webrtc_host() if spec.transports.wss is not None else None
    if host is not None and host not in names:
        names.append(host)
    return names


def _acme_checks(loaded: LoadedSpec) -> list[str]:
    """asterisk.tls.acme needs a dns section whose provider can publish DNS-01 challenge
    records (rfc2136, octodns; not zonefile), and every certificate name lies inside the
    zone."""
    spec, w = loaded.spec, loaded.where
    if spec.asterisk is None or spec.asterisk.tls is None or spec.asterisk.tls.acme is None:
        return []
    where = w(("asterisk", "tls", "acme"))
    if spec.dns is None or spec.dns.ensure == "absent":
        return [
            f"{where}: asterisk.tls.acme answers DNS-01 challenges through the spec's dns "
            "section, but there is none (or it is ensure: absent); add dns, or obtain the "
            "certificate another way and leave acme out"
        ]
    from sipctl.providers.dns.challenge import acme_refusal

    refusal = acme_refusal(loaded)  # the provider's declared capability, asked of its class
    return ([refusal] if refusal is not None else []) + [
        f"{where}: the certificate name {name} is outside the zone {spec.zone} "
        f"({w(('dns', 'zone'))}), so sipctl cannot publish its _acme-challenge record; "
        "move the server into the zone or leave acme out"
        for name in certificate_names(spec)
        if not _in_zone(name, spec.zone)
    ]


def _webrtc_checks(loaded: LoadedSpec) -> list[str]:
    """WSS needs the certificate and PJSIP; the page needs WSS, a host, declared names once each."""
    spec, w = loaded.spec, loaded.where
    problems: list[str] = []
    wss, webrtc = spec.transports.wss, spec.webrtc
    managed = spec.asterisk is not None and spec.asterisk.ensure == "present"
    if wss is not None and managed:
        assert spec.asterisk is not None
        if spec.asterisk.tls is None:
            problems.append(
                f"{w(('transports', 'wss'))}: transports.wss is enabled but asterisk.tls "
                f"(cert_file, key_file) is missing in asterisk ({w(('asterisk',))}); "
                "browsers only speak WebSocket over TLS"
            )
        if spec.asterisk.channel != "pjsip":
            problems.append(
                f"{w(('transports', 'wss'))}: transports.wss needs asterisk.channel: pjsip "
                f"({w(('asterisk', 'channel'))}); sipctl does not configure chan_sip's WebSocket"
            )
    if webrtc is None or spec.hosting is not None:
        return problems  # a host's pages are its customers'
    # A customer's page calls over its host's WSS (its own transports are its DNS records').
    wss = (spec.served_by or spec).transports.wss
    if wss is None and spec.served_by is not None:
        problems.append(
            f"{w(('webrtc',))}: the page calls over the host's transports.wss, which its "
            "file does not enable; add wss: {port: 8089} to the host's transports"
        )
    elif wss is None:
        problems.append(
            f"{w(('webrtc',))}: the webrtc page calls over transports.wss, which is not "
            f"enabled ({w(('transports',))}); add wss: {{port: 8089}} there"
        )
    if spec.webrtc_host() is None:
        problems.append(
            f"{w(('webrtc',))}: the page needs a host to connect to: set webrtc.host or "
            f"list a server ({w(('servers',))})"
        )
    declared = {name.lower() for name in (*spec.users, *spec.rooms)}
    listed: dict[str, int] = {}  # a name as callers reach it (any case) -> where it is listed
    for i, name in enumerate(webrtc.page.names or ()):
        if name.lower() not in declared:
            problems.append(
                f"{w(('webrtc', 'page', 'names', i))}: {name} is neither in users "
                f"({w(('users',))}) nor in rooms; the page can only call declared names"
            )
        elif name.lower() in listed:
            first = listed[name.lower()]
            problems.append(
                f"{w(('webrtc', 'page', 'names', i))}: {name} is listed already "
                f"({w(('webrtc', 'page', 'names', first))}; case does not count): the page "
                "would show two buttons that call the same name; keep one"
            )
        listed.setdefault(name.lower(), i)
    if not spec.page_names():
        problems.append(
            f"{w(('webrtc', 'page'))}: the page has nobody to call; declare users "
            f"({w(('users',))}) or list webrtc.page.names"
        )
    return problems


def _dns_checks(loaded: LoadedSpec) -> list[str]:
    """With dns, servers is not empty, and every server inside the zone has ipv4 or ipv6."""
    spec, w = loaded.spec, loaded.where
    problems: list[str] = []
    if spec.dns is None or spec.dns.ensure == "absent":
        return problems
    if not spec.servers:
        what = "NAPTR and SRV" if spec.dns.naptr else "SRV"
        problems.append(
            f"{w(('dns',))}: dns publishes {what} records but servers is empty "
            f"({w(('servers',))}); a NAPTR must point at an SRV and an SRV needs a target"
        )
    for i, server in enumerate(spec.servers):
        if _in_zone(server.host, spec.zone) and not (server.ipv4 or server.ipv6):
            problems.append(
                f"{w(('servers', i, 'host'))}: {server.host} is inside the zone {spec.zone} "
                f"({w(('dns',))}) but has no ipv4 or ipv6; its SRV target would not resolve"
            )
    return problems


def _name_checks(loaded: LoadedSpec) -> list[str]:
    """Users and rooms share one namespace, in which case does not count: sip:<name>@<domain>
    reaches exactly one of them, however the caller writes the name; cards.names names
    only users and rooms."""
    spec, w = loaded.spec, loaded.where
    problems: list[str] = []
    seen: dict[str, tuple[str, str]] = {}  # lower case -> (section, name as written)
    for section, names in (("users", spec.users), ("rooms", spec.rooms)):
        for name in names:
            other = seen.setdefault(name.lower(), (section, name))
            if other == (section, name):
                continue
            same = "has the name of" if other[1] == name else "differs only in case from"
            problems.append(
                f"{w((section, name))}: {section}.{name} {same} {other[0]}.{other[1]} "
                f"({w(other)}); callers reach names in any case, so "
                f"sip:{name}@{spec.domain} can reach only one of them: rename one"
            )
    for name in spec.cards.names if spec.cards is not None else ():
        if name.lower() not in seen:
            problems.append(
                f"{w(('cards', 'names', name))}: {name} is neither in users "
                f"({w(('users',))}) nor in rooms; a card shows a declared name"
            )
    return problems


def _outbound_checks(loaded: LoadedSpec) -> list[str]:
    """outbound needs the PJSIP Asterisk layer (the spec already keeps the office phones'
    context apart from the guests')."""
    spec, w = loaded.spec, loaded.where
    if spec.outbound is None:
        return []
    section = spec.asterisk
    if section is None:
        return [
            f"{w(('outbound',))}: calls out go through Asterisk with PJSIP: add an asterisk "
            f"section (its channel is pjsip unless set), or remove outbound"
        ]
    if section.channel != "pjsip":
        return [
            f"{w(('outbound',))}: calls out go through Asterisk with PJSIP, and "
            f"asterisk.channel is {section.channel} ({w(('asterisk', 'channel'))}): set "
            "channel: pjsip, or remove outbound"
        ]
    return []


def _in_zone(host: str, zone: str) -> bool:
    return host == zone or host.endswith("." + zone)
