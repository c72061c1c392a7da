"""A spec file reached through a symbolic link: the one rule of where it may lead.

Git stores symbolic links, so a merge request can add ``evil.yaml -> /etc/shadow`` to a
hosting directory, or replace ``sipctl.yaml`` with such a link; a run that read it would
show the runner's file in its errors and skip reasons. The rule: a spec file that is a link
whose target (followed to its end as the kernel does: ``realpath(strict=True)``) is a
regular file outside the directory the link is in, or inside a ``.git`` directory below
it (``.git/config`` holds the pipeline's token on a CI checkout), is not read where the
run is strict; a link within the directory (``customer.yaml -> customers/acme.yaml``) is
read as before. Only the last part of the path is in question: a file that is no link is
in its directory, whatever that directory resolves to (a ``-f DIR`` the runner names is
the runner's choice).

Every reader of a spec file goes through ``refuse_link_out``: the loader (``load_spec``),
the files a hosting file is read with (``schemas/hosting.py``'s ``_spec_text``, through
which ``hosting_reach`` and ``declaring_file`` read too), the files a host's plan checks
before it plans a departure (``reconciler/departures.py``), ``validate --json``'s lookup of
a problem's key (``schemas/problems.py``), a saved plan's check that its spec is here
(``engine``), and ``-f DIR``'s sniffing (``spec_files.skip_reason``), which takes such a
file as a spec so that its load refuses it: the run fails naming it, and a host never
takes it for a departed customer.

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
from pathlib import Path

from sipctl.errors import SpecError

# Links the system keeps, not a checkout: /dev/stdin, /dev/fd/N (<(cmd)), /proc/self/fd/N.
_SYSTEM_LINK_DIRS = ("/dev", "/proc")


def run_is_strict() -> bool:
    """Whether this run is strict (a runner profile is named, or CI is set), as
    ``bindings.runner_of`` decides, without reading the profile."""
    from sipctl.reconciler.bindings import run_is_strict as strict

    return strict(os.environ)


def link_out(path: Path) -> str | None:
    """The target (resolved) of ``path`` when ``path`` is a symbolic link to a regular
    file outside the directory the link is in, or in a ``.git`` directory below it; None
    otherwise (no link, a link within, a system link, or one that ends at no regular
    file)."""
    try:
        if not stat.S_ISLNK(os.lstat(path).st_mode):
            return None  # the one syscall a file that is no link costs
    except OSError:
        return None  # not there: the reader says so
    from sipctl.reconciler.runner_places import git_directory, inside

    directory = os.path.realpath(path.parent)
    if any(inside(directory, system) for system in _SYSTEM_LINK_DIRS):
        return None
    try:  # strict: as the kernel resolves it (a missing 'sub' in 'sub/../x' ends there)
        target = os.path.realpath(path, strict=True)
        if not stat.S_ISREG(Path(target).stat().st_mode):
            return None
    except (OSError, RuntimeError):  # dangling, a loop: the reader's error names the link
        return None
    if inside(target, directory) and git_directory(target, directory) is None:
        return None
    return target


def link_refusal(path: Path) -> str | None:
    """Why the spec file ``path`` is not read (None: it is): a link out of its directory
    (``link_out``) where the run is strict. Names the link and where it leads, never what
    is there."""
    target = link_out(path)
    if target is None or not run_is_strict():
        return None
    return (
        f"{path}: a symbolic link to {target}, outside the directory it is in (or in its "
        ".git); where the run is strict (CI, a runner profile) sipctl reads no spec file "
        "through a link out of its directory, so nothing of it was read. Put the spec "
        "itself in the directory (a file, not a link), or link to a file inside it"
    )


def refuse_link_out(path: Path) -> None:
    """Raise SpecError when ``link_refusal`` refuses ``path``: before a spec file is read."""
    refusal = link_refusal(path)
    if refusal is not None:
        raise SpecError(refusal)
