"""The ``zonefile`` DNS provider: an RFC 1035 zone file on this machine.

It owns exactly what the rfc2136 provider owns (see ``dns_owned``) and keeps every other
record. Writing bumps the SOA serial (YYYYMMDDnn when the serial is date-based, else +1),
replaces the file atomically (a temp file in the same directory, then rename; the mode is
kept), and runs ``dns.reload_command`` if one is given; when that fails the old file is put
back. The file is written in a stable order (names sorted, one record per line, explicit
TTLs) so that ``git diff`` of a zone kept in git shows only what changed. Comments and the
layout of a hand-written file are not kept: records are, in meaning.

A missing file is created on apply with a minimal SOA and NS, and the plan says so.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import dns.exception
import dns.name
import dns.rdataset
import dns.rdatatype
import dns.zone

from sipctl.errors import ProviderError, SpecError, StalePlanError
from sipctl.providers.dns.owned import (
    LiveRrset,
    base_names,
    desired_hosts,
    host_names,
    listed_hosts,
    owned_state,
    private_rrsets,
    records_of,
    ttl_of,
)
from sipctl.reconciler.dns_records import absolute, parse
from sipctl.reconciler.plan import Change
from sipctl.reconciler.resources import LiveState, Resource

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Dns

_NEW_FILE_MODE = 0o644
_SOA_TIMERS = "3600 600 1209600 300"  # refresh retry expire minimum (RFC 1912 style)


class ZoneFileProvider:
    """A zone file read and written with dnspython."""

    layer: ClassVar[str] = "dns"
    name: ClassVar[str] = "zonefile"

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        if loaded.spec.dns is None or loaded.spec.dns.file is None:
            raise SpecError(f"{loaded.source}: provider zonefile needs dns.file")
        self._loaded = loaded
        self._ctx = ctx
        self._dns: Dns = loaded.spec.dns
        self.zone = absolute(loaded.spec.zone)
        self.domain = loaded.spec.domain
        self.path = loaded.resolve_path(loaded.spec.dns.file)
        self.reloads = 0  # how often reload_command ran (tests)

    @property
    def target_id(self) -> str:
        return f"zonefile:{self._dns.file}"

    # --- read -------------------------------------------------------------------------------

    def read(self, desired: Sequence[Resource]) -> LiveState:
        text = self._read_text()
        if text is None:
            live = owned_state({}, desired)
            live.notes.append(
                f"zone file {self.path} does not exist: apply creates it with a minimal SOA and "
                f"NS (ns1.{self.zone} at 127.0.0.1, hostmaster.{self.zone}); edit those to "
                "your real name servers"
            )
            live.private.update(exists=False, names=[])
            live.fingerprint_extra = {"exists": False}
            return live
        zone = self._parse(text)
        names = [*base_names(self.domain), *host_names(desired_hosts(desired))]
        rrsets = _collect(zone, names)
        listed = listed_hosts(rrsets, self.domain, self.zone)
        more = [n for n in host_names(listed) if n not in names]
        rrsets.update(_collect(zone, more))
        live = owned_state(rrsets, desired)
        live.private.update(exists=True, names=[list(n) for n in names + more])
        live.fingerprint_extra = {"exists": True}
        self._ctx.log(f"zonefile: read {len(rrsets)} owned rrset(s) from {self.path}")
        return live

    def _read_text(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProviderError(f"cannot read zone file {self.path}: {exc}") from None

    def _parse(self, text: str) -> dns.zone.Zone:
        try:
            return dns.zone.from_text(
                text, origin=self.zone, relativize=False, filename=str(self.path)
            )
        except dns.exception.DNSException as exc:
            raise ProviderError(
                f"zone file {self.path} is not a valid zone for {self.zone}: {exc}"
            ) from None

    # --- apply ------------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], live: LiveState) -> list[str]:
        if not changes:
            return []
        old_text = self._read_text()
        if (old_text is not None) != bool(live.private.get("exists")):
            raise StalePlanError(
                f"zone file {self.path} was created or removed since it was read; nothing was "
                "changed. Run plan again"
            )
        if old_text is None:
            zone = self._parse(self._minimal_zone())
        else:
            zone = self._parse(old_text)
            names = [(str(o), str(t)) for o, t in live.private.get("names", [])]
            if _collect(zone, names) != private_rrsets(live):
                raise StalePlanError(
                    f"zone file {self.path}: records sipctl owns changed since they were read; "
                    "nothing was changed. Run plan again"
                )
        full = private_rrsets(live)
        for change in changes:
            _apply_change(zone, change, full.get((change.address.name, change.address.kind)))
        serial = _bump_serial(zone)
        new_text = _zone_text(zone)
        mode = self._write(new_text)
        lines = [f"zone file {self.path}: {len(changes)} rrset(s) changed, serial {serial}"]
        if self._dns.reload_command:
            try:
                lines.append(self._reload())
            except ProviderError:
                self._restore(old_text, mode)
                raise
        return lines

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
        """Replace the file atomically; returns the mode it had (kept on the new file)."""
        try:
            mode = self.path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = _NEW_FILE_MODE
        _atomic_write(self.path, text, mode)
        return mode

    def _restore(self, old_text: str | None, mode: int) -> None:
        if old_text is None:
            self.path.unlink(missing_ok=True)
        else:
            _atomic_write(self.path, old_text, mode)

    def _reload(self) -> str:
        command = self._dns.reload_command
        assert command is not None
        try:
            result = subprocess.run(
                shlex.split(command),
                cwd=self._loaded.base_dir,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            raise ProviderError(
                f"reload_command {command!r} could not run ({exc}); the zone file was restored"
            ) from None
        self.reloads += 1
        if result.returncode != 0:
            said = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise ProviderError(
                f"reload_command {command!r} failed with exit status {result.returncode}"
                + (f" ({said[-1]})" if said else "")
                + "; the zone file was restored"
            )
        return f"ran {command!r}"


def _collect(
    zone: dns.zone.Zone, names: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], LiveRrset]:
    found: dict[tuple[str, str], LiveRrset] = {}
    for owner, rdtype in names:
        rdataset = zone.get_rdataset(owner, rdtype)
        if rdataset is not None and len(rdataset):
            found[(owner, rdtype)] = LiveRrset.from_rdatas(rdataset.ttl, rdataset)
    return found


def _apply_change(zone: dns.zone.Zone, change: Change, full: LiveRrset | None) -> None:
    owner, rdtype = change.address.name, change.address.kind
    after = set(records_of(change.after))
    ttl = ttl_of(change.after, 3600)
    keep: list[str] = []
    if rdtype == "NAPTR" and full is not None:
        # only the SIP NAPTRs are ours; the others stay as they are, and so does the TTL
        owned = set(records_of(change.before))
        keep = [exact for canonical_text, exact in full.records if canonical_text not in owned]
        if keep:
            ttl = full.ttl
    rdatas = [parse(rdtype, r) for r in keep] + [parse(rdtype, r) for r in sorted(after)]
    if rdatas:
        zone.replace_rdataset(owner, dns.rdataset.from_rdata_list(ttl, rdatas))
    else:
        zone.delete_rdataset(owner, rdtype)


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


def _zone_text(zone: dns.zone.Zone) -> str:
    """The zone in a stable order: SOA and NS first, then names sorted, types sorted."""
    origin = zone.origin
    assert origin is not None
    lines = [f"$ORIGIN {origin}"]
    apex = zone.get_node(origin)
    if apex is not None:
        for rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS):
            rdataset = apex.get_rdataset(zone.rdclass, rdtype)
            if rdataset is not None:
                lines.append(rdataset.to_text(dns.name.empty, origin=origin, relativize=True))
    for name in sorted(zone.nodes):
        node = zone.nodes[name]
        owner = name.relativize(origin) if name.is_subdomain(origin) else name
        for rdataset in sorted(node.rdatasets, key=lambda r: (r.rdtype, r.covers)):
            if name == origin and rdataset.rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS):
                continue
            text = rdataset.to_text(owner, origin=origin, relativize=True)
            lines.append("\n".join(sorted(text.splitlines())))
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    temp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temp.chmod(mode)
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ProviderError(f"cannot write zone file {path}: {exc.strerror or exc}") from None
