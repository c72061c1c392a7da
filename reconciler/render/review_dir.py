"""Where ``sipctl render --dir`` may write: a directory for review, never a live system's.

render writes each layer's artefacts in its own layout (``asterisk/``, ``fail2ban/``, ...);
beneath an ancestor of a live configuration directory (``/``, ``/etc``) that layout is the
live configuration itself. The rule is the render layer's, so every caller of render gets
it; the CLI only passes the directory it was given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sipctl.errors import SipctlError

if TYPE_CHECKING:
    from sipctl.schemas.spec import Spec

# The configuration directories sipctl's providers write on a live system by default; a
# spec's own config_dir is added to them.
LIVE_CONFIG_DIRS = ("/etc/asterisk", "/etc/fail2ban")


def refuse_live_directory(directory: Path, spec: Spec) -> None:
    """One rule: render's directory may not be, or contain, a configuration directory a live
    system reads (``/etc/asterisk``, ``/etc/fail2ban``, or the spec's ``config_dir``):
    ``--dir /`` or ``--dir /etc`` (however spelt: ``/../``, a link to /) wrote the real
    fail2ban jail and Asterisk files, where render is for review only. Both sides are
    compared resolved (the one read of this package: links are followed)."""
    live = set(LIVE_CONFIG_DIRS)
    for section in (spec.asterisk, spec.fail2ban):
        if section is not None:
            live.add(section.config_dir)
    resolved = directory.resolve()
    for config_dir in sorted(live):
        target = Path(config_dir).resolve()
        if resolved == target or resolved in target.parents:
            raise SipctlError(
                f"--dir {directory}: render writes its files for review and never into a live "
                f"system, but {resolved} holds {config_dir}, a live configuration directory "
                f"its files would land in or beside",
                hint="name an empty review directory, e.g. --dir ./rendered",
            )


def left_over(directory: Path, written: set[str], subdirectories: set[str]) -> list[str]:
    """Files under render's own subdirectories of ``directory`` (``cards/``, ``webrtc/``,
    ...) that this render did not write (``written``: paths relative to ``directory``): an
    earlier render's, of a name since removed. render rewrites what it writes and deletes
    nothing in a directory that is often a checkout, so a reviewer, or whoever publishes
    ``cards/``, would take a removed person's card for a current one. Links are not
    followed."""
    import os

    found: list[str] = []
    for sub in sorted(subdirectories):
        top = directory / sub
        if top.is_symlink() or not top.is_dir():
            continue
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                relative = (Path(root) / name).relative_to(directory).as_posix()
                if relative not in written:
                    found.append(relative)
    return found
