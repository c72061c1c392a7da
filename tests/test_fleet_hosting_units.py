"""A hosting directory as the fleet's units, without a server: which syncs make units and
which are refused (the real loader on the repository's example hoster), and a worker's
private copy of a unit's files. The workflows themselves: test_fleet_hosting.py."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from fixtures.hosting import copy_example
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.errors import SipctlError, SpecError
from sipctl.reconciler.fleet.client import spec_changes
from sipctl.reconciler.fleet.hosting import (
    MAX_PLANS_BYTES,
    check_plans_size,
    materialised,
    shown,
    shown_json,
    unit_directory,
)
from sipctl.reconciler.fleet.model import SpecChange, SpecFile
from sipctl.reconciler.gitops.spec_files import spec_paths

EXAMPLE_FILES = ("alpha.example.yaml", "beta.example.yaml", "gamma.example.yaml")
HOST_FILES = ("pbx1.yaml", "pbx2.yaml")


@pytest.fixture(scope="module")
def hoster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example(tmp_path_factory.mktemp("units") / "hoster")


def test_a_whole_directory_is_one_unit_per_host_with_its_customers(hoster: Path) -> None:
    changes = {change.domain: change for change in spec_changes(spec_paths([hoster]))}
    assert sorted(changes) == ["hosting:pbx1.hoster.example", "hosting:pbx2.hoster.example"]
    pbx1 = changes["hosting:pbx1.hoster.example"]
    assert pbx1.customers == ["alpha.example", "beta.example"]
    assert pbx1.source == str(hoster.resolve()) and pbx1.text == ""
    # every spec file of the directory travels (the files beside the host are read)
    assert sorted(f.name for f in pbx1.files) == sorted(EXAMPLE_FILES + HOST_FILES)
    # the host's file first, on its PBX's queue; then its customers' on their provider's
    assert [(p.queue, p.files) for p in pbx1.parts] == [
        (f"pbx:dir:{(hoster / 'state' / 'pbx1').resolve()}", ["pbx1.yaml"]),
        ("dns:zonefile", ["alpha.example.yaml", "beta.example.yaml"]),
    ]
    assert changes["hosting:pbx2.hoster.example"].customers == ["gamma.example"]
    # the digest follows every file's text: a change of any is a new version
    other = SpecChange(**{**pbx1.__dict__, "files": [*pbx1.files[:-1], SpecFile("x", "")]})
    assert other.digest != pbx1.digest


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.sets(st.sampled_from(EXAMPLE_FILES + HOST_FILES), min_size=1))
def test_part_of_a_hosting_directory_is_refused_naming_what_is_left_out(
    hoster: Path, chosen: set[str]
) -> None:
    """Any files of the directory but all of them: a host planned without a customer would
    remove it, a customer without its host has no servers. Refused before anything is
    sent, naming the files left out and the command that syncs them."""
    paths = [hoster / name for name in sorted(chosen)]
    left_out = sorted(set(EXAMPLE_FILES + HOST_FILES) - chosen)
    if not left_out:
        assert len(spec_changes(paths)) == 2
        return
    with pytest.raises(SpecError) as refused:
        spec_changes(paths)
    message = refused.value.message
    assert "the fleet reconciles a hosting directory whole" in message
    assert f"sipctl fleet sync -f {hoster.resolve()}" in message
    assert all(name in message for name in left_out[:5]), message
    assert "nothing was sent to the fleet" in (refused.value.hint or "")


def test_a_companys_spec_is_its_own_domain_beside_a_hosting_directory(
    hoster: Path, tmp_path: Path
) -> None:
    one = tmp_path / "one.example.yaml"
    one.write_text(
        "version: 1\ndomain: one.example\ntransports: {udp: {port: 5060}}\n"
        "servers: [{host: pbx.one.example, ipv4: [192.0.2.10]}]\nusers: {alex: 105}\n"
    )
    changes = spec_changes(spec_paths([one, hoster]))
    assert [c.domain for c in changes] == [
        "one.example",
        "hosting:pbx1.hoster.example",
        "hosting:pbx2.hoster.example",
    ]
    assert changes[0].files == [] and changes[0].customers == []


def _change(source: Path, *files: SpecFile) -> SpecChange:
    return SpecChange("hosting:pbx1.example", str(source), "", files=list(files))


def test_a_workers_copy_is_private_and_the_same_for_a_plan_and_its_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    change = _change(tmp_path / "sender", SpecFile("pbx1.yaml", "a\n"), SpecFile("b.yaml", "é\n"))
    copy = materialised(change)
    assert copy == unit_directory(change) == materialised(change)  # written once
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((copy / "pbx1.yaml").stat().st_mode) == 0o600
    assert (copy / "b.yaml").read_text(encoding="utf-8") == "é\n"
    changed = _change(tmp_path / "sender", SpecFile("pbx1.yaml", "b\n"))
    assert materialised(changed) != copy
    # messages and plans name the sender's files, JSON as JSON spells them
    assert shown(change, f"{copy}/pbx1.yaml:3:1: x") == f"{tmp_path}/sender/pbx1.yaml:3:1: x"
    quoted = _change(tmp_path / 'a"b', SpecFile("pbx1.yaml", "a\n"))
    text = shown_json(quoted, f'{{"source": "{materialised(quoted)}/pbx1.yaml"}}')
    import json

    assert json.loads(text) == {"source": f'{tmp_path}/a"b/pbx1.yaml'}


def test_a_copy_refuses_a_shared_directory_and_a_path_for_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(SipctlError, match="is not a file name"):
        materialised(_change(tmp_path, SpecFile("../evil.yaml", "x")))
    root = tmp_path / f"sipctl-fleet-{os.getuid()}"
    root.chmod(0o755)
    with pytest.raises(SipctlError, match="only it can read"):
        materialised(_change(tmp_path, SpecFile("pbx1.yaml", "x")))


def test_plans_larger_than_a_step_carries_are_refused_with_what_to_do(tmp_path: Path) -> None:
    """Temporal refuses a payload of more than 2 MB: a directory whose plans would exceed
    what a step carries is told to use the CLI, not failed on the server's limit."""
    change = _change(tmp_path, SpecFile("pbx1.yaml", "x"))
    check_plans_size(change, "dns:zonefile", 3, "x" * MAX_PLANS_BYTES)
    with pytest.raises(SpecError, match="more than a workflow step carries") as refused:
        check_plans_size(change, "dns:zonefile", 3, "x" * (MAX_PLANS_BYTES + 1))
    assert f"reconcile {tmp_path} with 'sipctl plan -f DIR'" in refused.value.message


def test_a_workers_caches_are_bounded_and_right_after_eviction(
    hoster: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker plans each change of a unit in a copy of its own (new paths each time), for
    weeks: the caches keyed by path keep the last few, and a unit whose entries were
    evicted loads as it did (its own customers, the host's servers)."""
    import functools

    import sipctl.schemas.hosting as hosting
    import sipctl.schemas.hosting_reach as reach
    from sipctl.reconciler.fleet.hosting import load_file

    # the real caches are bounded
    assert hosting._host_files_at.cache_info().maxsize == hosting._DIRECTORIES_KEPT
    assert hosting._host_loaded.cache_info().maxsize == hosting._HOST_FILES_KEPT
    assert reach._MAX_KNOWN <= 20_000  # about 5 KB each: 100 MB at most
    # the same caches, small, so that a few versions evict
    for name in ("_host_files_at", "_host_loaded"):
        small = functools.lru_cache(maxsize=2)(getattr(hosting, name).__wrapped__)
        monkeypatch.setattr(hosting, name, small)
    monkeypatch.setattr(reach, "_MAX_KNOWN", 3)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (pbx1,) = [c for c in spec_changes(spec_paths([hoster])) if c.customers[0] == "alpha.example"]

    def version(n: int) -> SpecChange:
        """pbx1's unit with alpha's user 'v<n>' added: a new copy on the worker."""
        files = [
            SpecFile(f.name, f.text.replace("users:\n", f"users:\n  v{n}: {200 + n}\n"))
            if f.name == "alpha.example.yaml"
            else f
            for f in pbx1.files
        ]
        return SpecChange(**{**pbx1.__dict__, "files": files})

    def check(n: int) -> None:
        change = version(n)
        host = load_file(change, "pbx1.yaml").spec
        alpha = next(c for c in host.customers if c.domain == "alpha.example")
        assert f"v{n}" in alpha.users and sorted(c.domain for c in host.customers) == [
            "alpha.example",
            "beta.example",
        ]
        customer = load_file(change, "alpha.example.yaml").spec
        assert [s.host for s in customer.servers] == [s.host for s in host.servers]
        assert f"v{n}" in customer.users

    for n in [*range(6), 0, 5, 1]:  # 0 and 1 evicted long since
        check(n)
        assert hosting._host_files_at.cache_info().currsize <= 2
        assert hosting._host_loaded.cache_info().currsize <= 2
        assert len(reach._KNOWN) <= 3
