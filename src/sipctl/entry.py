"""The ``sipctl`` program: sets the process up and hands the whole command line to the CLI
(``sipctl.cli``, typer), which imports each command's work only when that command runs."""

from __future__ import annotations

import gc
import os
import sys
from typing import NoReturn


def main() -> NoReturn:
    # Pydantic looks for plugins of its own in every installed distribution's metadata when
    # it builds a validator; sipctl uses none, and a spec (hostile input) is validated
    # without any code the environment happens to have installed.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from sipctl.cli import run

    code = run()
    # The command is done: what it opened is closed, and run() has flushed stdout. The
    # interpreter's exit would now collect garbage over every object the imports made (most
    # of them typer's, pydantic's and dnspython's), twice, only to free memory the exit
    # frees anyway: about a tenth of a no-op plan. Frozen, they are left to the exit.
    gc.freeze()
    sys.exit(code)
