"""The ``zonefile`` DNS provider: an RFC 1035 zone file on this machine.

It owns exactly what the rfc2136 provider owns (see ``dns_owned``) and keeps every other
record. The file is the admin's: it is edited in place (``zone_edit.py``), so only the lines
of the rrsets sipctl changes differ and every other byte (comments, ``$TTL``, ``$ORIGIN``,
``$INCLUDE``, layout, relative names) stays; the SOA serial is bumped where it is written
(YYYYMMDDnn when the serial is date-based, else +1). The new text is checked by parsing it
back before it is written. Writing keeps the file's owner, group and mode (BIND reads it as
its own user), keeps the old file as ``<file>.sipctl.bak``, replaces it atomically without
following a link, and runs the host profile's zone reload (``dns.reload``) if there is one;
when that fails the old file is put back. A ``dns.file`` that is a symbolic link is resolved
once, and the file it points to is edited (the plan says so); the link stays a link.

Where the zone file and the files it ``$INCLUDE``s may be is ``zone_places.py``'s one rule
(the spec's directory, or the runner profile's ``zone_files``), checked before anything is
read; dnspython is handed sipctl's own copies of the included files.

A missing file, or a missing directory (a typo must not create ``/etc/bnid/zones``), is an
error at plan unless ``dns.create_file`` is true: then apply creates them, the file with a
minimal SOA and NS, and the plan says so.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import dns.exception
import dns.name
import dns.rdata
import dns.rdataset
import dns.rdatatype
import dns.zone

from sipctl.errors import FileTooLarge, ProviderError, SpecError, StalePlanError
from sipctl.providers.base import Provider, UpdateRider
from sipctl.providers.bookkeeping import (
    SymlinkRefused,
    open_local_dir,
    symlink_refused,
)
from sipctl.providers.dns.owned import (
    CNAME,
    DnsKept,
    LiveRrset,
    kept_rrsets,
    owned_state,
    owners,
    read_owned,
    rrset_after,
    wanted_names,
)
from sipctl.providers.dns.zone_edit import RrsetEdit, ZoneEditError, edit_zone
from sipctl.providers.dns.zone_generate import check_generated_files
from sipctl.providers.dns.zone_places import check_zone_file, include_copies
from sipctl.providers.dns.zonefile_errors import parse_problem, problem_kind
from sipctl.providers.transport.host_profile import resolve_program
from sipctl.providers.transport.pool import BACKUP_SUFFIX
from sipctl.reconciler.dns_records import absolute, parse
from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import LiveState, Resource

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.gitops.drift import StateStore
    from sipctl.reconciler.gitops.locking import LockSite
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Dns

_NEW_FILE_MODE = 0o644
_SOA_TIMERS = "3600 600 1209600 300"  # refresh retry expire minimum (RFC 1912 style)


class ZoneFileProvider(Provider):
    """A zone file read and written with dnspython."""

    layer: ClassVar[str] = "dns"
    name: ClassVar[str] = "zonefile"
    shares_hosts: ClassVar[bool] = True  # owned.py: owned_state and rrset_after

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        if loaded.spec.dns is None or loaded.spec.dns.file is None:
            raise SpecError(f"{loaded.source}: provider zonefile needs dns.file")
        self._loaded = loaded
        self._ctx = ctx
        self._dns: Dns = loaded.spec.dns
        self.zone = absolute(loaded.spec.zone)
        self.domain = loaded.spec.domain
        self.named = loaded.resolve_path(loaded.spec.dns.file)
        # a link is resolved once: the real file is edited, the link stays as it is
        self.path = trusted_realpath(self.named)
        # where the zone file (the one edited) and its $INCLUDEs may be: refused before
        # anything is read
        self._places = check_zone_file(loaded, ctx.env, self.path)
        self.reloads = 0  # how often the zone reload ran (tests)

    @property
    def target_id(self) -> str:
        return f"zonefile:{self._dns.file}"

    # --- capabilities: a flock and the record of the last apply beside the zone file ---------

    def lock_site(self) -> LockSite:
        from sipctl.providers.transport.host_lock import zonefile_lock_site

        return zonefile_lock_site(self._loaded)

    @classmethod
    def shared_lock_key(cls, loaded: LoadedSpec) -> str | None:
        from sipctl.providers.transport.host_lock import zonefile_lock_site

        return zonefile_lock_site(loaded).key  # one zone file (resolved), one lock

    @property
    def written_key(self) -> str:
        # the file, not its name: a link to it, or a path from another spec's directory
        return f"zonefile:{self.shared_lock_key(self._loaded)}"

    def state_store(self) -> StateStore:
        from sipctl.providers.transport.host_lock import zonefile_state_store

        return zonefile_state_store(self._loaded)

    # --- read -------------------------------------------------------------------------------

    def read(self, desired: Sequence[Resource]) -> LiveState:
        text = self._read_text()
        if text is None:
            live = owned_state({}, desired, self.domain, zone=self.zone)
            if not self._dns.create_file:
                if not self.path.parent.is_dir():
                    live.problems.append(
                        f"dns.file {self._dns.file}: the directory {self.path.parent} does not "
                        "exist (a typo?); sipctl creates none unless dns.create_file is true"
                    )
                    return live
                live.problems.append(
                    f"dns.file {self._dns.file}: zone file {self.path} does not exist; set "
                    "dns.create_file: true to have apply create it (a minimal SOA and NS)"
                )
            else:
                missing = "" if self.path.parent.is_dir() else f" (and {self.path.parent})"
                live.notes.append(
                    f"zone file {self.path} does not exist: apply creates it{missing} with a "
                    f"minimal SOA and NS (ns1.{self.zone} at 127.0.0.1, "
                    f"hostmaster.{self.zone}); edit those to your real name servers"
                )
            live.kept = DnsKept(exists=False)
            live.fingerprint_extra = {"exists": False}
            return live
        zone = self._parse(text)
        first = wanted_names(self.domain, desired)
        rrsets, names = read_owned(lambda n: _collect(zone, n), first, self.domain, self.zone)
        live = owned_state(rrsets, desired, self.domain, self._ctx.run_domains, zone=self.zone)
        live.kept_as(DnsKept).names = names
        live.fingerprint_extra = {"exists": True}
        if self.path != self.named:
            live.notes.append(
                f"dns.file {self.named} is a symbolic link: sipctl edits the file it points to, "
                f"{self.path}, and leaves the link as it is"
            )
        self._ctx.log(f"zonefile: read {len(rrsets)} owned rrset(s) from {self.path}")
        return live

    def _read_text(self) -> str | None:
        try:
            with open_local_dir(self.path.parent) as directory:
                found = directory.read(self.path.name)
            return None if found is None else found[0].decode("utf-8")
        except FileTooLarge as exc:
            raise ProviderError(f"zone file {exc}") from None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProviderError(f"cannot read zone file {self.path}: {exc}") from None

    def _parse(self, text: str) -> dns.zone.Zone:
        # dnspython opens an $INCLUDE's file itself: it is handed copies sipctl read
        with include_copies(text, self.path, self._places) as (parsed, copies):
            check_generated_files(parsed, str(self.path), copies)
            try:
                return dns.zone.from_text(
                    parsed,
                    origin=self.zone,
                    relativize=False,
                    filename=str(self.path),
                    allow_include=True,
                )
            except dns.exception.DNSException as exc:
                raise ProviderError(
                    f"zone file {self.path} is not a valid zone for {self.zone}: "
                    f"{parse_problem(exc, self.path, copies, self.zone)}"
                ) from None

    # --- apply ------------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        del riders  # no lock site of its own: nothing rides here
        if not changes:
            return []
        old_text = self._read_text()
        kept = live.kept_as(DnsKept)
        if (old_text is not None) != kept.exists:
            raise StalePlanError(
                f"zone file {self.path} was created or removed since it was read; nothing was "
                "changed. Run plan again"
            )
        if old_text is None:
            zone = self._parse(self._minimal_zone())
        else:
            zone = self._parse(old_text)
            if _collect(zone, kept.names) != kept.rrsets:
                raise StalePlanError(
                    f"zone file {self.path}: records sipctl owns changed since they were read; "
                    "nothing was changed. Run plan again"
                )
        base_text = old_text if old_text is not None else self._minimal_zone()
        new_text, serial = self.edited(base_text, zone, changes, live)
        reload = self._reload_program()
        mode = self._write(new_text)
        lines = [f"zone file {self.path}: {len(changes)} rrset(s) changed, serial {serial}"]
        if reload:
            try:
                lines.append(self._reload(reload))
            except ProviderError:
                self._restore(old_text, mode)
                raise
        return lines

    def edited(
        self, text: str, zone: dns.zone.Zone, changes: Sequence[Change], live: LiveState
    ) -> tuple[str, int]:
        """``text`` with ``changes`` made in place and the serial bumped; checked by parsing
        it back: the records must be exactly those of ``zone`` changed in memory."""
        full = kept_rrsets(live)
        edits: list[RrsetEdit] = []
        for change in changes:
            owner, rdtype = change.address.name, change.address.kind
            before = zone.get_rdataset(owner, rdtype)
            ttl, rdatas = _final_rrset(change, full.get((owner, rdtype)))
            edits.append(
                RrsetEdit(
                    owner, rdtype, ttl, tuple(rdatas), before is not None and before.ttl != ttl
                )
            )
            if rdatas:
                zone.replace_rdataset(owner, dns.rdataset.from_rdata_list(ttl, rdatas))
            else:
                zone.delete_rdataset(owner, rdtype)
        serial = _bump_serial(zone)
        try:
            new_text = edit_zone(text, zone.origin or dns.name.root, edits, serial)
        except ZoneEditError as exc:
            raise ProviderError(f"zone file {self.path}: cannot edit it in place: {exc}") from None
        except dns.exception.DNSException as exc:  # dnspython's words may quote the file
            problem = problem_kind(str(exc), exc, self.zone)
            raise ProviderError(
                f"zone file {self.path}: cannot edit it in place: {problem}"
            ) from None
        if _records(self._parse(new_text)) != _records(zone):
            raise ProviderError(
                f"zone file {self.path}: editing it in place would not give the intended "
                "records (is an owned record in an $INCLUDE'd file?); nothing was changed"
            )
        return new_text, serial

    def _minimal_zone(self) -> str:
        serial = int(dt.datetime.now(dt.UTC).strftime("%Y%m%d")) * 100 + 1
        return (
            f"$ORIGIN {self.zone}\n"
            f"@ {self._dns.ttl} IN SOA ns1.{self.zone} hostmaster.{self.zone} "
            f"{serial - 1} {_SOA_TIMERS}\n"
            f"@ {self._dns.ttl} IN NS ns1.{self.zone}\n"
            # BIND refuses a zone whose in-zone NS has no address; loopback until edited
            f"ns1.{self.zone} {self._dns.ttl} IN A 127.0.0.1\n"
        )

    def _write(self, text: str) -> int:
        """Replace the file atomically (owner, group and mode kept, the old one kept as
        ``.sipctl.bak``); returns the mode it had."""
        try:
            create = self._dns.create_file  # read() refused a missing directory otherwise
            with open_local_dir(self.path.parent, create=create) as directory:
                name = self.path.name
                if directory.is_link(name):
                    raise symlink_refused(str(self.path))
                old = directory.lstat(name)
                if old is None:
                    mode, owner = _NEW_FILE_MODE, (os.geteuid(), os.getegid())
                else:
                    mode, owner = old.st_mode & 0o7777, (old.st_uid, old.st_gid)
                    backup = directory.copy_to_temp(name)
                    directory.rename(backup, name + BACKUP_SUFFIX)
                temp = directory.create_temp(name, text.encode("utf-8"), mode, owner)
                directory.rename(temp, name)
                directory.fsync()
        except OSError as exc:
            raise ProviderError(
                f"cannot write zone file {self.path}: {exc.strerror or exc}"
            ) from None
        return mode

    def _restore(self, old_text: str | None, mode: int) -> None:
        if old_text is None:
            with open_local_dir(self.path.parent) as directory:
                directory.unlink(self.path.name)
        else:
            self._write(old_text)

    def _reload_program(self) -> tuple[str, ...] | None:
        """What runs after the zone file changed: the zone_reload entry of this machine's
        host profile (``dns.reload`` names it), never a program from the spec."""
        key = f"{self._loaded.where(('dns', 'reload'))}: dns.reload"
        local = self._ctx.transports.get("local")
        return resolve_program(self._ctx, local, "zone_reload", self._dns.reload, key)

    def _reload(self, argv: Sequence[str]) -> str:
        shown = " ".join(argv)
        try:
            result = subprocess.run(
                list(argv),
                cwd=self._loaded.base_dir,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            raise ProviderError(
                f"the zone reload {shown!r} could not run ({exc}); the zone file was restored"
            ) from None
        self.reloads += 1
        if result.returncode != 0:
            said = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise ProviderError(
                f"the zone reload {shown!r} failed with exit status {result.returncode}"
                + (f" ({said[-1]})" if said else "")
                + "; the zone file was restored"
            )
        return f"ran {shown!r}"


def _collect(
    zone: dns.zone.Zone, names: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], LiveRrset]:
    """The live rrsets at ``names``, and a CNAME at any of their owners. Each owner's node
    is found once: ``Zone.get_rdataset`` parses an owner's text and checks it against the
    origin on every call (16 us), and a read asks each owner for two to four types."""
    nodes = {owner: zone.get_node(owner) for owner in owners(names)}
    found: dict[tuple[str, str], LiveRrset] = {}
    for owner, rdtype in [*names, *((o, CNAME) for o in nodes)]:
        node = nodes[owner]
        if node is None:
            continue
        rdataset = node.get_rdataset(zone.rdclass, dns.rdatatype.RdataType.make(rdtype))
        if rdataset is not None and len(rdataset):
            found[(owner, rdtype)] = LiveRrset.from_rdatas(rdataset.ttl, rdataset)
    return found


def _final_rrset(change: Change, full: LiveRrset | None) -> tuple[int, list[dns.rdata.Rdata]]:
    """The TTL and records of an owned rrset after ``change`` (``rrset_after``: the records
    of others in it stay as they are, and so does the TTL)."""
    after = rrset_after(change, full, 3600)
    return after.ttl, [parse(change.address.kind, r) for r in after.exact()]


def _records(zone: dns.zone.Zone) -> set[tuple[str, str, int, str]]:
    """Every record of a zone, for comparing two parses."""
    found = set()
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            for rdata in rdataset:
                kind = dns.rdatatype.to_text(rdataset.rdtype)
                found.add((str(name), kind, int(rdataset.ttl), rdata.to_text(relativize=False)))
    return found


def next_serial(serial: int, today: dt.date) -> int:
    """The serial after ``serial``: date-based (YYYYMMDDnn) when it is one, else +1."""
    base = int(today.strftime("%Y%m%d")) * 100
    if _is_date_serial(serial):
        return max(base, serial + 1)
    return (serial + 1) % 2**32 or 1


def _is_date_serial(serial: int) -> bool:
    if not 1970010100 <= serial <= 2999123199:
        return False
    try:
        dt.datetime.strptime(str(serial // 100), "%Y%m%d")
    except ValueError:
        return False
    return True


def _bump_serial(zone: dns.zone.Zone) -> int:
    origin = zone.origin
    assert origin is not None
    soa_set = zone.get_rdataset(origin, "SOA")
    if soa_set is None or not len(soa_set):
        raise ProviderError(f"zone {origin} has no SOA record")
    soa = soa_set[0]
    serial = next_serial(int(soa.serial), dt.datetime.now(dt.UTC).date())
    zone.replace_rdataset(origin, dns.rdataset.from_rdata(soa_set.ttl, soa.replace(serial=serial)))
    return serial


def trusted_realpath(named: Path) -> Path:
    """``named`` with its links resolved, each only when root or this user owns it (the
    rule of every write, ``providers/bookkeeping.py``): the zone may live in a directory of
    the DNS server's account, whose link to a file of root's must not put that file into a
    plan or an error."""
    path = Path(named.absolute())
    seen = 0
    parts = list(path.parts[1:])
    resolved = Path("/")
    while parts:
        part = parts.pop(0)
        here = resolved / part
        try:
            info = here.lstat()
        except OSError:  # missing: nothing to follow here, but a later '..' climbs back to
            # what exists, whose links count (as os.path.realpath resolves them)
            resolved = here if part != ".." else resolved.parent
            continue
        if not stat.S_ISLNK(info.st_mode):
            resolved = here if part != ".." else resolved.parent
            continue
        seen += 1
        if seen > 40 or info.st_uid not in (0, os.geteuid()):
            raise SymlinkRefused(
                f"dns.file {named}: {here} is a symbolic link that another account owns "
                f"(user id {info.st_uid}); sipctl does not read through links",
                hint="replace the link by the zone file itself, or use the path of the file",
            )
        target = here.readlink()
        parts = [*target.parts[1:], *parts] if target.is_absolute() else [*target.parts, *parts]
        if target.is_absolute():
            resolved = Path("/")
    return Path(os.path.normpath(resolved))
