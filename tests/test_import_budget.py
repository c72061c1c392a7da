"""Each command imports only what it uses (``python -X importtime``, a real process).

Start-up is most of what a no-op run costs, so what a command must not import is part of
its contract: no typer or pydantic to print the version or the list of commands, no typer
for a plain validate, plan or apply, no dnspython to validate, no SSH stack for a run on
local targets, and no optional integration (octoDNS, ACME, Selenium) unless the spec uses it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.common import REPO

OPTIONAL = {"octodns", "acme", "selenium", "boto3", "moto"}
SSH = {"paramiko", "nacl"}  # (bcrypt comes with cryptography's key loading too)
CLI = {"typer", "click", "rich", "pydantic", "pydantic_core", "yaml"}


def imported(args: list[str], cwd: Path) -> set[str]:
    """The top-level packages a ``sipctl ARGS`` process imported, by ``-X importtime``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sipctl", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
    assert result.returncode in (0, 2), result.stderr[-2000:]
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "imported package":
                names.add(name.split(".")[0])
    return names


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's example spec in a directory of its own, applied once (local targets)."""
    root = tmp_path_factory.mktemp("example")
    shutil.copy(REPO / "examples" / "mysite.yaml", root / "sipctl.yaml")
    subprocess.run(
        [sys.executable, "-m", "sipctl", "apply", "--auto-approve"],
        cwd=root,
        capture_output=True,
        check=True,
    )
    return root


@pytest.mark.parametrize("args", [["--version"], ["version"], ["--help"], ["-h"], []])
def test_version_and_help_import_no_cli_library(args: list[str], tmp_path: Path) -> None:
    leaked = imported(args, tmp_path) & (CLI | SSH | OPTIONAL | {"dns"})
    assert not leaked, f"sipctl {' '.join(args)} imported {sorted(leaked)}"


@pytest.mark.parametrize("args", [["validate"], ["plan", "--detailed-exitcode"], ["-v", "plan"]])
def test_hot_commands_run_without_typer(args: list[str], example: Path) -> None:
    """A plain command line of validate, plan or apply is parsed by cli_fast.py."""
    leaked = imported(args, example) & {"typer", "click", "rich"}
    assert not leaked, f"sipctl {' '.join(args)} imported {sorted(leaked)}"


def test_validate_imports_no_dns_library(example: Path) -> None:
    leaked = imported(["validate"], example) & ({"dns"} | SSH | OPTIONAL)
    assert not leaked, f"validate imported {sorted(leaked)}"


def test_schema_imports_no_dns_or_ssh(example: Path) -> None:
    leaked = imported(["schema"], example) & ({"dns"} | SSH | OPTIONAL)
    assert not leaked, f"schema imported {sorted(leaked)}"


@pytest.mark.parametrize("command", ["plan", "render"])
def test_a_local_run_imports_no_ssh_stack(command: str, example: Path) -> None:
    args = [command] if command == "plan" else [command, "--dir", "out"]
    leaked = imported(args, example) & (SSH | OPTIONAL)
    assert not leaked, f"{command} on local targets imported {sorted(leaked)}"


def test_help_text_is_typers_own() -> None:
    """The top-level help served without typer is the text typer prints (regenerate it with
    ``python -m sipctl.help_gen`` after changing the commands)."""
    from sipctl.help_gen import HELP_MODULE, module_text

    assert HELP_MODULE.read_text(encoding="utf-8") == module_text(), (
        "src/sipctl/help_text.py is out of date: run python -m sipctl.help_gen"
    )
