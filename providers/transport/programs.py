"""Programs run on a host as words, never as shell text.

A program is a list of words - the host profile's entry (``providers/transport/host_profile.py``),
then the arguments sipctl adds. Here they run:

- on this machine with ``subprocess`` and no shell at all;
- over SSH, where sshd always hands the command line to a shell, every word is quoted with
  ``shlex.quote``: the remote shell sees each word as one literal argument, never as syntax.
  Several programs go in one round trip as a script on the stdin of ``/bin/sh -s`` (so the
  login shell of the account, POSIX or not, never parses a spec value), each followed by a
  marker line with its exit status.

Pure: this module builds the script and parses its output; the transports run them.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from sipctl.providers.transport.pool import CommandResult

NOT_FOUND = 127  # what a shell answers for a program it cannot find


def quoted(argv: Sequence[str]) -> str:
    """One command line whose words a POSIX shell reads back exactly as ``argv``."""
    return " ".join(shlex.quote(word) for word in argv)


def batch_script(programs: Sequence[Sequence[str]], marker: str) -> str:
    """A script that runs each program (stdin closed, stderr into stdout), then a marker."""
    lines = [
        f"{quoted(argv)} </dev/null 2>&1; printf '\\n%s %d\\n' {shlex.quote(marker)} \"$?\""
        for argv in programs
    ]
    return "\n".join(lines) + "\n"


def parse_batch_output(
    programs: Sequence[Sequence[str]], output: str, marker: str, exit_status: int
) -> list[CommandResult]:
    """One result per program from the output of ``batch_script``.

    A program whose marker never came (the script was cut short) gets the script's own exit
    status, or NOT_FOUND, and whatever output is left.
    """
    chunks = output.split(f"\n{marker} ")
    results: list[CommandResult] = []
    for index, argv in enumerate(programs):
        text = chunks[index] if index < len(chunks) else ""
        if index > 0:
            # the chunk starts with the previous marker's "<status>\n"
            text = text.split("\n", 1)[1] if "\n" in text else ""
        if index + 1 < len(chunks):
            status_text = chunks[index + 1].split("\n", 1)[0].strip()
            status = int(status_text) if status_text.isdigit() else 1
        else:
            status = exit_status or NOT_FOUND
        results.append(CommandResult(quoted(argv), status, text, ""))
    return results
