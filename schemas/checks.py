"""Cross-layer checks: the layers of one spec must agree with each other.

Two kinds, both pure:

- ``cross_checks(loaded)`` (offline, for ``sipctl validate`` and every command that loads a
  spec): the spec's own layers against each other - ports opened by the firewall and watched
  by the fail2ban jail, the RTP range, TLS files, users, servers. ``cross_warnings(loaded)``
  lists what is allowed but probably a mistake.
- ``live_cross_checks(loaded, states)`` (for ``sipctl plan``): what only the live systems can
  answer - Asterisk's live transports, its effective RTP range, the file it really logs to -
  read from the providers' ``LiveState.private`` (keys documented at that function).

Every message names both sides of a disagreement with ``file:line:col`` and says which side
to fix. The firewall and fail2ban sides are read from their renderers (``desired_ruleset``,
``ban_ports``), the same functions that write the live rules, so a renderer that drifts from
the spec is caught here rather than on the live host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipctl.reconciler.resources import LiveState
from sipctl.schemas.loader import LoadedSpec
from sipctl.schemas.values import TRANSPORT_PROTOCOL

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
    if spec.dns is not None:
        for i, server in enumerate(spec.servers):
            if not _in_zone(server.host, spec.zone) and (server.ipv4 or server.ipv6):
                notes.append(
                    f"{w(('servers', i, 'host'))}: {server.host} is outside the zone "
                    f"{spec.zone} ({w(('dns', 'zone'))}); its addresses are not published "
                    "by sipctl and are only used by verify"
                )
        if spec.dns.provider == "rfc2136" and spec.dns.tsig is None:
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
                    f"which is firewall.ssh_port ({w(('firewall', 'ssh_port'))})"
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
                "signalling would compete for it"
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
    """asterisk.tls.acme needs a dns section (it answers DNS-01), and every certificate name
    lies inside the zone."""
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
    return [
        f"{where}: the certificate name {name} is outside the zone {spec.zone} "
        f"({w(('dns', 'zone'))}), so sipctl cannot publish its _acme-challenge record; "
        "move the server into the zone or leave acme out"
        for name in certificate_names(spec)
        if not _in_zone(name, spec.zone)
    ]


def _webrtc_checks(loaded: LoadedSpec) -> list[str]:
    """WSS needs the certificate and PJSIP; the page needs WSS, a host and declared names."""
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
    if webrtc is None:
        return problems
    if wss is None:
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
    for i, name in enumerate(webrtc.page.names or ()):
        if name.lower() not in declared:
            problems.append(
                f"{w(('webrtc', 'page', 'names', i))}: {name} is neither in users "
                f"({w(('users',))}) nor in rooms; the page can only call declared names"
            )
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
    reaches exactly one of them, however the caller writes the name."""
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
    return problems


def _in_zone(host: str, zone: str) -> bool:
    return host == zone or host.endswith("." + zone)


# --- live checks -----------------------------------------------------------------------------


def live_cross_checks(loaded: LoadedSpec | Spec, states: Mapping[str, LiveState]) -> list[str]:
    """Disagreements only the live systems show; each says which layer to fix.

    Pass the ``LoadedSpec`` so messages carry ``file:line``; a bare ``Spec`` works too.

    ``states`` maps a layer name to what its provider read. Keys read from ``private``
    (a missing key means "not known" and its check is skipped):

    asterisk  ``live_transports``: list of {"name": str, "protocol": "udp"|"tcp"|"tls",
              "port": int, "owned": bool (defined by sipctl's own file)} as Asterisk reports
              them (``pjsip show transports``) or as its config defines them;
              ``rtp_range``: [start, end] Asterisk really uses (rtp.conf after includes);
              ``logger_files``: {absolute path: [levels]} of the file channels in logger.conf
              (relative names resolved against astlogdir); when absent, it is parsed from
              ``contents["logger.conf"]`` (and ``contents["asterisk.conf"]`` for astlogdir),
              the raw bytes the provider read, with ``logger_files_from_conf``.
    fail2ban  ``jail_logpath``: the logpath of the live jail, when it differs from the spec.
    firewall  ``rtp_range``: [start, end] the live rules open (before this plan's changes).
    """
    if not isinstance(loaded, LoadedSpec):
        loaded = LoadedSpec(spec=loaded, source="spec", base_dir=Path.cwd(), text="")
    spec, w = loaded.spec, loaded.where
    problems: list[str] = []
    ast = states.get("asterisk")
    if spec.asterisk is None or ast is None:
        return problems
    target = spec.asterisk.target
    transports = ast.private.get("live_transports")
    if isinstance(transports, list):
        problems += _live_transport_checks(loaded, transports)
    rtp = ast.private.get("rtp_range")
    if spec.firewall is not None and isinstance(rtp, list | tuple) and len(rtp) == 2:
        want = firewall_rtp_range(spec)
        if (int(rtp[0]), int(rtp[1])) != want:
            problems.append(
                f"{w(('asterisk', 'rtp'))}: Asterisk at {target} uses RTP {rtp[0]}-{rtp[1]} "
                f"(its live rtp.conf) but the firewall ({w(('firewall',))}) opens "
                f"{want[0]}-{want[1]}; fix rtp.conf on the PBX (another file overrides "
                "rtpstart/rtpend) or asterisk.rtp"
            )
    logger = ast.private.get("logger_files")
    if logger is None:
        logger = _logger_files_from_contents(ast.private.get("contents"))
    if spec.fail2ban is not None and spec.fail2ban.enabled and isinstance(logger, dict):
        f2b = states.get("fail2ban")
        jail = (f2b.private.get("jail_logpath") if f2b is not None else None) or (
            spec.fail2ban.logpath
        )
        levels = {str(k): [str(x).lower() for x in v] for k, v in logger.items()}
        watched = levels.get(str(jail))
        if watched is None:
            files = ", ".join(sorted(levels)) or "no file at all"
            problems.append(
                f"{w(('fail2ban', 'logpath'))}: the fail2ban jail watches {jail} but Asterisk "
                f"at {target} logs to {files} (logger.conf); set fail2ban.logpath to one of "
                "them, or add the file to logger.conf on the PBX"
            )
        elif "warning" not in watched and "*" not in watched:
            problems.append(
                f"{w(('fail2ban', 'logpath'))}: Asterisk at {target} writes {jail} without "
                "the WARNING level (logger.conf), where rejected guest calls are logged; "
                "add warning to that file's levels"
            )
    return problems


def _live_transport_checks(loaded: LoadedSpec, live: list[Any]) -> list[str]:
    spec, w = loaded.spec, loaded.where
    assert spec.asterisk is not None
    target = spec.asterisk.target
    problems: list[str] = []
    entries = [t for t in live if isinstance(t, dict)]
    shown = ", ".join(
        f"{t.get('name', '?')} {t.get('protocol', '?')}/{t.get('port', '?')}" for t in entries
    )
    for name, transport in spec.transports.enabled().items():
        same = [
            t
            for t in entries
            if t.get("protocol") == name and int(t.get("port", -1)) == transport.port
        ]
        if spec.asterisk.manage_transports:
            clash = [
                t
                for t in entries
                if not t.get("owned")
                and TRANSPORT_PROTOCOL.get(str(t.get("protocol")), "") == TRANSPORT_PROTOCOL[name]
                and int(t.get("port", -1)) == transport.port
            ]
            for t in clash:
                problems.append(
                    f"{w(('transports', name, 'port'))}: sipctl would define transports.{name} "
                    f"on port {transport.port}, but Asterisk at {target} already has transport "
                    f"{t.get('name')} there (not sipctl's); remove it on the PBX or set "
                    "asterisk.manage_transports: false"
                )
        elif not same:
            problems.append(
                f"{w(('transports', name, 'port'))}: transports.{name} says {name} on port "
                f"{transport.port}, but Asterisk at {target} has no such transport (live: "
                f"{shown or 'none'}); add it on the PBX, set asterisk.manage_transports: true "
                f"({w(('asterisk',))}), or change the spec"
            )
    return problems


DEFAULT_LOG_DIR = "/var/log/asterisk"


def logger_files_from_conf(text: str, log_dir: str = DEFAULT_LOG_DIR) -> dict[str, list[str]]:
    """The file channels of a ``logger.conf``: {absolute path: [levels, lower case]}.

    ``console`` and ``syslog.*`` are not files. A relative name lives in ``log_dir``
    (asterisk.conf's astlogdir). With ``appendhostname = yes`` Asterisk appends
    ``.<hostname>`` to every file name, which no static jail path can match: such files
    are listed with the marker ``<hostname>`` so the check reports them.
    """
    files: dict[str, list[str]] = {}
    section = ""
    append_hostname = False
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and "]" in line:
            section = line[1 : line.index("]")].strip().lower()
            continue
        key, sep, value = line.partition("=>") if "=>" in line else line.partition("=")
        if not sep:
            continue
        name, value = key.strip(), value.strip()
        if section == "general" and name.lower() == "appendhostname":
            append_hostname = value.lower() in ("yes", "true", "on", "1")
        if section != "logfiles" or name == "console" or name.startswith("syslog"):
            continue
        path = name if name.startswith("/") else f"{log_dir.rstrip('/')}/{name}"
        levels = [v.strip().lower() for v in value.split(",") if v.strip()]
        files[path] = [lv.split("(", 1)[0] for lv in levels]
    if append_hostname:
        return {f"{path}.<hostname>": levels for path, levels in files.items()}
    return files


def _log_dir_from_asterisk_conf(text: str) -> str:
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            section = line[1:].split("]", 1)[0].strip().lower()
            continue
        key, sep, value = line.partition("=>") if "=>" in line else line.partition("=")
        if sep and section == "directories" and key.strip() == "astlogdir":
            return value.strip()
    return DEFAULT_LOG_DIR


def _logger_files_from_contents(contents: object) -> dict[str, list[str]] | None:
    if not isinstance(contents, dict):
        return None
    raw = contents.get("logger.conf")
    if not isinstance(raw, bytes | str):
        return None
    conf = contents.get("asterisk.conf")
    log_dir = DEFAULT_LOG_DIR
    if isinstance(conf, bytes | str):
        log_dir = _log_dir_from_asterisk_conf(_decode(conf))
    return logger_files_from_conf(_decode(raw), log_dir)


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
