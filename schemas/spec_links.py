"""A spec file reached through a symbolic link: the one rule of where it may lead.

Git stores symbolic links, so a merge request can add ``evil.yaml -> /etc/shadow`` to a
hosting directory, or replace ``sipctl.yaml`` with such a link; a run that read it would
show the runner's file in its errors and skip reasons. The rule: a spec file that is a link
whose target (followed to its end as the kernel does: ``realpath(strict=True)``) is a
regular file outside the directory the link is in, or inside a ``.git`` directory below
it (``.git/config`` holds the pipeline's token on a CI checkout), is not read where the
run is strict; a link within the directory (``customer.yaml -> customers/acme.yaml``) is
read as before.

The same rule holds for each directory on the way to the file: a merge request can as well
replace the directory of the specs (``hosting -> /etc``), or one above it, with a link, and
``-f hosting`` then listed and read the runner's files. So the directory given to ``-f``
and every directory of a spec file's path that is a link must lead to a directory inside
the directory that link is in (and not into its ``.git``). The directories in question are
those of the checkout: the working directory (where a pipeline runs) and below it. Above
it, and on a path that leaves it (``/srv/specs``, ``../shared``), the directories are the
runner's choice (``/builds`` is a link on some runners); the file itself, and a directory
given to ``-f``, are checked wherever they are.

Every reader of a spec file goes through ``refuse_link_out``: the loader (``load_spec``),
the files a hosting file is read with (``schemas/hosting.py``'s ``_spec_text``, through
which ``hosting_reach`` and ``declaring_file`` read too), the files a host's plan checks
before it plans a departure (``reconciler/departures.py``), ``validate --json``'s lookup of
a problem's key (``schemas/problems.py``), a saved plan's check that its spec is here
(``engine``), and ``-f DIR``'s sniffing (``spec_files.skip_reason``), which takes such a
file as a spec so that its load refuses it: the run fails naming it, and a host never
takes it for a departed customer. A directory given to ``-f`` is checked before it is
listed (``spec_files._expand``).

When it applies: where the run is strict (a runner profile, or ``CI``), as the places of
``reconciler/runner_places.py`` but zone files: on an admin's own machine the admin wrote
the links (a spec kept in another checkout, linked into the hosting directory) and reads
only what the admin can read anyway. Unlike those places, a runner profile lists no more
places for spec files: what a pipeline plans is its checkout, and a file it should plan is
put there (copied, not linked). A link out that ends at no regular file (missing, a loop, a
device or pipe) is left to the reader, which says what it is without reading a file of the
runner; the system's own links to a process's open files (``-f /dev/stdin``, ``-f
<(make-spec)``) are not a checkout's and are read as before.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sipctl.errors import SpecError

# Links the system keeps, not a checkout: /dev/stdin, /dev/fd/N (<(cmd)), /proc/self/fd/N.
_SYSTEM_LINK_DIRS = ("/dev", "/proc")


@dataclass(frozen=True)
class LinkOut:
    """A link on the way to a spec file that leads out of the directory it is in."""

    link: Path  # the link, as the path given spells it: the file itself or a directory of it
    target: str  # where it leads, resolved
    directory: bool  # the target is a directory (else a regular file)


def run_is_strict() -> bool:
    """Whether this run is strict (a runner profile is named, or CI is set), as
    ``bindings.runner_of`` decides, without reading the profile."""
    from sipctl.reconciler.bindings import run_is_strict as strict

    return strict(os.environ)


def link_out(path: Path) -> LinkOut | None:
    """The first link on the way to ``path`` that leads outside the directory it is in, or
    into a ``.git`` directory below it: a directory of the path in the checkout (the
    working directory and below), then ``path`` itself, wherever it is. None: there is
    none (no link, links within, system links, links that end at no regular file or
    directory: the reader says what they are)."""
    return _directory_out(path) or _leads_out(path, path)


def _directory_out(path: Path) -> LinkOut | None:
    """The first directory of ``path`` that is a link out (``_leads_out``) to a directory,
    among those in the working directory or below it, followed as the kernel follows them
    (one ``lstat`` a directory that is no link)."""
    if len(path.parts) < 2:
        return None  # a file of the working directory: no directory on the way
    checkout = str(Path.cwd())  # resolved by the kernel
    real = path.anchor if path.is_absolute() else checkout
    shown = Path(path.anchor)
    for part in path.parts[1 if path.is_absolute() else 0 : -1]:
        shown = shown / part
        if part == "..":
            real = str(Path(real).parent)
            continue
        entry = str(Path(real, part))
        try:
            if not stat.S_ISLNK(os.lstat(entry).st_mode):
                real = entry
                continue
            if _inside(real, checkout):
                found = _leads_out(Path(entry), shown)
                if found is not None and found.directory:
                    return found
            real = os.path.realpath(entry, strict=True)
        except (OSError, RuntimeError):
            return None  # missing, a loop: the reader says so
    return None


def _inside(path: str, directory: str) -> bool:
    from sipctl.reconciler.runner_places import inside

    return inside(path, directory)


def _leads_out(path: Path, shown: Path) -> LinkOut | None:
    """``path`` (spelt ``shown``) when it is a link to a regular file or a directory outside
    the directory the link is in, or in a ``.git`` directory below it; else None."""
    try:
        if not stat.S_ISLNK(os.lstat(path).st_mode):
            return None  # the one syscall a file that is no link costs
    except OSError:
        return None  # not there: the reader says so
    from sipctl.reconciler.runner_places import git_directory

    directory = os.path.realpath(path.parent)
    if any(_inside(directory, system) for system in _SYSTEM_LINK_DIRS):
        return None
    try:  # strict: as the kernel resolves it (a missing 'sub' in 'sub/../x' ends there)
        target = os.path.realpath(path, strict=True)
        mode = Path(target).stat().st_mode
    except (OSError, RuntimeError):  # dangling, a loop: the reader's error names the link
        return None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return None
    if _inside(target, directory) and git_directory(target, directory) is None:
        return None
    return LinkOut(shown, target, stat.S_ISDIR(mode))


def link_refusal(path: Path) -> str | None:
    """Why the spec file (or directory of spec files) ``path`` is not read (None: it is):
    a link out on the way to it (``link_out``) where the run is strict. Names the link and
    where it leads, never what is there."""
    if not run_is_strict():
        return None
    found = link_out(path)
    if found is None:
        return None
    why = (
        "outside the directory it is in (or in its .git); where the run is strict (CI, a "
        "runner profile) sipctl reads no spec file through a link out of its directory"
    )
    if found.link == path and not found.directory:
        return (
            f"{path}: a symbolic link to {found.target}, {why}, so nothing of it was read. "
            "Put the spec itself in the directory (a file, not a link), or link to a file "
            "inside it"
        )
    named = f"{path}: a symbolic link" if found.link == path else f"{path}: {found.link} is a link"
    return (
        f"{named} to the directory {found.target}, {why}, nor through a directory that is "
        "one, so nothing in it was read. Put the directory itself in the checkout (not a "
        "link), or link to a directory inside the one the link is in"
    )


def refuse_link_out(path: Path) -> None:
    """Raise SpecError when ``link_refusal`` refuses ``path``: before a spec file is read,
    and before a directory of spec files is listed."""
    refusal = link_refusal(path)
    if refusal is not None:
        raise SpecError(refusal)
