"""The documentation a user browses: the MkDocs site builds without a warning, and holds the
spec reference, the tutorial, the pipelines and every command's --help; the man page comes
from the same source and renders without a warning."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.common import REPO

from sipctl.cli import _command

VENV_BIN = Path(sys.executable).parent


def _visible_commands() -> list[str]:
    import click

    root = _command()
    context = click.Context(root, info_name="sipctl")
    return [
        name for name in root.list_commands(context) if not root.get_command(context, name).hidden
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [str(VENV_BIN / "mkdocs"), "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr, done.stdout + done.stderr
    return out


def test_the_site_has_every_page(site: Path) -> None:
    for page in ("index", "tutorial", "spec", "commands", "pipelines", "hosting", "changelog"):
        assert (site / page / "index.html").exists() or (site / f"{page}.html").exists(), page
    home = (site / "index.html").read_text()
    assert "webrtc-page.png" in home and (site / "webrtc-page.png").exists()
    pipelines = (site / "pipelines" / "index.html").read_text()
    assert "queue: max" in pipelines and "sipctl-replan-apply" in pipelines


def test_the_commands_page_has_every_command_s_help(site: Path) -> None:
    page = (site / "commands" / "index.html").read_text()
    for name in _visible_commands():
        assert f"Usage: sipctl {name} [OPTIONS]" in page, name


@pytest.mark.programs  # man (man-db), which scripts/test installs
def test_the_man_page_comes_from_the_same_source_and_renders(site: Path, tmp_path: Path) -> None:
    man = site / "sipctl.1"
    text = man.read_text()
    assert text.startswith(".TH SIPCTL 1 ")
    for name in _visible_commands():
        assert f".SS sipctl {name}\n" in text, name
    done = subprocess.run(
        ["man", "--warnings", "-l", str(man)],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "MANWIDTH": "100",
            "LANG": "C.UTF-8",
            "MAN_KEEP_FORMATTING": "",
        },
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "sipctl validate [OPTIONS]" in done.stdout
    assert "--detailed-exitcode" in done.stdout


def test_the_tutorial_s_spec_is_valid() -> None:
    from sipctl.cli_common import offline_problems
    from sipctl.schemas.loader import load_spec_text

    text = (REPO / "docs" / "tutorial.md").read_text()
    [spec] = re.findall(r"```yaml\n(.*?)```", text, re.S)
    loaded = load_spec_text(spec, "tutorial.yaml")
    assert offline_problems(loaded) == []
    assert loaded.spec.webrtc is not None and loaded.spec.asterisk is not None


def test_every_link_of_the_docs_leads_to_a_file_of_the_repository() -> None:
    """Read in the repository (GitHub shows docs/*.md as they are), a link must lead to a
    file there: docs/hosting.md linked pipelines.md, a page only the site has."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    pages += sorted((REPO / "examples").rglob("README.md"))
    broken = []
    for page in pages:
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
        text = re.sub(r"`[^`\n]*`", "", text)  # code is no link
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:|#", target):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, broken


def test_the_exit_codes_sipctl_states_name_every_command_that_exits_2() -> None:
    """sipctl --help said 2 meant changes under --detailed-exitcode only, while drift (drift)
    and audit (findings) exit 2 as well: each command that says it exits 2 is named there,
    and the man page says the same text."""
    from click.testing import CliRunner

    from sipctl.errors import EXIT_CODES_TEXT
    from sipctl.manual import man_page

    runner = CliRunner()
    top = runner.invoke(_command(), ["--help"], terminal_width=1000).output
    assert f"Exit codes: {EXIT_CODES_TEXT}" in top
    assert EXIT_CODES_TEXT.replace("-", "\\-") in man_page()
    for name in _visible_commands():
        text = " ".join(runner.invoke(_command(), [name, "--help"]).output.split())
        if re.search(r"Exit codes:[^.]*\b2 \w|exit 2 ", text, re.I):
            assert f"{name}:" in EXIT_CODES_TEXT or f"{name} --" in EXIT_CODES_TEXT, name


def test_the_fast_tests_say_what_a_venv_without_the_test_extra_lacks(tmp_path: Path) -> None:
    """The README's first command makes .venv with sipctl alone; scripts/test --fast then
    ended in 'No module named pytest'. It names the install that adds the test extra."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "test", tmp_path / "scripts" / "test")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True
    )
    ran = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "test"), "--fast"], capture_output=True, text=True
    )
    assert ran.returncode == 1, ran
    assert "pip install -e '.[test]'" in ran.stderr, ran.stderr
    assert "No module named" not in ran.stderr
