"""Each command imports only what it uses (``python -X importtime``, a real process).

Start-up is most of what a no-op run costs, so what a command must not import is part of
its contract: nothing but typer and the commands' declarations to print the version or the
list of commands, no dnspython to validate, no SSH stack for a run on local targets, and no
optional integration (octoDNS, ACME, Selenium) unless the spec uses it. A command that reads
a spec imports pydantic: its models are the spec's one model (and typer checks option values
with it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.bind import BindServer, bind_env, dns_spec
from fixtures.common import REPO

OPTIONAL = {"octodns", "acme", "selenium", "boto3", "moto"}
SSH = {"paramiko", "nacl"}  # (bcrypt comes with cryptography's key loading too)
CLI = {"typer", "click", "rich", "pydantic", "pydantic_core", "yaml"}


def import_tree(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> list[tuple[int, str]]:
    """(depth, module) of every module a ``sipctl ARGS`` process imported, in the order
    ``-X importtime`` prints them (a module after everything it imported)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sipctl", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    assert result.returncode in (0, 2), result.stderr[-2000:]
    tree = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            field = line.rsplit("|", 1)[1]
            name = field.strip()
            if name and name != "imported package":
                tree.append((len(field) - len(field.lstrip(" ")), name))
    return tree


def imported(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages a ``sipctl ARGS`` process imported, by ``-X importtime``."""
    return {name.split(".")[0] for _, name in import_tree(args, cwd, env)}


def importer_of(tree: list[tuple[int, str]], module: str) -> str | None:
    """The module whose import first imported ``module`` (None: not imported)."""
    for index, (depth, name) in enumerate(tree):
        if name == module:
            return next((n for d, n in tree[index + 1 :] if d < depth), "(the program)")
    return None


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


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["-h"], []])
def test_version_and_help_import_no_command(args: list[str], tmp_path: Path) -> None:
    """Typer parses and answers; what a command works with is imported when it runs."""
    tree = import_tree(args, tmp_path)
    leaked = {name.split(".")[0] for _, name in tree} & (CLI - {"typer"} | SSH | OPTIONAL | {"dns"})
    assert not leaked, f"sipctl {' '.join(args)} imported {sorted(leaked)}"
    work = [n for _, n in tree if n.startswith(("sipctl.reconciler", "sipctl.providers"))]
    assert not work, f"sipctl {' '.join(args)} imported {work}"


# The modules that hold the app and the root's options; every other cli_* module holds
# commands, built (and imported) only when their command runs or --help lists it.
CLI_CORE = {"sipctl.cli", "sipctl.cli_args", "sipctl.cli_boundary", "sipctl.cli_common"}
CLI_CORE |= {"sipctl.cli_params"}


def command_modules(tree: list[tuple[int, str]]) -> set[str]:
    return {n for _, n in tree if n.startswith("sipctl.cli") and n not in CLI_CORE}


def test_version_builds_no_command(tmp_path: Path) -> None:
    """--version is the root's option: no command's module is imported, nor asyncio (the
    fleet commands' alone)."""
    tree = import_tree(["--version"], tmp_path)
    assert not command_modules(tree), sorted(command_modules(tree))
    assert "asyncio" not in {name for _, name in tree}


@pytest.mark.parametrize(
    ("args", "modules"),
    [
        (["validate"], {"sipctl.cli_validate"}),
        # plan's options and words, and the one path of plan and apply
        (["plan", "--detailed-exitcode"], {"sipctl.cli_plan", "sipctl.cli_domains"}),
    ],
)
def test_a_command_builds_its_own_alone(args: list[str], modules: set[str], example: Path) -> None:
    tree = import_tree(args, example)
    assert command_modules(tree) == modules
    assert "asyncio" not in {name for _, name in tree}


# Who may import the packaging metadata first: pydantic looks for its own plugins there
# when it builds the spec's validator, dnspython's feature check reads it (the floor of a DNS
# query pays that too). sipctl itself never does to find its own providers.
METADATA_READERS = (None, "pydantic.plugin._loader", "dns._features")


@pytest.mark.parametrize("args", [["validate"], ["plan", "--detailed-exitcode"]])
def test_a_spec_is_built_by_its_one_model(args: list[str], example: Path) -> None:
    """The README's example (every layer, local targets) is validated by the pydantic models
    (there is no other spec model), and no packaging metadata is read before pydantic's own
    plugin lookup: sipctl's providers come from providers/base.py's table."""
    tree = import_tree(args, example)
    assert "sipctl.schemas.spec" in {name for _, name in tree}
    assert importer_of(tree, "importlib.metadata") in METADATA_READERS


def test_a_dns_only_no_op_plan_imports_only_what_it_uses(bind: BindServer, tmp_path: Path) -> None:
    """The whole-process no-op plan bench/startup.py measures against its floor."""
    zone = bind.new_zone()
    try:
        (tmp_path / "sipctl.yaml").write_text(dns_spec(bind, zone))
        env = bind_env(bind)
        applied = subprocess.run(
            [sys.executable, "-m", "sipctl", "apply", "--auto-approve", "--no-verify"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert applied.returncode == 0, applied.stderr[-2000:]
        for args in (["validate"], ["plan", "--detailed-exitcode"]):
            tree = import_tree(args, tmp_path, env)
            names = {name.split(".")[0] for _, name in tree}
            assert "rich" not in names, args
            assert not names & (SSH | OPTIONAL), args
            assert importer_of(tree, "importlib.metadata") in METADATA_READERS, args
    finally:
        bind.delete_zone(zone)


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
