"""The ``sipctl`` program: sets the process up and hands the whole command line to the CLI
(``sipctl.cli``, typer), which imports each command's work only when that command runs."""

from __future__ import annotations

import os
from typing import NoReturn


def main() -> NoReturn:
    # Pydantic looks for plugins of its own in every installed distribution's metadata when
    # it builds a validator; sipctl uses none, and a spec (hostile input) is validated
    # without any code the environment happens to have installed.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from sipctl.cli import main as cli_main

    cli_main()
