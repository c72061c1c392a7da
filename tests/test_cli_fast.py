"""The hot commands' command line without typer (cli_fast.py) reads exactly what typer reads.

The parser may decline anything (typer then handles the whole command line, with its own
messages), but whatever it accepts must hand the command's body the very values typer
would, and set the same global options. Proved on command lines Hypothesis builds from the
options of the commands, values typer accepts and refuses, and misspellings.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl import cli, cli_common
from sipctl.cli_fast import BODIES, Param, parse
from sipctl.cli_table import COMMANDS, ROOT
from sipctl.errors import CommandExit
from sipctl.help_gen import TABLE_MODULE, table_text


def test_table_is_generated_from_the_typer_declarations() -> None:
    assert TABLE_MODULE.read_text(encoding="utf-8") == table_text(), (
        "src/sipctl/cli_table.py is out of date: run python -m sipctl.help_gen"
    )


@pytest.mark.parametrize("command", sorted(BODIES))
def test_each_body_takes_exactly_the_declared_options(command: str) -> None:
    module, name = BODIES[command]
    body = getattr(importlib.import_module(module), name)
    declared = [p.name for p in cli._command().commands[command].params]
    assert list(inspect.signature(body).parameters) == declared


def test_the_global_options_are_the_roots() -> None:
    fields = [f.name for f in dataclasses.fields(cli_common.GlobalOptions)]
    assert [p.name for p in ROOT if p.kind != "other"] == fields


@contextmanager
def _recording() -> Iterator[dict[str, Any]]:
    """Every body replaced by one that records what it was handed."""
    seen: dict[str, Any] = {}
    with ExitStack() as stack:
        for command, (module, name) in BODIES.items():

            def record(command: str = command, **options: Any) -> None:
                seen.update(command=command, options=options)

            stack.enter_context(mock.patch.object(importlib.import_module(module), name, record))
        yield seen


def typer_reading(args: list[str]) -> tuple[str, dict[str, object], dict[str, object]] | None:
    """What typer hands the body for ``args`` (None when typer refuses them)."""
    cli_common.reset_globals()
    with _recording() as seen:
        try:
            cli._run_typer(list(args))
        except CommandExit:
            return None
    if "command" not in seen:
        return None
    return seen["command"], dataclasses.asdict(cli_common.GLOBAL), seen["options"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a spec file, a directory of specs and a saved plan."""
    root = tmp_path_factory.mktemp("fast")
    (root / "spec.yaml").write_text("version: 1\n")
    (root / "specs").mkdir()
    (root / "plan.json").write_text("{}")
    return root


@contextmanager
def inside(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _option_names() -> list[str]:
    names = {opt for params in (ROOT, *COMMANDS.values()) for p in params for opt in p.opts}
    return sorted(names)


VALUES = ["spec.yaml", "specs", "plan.json", "missing.yaml", "4", "0", "64", "65", "-1", "x"]
VALUES += ["", " spec.yaml", "1/4", "dns", "04", "+4", "4.0", "--json", "-", "a=b"]
WORDS = ["plan", "validate", "apply", "show", "--", "-h", "--help", "--bogus", "-vv", "-fspec"]
WORDS += ["-vf", "--file=spec.yaml", "--out=specs", "--parallel=3", "--json=1", "--version"]
GOOD = ["spec.yaml", "specs", "plan.json", "new.json", "4", "8", "1/4", "dns", "5m"]
NOISE = st.sampled_from(_option_names() + VALUES + WORDS)


@st.composite
def _words_of(draw: st.DrawFn, params: tuple[Param, ...]) -> list[str]:
    """Options of ``params`` with values (good and bad), and now and then any other token."""
    words: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.integers(0, 5)) == 0:
            words.append(draw(NOISE))
            continue
        param = draw(st.sampled_from(params))
        value = draw(st.sampled_from(GOOD) if draw(st.booleans()) else st.sampled_from(VALUES))
        if param.kind == "argument":
            words.append(value)
        elif not param.opts:
            continue
        elif param.kind in ("flag", "count", "other"):
            words.append(draw(st.sampled_from(param.opts)))
        else:
            opt = draw(st.sampled_from(param.opts))
            inline = opt.startswith("--") and draw(st.booleans())
            words.extend([f"{opt}={value}"] if inline else [opt, value])
    return words


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    return [*draw(_words_of(ROOT)), command, *draw(_words_of(COMMANDS[command]))]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=command_lines())
def test_what_the_fast_parser_accepts_typer_reads_the_same(workdir: Path, args: list[str]) -> None:
    with inside(workdir):
        fast = parse(args)
        if fast is None:
            return  # declined: typer reads the command line itself, as it always did
        assert fast == typer_reading(args), args


@pytest.mark.parametrize(
    "args",
    [
        ["plan"],
        ["validate"],
        ["-v", "--no-color", "plan", "-f", "spec.yaml", "--detailed-exitcode"],
        ["plan", "-f", "spec.yaml", "-f", "specs", "--parallel", "8", "--target", "dns"],
        ["plan", "--out", "new.json", "--json", "-vv"],
        ["--quiet", "--debug", "apply", "plan.json", "--auto-approve", "--lock-timeout=5m"],
        ["apply", "-f", "spec.yaml", "--no-verify", "--force", "--shard", "1/4"],
        ["validate", "--file=spec.yaml", "--json", "--verbose"],
        ["apply", "--", "plan.json"],
    ],
)
def test_plain_command_lines_run_without_typer(workdir: Path, args: list[str]) -> None:
    with inside(workdir):
        fast = parse(args)
        assert fast is not None, f"{args} should not need typer"
        assert fast == typer_reading(args)


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--help"],
        ["plan", "-h"],
        ["--version", "plan"],
        ["plan", "--parallel", "0"],  # typer says why 0 is refused
        ["plan", "--parallel", "x"],
        ["plan", "--out", "specs"],  # a directory: typer says so
        ["plan", "--bogus"],
        ["plan", "extra-word"],
        ["plan", "-f"],
        ["show", "plan.json"],  # not a hot command
    ],
)
def test_what_typer_must_explain_is_left_to_typer(workdir: Path, args: list[str]) -> None:
    with inside(workdir):
        assert parse(args) is None
