"""``--out``: every check of the file or directory a run writes (``plan --out``, ``drift
--out``, ``schema --out-file``), made before anything live is read; and the report ``drift
--out`` keeps there, the one JSON document --json prints, while stdout gets the text, from
the same run (the live systems are read once).

The file is checked before anything live is read, and gets what the console would print:
scrubbed of the run's secrets. A run that fails after the check leaves in it the refusal
--json would print (the error boundary writes it), so the file always holds one document.
"""

from __future__ import annotations

import os
from pathlib import Path

from sipctl.cli_common import write_output_file
from sipctl.errors import SipctlError
from sipctl.output import Console


def check_report_file(path: Path, kind: str) -> None:
    """Refuse ``path`` now when the document could not be written there later."""
    refuse_output_file(path, f"the {kind} report")
    refuse_link(path)  # the write would refuse it, after the live systems were read
    if path.is_dir():
        raise SipctlError(
            f"--out {path}: is a directory; --out names the file for the {kind} report",
            hint=f"name a file in it, e.g. --out {path / f'{kind}.json'}",
        )
    check_output_directory(path, path.parent, "a report")


def check_plan_out(out: Path | None, several: bool) -> None:
    """plan --out, refused before anything is read as drift --out is: a link (not to a
    directory of plans), or a directory to write in that is missing or not writable; with
    ``several`` specs, a file where the directory of their plans goes."""
    if out is None:
        return
    refuse_output_file(out, "the plan")
    if several and out.exists() and not out.is_dir():
        raise SipctlError(
            f"--out {out}: is a file; with several specs --out names the directory that gets "
            "one plan per domain",
            hint="name a directory (it is created if its parent exists)",
        )
    if not out.is_dir():  # a link to a directory of plans is that directory
        refuse_link(out)
    check_output_directory(out, out if out.is_dir() else out.parent, "a plan")


def check_out_file(path: Path, what: str, option: str) -> None:
    """A file a command writes whole instead of printing (``schema --out-file``): refused as
    --out refuses one, a spec, a link, a device, before anything is written."""
    refuse_output_file(path, what, option)
    refuse_link(path, option)


def refuse_link(path: Path, option: str = "--out") -> None:
    """Refuse a file a run would write that is a symbolic link (it may point anywhere: a
    checkout's link to ~/.ssh/authorized_keys)."""
    if path.is_symlink():
        raise SipctlError(
            f"{option} {path}: is a symbolic link; sipctl writes nothing through a link",
            hint="name the file it points to, or another file",
        )


def refuse_output_file(out: Path, what: str, option: str = "--out") -> None:
    """Refuse an ``--out`` that is a device or a pipe, or a sipctl spec (one of the run's,
    or a host's customer file beside it): ``what`` written there would replace it, and so
    would a refusal of the run. A file looks like a spec as it does in ``-f DIR``."""
    from sipctl.cli_common import refuse_special_file
    from sipctl.reconciler.gitops.spec_files import skip_reason

    refuse_special_file(out, option)
    if out.is_file() and skip_reason(out) is None:
        raise SipctlError(
            f"{option} {out}: is a sipctl spec; {what} would replace it",
            hint="name another file for the output",
        )


def check_output_directory(path: Path, directory: Path, what: str) -> None:
    """Refuse ``--out path`` now when ``directory``, where it is written, is not there or
    this user may not write in it."""
    if not directory.is_dir():
        why = "is not a directory" if directory.exists() else "does not exist"
        raise SipctlError(
            f"--out {path}: {directory} {why}; sipctl creates no directory for {what}",
            hint=f"create it first (mkdir -p {directory}) if that is the place you meant",
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SipctlError(
            f"--out {path}: cannot write into the directory {directory}",
            hint="name a file in a directory this user may write, or fix its permissions",
        )


def keep_report_in(console: Console, path: Path, kind: str) -> None:
    """From now on the run's JSON document (or its refusal) goes to ``path`` too."""
    check_report_file(path, kind)
    console.json_file = path


def save_report(console: Console, text: str) -> None:
    """Write the run's JSON document ``text`` to the console's ``json_file``, scrubbed as
    the console scrubs what it prints."""
    path = console.json_file
    if path is None:
        return
    write_output_file(path, console.scrub(text), "the report")
    console.wrote_json_file = True
