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

# Where a link may point, written as the link holds it ({o}: the outside directory, {d}: the
# spec's directory, absolute): relative, absolute, into a subdirectory, through '..', to
# another link (a chain, a loop), to nothing, into .git.
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
    ".git/config",
    "{d}/.git/config",
    "gone.yaml",
    "{o}/gone.yaml",
    "sub",
    "{o}",
    "/dev/null",
]


def _tree(root: Path) -> tuple[Path, Path]:
    d, o = root / "d", root / "o"
    (d / "sub").mkdir(parents=True)
    (d / ".git").mkdir()
    o.mkdir()
    (d / "real.yaml").write_text(SPEC)
    (d / "sub" / "inner.yaml").write_text(SPEC)
    (d / ".git" / "config").write_text(f"[remote]\nurl = https://ci:{SECRET}@git.example\n")
    (o / "secret.yaml").write_text(OUTSIDE_SPEC)
    return d, o


def _expected_outside(path: Path, inside: set[tuple[int, int]]) -> bool:
    """The oracle, by the file a read reaches (its inode), not by paths: a link that
    reaches a regular file not among the directory's own (outside, or in its .git)."""
    if not path.is_symlink():
        return False
    try:
        reached = path.stat()
    except OSError:
        return False  # dangling, a loop
    if not path.is_file():
        return False  # a directory, a device: no spec file is read through it
    return (reached.st_dev, reached.st_ino) not in inside


_LINK = st.tuples(
    st.sampled_from(["d", "d/sub", "o"]),  # where the link lives
    st.sampled_from([*_TARGETS, "@0", "@1", "@2", "@self"]),  # @N: the Nth link (a chain)
)


@settings(max_examples=examples(300), deadline=None)
@given(links=st.lists(_LINK, min_size=1, max_size=6))
def test_links_of_every_kind_are_refused_exactly_when_they_reach_outside(
    links: list[tuple[str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        d, o = _tree(root)
        made = [root / where / f"link{i}.yaml" for i, (where, _target) in enumerate(links)]
        for i, (_where, target) in enumerate(links):
            if target == "@self":
                written = made[i].name
            elif target.startswith("@"):
                other = made[int(target[1:]) % len(made)]
                written = os.path.relpath(other, made[i].parent)
            else:
                written = target.format(d=d, o=o)
            made[i].symlink_to(written)
        inside = {
            (s.st_dev, s.st_ino)
            for s in ((d / "real.yaml").stat(), (d / "sub" / "inner.yaml").stat())
        }
        for path in made:
            if path.parent not in (d, d / "sub"):
                continue
            own = {  # a link in d/sub may reach d/real.yaml: outside d/sub
                (s.st_dev, s.st_ino)
                for f in path.parent.rglob("*.yaml")
                if f.is_file() and not f.is_symlink() and ".git" not in f.parts
                for s in [f.stat()]
            }
            expected = _expected_outside(path, own & inside)
            assert (link_out(path) is not None) == expected, (path, path.readlink())
            # and the loader, where the run is strict, refuses exactly those, quoting none
            try:
                with patch.dict(os.environ, {"CI": "1"}):
                    load_spec(path)
                refused = ""
            except SpecError as exc:
                refused = " ".join([exc.message, *exc.problems])
            assert (REFUSED in refused) == expected, (path, path.readlink(), refused)
            assert SECRET not in refused, refused


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
