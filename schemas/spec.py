"""Pydantic models of the sipctl spec, version 1 (the reference: docs/spec.md).

Every model forbids unknown keys and is immutable. Defaults are the ones an admin expects
from the classic setup: UDP and TCP on 5060, TLS on 5061, RTP 10000-20000.

These models are the one authority of the spec: every spec is built by them, and the JSON
Schema, docs/spec.md and every error message come from them. Their checks are plain
functions, each written once: values.py, names.py and targets.py for single values,
spec_rules.py for the rules between a model's fields; the models run them as validators.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from sipctl.schemas import spec_rules as rules
from sipctl.schemas.names import (
    CONTEXT_PATTERN,
    ENTRY_NAME_PATTERN,
    EXTENSION_PATTERN,
    HEADER_PATTERN,
    HOSTNAME_PATTERN,
    LETTERED_NAME_PATTERN,
    MAX_EXTENSION_LENGTH,
    MAX_LETTERED_NAME_LENGTH,
    RESERVED_CONTEXT_PATTERN,
    SOUND_PATTERN,
    SPECIAL_NAME_PATTERN,
    TSIG_NAME_PATTERN,
    USER_NAME_PATTERN,
    check_context,
    check_entry_name,
    check_extension,
    check_hostname,
    check_server_header,
    check_sound,
    check_tsig_name,
    check_user_name,
)
from sipctl.schemas.numbers import FormatVersion, Wait, Whole
from sipctl.schemas.targets import TARGET_PATTERN, check_target
from sipctl.schemas.values import (
    DEFAULT_PERSIST,
    ENV_NAME_PATTERN,
    HOSTPORT_PATTERN,
    IPV4_PATTERN,
    IPV6_PATTERN,
    LETS_ENCRYPT,
    PORTSPEC_PATTERN,
    PROVIDER_PATTERN,
    TRANSPORT_PROTOCOL,
    OctodnsScalar,
    check_abs_path,
    check_acme_url,
    check_email,
    check_hostport,
    check_ignored_network,
    check_ipv4,
    check_ipv6,
    check_octodns_value,
    check_portspec,
    check_publish,
    check_strings,
)

# Every field has a description: docs/spec.md (the reference), the JSON Schema and editors
# show it. A field without one fails tests/test_reference.py, which names it.

# Every number is a Whole (whole numbers in a range) or a Wait (seconds sipctl waits):
# numbers.py, one rule and one message each.
SECONDS = "seconds"

# A true/false key takes true or false, not text like 'yes' or a number (strict: pydantic
# would read 'yes', 1 or "true" as true).
Flag = Annotated[bool, Field(strict=True)]
Port = Annotated[int, Whole(1, 65535)]
U16 = Annotated[int, Whole(0, 65535)]
Ensure = Literal["present", "absent"]


# The names of a spec (their checks: names.py).
UserName = Annotated[
    str,
    AfterValidator(check_user_name),
    Field(
        json_schema_extra={
            "pattern": USER_NAME_PATTERN,
            "maxLength": MAX_EXTENSION_LENGTH,
            "not": {"pattern": SPECIAL_NAME_PATTERN},
            "if": {"pattern": LETTERED_NAME_PATTERN},
            "then": {"maxLength": MAX_LETTERED_NAME_LENGTH},
        }
    ),
]
# YAML reads 105 as a number and "0105" as text; both are an extension (digits kept as written).
Extension = Annotated[
    str,
    BeforeValidator(check_extension),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 10**20 - 1},
                {"type": "string", "pattern": EXTENSION_PATTERN},
            ]
        }
    ),
]
Hostname = Annotated[
    str,
    AfterValidator(check_hostname),
    Field(json_schema_extra={"pattern": HOSTNAME_PATTERN, "maxLength": 254}),
]
ContextName = Annotated[
    str,
    AfterValidator(check_context),
    Field(
        json_schema_extra={
            "pattern": CONTEXT_PATTERN,
            "not": {"pattern": RESERVED_CONTEXT_PATTERN},
        }
    ),
]
ServerHeader = Annotated[
    str,
    AfterValidator(check_server_header),
    Field(json_schema_extra={"pattern": HEADER_PATTERN, "maxLength": 64}),
]
SoundName = Annotated[
    str,
    AfterValidator(check_sound),
    Field(json_schema_extra={"pattern": SOUND_PATTERN, "maxLength": 200}),
]
TsigKeyName = Annotated[
    str,
    AfterValidator(check_tsig_name),
    Field(json_schema_extra={"pattern": TSIG_NAME_PATTERN, "not": {"pattern": "\\.\\."}}),
]


# Each rule of spec_rules.py becomes the model validator of its model.


def _model_rule(rule: Callable[[Any, frozenset[str]], rules.Updates]) -> Any:
    """A model validator (after the fields) that runs ``rule``."""

    def validator(self: BaseModel) -> BaseModel:
        for name, value in (rule(self, frozenset(self.model_fields_set)) or {}).items():
            object.__setattr__(self, name, value)
        return self

    validator.__doc__ = rule.__doc__
    return model_validator(mode="after")(validator)


def _data_rule(rule: Callable[[Any], None]) -> Any:
    """A model validator (before the fields) that runs ``rule`` on the data as given."""

    def validator(cls: type[BaseModel], data: Any) -> Any:
        rule(data)
        return data

    validator.__doc__ = rule.__doc__
    return model_validator(mode="before")(classmethod(validator))  # type: ignore[arg-type]


_Value = TypeVar("_Value")


def _field_rule(field: str, rule: Callable[[_Value], _Value]) -> Any:
    """A field validator (after the field's own checks) that runs ``rule``."""

    def validator(cls: type[BaseModel], value: _Value) -> _Value:
        return rule(value)

    validator.__doc__ = rule.__doc__
    return field_validator(field)(classmethod(validator))


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
        check_strings(value)
        return value

    @model_validator(mode="after")
    def _extra_is_text_too(self) -> Any:
        """Extra keys (dns.octodns) obey the same rule of one line of text."""
        # Models that allow extra keys (octodns) keep them outside the fields.
        if self.__pydantic_extra__:
            check_strings(self.__pydantic_extra__)
        return self


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
    media_encryption: Literal["optional", "required"] = Field(
        default="optional",
        description=(
            "optional: guests who offer SRTP (SDES) get it, plain RTP callers too; required: "
            "every guest must offer SRTP, plain RTP offers are refused 488 over UDP and TCP "
            "too (Asterisk cannot tell the transport apart before it answers)"
        ),
    )


class WssTransport(_Model):
    """SIP over a secure WebSocket (RFC 7118) on Asterisk's HTTPS server, path ``/ws``."""

    port: Port = Field(
        default=8089, description="the HTTPS port of Asterisk's WebSocket server (http.conf)"
    )
    order: U16 = Field(default=40, description="NAPTR order (only with dns.naptr_websocket)")
    preference: U16 = Field(default=10, description="NAPTR preference (dns.naptr_websocket)")
    opus: Flag = Field(
        default=True,
        description="browsers talk Opus where the office phone has it too (passed through "
        "untouched), else ulaw/alaw through Asterisk's Opus transcoder "
        "(codec_opus_open_source, which plan checks); false: ulaw/alaw only",
    )


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

    _at_least_one = _model_rule(rules.at_least_one_transport)

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


IPv4 = Annotated[
    str,
    AfterValidator(check_ipv4),
    Field(json_schema_extra={"format": "ipv4", "pattern": IPV4_PATTERN}),
]
IPv6 = Annotated[
    str,
    AfterValidator(check_ipv6),
    Field(json_schema_extra={"format": "ipv6", "pattern": IPV6_PATTERN}),
]


class RingGroup(_Model):
    """The long form of a user: several phones at once, then a fallback."""

    ring: Annotated[tuple[Extension, ...], Field(min_length=1, max_length=50)] = Field(
        description="extensions dialled all at once, like [106, 107]"
    )
    timeout: Annotated[int, Whole(1, 600, SECONDS)] = Field(
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


def user_form(value: Any) -> str:
    """Which form of a user ``value`` is: the tag of its branch of the union."""
    return "ring group" if isinstance(value, dict | RingGroup) else "extension"


UserTarget = Annotated[
    Annotated[Extension, Tag("extension")] | Annotated[RingGroup, Tag("ring group")],
    Discriminator(user_form),
    Field(
        description=(
            "an extension (short form, like 105) or {ring: [106, 107], timeout: 20, fallback: 101}"
        ),
    ),
]


class Room(_Model):
    """A conference room (Asterisk ConfBridge) callers reach by its name."""

    max_members: Annotated[int, Whole(2, 1000)] = Field(
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

    _no_inline_secret = _data_rule(rules.no_inline_tsig_secret)
    _one_source = _model_rule(rules.one_tsig_source)


HostPort = Annotated[
    str,
    AfterValidator(check_hostport),
    Field(json_schema_extra={"pattern": HOSTPORT_PATTERN}),
]


OctodnsValue = Annotated[
    OctodnsScalar | list[OctodnsScalar] | dict[str, OctodnsScalar],
    BeforeValidator(check_octodns_value),
]


class Octodns(_Model):
    """octoDNS's own provider config: ``class`` plus the plugin's arguments (secrets as
    ``env/NAME``)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)
    __pydantic_extra__: dict[str, OctodnsValue] = Field(init=False)

    provider_class: str = Field(
        alias="class",
        description="the octoDNS provider class, e.g. octodns_route53.Route53Provider",
    )

    _class_path = _field_rule("provider_class", rules.octodns_class_path)
    _no_inline_secret = _model_rule(rules.octodns_no_inline_secret)
    _hosts = _model_rule(rules.octodns_hosts)

    def arguments(self) -> dict[str, OctodnsValue]:
        """The plugin's keyword arguments, as written (``env/NAME`` not yet resolved)."""
        return dict(self.__pydantic_extra__ or {})


# A spec names a program only by an entry of the host's profile (schemas/profiles.py): the
# programs themselves are the admin's, never a merge request's.
ProgramEntry = Annotated[
    str,
    AfterValidator(check_entry_name),
    Field(json_schema_extra={"pattern": ENTRY_NAME_PATTERN}),
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
    ttl: Annotated[int, Whole(1, 2147483647, SECONDS)] = Field(
        default=3600, description="TTL in seconds of every record sipctl writes"
    )
    naptr: Flag = Field(
        default=True, description="publish NAPTR records (SRV records are always published)"
    )
    timeout: Annotated[float, Wait(300)] = Field(
        default=5.0, description="seconds to wait for each DNS answer"
    )
    naptr_websocket: Flag = Field(
        default=False,
        description="also publish a SIPS+D2W NAPTR and its SRV for transports.wss (RFC 7118); "
        "for SIP gateways, browsers never query it",
    )
    file: str | None = Field(
        default=None,
        description="zone file (zonefile), relative to the spec; it and the files it "
        "$INCLUDEs must be in the spec's directory or one the runner profile's zone_files "
        "lists",
    )
    create_file: Flag = Field(
        default=False,
        description=(
            "zonefile: create dns.file with a minimal SOA and NS when it does not exist (its "
            "directory must exist); off, a missing file is an error at plan (a typo must not "
            "start a new zone)"
        ),
    )
    reload: ProgramEntry | None = Field(
        default=None,
        description="zonefile: the entry of the host profile's zone_reload (on the machine "
        "running sipctl) run after the zone file changed; default: its entry 'default', "
        "else nothing runs",
    )
    octodns: Octodns | None = Field(
        default=None,
        description="provider octodns: octoDNS's provider config (class plus its arguments)",
    )
    ensure: Ensure = _ensure_field()

    _provider_name = _field_rule("provider", rules.provider_name)
    _provider_needs = _model_rule(rules.provider_needs)


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
        description="known_hosts file the host key is checked against (never accepted "
        "blindly); under a runner profile or CI only ~/.ssh/known_hosts or a file the "
        "profile's known_hosts lists",
    )
    sudo: Flag = Field(default=False, description="run commands and writes through sudo -n")
    connect_timeout: Annotated[float, Wait(300)] = Field(
        default=10.0, description="seconds to wait for the SSH connection"
    )


AbsPath = Annotated[str, AfterValidator(check_abs_path), Field(json_schema_extra={"pattern": "^/"})]


# --- Asterisk ---------------------------------------------------------------------------------


class Rtp(_Model):
    start: Port = Field(
        default=10000, description="first UDP port of the media range (even, 1024 or above)"
    )
    end: Port = Field(default=20000, description="last UDP port of the media range")

    _range = _model_rule(rules.rtp_range)


class Acme(_Model):
    """sipctl obtains and renews the certificate itself: ACME (RFC 8555) with DNS-01
    challenges answered through the spec's own ``dns`` provider."""

    directory: Annotated[str, AfterValidator(check_acme_url)] = Field(
        default=LETS_ENCRYPT, description="the ACME server's directory URL"
    )
    email: Annotated[str, AfterValidator(check_email)] | None = Field(
        default=None, description="contact for the ACME account (expiry warnings)"
    )
    renew_days: Annotated[int, Whole(1, 365, "days")] = Field(
        default=30, description="renew when fewer days are left (or the names changed)"
    )
    ca_file: str | None = Field(
        default=None,
        description="CA bundle to trust for the ACME server's own HTTPS (a private ACME "
        "server); a file on the machine running sipctl, relative to the spec; under a "
        "runner profile or CI only a file the profile's acme_ca_files lists",
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

    _two_files = _model_rule(rules.two_tls_files)


_TARGET_HELP = (
    "where the layer lives: local, dir:PATH, or ssh://[user@]host[:port]; under a runner "
    "profile or CI a dir: directory must be in the spec's directory or the profile's "
    "dir_targets, and a local layer must be one of the profile's local_layers and its "
    "paths in its local_paths (neither inside a .git directory)"
)


class Asterisk(_Model):
    target: Target = Field(default="local", description=_TARGET_HELP)
    ssh: Ssh = Field(default=Ssh.model_construct(), description="how to reach an ssh:// target")
    channel: Literal["pjsip", "sip"] = Field(
        default="pjsip", description="pjsip, or sip (chan_sip, Asterisk 20 and older)"
    )
    config_dir: AbsPath = Field(
        default="/etc/asterisk", description="Asterisk's configuration directory on the target"
    )
    program: ProgramEntry | None = Field(
        default=None,
        description="the entry of the host profile's asterisk programs that reaches Asterisk "
        "(e.g. one that runs 'docker exec pbx asterisk'); default: its entry 'default', else "
        "the stock 'asterisk'",
    )
    manage_transports: Flag = Field(
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
    unknown_callers: Literal["reject", "not-found", "challenge"] = Field(
        default="reject",
        description=(
            "reject: log, play reject_sound, hang up; not-found: Asterisk answers 404; "
            "challenge: guests reach the declared names only, and anything else is asked for "
            "a password (401) like an office phone's extension, so no scan (sipvicious "
            "svwar) tells the internal extensions from unknown ones; no reject sound, no "
            "'Wrong call' line"
        ),
    )
    route: Literal["dial", "goto"] = Field(
        default="dial",
        description=(
            "dial: Dial(PJSIP/<extension>); goto: Goto(<local_context>,<extension>,1): the "
            "guest then runs the admin's own steps of that extension there, so no Dial option "
            "T, t, K or k (transfer or park by keypad) may be reachable from it, and no pattern "
            "(_X.) may match it or lend it later priorities (sipctl docs calls)"
        ),
    )
    dial_timeout: Annotated[int, Whole(1, 600, SECONDS)] = Field(
        default=30,
        description=(
            "route: dial: seconds a declared name's phone rings before the caller hears "
            "unavailable_sound (every Dial has a limit: a guest who never hangs up cannot keep "
            "a phone ringing); a ring group's own timeout applies to it instead"
        ),
    )
    rtp: Rtp = Field(
        default=Rtp.model_construct(), description="the UDP port range for media (rtp.conf)"
    )
    video: Flag = Field(
        default=False,
        description=(
            "true: guests and rooms may send and receive video (vp8, h264) beside audio; "
            "false: a video offer is answered audio-only"
        ),
    )
    tls: TlsFiles | None = Field(default=None, description="certificate and key for transports.tls")
    server_header: ServerHeader = Field(
        default="no-version",
        description=(
            "what the PBX calls itself in Server/User-Agent (pjsip.conf [global] user_agent, "
            "edited in place). no-version: the admin's text stays unless it carries a version "
            "number (Asterisk's own default, 'Asterisk PBX 22.x', does), which sipctl "
            "replaces with 'PBX'; unmanaged: left to the admin; any other text: exactly that"
        ),
    )
    ensure: Ensure = _ensure_field()

    _contexts_differ = _model_rule(rules.contexts_differ)

    @property
    def sound_when_unavailable(self) -> str:
        """The sound a declared name's caller hears when nobody answers."""
        return self.unavailable_sound or self.reject_sound


# --- firewall ---------------------------------------------------------------------------------


PortSpec = Annotated[
    str,
    AfterValidator(check_portspec),
    Field(json_schema_extra={"pattern": PORTSPEC_PATTERN}),
]


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
    allow_ping: Flag = Field(default=True, description="accept ICMP echo requests")
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
    confirm_seconds: Annotated[int, Whole(5, 3600, SECONDS)] = Field(
        default=30,
        description="new rules are rolled back unless a fresh connection confirms them in time",
    )
    ensure: Ensure = _ensure_field()

    _persist_default = _model_rule(rules.persist_default)


# --- fail2ban ---------------------------------------------------------------------------------


IgnoredNetwork = Annotated[str, AfterValidator(check_ignored_network)]


class Fail2ban(_Model):
    enabled: Flag = Field(default=True, description="false: the jail is written but disabled")
    sshd: Flag = Field(
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
    program: ProgramEntry | None = Field(
        default=None,
        description="the entry of the host profile's fail2ban programs that runs "
        "fail2ban-client; default: its entry 'default', else the stock 'fail2ban-client'",
    )
    # Asterisk 22's stock logger.conf: messages.log => notice,warning,error
    logpath: AbsPath = Field(
        default="/var/log/asterisk/messages.log",
        description="the Asterisk log the jail watches (must be the file Asterisk logs to)",
    )
    maxretry: Annotated[int, Whole(1, 1000)] = Field(
        default=5, description="rejected calls within findtime that get an address banned"
    )
    findtime: Annotated[int, Whole(1, 31536000, SECONDS)] = Field(
        default=600, description="seconds in which maxretry rejected calls are counted"
    )
    bantime: Annotated[int, Whole(-1, 315360000, SECONDS)] = Field(
        default=3600, description="seconds an address stays banned (-1: for ever)"
    )
    ignoreip: tuple[IgnoredNetwork, ...] = Field(
        default=(), description="addresses or networks (CIDR) never banned; loopback always is"
    )

    _ignoreip = _field_rule("ignoreip", rules.ignoreip_leaves_someone)


# --- WebRTC ---------------------------------------------------------------------------------


Publish = Annotated[str, AfterValidator(check_publish)]


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
        "(or when publish is removed) is taken down; under a runner profile or CI a dir: "
        "or local: place must be allowed by it (dir_targets; local_paths, and webrtc in "
        "local_layers)",
    )


# --- calls out ----------------------------------------------------------------------------------


class Outbound(_Model):
    allow: tuple[Hostname, ...] = Field(
        default=(),
        description="only these domains may be called (exact names); empty: any domain",
    )
    deny: tuple[Hostname, ...] = Field(
        default=(), description="these domains may never be called (exact names)"
    )


# --- business cards ---------------------------------------------------------------------------

CardText = Annotated[str, Field(min_length=1, max_length=200)]


class Cards(_Model):
    organization: CardText | None = Field(
        default=None, description="the organization on every card (vCard ORG)"
    )
    names: dict[UserName, CardText] = Field(
        default_factory=dict,
        description=(
            "the name a card shows (vCard FN) per user or room, like director: Anna Petrova; "
            "default: the name itself"
        ),
    )


# --- hosting ---------------------------------------------------------------------------------

# A PBX host's name, as its customers' files name it (``host: pbx1``).
HostName = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="a host's name: pbx1")
]


class Hosting(_Model):
    """This file is a PBX host's: its transports, servers, asterisk, firewall and fail2ban
    serve the customer files of its directory that name it (``host: <name>``)."""

    name: HostName = Field(description="the name customer files give as their 'host'")
    local_contexts: dict[Hostname, ContextName] | None = Field(
        default=None,
        description=(
            "customer domain -> the dialplan context its phones are in: a customer file's "
            "local_context must be the one bound to its domain, and a customer not listed is "
            "refused. Left out: each customer file chooses its own context (any but the "
            "host's entry context and sipctl's own)"
        ),
    )

    _bindings = _data_rule(rules.one_binding_per_customer)

    @cached_property
    def bound_contexts(self) -> dict[str, tuple[str, str]]:
        """``local_contexts`` by each domain as the host's dialplan tells customers apart
        (``dialplan_domain``): (the domain as listed, its context). Made once per host file
        loaded, not once per customer checked against it (1,000 customers: 0.15 s)."""
        from sipctl.schemas.hosting import dialplan_domain

        listed = self.local_contexts or {}
        return {dialplan_domain(d): (d, c) for d, c in listed.items()}


# --- the spec ---------------------------------------------------------------------------------


class Spec(_Model):
    """A whole sipctl spec, version 1."""

    version: FormatVersion = Field(description="the spec format; 1 is the only one so far")
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
        description=(
            "who an unauthenticated caller may reach: name -> extension or ring group; "
            "callers may write a name in any case (Director rings director)"
        ),
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
        default=None,
        description=(
            "the click-to-call page; needs transports.wss. In a customer file only its "
            "page: the host's file publishes it under its web root, in a directory named "
            "by the customer's domain"
        ),
    )
    outbound: Outbound | None = Field(
        default=None,
        description=(
            "the office phones (asterisk.local_context) may call any SIP address, "
            "sip:alex@other.example: Asterisk finds the other side by NAPTR, SRV and A/AAAA "
            "(RFC 3263; needs res_resolver_unbound) and calls as <name>@<domain>; guests never "
            "can. Left out: no calls out"
        ),
    )
    hosting: Hosting | None = Field(
        default=None,
        description=(
            "this file is a PBX host's: it serves every customer file of its directory "
            "whose 'host' is hosting.name; guest calls are routed by the called domain"
        ),
    )
    host: HostName | None = Field(
        default=None,
        description=(
            "this file is a customer's of the PBX host whose hosting.name this is (a file "
            "of the same directory): the host's transports, servers and asterisk serve it"
        ),
    )
    local_context: ContextName | None = Field(
        default=None,
        description=(
            "with 'host': the dialplan context of this customer's own phones; a user's "
            "extension is dialled there, so customers may share extension numbers"
        ),
    )
    cards: Cards | None = Field(
        default=None,
        description=(
            "what the business cards say: 'sipctl render --dir' writes a vCard and a QR code "
            "(SVG, PNG; QR codes need sipctl[cards]) of every user's and room's SIP address, "
            "and cards/index.html to print or publish; left out: cards show the names"
        ),
    )

    _consistent = _model_rule(rules.spec_consistent)
    _challenge = _model_rule(rules.challenge_alone)
    _hosting = _model_rule(rules.hosting_roles)
    _dns_names_fit = _model_rule(rules.dns_names_fit)
    # With 'hosting': the customer files of its directory that name it (schemas/hosting.py).
    _customers: tuple[Spec, ...] = PrivateAttr(default=())

    @property
    def customers(self) -> tuple[Spec, ...]:
        return self._customers

    # With 'host': the host file beside it that serves it (schemas/hosting.py).
    _served_by: Spec | None = PrivateAttr(default=None)

    @property
    def served_by(self) -> Spec | None:
        return self._served_by

    def with_host(self, host: Spec, update: dict[str, object]) -> Spec:
        """This customer spec served by ``host``, with ``update`` (the host's transports,
        servers) applied."""
        copy = self.model_copy(update=update)
        copy._served_by = host
        return copy

    def with_customers(self, customers: tuple[Spec, ...]) -> Spec:
        """This host spec serving ``customers`` (sorted by domain)."""
        copy = self.model_copy()
        copy._customers = tuple(sorted(customers, key=lambda c: c.domain))
        return copy

    @property
    def zone(self) -> str:
        """The DNS zone the domain's records live in (no trailing dot, lower case)."""
        if self.dns is not None and self.dns.zone is not None:
            return self.dns.zone
        return self.domain

    def webrtc_host(self) -> str | None:
        """The host browsers connect to: ``webrtc.host``, else the first server (a host's
        customer: its host's)."""
        if self._served_by is not None:
            return self._served_by.webrtc_host()
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

    # How each layer logs in to an ssh:// target: its own ssh, else asterisk's (the one
    # rule every provider, lock, binding and place check follows).
    def firewall_ssh(self) -> Ssh | None:
        if self.firewall is not None and self.firewall.ssh is not None:
            return self.firewall.ssh
        return self.asterisk.ssh if self.asterisk is not None else None

    def fail2ban_ssh(self) -> Ssh | None:
        if self.fail2ban is not None and self.fail2ban.ssh is not None:
            return self.fail2ban.ssh
        return self.asterisk.ssh if self.asterisk is not None else None

    def publish_ssh(self, target: str) -> Ssh | None:
        """The page's login to ``target`` (webrtc.publish's): asterisk.ssh on the PBX's own
        host only, since a key for the PBX is not one for a web server elsewhere."""
        from sipctl.schemas.targets import parse_target

        if self.asterisk is None:
            return None
        same_host = parse_target(self.asterisk.target).key == parse_target(target).key
        return self.asterisk.ssh if same_host else None
