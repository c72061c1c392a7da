"""Publishes the click-to-call page to a web root: ``webrtc.publish: TARGET:PATH``.

Any target kind (``local``, ``dir:``, ``ssh://``); SSH reuses ``asterisk.ssh`` when the
target is the PBX's host. The page's files are owned like sipctl's other managed files:
``read`` compares each by its content, ``apply`` replaces them atomically (keeping
``.sipctl.bak``) and refuses when a file changed since the plan read it. Nothing is reloaded:
a web server serves files as they are.

sipctl records what it published (each file's ``TARGET:PATH`` and sha256, ``PageRecord``),
so that a later spec whose ``publish`` names another target or path, or none, takes the old
page down: each recorded file that is no longer wanted is deleted where it still holds what
sipctl wrote; a file changed since then is its admin's now, left in place and named in the
plan. An old target that cannot be reached keeps its files in the record, for a later apply.

A file of the admin's that ``publish`` replaced (an ``index.html`` already in the web root)
is kept in the record, and taking the page down puts it back as it was; no copy of the page
is left behind (no ``.sipctl.bak``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from sipctl.errors import ProviderError
from sipctl.json_text import read_json
from sipctl.providers.base import Provider, RunContext, UpdateRider
from sipctl.providers.bookkeeping import (
    BOOKKEEPING_DIR,
    local_state_dir,
    open_local_dir,
    read_private_file,
    record_name,
    write_private_file,
)
from sipctl.providers.transport.batch import Fetched, HostRead, fetch
from sipctl.providers.transport.pool import FileWrite, HostTransport
from sipctl.providers.transport.read_gate import GateReads
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.webrtc import (
    OWN_DIR_FILES,
    RECORD_ADDRESS,
    file_address,
    file_value,
    publish_place,
    published_files,
    record_value,
)
from sipctl.reconciler.resources import Kept, LiveState, Resource
from sipctl.schemas.loader import LoadedSpec
from sipctl.schemas.targets import parse_target
from sipctl.schemas.values import check_publish, split_publish

if TYPE_CHECKING:
    from sipctl.reconciler.gitops.drift import StateStore

RECORD_FORMAT = 1
_RECORD_MODE = 0o600


def emptied_dir_candidates(
    removed: Sequence[str], pages: Sequence[str], own_dir_too: bool
) -> dict[str, list[str]]:
    """Target -> the directories a removal of the files ``removed`` (``TARGET:PATH``) may
    have emptied, deepest first: those between each file and its page's own directory (the
    deepest one holding an ``index.html`` of ``pages``, the recorded and wanted files, or on
    a host the shared static files' ``sipctl-call.js``). The page's own directory too when
    sipctl named it (``own_dir_too``: a host's customer's, by its domain, and the shared
    one); never one above it, where the admin's web root is."""
    page_dirs: dict[str, set[str]] = {}
    for name in pages:
        target, path = split_publish(name)
        if posixpath.basename(path) in OWN_DIR_FILES:
            page_dirs.setdefault(target, set()).add(posixpath.dirname(path))
    found: dict[str, set[str]] = {}
    for name in removed:
        target, path = split_publish(name)
        owners = [d for d in page_dirs.get(target, ()) if path.startswith(d.rstrip("/") + "/")]
        if not owners:
            continue
        own = max(owners, key=len)
        directory = posixpath.dirname(path)
        while directory != own and directory.startswith(own.rstrip("/") + "/"):
            found.setdefault(target, set()).add(directory)
            directory = posixpath.dirname(directory)
        if own_dir_too and directory == own and own != "/":
            found.setdefault(target, set()).add(own)
    return {
        target: sorted(dirs, key=lambda d: (-d.count("/"), d)) for target, dirs in found.items()
    }


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def host_record_path(config_dir: str, domain: str) -> str:
    """Where the record lives on the PBX (``asterisk.target``) of a spec of ``domain``."""
    return f"{BOOKKEEPING_DIR}/{record_name(f'{config_dir}/webrtc-page-{domain}', '.json')}"


def unmanaged_page_note(raw: bytes | None, where: str) -> str | None:
    """What to say when a page sipctl published is recorded but the spec has no ``webrtc``
    section (that layer is then not managed at all, so nothing takes the page down)."""
    files = parse_record(raw)
    if not files:
        return None
    places = sorted({name.rsplit("/", 1)[0] for name in files})
    return (
        f"the click-to-call page sipctl published ({len(files)} file(s) at "
        f"{', '.join(places)}) stays up: the spec has no webrtc section, so sipctl no longer "
        "manages it; to take it down, apply once with the webrtc section but without "
        f"webrtc.publish (or delete those files and {where})"
    )


class PageRecord:
    """sipctl's record of the page it published, where every later spec of the domain finds
    it whatever its ``publish`` says: in the bookkeeping directory on the PBX
    (``asterisk.target``), or on this machine for a spec without an asterisk section.
    """

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        spec = loaded.spec
        asterisk = spec.asterisk
        self._transport: HostTransport | None = None
        if asterisk is not None:
            self.path = host_record_path(asterisk.config_dir, spec.domain)
            self._transport = ctx.transports.get(asterisk.target, asterisk.ssh)
            self.where = f"{self.path} on {parse_target(asterisk.target)}"
        else:
            key = f"{loaded.base_dir.resolve()}/webrtc-page-{spec.domain}"
            self.path = str(local_state_dir() / record_name(key, ".json"))
            self.where = self.path

    def host_read(self) -> HostRead | None:
        """What reading the record asks of the PBX (None: it is on this machine)."""
        if self._transport is None:
            return None
        return HostRead(self._transport, files=(self.path,))

    def read_from(self, fetched: Fetched) -> bytes | None:
        """``read``, from what ``host_read`` fetched."""
        return fetched.files[self.path].content

    def read(self) -> bytes | None:
        read = self.host_read()
        if read is not None:
            return self.read_from(fetch([read])[0])
        try:
            return read_private_file(Path(self.path))
        except OSError as exc:
            raise ProviderError(f"cannot read {self.path}: {exc.strerror}") from None

    def write(self, content: bytes | None, expected: bytes | None) -> None:
        """Replace (``content`` None: delete) the record; on a host, only if it still holds
        ``expected``."""
        if self._transport is not None:
            if content is not None:
                self._transport.ensure_bookkeeping_dir()
            write = FileWrite(self.path, content, expected, _RECORD_MODE, keep_backup=False)
            self._transport.write_files([write])
            return
        path = Path(self.path)
        try:
            if content is not None:
                write_private_file(path, content, _RECORD_MODE)
            else:
                with open_local_dir(path.parent) as directory:
                    directory.unlink(path.name)
        except FileNotFoundError:
            pass  # no directory, so no record either
        except OSError as exc:
            raise ProviderError(f"cannot write {self.path}: {exc.strerror}") from None


def parse_record(raw: bytes | None) -> dict[str, str]:
    """``TARGET:PATH`` -> sha256 of each file the record lists (empty: none, or unreadable)."""
    if raw is None:
        return {}
    try:
        data = read_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {
        str(name): sha
        for name, sha in files.items()
        if isinstance(sha, str) and _is_place(str(name))
    }


def _is_place(name: str) -> bool:
    """A recorded name is a ``TARGET:PATH`` as ``webrtc.publish`` accepts one (the record
    is sipctl's own, in a root-only directory; whatever else is in it is ignored)."""
    try:
        return check_publish(name) == name
    except ValueError:
        return False


def parse_originals(raw: bytes | None) -> dict[str, bytes]:
    """``TARGET:PATH`` -> the admin's file that publishing the page there replaced."""
    try:
        data = read_json(raw.decode("utf-8")) if raw is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    kept = data.get("originals") if isinstance(data, dict) else None
    if not isinstance(kept, dict):
        return {}
    originals: dict[str, bytes] = {}
    for name, text in kept.items():
        if isinstance(text, str) and _is_place(str(name)):
            try:
                originals[str(name)] = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                continue
    return originals


def record_text(files: dict[str, str], originals: dict[str, bytes] | None = None) -> bytes:
    data: dict[str, object] = {"format": RECORD_FORMAT, "files": dict(sorted(files.items()))}
    if originals:
        data["originals"] = {
            name: base64.b64encode(content).decode("ascii")
            for name, content in sorted(originals.items())
        }
    return (json.dumps(data, indent=1) + "\n").encode()


@dataclass
class PageKept(Kept):
    """What the page provider's read keeps for its apply.

    contents     the published files as read, exactly (None: missing), by name
    record       the record of what was published, as read
    unreachable  the recorded hashes of published files that could not be read now (kept
                 in the new record)
    recorded     the names the record lists (files sipctl published)
    originals    the admin's files that the page replaced, by name (put back at take-down)
    """

    contents: dict[str, bytes | None] = field(default_factory=dict)
    record: bytes | None = None
    unreachable: dict[str, str] = field(default_factory=dict)
    recorded: frozenset[str] = frozenset()
    originals: dict[str, bytes] = field(default_factory=dict)


class WebrtcPageProvider(Provider):
    layer: ClassVar[str] = "webrtc"
    name: ClassVar[str] = "webrtc"

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        if loaded.spec.webrtc is None:
            raise ValueError("the spec has no webrtc section")
        self._loaded = loaded
        self._ctx = ctx
        self._target, self._root = publish_place(loaded.spec) or ("local", "")
        self._record = PageRecord(loaded, ctx)

    @property
    def target_id(self) -> str:
        if not self._root:
            return "(not published)"  # what it reads is sipctl's record of an old page
        return f"{parse_target(self._target).key}:{self._root}"

    def state_store(self) -> StateStore | None:
        """The record of what was applied (``drift``) lives beside the page's own record:
        with the asterisk host's, or on this machine for a spec without asterisk."""
        from sipctl.reconciler.gitops.drift import host_state_store

        spec = self._loaded.spec
        if spec.asterisk is not None:
            return host_state_store(self._loaded, self._ctx, "asterisk")
        from sipctl.providers.transport.host_lock import LocalStateStore

        key = f"{self._loaded.base_dir.resolve()}/webrtc-page-{spec.domain}"
        return LocalStateStore(local_state_dir() / record_name(key, ".state.json"))

    def _transport(self, target: str) -> HostTransport:
        return self._ctx.transports.get(target, self._loaded.spec.publish_ssh(target))

    def gate_reads(self, desired: Sequence[Resource]) -> list[GateReads]:
        """What ``read`` asks of hosts, for their read gates: the record and the page's files
        (the files of an OLDER page, named only by the record, are not known here: a gate
        refuses them until it is rendered again after the apply that moved the page)."""
        reads: list[GateReads] = []
        asterisk = self._loaded.spec.asterisk
        if asterisk is not None:
            reads.append(GateReads(asterisk.target, files=(self._record.path,)))
        by_target: dict[str, list[str]] = {}
        for resource in desired:
            if resource.address.kind == "file":
                target, path = split_publish(resource.address.name)
                by_target.setdefault(target, []).append(path)
        reads += [GateReads(target, files=tuple(paths)) for target, paths in by_target.items()]
        return reads

    # --- read ---------------------------------------------------------------------------------

    def host_reads(self, desired: Sequence[Resource]) -> list[HostRead]:
        """The record (on the PBX) and the page's files, with the hosts' other reads; the
        files of an older page are known only from the record (``read_fetched`` reads them
        then)."""
        record = self._record.host_read()
        reads = [record] if record is not None else []
        for target, paths in _by_target(_wanted(desired)).items():
            reads.append(HostRead(self._transport(target), files=tuple(paths)))
        return reads

    def read(self, desired: Sequence[Resource]) -> LiveState:
        return self.read_fetched(desired, fetch(self.host_reads(desired)))

    def read_fetched(self, desired: Sequence[Resource], fetched: Sequence[Fetched]) -> LiveState:
        rest = list(fetched)
        on_host = self._record.host_read() is not None
        raw = self._record.read_from(rest.pop(0)) if on_host else self._record.read()
        targets = list(_by_target(_wanted(desired)))
        return self._live(desired, raw, dict(zip(targets, rest, strict=True)))

    def _live(
        self, desired: Sequence[Resource], raw: bytes | None, fetched: Mapping[str, Fetched]
    ) -> LiveState:
        live = LiveState()
        recorded = parse_record(raw)
        originals = parse_originals(raw)
        if raw is not None:
            live.resources[RECORD_ADDRESS] = record_value(recorded)
        wanted = _wanted(desired)
        old = {name: sha for name, sha in recorded.items() if name not in wanted}
        contents, unreachable = self._read_files([*wanted, *old], live, fetched)
        for name in wanted:
            content = contents.get(name)
            if content is not None:
                live.resources[file_address(name)] = file_value(content)
        for name, sha in old.items():
            content = contents.get(name)
            if name in unreachable or content is None:
                continue  # unreachable: kept in the record; missing: nothing left to remove
            if _sha256(content) == sha:
                live.resources[file_address(name)] = file_value(content)
                if name in originals:
                    live.notes.append(
                        f"{name}: taking the page down puts back the file it replaced"
                    )
            else:
                live.notes.append(
                    f"{name} changed since sipctl published it there: it is left in place "
                    "(the page no longer goes there; remove the file when nobody needs it)"
                )
        live.kept = PageKept(
            contents=contents,
            record=raw,
            unreachable={n: recorded[n] for n in unreachable},
            recorded=frozenset(recorded),
            originals=originals,
        )
        live.fingerprint_extra = {
            "record": _sha256(raw) if raw is not None else None,
            **{n: _sha256(c) if c is not None else None for n, c in contents.items()},
        }
        return live

    def _read_files(
        self, names: Sequence[str], live: LiveState, fetched: Mapping[str, Fetched]
    ) -> tuple[dict[str, bytes | None], set[str]]:
        """Each file's content: what ``fetched`` (by target) got, the rest in one batch per
        target. A target of an old page that cannot be reached is a note; its files are
        returned as unreachable."""
        contents: dict[str, bytes | None] = {}
        unreachable: set[str] = set()
        for target, paths in _by_target(names).items():
            try:
                got = fetched.get(target)
                found = dict(got.files) if got is not None else {}
                missing = [path for path in paths if path not in found]
                if missing:
                    found.update(self._transport(target).read_files(missing))
            except ProviderError as exc:
                if target == self._target:
                    raise
                unreachable.update(paths.values())
                live.notes.append(
                    f"{target}: {exc.message}; the page sipctl published there earlier "
                    f"({len(paths)} file(s)) stays recorded, to be removed by a later apply"
                )
                continue
            contents.update({name: found[path].content for path, name in paths.items()})
        return contents, unreachable

    # --- apply --------------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        del riders  # no lock site of its own: nothing rides here
        if not changes:
            return []
        kept = live.kept_as(PageKept)
        contents = kept.contents
        texts = published_files(self._loaded.spec)
        originals = dict(kept.originals)
        writes: dict[str, list[FileWrite]] = {}
        said: dict[str, str] = {}
        for change in changes:
            if change.address.kind != "file":
                continue
            name = change.address.name
            target, path = split_publish(name)
            live_content = contents.get(name)
            if change.action == "delete":
                # a page taken down leaves no copy in the web root (its .sipctl.bak goes
                # too); a file of the admin's that it replaced is put back as it was
                original = originals.pop(name, None)
                write = FileWrite(path, original, live_content, keep_backup=False)
                said[path] = "removed" if original is None else "put back the original"
            else:
                if live_content is not None and name not in kept.recorded:
                    originals[name] = live_content  # the admin's: kept to be put back
                write = FileWrite(path, texts[name].encode("utf-8"), live_content)
                said[path] = "wrote"
            writes.setdefault(target, []).append(write)
        lines: list[str] = []
        # the page's new place first, then the old one emptied: never a moment without it
        for target in sorted(writes, key=lambda t: t != self._target):
            self._transport(target).write_files(writes[target])
            for write in writes[target]:
                lines.append(f"webrtc {parse_target(target).key}: {said[write.path]} {write.path}")
        files = {name: _sha256(text.encode("utf-8")) for name, text in texts.items()}
        files.update(kept.unreachable)
        kept_originals = {n: c for n, c in originals.items() if n in files}
        before = kept.record
        after = record_text(files, kept_originals) if files else None
        if after != before:
            self._record.write(after, before)
            lines.append(f"webrtc: recorded the published page in {self._record.where}")
        lines += self._remove_emptied_dirs(changes, [*kept.recorded, *texts])
        return lines

    def _remove_emptied_dirs(self, changes: Sequence[Change], pages: Sequence[str]) -> list[str]:
        """The directories sipctl made for the page that removed files left empty, removed
        (after the record: a directory that cannot go is a line, never a failed apply)."""
        removed = [c.address.name for c in changes if c.action == "delete"]
        lines: list[str] = []
        by_target = emptied_dir_candidates(removed, pages, self._loaded.spec.hosting is not None)
        for target, dirs in by_target.items():
            where = parse_target(target).key
            try:
                gone = self._transport(target).remove_empty_dirs(dirs)
            except ProviderError as exc:
                lines.append(f"webrtc {where}: left the page's emptied directories: {exc.message}")
                continue
            lines += [f"webrtc {where}: removed the empty directory {d}" for d in gone]
        return lines


def _wanted(desired: Sequence[Resource]) -> list[str]:
    """The page's files (``target|path`` names) the spec wants."""
    return [r.address.name for r in desired if r.address.kind == "file"]


def _by_target(names: Sequence[str]) -> dict[str, dict[str, str]]:
    """``names`` by target: path -> name."""
    by_target: dict[str, dict[str, str]] = {}
    for name in names:
        target, path = split_publish(name)
        by_target.setdefault(target, {})[path] = name
    return by_target
