"""The ``sipctl`` program: answers ``--version`` and the top-level ``--help`` at once, runs a
plain command line of validate, plan or apply without typer (``cli_fast.py``), and hands
everything else to the full command line (``sipctl.cli``).

Importing typer (and through it click and, for options, pydantic) costs more than Python's
own start: a user who asks for the version or the list of commands does not pay for it.
The top-level help is typer's own text, generated into ``help_text.py`` and kept current by
a test.
"""

from __future__ import annotations

import sys

from sipctl import __version__

TYPE_CHECKING = False  # typing itself costs more than the rest of this module
if TYPE_CHECKING:
    from typing import NoReturn

_VERSION_ARGS = (["--version"], ["version"])
_HELP_ARGS = (["--help"], ["-h"])


def main() -> NoReturn:
    argv = sys.argv[1:]
    if argv in _VERSION_ARGS:
        sys.stdout.write(f"sipctl {__version__}\n")
        sys.exit(0)
    if argv in _HELP_ARGS or not argv:
        from sipctl.help_text import TOP_LEVEL_HELP

        # Like typer: asked for, help goes to stdout; with no arguments, to stderr.
        (sys.stdout if argv else sys.stderr).write(TOP_LEVEL_HELP)
        sys.exit(0)
    import os

    # Pydantic looks for plugins of its own in every installed distribution's metadata when
    # it builds the spec's validator; sipctl uses none, and a spec (hostile input) is
    # validated without any code the environment happens to have installed.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from sipctl.cli_args import normalize_argv
    from sipctl.cli_fast import run_fast

    code = run_fast(normalize_argv(argv))  # validate, plan, apply: without typer
    if code is not None:
        sys.exit(code)
    from sipctl.cli import main as full_main

    full_main()
