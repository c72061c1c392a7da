"""The one rule of a hosting directory's DNS: a customer reaches its own zone, no one else's.

A customer file is written by or for one customer and merged through the hoster's pipeline,
which holds a key that may update every customer's zone. What a customer's DNS layer
writes lies in its zone (``dns.zone``, by default its domain): the NAPTR and SRV records of
its domain, the registry TXT ``_sipctl.<domain>`` and the A/AAAA of every host that registry
lists inside the zone. So a customer whose zone is another file's zone, lies inside it, or
holds it, could write into that file's names, and through its registry make sipctl delete
or rewrite that file's host records (``www.victim.example``); a customer whose zone file is
another file's could rewrite that file's zone whole.

``check_reach`` refuses that, before anything is read or written: the zone of a customer
(``Spec.zone``: ``dns.zone``, else the domain, also without a ``dns`` section) and the zone
of every other spec file of its directory (host files, other hosts' customers, one
company's specs) are never the same nor one inside the other, and no two of them edit
one zone file (compared as resolved paths). A customer's zone that is a parent of its own
domain (``sip.alpha.example`` in ``alpha.example``) is fine while no other file's zone is in it.

Nor does the zone of a customer's DNS layer hold a name another file sends callers to (its
``servers``, its ``webrtc.host``), wherever that name lies: a host's servers are often
named in a zone of the hoster's that no file of the directory has (``sip.infra.example``
for ``pbx1.hoster.example``). A customer in that zone published their A/AAAA, as the hosts
its registry lists: its own ``servers`` of that name at its own address took every
customer's calls, and with the host's servers inherited the records became the
customer's, deleted when its file was (every customer of the host unreachable).

The directory is read through the real loader (a file spelling its zone in any YAML form
is seen as sipctl sees it); a file that does not load is no one's zone (it cannot be
planned either). A run over many files (``reading_once``) reads each directory once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.errors import SpecError

if TYPE_CHECKING:
    from sipctl.schemas.loader import LoadedSpec


@dataclass(frozen=True)
class Reach:
    """What one spec file's DNS may touch: its zone, and the zone file it edits."""

    zone: str  # lower case, no trailing dot
    zone_file: str | None  # provider zonefile: its resolved real path
    loaded: LoadedSpec = field(compare=False, repr=False)  # for the lines of a refusal
    # The names the file sends callers to, as it writes them: (name, its key).
    names: tuple[tuple[str, tuple[str | int, ...]], ...] = ()

    @cached_property
    def path(self) -> Path:
        """The file, resolved: the same file under two names is itself (asked only of the
        few files a check finds)."""
        return Path(self.loaded.source).resolve()

    @property
    def own_zone(self) -> bool:
        """Its zone is its domain's own (dns.zone unset, or its domain). Where two files'
        zones meet, a file whose dns.zone names a zone above its domain is the one reaching
        into the other's, and the one refused: a stranger's file naming a customer's zone
        must not make that customer's file invalid too."""
        return self.zone == self.loaded.spec.domain.lower().rstrip(".")

    @property
    def shown(self) -> str:
        """The file as the user sees it (beside the file being checked)."""
        return self.loaded.source

    @property
    def zone_at(self) -> str:
        """file:line:col, key and value of the zone (dns.zone, or the domain)."""
        dns = self.loaded.spec.dns
        key: tuple[str, ...] = ("dns", "zone") if dns is not None and dns.zone else ("domain",)
        return f"{self.loaded.where(key)}: {'.'.join(key)}: {self.zone}"

    @property
    def zone_file_at(self) -> str:
        """file:line:col, key and value of dns.file."""
        dns = self.loaded.spec.dns
        written = dns.file if dns is not None else None
        return f"{self.loaded.where(('dns', 'file'))}: dns.file: {written}"


@dataclass
class _Directory:
    """The reaches of a directory's files, found by zone and by zone file."""

    by_zone: dict[str, list[Reach]] = field(default_factory=dict)
    below: dict[str, list[Reach]] = field(default_factory=dict)  # ancestor -> zones under it
    by_file: dict[str, list[Reach]] = field(default_factory=dict)
    # a name and each name above it -> (the file, the name) it holds
    names_at: dict[str, list[tuple[Reach, int]]] = field(default_factory=dict)

    def add(self, reach: Reach) -> None:
        self.by_zone.setdefault(reach.zone, []).append(reach)
        for ancestor in _ancestors(reach.zone):
            self.below.setdefault(ancestor, []).append(reach)
        if reach.zone_file is not None:
            self.by_file.setdefault(reach.zone_file, []).append(reach)
        for index, (name, _key) in enumerate(reach.names):
            for zone in (name, *_ancestors(name)):
                self.names_at.setdefault(zone, []).append((reach, index))


def _ancestors(zone: str) -> Iterator[str]:
    """``a.b.example`` -> ``b.example``, ``example``: the names strictly above a zone."""
    rest = zone
    while "." in rest:
        rest = rest.split(".", 1)[1]
        yield rest


def reach_of(loaded: LoadedSpec) -> Reach:
    """The reach of one loaded spec file."""
    spec = loaded.spec
    dns = spec.dns
    zone_file = None
    if dns is not None and dns.provider == "zonefile" and dns.file:
        zone_file = os.path.realpath(loaded.resolve_path(dns.file))
    names: list[tuple[str, tuple[str | int, ...]]] = [
        (server.host, ("servers", index, "host")) for index, server in enumerate(spec.servers)
    ]
    if spec.webrtc is not None and spec.webrtc.host is not None:
        names.append((spec.webrtc.host, ("webrtc", "host")))
    return Reach(spec.zone, zone_file, loaded, tuple(names))


def remember(loaded: LoadedSpec) -> None:
    """Keep the reach of a file just loaded (by its text), for the next check of its
    directory: a host's plan loads its customers once, not once more for their reaches."""
    _keep(loaded.source, loaded.text, reach_of(loaded))


# a file (its absolute path as shown) -> (its text, its reach; None: not a spec that
# loads): a file is loaded again only when its text changed. The least recently used go
# first: a fleet worker plans each change of a hosting unit in a private copy of its own
# (new paths each time) for weeks. 16,384 files: a host's plan keeps its customers' reaches
# and then reads its directory, so a directory of more files than this loads each file
# twice (the bench's directory holds 1,001; a hoster's PBX of 10,000 customers must not pay
# twice); a reach holds its file loaded, about 5 KB of a customer of 10 users (80 MB at
# most; 100,000 kept before was half a gigabyte).
_KNOWN: OrderedDict[str, tuple[str, Reach | None]] = OrderedDict()
_MAX_KNOWN = 16_384
_KNOWN_LOCK = threading.Lock()


@dataclass
class _Run:
    """A run over many files (``reading_once``): the directories it read, and the files it
    loads itself (absolute, as shown), whose claims it compares."""

    directories: dict[str, _Directory] = field(default_factory=dict)
    selected: set[str] = field(default_factory=set)


# The run under way in this context, None outside one. A context variable, not a module
# global: a fleet worker runs activities in a pool of threads, where one activity's run
# ending cleared the run of another (its directories and its selected files: a copy of a
# customer's file that run compares as a claim was then refused as another file's zone).
# Not threading.local either: a context is per thread too (a pool's thread starts with an
# empty one), and also per asyncio task (two async activities interleaving on one thread
# keep their runs apart), and it goes where the run sends its work
# (contextvars.copy_context().run, asyncio.to_thread).
_RUN: ContextVar[_Run | None] = ContextVar("sipctl_reading_once", default=None)


@contextmanager
def reading_once(selected: Iterable[Path] = ()) -> Iterator[None]:
    """While a run loads the many files of a directory (``plan -f DIR``), each customer's
    check reads the directory once for all of them, not once each (1,000 customers would
    read 1,000,000 files). Outside it, every check reads the directory afresh.

    ``selected``: the spec files the run loads and compares the claims of (two files of
    one domain among them are refused together, before anything is read).

    A run is the context's that opened it (``_RUN``): inside it, a run is part of it; in
    another thread (a fleet worker's other activities) another run is its own."""
    files = {_absolute(path) for path in selected}
    run = _RUN.get()
    if run is not None:  # a run inside one is part of it
        run.selected |= files
        yield
        return
    token = _RUN.set(_Run(selected=files))
    try:
        yield
    finally:
        _RUN.reset(token)


def _directory(shown: Path) -> _Directory:
    """The reaches of the spec files of the directory ``shown`` (as the user named it)."""
    from sipctl.schemas.hosting import SPEC_SUFFIXES, read_text

    run = _RUN.get()
    read = run.directories if run is not None else None
    key = _absolute(shown)
    if read is not None and key in read:
        return read[key]
    found = _Directory()
    for path in sorted(shown.iterdir()):
        if path.suffix in SPEC_SUFFIXES and path.is_file():
            reach = _reach_of_file(path, read_text(path))
            if reach is not None:
                found.add(reach)
    if read is not None:
        read[key] = found
    return found


def _reach_of_file(shown: Path, text: str) -> Reach | None:
    from sipctl.schemas.loader import load_spec_text

    known = _known(shown)
    if known is not None and known[0] == text:
        return known[1]
    base_dir = Path(os.path.realpath(shown)).parent  # as load_spec reads it
    try:
        reach: Reach | None = reach_of(load_spec_text(text, str(shown), base_dir))
    except SpecError:
        reach = None
    _keep(str(shown), text, reach)
    return reach


def _absolute(path: str | Path) -> str:
    """A key of a file as shown: absolute, links not followed (no file system access)."""
    return str(Path(path).absolute())


def _known(shown: str | Path) -> tuple[str, Reach | None] | None:
    key = _absolute(shown)
    with _KNOWN_LOCK:  # a fleet worker runs activities in threads
        known = _KNOWN.get(key)
        if known is not None:
            _KNOWN.move_to_end(key)
        return known


def _keep(shown: str, text: str, reach: Reach | None) -> None:
    key = _absolute(shown)
    with _KNOWN_LOCK:
        _KNOWN[key] = (text, reach)
        _KNOWN.move_to_end(key)
        while len(_KNOWN) > _MAX_KNOWN:
            _KNOWN.popitem(last=False)


def check_reach(customer: LoadedSpec, path: Path) -> None:
    """Refuse ``customer`` (the file at ``path``) when its DNS reaches into another spec
    file of its directory: the same zone, a zone inside another's or holding another's, or
    the same zone file. The refusal names both files."""
    known = _known(path)
    mine = known[1] if known is not None and known[0] == customer.text else None
    if mine is None:
        mine = reach_of(customer)
        _keep(str(path), customer.text, mine)
    directory = _directory(path.parent)
    run = _RUN.get()
    others = [
        *directory.by_zone.get(mine.zone, ()),
        *(r for a in _ancestors(mine.zone) for r in directory.by_zone.get(a, ())),
        *directory.below.get(mine.zone, ()),
    ]

    def rival(other: Reach) -> bool:
        """Another file, unless it is of the same domain and loaded by this run too: the
        run refuses both up front then, before anything is read, as two files that claim
        the same names ("also claimed by", reconciler/gitops/claims.py)."""
        if other is mine or other.path == mine.path:  # itself, known or not
            return False
        if mine.own_zone and not other.own_zone:
            return False  # the other file reaches into this one's zone: it alone is refused
        same_domain = other.loaded.spec.domain == customer.spec.domain
        return not (same_domain and run is not None and _absolute(other.shown) in run.selected)

    for other in others:
        if rival(other):
            raise SpecError(_overlap(mine, other))
    # What its DNS layer writes (or, ensure: absent, deletes): a customer without one
    # publishes nothing there, and a hoster may name its PBX inside such a customer's zone.
    names = directory.names_at.get(mine.zone, ()) if customer.spec.dns is not None else ()
    for other, index in names:
        if rival(other):
            raise SpecError(_holds_name(mine, other, index))
    if mine.zone_file is not None:
        for other in directory.by_file.get(mine.zone_file, ()):
            if rival(other):
                raise SpecError(
                    f"{mine.zone_file_at} is the zone file {mine.zone_file}, which "
                    f"{other.shown} edits too ({other.zone_file_at}); each file of a hosting "
                    "directory edits a zone file of its own: name another file"
                )


def _holds_name(mine: Reach, other: Reach, index: int) -> str:
    name, key = other.names[index]
    return (
        f"{mine.zone_at} holds {name}, where {other.shown} sends its callers "
        f"({other.loaded.where(key)}: {'.'.join(str(k) for k in key)}: {name}); this file's "
        f"DNS would publish the A/AAAA of {name} as a host of its own (at its own servers' "
        "addresses, and delete them with this file), and that file's callers would go where "
        "this file says: name a zone that holds no other file's servers (dns.zone: its "
        "domain)"
    )


def _overlap(mine: Reach, other: Reach) -> str:
    if other.zone == mine.zone:
        relation = f"is also the zone of {other.shown}"
    elif mine.zone.endswith("." + other.zone):
        relation = f"lies inside {other.zone}, the zone of {other.shown}"
    else:
        relation = f"holds {other.zone}, the zone of {other.shown}"
    return (
        f"{mine.zone_at} {relation} ({other.zone_at}); in a hosting directory no two files "
        "reach the same zone or one inside the other (each could change the other's records "
        "and, through its registry of hosts, their A/AAAA): the file that names a zone not "
        f"its own is to change it (dns.zone: its domain, or a parent of it that holds no "
        "other file's zone)"
    )
