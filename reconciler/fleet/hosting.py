"""A hosting directory in the fleet: each host file with its customers is one unit.

``sipctl plan -f DIR`` plans each file of a hosting directory with the files beside it (a
host's plan holds its customers' lines and removes a departed customer; a customer's takes
its host's servers). A workflow holds what was synced, never the sender's disk, so a host's
unit carries the texts of every spec file of its directory, and each of its activities
writes them into a private directory of the worker (``materialised``) and loads the file
it plans from there, as ``plan -f DIR`` loads it from the directory.

Relative paths in those files (a zone file, a ``dir:`` target, a key file) stay where they
were on the sender: the files are loaded with the sender's directory as theirs
(``LoadedSpec.base_dir``), as a domain's spec is; only the files beside them are read from
the private copy.

A hosting directory is synced whole: a host's file without its customers would plan the
removal of every one of them, and a customer's file without its host has no servers to
point at. ``units`` refuses a sync that holds part of one, before anything is sent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.errors import SipctlError, SpecError
from sipctl.reconciler.fleet.model import (
    HOSTING_PREFIX,
    Part,
    SpecChange,
    SpecFile,
    dns_queue_name,
    host_queue_name,
)

if TYPE_CHECKING:
    from sipctl.reconciler.engine import PlanRun
    from sipctl.schemas.loader import LoadedSpec

# The texts of a unit travel in every activity's input, and Temporal refuses a payload of
# more than 2 MB (warns above 512 KB): a directory larger than this is refused at sync.
MAX_UNIT_BYTES = 512 * 1024
# The plans of one step's files travel back, and into the apply's input beside the texts.
MAX_PLANS_BYTES = 1024 * 1024
# Private copies not used for this long are removed when another is made.
_KEEP_SECONDS = 24 * 3600.0

SYNC_WHOLE_HINT = (
    "nothing was sent to the fleet. A hosting directory is synced whole ('sipctl fleet sync "
    "-f DIR'): each host file with its customer files is one workflow, planned as "
    "'sipctl plan -f DIR' plans it (see: sipctl docs fleet)"
)


def is_hosting_file(loaded: LoadedSpec) -> bool:
    return loaded.spec.hosting is not None or loaded.spec.host is not None


def units(loaded: Sequence[tuple[Path, LoadedSpec]]) -> list[SpecChange]:
    """The hosting units of a sync's files: one per host file, carrying its directory's
    spec files. Refused when a hosting file's directory is not synced whole."""
    from sipctl.reconciler.gitops.spec_files import select_specs

    synced = {path.resolve(): (path, spec) for path, spec in loaded}
    found: list[SpecChange] = []
    seen: set[Path] = set()
    for path, spec in loaded:
        if not is_hosting_file(spec):
            continue
        directory = path.resolve().parent
        if directory in seen:
            continue
        seen.add(directory)
        in_directory = [p.resolve() for p in select_specs([directory]).paths]
        missing = sorted(p.name for p in in_directory if p not in synced)
        if missing:
            raise SpecError(_not_whole(path, spec, directory, missing), hint=SYNC_WHOLE_HINT)
        files = [synced[p] for p in sorted(in_directory)]
        hosts = [(p, s) for p, s in files if s.spec.hosting is not None]
        found.extend(_unit(host, directory, files) for host in hosts)
    return found


def _not_whole(path: Path, loaded: LoadedSpec, directory: Path, missing: list[str]) -> str:
    spec = loaded.spec
    if spec.hosting is not None:
        which = f"a host's file (hosting: {spec.hosting.name})"
        why = "planned without its customer files it would remove those customers"
    else:
        which = f"a customer's file (host: {spec.host})"
        why = "planned without its host's file it has no servers to point at"
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return (
        f"{path}: {which}: the fleet reconciles a hosting directory whole, and {shown} of "
        f"{directory} are not in this sync ({why}); sync the directory: "
        f"sipctl fleet sync -f {directory}"
    )


def _unit(
    host: tuple[Path, LoadedSpec], directory: Path, files: list[tuple[Path, LoadedSpec]]
) -> SpecChange:
    """The unit of one host file: every spec file of its directory (the files beside it are
    read, as its plan reads them), and a part per file it plans: its own, then each of its
    customers' (applied in that order, as 'apply -f DIR' applies them)."""
    host_path, host_loaded = host
    composed = host_loaded.composed or {}
    customers = [(p, s) for p, s in files if p.name in composed and p != host_path]
    texts = [SpecFile(p.name, s.text) for p, s in files]
    size = sum(len(f.text.encode("utf-8")) for f in texts)
    unit = f"{HOSTING_PREFIX}{host_loaded.spec.domain}"
    if size > MAX_UNIT_BYTES:
        raise SpecError(
            f"{host_path}: {unit}: the spec files of {directory} hold {size} bytes, more than "
            f"a workflow carries ({MAX_UNIT_BYTES}); reconcile this directory with "
            f"'sipctl plan -f {directory}' and 'sipctl apply -f {directory}'",
            hint="nothing was sent to the fleet",
        )
    return SpecChange(
        domain=unit,
        source=str(directory),
        text="",
        parts=_parts([(host_path, host_loaded), *customers]),
        files=texts,
        customers=sorted(s.spec.domain for _, s in customers),
    )


def _parts(files: list[tuple[Path, LoadedSpec]]) -> list[Part]:
    """The files by queue, in order (the host's first): each file planned whole on its
    host's queue (a customer's file has none of a host's layers: its DNS provider's). One
    activity plans a queue's files, so a unit of many customers is a few activities, not
    one (carrying every text) per file."""
    from sipctl.reconciler.layers import LAYERS

    parts: dict[str, Part] = {}
    for path, loaded in files:
        queue = host_queue_name(loaded) or dns_queue_name(loaded)
        part = parts.setdefault(queue, Part(queue, []))
        part.files.append(path.name)
        managed = [layer.name for layer in LAYERS if layer.managed(loaded.spec)]
        part.layers.extend(name for name in managed if name not in part.layers)
    return list(parts.values())


def part_summary(summaries: dict[str, str], runs: Sequence[tuple[str, PlanRun]]) -> str:
    """A hosting part's plans in one line: each file with changes, and how many have
    none (a host of 500 customers changes one or two at a time)."""
    changed = [f"{file}: {summaries[file]}" for file, run in runs if run.plan.has_changes]
    quiet = len(runs) - len(changed)
    if not changed:
        return f"{summaries[runs[0][0]]} ({quiet} file(s))"
    return "; ".join(changed + ([f"{quiet} file(s) without changes"] if quiet else []))


# --- on a worker ------------------------------------------------------------------------------


def private_root() -> Path:
    """This user's directory of the units' copies, readable by no one else; refused when
    it is not that (another user made it, or it is a link)."""
    root = Path(tempfile.gettempdir()) / f"sipctl-fleet-{os.getuid()}"
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
    except OSError as exc:
        raise SipctlError(
            f"{root}: cannot make the fleet's private directory: {exc.strerror}"
        ) from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise SipctlError(
            f"{root}: the fleet's private directory is not a directory of this user's "
            "that only it can read (mode 0700)",
            hint="remove it; the worker makes it again",
        )
    return root


def unit_directory(change: SpecChange) -> Path:
    """Where a worker keeps the copy of ``change``'s files: named by the unit, its directory
    and its files, so that a plan and the apply of it (on any worker) read the same path."""
    name = hashlib.sha256(f"{change.domain}\0{change.source}\0{change.digest}".encode())
    return private_root() / name.hexdigest()[:24]


def materialised(change: SpecChange) -> Path:
    """The directory holding ``change``'s files, written if missing (whole, or not at all:
    written beside it, then renamed)."""
    target = unit_directory(change)
    if target.is_dir():
        os.utime(target)  # in use: not removed as old
        return target
    _remove_old(target.parent)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".new-"))
    try:
        for spec in change.files:
            if spec.name != Path(spec.name).name or spec.name in ("", ".", ".."):
                raise SipctlError(f"{change.domain}: {spec.name!r} is not a file name")
            file = staging / spec.name
            file.write_text(spec.text, encoding="utf-8")
            file.chmod(0o600)
        staging.rename(target)
    except OSError:
        if not target.is_dir():  # else another activity made it meanwhile: the same files
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _remove_old(root: Path) -> None:
    """Copies not used for a day: a unit's later activity writes its copy again."""
    now = time.time()
    for entry in root.iterdir():
        try:
            if now - entry.lstat().st_mtime > _KEEP_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


def load_file(change: SpecChange, name: str) -> LoadedSpec:
    """File ``name`` of the unit, loaded as 'plan -f DIR' loads it: with the files beside it
    (from the private copy), its relative paths from the sender's directory."""
    from sipctl.schemas.hosting import compose
    from sipctl.schemas.loader import load_spec_text

    directory = materialised(change)
    path = directory / name
    text = next((f.text for f in change.files if f.name == name), None)
    if text is None:
        raise SipctlError(f"{change.domain}: no file {name} in the unit")
    loaded = load_spec_text(text, source=str(path), base_dir=Path(change.source))
    return compose(loaded, path)


def shown(change: SpecChange, text: str) -> str:
    """``text`` with the private copy's paths as the sender named them."""
    if not change.files:
        return text
    return text.replace(str(unit_directory(change)), change.source)


def shown_json(change: SpecChange, text: str) -> str:
    """``shown`` in JSON text: the sender's paths as JSON spells them."""
    if not change.files:
        return text
    import json

    return text.replace(str(unit_directory(change)), json.dumps(change.source)[1:-1])


def check_plans_size(change: SpecChange, queue: str, count: int, plans: str) -> None:
    """Refuse plans larger than a workflow step carries (``MAX_PLANS_BYTES``), with what to
    do, rather than fail on Temporal's payload limit."""
    size = len(plans.encode("utf-8"))
    if size > MAX_PLANS_BYTES:
        raise SpecError(
            f"the plans of {count} file(s) on {queue} hold {size} bytes, more than a "
            f"workflow step carries ({MAX_PLANS_BYTES}); reconcile {change.source} with "
            f"'sipctl plan -f DIR' and 'sipctl apply -f DIR'"
        )
