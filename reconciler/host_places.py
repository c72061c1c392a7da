"""Places on a PBX reached by ``ssh://`` that a spec may name: the host profile's to say.

A spec arrives by merge request and says *what*; *where on the PBX* sipctl writes, as the
login the runner's key grants there (often root), is the PBX admin's to say. A spec names
such places with the paths of its layers whose target is ``ssh://`` (``runner_places``'s
``layer_paths``): ``asterisk.config_dir`` and ``asterisk.tls``'s certificate and key,
``firewall.persist`` (and the IPv6 file beside it), ``fail2ban.config_dir`` and ``logpath``,
and the path of an ``ssh://`` ``webrtc.publish``. Unbounded, a merge request could have
``apply`` overwrite ``/etc/ssh/sshd_config`` or ``/root/.ssh/authorized_keys`` with
``iptables-save`` output, or put sipctl's files into ``/etc/cron.d``.

The rule is runner_places' (``PlaceRule.hold``): each path, resolved on the host (``..``
and the host's links: ``realpath -m`` in the round trip that reads the host profile,
``providers/transport/host_profile.py``), must be inside one of the host's places, and not
in a guarded directory below that place (``HOST_GUARDED``, ``GUARDED_NAMES``: logins,
root's programs, the accounts, the host profile itself; a place the profile lists inside
one of them is the admin's word). The host's places are

- the host profile's ``places`` when it lists them: on every run, whoever runs sipctl (the
  PBX's admin wrote them, on the PBX);
- else, where the run is strict (a runner profile or CI: ``bindings.Runner``), the stock
  places (``STOCK_HOST_PLACES``: where Debian and every documented setup keep these files);
- else any place but the guarded ones. A solo admin running sipctl against their own PBX
  wrote the spec, and a config_dir of their own choosing is theirs to use (as ``target:
  local`` is on the runner); a pipeline applies what a merge request says, which must not
  choose. The guarded directories hold for both: no layer of sipctl has a file there, and
  a typo there locks the admin out as surely as an attack.

Checked by ``plan`` before any provider reads (``engine.make_plan``), which ``apply`` runs
again for a saved plan (a plan file is not trusted for places) and for ``apply -f``. Not
through a read-only login (``SIPCTL_SSH_READ_ONLY``: the read gate): it writes nothing, reads
only the files of the table the PBX's admin rendered, and runs no script to resolve a path.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipctl.reconciler.runner_places import (
    LayerTarget,
    PlaceRule,
    guarded_below,
    layer_paths,
    layer_targets,
    refusal,
)
from sipctl.schemas.profiles import GUARDED_NAMES, HOST_GUARDED, STOCK_HOST_PLACES
from sipctl.schemas.targets import parse_target

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.transport.host_profile import LoadedHostProfile
    from sipctl.schemas.loader import LoadedSpec

ANYWHERE = ("/",)  # not strict, no places listed: any place but the guarded ones

HINT = (
    "a spec does not choose where on its PBX sipctl reads and writes: the host profile on "
    "the PBX (/etc/sipctl/host.yaml, places) does (see: sipctl docs security)"
)

# What a layer does with the place, for a refusal.
_NOTES = {
    "asterisk": "sipctl writes Asterisk's files there",
    "firewall": "apply writes the saved rules there",
    "fail2ban": "sipctl writes fail2ban's files there, or fail2ban reads it",
    "webrtc": "apply writes the page there",
}


def guarded(directory: str, name: str) -> bool:
    """``directory`` (its last component ``name``) is one no spec's place may be in."""
    parent = posixpath.dirname(directory)
    return name.casefold() in GUARDED_NAMES or any(
        parent == posixpath.dirname(pattern)  # a pattern's * never spans a "/"
        and fnmatch.fnmatchcase(name, posixpath.basename(pattern))
        for pattern in HOST_GUARDED
    )


@dataclass(frozen=True)
class HostPlaces(PlaceRule):
    """The places on one PBX (``host``) a spec's paths may be in."""

    host: str  # the target's key, e.g. ssh://root@pbx:22
    allowed: tuple[str, ...]
    listed: bool  # the host profile lists them (else the stock ones, or ANYWHERE)
    profile: str  # the host profile's path on the host

    def directories(self) -> tuple[str, ...]:
        return self.allowed

    def guarded(self, path: str, place: str) -> str | None:
        return guarded_below(path, place, guarded)

    def guard_said(self, directory: str) -> str:
        return (
            f"inside {directory}, where sipctl reads and writes nothing unless the host "
            "profile lists it itself (logins and SSH keys, sudo and cron, the accounts, "
            "the host profile)"
        )

    def outside(self, path: str) -> str:
        # in a guarded directory: say so (listing a place around it would not do)
        below_root = guarded_below(path, "/", guarded) if path != "/" else None
        return self.guard_said(below_root) if below_root else super().outside(path)

    def said(self) -> str:
        if self.listed:
            return f"the host profile's places ({', '.join(self.allowed)})"
        return (
            f"the stock places ({', '.join(self.allowed)}; the host profile {self.profile} "
            f"on {self.host} lists no places)"
        )

    def entry(self, directory: str) -> str:
        """The host profile's line that would allow ``directory`` (and all it allows)."""
        now = self.allowed if self.listed else STOCK_HOST_PLACES
        return "places: " + json.dumps([*now, directory] if directory not in now else now)


def host_places_of(profile: LoadedHostProfile, strict: bool) -> HostPlaces:
    """The places of ``profile``'s host on a run that is ``strict`` or not."""
    listed = profile.profile.places if profile.profile is not None else None
    if listed is not None:
        return HostPlaces(profile.target, listed, True, profile.path)
    allowed = STOCK_HOST_PLACES if strict else ANYWHERE
    return HostPlaces(profile.target, allowed, False, profile.path)


@dataclass(frozen=True)
class HostPath:
    """One path on an ssh:// host a spec names."""

    layer: LayerTarget
    key: tuple[str | int, ...]
    written: str
    is_directory: bool

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.key)


def host_paths(
    loaded: LoadedSpec, layers: Collection[str] | None = None
) -> dict[str, list[HostPath]]:
    """The paths each ssh:// host of ``loaded`` is given by its ``layers`` (None: all), by
    the host's key, in spec order (the certificate layer writes asterisk.tls's files on the
    asterisk host). ``asterisk.tls.ca_list_file`` is not among them: sipctl neither reads
    nor writes it there (Asterisk reads it as its trust)."""
    found: dict[str, list[HostPath]] = {}
    for layer in layer_targets(loaded.spec):
        ref = parse_target(layer.target)
        wanted = layers is None or layer.layer in layers
        if layer.layer == "asterisk" and layers is not None and "certificate" in layers:
            wanted = True
        if ref.kind != "ssh" or not wanted:
            continue
        for key, value, is_directory in layer_paths(loaded.spec, layer):
            if key[-1] != "ca_list_file":
                found.setdefault(ref.key, []).append(HostPath(layer, key, value, is_directory))
    return found


def host_place_problems(
    loaded: LoadedSpec, ctx: RunContext, layers: Collection[str] | None = None
) -> list[str]:
    """Why each path ``loaded``'s ``layers`` (None: all) name on an ssh:// host may not be
    used there (none: all may). Reads each such host's profile (cached for the run),
    resolving the paths in the same round trip."""
    from sipctl.providers.transport.host_profile import host_programs
    from sipctl.providers.transport.read_gate import read_only_login
    from sipctl.reconciler.bindings import runner_of

    by_host = host_paths(loaded, layers)
    if not by_host or read_only_login(ctx.env):
        # A read-only login (the read gate) writes nothing, and reads only the files of the
        # table its admin rendered, through no link; it runs no script to resolve a path and
        # may not answer the host profile (a firewall-only host's table has none). The apply
        # job's login checks.
        return []
    strict = runner_of(ctx.env).strict
    problems: list[str] = []
    for paths in by_host.values():
        first = paths[0].layer
        transport = ctx.transports.get(first.target, first.ssh)
        profile = host_programs(ctx, transport, [p.written for p in paths])
        places = host_places_of(profile, strict)
        said: set[tuple[str | int, ...]] = set()
        for path in paths:  # a key's two files (rules.v4, .v6): said once
            problem = _problem(loaded, path, profile.resolved.get(path.written, ""), places)
            if problem is not None and path.key not in said:
                said.add(path.key)
                problems.append(problem)
    return problems


def _problem(loaded: LoadedSpec, path: HostPath, where: str, places: HostPlaces) -> str | None:
    head = f"{loaded.where(path.key)}: {path.dotted}: {path.written}"
    if not where.startswith("/"):
        return (
            f"{head}: sipctl could not resolve it on {places.host} (realpath -m, GNU "
            "coreutils, found nothing); nothing was read or written"
        )
    if where == posixpath.normpath(places.profile):
        # wherever SIPCTL_HOST_PROFILE put it, and whatever places it lists: the file that
        # says what sipctl may do on the host is never one sipctl writes
        return (
            f"{head} on {places.host} ({_NOTES[path.layer.layer]}) is the host profile "
            "itself, which only the PBX's admin writes; nothing was read or written"
        )
    if places.hold(where):
        return None
    shown = f" is {where}" if where != posixpath.normpath(path.written) else ""
    directory = where if path.is_directory else posixpath.dirname(where)
    return (
        f"{head}{shown} on {places.host} ({_NOTES[path.layer.layer]}), "
        f"{places.outside(where)}; nothing was read or written. Use a place the host "
        f"profile allows, or have the PBX's admin set in {places.profile} on {places.host}:\n"
        f"    {places.entry(directory)}"
    )


def check_host_places(
    loaded: LoadedSpec, ctx: RunContext, layers: Collection[str] | None = None
) -> None:
    """Refuse ``loaded`` (exit 3) before anything is read of its hosts when a path its
    ``layers`` (None: all) name on an ssh:// host is not one of that host's places."""
    problems = host_place_problems(loaded, ctx, layers)
    if problems:
        raise refusal(loaded, problems, "places on the PBX its host profile does not allow", HINT)
