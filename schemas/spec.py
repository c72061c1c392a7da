"""Pydantic models of the sipctl spec, version 1 (the reference: docs/spec.md).

Every model forbids unknown keys and is immutable. Defaults are the ones an admin expects
from the classic setup: UDP and TCP on 5060, TLS on 5061, RTP 10000-20000.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sipctl.schemas.names import (
    ContextName,
    Extension,
    Hostname,
    SoundName,
    TsigKeyName,
    UserName,
)
from sipctl.schemas.targets import PORT_PATTERN, TARGET_PATTERN, check_target
from sipctl.schemas.text import check_text

# Every field has a description: docs/spec.md (the reference), the JSON Schema and editors
# show it. A field without one fails tests/test_reference.py, which names it.

Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
U16 = Annotated[int, Field(ge=0, le=65535, strict=True)]
Ensure = Literal["present", "absent"]

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


class _Model(BaseModel):
    """Every spec model: unknown keys are errors, values are immutable, and every string
    (dict keys included) obeys the one rule of schemas/text.py. The loader checks the same
    rule on the YAML first, with file:line:col; this is the net for specs built in Python."""

    # defer_build: a model's validator is built when it first validates, not at import.
    # Nested models are then built once, inside the Spec that holds them, instead of once
    # per model class (pydantic otherwise compiles every class at definition time).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @field_validator("*", mode="after")
    @classmethod
    def _one_line_of_text(cls, value: Any) -> Any:
        """Every text is one line: no line break, control or bidi character."""
        _check_strings(value)
        return value

    @model_validator(mode="after")
    def _extra_is_text_too(self) -> Any:
        """Extra keys (dns.octodns) obey the same rule of one line of text."""
        # Models that allow extra keys (octodns) keep them outside the fields.
        if self.__pydantic_extra__:
            _check_strings(self.__pydantic_extra__)
        return self

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        """A true/false key takes true or false, not text like 'yes' or a number."""
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and field.annotation is bool and not isinstance(value, bool):
            raise ValueError("must be true or false (without quotes)")
        return value


def _check_strings(value: object) -> None:
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)


def _ensure_field() -> Any:
    return Field(
        default="present",
        description="present: sipctl manages this layer; absent: sipctl removes what it owns",
    )


# --- transports -------------------------------------------------------------------------


_PORT_HELP = "the port Asterisk listens on and the SRV record and the firewall name"
_ORDER_HELP = "NAPTR order of this transport: callers try lower orders first"
_PREFERENCE_HELP = "NAPTR preference among transports of the same order (lower first)"


class UdpTransport(_Model):
    port: Port = Field(default=5060, description=_PORT_HELP)
    order: U16 = Field(default=10, description=_ORDER_HELP)
    preference: U16 = Field(default=10, description=_PREFERENCE_HELP)


class TcpTransport(UdpTransport):
    order: U16 = Field(default=20, description=_ORDER_HELP)


class TlsTransport(UdpTransport):
    port: Port = Field(default=5061, description=_PORT_HELP)
    order: U16 = Field(default=30, description=_ORDER_HELP)


class WssTransport(_Model):
    """SIP over a secure WebSocket (RFC 7118) on Asterisk's HTTPS server, path ``/ws``."""

    port: Port = Field(
        default=8089, description="the HTTPS port of Asterisk's WebSocket server (http.conf)"
    )
    order: U16 = Field(default=40, description="NAPTR order (only with dns.naptr_websocket)")
    preference: U16 = Field(default=10, description="NAPTR preference (dns.naptr_websocket)")
    opus: bool = Field(
        default=True,
        description="browsers talk Opus where the office phone has it too (passed through "
        "untouched), else ulaw/alaw through Asterisk's Opus transcoder "
        "(codec_opus_open_source, which plan checks); false: ulaw/alaw only",
    )


# The protocol each transport's port is opened for (TLS and WSS run over TCP).
TRANSPORT_PROTOCOL = {"udp": "udp", "tcp": "tcp", "tls": "tcp", "wss": "tcp"}


class Transports(_Model):
    udp: UdpTransport | None = Field(
        default=None, description="SIP over UDP (NAPTR SIP+D2U, SRV _sip._udp)"
    )
    tcp: TcpTransport | None = Field(
        default=None, description="SIP over TCP (NAPTR SIP+D2T, SRV _sip._tcp)"
    )
    tls: TlsTransport | None = Field(
        default=None,
        description="SIP over TLS (NAPTR SIPS+D2T, SRV _sips._tcp); needs asterisk.tls",
    )
    wss: WssTransport | None = Field(
        default=None,
        description="WebRTC callers: SIP over secure WebSocket; needs asterisk.tls",
    )

    @model_validator(mode="after")
    def _at_least_one(self) -> Transports:
        """At least one transport is enabled."""
        if self.udp is None and self.tcp is None and self.tls is None:
            raise ValueError("enable at least one transport (udp, tcp or tls)")
        return self

    def enabled(self) -> dict[str, UdpTransport]:
        """The enabled transports by name, in the order udp, tcp, tls."""
        found = {"udp": self.udp, "tcp": self.tcp, "tls": self.tls}
        return {name: t for name, t in found.items() if t is not None}

    def listening(self) -> dict[str, tuple[str, int]]:
        """transport name -> (protocol, port) of every port the PBX listens on for SIP,
        WSS included: what the firewall opens and the fail2ban jail bans."""
        ports = {name: (TRANSPORT_PROTOCOL[name], t.port) for name, t in self.enabled().items()}
        if self.wss is not None:
            ports["wss"] = ("tcp", self.wss.port)
        return ports


def _default_transports() -> Transports:
    # Constructed, not validated (the defaults are valid): validating here would build three
    # more validators on the first spec that leaves transports out.
    return Transports.model_construct(
        udp=UdpTransport.model_construct(), tcp=TcpTransport.model_construct()
    )


# --- servers and users --------------------------------------------------------------------


def _check_ipv4(value: str) -> str:
    """A server's IPv4 address, stored as the canonical text of the parsed address."""
    try:
        address = ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError):
        raise ValueError(f"{value!r} is not an IPv4 address") from None
    _refuse_unreachable(address)
    return str(address)


def _check_ipv6(value: str) -> str:
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
    _refuse_unreachable(address)
    return str(address)


def _refuse_unreachable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
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


IPv4 = Annotated[
    str,
    AfterValidator(_check_ipv4),
    Field(json_schema_extra={"format": "ipv4", "pattern": IPV4_PATTERN}),
]
IPv6 = Annotated[
    str,
    AfterValidator(_check_ipv6),
    Field(json_schema_extra={"format": "ipv6", "pattern": IPV6_PATTERN}),
]


class RingGroup(_Model):
    """The long form of a user: several phones at once, then a fallback."""

    ring: Annotated[tuple[Extension, ...], Field(min_length=1, max_length=50)] = Field(
        description="extensions dialled all at once, like [106, 107]"
    )
    timeout: Annotated[int, Field(ge=1, le=600, strict=True)] = Field(
        default=20, description="seconds the ring extensions ring before the fallback is tried"
    )
    fallback: Extension | None = Field(
        default=None,
        description=(
            "extension dialled next (for as long again); without it, or when it does not "
            "answer either, the caller hears asterisk.unavailable_sound"
        ),
    )

    def extensions(self) -> tuple[str, ...]:
        """Every extension this user may ring, in order (ring first, then the fallback)."""
        return (*self.ring, *((self.fallback,) if self.fallback is not None else ()))


def _user_form(value: Any) -> str:
    return "ring group" if isinstance(value, dict | RingGroup) else "extension"


# The names pydantic puts into an error's location for the branches of a tagged union; the
# loader leaves them out, so an error names the spec's own path (users.sales.ring).
UNION_TAGS = frozenset({"extension", "ring group"})

UserTarget = Annotated[
    Annotated[Extension, Tag("extension")] | Annotated[RingGroup, Tag("ring group")],
    Discriminator(_user_form),
    Field(
        description=(
            "an extension (short form, like 105) or {ring: [106, 107], timeout: 20, fallback: 101}"
        ),
    ),
]


class Room(_Model):
    """A conference room (Asterisk ConfBridge) callers reach by its name."""

    max_members: Annotated[int, Field(ge=2, le=1000, strict=True)] = Field(
        default=50,
        description="members at once; the next caller hears a sound and is hung up",
    )


class Server(_Model):
    host: Hostname = Field(description="the SRV target: the host name callers connect to")
    ipv4: tuple[IPv4, ...] = Field(
        default=(), description="A records of the host (published when it is inside the zone)"
    )
    ipv6: tuple[IPv6, ...] = Field(
        default=(), description="AAAA records of the host (published when it is inside the zone)"
    )
    priority: U16 = Field(
        default=10, description="SRV priority: callers try lower priorities first (RFC 2782)"
    )
    weight: U16 = Field(
        default=0, description="SRV weight: share of callers among servers of one priority"
    )


# --- DNS ------------------------------------------------------------------------------------


class Tsig(_Model):
    name: TsigKeyName = Field(
        description="the TSIG key's name, as the DNS server knows it (a key file in "
        "secret_file names its own key, and that name is used)"
    )
    algorithm: Literal[
        "hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5"
    ] = Field(default="hmac-sha256", description="the TSIG key's algorithm")
    secret_env: Annotated[str, Field(json_schema_extra={"pattern": ENV_NAME_PATTERN})] | None = (
        Field(default=None, description="environment variable holding the base64 secret")
    )
    secret_file: str | None = Field(
        default=None,
        description="file holding the base64 secret, or a BIND key file (as tsig-keygen "
        "writes it) whose key name and algorithm are then used: a CI job picks its key, "
        "read-only for plan or writing for apply, by the file it writes here",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        """No inline TSIG `secret`: secret_env or secret_file only."""
        if isinstance(data, dict) and "secret" in data:
            raise ValueError(
                "an inline 'secret' is not allowed: a spec lives in git, secrets do not. "
                "Put the secret in an environment variable and name it with 'secret_env', "
                "or in a file named by 'secret_file'"
            )
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Tsig:
        """Exactly one of tsig.secret_env and tsig.secret_file is given."""
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("give exactly one of secret_env or secret_file")
        if self.secret_env is not None and not _ENV_NAME_RE.fullmatch(self.secret_env):
            raise ValueError(f"{self.secret_env!r} is not an environment variable name")
        return self


def _check_hostport(value: str) -> str:
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
    if match["port"] and not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"port {match['port']} is out of range (1-65535)")
    return value.strip()


HostPort = Annotated[
    str,
    AfterValidator(_check_hostport),
    Field(json_schema_extra={"pattern": HOSTPORT_PATTERN}),
]


# octoDNS provider arguments: scalars, or one level of lists and mappings of scalars.
OctodnsScalar = str | int | float | bool


def _check_octodns_value(value: Any) -> Any:
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


OctodnsValue = Annotated[
    OctodnsScalar | list[OctodnsScalar] | dict[str, OctodnsScalar],
    BeforeValidator(_check_octodns_value),
]

# An argument whose name says it holds a credential must name an environment variable
# (``env/NAME``), exactly as octoDNS's own config does: a spec lives in git, secrets do not.
_SECRET_KEY_RE = re.compile(r"key|secret|token|passw|credential|auth|private", re.IGNORECASE)
_OCTODNS_ENV_RE = re.compile(r"env/[A-Za-z_][A-Za-z0-9_]*")
_OCTODNS_CLASS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


class Octodns(_Model):
    """octoDNS's own provider config: ``class`` plus the plugin's arguments (secrets as
    ``env/NAME``)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)
    __pydantic_extra__: dict[str, OctodnsValue] = Field(init=False)

    provider_class: str = Field(
        alias="class",
        description="the octoDNS provider class, e.g. octodns_route53.Route53Provider",
    )

    @field_validator("provider_class")
    @classmethod
    def _class_path(cls, value: str) -> str:
        """dns.octodns.class is a class path (module.Class)."""
        if not _OCTODNS_CLASS_RE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a class path (module.Class, like "
                "octodns_route53.Route53Provider)"
            )
        return value

    @model_validator(mode="after")
    def _no_inline_secret(self) -> Octodns:
        """dns.octodns has no 'id' and no inline credential: a key that names a secret takes
        env/NAME."""
        for key, value in self.arguments().items():
            if key == "id":
                raise ValueError("'id' is set by sipctl (the zone's provider id); remove it")
            if not _SECRET_KEY_RE.search(key) or isinstance(value, bool):
                continue
            if not (isinstance(value, str) and _OCTODNS_ENV_RE.fullmatch(value)):
                raise ValueError(
                    f"{key}: an inline credential is not allowed: a spec lives in git, secrets "
                    f"do not. Put it in an environment variable and write {key}: env/NAME"
                )
        return self

    def arguments(self) -> dict[str, OctodnsValue]:
        """The plugin's keyword arguments, as written (``env/NAME`` not yet resolved)."""
        return dict(self.__pydantic_extra__ or {})


# Characters that mean something to a shell beyond "word": command lists (; & |), expansions
# ($ `), redirections (< >), subshells and groups (( ) { }). A command is a program and its
# arguments, run without a shell, so none of them is ever needed.
SHELL_SYNTAX = frozenset(";&|$`<>(){}")


def split_command(value: str) -> tuple[str, ...]:
    """The words of a ``command`` value (shlex rules): the program, then its arguments."""
    return tuple(shlex.split(value))


def _check_command(value: str) -> str:
    bad = sorted(set(value) & SHELL_SYNTAX)
    if bad:
        shown = " ".join(bad)
        raise ValueError(
            f"{value!r} uses shell syntax ({shown}): a command is a program and its "
            "arguments, run without a shell; write just the program and its words, like "
            "'docker exec pbx asterisk'"
        )
    try:
        words = split_command(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a command line: {exc}") from None
    if not words:
        raise ValueError("a command must name a program")
    return value.strip()


COMMAND_PATTERN = "^[^;&|$`<>(){}]*[^;&|$`<>(){}\\s][^;&|$`<>(){}]*$"
Command = Annotated[
    str, AfterValidator(_check_command), Field(json_schema_extra={"pattern": COMMAND_PATTERN})
]


class Dns(_Model):
    provider: Annotated[str, Field(json_schema_extra={"pattern": PROVIDER_PATTERN})] = Field(
        default="rfc2136",
        description="how records are changed: rfc2136 (dynamic updates to BIND, Knot, "
        "PowerDNS...), zonefile (a zone file sipctl edits), octodns (an API provider through "
        "octoDNS), or an installed plugin's name",
    )
    zone: Hostname | None = Field(
        default=None, description="the zone the records live in; default: the domain"
    )
    server: HostPort | None = Field(
        default=None, description="primary server, HOST[:PORT] (rfc2136)"
    )
    tsig: Tsig | None = Field(
        default=None, description="the key that signs updates and queries (rfc2136)"
    )
    ttl: Annotated[int, Field(ge=1, le=2147483647, strict=True)] = Field(
        default=3600, description="TTL in seconds of every record sipctl writes"
    )
    naptr: bool = Field(
        default=True, description="publish NAPTR records (SRV records are always published)"
    )
    timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5.0, description="seconds to wait for each DNS answer"
    )
    naptr_websocket: bool = Field(
        default=False,
        description="also publish a SIPS+D2W NAPTR and its SRV for transports.wss (RFC 7118); "
        "for SIP gateways, browsers never query it",
    )
    file: str | None = Field(default=None, description="zone file (zonefile), relative to the spec")
    create_file: bool = Field(
        default=False,
        description=(
            "zonefile: create dns.file with a minimal SOA and NS when it does not exist (its "
            "directory must exist); off, a missing file is an error at plan (a typo must not "
            "start a new zone)"
        ),
    )
    reload_command: Command | None = Field(
        default=None, description="run after the zone file changed, e.g. 'rndc reload mysite.ru'"
    )
    octodns: Octodns | None = Field(
        default=None,
        description="provider octodns: octoDNS's provider config (class plus its arguments)",
    )
    ensure: Ensure = _ensure_field()

    @field_validator("provider")
    @classmethod
    def _provider_name(cls, value: str) -> str:
        """dns.provider is a plugin name: lower-case letters, digits, '_' and '-'."""
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", value):
            raise ValueError(f"{value!r} is not a provider name (like rfc2136 or zonefile)")
        return value

    @model_validator(mode="after")
    def _provider_needs(self) -> Dns:
        """rfc2136 needs dns.server and takes no file or reload_command; zonefile needs
        dns.file and takes no server or tsig."""
        if self.provider == "rfc2136":
            if self.server is None:
                raise ValueError(
                    "provider rfc2136 needs 'server' (the primary, like 192.0.2.53:53)"
                )
            if self.file is not None or self.reload_command is not None:
                raise ValueError("'file' and 'reload_command' belong to provider zonefile")
        if self.provider == "zonefile":
            if self.file is None:
                raise ValueError("provider zonefile needs 'file' (the zone file to manage)")
            if self.server is not None or self.tsig is not None:
                raise ValueError("'server' and 'tsig' belong to provider rfc2136")
        if self.provider == "octodns":
            if self.octodns is None:
                raise ValueError(
                    "provider octodns needs 'octodns' (octoDNS's provider config: class and "
                    "its arguments, like class: octodns_route53.Route53Provider)"
                )
            if self.server is not None or self.tsig is not None or self.file is not None:
                raise ValueError(
                    "'server', 'tsig' and 'file' do not apply to provider octodns: its "
                    "plugin's own arguments go under 'octodns'"
                )
        elif self.octodns is not None:
            raise ValueError("'octodns' belongs to provider octodns (set provider: octodns)")
        return self


# --- hosts, SSH -------------------------------------------------------------------------------

Target = Annotated[
    str, AfterValidator(check_target), Field(json_schema_extra={"pattern": TARGET_PATTERN})
]


# Defaults that are models are built with model_construct(): their values are the model's
# own field defaults, which need no validation, and a validated instance here would build
# that model's validator at import (see _Model's defer_build).


class Ssh(_Model):
    key_file: str | None = Field(
        default=None, description="private key; default: the agent, then ~/.ssh/id_*"
    )
    known_hosts: str = Field(
        default="~/.ssh/known_hosts",
        description="known_hosts file the host key is checked against (never accepted blindly)",
    )
    sudo: bool = Field(default=False, description="run commands and writes through sudo -n")
    connect_timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0, description="seconds to wait for the SSH connection"
    )


# A path on a host goes into config files whose readers give spaces and some marks a meaning
# (fail2ban: "logpath = PATH tail", ";" comments; Asterisk: ";" comments; quotes and "$" in
# scripts), so it is letters, digits and the marks file names really use.
_ABS_PATH_RE = re.compile(r"/[\w.+@,:=~%/-]*")


def _check_abs_path(value: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path on the target host")
    if not _ABS_PATH_RE.fullmatch(value):
        bad = sorted({c for c in value if not re.fullmatch(r"[\w.+@,:=~%/-]", c)})
        raise ValueError(
            f"{value!r}: a path here may hold letters, digits and . _ + @ , : = ~ % - / only "
            f"(not {' '.join(repr(c) for c in bad)}): config readers on the host give spaces, "
            "';', '#', quotes and backslashes a meaning of their own"
        )
    return value


AbsPath = Annotated[
    str, AfterValidator(_check_abs_path), Field(json_schema_extra={"pattern": "^/"})
]


# --- Asterisk ---------------------------------------------------------------------------------


class Rtp(_Model):
    start: Port = Field(
        default=10000, description="first UDP port of the media range (even, 1024 or above)"
    )
    end: Port = Field(default=20000, description="last UDP port of the media range")

    @model_validator(mode="after")
    def _range(self) -> Rtp:
        """rtp.start is even, 1024 or above, and below rtp.end."""
        if self.start >= self.end:
            raise ValueError(f"rtp.start ({self.start}) must be below rtp.end ({self.end})")
        if self.start % 2:
            raise ValueError(
                f"rtp.start ({self.start}) must be even: RTP uses even ports, RTCP odd"
            )
        if self.start < 1024:
            raise ValueError(f"rtp.start ({self.start}) must be 1024 or above")
        return self


_ACME_URL_RE = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%/+=&?-]*)?")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


def _check_acme_url(value: str) -> str:
    if not isinstance(value, str) or not _ACME_URL_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an https:// URL of an ACME directory (like {LETS_ENCRYPT})"
        )
    return value


def _check_email(value: str) -> str:
    if not isinstance(value, str) or not _EMAIL_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an e-mail address (like hostmaster@mysite.ru)")
    return value


class Acme(_Model):
    """sipctl obtains and renews the certificate itself: ACME (RFC 8555) with DNS-01
    challenges answered through the spec's own ``dns`` provider."""

    directory: Annotated[str, AfterValidator(_check_acme_url)] = Field(
        default=LETS_ENCRYPT, description="the ACME server's directory URL"
    )
    email: Annotated[str, AfterValidator(_check_email)] | None = Field(
        default=None, description="contact for the ACME account (expiry warnings)"
    )
    renew_days: Annotated[int, Field(ge=1, le=365, strict=True)] = Field(
        default=30, description="renew when fewer days are left (or the names changed)"
    )
    ca_file: str | None = Field(
        default=None,
        description="CA bundle to trust for the ACME server's own HTTPS (a private ACME "
        "server); a file on the machine running sipctl, relative to the spec",
    )


class TlsFiles(_Model):
    cert_file: AbsPath = Field(description="the certificate (PEM) on the PBX host")
    key_file: AbsPath = Field(description="its private key (PEM) on the PBX host")
    ca_list_file: AbsPath | None = Field(
        default=None, description="CA certificates Asterisk trusts for TLS clients"
    )
    acme: Acme | None = Field(
        default=None, description="obtain and renew the certificate by ACME DNS-01"
    )

    @model_validator(mode="after")
    def _two_files(self) -> TlsFiles:
        """asterisk.tls.cert_file and key_file are two different files."""
        if self.cert_file == self.key_file:
            raise ValueError("cert_file and key_file must be two different files")
        return self


_TARGET_HELP = "where the layer lives: local, dir:PATH, or ssh://[user@]host[:port]"


class Asterisk(_Model):
    target: Target = Field(default="local", description=_TARGET_HELP)
    ssh: Ssh = Field(default=Ssh.model_construct(), description="how to reach an ssh:// target")
    channel: Literal["pjsip", "sip"] = Field(
        default="pjsip", description="pjsip, or sip (chan_sip, Asterisk 20 and older)"
    )
    config_dir: AbsPath = Field(
        default="/etc/asterisk", description="Asterisk's configuration directory on the target"
    )
    command: Command = Field(
        default="asterisk", description="prefix of 'asterisk -rx', e.g. 'docker exec pbx asterisk'"
    )
    manage_transports: bool = Field(
        default=False,
        description="true: sipctl defines the SIP transports itself (a new PBX); false: it "
        "checks that the live ones match the spec",
    )
    guest_context: ContextName = Field(
        default="guest-call", description="the dialplan context unauthenticated callers land in"
    )
    local_context: ContextName = Field(
        default="default",
        description="the context of the internal phones (route: goto jumps there)",
    )
    reject_sound: SoundName = Field(
        default="ss-noservice", description="the sound an unknown caller hears before hang-up"
    )
    unavailable_sound: SoundName | None = Field(
        default=None,
        description=(
            "what a caller of a declared name hears when no phone answers (unregistered, "
            "busy, no answer); default: reject_sound, so an outsider cannot tell a declared "
            "name from an undeclared one"
        ),
    )
    unknown_callers: Literal["reject", "not-found"] = Field(
        default="reject",
        description="reject: log, play reject_sound, hang up; not-found: Asterisk answers 404",
    )
    route: Literal["dial", "goto"] = Field(
        default="dial",
        description="dial: Dial(PJSIP/<extension>); goto: Goto(<local_context>,<extension>,1)",
    )
    rtp: Rtp = Field(
        default=Rtp.model_construct(), description="the UDP port range for media (rtp.conf)"
    )
    video: bool = Field(
        default=False,
        description=(
            "true: guests and rooms may send and receive video (vp8, h264) beside audio; "
            "false: a video offer is answered audio-only"
        ),
    )
    tls: TlsFiles | None = Field(default=None, description="certificate and key for transports.tls")
    ensure: Ensure = _ensure_field()

    @property
    def sound_when_unavailable(self) -> str:
        """The sound a declared name's caller hears when nobody answers."""
        return self.unavailable_sound or self.reject_sound

    @model_validator(mode="after")
    def _contexts_differ(self) -> Asterisk:
        """asterisk.guest_context and asterisk.local_context differ."""
        if self.guest_context == self.local_context:
            raise ValueError(
                "guest_context and local_context must differ: unauthenticated callers must "
                "never land in the context of the internal phones"
            )
        return self


# --- firewall ---------------------------------------------------------------------------------


def _check_portspec(value: str) -> str:
    match = _PORTSPEC_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not PROTO/PORT[-PORT] (like tcp/443 or udp/4000-4999)")
    first = int(match["first"])
    last = int(match["last"]) if match["last"] else first
    if not (1 <= first <= 65535 and 1 <= last <= 65535 and first <= last):
        raise ValueError(f"{value!r}: ports must be 1-65535 and the range ascending")
    return f"{match['proto']}/{first}" + (f"-{last}" if last != first else "")


PortSpec = Annotated[
    str,
    AfterValidator(_check_portspec),
    Field(json_schema_extra={"pattern": PORTSPEC_PATTERN}),
]


DEFAULT_PERSIST = {"iptables": "/etc/iptables.up", "nftables": "/etc/nftables.d/sipctl.nft"}
NFTABLES_MAIN_FILE = "/etc/nftables.conf"


class Firewall(_Model):
    target: Target | None = Field(
        default=None, description=_TARGET_HELP + "; default: asterisk.target"
    )
    ssh: Ssh | None = Field(default=None, description="default: asterisk.ssh")
    backend: Literal["iptables", "nftables"] = Field(
        default="iptables", description="iptables (chain SIPCTL) or nftables (table inet sipctl)"
    )
    policy: Literal["drop", "reject"] = Field(
        default="drop", description="what happens to input the rules do not accept"
    )
    allow_ping: bool = Field(default=True, description="accept ICMP echo requests")
    ssh_port: Port = Field(default=22, description="the SSH port kept open (never locked out)")
    extra: tuple[PortSpec, ...] = Field(
        default=(), description="more ports to open, as PROTO/PORT or PROTO/FIRST-LAST"
    )
    persist: AbsPath | None = Field(
        default=None,
        description=(
            "file the rules are saved to, so they survive a reboot; default "
            f"{DEFAULT_PERSIST['iptables']} (iptables; IPv6 beside it: "
            f"{DEFAULT_PERSIST['iptables'].replace('iptables', 'ip6tables')}) or "
            f"{DEFAULT_PERSIST['nftables']} (nftables); null: no file"
        ),
    )
    confirm_seconds: Annotated[int, Field(ge=5, le=3600, strict=True)] = Field(
        default=30,
        description="new rules are rolled back unless a fresh connection confirms them in time",
    )
    ensure: Ensure = _ensure_field()

    @model_validator(mode="after")
    def _persist_default(self) -> Firewall:
        """persist left out is the backend's default file (null: none), and never the
        distribution's main /etc/nftables.conf (include sipctl's file from it instead)."""
        if "persist" not in self.model_fields_set:
            object.__setattr__(self, "persist", DEFAULT_PERSIST[self.backend])
        elif self.persist == NFTABLES_MAIN_FILE:
            include = DEFAULT_PERSIST["nftables"]
            raise ValueError(
                f"persist: {NFTABLES_MAIN_FILE} is the distribution's own nftables file (it "
                "flushes the whole rule set at boot and holds the admin's rules); let sipctl "
                f"write its own file, e.g. persist: {include}, and add the line "
                f'include "{include}" to {NFTABLES_MAIN_FILE}'
            )
        return self


# --- fail2ban ---------------------------------------------------------------------------------


def _check_ignored_network(value: str) -> str:
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


IgnoredNetwork = Annotated[str, AfterValidator(_check_ignored_network)]


class Fail2ban(_Model):
    enabled: bool = Field(default=True, description="false: the jail is written but disabled")
    sshd: bool = Field(
        default=False,
        description=(
            "also ban failed SSH logins: an sshd jail (Debian's sshd filter) on "
            "firewall.ssh_port (22 without a firewall section); an sshd jail of the admin's "
            "own is left alone"
        ),
    )
    target: Target | None = Field(
        default=None, description=_TARGET_HELP + "; default: asterisk.target"
    )
    ssh: Ssh | None = Field(default=None, description="default: asterisk.ssh")
    config_dir: AbsPath = Field(
        default="/etc/fail2ban", description="fail2ban's configuration directory on the target"
    )
    command: Command = Field(default="fail2ban-client", description="how fail2ban-client is run")
    # Asterisk 22's stock logger.conf: messages.log => notice,warning,error
    logpath: AbsPath = Field(
        default="/var/log/asterisk/messages.log",
        description="the Asterisk log the jail watches (must be the file Asterisk logs to)",
    )
    maxretry: Annotated[int, Field(ge=1, le=1000, strict=True)] = Field(
        default=5, description="rejected calls within findtime that get an address banned"
    )
    findtime: Annotated[int, Field(ge=1, le=31536000, strict=True)] = Field(
        default=600, description="seconds in which maxretry rejected calls are counted"
    )
    bantime: Annotated[int, Field(ge=-1, le=315360000, strict=True)] = Field(
        default=3600, description="seconds an address stays banned (-1: for ever)"
    )
    ignoreip: tuple[IgnoredNetwork, ...] = Field(
        default=(), description="addresses or networks (CIDR) never banned; loopback always is"
    )


# --- WebRTC ---------------------------------------------------------------------------------


def _check_publish(value: str) -> str:
    target, sep, path = value.rpartition(":/")
    if not sep or not target:
        raise ValueError(
            f"{value!r} is not TARGET:PATH (like local:/var/www/html/call or "
            "ssh://root@web.mysite.ru:/var/www/html/call)"
        )
    check_target(target)
    return f"{target.strip()}:{_check_abs_path('/' + path)}"


Publish = Annotated[str, AfterValidator(_check_publish)]


def split_publish(value: str) -> tuple[str, str]:
    """``TARGET:PATH`` -> (target, absolute path); the path is after the last ``:/``."""
    target, _, path = value.rpartition(":/")
    return target, "/" + path


class WebrtcPage(_Model):
    title: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default="Call us", description="the page's heading and title"
    )
    names: tuple[UserName, ...] | None = Field(
        default=None,
        description="who the page can call (users or rooms), in this order; default: all of them",
    )


class Webrtc(_Model):
    host: Hostname | None = Field(
        default=None, description="the wss:// host the page connects to; default: the first server"
    )
    page: WebrtcPage = Field(
        default=WebrtcPage.model_construct(),
        description="the click-to-call page 'sipctl render --dir' writes",
    )
    publish: Publish | None = Field(
        default=None,
        description="TARGET:PATH: apply also writes the page there (a web root), "
        "e.g. local:/var/www/html/call; the page sipctl published at another place before "
        "(or when publish is removed) is taken down",
    )


# --- the spec ---------------------------------------------------------------------------------


class Spec(_Model):
    """A whole sipctl spec, version 1."""

    version: Literal[1] = Field(description="the spec format; 1 is the only one so far")
    domain: Hostname = Field(description="the SIP domain: the right-hand side of sip:user@domain")
    transports: Transports = Field(
        default_factory=_default_transports,
        description="what callers may use; drives NAPTR, SRV, Asterisk and the firewall. "
        "Default: udp and tcp on 5060",
    )
    servers: tuple[Server, ...] = Field(
        default=(), description="the SRV targets, tried in order of priority"
    )
    users: dict[UserName, UserTarget] = Field(
        default_factory=dict,
        description="who an unauthenticated caller may reach: name -> extension or ring group",
    )
    rooms: dict[UserName, Room] = Field(
        default_factory=dict,
        description=(
            "conference rooms reachable by name (sip:<name>@<domain>); names follow the "
            "users' rules and may not repeat a user's name"
        ),
    )
    dns: Dns | None = Field(default=None, description="the DNS layer; left out: not managed")
    asterisk: Asterisk | None = Field(
        default=None, description="the Asterisk layer; left out: not managed"
    )
    firewall: Firewall | None = Field(
        default=None, description="the firewall layer; left out: not managed"
    )
    fail2ban: Fail2ban | None = Field(
        default=None, description="the fail2ban layer; left out: not managed"
    )
    webrtc: Webrtc | None = Field(
        default=None, description="the click-to-call page; needs transports.wss"
    )

    @property
    def zone(self) -> str:
        """The DNS zone the domain's records live in (no trailing dot, lower case)."""
        if self.dns is not None and self.dns.zone is not None:
            return self.dns.zone
        return self.domain

    @model_validator(mode="after")
    def _consistent(self) -> Spec:
        """The domain lies inside dns.zone; no server host is listed twice."""
        zone = self.zone
        if self.domain != zone and not self.domain.endswith("." + zone):
            raise ValueError(f"domain {self.domain} is not inside dns.zone {zone}")
        hosts = [s.host for s in self.servers]
        duplicates = sorted({h for h in hosts if hosts.count(h) > 1})
        if duplicates:
            raise ValueError(f"servers: host {duplicates[0]} is listed twice")
        return self

    def webrtc_host(self) -> str | None:
        """The host browsers connect to: ``webrtc.host``, else the first server."""
        if self.webrtc is not None and self.webrtc.host is not None:
            return self.webrtc.host
        return self.servers[0].host if self.servers else None

    def page_names(self) -> tuple[str, ...]:
        """The names the click-to-call page can call: ``webrtc.page.names``, else every user
        and every room."""
        if self.webrtc is not None and self.webrtc.page.names is not None:
            return self.webrtc.page.names
        return (*self.users, *(r for r in self.rooms if r not in self.users))

    def firewall_target(self) -> str | None:
        if self.firewall is None:
            return None
        if self.firewall.target is not None:
            return self.firewall.target
        return self.asterisk.target if self.asterisk is not None else "local"

    def fail2ban_target(self) -> str | None:
        if self.fail2ban is None:
            return None
        if self.fail2ban.target is not None:
            return self.fail2ban.target
        return self.asterisk.target if self.asterisk is not None else "local"
