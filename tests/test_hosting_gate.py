"""A hoster's directory planned through the read gate: a host file whose Asterisk, firewall
and fail2ban live on a whole PBX reached over SSH (``fixtures/pbx_host.py``: Asterisk 22,
fail2ban-server, iptables, a real sshd), and its customers' files beside it.

The gate of the directory (``sipctl read-gate -f DIR``) is the host file's: customers add no
read of their own there. A no-op plan of the host through the gate equals the plan through
the root login; so does the plan after a customer's file is deleted, which removes exactly
that customer's lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures import host_profile
from fixtures.host_profile import ENV as HOST_PROFILE_ENV
from fixtures.pbx_host import PbxHost, install_read_gate, measure, pbx_host

from sipctl.providers.base import RunContext
from sipctl.providers.transport.batch import Fetched
from sipctl.providers.transport.gate_table import host_gates
from sipctl.providers.transport.host_lock import HostStateStore
from sipctl.providers.transport.read_gate import READ_ONLY_ENV, render_gate
from sipctl.reconciler.engine import make_plan
from sipctl.reconciler.gitops.drift import find_drift
from sipctl.reconciler.gitops.guarded import lock_and_apply
from sipctl.reconciler.gitops.spec_files import select_specs
from sipctl.schemas.loader import load_spec

pytestmark = [pytest.mark.asterisk, pytest.mark.netns, pytest.mark.sshd, pytest.mark.slow]

CUSTOMERS = {"a.example": "a-phones", "b.example": "b-phones", "c.example": "c-phones"}


def _directory(where: Path, host: PbxHost, key: Path | None) -> Path:
    """The hoster's files, the host's layers over SSH (with ``key``: the plan key's login)."""
    where.mkdir()
    spec: dict[str, Any] = host.spec()
    del spec["users"]
    spec.update(domain="pbx1.hoster.example", hosting={"name": "pbx1"})
    if key is not None:
        for section in ("asterisk", "firewall", "fail2ban"):
            spec[section]["ssh"]["key_file"] = str(key)
    (where / "pbx1.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    for domain, context in CUSTOMERS.items():
        customer = {
            "version": 1,
            "domain": domain,
            "host": "pbx1",
            "local_context": context,
            "users": {"director": "105"},
        }
        (where / f"{domain}.yaml").write_text(yaml.safe_dump(customer, sort_keys=False))
    return where


def _ctx(host: PbxHost, read_only: bool) -> RunContext:
    env = {"USER": "root", HOST_PROFILE_ENV: str(host_profile.session().path)}
    if read_only:
        env[READ_ONLY_ENV] = "1"
    return RunContext(base_dir=host.work, env=env)


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PbxHost, Path, Path]]:
    """The host applied with the root login, its gate installed; (host, root's directory,
    the plan key's directory)."""
    with pbx_host() as host:
        base = tmp_path_factory.mktemp("hoster")
        root = _directory(base / "root", host, None)
        ctx = _ctx(host, read_only=False)
        try:
            with host.link.b.entered():
                lock_and_apply(load_spec(root / "pbx1.yaml"), ctx)
            specs = [load_spec(p) for p in select_specs([root]).paths]
            key = install_read_gate(host, specs, ctx)
        finally:
            ctx.close()
        yield host, root, _directory(base / "plan-key", host, key)


def _plan(host: PbxHost, spec: Path, read_only: bool) -> dict[str, Any]:
    ctx = _ctx(host, read_only)
    try:
        with host.link.b.entered():
            data: dict[str, Any] = make_plan(load_spec(spec), ctx).plan.to_json()
    finally:
        ctx.close()
    for volatile in ("created_at", "spec"):  # the key file differs, and the time
        data.pop(volatile, None)
    return data


def test_the_directorys_gate_is_its_host_files(gated: tuple[PbxHost, Path, Path]) -> None:
    host, root, _ = gated
    ctx = _ctx(host, read_only=False)
    try:
        everything = host_gates([load_spec(p) for p in select_specs([root]).paths], ctx)
        alone = host_gates([load_spec(root / "pbx1.yaml")], ctx)
    finally:
        ctx.close()
    [(target, gate)] = everything.items()
    assert render_gate(gate.table, title=target) == render_gate(alone[target].table, title=target)


def test_a_hosts_plan_reads_its_record_once(
    gated: tuple[PbxHost, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's record of the last apply (which customers it serves) is read once by a
    plan of the host; drift and the apply's own record take that read. An apply reads it
    once more, before its locks: which zones it locks depends on it."""
    host, root, _ = gated
    reads: list[str] = []
    take_raw = HostStateStore._take_raw

    def counted(store: HostStateStore, fetched: Fetched) -> dict[str, bytes | None]:
        reads.append(store.path)
        return take_raw(store, fetched)

    monkeypatch.setattr(HostStateStore, "_take_raw", counted)
    spec = root / "pbx1.yaml"
    env = {"USER": "root", HOST_PROFILE_ENV: str(host_profile.session().path)}
    # (what, the work, most round trips on the pooled connection, reads of the record)
    steps: list[tuple[str, Callable[[RunContext], object], int, int]] = [
        ("no-op plan", lambda ctx: make_plan(load_spec(spec), ctx), 2, 1),
        ("drift", lambda ctx: find_drift(make_plan(load_spec(spec), ctx), ctx), 2, 1),
        ("no-op apply -f", lambda ctx: lock_and_apply(load_spec(spec), ctx), 4, 2),
    ]
    for name, work, ceiling, once in steps:
        reads.clear()
        step = measure(host, name, work, env)
        listing = "\n".join(f"  {n}. {what}" for n, what in enumerate(step.exchanges, 1))
        assert step.round_trips <= ceiling, f"{name}: {step.round_trips} round trips\n{listing}"
        assert len(reads) == once, f"{name}: the host's record was read {len(reads)} times"


def test_a_hosts_plan_through_the_gate_equals_the_root_logins(
    gated: tuple[PbxHost, Path, Path],
) -> None:
    host, root, plan_key = gated
    normal = _plan(host, root / "pbx1.yaml", read_only=False)
    assert not any(t["changes"] for t in normal["targets"]), "a no-op plan"
    assert _plan(host, plan_key / "pbx1.yaml", read_only=True) == normal
    # a merge request deletes a customer's file: the plan through the gate shows its removal
    for directory in (root, plan_key):
        (directory / "b.example.yaml").unlink()
    removal = _plan(host, plan_key / "pbx1.yaml", read_only=True)
    assert removal == _plan(host, root / "pbx1.yaml", read_only=False)
    [change] = [c for t in removal["targets"] for c in t["changes"]]
    before, after = (
        v if isinstance(v, str) else json.dumps(v, indent=1, sort_keys=True)
        for v in (change["before"], change["after"])
    )
    assert "b.example" in before and "b.example" not in after, change
    for kept in ("a.example", "c.example"):
        lines = [line for line in before.splitlines() if kept in line]
        assert lines and lines == [line for line in after.splitlines() if kept in line]
