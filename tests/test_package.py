"""Packaging: one import name, a console script, python -m, and a fast start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest
from fixtures.common import REPO

from sipctl.cli_docs import for_terminal, pages


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with sipctl installed from the source tree, not in editable mode."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=False, system_site_packages=False)
    # Reuse the test venv's already-downloaded dependencies: install them by path is not
    # possible, so let pip resolve them through the test venv's site-packages (no network).
    site = next((REPO / ".venv" / "lib").glob("python*/site-packages"))
    pth = next(root.glob("lib/python*/site-packages")) / "deps.pth"
    build = root / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(build),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        cwd=root,
    )
    wheel = next(build.glob("sipctl-*.whl"))
    # A pure-Python wheel is installed by unpacking it into site-packages: all that
    # "pip install --no-deps --target" did here, in 0.9 s of CPU.
    with zipfile.ZipFile(wheel) as unpacked:
        unpacked.extractall(pth.parent)
    # Dependencies come from the test venv, appended after our own site-packages.
    pth.write_text(str(site) + "\n")
    return root


def _python(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run(
        [str(root / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        check=False,
    )


def test_only_sipctl_is_importable_at_top_level(clean_venv: Path) -> None:
    for name in ("providers", "schemas", "reconciler"):
        result = _python(clean_venv, f"import {name}")
        assert result.returncode != 0, f"'{name}' is importable at top level"
    result = _python(
        clean_venv,
        "import sipctl.reconciler, sipctl.providers, sipctl.schemas, sipctl.cli; print('ok')",
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_python_dash_m_works(clean_venv: Path) -> None:
    result = subprocess.run(
        [str(clean_venv / "bin" / "python"), "-m", "sipctl", "--version"],
        capture_output=True,
        text=True,
        cwd=clean_venv,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sipctl ")


def test_the_schema_file_is_installed(clean_venv: Path) -> None:
    result = _python(
        clean_venv,
        "from sipctl.schemas.jsonschema import SCHEMA_FILE; print(SCHEMA_FILE.is_file())",
    )
    assert result.stdout.strip() == "True", result.stderr


def test_the_docs_pages_are_installed(clean_venv: Path) -> None:
    """Messages say 'sipctl docs security': a pip install has no docs/ to open."""
    result = subprocess.run(
        [str(clean_venv / "bin" / "python"), "-m", "sipctl", "docs", "security"],
        capture_output=True,
        text=True,
        cwd=clean_venv,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    source = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    # the page as shipped, its links to other pages written as the command that prints them
    assert result.stdout == for_terminal(source, set(pages()))
    listed = _python(
        clean_venv, "from sipctl.cli_docs import pages; print(' '.join(sorted(pages())))"
    )
    assert listed.stdout.split() == sorted(path.stem for path in (REPO / "docs").glob("*.md"))


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from sipctl.cli import run; "
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()): run(['--help'])\n"
        "heavy = [m for m in ('paramiko', 'deepdiff', 'dns.resolver', 'rich') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"--help imported {result.stdout.strip()}"


def test_help_starts_fast() -> None:
    sipctl = REPO / ".venv" / "bin" / "sipctl"
    start = time.perf_counter()
    subprocess.run([str(sipctl), "--help"], capture_output=True, check=True)
    elapsed = time.perf_counter() - start
    # Generous: this guards against importing paramiko/deepdiff at start, not a benchmark.
    assert elapsed < 3.0


def test_built_in_providers_are_pyprojects_entry_points() -> None:
    """sipctl finds its own providers and offline checks in providers/base.py's table,
    without reading packaging metadata; pyproject.toml declares them for everyone else
    (plugins, tools listing entry points). The two are the same, name for name."""
    import tomllib

    from sipctl.providers.base import BUILT_IN

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    assert {group: dict(names) for group, names in declared.items()} == BUILT_IN


def _requirement_names(requirements: list[str]) -> set[str]:
    import re

    return {_normal(re.split(r"[<>=!~\[;( ]", r.strip(), maxsplit=1)[0]) for r in requirements}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _with_their_requirements(names: set[str]) -> set[str]:
    """The distributions pip installs for these: each and, transitively, what it requires
    (markers ignored: more, never less, than a given platform gets)."""
    from importlib.metadata import PackageNotFoundError, requires

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            required = [r for r in requires(name) or [] if "extra ==" not in r]
        except PackageNotFoundError:
            continue
        todo += _requirement_names(required)
    return seen


def test_every_package_the_product_imports_is_one_it_asks_for() -> None:
    """A module imported by the product comes from a distribution that its dependencies (or
    the extra of that feature) bring, not one the test extra happens to install: typer 0.29
    stopped requiring click, and ``schema --kind man`` failed on a fresh install with
    ModuleNotFoundError while every test passed here (mkdocs brings click)."""
    import ast
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    # test and docs build and check the product; no command of it may need them
    extras = {
        name: reqs
        for name, reqs in project["optional-dependencies"].items()
        if name not in ("test", "docs")
    }
    provided = _with_their_requirements(_requirement_names(project["dependencies"]))
    for reqs in extras.values():
        provided |= _with_their_requirements(_requirement_names(reqs))
    by_module = packages_distributions()
    ours = {"sipctl", "providers", "reconciler", "schemas"}
    unasked: dict[str, str] = {}
    for root in ("src", "providers", "reconciler", "schemas"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in ours:
                        continue
                    dists = {_normal(d) for d in by_module.get(top, [top])}
                    if not dists & provided:
                        unasked.setdefault(top, str(path.relative_to(REPO)))
    assert unasked == {}, f"imported but no dependency or extra brings it: {unasked}"
