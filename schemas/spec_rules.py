"""The rules of a spec that span a model's fields, as plain functions.

``spec.py``'s pydantic models run each of them as a model (or field) validator. A rule takes
the object (with every field validated) and the names of the fields the spec gave, raises
ValueError with the message a human reads, and returns the fields it sets (a default that
depends on another field), or None. The checks of single values live beside them in
``values.py``, ``names.py`` and ``targets.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sipctl.schemas.names import MAX_DNS_NAME, MAX_EXTENSION_LENGTH, check_connect_host
from sipctl.schemas.values import DEFAULT_PERSIST, NFTABLES_MAIN_FILE

if TYPE_CHECKING:
    from sipctl.schemas.spec import (
        Asterisk,
        Dns,
        Firewall,
        Octodns,
        Rtp,
        Spec,
        TlsFiles,
        Transports,
        Tsig,
    )

Updates = Mapping[str, object] | None


class KeyProblem(ValueError):
    """A rule's refusal that is about one key of the object it checks: the loader reports
    it at that key's line, not at the object's."""

    def __init__(self, key: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key = key


def at_least_one_transport(transports: Transports, given: frozenset[str]) -> Updates:
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


def one_tsig_source(tsig: Tsig, given: frozenset[str]) -> Updates:
    """Exactly one of tsig.secret_env and tsig.secret_file is given."""
    if (tsig.secret_env is None) == (tsig.secret_file is None):
        raise ValueError("give exactly one of secret_env or secret_file")
    if tsig.secret_env is not None and not _ENV_NAME_RE.fullmatch(tsig.secret_env):
        # not quoted back: a value here that is no name is most often the secret itself
        raise ValueError(
            "secret_env is not an environment variable name (letters, digits and '_', not "
            "starting with a digit); its value is not shown here. If it is the secret itself, "
            "take it out of the spec and the repository's history and make a new key"
        )
    return None


def provider_name(value: str) -> str:
    """dns.provider is a plugin name: lower-case letters, digits, '_' and '-'."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", value):
        raise ValueError(f"{value!r} is not a provider name (like rfc2136 or zonefile)")
    return value


def provider_needs(dns: Dns, given: frozenset[str]) -> Updates:
    """rfc2136 needs dns.server and takes no file or reload; zonefile needs
    dns.file and takes no server or tsig."""
    if dns.provider == "rfc2136":
        if dns.server is None:
            raise ValueError("provider rfc2136 needs 'server' (the primary, like 192.0.2.53:53)")
        if dns.file is not None or dns.reload is not None:
            raise ValueError("'file' and 'reload' belong to provider zonefile")
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
# Its name says so when the one rule of secret names says so (secret_names.secret_name: the
# console's scrub and the read gate, which hide pass, pwd, pin, passphrase, ...), or when it
# names a key, token, credential, auth or private thing anywhere in it (octoDNS plugins'
# access_key_id, Authorization, auth_id).
_SECRET_KEY_RE = re.compile(r"key|secret|token|passw|credential|auth|private", re.IGNORECASE)


def _names_a_secret(key: str) -> bool:
    from sipctl.secret_names import secret_name

    return secret_name(key) or _SECRET_KEY_RE.search(key) is not None


_OCTODNS_ENV_RE = re.compile(r"env/[A-Za-z_][A-Za-z0-9_]*")


def octodns_class_path(value: str) -> str:
    """dns.octodns.class is a class path (module.Class)."""
    if not _OCTODNS_CLASS_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a class path (module.Class, like octodns_route53.Route53Provider)"
        )
    return value


def octodns_no_inline_secret(octodns: Octodns, given: frozenset[str]) -> Updates:
    """dns.octodns has no 'id' and no inline credential: a key that names a secret takes
    env/NAME, at any depth (a mapping's keys too: headers: {X-API-Key: env/NAME}), and no
    value holds a URL's password."""
    from sipctl.output import password_masked

    arguments = octodns.arguments()
    if "id" in arguments:
        raise ValueError("'id' is set by sipctl (the zone's provider id); remove it")
    for key, value in _octodns_leaves(arguments):
        if isinstance(value, str) and password_masked(value) != value:
            raise ValueError(
                f"{key}: a URL with a password is an inline credential, which a spec does "
                "not hold (it lives in git): write the URL without 'user:password@' and give "
                "the password as its own argument, as env/NAME"
            )
        if not _names_a_secret(key.rsplit(".", 1)[-1]) or isinstance(value, bool):
            continue
        if not (isinstance(value, str) and _OCTODNS_ENV_RE.fullmatch(value)):
            raise ValueError(
                f"{key}: an inline credential is not allowed: a spec lives in git, secrets "
                f"do not. Put it in an environment variable and write {key}: env/NAME"
            )
    return None


# An octoDNS argument that names a host the plugin connects to: by its key (host, server,
# endpoint, api_host, nameservers...) or by its value (a URL: scheme://host...).
_OCTODNS_HOST_KEY_RE = re.compile(
    r"(?:.*[_-])?(?:host|hostname|hosts|server|servers|endpoint|endpoints|nameservers?)",
    re.IGNORECASE,
)
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def octodns_hosts(octodns: Octodns, given: frozenset[str]) -> Updates:
    """The hosts dns.octodns names (its host, server and endpoint arguments, every URL's
    host) are names of DNS labels or IPv4 addresses in their one spelling, as dns.server's
    are: ``0x7f000001`` and ``127.1``, which the resolver reads as 127.0.0.1, are refused."""
    for key, value in _octodns_leaves(octodns.arguments()):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads host: 0x7f000001 as a number: the plugin's host
        if not isinstance(value, str) or _OCTODNS_ENV_RE.fullmatch(value):
            continue
        if _URL_RE.match(value):
            host = _url_host(value)
        elif _OCTODNS_HOST_KEY_RE.fullmatch(key.rsplit(".", 1)[-1]):
            host = _plain_host(value)
        else:
            continue
        if host is None:
            continue
        try:
            check_connect_host(host)
        except ValueError as error:
            raise ValueError(f"{key}: the host of {value!r}: {error}") from None
    return None


def _url_host(url: str) -> str | None:
    """The host of a URL as written (None: an IPv6 address in brackets, or none)."""
    from urllib.parse import urlsplit

    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return None
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return None
    return host.partition(":")[0] or None


def _plain_host(value: str) -> str | None:
    """A host argument's host: ``HOST`` or ``HOST:PORT`` (None: an IPv6 address)."""
    import ipaddress

    try:
        ipaddress.IPv6Address(value.strip("[]"))
    except ValueError:
        pass
    else:
        return None
    if value.startswith("["):
        return None
    host = value.rpartition(":")[0] if value.count(":") == 1 else value
    return host or None


def _octodns_leaves(arguments: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Each argument's value by its dotted key (a mapping's entries as ``key.entry``; a list
    whole, under its key, and each of its items too)."""
    leaves: list[tuple[str, Any]] = []
    for key, value in arguments.items():
        if isinstance(value, Mapping):
            leaves.extend((f"{key}.{entry}", item) for entry, item in value.items())
        else:
            leaves.append((key, value))
            if isinstance(value, list):
                leaves.extend((key, item) for item in value if isinstance(item, str | int))
    return leaves


def rtp_range(rtp: Rtp, given: frozenset[str]) -> Updates:
    """rtp.start is even, 1024 or above, and below rtp.end."""
    if rtp.start >= rtp.end:
        raise ValueError(f"rtp.start ({rtp.start}) must be below rtp.end ({rtp.end})")
    if rtp.start % 2:
        raise ValueError(f"rtp.start ({rtp.start}) must be even: RTP uses even ports, RTCP odd")
    if rtp.start < 1024:
        raise ValueError(f"rtp.start ({rtp.start}) must be 1024 or above")
    return None


def two_tls_files(tls: TlsFiles, given: frozenset[str]) -> Updates:
    """asterisk.tls.cert_file and key_file are two different files."""
    if tls.cert_file == tls.key_file:
        raise ValueError("cert_file and key_file must be two different files")
    return None


def contexts_differ(asterisk: Asterisk, given: frozenset[str]) -> Updates:
    """asterisk.guest_context and asterisk.local_context differ."""
    if asterisk.guest_context == asterisk.local_context:
        raise ValueError(
            "guest_context and local_context must differ: unauthenticated callers must "
            "never land in the context of the internal phones"
        )
    return None


def persist_default(firewall: Firewall, given: frozenset[str]) -> Updates:
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


# What only a PBX host's file may manage: a customer file (``host``) names the host instead.
HOST_SECTIONS = ("asterisk", "firewall", "fail2ban", "outbound")
# Of webrtc, a customer file has its page (title, names); where browsers connect and the web
# root its page is published under are the host's.
HOST_WEBRTC_KEYS = ("host", "publish")


def one_binding_per_customer(data: Any) -> None:
    """hosting.local_contexts names each customer once, as the host's dialplan tells
    domains apart (case, a trailing dot and '-' ignored): two spellings of one domain
    would otherwise be merged silently, one of their contexts lost."""
    from sipctl.schemas.hosting import dialplan_domain

    bindings = data.get("local_contexts") if isinstance(data, dict) else None
    if not isinstance(bindings, dict):
        return
    first: dict[str, str] = {}
    for domain in bindings:
        if not isinstance(domain, str):
            continue  # the field's own check says what a domain is
        other = first.setdefault(dialplan_domain(domain), domain)
        if other != domain:
            raise KeyProblem(
                ("local_contexts", domain),
                f"{domain} is to the host's dialplan (case, a trailing dot and '-' ignored) "
                f"the same customer as {other}, listed before it; bind each customer once",
            )


def hosting_roles(spec: Spec, given: frozenset[str]) -> Updates:
    """A file is a host's (``hosting``), a customer's (``host``), or both at once (neither:
    the single-company spec). A customer file owns its domain's names, rooms, DNS and page
    (``webrtc.page``); the host's parts are the host file's."""
    if spec.hosting is not None and spec.host is not None:
        raise KeyProblem(
            ("host",),
            "a file is a host's (hosting) or a customer's (host), not both; "
            "leave both out for one company's PBX",
        )
    if spec.host is None:
        if spec.local_context is not None:
            raise KeyProblem(
                ("local_context",),
                "local_context belongs to a customer file (with 'host'); "
                "one company's spec sets asterisk.local_context",
            )
        if spec.hosting is not None and spec.asterisk is None:
            raise KeyProblem(("hosting",), "a host file (hosting) needs an asterisk section")
        if spec.hosting is not None and (spec.users or spec.rooms):
            raise KeyProblem(
                ("users",) if spec.users else ("rooms",),
                "a host file (hosting) has no users or rooms: they belong to customer files",
            )
        if spec.hosting is not None and spec.webrtc and "page" in spec.webrtc.model_fields_set:
            raise KeyProblem(
                ("webrtc", "page"),
                "a host file (hosting) has no page of its own: webrtc.page belongs to each "
                "customer's file (the host's webrtc says where pages go: host, publish)",
            )
        return None
    for key in HOST_SECTIONS:
        if getattr(spec, key) is not None:
            raise KeyProblem(
                (key,),
                f"{key} belongs to the host's file (hosting.name: {spec.host}), "
                "not to a customer file; leave it out here",
            )
    for key in HOST_WEBRTC_KEYS:
        if spec.webrtc is not None and getattr(spec.webrtc, key) is not None:
            raise KeyProblem(
                ("webrtc", key),
                f"webrtc.{key} belongs to the host's file (hosting.name: {spec.host}): a "
                "customer's page is published under the host's webrtc.publish, in a "
                "directory named by its domain; give only webrtc.page here",
            )
    if len(spec.domain) > MAX_EXTENSION_LENGTH:
        raise KeyProblem(
            ("domain",),
            f"a customer's domain is an extension of its host's dialplan, and Asterisk keeps "
            f"{MAX_EXTENSION_LENGTH} characters of one: {spec.domain} has {len(spec.domain)}, "
            "so every call to it would be a wrong call; serve this domain as one company's "
            "spec (leave out host) on a PBX of its own",
        )
    if spec.local_context is None:
        raise KeyProblem(
            ("host",),
            "a customer file (host) needs local_context: the dialplan context of its own "
            "phones, where its users' extensions are dialled",
        )
    return None


def spec_consistent(spec: Spec, given: frozenset[str]) -> Updates:
    """The domain lies inside dns.zone; no server host is listed twice."""
    zone = spec.zone
    if spec.domain != zone and not spec.domain.endswith("." + zone):
        raise ValueError(f"domain {spec.domain} is not inside dns.zone {zone}")
    hosts = [s.host for s in spec.servers]
    duplicates = sorted({h for h in hosts if hosts.count(h) > 1})
    if duplicates:
        raise ValueError(f"servers: host {duplicates[0]} is listed twice")
    return None


def dns_names_fit(spec: Spec, given: frozenset[str]) -> Updates:
    """The domain and the servers' hosts inside the zone leave room for the labels sipctl
    writes before them (``_sipctl-state.<domain>``, ``_sipctl-claim.<host>``, with acme
    ``_acme-challenge.<name>``): a DNS name has at most 253 characters."""
    from sipctl.providers.dns.challenge import CHALLENGE_LABEL
    from sipctl.reconciler.dns_labels import (
        CLAIM_PREFIX,
        LOCK_PREFIX,
        REGISTRY_PREFIX,
        SRV_PREFIX,
        STATE_PREFIX,
    )

    below_domain = [*SRV_PREFIX.values(), REGISTRY_PREFIX, LOCK_PREFIX, STATE_PREFIX]
    below_host = [CLAIM_PREFIX]
    if spec.asterisk is not None and spec.asterisk.tls is not None and spec.asterisk.tls.acme:
        below_domain.append(CHALLENGE_LABEL)
        below_host.append(CHALLENGE_LABEL)
    names: list[tuple[tuple[str | int, ...], str, list[str]]] = [
        (("domain",), spec.domain, below_domain)
    ]
    names += [
        (("servers", i, "host"), s.host, below_host)
        for i, s in enumerate(spec.servers)
        if s.host == spec.zone or s.host.endswith("." + spec.zone)
    ]
    for key, name, prefixes in names:
        prefix = max(prefixes, key=len)
        longest = MAX_DNS_NAME - len(prefix) - 1
        if len(name) > longest:
            raise KeyProblem(
                key,
                f"too long ({len(name)} characters): sipctl writes DNS names below it "
                f"({prefix}.<this name>) and a DNS name may have at most {MAX_DNS_NAME}, so "
                f"this name may have at most {longest} characters; use a shorter name",
            )
    return None


def ignoreip_leaves_someone(networks: tuple[str, ...]) -> tuple[str, ...]:
    """fail2ban.ignoreip's networks together leave addresses to ban: 0.0.0.0/1 with
    128.0.0.0/1 is every IPv4 address, as 0.0.0.0/0 is."""
    import ipaddress

    parsed = [ipaddress.ip_network(n, strict=False) for n in networks]
    v4 = [n for n in parsed if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in parsed if isinstance(n, ipaddress.IPv6Network)]
    together = (
        (4, v4, [str(n) for n in ipaddress.collapse_addresses(v4)], "0.0.0.0/0"),
        (6, v6, [str(n) for n in ipaddress.collapse_addresses(v6)], "::/0"),
    )
    for version, some, collapsed, everything in together:
        if collapsed == [everything]:
            listed = ", ".join(str(n) for n in some)
            raise ValueError(
                f"{listed} together cover every IPv{version} address ({everything}): the jail "
                "would never ban anyone; list the networks you trust instead"
            )
    return networks


def challenge_alone(spec: Spec, given: frozenset[str]) -> Updates:
    """``unknown_callers: challenge`` identifies guests by the name they call (a host: each
    customer's names at its own domain); the browsers' endpoint is found another way (by
    the From host, for any name), which a scanner could use."""
    section = spec.asterisk
    if section is None or section.unknown_callers != "challenge":
        return None
    if spec.transports.wss is not None:
        raise ValueError(
            "asterisk.unknown_callers: challenge does not go with transports.wss yet: the "
            "browsers' guest endpoint is found by the From host webrtc.<domain>, for any name "
            "over any transport, so a scanner that writes that From host tells the internal "
            "extensions apart again (measured on Asterisk 22: 401 for a phone's extension, "
            "200 for an unknown one); use reject, or drop transports.wss"
        )
    if section.channel != "pjsip":
        raise ValueError("asterisk.unknown_callers: challenge needs channel: pjsip")
    return None
