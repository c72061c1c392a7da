"""The values of a spec: each check of a value (an address, a path, a command...) is one
plain function here, run as a validator by the pydantic models of ``spec.py`` (the authority:
the JSON Schema, docs/spec.md and every error message), so that each rule is written once.

Each check takes the value as it arrives and returns it as the spec keeps it (an address in
its canonical text, a host name in lower case), or raises ValueError with the message a
human reads.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Any

from sipctl.schemas.names import check_connect_host
from sipctl.schemas.targets import PORT_PATTERN, check_target
from sipctl.schemas.text import check_text

_HOSTPORT_RE = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.:-]+?)(?::(?P<port>[0-9]{1,5}))?"
)
_PORTSPEC_RE = re.compile(r"(?P<proto>tcp|udp)/(?P<first>[0-9]{1,5})(?:[-:](?P<last>[0-9]{1,5}))?")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IPV4_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4_PATTERN = rf"^{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}$"
IPV6_PATTERN = "^[0-9A-Fa-f:.]+(?:%[^%]+)?$"  # the rest is format: ipv6
PORTSPEC_PATTERN = f"^(?:tcp|udp)/{PORT_PATTERN}(?:[-:]{PORT_PATTERN})?$"
# HOST[:PORT], or a bare IPv6 address (two colons at least) without a port
HOSTPORT_PATTERN = (
    rf"^\s*(?:(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::{PORT_PATTERN})?"
    r"|[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)\s*$"
)
ENV_NAME_PATTERN = f"^{_ENV_NAME_RE.pattern}$"
PROVIDER_PATTERN = "^[a-z][a-z0-9_-]{0,40}$"


# The protocol each transport's port is opened for (TLS and WSS run over TCP).
TRANSPORT_PROTOCOL = {"udp": "udp", "tcp": "tcp", "tls": "tcp", "wss": "tcp"}


def check_strings(value: object) -> None:
    """The one rule of text.py on every string of ``value``, inside lists and mappings too
    (keys included)."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            check_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_strings(key)
            check_strings(item)


# --- servers and users ---------------------------------------------------------------------------


def check_ipv4(value: str) -> str:
    """A server's IPv4 address, stored as the canonical text of the parsed address."""
    try:
        address = ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError):
        raise ValueError(f"{value!r} is not an IPv4 address") from None
    refuse_unreachable(address)
    return str(address)


def check_ipv6(value: str) -> str:
    """A server's IPv6 address, canonical text (compressed, lower case), no scope id."""
    if isinstance(value, str) and "%" in value:
        raise ValueError(
            f"{value!r} has a scope id (after '%'): a SIP server's address is global and "
            "never has one; write the address alone"
        )
    try:
        address = ipaddress.IPv6Address(value)
    except (ipaddress.AddressValueError, ValueError):
        raise ValueError(f"{value!r} is not an IPv6 address") from None
    refuse_unreachable(address)
    return str(address)


def refuse_unreachable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Addresses no caller can send a call to: published in DNS they only mislead."""
    if address.is_unspecified:
        raise ValueError(
            f"{address} is the unspecified address ('any'), not one a caller can reach; "
            "give the server's own address"
        )
    if address == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(f"{address} is the broadcast address; give the server's own address")
    if address.is_multicast:
        raise ValueError(f"{address} is a multicast address; give the server's own address")


# The names pydantic puts into an error's location for the branches of a tagged union; the
# loader leaves them out, so an error names the spec's own path (users.sales.ring).
UNION_TAGS = frozenset({"extension", "ring group"})


# --- DNS -----------------------------------------------------------------------------------------


def hostport(host: str, port: int | str) -> str:
    """``host:port`` as written in a URI or a message: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def same_host(a: str, b: str) -> bool:
    """``a`` and ``b`` name the same host: the same address however written (``::1`` and
    ``0:0::1``), else the same text."""
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def check_hostport(value: str) -> str:
    match = _HOSTPORT_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not HOST[:PORT] (like 127.0.0.1:53 or [::1]:5353)")
    host = match["host"]
    if ":" in host and not host.startswith("["):
        # a bare IPv6 address without a port
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{value!r} is not HOST[:PORT]; write IPv6 as [::1]:53") from None
        if match["port"]:
            raise ValueError(f"{value!r} is ambiguous; write IPv6 with a port as [::1]:53")
    elif not host.startswith("["):
        check_connect_host(host)
    if match["port"] and not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"port {match['port']} is out of range (1-65535)")
    return value.strip()


# octoDNS provider arguments: scalars, or one level of lists and mappings of scalars.
OctodnsScalar = str | int | float | bool


def check_octodns_value(value: Any) -> Any:
    def scalar(item: Any) -> bool:
        if isinstance(item, str):
            if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in item):
                raise ValueError("must be one line of printable text")
            return True
        return isinstance(item, int | float | bool)

    if scalar(value):
        return value
    if isinstance(value, list) and all(scalar(v) for v in value):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) and scalar(v) for k, v in value.items()):
        return value
    raise ValueError(
        "must be a string, number or boolean, or a list or mapping of those (octoDNS "
        "provider arguments)"
    )


# --- paths, ACME ---------------------------------------------------------------------------------


# A path on a host goes into config files whose readers give spaces and some marks a meaning
# (fail2ban: "logpath = PATH tail", ";" comments; Asterisk: ";" comments; quotes and "$" in
# scripts), so it is letters, digits and the marks file names really use.
# ASCII only: \w alone takes every script's letters, and /var/log/\u0430sterisk (a Cyrillic
# 'a') reads in a review as the Asterisk log but is another file.
_PATH_CHARACTER = r"[\w.+@,:=~%/-]"
_ABS_PATH_RE = re.compile(rf"/{_PATH_CHARACTER}*", re.ASCII)
# Linux's NAME_MAX and PATH_MAX (less its NUL), in bytes; a path here is ASCII, one byte a
# character. A longer one is refused on every host when sipctl opens it, mid-apply.
MAX_FILE_NAME = 255
MAX_PATH = 4095


def canonical_path(path: str) -> str:
    """The one spelling of an absolute path that sipctl compares, tables and sends: no
    ``//``, ``/./``, ``..`` or trailing ``/`` (``//etc/./asterisk/../asterisk/keys/`` is
    ``/etc/asterisk/keys``). Lexical, which is exact because sipctl follows no link on a
    host; posixpath.normpath alone keeps a leading ``//`` (POSIX leaves its meaning open)."""
    return "/" + posixpath.normpath("/" + path).lstrip("/")


def check_abs_path(value: str) -> str:
    """The rule of every path a spec names on a host (``AbsPath``, the path of
    ``webrtc.page.publish``): absolute, in its one plain spelling, of harmless characters.

    A ``..`` reads as one directory and reaches another (``/var/log/asterisk/../../../etc/
    shadow`` is ``/etc/shadow``): a reviewer of the spec would be misled, so it is refused,
    as ``.``, ``//`` and a trailing ``/`` are, with the spelling to write instead."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path on the target host")
    if not _ABS_PATH_RE.fullmatch(value):
        bad = sorted({c for c in value if not re.fullmatch(_PATH_CHARACTER, c, re.ASCII)})
        raise ValueError(
            f"{value!a}: a path here may hold ASCII letters, digits and . _ + @ , : = ~ "
            f"% - / only (not {' '.join(ascii(c) for c in bad)}): config readers on the host "
            "give spaces, ';', '#', quotes and backslashes a meaning of their own, and a "
            "letter of another script can look like an ASCII one in a review"
        )
    too_long = [part for part in value.split("/") if len(part) > MAX_FILE_NAME]
    if too_long or len(value) > MAX_PATH:
        raise ValueError(
            f"{value[:60]!r}... ({len(value)} characters): a file system takes at most "
            f"{MAX_FILE_NAME} characters between two '/' and {MAX_PATH} in all"
            + (f" (one part here has {len(too_long[0])})" if too_long else "")
            + "; use a shorter path"
        )
    plain = canonical_path(value)
    if value != plain:
        parts = value.split("/")
        why = (
            "'..' climbs out of the directory it names"
            if ".." in parts
            else "a path here has one spelling: no '.', '//' or trailing '/'"
        )
        raise ValueError(f"{value!r}: {why}; it means {plain!r}: write that")
    return value


_ACME_URL_RE = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%/+=&?-]*)?")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


_URL_USERINFO_RE = re.compile(r"(https?://)[^/?#@]*@")


def check_acme_url(value: str) -> str:
    if isinstance(value, str) and _URL_USERINFO_RE.match(value):
        plain = _URL_USERINFO_RE.sub(r"\1", value, count=1)
        raise ValueError(
            f"{value!r}: an ACME directory's URL carries no user or password (sipctl's ACME "
            f"account key identifies it, and a spec holds no secret); write {plain!r}"
        )
    if not isinstance(value, str) or not _ACME_URL_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an https:// URL of an ACME directory (like {LETS_ENCRYPT})"
        )
    # its host obeys the one rule of hosts sipctl connects to, as dns.server's does
    host, _, port = value.removeprefix("https://").split("/", 1)[0].partition(":")
    try:
        check_connect_host(host)
    except ValueError as error:
        raise ValueError(f"{value!r}: its host {error}") from None
    if port and not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: its port must be 1 to 65535 (or none: 443)")
    return value


def check_email(value: str) -> str:
    if not isinstance(value, str) or not _EMAIL_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an e-mail address (like hostmaster@mysite.ru)")
    return value


# --- firewall, fail2ban --------------------------------------------------------------------------


def check_portspec(value: str) -> str:
    match = _PORTSPEC_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not PROTO/PORT[-PORT] (like tcp/443 or udp/4000-4999)")
    first = int(match["first"])
    last = int(match["last"]) if match["last"] else first
    if not (1 <= first <= 65535 and 1 <= last <= 65535 and first <= last):
        raise ValueError(f"{value!r}: ports must be 1-65535 and the range ascending")
    return f"{match['proto']}/{first}" + (f"-{last}" if last != first else "")


DEFAULT_PERSIST = {"iptables": "/etc/iptables.up", "nftables": "/etc/nftables.d/sipctl.nft"}
NFTABLES_MAIN_FILE = "/etc/nftables.conf"


def check_ignored_network(value: str) -> str:
    """An address or network fail2ban never bans, as the canonical text of the parsed network.

    No scope id (``fe80::1%eth0``: fail2ban's INI reader reads ``%`` as interpolation, and
    fail2ban compares addresses without one), no network covering every address (a jail
    that ignores everyone bans no one).
    """
    if not isinstance(value, str):
        raise ValueError("an ignoreip entry must be an address or a network, like 192.0.2.0/24")
    if "%" in value:
        raise ValueError(
            f"{value!r} has a scope id (after '%'): fail2ban compares addresses without one; "
            "write the address alone"
        )
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an address or network (like 192.0.2.7 or 192.0.2.0/24)"
        ) from None
    if network.prefixlen == 0:
        raise ValueError(
            f"{value!r} covers every address: the jail would never ban anyone; list the "
            "networks you trust instead"
        )
    if network.network_address.is_unspecified and network.prefixlen == network.max_prefixlen:
        raise ValueError(f"{value!r} is the unspecified address ('any'), not a caller's address")
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


# --- WebRTC --------------------------------------------------------------------------------------


def check_publish(value: str) -> str:
    target, sep, path = value.rpartition(":/")
    if not sep or not target:
        raise ValueError(
            f"{value!r} is not TARGET:PATH (like local:/var/www/html/call or "
            "ssh://root@web.mysite.ru:/var/www/html/call)"
        )
    check_target(target)
    return f"{target.strip()}:{check_abs_path('/' + path)}"


def split_publish(value: str) -> tuple[str, str]:
    """``TARGET:PATH`` -> (target, absolute path); the path is after the last ``:/``."""
    target, _, path = value.rpartition(":/")
    return target, "/" + path
