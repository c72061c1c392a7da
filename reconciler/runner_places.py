"""Places on the machine running sipctl that a spec may name: the one rule.

A spec arrives by merge request and says *what*; *where on the runner* sipctl reads and
writes is the admin's to say (docs/security.md). A spec names such places in three ways:

- ``dns.file`` (provider zonefile) and the files it ``$INCLUDE``s: read by ``plan``,
  rewritten by ``apply`` (``providers/dns/zone_places.py`` holds what is particular to
  zones); profile key ``zone_files``;
- a ``dir:PATH`` target (``asterisk``, ``firewall``, ``fail2ban``, and the target of
  ``webrtc.publish``): a directory standing in for a host's root, below which every file of
  the layer is written; profile key ``dir_targets``;
- a layer whose target is ``local`` (this machine): the absolute paths it names
  (``asterisk.config_dir`` and ``asterisk.tls``'s certificate, key and CA list, the
  ``firewall.persist`` files, ``fail2ban.config_dir`` and ``logpath``, the path of a
  ``local:`` ``webrtc.publish``); profile key ``local_paths``.

Where the run is strict, a layer whose target is this machine needs more than its places:
``local`` (asterisk, firewall, fail2ban) and a ``local:`` ``webrtc.publish`` make sipctl run
this machine's programs (``asterisk -rx``, ``iptables-save`` / ``nft``, ``fail2ban-client``)
and show their answers in the plan, and make ``apply`` rewrite this machine's firewall. A
runner that is not the PBX must never be one, whatever paths the spec names (``firewall:
{target: local, persist: null}`` names none), so each such layer must be one of the runner
profile's ``local_layers`` (``local_layer_problems``); its paths are still checked.

The rule is the same for each place (``PlaceRule.hold``; a PBX reached over SSH has its
own places by the same rule: ``reconciler/host_places.py``): the path, resolved as sipctl will
reach it (``~`` expanded, a relative one from the spec's directory, ``..`` and symbolic
links followed: ``resolved``), must be inside the spec's own directory (for a hosting
customer its hosting directory) or inside a directory the runner profile lists under the
kind's key, and not inside a ``.git`` directory below that place: the spec's directory is
a checkout, and a repository's own files (``.git/config``, ``.git/hooks``) are programs git
runs, never a spec's to write (an admin who lists a place inside ``.git`` allows it). Below
such a place sipctl follows no link (``providers/bookkeeping.py``'s SafeDir), so the
place's own resolution is the one that counts.

When it applies: zone files always (a spec beside its zone files needs nothing; that rule
predates the others and was never relaxed). The other kinds, and the local layers, where
the run is strict (a runner profile is given, or ``CI`` is set: ``bindings.Runner``): on an
admin's own machine the admin wrote the spec, and ``target: local`` with ``/etc/asterisk``
is the normal way to run sipctl on the PBX itself. Checked by ``validate`` and, with the
credentials, before any provider opens a connection (``bindings.enforce_bindings``).
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.errors import RefusedError
from sipctl.schemas.profiles import LOCAL_LAYERS
from sipctl.schemas.targets import parse_target

if TYPE_CHECKING:
    from sipctl.reconciler.bindings import Runner
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Spec, Ssh

ZONE_FILES = "zone_files"
DIR_TARGETS = "dir_targets"
LOCAL_PATHS = "local_paths"
GIT_DIRECTORY = ".git"  # a repository's own: git runs what its config and hooks say

HINT = (
    "a spec does not choose where on this machine sipctl reads and writes, nor make it "
    "run this machine's programs; the runner profile lists the places beyond the spec's "
    "directory and the layers that may be this machine (see: sipctl docs security)"
)


def inside(path: str, directory: str) -> bool:
    """True when ``path`` is ``directory`` or below it; both absolute and resolved (no
    ``..``, no link), compared by whole path components (``/srv/a`` holds ``/srv/a/x``,
    never ``/srv/ab``)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def guarded_below(path: str, place: str, guarded: Callable[[str, str], bool]) -> str | None:
    """The first directory on the way from ``place`` (excluded) to ``path`` (included), both
    resolved and ``path`` inside ``place``, that ``guarded(directory, name)`` says is
    guarded, or None. A place listed inside a guarded directory is the admin's word: only
    what lies below the place counts."""
    directory = place
    for part in Path(path).relative_to(place).parts:
        directory = str(Path(directory, part))
        if guarded(directory, part):
            return directory
    return None


def git_directory(path: str, place: str) -> str | None:
    """The ``.git`` directory (in any case: a case-insensitive file system's git reads
    ``.GIT``) that ``path`` is in below ``place`` (``path`` inside ``place``, both
    resolved), or None."""
    return guarded_below(path, place, lambda _directory, name: name.casefold() == GIT_DIRECTORY)


class PlaceRule(ABC):
    """The one containment rule: a path (resolved) is held when it is inside one of the
    directories, and not in a guarded directory below that one. The runner's places
    (``Places``) and a PBX's (``reconciler/host_places.py``) differ only in their
    directories, what is guarded, and how a refusal says so."""

    @abstractmethod
    def directories(self) -> tuple[str, ...]:
        """The directories (resolved) paths may be in."""

    @abstractmethod
    def guarded(self, path: str, place: str) -> str | None:
        """The guarded directory ``path`` is in below ``place`` (None: none)."""

    @abstractmethod
    def guard_said(self, directory: str) -> str:
        """Why nothing is read or written in the guarded ``directory``, for a refusal."""

    @abstractmethod
    def said(self) -> str:
        """The places, in words, for a refusal."""

    def hold(self, path: str) -> bool:
        """``path`` (resolved) is in one of the places, and not in a guarded one below it."""
        return any(
            inside(path, place) and self.guarded(path, place) is None
            for place in self.directories()
        )

    def outside(self, path: str) -> str:
        """Why ``path`` (resolved) is not held, in words, for a refusal."""
        for place in self.directories():
            guarded = self.guarded(path, place) if inside(path, place) else None
            if guarded is not None:
                return self.guard_said(guarded)
        return f"outside {self.said()}"


def resolved(loaded: LoadedSpec, written: str) -> str:
    """Where ``written`` (a path as the spec writes it) is on this machine: ``~`` expanded,
    relative to the spec's directory, ``..`` and links resolved."""
    return os.path.realpath(loaded.resolve_path(written))


@dataclass(frozen=True)
class Places(PlaceRule):
    """The directories (resolved) a spec's paths of one kind may be in on this machine."""

    spec_dir: str
    allowed: tuple[str, ...]  # the runner profile's entries under ``key``
    profile: str  # where that profile came from ("" : none)
    key: str  # the runner profile's key that lists more (zone_files, dir_targets, ...)

    def directories(self) -> tuple[str, ...]:
        return (self.spec_dir, *self.allowed)

    def guarded(self, path: str, place: str) -> str | None:
        return git_directory(path, place)

    def guard_said(self, directory: str) -> str:
        return (
            f"inside the git directory {directory}, where nothing of a spec is written "
            "(git runs what its config and hooks say)"
        )

    def said(self) -> str:
        shown = f"the spec's directory {self.spec_dir}"
        if self.allowed:
            return f"{shown} and the runner profile's {self.key} ({', '.join(self.allowed)})"
        if self.profile:
            return f"{shown} (the runner profile {self.profile} lists no {self.key})"
        return f"{shown} (no runner profile lists {self.key})"

    def entry(self, directory: str) -> str:
        """The runner profile's line that would allow ``directory``."""
        return f"{self.key}: [{json.dumps(directory)}]"


def places_of(loaded: LoadedSpec, runner: Runner, key: str) -> Places:
    """The places of ``loaded``'s paths of kind ``key`` under ``runner``'s profile."""
    spec_dir = os.path.realpath(loaded.base_dir)
    profile = runner.profile
    if profile is None:
        return Places(spec_dir, (), "", key)
    entries = {
        ZONE_FILES: profile.zone_files,
        DIR_TARGETS: profile.dir_targets,
        LOCAL_PATHS: profile.local_paths,
    }[key]
    return Places(spec_dir, runner.places(entries), runner.source, key)


# --- what a spec names ---------------------------------------------------------------------


@dataclass(frozen=True)
class SpecPlace:
    """One place on this machine a spec names."""

    key: tuple[str | int, ...]  # the spec key that names it
    written: str  # its value, as the spec writes it
    path: str  # where it is on this machine, resolved
    kind: str  # the runner profile's key that may list it
    directory: str  # what that key would list to allow it (a directory)
    note: str = ""  # how the spec reaches it, for the message

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.key)


def spec_places(loaded: LoadedSpec) -> list[SpecPlace]:
    """Every ``dir:`` target and every path of a ``local`` layer that ``loaded`` names, in
    the order of the spec, each once (zone files are the zonefile provider's: its own
    check, which a plugin subclassing it shares)."""
    found: dict[tuple[tuple[str | int, ...], str], SpecPlace] = {}
    for place in _places(loaded):
        found.setdefault((place.key, place.path), place)
    return list(found.values())


@dataclass(frozen=True)
class LayerTarget:
    """Where one layer of a spec lives, and the key that says so."""

    layer: str  # asterisk, firewall, fail2ban, webrtc (as LOCAL_LAYERS names them)
    key: tuple[str | int, ...]  # the key that sets it (asterisk.target when inherited)
    target: str  # local, dir:PATH, ssh://...
    written: str  # the value at ``key`` (webrtc.publish: TARGET:PATH)
    ssh: Ssh | None = None  # how its provider logs in to an ssh:// target (its ssh options)

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.key)


def layer_targets(spec: Spec) -> list[LayerTarget]:
    """The target of each layer of ``spec`` that has one, in the order of LOCAL_LAYERS:
    firewall and fail2ban without a target of their own take asterisk's (its key), or
    ``local`` (their own key) in a spec without asterisk."""
    found: list[LayerTarget] = []
    if spec.asterisk is not None:
        own = spec.asterisk.target
        found.append(LayerTarget("asterisk", ("asterisk", "target"), own, own, spec.asterisk.ssh))
    sections = (
        ("firewall", spec.firewall, spec.firewall_target(), spec.firewall_ssh()),
        ("fail2ban", spec.fail2ban, spec.fail2ban_target(), spec.fail2ban_ssh()),
    )
    for layer, section, target, ssh in sections:
        if section is None or target is None:
            continue
        key = (layer if section.target is not None or spec.asterisk is None else "asterisk",)
        found.append(LayerTarget(layer, (*key, "target"), target, target, ssh))
    if spec.webrtc is not None and spec.webrtc.publish is not None:
        from sipctl.schemas.values import split_publish

        written = spec.webrtc.publish
        target, _path = split_publish(written)
        ssh = spec.publish_ssh(target)
        found.append(LayerTarget("webrtc", ("webrtc", "publish"), target, written, ssh))
    return found


def _places(loaded: LoadedSpec) -> Iterator[SpecPlace]:
    for layer in layer_targets(loaded.spec):
        places = _layer(loaded, layer.key, layer.target, layer_paths(loaded.spec, layer))
        for place in places:
            yield replace(place, written=layer.written) if layer.layer == "webrtc" else place


def layer_paths(spec: Spec, layer: LayerTarget) -> list[tuple[tuple[str | int, ...], str, bool]]:
    """The paths on its target ``layer`` names: (key, value, is it a directory)."""
    asterisk, firewall, fail2ban = spec.asterisk, spec.firewall, spec.fail2ban
    if layer.layer == "asterisk" and asterisk is not None:
        files: list[tuple[tuple[str | int, ...], str, bool]] = [
            (("asterisk", "config_dir"), asterisk.config_dir, True)
        ]
        if asterisk.tls is not None:
            files.append((("asterisk", "tls", "cert_file"), asterisk.tls.cert_file, False))
            files.append((("asterisk", "tls", "key_file"), asterisk.tls.key_file, False))
            if asterisk.tls.ca_list_file is not None:  # Asterisk's trust, read there
                ca_list = asterisk.tls.ca_list_file
                files.append((("asterisk", "tls", "ca_list_file"), ca_list, False))
        return files
    if layer.layer == "firewall" and firewall is not None:
        from sipctl.reconciler.render.firewall import persist_paths

        persist = persist_paths(firewall, True).values()
        return [(("firewall", "persist"), p, False) for p in persist]
    if layer.layer == "fail2ban" and fail2ban is not None:
        return [
            (("fail2ban", "config_dir"), fail2ban.config_dir, True),
            (("fail2ban", "logpath"), fail2ban.logpath, False),
        ]
    if layer.layer == "webrtc":
        from sipctl.schemas.values import split_publish

        return [(("webrtc", "publish"), split_publish(layer.written)[1], True)]
    return []


def _layer(
    loaded: LoadedSpec,
    target_key: tuple[str | int, ...],
    target: str,
    paths: Sequence[tuple[tuple[str | int, ...], str, bool]],
) -> Iterator[SpecPlace]:
    """A layer's places: its ``dir:`` root, or each of its ``paths`` (key, value, is it a
    directory) when its target is ``local``; none over SSH (the PBX's own files)."""
    ref = parse_target(target)
    if ref.kind == "dir":
        root = resolved(loaded, ref.path)
        note = "every file of the layer is written below it"
        yield SpecPlace(target_key, target, root, DIR_TARGETS, root, note)
    elif ref.kind == "local":
        for key, value, is_directory in paths:
            path = os.path.realpath(value)
            directory = path if is_directory else str(Path(path).parent)
            note = "target local: on this machine"
            yield SpecPlace(key, value, path, LOCAL_PATHS, directory, note)


# --- the check -----------------------------------------------------------------------------


def place_problem(loaded: LoadedSpec, place: SpecPlace, places: Places) -> str | None:
    """Why ``place`` may not be used in ``places`` (None: it may)."""
    if places.hold(place.path):
        return None
    shown = place.written + (f" is {place.path}" if place.path != place.written else "")
    return (
        f"{loaded.where(place.key)}: {place.dotted}: {shown} ({place.note}), "
        f"{places.outside(place.path)}; nothing was read or written. Use a place inside the "
        f"spec's directory (not in .git), or have the admin add to the runner profile:\n"
        f"    {places.entry(place.directory)}"
    )


# What a layer on this machine makes sipctl do here, for a refusal.
_ON_THIS_MACHINE = {
    "asterisk": "sipctl runs asterisk -rx here and reads and writes Asterisk's files",
    "firewall": "plan shows this machine's own firewall, read with iptables-save or nft, "
    "and apply rewrites it",
    "fail2ban": "sipctl runs fail2ban-client here and reads and writes fail2ban's files",
    "webrtc": "apply writes the page into this machine's files",
}


def local_layer_problems(loaded: LoadedSpec, runner: Runner) -> list[str]:
    """Each layer of ``loaded`` whose target is this machine (``local``, a ``local:``
    publish) while ``runner``'s profile does not list it in ``local_layers``; none where
    the run is not strict (on an admin's own machine, ``local`` is how sipctl runs on the
    PBX)."""
    if not runner.strict:
        return []
    allowed = runner.profile.local_layers if runner.profile is not None else ()
    local = [t for t in layer_targets(loaded.spec) if parse_target(t.target).kind == "local"]
    refused = [t for t in local if t.layer not in allowed]
    if not refused:
        return []
    wanted = [n for n in LOCAL_LAYERS if n in allowed or any(t.layer == n for t in refused)]
    profile = (
        f"the runner profile ({runner.source}) lists "
        + (f"local_layers {', '.join(allowed)}" if allowed else "no local_layers")
        if runner.profile is not None
        else f"there is {runner.source}"
    )
    problems = []
    for layer in refused:
        default = " (the default)" if loaded.positions.get(layer.key) is None else ""
        taken = f", which the {layer.layer} layer takes" if layer.key[0] != layer.layer else ""
        problems.append(
            f"{loaded.where(layer.key)}: {layer.dotted}: {layer.written}{default}{taken}: "
            f"the {layer.layer} layer would be this machine ({_ON_THIS_MACHINE[layer.layer]}), "
            f"and {profile}; nothing was read or run. Point the layer at its host over SSH "
            "(ssh://USER@HOST), or, where this runner is that host, have the admin add to "
            f"the runner profile:\n    local_layers: [{', '.join(wanted)}]"
        )
    return problems


def place_problems(loaded: LoadedSpec, runner: Runner) -> list[str]:
    """Every layer of ``loaded`` on this machine the runner profile does not let be here
    (``local_layer_problems``), and every place (``spec_places``) outside its kind's places
    under ``runner``; none where the run is not strict (an admin's own machine, own
    spec)."""
    if not runner.strict:
        return []
    layers = local_layer_problems(loaded, runner)
    places = spec_places(loaded)
    if not places:
        return layers
    by_kind = {kind: places_of(loaded, runner, kind) for kind in {p.kind for p in places}}
    problems: dict[tuple[tuple[str | int, ...], str], str] = {}
    for place in places:  # a key's two files in one directory (rules.v4, .v6): said once
        said = (place.key, place.directory)
        if said not in problems:
            problem = place_problem(loaded, place, by_kind[place.kind])
            if problem is not None:
                problems[said] = problem
    return layers + list(problems.values())


def check_places(loaded: LoadedSpec, env: Mapping[str, str]) -> None:
    """For ``sipctl validate``: refuse ``loaded`` when a place it names is outside what the
    runner profile ``env`` names (or CI) allows."""
    from sipctl.reconciler.bindings import runner_of

    problems = place_problems(loaded, runner_of(env))
    if problems:
        raise refusal(loaded, problems, "uses of this machine the runner profile does not allow")


def refusal(loaded: LoadedSpec, problems: list[str], what: str, hint: str = HINT) -> RefusedError:
    """The refusal (exit 3) of ``loaded`` for its ``problems``: one said as it is, several
    under one line counting them (``what`` they are)."""
    return RefusedError(
        problems[0]
        if len(problems) == 1
        else f"{loaded.source}: {len(problems)} {what}:\n" + "\n".join(problems),
        hint=hint,
    )
