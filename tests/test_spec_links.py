"""A spec file reached through a symbolic link never reads outside its directory where the
run is strict (schemas/spec_links.py): the loader, ``-f DIR``, ``validate`` and a host's
plan with a customer file that became such a link (never taken for a departure).

The attack: a merge request adds ``evil.yaml -> /etc/shadow`` (git stores links) to a
hosting directory, or replaces ``sipctl.yaml`` with one; the runner's file was read and a
validation error quoted a value of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from fixtures.hosting import copy_example
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.errors import SpecError
from sipctl.schemas.loader import load_spec
from sipctl.schemas.spec_links import link_out

SECRET = "TopSecret4711"
# A file of the runner that has spec keys: a validation error would quote its value.
OUTSIDE_SPEC = f"version: 1\ndomain: secret.example\nusers: {{{SECRET}: not-an-extension}}\n"
SPEC = "version: 1\ndomain: a.example\nusers: {director: 105}\n"
REFUSED = "outside the directory it is in (or in its .git)"

# --- the rule against the real resolution --------------------------------------------------

# The checkout c (the working directory) holds the specs' directory d; o is outside it.
# Where a link may point, written as the link holds it ({o}: the outside directory, {d}: the
# specs' directory, absolute): files and directories, relative, absolute, through '..', to
# another link (a chain, a loop), to nothing, into .git, to a device.
_TARGETS = [
    "real.yaml",
    "sub/inner.yaml",
    "./sub/../real.yaml",
    "../o/secret.yaml",
    "../d/real.yaml",
    "sub/../../o/secret.yaml",
    "{o}/secret.yaml",
    "{d}/real.yaml",
    "{d}/sub/inner.yaml",
    "{d}/../o/secret.yaml",
    "{d}/../../o/secret.yaml",
    ".git/config",
    "{d}/.git/config",
    "gone.yaml",
    "{o}/gone.yaml",
    "sub",
    "d",
    "d/sub",
    ".",
    "..",
    "../..",
    "../o",
    "{o}",
    "{o}/sub",
    "{d}",
    "{d}/sub",
    ".git",
    "{d}/.git",
    "/dev/null",
]
# Where links live: the checkout, the specs' directory and below, outside.
_PLACES = ["c", "c/d", "c/d/sub", "o"]
# What is asked through a link: it itself (a file, or a directory given to -f), or a file
# or directory below it, spelt through '..' too.
_BELOW = ["", "real.yaml", "sub/inner.yaml", "secret.yaml", "sub", "sub/../real.yaml"]


def _tree(root: Path) -> tuple[Path, Path, Path]:
    c = root / "c"
    d, o = c / "d", root / "o"
    (d / "sub").mkdir(parents=True)
    (d / ".git").mkdir()
    (o / "sub").mkdir(parents=True)
    (d / "real.yaml").write_text(SPEC)
    (d / "sub" / "inner.yaml").write_text(SPEC)
    (d / ".git" / "config").write_text(f"[remote]\nurl = https://ci:{SECRET}@git.example\n")
    (o / "secret.yaml").write_text(OUTSIDE_SPEC)
    (o / "sub" / "inner.yaml").write_text(OUTSIDE_SPEC)
    return c, d, o


def _held(directory: Path) -> set[tuple[int, int]]:
    """The files and directories below ``directory`` and it itself, by inode, links not
    followed and no .git directory entered: what a link in it may reach."""
    held = {(directory.stat().st_dev, directory.stat().st_ino)}
    for top, dirs, files in os.walk(directory):
        dirs[:] = [name for name in dirs if name.casefold() != ".git"]
        for name in dirs + files:
            entry = Path(top, name)
            if not entry.is_symlink():
                info = entry.stat()
                held.add((info.st_dev, info.st_ino))
    return held


def _expected_out(asked: Path, checkout: Path) -> bool:
    """The oracle, by what the kernel reaches (inodes), not by paths: some link on the way
    to ``asked`` (a directory of it in the checkout, or ``asked`` itself anywhere) reaches
    a regular file or directory not held by the directory the link is in."""
    in_checkout = {
        (s.st_dev, s.st_ino) for top, _dirs, _files in os.walk(checkout) for s in [Path(top).stat()]
    }
    parts = asked.parts
    for depth in range(1, len(parts) + 1):
        prefix = Path(*parts[:depth])
        last = depth == len(parts)
        if parts[depth - 1] == ".." or not prefix.is_symlink():
            continue
        try:
            reached = prefix.stat()  # followed to its end, as the kernel does
            parent = prefix.parent.stat()
        except OSError:
            return False  # dangling, a loop: the reader says what it is
        kind_counts = prefix.is_dir() or (last and prefix.is_file())
        if not kind_counts:
            continue
        if not last and (parent.st_dev, parent.st_ino) not in in_checkout:
            continue  # a directory above or outside the checkout: the runner's
        held = _held(Path(os.path.realpath(prefix.parent)))
        if (reached.st_dev, reached.st_ino) not in held:
            return True
    return False


_LINK = st.tuples(
    st.sampled_from(_PLACES),  # where the link lives
    st.sampled_from([*_TARGETS, "@0", "@1", "@2", "@self"]),  # @N: the Nth link (a chain)
)


@settings(max_examples=examples(300), deadline=None)
@given(
    links=st.lists(_LINK, min_size=1, max_size=6),
    below=st.sampled_from(_BELOW),
    absolute=st.booleans(),
)
def test_links_of_every_kind_on_the_way_are_refused_exactly_when_they_reach_outside(
    links: list[tuple[str, str]], below: str, absolute: bool
) -> None:
    """A spec file, or the directory given to -f, asked through any links: refused where
    the run is strict exactly when a link on the way (the file's own, the directory's own,
    or a directory of the path in the checkout) leads out of the directory it is in, by
    the rule, the loader and -f DIR's listing alike, showing nothing of what is there."""
    from sipctl.reconciler.gitops.spec_files import select_specs

    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary).resolve()
        c, d, o = _tree(root)
        made = [root / where / f"link{i}" for i, (where, _target) in enumerate(links)]
        for i, (_where, target) in enumerate(links):
            if target == "@self":
                written = made[i].name
            elif target.startswith("@"):
                other = made[int(target[1:]) % len(made)]
                written = os.path.relpath(other, made[i].parent)
            else:
                written = target.format(d=d, o=o)
            made[i].symlink_to(written)
        cwd = Path.cwd()
        os.chdir(c)
        try:
            for link in made:
                asked = link / below if below else link
                if not absolute and link.is_relative_to(c):
                    asked = asked.relative_to(c)
                expected = _expected_out(asked, c)
                assert (link_out(asked) is not None) == expected, (asked, link.readlink())
                with patch.dict(os.environ, {"CI": "1"}):
                    refused = _refusal(asked, select_specs)
                assert (REFUSED in refused) == expected, (asked, link.readlink(), refused)
                if expected:  # nothing of what is out there shown
                    assert SECRET not in refused and "secret.example" not in refused, refused
        finally:
            os.chdir(cwd)


def _refusal(asked: Path, select_specs: Any) -> str:
    """What a strict run says of ``asked``: its listing (a directory) or its load."""
    try:
        if asked.is_dir():
            for path in select_specs([asked]).paths:
                load_spec(path)
        else:
            load_spec(asked)
    except SpecError as exc:
        return " ".join([exc.message, *exc.problems])
    return ""


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    """A directory of one spec and ``evil.yaml``: a link to a spec-shaped file outside."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(SPEC)
    (tmp_path / "secret.yaml").write_text(OUTSIDE_SPEC)
    (specs / "evil.yaml").symlink_to("../secret.yaml")
    return specs


def _said(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err


@pytest.mark.parametrize("command", ["plan", "validate"])
def test_a_link_out_of_the_directory_is_refused_where_the_run_is_strict(
    linked: Path,
    command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(linked)
    monkeypatch.setenv("CI", "1")
    for named in (linked, linked / "evil.yaml"):
        code = run([command, "-f", str(named)])
        shown = _said(capsys)
        assert code != 0, shown
        assert f"{linked / 'evil.yaml'}: a symbolic link to {linked.parent / 'secret.yaml'}, " in (
            shown
        ), shown
        assert "Put the spec itself in the directory" in shown, shown
        assert SECRET not in shown and "secret.example" not in shown, shown
        assert "Traceback" not in shown, shown
    # the spec beside it is planned all the same
    assert run([command, "-f", str(linked / "a.yaml")]) == 0, _said(capsys)


@pytest.mark.parametrize("command", ["plan", "validate"])
def test_an_admins_own_machine_follows_the_link(
    linked: Path,
    command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not strict: the admin made the link (a spec kept elsewhere) and reads only what the
    admin can read anyway; the file is loaded (here: its own mistake is said)."""
    monkeypatch.chdir(linked)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    (linked.parent / "secret.yaml").write_text(SPEC.replace("a.example", "b.example"))
    code = run([command, "-f", str(linked)])
    shown = _said(capsys)
    assert code == 0 and REFUSED not in shown, shown


def test_a_runner_profile_makes_the_run_strict(
    linked: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(linked)
    monkeypatch.delenv("CI", raising=False)
    profile = linked.parent / "runner.yaml"
    profile.write_text("{}\n")
    monkeypatch.setenv("SIPCTL_PROFILE", str(profile))
    assert run(["validate", "-f", str(linked / "evil.yaml")]) != 0
    shown = _said(capsys)
    assert REFUSED in shown and SECRET not in shown, shown


def test_a_link_within_the_directory_is_read_where_the_run_is_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "customers").mkdir()
    (tmp_path / "customers" / "a.yaml").write_text(SPEC)
    (tmp_path / "a.yaml").symlink_to("customers/a.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    assert run(["validate", "-f", str(tmp_path / "a.yaml")]) == 0, _said(capsys)


# --- a host's plan: a customer's file become a link out is no departure ----------------------


def _plan(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run(["plan", "-f", str(path)])
    return code, _said(capsys)


def test_a_customer_file_linked_out_is_no_departed_customer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """beta.example's file replaced by a link to a copy outside: where the run is strict
    it is not read, and the host's plan refuses to take beta.example for gone (its
    dialplan and DNS records stay); on the admin's machine the link is followed and the
    host's plan is unchanged."""
    hoster = copy_example(tmp_path / "hoster")
    monkeypatch.chdir(hoster)
    monkeypatch.delenv("CI", raising=False)
    applied = run(["apply", "-f", str(hoster), "--auto-approve"])
    assert applied == 0, _said(capsys)
    capsys.readouterr()
    beta = hoster / "beta.example.yaml"
    outside = tmp_path / "beta.example.yaml"
    beta.rename(outside)
    beta.symlink_to(outside)

    code, shown = _plan(hoster / "pbx1.yaml", capsys)  # the admin's machine: followed
    assert code == 0, shown
    assert REFUSED not in shown and "director@beta.example" not in shown, shown

    monkeypatch.setenv("CI", "1")
    for named in (hoster, hoster / "pbx1.yaml"):
        code, shown = _plan(named, capsys)
        assert code == 1, shown
        assert f"{beta}: a symbolic link to {outside}, outside the directory" in shown, shown
        assert "customer(s) beta.example of pbx1 are declared by no file that loads" in shown
        assert "- user director@beta.example" not in shown, shown
        assert "Traceback" not in shown, shown


def test_validate_json_names_the_link_and_nothing_of_its_target(
    linked: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(linked)
    monkeypatch.setenv("CI", "1")
    assert run(["validate", "-f", str(linked), "--json"]) != 0
    shown = _said(capsys)
    assert REFUSED in shown and str(linked / "evil.yaml") in shown, shown
    assert SECRET not in shown and "secret.example" not in shown, shown


@pytest.mark.parametrize("named", ["specs", "specs/a.yaml", "./specs/../specs"])
def test_a_directory_of_the_checkout_linked_out_is_refused_before_it_is_listed(
    tmp_path: Path,
    named: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The merge request replaced the checkout's directory of specs with a link to a
    directory of the runner: where the run is strict nothing of it is listed or read (its
    files' names and keys were the skip reasons); on the admin's machine it is followed."""
    checkout, outside = tmp_path / "checkout", tmp_path / "runner"
    checkout.mkdir()
    outside.mkdir()
    (outside / "a.yaml").write_text(SPEC)
    (outside / "secret.yaml").write_text(OUTSIDE_SPEC)
    (outside / "notes.yaml").write_text(f"{SECRET}: 1\n")
    (checkout / "specs").symlink_to(outside)
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("CI", "1")
    for command in ("validate", "plan"):
        code = run([command, "-f", named])
        shown = _said(capsys)
        assert code == 1, shown
        link = "a symbolic link" if named == "specs" else "specs is a link"
        assert f"{Path(named)}: {link} to the directory {outside}, outside the directory" in shown
        assert "Put the directory itself in the checkout" in shown, shown
        assert SECRET not in shown and "secret.example" not in shown, shown
        assert "notes.yaml" not in shown and "Traceback" not in shown, shown
    monkeypatch.delenv("CI")
    assert run(["validate", "-f", "specs/a.yaml"]) == 0, _said(capsys)
