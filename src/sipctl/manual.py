"""The manual of the command line, from the one source ``--help`` is printed from: the typer
app's click commands. ``sipctl schema --kind commands`` prints it as Markdown (the docs
site's page of every command's help), ``sipctl schema --kind man`` as a man page (roff), so
the site, the man page and ``--help`` never say different things."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from sipctl import __version__
from sipctl.errors import EXIT_CODES_TEXT

WIDTH = 88  # the help's width in both: stable, whatever terminal builds them


def _root() -> tuple[Any, Any]:
    """The root click command and its context, as ``sipctl --help`` makes them."""
    from sipctl.cli import _command

    command = _command()
    # The command's own context class: typer carries its own copy of click and a plain
    # install has no ``click`` package, so importing it here broke ``schema --kind man``.
    context = command.context_class(command, info_name="sipctl", terminal_width=WIDTH)
    context.max_content_width = WIDTH
    return command, context


def commands() -> Iterator[tuple[str, str, Any, Any]]:
    """(name, help text, click command, its context) of the root and each visible command,
    in the order ``sipctl --help`` lists them."""
    root, root_context = _root()
    yield "sipctl", root.get_help(root_context), root, root_context
    for name in root.list_commands(root_context):
        command = root.get_command(root_context, name)
        if command is None or command.hidden:
            continue
        context = command.context_class(
            command, info_name=name, parent=root_context, terminal_width=WIDTH
        )
        context.max_content_width = WIDTH
        yield f"sipctl {name}", command.get_help(context), command, context


def markdown() -> str:
    """Every command's ``--help``, as the CLI prints it, one section each."""
    lines = [
        "# Commands",
        "",
        "Every command's `--help`, as `sipctl` prints it (generated from the command line "
        "itself: `sipctl schema --kind commands`; the same text is the man page, "
        "`sipctl schema --kind man`).",
        "",
    ]
    for name, text, _command, _context in commands():
        lines += [f"## {name}", "", "```text", text.rstrip("\n"), "```", ""]
    return "\n".join(lines)


def _roff(text: str) -> str:
    """Text safe in roff: backslashes escaped, no line starting with a control character."""
    out = []
    for line in text.replace("\\", "\\e").splitlines():
        out.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(out)


def _options(command: Any, context: Any) -> list[str]:
    lines: list[str] = []
    for param in command.get_params(context):
        record = param.get_help_record(context)
        if record is None:
            continue
        names, help_text = record
        lines += [".TP", f"\\fB{_roff(names)}\\fR", _roff(help_text) or "\\&"]
    return lines


def man_page() -> str:
    """``sipctl(1)``: the root's help, then each command's usage, help and options."""
    root, root_context = _root()
    # SOURCE_DATE_EPOCH: the date of a reproducible build, not of the day it ran
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    day = datetime.fromtimestamp(int(epoch), UTC).date() if epoch.isdigit() else date.today()
    today = day.isoformat()
    lines = [
        f'.TH SIPCTL 1 "{today}" "sipctl {__version__}" "sipctl manual"',
        ".SH NAME",
        "sipctl \\- make your own domain reachable for SIP calls, from a YAML spec in git",
        ".SH SYNOPSIS",
        "\\fBsipctl\\fR [\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
        _roff(root.help or ""),
        ".SH GLOBAL OPTIONS",
        *_options(root, root_context),
        ".SH COMMANDS",
    ]
    for name, _text, command, context in list(commands())[1:]:
        usage = " ".join(command.collect_usage_pieces(context))
        lines += [
            f".SS {_roff(name)}",
            f"\\fB{_roff(name)}\\fR {_roff(usage)}",
            ".PP",
            _roff(command.help or ""),
        ]
        options = _options(command, context)
        if options:
            lines += [".PP", "Options:", ".RS", *options, ".RE"]
    lines += [
        ".SH EXIT STATUS",
        _roff(EXIT_CODES_TEXT).replace("-", "\\-"),
        ".SH SEE ALSO",
        "The spec reference: \\fBsipctl schema \\-\\-kind reference\\fR; the JSON Schemas: "
        "\\fBsipctl schema \\-\\-kind KIND\\fR.",
    ]
    return "\n".join(lines) + "\n"
