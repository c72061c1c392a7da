"""Locks: at most one apply per domain and per host at a time, with no extra service.

A lock lives where every runner already reaches (see ``lock_sites``):

- DNS over RFC 2136: a TXT record ``_sipctl-lock.<domain>`` created by an UPDATE whose
  prerequisite is "this name is not in use", so the name server makes taking it atomic
  (``providers/dns/lock.py``);
- a zone file: an exclusive ``flock`` on a lock file named after the zone file in this
  machine's bookkeeping directory (``zonefile_lock_site``; a zone file's directory may not be
  ours to write in);
- a host (local, ``dir:``, ssh): one exclusive ``flock`` on ``host.lock`` in the host's
  bookkeeping directory (``/var/lib/sipctl``), held by this process (local) or by a remote
  ``flock`` kept alive on the pooled SSH connection (``providers/transport/host_lock.py``).
  The kernel ends a flock with its process.

Each lock names its holder (``Holder``): an ID, who (user@host), since when, until when
(expiry) and the hash of the plan being applied. A lock anyone can read (a DNS record, its
site's ``public``) names no user or host: its record holds the ID, the times and the plan's
hash, and who took it stays in this machine's bookkeeping (``public_records.py``, the rule
of the record of the last apply), so a run here names the holder again and a run
elsewhere names the lock ID and says where to look. A DNS lock left behind by a killed run
may be taken over once it has expired (the takeover says so), or removed with
``sipctl force-unlock ID``, and only with that lock's own ID. A DNS lock is released in the
zone's last UPDATE of the run (``RidingLockSite``), so that UPDATE applies only while the lock
is still ours.

Which lock a DNS provider has is its own declaration (``Provider.lock_site``); a plugin
provider has the lock of the built-in provider it subclasses.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import random
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sipctl.errors import LockHeldError, ProviderError, SipctlError, SpecError
from sipctl.reconciler.gitops.public_records import (
    detail_ids,
    detail_path,
    keep_detail,
    read_detail,
)
from sipctl.reconciler.resources import canonical_json
from sipctl.schemas.numbers import MAX_WAIT

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext, UpdateRider
    from sipctl.reconciler.plan import Plan
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Spec, Ssh

LOCK_FILE = ".sipctl.lock"
DEFAULT_TTL = timedelta(minutes=15)
_TEXT_PREFIX = "sipctl-lock=1"
_EARLIER_LOCKS = 7  # the lock details of this machine's earlier runs kept beside the latest
_WHO_SAFE = re.compile(r"[^A-Za-z0-9._@:/+-]")
_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


# The longest duration any option takes: numbers.py's for every wait (a week).
MAX_DURATION = MAX_WAIT


def parse_duration(text: str, option: str) -> float:
    """``60s``, ``2m``, ``1h``, ``500ms`` or plain seconds -> seconds, at most a week."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise SpecError(f"{option} {text!r}: give a duration like 60s, 5m or 1h")
    seconds = float(match["n"]) * _UNITS[match["unit"]]
    if seconds > MAX_DURATION:
        raise SpecError(f"{option} {text!r}: give at most a week (168h)")
    return seconds


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) a lock."""

    id: str
    who: str
    since: datetime
    expires: datetime
    plan: str = "-"

    def to_text(self) -> str:
        """One line, under 255 bytes (it must fit a single TXT character-string); an
        ``opaque`` holder's has no ``who=``."""
        who = f" who={self.who}" if self.who else ""
        return (
            f"{_TEXT_PREFIX} id={self.id}{who} since={_stamp(self.since)} "
            f"expires={_stamp(self.expires)} plan={self.plan}"
        )

    def opaque(self) -> Holder:
        """This holder as a record anyone can read shows it: who is left out."""
        return replace(self, who="")

    @classmethod
    def from_text(cls, text: str) -> Holder | None:
        words = text.strip().split()
        if not words or words[0] != _TEXT_PREFIX:
            return None
        fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        try:
            return cls(
                id=fields["id"],
                who=fields.get("who", ""),
                since=datetime.strptime(fields["since"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
                expires=datetime.strptime(fields["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=UTC
                ),
                plan=fields.get("plan", "-"),
            )
        except (KeyError, ValueError):
            return None

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.expires

    def describe(self) -> str:
        if not self.who:  # an opaque record, taken on another machine
            return (
                f"the run with lock ID {self.id} since {_stamp(self.since)} (plan {self.plan}, "
                f"expires {_stamp(self.expires)})"
            )
        return (
            f"{self.who} since {_stamp(self.since)} (lock ID {self.id}, plan {self.plan}, "
            f"expires {_stamp(self.expires)})"
        )


UNKNOWN_HOLDER_ID = "unknown"


def unknown_holder() -> Holder:
    """A holder that could not be read (e.g. a lock taken a moment ago, not yet labelled)."""
    now = datetime.now(UTC)
    return Holder(UNKNOWN_HOLDER_ID, "someone (the lock record cannot be read)", now, now)


def new_holder(plan_hash: str, ttl: timedelta, env: dict[str, str] | None = None) -> Holder:
    """This run as a lock holder. ``SIPCTL_LOCK_WHO`` (e.g. a CI job URL) overrides who."""
    environ = env if env is not None else dict(os.environ)
    who = environ.get("SIPCTL_LOCK_WHO") or f"{_user()}@{socket.gethostname()}"
    now = datetime.now(UTC).replace(microsecond=0)
    return Holder(
        id=secrets.token_hex(8),
        who=_WHO_SAFE.sub("_", who)[:80] or "?",
        since=now,
        expires=now + ttl,
        plan=plan_hash,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def plan_hash(plan: Plan) -> str:
    """A short hash of what a plan will do (its spec and changes; not when it was made)."""
    data = plan.to_json()
    data.pop("created_at", None)
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:12]


class LockSite(Protocol):
    """One place a lock lives. ``key`` orders and deduplicates sites."""

    key: str
    where: str
    taken_over: Holder | None  # the expired holder the last ``acquire`` took over, if any
    # True for a flock: the kernel ends the lock with its process, so a held one belongs to
    # a live run and force-unlock cannot (and need not) remove it; False for a DNS lock,
    # which a killed run leaves behind.
    ends_with_holder: bool
    # True for a record anyone can read (a DNS lock): the holder is written ``opaque()``, and
    # who it is stays in this machine's bookkeeping (``public_records.py``).
    public: bool

    def acquire(self, me: Holder) -> Holder | None:
        """Take the lock for ``me``: None when taken, else who holds it now.

        A site whose locks can outlive their process (DNS) takes over an expired lock
        here and records the old holder in ``taken_over``.
        """
        ...

    def release(self, me: Holder) -> str | None:
        """Give the lock back; returns a warning when it was no longer ours."""
        ...

    def holder(self) -> Holder | None:
        """Who holds the lock now (None: nobody)."""
        ...

    def force_unlock(self, lock_id: str) -> str:
        """Remove the lock if its ID is ``lock_id``; returns what was done.

        Raises SipctlError when the lock has another ID or cannot be removed.
        """
        ...


@runtime_checkable
class RidingLockSite(Protocol):
    """A lock site whose release rides in its zone's last change set (a DNS provider's).

    Its provider is then given the riders of the run's end in its last ``apply``
    (``Provider.apply``'s ``riders``); what no change carried, the site sends itself.
    """

    zone_key: str  # the target_id of the zone's provider

    def release_rider(self, me: Holder) -> UpdateRider | None:
        """The release, to ride in the zone's last change set (None: nothing to release)."""
        ...

    def send_riders(self, riders: Sequence[UpdateRider]) -> list[str]:
        """Send ``riders`` in one change set of their own; returns warnings to report."""
        ...


@dataclass
class TakenOver:
    where: str
    old: Holder


class LockSet:
    """Take every site's lock (sorted, so two runs never deadlock) and release them all.

    While held, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, so a CI job
    that is cancelled still releases its locks (Ctrl-C does that already).
    """

    def __init__(
        self,
        sites: Sequence[LockSite],
        me: Holder,
        timeout: float = 0.0,
        say: Callable[[str], None] = lambda _line: None,
        detail: Callable[[str], None] = lambda _line: None,
    ) -> None:
        unique: dict[str, LockSite] = {}
        for site in sites:
            unique.setdefault(site.key, site)
        self.sites = [unique[k] for k in sorted(unique)]
        self.me = me
        self.timeout = timeout
        self._say = say
        self._detail = detail
        self._held: list[LockSite] = []
        self._old_handlers: dict[int, Any] = {}

    def __enter__(self) -> LockSet:
        self._install_signals()
        try:
            for site in self.sites:
                self._take(site)
        except BaseException:
            self._release_all()
            self._restore_signals()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._release_all()
        finally:
            self._restore_signals()

    # -- the end of a run: releases that ride in a zone's last change set --------------------

    def rides_with(self, target_id: str) -> bool:
        """True when a held lock is released in the change set of this target."""
        return any(
            isinstance(site, RidingLockSite) and site.zone_key == target_id for site in self._held
        )

    def release_riders(self) -> dict[str, list[UpdateRider]]:
        """The releases of the held riding locks, by the target_id of their zone."""
        riders: dict[str, list[UpdateRider]] = {}
        for site in self._held:
            if isinstance(site, RidingLockSite):
                rider = site.release_rider(shown_holder(site, self.me))
                if rider is not None:
                    riders.setdefault(site.zone_key, []).append(rider)
        return riders

    def send_riders(self, waiting: dict[str, list[UpdateRider]]) -> list[str]:
        """Send the riders no change carried (one change set per zone); warnings to report.

        A failure here leaves the lock to the normal release at the end."""
        lines: list[str] = []
        for site in self._held:
            if isinstance(site, RidingLockSite) and waiting.get(site.zone_key):
                try:
                    lines.extend(site.send_riders(waiting.pop(site.zone_key)))
                except SipctlError as exc:
                    lines.append(f"Warning: {site.where}: {exc.message}")
        return lines

    def _take(self, site: LockSite) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.2
        announced = False
        shown = shown_holder(site, self.me)
        if site.public:
            # Before the request: a run killed while it is in flight leaves a lock that this
            # file names (the holders before it are kept too: a waiting run names them).
            detail = {"who": self.me.who, "plan": self.me.plan}
            keep_detail(site.where, "lock", self.me.id, detail, earlier=_EARLIER_LOCKS)
        while True:
            current = site.acquire(shown)
            if current is None:
                self._held.append(site)
                if site.taken_over is not None:
                    old = known_holder(site, site.taken_over)
                    self._say(f"Took over the expired lock {site.where} of {old.describe()}.")
                self._detail(f"locked {site.where} (lock ID {self.me.id})")
                return
            current = known_holder(site, current)
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeldError(
                    f"{site.where} is locked by {current.describe()}; nothing was changed",
                    hint=_held_hint(site, current),
                )
            if not announced:
                self._say(f"Waiting for {site.where}, locked by {current.describe()} ...")
                announced = True
            time.sleep(min(left, delay * random.uniform(0.8, 1.2)))
            delay = min(delay * 1.6, 5.0)

    def _release_all(self) -> None:
        problems: list[str] = []
        while self._held:
            site = self._held.pop()
            try:
                warning = site.release(shown_holder(site, self.me))
            except SipctlError as exc:
                problems.append(f"{site.where}: could not release the lock: {exc.message}")
                continue
            if warning:
                self._say(f"Warning: {warning}")
        for line in problems:
            self._say(
                f"Warning: {line}; it expires at its expiry time, or remove it with "
                f"sipctl force-unlock {self.me.id}"
            )

    # -- signals -----------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._old_handlers = install_interrupts()

    def _restore_signals(self) -> None:
        restore_handlers(self._old_handlers)
        self._old_handlers = {}


def shown_holder(site: LockSite, me: Holder) -> Holder:
    """``me`` as ``site``'s record holds it: opaque where anyone can read it."""
    return me.opaque() if site.public else me


def known_holder(site: LockSite, holder: Holder) -> Holder:
    """``holder`` with who it is, when this machine took that public lock (else as read)."""
    if holder.who or not site.public:
        return holder
    who = read_detail(site.where, "lock", holder.id).get("who")
    return replace(holder, who=who) if isinstance(who, str) and who else holder


def _held_hint(site: LockSite, holder: Holder) -> str:
    """What to do about a lock another run holds: a flock's holder is alive by definition
    (a dead run's flock is gone), a DNS lock's may be dead."""
    if site.ends_with_holder:
        return (
            "wait for that run (--lock-timeout 60s waits); this lock ends with that run's "
            "process, so if it hangs, stop that run (force-unlock cannot remove a live lock)"
        )
    find = ""
    if not holder.who:
        path = detail_path(site.where, "lock")
        here = detail_ids(site.where, "lock")
        if here:
            # this machine's file names other locks: saying it names this one would send the
            # reader to the wrong run
            find = (
                f"; the record names no one, and this machine's {path} names other lock IDs "
                f"(the latest {here[0]}), not {holder.id}: no run here recorded taking it, "
                "so another machine took it (or a run here that could not write that file); "
                "the run that took it printed its lock ID (apply -v), and the file of that "
                "name on its machine names who took it"
            )
        else:
            find = (
                "; the record names no one: the run that took it printed its lock ID "
                f"(apply -v), and that machine's {path} names who took it"
            )
    return (
        "wait for that run (--lock-timeout 60s waits), or, if it is dead, "
        f"remove its lock with: sipctl force-unlock {holder.id} -f SPEC{find}"
    )


def install_interrupts() -> dict[int, Any]:
    """In the main thread, make SIGTERM and SIGHUP raise KeyboardInterrupt (as Ctrl-C does),
    so that ``finally`` blocks release locks when a CI job is cancelled. Returns the old
    handlers for ``restore_handlers``."""
    old: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return old
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            old[sig] = signal.signal(sig, _interrupt)
        except (ValueError, OSError):
            continue
    return old


def restore_handlers(old: dict[int, Any]) -> None:
    for sig, handler in old.items():
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):
            continue


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --- where the locks of a spec live --------------------------------------------------------------


@dataclass(frozen=True)
class HostPlace:
    """A host layer's target, its SSH options, and its managed directory on that host."""

    layer: str
    target: str
    ssh: Ssh | None
    directory: str


def host_places(loaded: LoadedSpec, layers: Sequence[str] | None = None) -> list[HostPlace]:
    """The host layers of a spec (in layer order), each with the directory its lock lives in.

    Asterisk: its config_dir; fail2ban: its config_dir; firewall: the directory of
    ``persist``, else /run/lock. Several layers on one host share the first one's directory.
    """
    spec = loaded.spec
    places: list[HostPlace] = []
    wanted = set(layers or ("asterisk", "fail2ban", "firewall"))
    # the certificate layer writes on the asterisk host: it shares that host's lock
    if spec.asterisk is not None and wanted & {"asterisk", "certificate"}:
        places.append(
            HostPlace("asterisk", spec.asterisk.target, spec.asterisk.ssh, spec.asterisk.config_dir)
        )
    if spec.fail2ban is not None and "fail2ban" in wanted:
        target = spec.fail2ban_target() or "local"
        places.append(HostPlace("fail2ban", target, spec.fail2ban_ssh(), spec.fail2ban.config_dir))
    if spec.firewall is not None and "firewall" in wanted:
        target = spec.firewall_target() or "local"
        persist = spec.firewall.persist
        directory = persist.rsplit("/", 1)[0] or "/" if persist else "/run/lock"
        places.append(HostPlace("firewall", target, spec.firewall_ssh(), directory))
    return places


def _orders_certificates(spec: Spec, layers: Sequence[str]) -> bool:
    """An ACME order writes challenge records into the zone: it needs the domain's lock."""
    tls = spec.asterisk.tls if spec.asterisk is not None else None
    return "certificate" in layers and tls is not None and tls.acme is not None


def lock_sites(
    loaded: LoadedSpec, ctx: RunContext, layers: Sequence[str] | None = None
) -> list[LockSite]:
    """Every lock a run of ``loaded`` must hold (DNS first, then one per host)."""
    from sipctl.providers.base import open_provider
    from sipctl.providers.transport.host_lock import host_lock_site
    from sipctl.reconciler.bindings import enforce_bindings

    enforce_bindings(loaded, ctx)  # a lock is a connection too
    spec = loaded.spec
    sites: list[LockSite] = []
    if spec.dns is not None and (
        not layers or "dns" in layers or _orders_certificates(spec, layers)
    ):
        site = open_provider(spec.dns.provider, loaded, ctx).lock_site()
        if site is not None:
            sites.append(site)
        else:
            ctx.log(f"dns provider {spec.dns.provider!r} has no lock; relying on its own checks")
    if spec.hosting is not None and not layers:
        # a customer whose file is gone: the plan removes its records from its zone
        from sipctl.reconciler.departures import departure_lock_sites

        sites.extend(departure_lock_sites(loaded, ctx))
    seen: set[str] = set()
    for place in host_places(loaded, layers):
        site = host_lock_site(place, loaded, ctx)
        if site.key not in seen:
            seen.add(site.key)
            sites.append(site)
    return sites


def force_unlock(sites: Sequence[LockSite], lock_id: str) -> list[str]:
    """Remove the lock whose ID is ``lock_id`` from whichever site holds it."""
    if not re.fullmatch(r"[0-9a-f]{16}", lock_id):
        raise SpecError(
            f"{lock_id!r} is not a lock ID (16 hex digits, as printed when the lock was taken "
            "or when it was found held)"
        )
    found: list[str] = []
    held_by_others: list[str] = []
    for site in sites:
        current = site.holder()
        if current is None:
            continue
        current = known_holder(site, current)
        if current.id != lock_id:
            held_by_others.append(f"{site.where}: held by {current.describe()}")
            continue
        line = site.force_unlock(lock_id)
        if site.public and current.who:  # the record names no one; this machine knows
            line += f"; {current.who} had taken it"
        found.append(line)
    if not found:
        detail = ("\n  " + "\n  ".join(held_by_others)) if held_by_others else ""
        raise ProviderError(
            f"no lock of this spec has ID {lock_id}; nothing was removed" + detail,
            hint="force-unlock removes a lock only when given that lock's own ID",
        )
    return found
