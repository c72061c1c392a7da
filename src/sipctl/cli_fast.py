"""The hot commands (validate, plan, apply) without typer, for a plain command line.

Importing typer and building its command tree costs more than a no-op plan itself (typer
also builds a pydantic adapter per option as it parses). So a command line made only of a
hot command and options it certainly understands is parsed here, from a table generated from
the typer declarations (cli_table.py, written by ``python -m sipctl.help_gen`` and kept
current by a test), and the command's body runs under the same error boundary.

This parser only ever *accepts* or *declines*: anything it is not sure to read exactly as
typer does (help, an unknown or misspelt option, a value typer would refuse, an option
given twice, a cluster like ``-fspec.yaml``) is declined, and typer handles the whole command
line as before, with its own messages. tests/test_cli_fast.py proves that whatever is
accepted gives the body exactly the values typer would.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from pathlib import Path
from typing import NamedTuple

from sipctl.cli_boundary import run_guarded
from sipctl.cli_common import GlobalOptions, current_console, reset_globals, set_globals
from sipctl.errors import EXIT_ERROR, CommandExit


class Param(NamedTuple):
    """One option or argument as typer declares it (a row of cli_table.py)."""

    name: str  # the keyword the body takes
    opts: tuple[str, ...]  # -f, --file; empty for an argument
    kind: str  # flag, count, option, argument, or other (this parser declines it)
    type: str = "str"  # str, int, path
    multiple: bool = False  # repeatable option, or an argument taking any number
    default: object = None  # a path's default as text
    minimum: int | None = None
    maximum: int | None = None
    exists: bool = False
    file_okay: bool = True
    dir_okay: bool = True
    readable: bool = True
    writable: bool = False


# The body each hot command hands its values to (the same the typer declarations call).
BODIES = {
    "validate": ("sipctl.cli_validate", "validate"),
    "plan": ("sipctl.cli_plan", "plan"),
    "apply": ("sipctl.cli_plan", "apply"),
}

_INT = re.compile(r"0|[1-9][0-9]{0,8}")


class _Declined(Exception):
    """Not certainly read as typer reads it: typer takes the whole command line."""


def run_fast(args: list[str]) -> int | None:
    """Run ``args`` (already normalized by cli_args) without typer and return the exit
    code, or None when typer must handle them."""
    parsed = parse(args)
    if parsed is None:
        return None
    command, root, options = parsed
    import importlib

    module, name = BODIES[command]
    body = getattr(importlib.import_module(module), name)
    reset_globals()
    set_globals(GlobalOptions(**root))  # type: ignore[arg-type]  # what typer's root callback does

    def run_body() -> object:
        # What typer's own main does around a command, so both paths end alike.
        try:
            return body(**options)
        except EOFError:
            sys.stderr.write("\n")
            current_console().error("aborted")
            raise CommandExit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            raise CommandExit(130) from None  # silent, the shell's code for an interrupt
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            # The reader went away (sipctl plan | head): no more output, exit 1.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise CommandExit(EXIT_ERROR) from None

    return run_guarded(run_body)


def parse(args: list[str]) -> tuple[str, dict[str, object], dict[str, object]] | None:
    """(command, global options, the command's keyword arguments), or None (declined)."""
    from sipctl.cli_table import COMMANDS, ROOT

    try:
        index, root = _options(args, 0, ROOT, stop_at_word=True)
        if index >= len(args) or args[index] not in COMMANDS:
            raise _Declined
        command = args[index]
        _, options = _options(args, index + 1, COMMANDS[command], stop_at_word=False)
    except _Declined:
        return None
    return command, root, options


def _options(
    args: list[str], index: int, params: tuple[Param, ...], *, stop_at_word: bool
) -> tuple[int, dict[str, object]]:
    """Read options from ``args[index:]`` (up to the first word when ``stop_at_word``);
    returns where reading stopped and every parameter's value, defaults included."""
    by_opt = {opt: p for p in params for opt in p.opts}
    raw: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    words: list[str] = []
    while index < len(args):
        arg = args[index]
        if arg == "--" and not stop_at_word:
            words.extend(args[index + 1 :])
            index = len(args)
            break
        if not arg.startswith("-") or arg == "-":
            if stop_at_word:
                break
            words.append(arg)
            index += 1
            continue
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        param = by_opt.get(name)
        if param is None:
            # -vv: a cluster of short flags or counts (and nothing that takes a value)
            cluster = [by_opt.get("-" + c) for c in arg[1:]] if not arg.startswith("--") else []
            if not cluster or any(p is None or p.kind not in ("flag", "count") for p in cluster):
                raise _Declined
            for p in cluster:
                assert p is not None
                counts[p.name] = counts.get(p.name, 0) + 1
            index += 1
            continue
        if param.kind in ("flag", "count"):
            if eq:
                raise _Declined
            counts[param.name] = counts.get(param.name, 0) + 1
            index += 1
            continue
        if param.kind != "option":
            raise _Declined
        if eq:
            value, index = inline, index + 1
        elif index + 1 < len(args):
            value, index = args[index + 1], index + 2
        else:
            raise _Declined
        if value.startswith("-") or (param.name in raw and not param.multiple):
            raise _Declined
        raw.setdefault(param.name, []).append(value)
    arguments = [p for p in params if p.kind == "argument"]
    if words:
        if len(arguments) != 1 or not arguments[0].multiple:
            raise _Declined
        raw[arguments[0].name] = words
    values: dict[str, object] = {}
    for param in params:
        if param.kind == "other":
            if param.name in counts or param.name in raw:
                raise _Declined
            continue
        values[param.name] = _value(param, raw.get(param.name), counts.get(param.name, 0))
    return index, values


def _value(param: Param, given: list[str] | None, count: int) -> object:
    """What typer hands the body for ``param``: given values converted, else the default."""
    if param.kind == "flag":
        if param.default is not False:
            raise _Declined
        return count > 0
    if param.kind == "count":
        return (param.default if isinstance(param.default, int) else 0) + count
    if given is None:
        if param.default is None:
            return None
        if param.multiple:
            raise _Declined
        return _convert(param, str(param.default)) if param.type == "path" else param.default
    converted = [_convert(param, value) for value in given]
    return converted if param.multiple else converted[0]


def _convert(param: Param, value: str) -> object:
    if param.type == "str":
        return value
    if param.type == "int":
        if not _INT.fullmatch(value):
            raise _Declined
        number = int(value)
        if (param.minimum is not None and number < param.minimum) or (
            param.maximum is not None and number > param.maximum
        ):
            raise _Declined
        return number
    if param.type == "path":
        return _path(param, value)
    raise _Declined


def _path(param: Param, value: str) -> Path:
    """``value`` as a Path, declined where typer's checks of the declaration would refuse it."""
    if not value or "\x00" in value or value.strip() != value:
        raise _Declined
    path = Path(value)
    try:
        mode = path.stat().st_mode
    except OSError:
        if param.exists:
            raise _Declined from None
        return path
    refused = (
        (not param.file_okay and stat.S_ISREG(mode))
        or (not param.dir_okay and stat.S_ISDIR(mode))
        or (param.readable and not os.access(value, os.R_OK))
        or (param.writable and not os.access(value, os.W_OK))
    )
    if refused:
        raise _Declined
    return path
