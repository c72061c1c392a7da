"""What a spec's objects do and the rules that span a model's fields, without pydantic.

The pydantic models of ``spec.py`` are the authority of the spec (the JSON Schema,
docs/spec.md and every error message), but importing pydantic costs more than half of a
no-op plan. So a spec is built by one of two makers that share everything here:

- ``spec.py``'s models, which inherit the methods below (mixins) and run the rules below
  as their model validators;
- ``spec_fast.py``, generated from those models by ``python -m sipctl.schemas.fast_gen``,
  whose plain classes inherit the same mixins and whose checker calls the same rules and
  the same value checks (``values.py``, ``names.py``, ``targets.py``).

A rule takes the object (with every field validated) and the names of the fields the spec
gave, raises ValueError with the message a human reads, and returns the fields it sets
(a default that depends on another field), or None.

The mixins declare their fields for the type checker only: statically, every spec object is
the pydantic model (spec_fast.py's twins are cast once, where the loader builds them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sipctl.schemas.values import DEFAULT_PERSIST, NFTABLES_MAIN_FILE, TRANSPORT_PROTOCOL

if TYPE_CHECKING:
    from sipctl.schemas.spec import (
        Asterisk,
        Dns,
        Fail2ban,
        Firewall,
        OctodnsValue,
        RingGroup,
        Room,
        Server,
        TcpTransport,
        TlsTransport,
        Transports,
        UdpTransport,
        Webrtc,
        WssTransport,
    )

Updates = Mapping[str, object] | None

# --- methods of the spec's objects ------------------------------------------------------------


class TransportsMixin:
    __slots__ = ()
    if TYPE_CHECKING:
        udp: UdpTransport | None
        tcp: TcpTransport | None
        tls: TlsTransport | None
        wss: WssTransport | None

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


class RingGroupMixin:
    __slots__ = ()
    if TYPE_CHECKING:
        ring: tuple[str, ...]
        timeout: int
        fallback: str | None

    def extensions(self) -> tuple[str, ...]:
        """Every extension this user may ring, in order (ring first, then the fallback)."""
        return (*self.ring, *((self.fallback,) if self.fallback is not None else ()))


def user_form(value: Any) -> str:
    """Which form of a user ``value`` is: the tag of its branch of the union."""
    return "ring group" if isinstance(value, dict | RingGroupMixin) else "extension"


class AsteriskMixin:
    __slots__ = ()
    if TYPE_CHECKING:
        target: str
        reject_sound: str
        unavailable_sound: str | None

    @property
    def sound_when_unavailable(self) -> str:
        """The sound a declared name's caller hears when nobody answers."""
        return self.unavailable_sound or self.reject_sound


class OctodnsMixin:
    __slots__ = ()
    if TYPE_CHECKING:
        provider_class: str
        __pydantic_extra__: dict[str, OctodnsValue] | None

    def arguments(self) -> dict[str, OctodnsValue]:
        """The plugin's keyword arguments, as written (``env/NAME`` not yet resolved)."""
        return dict(self.__pydantic_extra__ or {})


class SpecMixin:
    __slots__ = ()
    if TYPE_CHECKING:
        domain: str
        transports: Transports
        servers: tuple[Server, ...]
        users: dict[str, str | RingGroup]
        rooms: dict[str, Room]
        dns: Dns | None
        asterisk: Asterisk | None
        firewall: Firewall | None
        fail2ban: Fail2ban | None
        webrtc: Webrtc | None

    @property
    def zone(self) -> str:
        """The DNS zone the domain's records live in (no trailing dot, lower case)."""
        if self.dns is not None and self.dns.zone is not None:
            return self.dns.zone
        return self.domain

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


# --- rules over a model's fields --------------------------------------------------------------


def at_least_one_transport(transports: Any, given: frozenset[str]) -> Updates:
    """At least one transport is enabled."""
    if transports.udp is None and transports.tcp is None and transports.tls is None:
        raise ValueError("enable at least one transport (udp, tcp or tls)")
    return None


def no_inline_tsig_secret(data: Any) -> None:
    """No inline TSIG `secret`: secret_env or secret_file only."""
    if isinstance(data, dict) and "secret" in data:
        raise ValueError(
            "an inline 'secret' is not allowed: a spec lives in git, secrets do not. "
            "Put the secret in an environment variable and name it with 'secret_env', "
            "or in a file named by 'secret_file'"
        )


_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def one_tsig_source(tsig: Any, given: frozenset[str]) -> Updates:
    """Exactly one of tsig.secret_env and tsig.secret_file is given."""
    if (tsig.secret_env is None) == (tsig.secret_file is None):
        raise ValueError("give exactly one of secret_env or secret_file")
    if tsig.secret_env is not None and not _ENV_NAME_RE.fullmatch(tsig.secret_env):
        raise ValueError(f"{tsig.secret_env!r} is not an environment variable name")
    return None


def provider_name(value: str) -> str:
    """dns.provider is a plugin name: lower-case letters, digits, '_' and '-'."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", value):
        raise ValueError(f"{value!r} is not a provider name (like rfc2136 or zonefile)")
    return value


def provider_needs(dns: Any, given: frozenset[str]) -> Updates:
    """rfc2136 needs dns.server and takes no file or reload_command; zonefile needs
    dns.file and takes no server or tsig."""
    if dns.provider == "rfc2136":
        if dns.server is None:
            raise ValueError("provider rfc2136 needs 'server' (the primary, like 192.0.2.53:53)")
        if dns.file is not None or dns.reload_command is not None:
            raise ValueError("'file' and 'reload_command' belong to provider zonefile")
    if dns.provider == "zonefile":
        if dns.file is None:
            raise ValueError("provider zonefile needs 'file' (the zone file to manage)")
        if dns.server is not None or dns.tsig is not None:
            raise ValueError("'server' and 'tsig' belong to provider rfc2136")
    if dns.provider == "octodns":
        if dns.octodns is None:
            raise ValueError(
                "provider octodns needs 'octodns' (octoDNS's provider config: class and "
                "its arguments, like class: octodns_route53.Route53Provider)"
            )
        if dns.server is not None or dns.tsig is not None or dns.file is not None:
            raise ValueError(
                "'server', 'tsig' and 'file' do not apply to provider octodns: its "
                "plugin's own arguments go under 'octodns'"
            )
    elif dns.octodns is not None:
        raise ValueError("'octodns' belongs to provider octodns (set provider: octodns)")
    return None


_OCTODNS_CLASS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
# An argument whose name says it holds a credential must name an environment variable
# (``env/NAME``), exactly as octoDNS's own config does: a spec lives in git, secrets do not.
_SECRET_KEY_RE = re.compile(r"key|secret|token|passw|credential|auth|private", re.IGNORECASE)
_OCTODNS_ENV_RE = re.compile(r"env/[A-Za-z_][A-Za-z0-9_]*")


def octodns_class_path(value: str) -> str:
    """dns.octodns.class is a class path (module.Class)."""
    if not _OCTODNS_CLASS_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a class path (module.Class, like octodns_route53.Route53Provider)"
        )
    return value


def octodns_no_inline_secret(octodns: Any, given: frozenset[str]) -> Updates:
    """dns.octodns has no 'id' and no inline credential: a key that names a secret takes
    env/NAME."""
    for key, value in octodns.arguments().items():
        if key == "id":
            raise ValueError("'id' is set by sipctl (the zone's provider id); remove it")
        if not _SECRET_KEY_RE.search(key) or isinstance(value, bool):
            continue
        if not (isinstance(value, str) and _OCTODNS_ENV_RE.fullmatch(value)):
            raise ValueError(
                f"{key}: an inline credential is not allowed: a spec lives in git, secrets "
                f"do not. Put it in an environment variable and write {key}: env/NAME"
            )
    return None


def rtp_range(rtp: Any, given: frozenset[str]) -> Updates:
    """rtp.start is even, 1024 or above, and below rtp.end."""
    if rtp.start >= rtp.end:
        raise ValueError(f"rtp.start ({rtp.start}) must be below rtp.end ({rtp.end})")
    if rtp.start % 2:
        raise ValueError(f"rtp.start ({rtp.start}) must be even: RTP uses even ports, RTCP odd")
    if rtp.start < 1024:
        raise ValueError(f"rtp.start ({rtp.start}) must be 1024 or above")
    return None


def two_tls_files(tls: Any, given: frozenset[str]) -> Updates:
    """asterisk.tls.cert_file and key_file are two different files."""
    if tls.cert_file == tls.key_file:
        raise ValueError("cert_file and key_file must be two different files")
    return None


def contexts_differ(asterisk: Any, given: frozenset[str]) -> Updates:
    """asterisk.guest_context and asterisk.local_context differ."""
    if asterisk.guest_context == asterisk.local_context:
        raise ValueError(
            "guest_context and local_context must differ: unauthenticated callers must "
            "never land in the context of the internal phones"
        )
    return None


def persist_default(firewall: Any, given: frozenset[str]) -> Updates:
    """persist left out is the backend's default file (null: none), and never the
    distribution's main /etc/nftables.conf (include sipctl's file from it instead)."""
    if "persist" not in given:
        return {"persist": DEFAULT_PERSIST[firewall.backend]}
    if firewall.persist == NFTABLES_MAIN_FILE:
        include = DEFAULT_PERSIST["nftables"]
        raise ValueError(
            f"persist: {NFTABLES_MAIN_FILE} is the distribution's own nftables file (it "
            "flushes the whole rule set at boot and holds the admin's rules); let sipctl "
            f"write its own file, e.g. persist: {include}, and add the line "
            f'include "{include}" to {NFTABLES_MAIN_FILE}'
        )
    return None


def spec_consistent(spec: Any, given: frozenset[str]) -> Updates:
    """The domain lies inside dns.zone; no server host is listed twice."""
    zone = spec.zone
    if spec.domain != zone and not spec.domain.endswith("." + zone):
        raise ValueError(f"domain {spec.domain} is not inside dns.zone {zone}")
    hosts = [s.host for s in spec.servers]
    duplicates = sorted({h for h in hosts if hosts.count(h) > 1})
    if duplicates:
        raise ValueError(f"servers: host {duplicates[0]} is listed twice")
    return None


# --- the generated checker's objects ----------------------------------------------------------


class FastModel:
    """The base of spec_fast.py's objects: immutable, its fields in ``_fields`` (declaration
    order, as pydantic keeps them), then, for a model that takes keys beyond its fields
    (``_extra``), those keys in ``__pydantic_extra__`` as pydantic keeps them. Equal when of
    one class with equal values. It answers the few pydantic methods sipctl and its tests
    call on a spec (model_dump, model_copy)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _extra = False

    def __init__(self, *values: object) -> None:
        for name, value in zip(self._names(), values, strict=True):
            object.__setattr__(self, name, value)

    def _names(self) -> tuple[str, ...]:
        return (*self._fields, "__pydantic_extra__") if self._extra else self._fields

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in self._names())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(_hashable(v) for v in self._values())))

    def __reduce__(self) -> tuple[type[FastModel], tuple[object, ...]]:
        # pickle and copy build the object again from its values (not by setting them)
        return type(self), self._values()

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._names())
        return f"{type(self).__name__}({shown})"

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        """The fields (then the extra keys) as plain data, nested objects too
        (``mode="json"``: tuples as lists)."""
        fields = {n: _dump(getattr(self, n), mode) for n in self._fields}
        extra = getattr(self, "__pydantic_extra__", None) or {}
        return {**fields, **{k: _dump(v, mode) for k, v in extra.items()}}

    def model_copy(self, *, update: Mapping[str, object] | None = None) -> Any:
        """A copy with ``update``'s fields replaced, unchecked (as pydantic's model_copy)."""
        changed = {**dict(zip(self._names(), self._values(), strict=True)), **(update or {})}
        return type(self)(*(changed[n] for n in self._names()))


def _dump(value: object, mode: str) -> object:
    if isinstance(value, FastModel):
        return value.model_dump(mode=mode)
    if isinstance(value, dict):
        return {k: _dump(v, mode) for k, v in value.items()}
    if isinstance(value, tuple | list):
        items = [_dump(v, mode) for v in value]
        return items if mode == "json" or isinstance(value, list) else tuple(items)
    return value


def _hashable(value: object) -> object:
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value
