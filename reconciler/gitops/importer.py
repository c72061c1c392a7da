"""``sipctl import``: write the spec of a setup made by hand, so that applying it changes nothing.

DNS: the SIP NAPTRs at the domain, the three SRV rrsets and the A/AAAA of SRV targets inside
the zone are read through the DNS provider itself (the same reads ``plan`` makes) and turned
back into ``transports``, ``servers`` and ``dns``. Asterisk: the guest context of the classic
setup (``allowguest=yes`` + ``context=`` in sip.conf, or the ``anonymous`` endpoint's
``context=`` in pjsip.conf) is found in extensions.conf, and its exact extensions of the form
``exten => director,1,Dial(SIP/105)`` or ``Goto(ctx,105,1)`` become ``users``; the RTP range
comes from rtp.conf.

The imported spec never reuses the hand-made context's name: sipctl writes its guest
dialplan whole into ``extensions_sipctl.conf``, and a second ``[guest-call]`` there would merge
with the admin's in ``extensions.conf`` (two definitions of the same extensions, the winner
chosen by include order). It names a fresh context (``sipctl-guest``, or ``sipctl-guest-N``
when the admin has that one), points guests at it, and leaves the admin's context unused.

The parsing is pure (``spec_from_dns``, ``parse_asterisk``); the gaps say what the spec cannot
express, so the admin knows why a plan after import would not be empty, and the blockers what
keeps sipctl from taking the Asterisk layer over at all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

from sipctl.errors import SpecError
from sipctl.reconciler.asterisk_conf import include_target, line_contents, physical_lines
from sipctl.reconciler.dns_records import (
    SRV_PREFIX,
    absolute,
    in_zone,
    is_claim_owner,
    parse,
    registry_owner,
    shown_bytes,
)
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.asterisk import (
    BROWSERS_ENDPOINT,
    DIALPLAN_FILE,
    GUEST_ENDPOINT,
    HTTP_FILE,
    PARENTS,
    WRONG_NAME_EXTENSION,
)
from sipctl.reconciler.render.asterisk_rooms import CONFBRIDGE_FILE, CONFBRIDGE_PARENT
from sipctl.reconciler.resources import Address, Resource, Value
from sipctl.schemas.names import canonical_name, check_hostname, check_user_name
from sipctl.schemas.values import split_publish

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.spec import Ssh

TRANSPORT_DEFAULTS = {
    "udp": (5060, 10, 10),
    "tcp": (5060, 20, 10),
    "tls": (5061, 30, 10),
    "wss": (8089, 40, 10),
}
_NAPTR_SERVICE = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls", "SIPS+D2W": "wss"}


@dataclass
class Imported:
    """The spec found live (as plain data), and what could not be expressed in it."""

    data: dict[str, Any]
    gaps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What keeps an apply of the spec from working at all (``--adopt`` stops on these).
    blockers: list[str] = field(default_factory=list)
    # A host of several customer domains: each customer's own part (domain -> its
    # local_context and users); ``data`` is then the host's.
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)


# --- the --dns argument -----------------------------------------------------------------------


def dns_section(url: str, domain: str) -> dict[str, Any]:
    """``rfc2136://HOST[:PORT]/ZONE?key=NAME&secret_env=VAR``, ``zonefile:PATH`` or
    ``octodns:CONFIG`` (a YAML file holding octoDNS's provider config) -> dns."""
    if url.startswith("octodns:"):
        return {"provider": "octodns", "octodns": _octodns_config(url[len("octodns:") :])}
    if url.startswith("zonefile:"):
        path = url[len("zonefile:") :]
        if not path:
            raise SpecError("--dns zonefile:PATH needs the zone file's path")
        return {"provider": "zonefile", "file": path}
    if "@" in url.split("?", 1)[0]:  # never echoed: what stands before the '@' may be a secret
        raise SpecError(
            "--dns: an rfc2136:// URL carries no user or password (a TSIG key's secret is "
            "read from the environment or a file): write "
            "rfc2136://SERVER[:PORT]/ZONE?key=NAME&secret_env=VAR"
        )
    parts = urlsplit(url)
    if parts.scheme != "rfc2136" or not parts.netloc:
        raise SpecError(
            f"--dns {url!r}: give rfc2136://SERVER[:PORT]/ZONE?key=NAME&secret_env=VAR "
            "or zonefile:PATH or octodns:CONFIG"
        )
    section: dict[str, Any] = {"provider": "rfc2136"}
    zone = unquote(parts.path.strip("/"))
    if zone and absolute(zone) != absolute(domain):
        section["zone"] = zone.rstrip(".")
    section["server"] = parts.netloc
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"key", "secret_env", "secret_file", "algorithm"})
    if unknown:
        raise SpecError(
            f"--dns: unknown parameter {unknown[0]!r} (key, secret_env, secret_file, algorithm)"
        )
    if "key" in query:
        tsig: dict[str, Any] = {"name": query["key"]}
        if "algorithm" in query:
            tsig["algorithm"] = query["algorithm"]
        if "secret_file" in query:
            tsig["secret_file"] = query["secret_file"]
        else:
            tsig["secret_env"] = query.get("secret_env", "SIPCTL_TSIG_SECRET")
        section["tsig"] = tsig
    return section


def _octodns_config(path: str) -> dict[str, Any]:
    """octoDNS's provider config for ``--dns octodns:CONFIG``: class plus the plugin's
    arguments, secrets as env/NAME (the imported spec carries it as it is)."""
    if not path:
        raise SpecError("--dns octodns:CONFIG needs a YAML file with the plugin's class")
    from sipctl.schemas.admin_files import refuse_deep_nesting

    try:
        text = Path(path).read_text(encoding="utf-8")
        refuse_deep_nesting(text, f"--dns octodns:{path}")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise SpecError(f"--dns octodns:{path}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError:
        raise SpecError(f"--dns octodns:{path}: not valid YAML") from None
    if not isinstance(data, dict) or "class" not in data:
        raise SpecError(
            f"--dns octodns:{path}: give octoDNS's provider config, a mapping with 'class' "
            "(like class: octodns_route53.Route53Provider) and the plugin's arguments"
        )
    return data


# --- DNS ----------------------------------------------------------------------------------------


def spec_from_dns(
    domain: str, zone: str, dns: dict[str, Any], live: Mapping[Address, Value]
) -> Imported:
    """The spec data that renders what is live (as far as the spec can say it)."""
    result = Imported({"version": 1, "domain": domain})
    values = {(a.kind, a.name): v for a, v in live.items()}
    ttls: Counter[int] = Counter()

    srv: dict[str, list[tuple[int, int, int, str]]] = {}
    for transport, prefix in SRV_PREFIX.items():
        value = values.get(("SRV", absolute(f"{prefix}.{domain}")))
        if value is None:
            continue
        ttls[int(value["ttl"])] += 1
        rows = []
        for text in value["records"]:
            rdata = _srv(text)
            rows.append((rdata.priority, rdata.weight, rdata.port, rdata.target.to_text()))
        srv[transport] = rows
    if not srv:
        raise SpecError(
            f"no SIP SRV records found for {domain} (_sip._udp, _sip._tcp, _sips._tcp): "
            "there is nothing to import; write the spec by hand (see: sipctl docs tutorial)"
        )

    naptr: dict[str, tuple[int, int]] = {}
    naptr_value = values.get(("NAPTR", absolute(domain)))
    if naptr_value is not None:
        ttls[int(naptr_value["ttl"])] += 1
        for text in naptr_value["records"]:
            record = _naptr(text)
            service = shown_bytes(record.service.upper())  # any byte; \DDD when odd
            found = _NAPTR_SERVICE.get(service)
            if found is None:
                result.gaps.append(f"NAPTR service {service} has no sipctl transport")
                continue
            transport = found
            naptr[transport] = (record.order, record.preference)
            expected = absolute(f"{SRV_PREFIX[transport]}.{domain}")
            if record.replacement.to_text() != expected:
                result.gaps.append(
                    f"NAPTR {service} points to {record.replacement}, not {expected}"
                )

    transports: dict[str, Any] = {}
    for transport, rows in srv.items():
        ports = sorted({row[2] for row in rows})
        if len(ports) > 1:
            result.gaps.append(f"{transport}: the SRV targets use several ports {ports}")
        _port, order_default, pref_default = TRANSPORT_DEFAULTS[transport]
        order, pref = naptr.get(transport, (order_default, pref_default))
        transports[transport] = {"port": ports[0], "order": order, "preference": pref}
        if naptr_value is not None and transport not in naptr:
            result.gaps.append(f"{transport} has an SRV but no NAPTR")
    result.data["transports"] = transports

    hosts: dict[str, tuple[int, int]] = {}
    for transport, rows in srv.items():
        for priority, weight, _port, target in rows:
            seen = hosts.setdefault(target, (priority, weight))
            if seen != (priority, weight):
                result.gaps.append(
                    f"{target} has priority/weight {seen} in one SRV and {(priority, weight)} "
                    f"in {transport}'s"
                )
    sets = {t: {row[3] for row in rows} for t, rows in srv.items()}
    if len({frozenset(s) for s in sets.values()}) > 1:
        result.gaps.append("the transports' SRV records list different servers")

    servers = []
    for host, (priority, weight) in sorted(hosts.items(), key=lambda i: (i[1], i[0])):
        try:
            check_hostname(host)
        except ValueError:  # live data is data: a name of any bytes is named, not written
            result.gaps.append(f"the SRV target {host} is not a host name a spec can hold")
            continue
        server: dict[str, Any] = {"host": host.rstrip("."), "priority": priority}
        if weight:
            server["weight"] = weight
        if in_zone(host, zone):
            for kind, key in (("A", "ipv4"), ("AAAA", "ipv6")):
                value = values.get((kind, host))
                if value is not None:
                    ttls[int(value["ttl"])] += 1
                    server[key] = sorted(value["records"])
        servers.append(server)
    result.data["servers"] = servers

    section = dict(dns)
    if ttls:
        ttl, _ = ttls.most_common(1)[0]
        section["ttl"] = ttl
        if len(ttls) > 1:
            result.gaps.append(f"the records use several TTLs {sorted(ttls)}; the spec has one")
    if naptr_value is None:
        section["naptr"] = False
    result.data["users"] = {}
    result.data["dns"] = section
    return result


# --- Asterisk ---------------------------------------------------------------------------------

_SECTION = re.compile(r"^\s*\[([^\]]+)\]")
_KEYVALUE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=>?\s*(.*?)\s*$")
_EXTEN = re.compile(r"^\s*exten\s*=>?\s*([^,\s]+)\s*,\s*([^,\s]+)\s*,\s*(.*?)\s*$", re.IGNORECASE)
_EXTEN_KEY = re.compile(r"^\s*exten\s*=", re.IGNORECASE)  # not extenpatternmatchnew=
_DIAL = re.compile(r"Dial\(\s*(PJSIP|SIP)/(\d+)", re.IGNORECASE)
_GOTO = re.compile(r"Goto\(\s*(?:([A-Za-z0-9_.-]+)\s*,\s*)?(\d+)\s*,\s*1\s*\)", re.IGNORECASE)
# A ring group as sipctl writes it: Dial(A&B,<timeout>), then an optional Dial(C,<timeout>).
_DIAL_ARGS = re.compile(r"\bDial\(([^)]*)\)", re.IGNORECASE)
_DIAL_TARGET = re.compile(r"(?:PJSIP|SIP|Local)/(\d+)(?:@[A-Za-z0-9_.-]+)?", re.IGNORECASE)
_PLAYBACK = re.compile(r"Playback\(\s*([A-Za-z0-9_/-]+)", re.IGNORECASE)
_SPECIAL = {"h", "i", "t", "s", "o", "a", "e", "T"}
GUEST_CONTEXT = "sipctl-guest"
_DIAL_TIMEOUT = re.compile(r"\bDial\([^,)]*,\s*(\d+)\s*\)", re.IGNORECASE)
DEFAULT_DIAL_TIMEOUT = 30
VIDEO_CODECS = {"vp8", "vp9", "h264", "h263", "h263p"}
ROOM_PROFILE_PREFIX = "sipctl-room-"
PJSIP_OWN = "pjsip_sipctl.conf"
# res_rtp_asterisk's compiled-in range, used when rtp.conf sets none: writing it into the spec
# keeps the range the PBX uses (the spec's own default, 10000-20000, would change it).
ASTERISK_RTP_DEFAULT = {"start": 5000, "end": 31000}


def _srv(text: str) -> SRV:
    rdata = parse("SRV", text)
    assert isinstance(rdata, SRV)
    return rdata


def _naptr(text: str) -> NAPTR:
    rdata = parse("NAPTR", text)
    assert isinstance(rdata, NAPTR)
    return rdata


def _strip(line: str) -> str:
    return line.split(";", 1)[0].rstrip()


def ini_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """An Asterisk config file as section -> [(key, value)]; comments dropped."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = _strip(raw)
        header = _SECTION.match(line)
        if header:
            current = sections.setdefault(header.group(1).strip(), [])
            continue
        if current is None:
            continue
        if _EXTEN_KEY.match(line):
            current.append(("exten", line.split("=", 1)[1].lstrip(">").strip()))
            continue
        found = _KEYVALUE.match(line)
        if found:
            current.append((found.group(1).lower(), found.group(2)))
    return sections


def _get(section: list[tuple[str, str]], key: str) -> str | None:
    values = [v for k, v in section if k == key]
    return values[-1] if values else None


def _ring_group(body: str) -> dict[str, Any] | None:
    """users.NAME's long form when the extension rings several phones or gives up after a
    timeout (``Dial(PJSIP/106&PJSIP/107,20)``, then maybe ``Dial(PJSIP/101,20)``)."""
    dials = [args.partition(",") for args in _DIAL_ARGS.findall(body)]
    if not dials:
        return None
    targets, _, options = dials[0]
    timeout = options.split(",")[0].strip()
    ring = _DIAL_TARGET.findall(targets)
    if not ring or not timeout.isdigit() or (len(ring) == 1 and len(dials) == 1):
        return None  # the short form (or a Dial sipctl would not write)
    group: dict[str, Any] = {"ring": ring, "timeout": int(timeout)}
    if len(dials) > 1:
        fallback = _DIAL_TARGET.findall(dials[1][0])
        if len(fallback) == 1:
            group["fallback"] = fallback[0]
    return group


def _extension_bodies(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(extension, application) for every priority, ``same =>`` lines included, in order."""
    bodies: list[tuple[str, str]] = []
    current: str | None = None
    for key, value in lines:
        if key == "exten":
            match = _EXTEN.match(f"exten => {value}")
            if match is None:
                current = None
                continue
            current = match.group(1)
            bodies.append((current, match.group(3)))
        elif key == "same" and current is not None:
            bodies.append((current, value.split(",", 1)[-1]))
    return bodies


def fresh_context(taken: set[str]) -> str:
    """A guest context name that is none of ``taken`` (compared without case, as a reader
    of extensions.conf would)."""
    lowered = {name.lower() for name in taken}
    candidate, number = GUEST_CONTEXT, 1
    while candidate in lowered:
        number += 1
        candidate = f"{GUEST_CONTEXT}-{number}"
    return candidate


def _with_ours(files: Mapping[str, str], parent: str, config_dir: str) -> str:
    """``parent``'s text with sipctl's file appended when ``parent`` includes it (the include
    line is appended at the end, so Asterisk reads it last too)."""
    text = files.get(parent, "")
    child = next(c for c, p in PARENTS.items() if p == parent)
    names = {child, f"{config_dir.rstrip('/')}/{child}"}
    read = line_contents(physical_lines(text))
    if child in files and any(include_target(line) in names for line in read):
        return f"{text}\n{files[child]}"
    return text


# render/asterisk_hosting.py's context of customer domains.
HOSTING_DOMAINS_CONTEXT = "sipctl-domains"


def parse_asterisk(files: Mapping[str, str], target: str, config_dir: str) -> Imported:
    """The ``asterisk`` and ``users`` of a classic hand-made guest setup.

    sipctl's own files are read as Asterisk reads them (appended where they are included), so
    that an import after an adoption finds sipctl's guest context and names it again.
    """
    result = Imported({})
    sip = ini_sections(_with_ours(files, "sip.conf", config_dir))
    pjsip = ini_sections(_with_ours(files, "pjsip.conf", config_dir))
    admins_extensions = ini_sections(files.get("extensions.conf", ""))
    extensions = ini_sections(_with_ours(files, "extensions.conf", config_dir))
    channel, context = None, None
    general = sip.get("general", [])
    if (_get(general, "allowguest") or "").lower() in ("yes", "true", "1", "on"):
        channel, context = "sip", _get(general, "context")
    anonymous = pjsip.get("anonymous")
    if anonymous is not None and (_get(anonymous, "type") or "") == "endpoint":
        channel, context = "pjsip", _get(anonymous, "context")
    own_guest = pjsip.get(GUEST_ENDPOINT)  # sipctl's own guest endpoint
    if anonymous is None and own_guest is not None and _get(own_guest, "type") == "endpoint":
        channel, context = "pjsip", _get(own_guest, "context")
    # found by the declared names in the request URI: unknown_callers: challenge
    challenged = own_guest if _get(own_guest or [], "identify_by") == "request_uri" else None
    if channel is None or not context:
        raise SpecError(
            f"{target}:{config_dir}: no guest access found (neither allowguest=yes with "
            "context= in sip.conf [general], nor an [anonymous] endpoint in pjsip.conf)"
        )
    lines = extensions.get(context)
    if lines is None:
        raise SpecError(f"{target}:{config_dir}/extensions.conf has no [{context}] context")
    names = _guest_names(lines)
    result.gaps.extend([*names.unheld, *names.lost])
    users, route, local_context, sound = names.users, names.route, names.local_context, names.sound
    bodies = names.bodies
    if names.chan_sip:
        channel = "sip"
    hosted = extensions.get(HOSTING_DOMAINS_CONTEXT)
    if hosted is not None:
        # A host of several customer domains (hosting): a host file and one file per customer.
        result.customers = _customers(hosted, extensions, target, config_dir, result.gaps)
    if not users and hosted is None:
        result.notes.append(f"[{context}] routes no name to an extension (Dial or Goto)")
    adopted = context not in admins_extensions  # then it is defined in sipctl's own file
    if not adopted:
        result.gaps.extend(_dropped(bodies, users, names.unheld))
    ours = context if adopted else fresh_context(set(admins_extensions))
    section: dict[str, Any] = {
        "target": target,
        "config_dir": config_dir,
        "channel": channel,
        "guest_context": ours,
    }
    if anonymous is None and challenged is not None and channel == "pjsip":
        section["unknown_callers"] = "challenge"
    if route == "goto":
        section["route"] = "goto"
        if local_context:
            section["local_context"] = local_context
    if sound:
        section["reject_sound"] = sound
    short = {name for name, target in users.items() if isinstance(target, str)}
    timeouts = {
        int(m.group(1))
        for name, body in bodies
        if name in short and (m := _DIAL_TIMEOUT.search(body)) is not None
    }
    if len(timeouts) == 1 and (timeout := timeouts.pop()) != DEFAULT_DIAL_TIMEOUT:
        section["dial_timeout"] = timeout
    transports = _sipctls_own(files, config_dir, pjsip, section, result)
    rtp = ini_sections(files.get("rtp.conf", "")).get("general", [])
    start, end = _get(rtp, "rtpstart"), _get(rtp, "rtpend")
    if start and end and start.isdigit() and end.isdigit():
        section["rtp"] = {"start": int(start), "end": int(end)}
    else:
        section["rtp"] = dict(ASTERISK_RTP_DEFAULT)
    result.data = (
        {"asterisk": section} if hosted is not None else {"users": users, "asterisk": section}
    )
    if transports:
        result.data["transports"] = transports
    rooms = _rooms(files, config_dir)
    if hosted is not None:
        _customer_rooms(rooms, result)
    elif rooms:
        result.data["rooms"] = rooms
    admins_anonymous = ini_sections(files.get("pjsip.conf", "")).get("anonymous") or []
    if channel == "pjsip" and _get(admins_anonymous, "type") == "endpoint":
        result.blockers.append(foreign_anonymous(target, config_dir, context))
    if adopted:
        result.notes.append(f"guests already land in sipctl's own [{ours}] ({DIALPLAN_FILE})")
    else:
        result.notes.append(
            f"sipctl writes its own guest context [{ours}] ({DIALPLAN_FILE}) and points guests "
            f"at it{_pointer(channel)}. Your hand-written [{context}] in extensions.conf is "
            "left as it is but no longer used: delete it after the first apply"
        )
    return result


@dataclass
class _Names:
    """What a guest context of sipctl's form routes: its names and how."""

    users: dict[str, Any]
    route: str | None  # "dial", "goto", or None when no name is routed
    local_context: str | None  # the context a Goto or a Local channel names
    sound: str | None  # what the reject path plays
    bodies: list[tuple[str, str]]  # (extension, application) of every step
    chan_sip: bool  # a name is dialled as SIP/<extension> (chan_sip)
    # routed extensions a spec cannot hold as a name, each with why: they become gaps
    unheld: list[str] = field(default_factory=list)
    # what of the context the spec does not hold though it keeps the name (a Voicemail
    # after the Dial), and the exten lines import cannot read: gaps too
    lost: list[str] = field(default_factory=list)


_LOCAL_CONTEXT = re.compile(r"Local/\d+@([A-Za-z0-9_.-]+)", re.IGNORECASE)


def _guest_names(lines: list[tuple[str, str]]) -> _Names:
    """The names a guest context routes to extensions (``Dial`` or ``Goto``, ring groups)."""
    users: dict[str, Any] = {}
    route: str | None = None
    local_context: str | None = None
    sound: str | None = None
    chan_sip = False
    unheld: list[str] = []
    held_not: set[str] = set()
    rings_one: list[str] = []  # names that ring several phones and are held as ringing one
    bodies = _extension_bodies(lines)
    whole: dict[str, str] = {}  # every step of an extension: a ring group spans two Dials
    for name, body in bodies:
        whole[name] = f"{whole[name]}\n{body}" if name in whole else body
    # the names that route somewhere: of two spellings, the lower-case one (sipctl's) is held
    routed = {n for n, b in whole.items() if _DIAL.search(b) or _GOTO.search(b) or _ring_group(b)}
    for name, body in bodies:
        if name.startswith("_") or name == WRONG_NAME_EXTENSION:
            played = _PLAYBACK.search(body)
            if played:
                sound = played.group(1)
            continue
        if name in _SPECIAL or name in users or name in held_not:
            continue
        dial, goto = _DIAL.search(body), _GOTO.search(body)
        group = _ring_group(whole[name])
        why = _why_unheld(name, users, routed) if group is not None or dial or goto else None
        if why is not None:  # live data is data: a name the spec refuses is named, not written
            held_not.add(name)
            unheld.append(f"the guest extension {name!r} ({body}): {why}")
            continue
        if group is not None:
            users[name] = group
            route = route or ("goto" if "Local/" in body else "dial")
            local = _LOCAL_CONTEXT.search(whole[name])
            if local is not None:
                local_context = local_context or local.group(1)
        elif dial:
            users[name] = dial.group(2)
            route = route or "dial"
            chan_sip = chan_sip or dial.group(1).upper() == "SIP"
            rings_one.extend(_rings_one_of_several(name, body, dial.group(2)))
        elif goto:
            users[name] = goto.group(2)
            route = route or "goto"
            local_context = goto.group(1) or local_context
    lost = [*_unread_lines(lines), *rings_one, *_lost_steps(bodies, users)]
    return _Names(users, route, local_context, sound, bodies, chan_sip, unheld, lost)


def _rings_one_of_several(name: str, body: str, held: str) -> list[str]:
    """The gap of a name whose Dial rings several phones with no timeout
    (``Dial(PJSIP/105&PJSIP/106)``): the spec's short form holds the first, and its long
    form (a ring group) needs a timeout, so after an apply the name rings one phone."""
    args = _DIAL_ARGS.search(body)
    phones = _DIAL_TARGET.findall(args.group(1).partition(",")[0]) if args else []
    if len(phones) < 2:
        return []
    listed = ", ".join(phones)
    return [
        f"the guest extension {name!r} ({body.strip()[:120]}) rings {listed} at once with no "
        f"timeout; the spec holds {name} -> {held}, so after an apply it rings {held} only: to "
        f"ring them all, write users.{name}: {{ring: [{listed}], timeout: SECONDS}}"
    ]


# The steps the spec holds of a name it keeps: its Dial or Goto, and what sipctl's own
# dialplan does around them (keep the caller's address in its SIPCTL_ variables, log, jump
# to its own unavailable path). A step that does nothing to the call (NoOp, Log, Verbose)
# is no loss; after the Dial or Goto, the name's own end when nobody answered (a sound,
# busy, hang up) is one sipctl's unavailable path replaces. Any other Set is none of these:
# ``Set(CALLERID(name)=Sales)`` before the Dial changes what the phone shows, and the spec
# cannot hold it.
_HELD_STEP = re.compile(r"(Dial|Goto)\(", re.IGNORECASE)
_OWN_STEP = re.compile(r"(Set\(SIPCTL_[A-Z_]*=|(NoOp|Log|Verbose)\()", re.IGNORECASE)
_ENDING_STEP = re.compile(
    r"(Answer|Playback|Hangup|Wait|Congestion|Busy|Progress|Ringing)\(", re.IGNORECASE
)


def _lost_steps(bodies: list[tuple[str, str]], users: Mapping[str, Any]) -> list[str]:
    """The steps of a kept name that are none the spec holds (``same => n,Voicemail(105)``
    after the Dial): the spec has the dial target only, so an apply removes them."""
    steps: dict[str, list[str]] = {}
    for name, body in bodies:
        if name in users:
            steps.setdefault(name, []).append(body.strip())
    lost = []
    for name, chain in steps.items():
        held = [i for i, step in enumerate(chain) if _HELD_STEP.match(step)]
        ending = held[0] if held else len(chain)  # the name's own end starts after it
        extra = [
            i
            for i, step in enumerate(chain)
            if i not in held
            and not _OWN_STEP.match(step)
            and not (i > ending and _ENDING_STEP.match(step))
            and "sipctl#" not in step
        ]
        if not extra:
            continue
        target = users[name] if isinstance(users[name], str) else "&".join(users[name]["ring"])
        later = "later" if held and extra[0] > held[0] else "other"
        shown = "; ".join(chain[i] for i in extra)[:120]
        lost.append(
            f"the guest extension {name!r} keeps {name} -> {target}; its {later} steps "
            f"{shown} are not held by the spec and an apply removes them"
        )
    return lost


def _unread_lines(lines: list[tuple[str, str]]) -> list[str]:
    """The ``exten`` lines of the guest context whose extension, priority and application
    import cannot tell apart: named, never passed over in silence."""
    return [
        f"the guest context's line 'exten => {value[:120]}' is not read by import (no "
        "extension, priority and application in it): guests no longer reach it after an apply"
        for key, value in lines
        if key == "exten" and _EXTEN.match(f"exten => {value}") is None
    ]


# What a reject path does (answers, plays, logs, hangs up): an extension of only these
# applications reaches nothing, and sipctl's own reject path replaces it.
_REJECT_STEPS = re.compile(
    r"(Answer|Playback|Hangup|Log|Verbose|NoOp|Set|Wait|Congestion|Busy|Progress|Ringing)\(",
    re.IGNORECASE,
)


def _dropped(
    bodies: list[tuple[str, str]], users: Mapping[str, Any], unheld: list[str]
) -> list[str]:
    """The hand-made context's extensions that reach something, yet are no name of the
    spec (a pattern like ``_X.`` dialling anything, a name routed to a trunk or voicemail):
    sipctl's guest context will not have them, so import names each one."""
    steps: dict[str, list[str]] = {}
    for name, body in bodies:
        steps.setdefault(name, []).append(body)
    named = " ".join(unheld)
    return [
        f"the guest extension {name!r} ({'; '.join(body)[:120]}) is no name the spec can "
        "route, so guests no longer reach it after an apply"
        for name, body in steps.items()
        if name not in users
        and name not in _SPECIAL
        and name != WRONG_NAME_EXTENSION
        and repr(name) not in named
        and not all(_REJECT_STEPS.match(step.strip()) for step in body)
    ]


def _why_unheld(name: str, users: Mapping[str, Any], routed: set[str]) -> str | None:
    """Why a spec cannot hold the live extension ``name`` as a user (None: it can), by the
    spec's own rule for names: a name it refuses, or one that differs only in case from a
    name held (callers reach names in any case): the lower-case spelling, sipctl's own, when
    ``routed`` has it, else the first."""
    try:
        check_user_name(name)
    except ValueError as exc:
        return f"{exc}; guests no longer reach it after an apply"
    folded = canonical_name(name)
    for other in [folded] if name != folded and folded in routed else users:
        if canonical_name(other) == folded:
            return (
                f"it differs only in case from {other!r}, which the spec holds (callers reach "
                "a name in any case); guests reach only that one after an apply"
            )
    return None


_DOMAIN_GOTO = re.compile(r"Goto\(\s*([^,\s()]+)\s*,")


def _customers(
    hosted: list[tuple[str, str]],
    extensions: Mapping[str, list[tuple[str, str]]],
    target: str,
    config_dir: str,
    gaps: list[str],
) -> dict[str, dict[str, Any]]:
    """Each customer of a host's dialplan: a domain listed in both spellings in the domains
    context (render/asterisk_hosting.py), its names from the guest context it goes to."""
    steps = dict(_extension_bodies(hosted))
    found: dict[str, dict[str, Any]] = {}
    for domain in sorted(n for n in steps if not n.endswith(".") and f"{n}." in steps):
        try:
            check_hostname(domain)
        except ValueError as exc:  # live data is data: named, not written
            gaps.append(
                f"the domains context routes {domain!r}, which no customer file can "
                f"hold as its domain ({exc}): it is not imported"
            )
            continue
        goto = _DOMAIN_GOTO.search(steps[domain])
        lines = extensions.get(goto.group(1)) if goto is not None else None
        if lines is None:
            raise SpecError(
                f"{target}:{config_dir}/{DIALPLAN_FILE}: the customer {domain} goes to no "
                "guest context of the dialplan; apply its host's file again before importing"
            )
        names = _guest_names(lines)
        gaps.extend(f"{domain}: {gap}" for gap in [*names.unheld, *names.lost])
        customer: dict[str, Any] = {"users": names.users}
        if names.local_context is not None:
            customer["local_context"] = names.local_context
        found[domain] = customer
    return found


def _customer_rooms(rooms: Mapping[str, Any], result: Imported) -> None:
    """A host's rooms are its customers': ``<room>@<domain>`` (asterisk_rooms.RoomPlace)."""
    for conference, room in rooms.items():
        name, _, domain = conference.partition("@")
        if domain in result.customers:
            result.customers[domain].setdefault("rooms", {})[name] = room
        else:
            result.gaps.append(
                f"the room {conference} names no customer of this host (a long name is a "
                "digest on the PBX): add it to its customer's file"
            )


def _rooms(files: Mapping[str, str], config_dir: str) -> dict[str, Any]:
    """The rooms of sipctl's confbridge_sipctl.conf, when confbridge.conf includes it (the
    dialplan's rooms are the same names; their size is here)."""
    if CONFBRIDGE_FILE not in files:
        return {}
    rooms: dict[str, Any] = {}
    parent = _with_ours(files, CONFBRIDGE_PARENT, config_dir)
    for name, lines in ini_sections(parent).items():
        if not name.startswith(ROOM_PROFILE_PREFIX) or _get(lines, "type") != "bridge":
            continue
        room: dict[str, Any] = {}
        members = _get(lines, "max_members") or ""
        if members.isdigit():
            room["max_members"] = int(members)
        rooms[name.removeprefix(ROOM_PROFILE_PREFIX)] = room
    return rooms


def _sipctls_own(
    files: Mapping[str, str],
    config_dir: str,
    pjsip: Mapping[str, list[tuple[str, str]]],
    section: dict[str, Any],
    result: Imported,
) -> dict[str, Any]:
    """What sipctl's own files (and its lines in http.conf) say beyond the guest context:
    video, the certificate, WebRTC over WSS, and whether sipctl defines the SIP transports.
    Adds to ``section`` (asterisk); returns the transports only Asterisk shows (wss)."""
    guest = pjsip.get("anonymous") or pjsip.get(GUEST_ENDPOINT) or []
    codecs = {c.strip().lower() for c in (_get(guest, "allow") or "").split(",")}
    if codecs & VIDEO_CODECS:
        section["video"] = True
    transports = {
        name: lines for name, lines in pjsip.items() if _get(lines, "type") == "transport"
    }
    ours = ini_sections(files.get(PJSIP_OWN, ""))
    if any(
        name.startswith("sipctl-") and name != "sipctl-wss" and _get(lines, "type") == "transport"
        for name, lines in ours.items()
    ):
        section["manage_transports"] = True
    http = ini_sections(files.get(HTTP_FILE, "")).get("general", [])
    wss = any((_get(lines, "protocol") or "").lower() == "wss" for lines in transports.values())
    # sipctl offers guests SRTP with transports.tls: then, or with WSS, the spec has a
    # certificate (a TLS transport's or the HTTPS server's); an unused one is not imported
    srtp = bool(_get(guest, "media_encryption"))
    tls = _tls_files(transports, http) if srtp or wss else {}
    if tls:
        section["tls"] = tls
    elif srtp:
        result.gaps.append(
            "guests are offered SRTP (transports.tls), but no TLS transport or HTTPS server "
            "names a certificate: add asterisk.tls (cert_file, key_file)"
        )
    found: dict[str, Any] = {}
    bind = _get(http, "tlsbindaddr") or ""
    enabled = (_get(http, "tlsenable") or "").lower() in ("yes", "true", "1", "on")
    if wss and enabled and bind.rpartition(":")[2].isdigit():
        found["wss"] = {"port": int(bind.rpartition(":")[2])}
        browsers = next(
            (
                lines
                for name, lines in pjsip.items()
                # the older sipctl's name: anonymous@webrtc.<domain>
                if name == BROWSERS_ENDPOINT or name.startswith("anonymous@")
            ),
            [],
        )
        if "opus" not in (_get(browsers, "allow") or "opus").lower():
            found["wss"]["opus"] = False
    elif wss:
        result.gaps.append("a WSS transport without Asterisk's HTTPS server (http.conf)")
    return found


def _tls_files(
    transports: Mapping[str, list[tuple[str, str]]], http: list[tuple[str, str]]
) -> dict[str, str]:
    """asterisk.tls: the certificate and key of a TLS transport, else of the HTTPS server."""
    for lines in transports.values():
        cert, key = _get(lines, "cert_file"), _get(lines, "priv_key_file")
        if (_get(lines, "protocol") or "").lower() == "tls" and cert and key:
            tls = {"cert_file": cert, "key_file": key}
            ca_list = _get(lines, "ca_list_file")
            if ca_list:
                tls["ca_list_file"] = ca_list
            return tls
    cert, key = _get(http, "tlscertfile"), _get(http, "tlsprivatekey")
    return {"cert_file": cert, "key_file": key} if cert and key else {}


def _pointer(channel: str) -> str:
    if channel == "sip":
        # Asterisk 22 has no chan_sip, so this is read from the source, not measured:
        # chan_sip's reload_config walks ast_variable_browse(cfg, "general") in file order
        # and copies every context= over the one before (ast_copy_string into
        # sip_cfg.default_context; the same in 1.4 and in the chan_sip kept for 21+), so the
        # last context= wins; guests (allowguest) get that default context. main/config.c
        # turns "[general](+)" into category_get(cfg, "general") and appends the lines
        # that follow to it, and our #include is the last line of sip.conf, so
        # sip_sipctl.conf's context= comes after the admin's.
        return " (sip_sipctl.conf extends sip.conf's [general] with a later context=, which wins)"
    return " (its own [anonymous] endpoint in pjsip_sipctl.conf)"


def foreign_anonymous(target: str, config_dir: str, context: str) -> str:
    """Why a PJSIP setup of the classic form cannot be adopted as it is, and what to do."""
    path = f"{config_dir.rstrip('/')}/pjsip.conf"
    return (
        f"{target}:{path} section [anonymous] (type=endpoint, context={context}) is the "
        "hand-made guest endpoint. sipctl defines its own [anonymous] endpoint in "
        "pjsip_sipctl.conf and Asterisk cannot have two, so sipctl will not apply the "
        "asterisk section while that one is there. To hand guests over to sipctl: delete "
        f"the [anonymous] section from {path} (leave [{context}] in extensions.conf), then "
        "at once run 'sipctl apply' with the spec this import wrote; guests get no answer "
        "in between. To adopt the DNS only, import without --asterisk"
    )


# --- output -------------------------------------------------------------------------------------


def spec_yaml(data: dict[str, Any], header: list[str]) -> str:
    """The spec as YAML, keys in the reference's order (docs/spec.md), a comment header first."""
    order = [
        "version",
        "domain",
        "hosting",
        "host",
        "local_context",
        "transports",
        "servers",
        "users",
        "rooms",
        "dns",
        "asterisk",
        "webrtc",
        "cards",
    ]
    ordered = {k: data[k] for k in order if k in data}
    body = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "".join(f"# {_comment(line)}\n" if line else "#\n" for line in header) + body


def _comment(line: str) -> str:
    """One comment line, whatever live data it quotes: a line break or another character
    that is not printable (YAML and editors may read U+2028 or U+0085 as a line end) is
    written escaped, so nothing read from a host can step out of the comment."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in line)


# --- reading what is live -------------------------------------------------------------------------


def read_dns(domain: str, url: str, ctx: RunContext, base_dir: Path) -> Imported:
    """Read the live SIP records through the DNS provider, as ``plan`` would."""
    from sipctl.providers.base import load_provider
    from sipctl.schemas.loader import load_spec_text

    dns = dns_section(url, domain)
    probe = yaml.safe_dump({"version": 1, "domain": domain, "dns": dns}, sort_keys=False)
    loaded = load_spec_text(probe, source=f"--dns {url}", base_dir=base_dir)
    provider = load_provider(dns["provider"])(loaded, ctx)
    live = provider.read([])
    hosts = sorted(
        {
            _srv(text).target.to_text()
            for address, value in live.resources.items()
            if address.kind == "SRV"
            for text in value["records"]
        }
    )
    inside = [h for h in hosts if in_zone(h, loaded.spec.zone)]
    if inside:
        wanted = [Resource(Address("dns", "A", h), None) for h in inside]
        live = provider.read(wanted)
    return spec_from_dns(domain, loaded.spec.zone, dns, live.resources)


ASTERISK_FILES = (
    "sip.conf",
    "pjsip.conf",
    "extensions.conf",
    "rtp.conf",
    HTTP_FILE,
    CONFBRIDGE_PARENT,
    *PARENTS,
)


def read_asterisk(target: str, config_dir: str, ssh: Ssh | None, ctx: RunContext) -> Imported:
    """Read the guest setup from the PBX's config files (local, dir: or ssh)."""
    transport = ctx.transports.get(target, ssh)
    paths = {name: f"{config_dir.rstrip('/')}/{name}" for name in ASTERISK_FILES}
    found = transport.read_files(list(paths.values()))
    files = {name: found[path].text() for name, path in paths.items() if found[path].exists}
    if "extensions.conf" not in files:
        raise SpecError(f"{target}: {paths['extensions.conf']} does not exist (check --config-dir)")
    return parse_asterisk(files, target, config_dir)


_PAGE_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_PAGE_NAME = re.compile(r'data-sipctl-call="([^"]+)"')
_PAGE_SERVER = re.compile(r'data-sipctl-server="wss://([^":/]+|\[[^\]]+\]):\d+/ws"')


def read_webrtc(
    target: str, config_dir: str, domain: str, ssh: Ssh | None, ctx: RunContext
) -> Imported:
    """The ``webrtc`` section of the page sipctl published: where (sipctl's record of it on
    the PBX), and its title, names and host (the published index.html). Empty data when
    sipctl published none."""
    from sipctl.providers.webrtc_page import host_record_path, parse_record

    result = Imported({})
    path = host_record_path(config_dir, domain)
    raw = ctx.transports.get(target, ssh).read_files([path])[path].content
    index = next((name for name in parse_record(raw) if name.endswith("/index.html")), None)
    if index is None:
        return result
    place = index.removesuffix("/index.html")
    found = _read_page(index, ssh, ctx, result)
    if found is None:
        return result
    page, server, cards = found
    section: dict[str, Any] = {"page": page, "publish": place}
    if server is not None:
        section["host"] = server
    result.data = {"webrtc": section}
    if cards:
        result.data["cards"] = cards
    result.notes.append(f"the click-to-call page is the one sipctl published at {place}")
    return result


def read_host_webrtc(
    target: str, config_dir: str, domain: str, pbx: Imported, ssh: Ssh | None, ctx: RunContext
) -> None:
    """A host's web root and each customer's page, as the host published them (its record
    on the PBX lists ``<root>/<customer domain>/index.html``): the host's ``webrtc`` (host,
    publish) into ``pbx.data``, each customer's page and cards into ``pbx.customers``."""
    from sipctl.providers.webrtc_page import host_record_path, parse_record

    path = host_record_path(config_dir, domain)
    raw = ctx.transports.get(target, ssh).read_files([path])[path].content
    indexes = [name for name in parse_record(raw) if name.endswith("/index.html")]
    section: dict[str, Any] = {}
    for index in indexes:
        root, _, customer = index.removesuffix("/index.html").rpartition("/")
        if customer not in pbx.customers:
            pbx.gaps.append(f"the page {index} is of no customer of this host")
            continue
        found = _read_page(index, ssh, ctx, pbx)
        if found is None:
            continue
        page, server, cards = found
        section["publish"] = root
        if server is not None:
            section["host"] = server
        pbx.customers[customer]["webrtc"] = {"page": page}
        if cards:
            pbx.customers[customer]["cards"] = cards
    if section:
        pbx.data["webrtc"] = section
        pbx.notes.append(
            f"the customers' pages are the ones sipctl published at {section['publish']}"
        )


def _read_page(
    index: str, ssh: Ssh | None, ctx: RunContext, result: Imported
) -> tuple[dict[str, Any], str | None, dict[str, Any]] | None:
    """A published page's ``webrtc.page``, the host it connects to, and its ``cards``;
    None (and a gap) when it is gone."""
    import html

    page_target, page_path = split_publish(index)
    found = ctx.transports.get(page_target, ssh).read_files([page_path])[page_path]
    if not found.exists:
        place = index.removesuffix("/index.html")
        result.gaps.append(f"the page sipctl published at {place} is gone ({index})")
        return None
    text = found.text()
    title, server = _PAGE_TITLE.search(text), _PAGE_SERVER.search(text)
    page: dict[str, Any] = {"names": [html.unescape(n) for n in _PAGE_NAME.findall(text)]}
    if title is not None:
        page["title"] = html.unescape(title.group(1))
    cards = _published_cards(ctx.transports.get(page_target, ssh), page_path, page["names"])
    return page, server.group(1) if server is not None else None, cards


def _published_cards(transport: Any, index_path: str, names: list[str]) -> dict[str, Any]:
    """The ``cards`` section the page's vCards were made of: the organization (ORG) and each
    name's card name (FN) where it is not the name itself."""
    from sipctl.reconciler.render.cards import CARDS_DIR, card_href

    root = index_path.rsplit("/", 1)[0]
    paths = {name: f"{root}/{CARDS_DIR}/{card_href(name, '.vcf')}" for name in names}
    found = transport.read_files(list(paths.values()))
    organizations: set[str] = set()
    shown: dict[str, str] = {}
    for name, path in paths.items():
        if not found[path].exists:
            continue
        fields = dict(line.split(":", 1) for line in found[path].text().splitlines() if ":" in line)
        if "ORG" in fields:
            organizations.add(_vcard_text(fields["ORG"]))
        full = _vcard_text(fields.get("FN", name))
        if full != name:
            shown[name] = full
    cards: dict[str, Any] = {}
    if len(organizations) == 1:
        cards["organization"] = organizations.pop()
    if shown:
        cards["names"] = shown
    return cards


def _vcard_text(value: str) -> str:
    """A vCard text value unescaped (RFC 6350 3.4: backslash, comma, semicolon)."""
    return re.sub(r"\\(.)", r"\1", value)


def bookkeeping_only(changes: list[tuple[str, Change]], domain: str) -> bool:
    """True when the DNS changes are only sipctl's ownership registry (nothing a caller
    sees). Changes of other layers are not looked at: the caller decides about them."""
    registry = registry_owner(domain)
    return all(
        c.address.kind == "TXT" and (c.address.name == registry or is_claim_owner(c.address.name))
        for layer, c in changes
        if layer == "dns"
    )


def describe_changes(changes: list[tuple[str, Change]], domain: str) -> list[str]:
    """One line per change a first apply of the imported spec makes, for ``import``'s report."""
    lines = []
    for layer, change in changes:
        kind, name = change.address.kind, change.address.name
        if layer == "dns" and name == registry_owner(domain):
            lines.append(
                f"dns: the ownership record TXT _sipctl.{domain} (no record a caller sees)"
            )
        elif layer == "dns" and kind == "TXT" and is_claim_owner(name):
            lines.append(
                f"dns: the domain's claim on a server, TXT {name} (no record a caller sees)"
            )
        elif layer == "asterisk" and kind == "file":
            lines.append(f"asterisk: sipctl's own {name} ({change.action})")
        elif layer == "asterisk" and kind == "include":
            lines.append(f"asterisk: one #include line at the end of {name}")
        elif layer == "asterisk" and kind == "rtp":
            lines.append(f"asterisk: rtpstart/rtpend in {name} [general], set to the values in use")
        else:
            lines.append(f"{layer}: {change.action} {kind} {name}")
    return lines


SPEC_RTP_DEFAULT = {"start": 10000, "end": 20000}


def fit_rtp(found: Imported) -> None:
    """A live RTP range that holds a UDP SIP port (Asterisk's own 5000-31000, in use when
    rtp.conf sets none, holds 5060) is one a spec refuses, as media and signalling would
    compete for the port: the spec gets its default range instead, and since an apply then
    moves the media ports, --adopt stops on it (a blocker) rather than move them unasked."""
    section = found.data.get("asterisk", {})
    rtp = section.get("rtp")
    udp = found.data.get("transports", {}).get("udp")
    if rtp is None or udp is None or not rtp["start"] <= udp["port"] <= rtp["end"]:
        return
    section["rtp"] = dict(SPEC_RTP_DEFAULT)
    found.blockers.append(
        f"the RTP range in use, {rtp['start']}-{rtp['end']}"
        f"{' (Asterisk default: rtp.conf sets none)' if rtp == ASTERISK_RTP_DEFAULT else ''}, "
        f"holds the SIP port udp/{udp['port']}, which a spec refuses (media and signalling "
        f"would compete for it). The spec has {SPEC_RTP_DEFAULT['start']}-"
        f"{SPEC_RTP_DEFAULT['end']}, which an apply writes into rtp.conf: open that range in "
        "the firewall first, or set rtpstart/rtpend in rtp.conf to a range without the SIP "
        "port and import again"
    )


# --- a host of several customer domains -------------------------------------------------------


def host_name(domain: str) -> str:
    """The host file's ``hosting.name``: the first label of the host's own domain."""
    label = re.sub(r"[^a-z0-9-]", "", domain.split(".", 1)[0].lower()).lstrip("-")[:63]
    return label or "pbx"


def hosting_dns_url(url: str, domain: str, count: int) -> str:
    """``--dns`` for one customer's zone of a host: ``{domain}`` in it stands for each
    customer's domain (an rfc2136 URL without a zone reads each customer's own zone)."""
    if "{domain}" in url:
        return url.replace("{domain}", domain)
    if url.startswith("rfc2136:") and not urlsplit(url).path.strip("/"):
        return url
    raise SpecError(
        f"--dns {url!r}: the PBX is a host of {count} customer domain(s), each with its own "
        "zone: write {domain} where each customer's zone goes (zonefile:zones/{domain}.zone, "
        "rfc2136://SERVER/{domain}?key=...), or leave the zone out of an rfc2136:// URL"
    )


def host_files(
    domain: str, pbx: Imported, customers_dns: Mapping[str, Imported]
) -> dict[str, Imported]:
    """A host file and one file per customer (file stem -> its data), from the host's
    Asterisk setup (``parse_asterisk``) and each customer's DNS (``read_dns``).

    The host file takes the transports and servers its customers' records share (the most
    common); a customer whose records differ keeps its own."""
    name = host_name(domain)
    shared: Counter[str] = Counter()
    for found in customers_dns.values():
        shared[_canonical(found.data)] += 1
    common = next(
        (found.data for found in customers_dns.values()
         if shared and _canonical(found.data) == shared.most_common(1)[0][0]),
        {},
    )  # fmt: skip
    host = Imported(
        {"version": 1, "domain": domain, "hosting": {"name": name}},
        gaps=list(pbx.gaps),
        notes=list(pbx.notes),
        blockers=list(pbx.blockers),
    )
    for key in ("transports", "servers"):
        if key in common:
            host.data[key] = common[key]
    host.data.update(pbx.data)
    if "transports" in pbx.data:  # wss: only Asterisk shows it, the DNS does not
        host.data["transports"] = {**common.get("transports", {}), **pbx.data["transports"]}
    files = {name: host}
    for customer, part in pbx.customers.items():
        found = customers_dns[customer]
        data: dict[str, Any] = {"version": 1, "domain": customer, "host": name}
        data["local_context"] = part.get("local_context") or f"{host_name(customer)}-phones"
        if "local_context" not in part:
            found.gaps.append(
                f"{customer} routes no name: its local_context is a guess "
                f"({data['local_context']}); set the context of its phones"
            )
        if _canonical(found.data) != _canonical(common):
            data["transports"] = found.data["transports"]
            data["servers"] = found.data["servers"]
        # the host's admin binds each customer to its phones' context (a customer file
        # that asks for another is refused): what the PBX does today, guesses included
        host.data["hosting"].setdefault("local_contexts", {})[customer] = data["local_context"]
        data["users"] = part["users"]
        for key in ("rooms", "webrtc", "cards"):
            if part.get(key):
                data[key] = part[key]
        data["dns"] = found.data["dns"]
        files[customer] = Imported(data, found.gaps, found.notes)
    return files


def _canonical(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(
        {"transports": data.get("transports"), "servers": data.get("servers")}, sort_keys=True
    )
