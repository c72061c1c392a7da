"""Shell pieces of the firewall providers: one script per round trip, its output split into
named sections by a random boundary line, here-documents that expand nothing."""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass

from sipctl.output import peer_words

# $SSH_CONNECTION of the session we run in. sudo clears the environment, so when it is empty
# the parents' environments are searched (sudo itself, then the login shell): as root we may
# read them, and the first one that has it is our own SSH session.
SSH_CONNECTION_SHELL = """\
c="${SSH_CONNECTION:-}"; p=$$; n=0
while [ -z "$c" ] && [ "$n" -lt 8 ] && [ "$p" -gt 1 ]; do
  p=$(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null); [ -n "$p" ] || break
  c=$({ tr '\\0' '\\n' < /proc/$p/environ; } 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p')
  n=$((n + 1))
done
printf '%s' "$c"
"""


@dataclass(frozen=True)
class Section:
    """One section of a read script's output: what a command printed, and its exit code."""

    body: str
    status: int


def new_boundary() -> str:
    return f"SIPCTL-{secrets.token_hex(8)}"


def single_quoted(word: str) -> str:
    """``word`` as one shell word in single quotes, whatever it holds: shlex.quote's quoting,
    kept in quotes when shlex would leave a plain word bare, so a script reads as it always
    has (a host's read gate holds the scripts' exact text: a changed byte is a new script)."""
    quoted = shlex.quote(word)
    return quoted if quoted.startswith("'") else f"'{word}'"


def section_shell(boundary: str, name: str, command: str) -> str:
    """Shell that prints ``command``'s output as section ``name``, then its exit code.

    ``boundary`` is written in double quotes: a ``new_boundary()`` (letters, digits, "-"), or
    ``"$m"`` in the read gate, whose marker is the boundary (``read_gate.py``). ``name`` is
    any one line (a persist file's path comes from the spec)."""
    return (
        f"printf '\\n%s %s\\n' \"{boundary}\" {single_quoted(name)}\n"
        f"{command}\n"
        f'printf \'\\n%s rc=%s\\n\' "{boundary}" "$?"\n'
    )


def parse_sections(output: str, boundary: str) -> dict[str, Section]:
    """The sections printed by scripts made of ``section_shell`` parts."""
    chunks = output.split(f"\n{boundary} ")
    sections: dict[str, Section] = {}
    for head, tail in zip(chunks[1::2], chunks[2::2], strict=False):
        name, _, body = head.partition("\n")
        match = re.match(r"rc=(\d+)", tail)
        sections[name] = Section(body, int(match.group(1)) if match else 255)
    return sections


def heredoc(command: str, text: str, delimiter: str) -> str:
    """``command`` fed ``text`` through a quoted here-document (nothing in it is expanded)."""
    if not text.endswith("\n"):
        text += "\n"
    return f"{command} <<'{delimiter}'\n{text}{delimiter}\n"


def cat_shell(path: str) -> str:
    """Print a file; exit 3 when it does not exist, 5 (saying so) when it is a symbolic link
    or reached through one (a quoted canonical path: it comes from the spec). As the read
    script of ``transport/files.py``: opened once, its real path checked through /proc."""
    quoted = shlex.quote(path)
    said = shlex.quote(f"{path} is a symbolic link; sipctl does not read through links")
    return (
        f"( if [ -L {quoted} ]; then printf '%s' {said}; exit 5; fi; [ -e {quoted} ] || exit 3; "
        f"{{ command exec 3<{quoted}; }} 2>/dev/null || exit 4; "
        f"[ \"$(readlink /proc/self/fd/3)\" = {quoted} ] || {{ printf '%s' {said}; exit 5; }}; "
        "cat <&3 )"
    )


def first_line(text: str) -> str:
    """The first non-empty line of a program's output, for a one-line message."""
    for line in text.splitlines():
        if line.strip():
            return peer_words(line, 300)
    return ""
