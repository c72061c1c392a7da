"""The provider base class, the run context, and the plugin registry.

A provider manages one layer (dns, asterisk, firewall, fail2ban) at one target. Every
provider subclasses ``Provider``, which declares what a provider can do beyond read and
apply (its host reads for the read gate, its lock, its record of the last apply, what rides
in its change set) as hook methods with "none" defaults. It is found by name through the
entry-point group ``sipctl.providers``, so a third party adds one with a line in its own
``pyproject.toml`` (docs/providers.md)::

    [project.entry-points."sipctl.providers"]
    route53 = "sipctl_route53:Route53Provider"

sipctl's own providers (and offline checks) are found in a table of their own, BUILT_IN
(a plugin cannot take over one of their names, and finding them imports no packaging
metadata machinery: importlib.metadata alone costs a quarter of a no-op plan's start-up); the
installed distributions' entry points are scanned only for a name that is not sipctl's. A
test keeps BUILT_IN equal to pyproject.toml's entry points, so a built-in is declared in one
place and listed in the other for speed, and the two cannot drift apart.

``read`` never changes anything (a plan is an exact dry run); ``apply`` is the only writer.
"""

from __future__ import annotations

import functools
import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sipctl.errors import SipctlError, SpecError
from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import LiveState, Resource

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from sipctl.providers.dns.challenge import ChallengeWriter
    from sipctl.providers.transport.batch import Fetched, HostRead
    from sipctl.providers.transport.pool import TransportPool
    from sipctl.providers.transport.read_gate import GateReads
    from sipctl.reconciler.gitops.drift import StateStore
    from sipctl.reconciler.gitops.locking import LockSite
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Spec

ENTRY_POINT_GROUP = "sipctl.providers"
R = TypeVar("R", bound="UpdateRider")


@dataclass(frozen=True)
class UpdateRider:
    """What rides along in a zone's one change set: the lock's release, the record of the last
    apply (``Provider.apply``'s ``riders``).

    They go out in the same change set as the zone's changes, so the server applies all of
    them or none (one change set per zone and run). ``sent`` is called once the server
    accepted it. How a rider is written is its provider family's: each subclasses this
    (``rfc2136.UpdateMessageRider`` adds to an UPDATE, ``octodns.RrsetRider`` holds rrsets).
    """

    what: str  # for messages: "release the lock _sipctl-lock.example.com."
    sent: Callable[[], None] = lambda: None


def family_riders(riders: Sequence[UpdateRider], family: type[R], change_set: str) -> list[R]:
    """``riders`` as one family's (they come from its own lock and record); TypeError for a
    rider of another family, which ``change_set`` (its words) cannot carry."""
    own = [r for r in riders if isinstance(r, family)]
    if len(own) != len(riders):
        raise TypeError(f"a rider of another provider family was given to {change_set}")
    return own


@dataclass
class RunContext:
    """What every provider may use during one run of sipctl.

    ``secrets`` collects every secret a provider loaded, so that the CLI can scrub them
    from any message as a last line of defence. ``transports`` hands out one connection per
    host per run, shared by all layers on that host.
    """

    base_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    log: Callable[[str], None] = lambda _line: None
    notice: Callable[[str], None] = lambda _line: None  # a line every run shows (stderr)
    secrets: set[str] = field(default_factory=set)
    force: bool = False
    # each host's profile, read once per run (providers/transport/host_profile.py)
    host_profiles: dict[str, object] = field(default_factory=dict)
    # the specs whose credentials passed the runner profile this run (reconciler/bindings.py)
    bindings_checked: set[int] = field(default_factory=set)
    # the domains this run applies (a run of several specs: ``multi.run_domains``); a server
    # another of them uses too may change with this one (providers/dns/owned.py)
    run_domains: frozenset[str] = frozenset()
    _transports: TransportPool | None = None

    @property
    def transports(self) -> TransportPool:
        if self._transports is None:
            from sipctl.providers.transport.pool import TransportPool

            self._transports = TransportPool(self)
        return self._transports

    def remember_secret(self, value: str) -> str:
        if value:
            self.secrets.add(value)
        return value

    def close(self) -> None:
        if self._transports is not None:
            self._transports.close_all()
            self._transports = None


class Provider(ABC):
    """One live system at one target: the base every provider subclasses, sipctl's own and
    plugins alike (docs/providers.md).

    A provider must say what it manages (``layer``, ``name``, ``target_id``), read it
    (``read``) and write it (``apply``). Everything else is a capability with a default of
    "none" here, which a provider declares by overriding the hook; the engine, the read gate,
    locking and drift ask these hooks and never a provider's name, so a subclass of a
    built-in provider registered under a new name gets everything the built-in gets.
    """

    layer: ClassVar[str]  # "dns" | "asterisk" | "firewall" | "fail2ban" | a plugin's own
    name: ClassVar[str]  # the entry-point name, e.g. "rfc2136"
    # Declared on the class, so ``sipctl validate`` can ask it without opening the provider:
    # it publishes ACME DNS-01 challenge records (and its ``challenge_writer`` returns one).
    answers_acme_challenges: ClassVar[bool] = False
    # A DNS provider that writes an rrset it owns only a part of by keeping the others'
    # records in it (``providers/dns/owned.py``: its ``owned_state`` and ``rrset_after``),
    # so that domains of one zone may share a server: each domain's claim on a host
    # (``_sipctl-claim.<host>``) is published to it, and the host's addresses stay while
    # another domain claims them. Without it no claim is published (``publishable``).
    shares_hosts: ClassVar[bool] = False

    @abstractmethod
    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        """Construct without I/O: the read gate and locking construct providers they never
        ask to read."""

    @property
    @abstractmethod
    def target_id(self) -> str:
        """Stable and secret-free: identifies the target in plans and messages. A target
        that is no place is described in parentheses (``(not published)``): headings then
        say ``webrtc (not published)``, not ``webrtc at ...`` (``views.target_phrase``)."""

    @abstractmethod
    def read(self, desired: Sequence[Resource]) -> LiveState:
        """Read the live state of what this provider owns. Must not change anything."""

    @abstractmethod
    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        """Make ``changes`` live; ``live`` is the state just read. Returns lines to report.

        ``riders`` are given only to a provider whose ``lock_site`` rides
        (``RidingLockSite``), in its last change set of the run: they go out in the same
        change set as ``changes``, all or nothing.

        Raise StalePlanError when the live system no longer is what ``live`` says (nothing
        changed), ProviderError when it fails (after restoring what was there).
        """

    # --- capabilities: override to declare one ----------------------------------------------

    def preflight(self) -> None:
        """Check what this provider needs of this machine alone (a credential from the
        environment or a file) and raise SipctlError when it is wrong. The engine asks every
        provider of a run before any of them reads, so a missing TSIG secret is said before
        the PBX is connected to. Default: nothing to check."""
        return None

    def publishable(self, desired: Sequence[Resource]) -> list[Resource]:
        """The desired resources this target can hold (an API without NAPTR holds SRV only;
        its ``read`` notes why). Default: all of them, but the claims on hosts of a provider
        that does not declare ``shares_hosts``."""
        if self.shares_hosts:
            return list(desired)
        # here, not at the top: validate imports this module and never dnspython
        from sipctl.reconciler.dns_records import is_claim_owner

        return [
            r for r in desired if not (r.address.layer == "dns" and is_claim_owner(r.address.name))
        ]

    def host_reads(self, desired: Sequence[Resource]) -> list[HostRead]:
        """The files, private keys, programs whose words depend on no file, and a read
        script ``read`` asks of hosts (``HostRead``), declared before anything is read: the
        engine fetches every layer's reads of one host in one round trip, then calls
        ``read_fetched`` with what they got. A provider that
        declares reads implements ``read_fetched``, and its ``read`` is
        ``read_fetched(desired, fetch(host_reads(desired)))``. Default: nothing declared
        (``read`` is called and reads on its own)."""
        del desired
        return []

    def read_fetched(self, desired: Sequence[Resource], fetched: Sequence[Fetched]) -> LiveState:
        """``read``, from what ``host_reads`` declared (one ``Fetched`` per ``HostRead``, in
        order). Must not change anything. Only called when ``host_reads`` declared some."""
        del fetched
        return self.read(desired)

    def gate_reads(self, desired: Sequence[Resource]) -> list[GateReads]:
        """What ``read`` asks of an SSH host, for that host's read gate (``sipctl read-gate``);
        built from the same lists as ``read``. Default: nothing (no host reads)."""
        del desired
        return []

    def lock_site(self) -> LockSite | None:
        """Where an apply of this target takes its lock (a DNS provider: one lock per zone;
        host layers share a host's lock, which locking finds on its own). A site that is a
        ``RidingLockSite`` releases the lock in the zone's last change set (``riders``).
        Default: no lock of its own (the run relies on the provider's own checks)."""
        return None

    @property
    def written_key(self) -> str:
        """What this target is, whichever spec names it and however: an earlier spec of the
        run that wrote the same key wrote this target (``engine.refresh``). Default: its
        ``target_id``; a target several specs may name differently says so here."""
        return self.target_id

    @classmethod
    def shared_lock_key(cls, loaded: LoadedSpec) -> str | None:
        """The key of the lock an apply of ``loaded`` takes (``lock_site``) when other
        domains' applies take the same one (a zone file several domains live in): a run
        applies specs with one key one after the other, never beside each other, where the
        second was refused for the first's lock. Default: none shared (a lock per domain)."""
        del loaded
        return None

    def challenge_writer(self) -> ChallengeWriter | None:
        """What publishes ACME DNS-01 challenge records in this zone (``asterisk.tls.acme``);
        a DNS provider that can returns itself and sets ``answers_acme_challenges``, which
        validate asks offline. Default: none (no ACME through it)."""
        return None

    @classmethod
    def server_admin_files(cls, spec: Spec) -> dict[str, str]:
        """Files for the admin of the server this provider writes to, which ``sipctl render``
        writes under ``dns/`` (name -> text): a DNS provider that updates by RFC 2136 gives
        BIND's ``update-policy`` for the key it signs with. Default: none."""
        del spec
        return {}

    @classmethod
    def authoritative_server(cls, loaded: LoadedSpec) -> str | None:
        """The name server (``host[:port]``) that holds the zone and answers a change at once,
        which the verify after an apply asks (no cache, no propagation wait). Default: none
        (the system resolver is asked, and may not see a fresh change yet)."""
        del loaded
        return None

    def state_store(self) -> StateStore | None:
        """Where the record of the last apply (``sipctl drift``) of this target lives when
        it is not the host's shared record. A ``RidingStore`` is written as a rider of the
        zone's last change set. Default: the host's shared record, if the layer has one."""
        return None


OFFLINE_CHECK_GROUP = "sipctl.offline_checks"

# sipctl's own entry points, group -> name -> "module:attribute", exactly as pyproject.toml
# declares them (tests/test_package.py holds the two equal).
BUILT_IN: dict[str, dict[str, str]] = {
    ENTRY_POINT_GROUP: {
        "rfc2136": "sipctl.providers.dns.rfc2136:Rfc2136Provider",
        "zonefile": "sipctl.providers.dns.zonefile:ZoneFileProvider",
        "octodns": "sipctl.providers.dns.octodns:OctodnsProvider",
        "asterisk": "sipctl.providers.asterisk.provider:AsteriskProvider",
        "iptables": "sipctl.providers.firewall.iptables:IptablesProvider",
        "nftables": "sipctl.providers.firewall.nftables:NftablesProvider",
        "fail2ban": "sipctl.providers.fail2ban:Fail2banProvider",
        "certificate": "sipctl.providers.certificate.provider:CertificateProvider",
        "webrtc": "sipctl.providers.webrtc_page:WebrtcPageProvider",
    },
    OFFLINE_CHECK_GROUP: {
        "octodns": "sipctl.providers.dns.octodns_plugin:offline_check",
        "zonefile": "sipctl.providers.dns.zone_places:offline_check",
    },
}


def _load_object(value: str) -> Any:
    """The object an entry point's value ``module:attribute.path`` names (as
    EntryPoint.load reads it)."""
    module_name, _, attribute = value.partition(":")
    found: Any = importlib.import_module(module_name.strip())
    for part in attribute.strip().split(".") if attribute.strip() else ():
        found = getattr(found, part)
    return found


@functools.cache
def _plugins(group: str) -> dict[str, EntryPoint]:
    """The installed distributions' entry points of ``group`` by name, built-in names left
    out (a plugin cannot take over rfc2136). Scanned once per process, and only when a name
    is not sipctl's own."""
    from importlib.metadata import entry_points

    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        if ep.name not in BUILT_IN[group]:
            found.setdefault(ep.name, ep)
    return found


def _plugin(group: str, name: str) -> EntryPoint | None:
    """An installed plugin's entry point ``name`` of ``group``."""
    ep = _plugins(group).get(name)
    if ep is None:
        _plugins.cache_clear()  # installed since the scan (a long-lived process)
        ep = _plugins(group).get(name)
    return ep


def available_providers() -> dict[str, str]:
    """Provider names and the objects they point to: sipctl's own, then installed plugins'."""
    plugins = {name: ep.value for name, ep in _plugins(ENTRY_POINT_GROUP).items()}
    return {**BUILT_IN[ENTRY_POINT_GROUP], **plugins}


def provider_installed(name: str) -> bool:
    return name in BUILT_IN[ENTRY_POINT_GROUP] or _plugin(ENTRY_POINT_GROUP, name) is not None


def unknown_provider(name: str, where: str = "") -> SpecError:
    """The error for a provider name nothing installed registers (validate and plan say the
    same): where the spec names it, the installed names, and the closest one."""
    import difflib

    installed = sorted(available_providers())
    close = difflib.get_close_matches(name, installed, n=1, cutoff=0.6)
    meant = f"; did you mean {close[0]!r}?" if close else ""
    prefix = f"{where}: " if where else ""
    return SpecError(
        f"{prefix}no provider named {name!r} is installed "
        f"(installed: {', '.join(installed) or 'none'}){meant}"
    )


def load_provider(name: str) -> type[Provider]:
    """The provider class registered under ``name`` (a subclass of ``Provider``)."""
    own = BUILT_IN[ENTRY_POINT_GROUP].get(name)
    ep = None if own is not None else _plugin(ENTRY_POINT_GROUP, name)
    if own is None and ep is None:
        raise unknown_provider(name)
    try:
        found = ep.load() if ep is not None else _load_object(str(own))
    except (ImportError, AttributeError) as exc:
        raise SipctlError(f"provider {name!r} could not be loaded: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, Provider)):
        where = ep.value if ep is not None else own
        raise SipctlError(
            f"provider {name!r} ({where}) is not a subclass of sipctl.providers.base.Provider; "
            "a provider plugin subclasses it (see: sipctl docs providers)"
        )
    return found


def open_provider(name: str, loaded: LoadedSpec, ctx: RunContext) -> Provider:
    """Provider ``name`` for ``loaded``, once the spec's credentials and their destinations
    passed the runner profile (``reconciler/bindings.py``): before any connection."""
    from sipctl.reconciler.bindings import enforce_bindings

    if not provider_installed(name):
        from sipctl.reconciler.layers import LAYERS

        for layer in LAYERS:
            if layer.managed(loaded.spec) and layer.provider_name(loaded.spec) == name:
                raise unknown_provider(name, f"{loaded.where((layer.name,))}: {layer.name}")
    enforce_bindings(loaded, ctx)
    return load_provider(name)(loaded, ctx)


def offline_check(name: str, loaded: LoadedSpec) -> list[str]:
    """Warnings from provider ``name``'s offline check, if it registered one under
    ``sipctl.offline_checks`` (validate runs it without importing the provider's module and
    the client libraries it needs); it raises SpecError for what cannot work. A built-in
    provider's check is sipctl's own: no scan of the installed distributions."""
    check: Callable[[LoadedSpec], list[str]]
    if name in BUILT_IN[ENTRY_POINT_GROUP]:
        own = BUILT_IN[OFFLINE_CHECK_GROUP].get(name)
        if own is None:
            return []
        check = _load_object(own)
    else:
        ep = _plugins(OFFLINE_CHECK_GROUP).get(name)
        if ep is None:
            return []
        check = ep.load()
    return check(loaded)
