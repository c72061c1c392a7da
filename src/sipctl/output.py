"""Everything sipctl prints goes through here: colors, and secrets scrubbed from every line.

What ``--quiet`` keeps is decided here, once, by the kind of line:

- the result (``out``: a plan, a report, JSON, ``Apply complete!``) on stdout: always;
- errors (``error``) and warnings (``warn``, and any line the engine hands ``info`` that
  starts ``Warning: ``): always, on stderr: they need the reader's attention;
- notes, info and progress (``info``, ``progress``, ``notes`` for a report's ``note:``
  lines): not with ``--quiet``. ``-v`` outranks ``--quiet``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

WARNING_PREFIX = "Warning: "


class Console:
    def __init__(self, no_color: bool = False, verbose: int = 0, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet  # --quiet: the result, warnings and errors only (module docstring)
        self._secrets: set[str] = set()
        self.color = (
            not no_color
            and "NO_COLOR" not in os.environ
            and sys.stdout.isatty()
            and os.environ.get("TERM") != "dumb"
        )
        self.err_color = not no_color and "NO_COLOR" not in os.environ and sys.stderr.isatty()
        # --json: (the report's kind, the one spec or None for many) while the command owes
        # stdout a JSON document; the error boundary prints a refusal as one if none came.
        # drift --out: the file owed that document (``json_stdout`` False without --json).
        self.json_promise: tuple[str, str | None] | None = None
        self.json_stdout = False
        self.json_file: Path | None = None
        self.wrote_out = False
        self.wrote_json_file = False

    def promise_json(self, kind: str, spec: str | None, stdout: bool = True) -> None:
        """This command prints a ``kind`` envelope (``spec``: of one spec, else of many);
        ``stdout``: on stdout (--json), else only in ``json_file``."""
        self.json_promise = (kind, spec)
        self.json_stdout = stdout

    def add_secrets(self, secrets: Iterable[str]) -> None:
        self._secrets.update(s for s in secrets if s)

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(self.scrub(text))
        stream.flush()

    def out(self, text: str = "", end: str = "\n") -> None:
        self.wrote_out = True
        self._write(sys.stdout, text + end)

    @property
    def notes(self) -> bool:
        """Whether a report shows its ``note:`` lines (not with ``--quiet``)."""
        return not self.quiet

    def info(self, text: str) -> None:
        """A progress or result line, on stderr so stdout stays machine-readable. A line
        that starts ``Warning: `` (the engine's lines of a run) is a warning: always shown."""
        if text.startswith(WARNING_PREFIX):
            self.warn(text.removeprefix(WARNING_PREFIX))
        elif not self.quiet:
            self._write(sys.stderr, text + "\n")

    def progress(self, text: str) -> None:
        """One line per step of a long run (a target read or written, a domain done): on a
        terminal only, so logs of pipelines stay quiet."""
        if not self.quiet and (self.verbose or sys.stderr.isatty()):
            self._write(sys.stderr, f"  {text}\n")

    def detail(self, text: str) -> None:
        if self.verbose:
            self._write(sys.stderr, f"  {text}\n")

    def error(self, text: str, hint: str | None = None) -> None:
        prefix = "\x1b[31mError:\x1b[0m " if self.err_color else "Error: "
        self._write(sys.stderr, prefix + text + "\n")
        if hint:
            self._write(sys.stderr, f"  hint: {hint}\n")

    def warn(self, text: str) -> None:
        """Something may be wrong and needs the reader: shown even with ``--quiet``."""
        prefix = f"\x1b[33m{WARNING_PREFIX.strip()}\x1b[0m " if self.err_color else WARNING_PREFIX
        self._write(sys.stderr, prefix + text + "\n")
