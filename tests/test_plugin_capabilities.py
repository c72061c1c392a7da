"""A plugin provider that subclasses a built-in one gets what the built-in gets.

The plugin is registered under a new entry-point name (``bindplus``), as an outside package
would register it, and subclasses ``Rfc2136Provider`` without overriding any capability.
Against the real BIND it must take and release the same DNS lock, carry the same riders
(the lock's release, the record of the last apply) in its one UPDATE, leave the record
``sipctl drift`` reads, and give the read gate exactly the built-in's table.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fixtures.bind import SECRET_ENV, BindServer, dns_spec

from sipctl.cli import run
from sipctl.providers.base import RunContext, load_provider
from sipctl.providers.dns.rfc2136 import Rfc2136Provider
from sipctl.providers.transport.gate_table import host_gates
from sipctl.reconciler.gitops.locking import lock_sites, new_holder
from sipctl.schemas.loader import load_spec_text

PLUGIN = """
from __future__ import annotations
import json
import os
from sipctl.providers.dns.rfc2136 import Rfc2136Provider


class BindPlus(Rfc2136Provider):
    \"\"\"rfc2136 under another name; it only notes what rides in its UPDATEs.\"\"\"
    name = "bindplus"

    def apply(self, changes, live, riders=()):
        with open(os.environ["BINDPLUS_LOG"], "a") as log:
            log.write(json.dumps([r.what for r in riders]) + "\\n")
        return super().apply(changes, live, riders)
"""

ASTERISK = """\
asterisk:
  target: ssh://root@pbx.example.net:22
  ssh: {key_file: /nonexistent/key, known_hosts: /nonexistent/known_hosts}
"""


@pytest.fixture
def bindplus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    dist = site / "bindplus-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bindplus\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[sipctl.providers]\nbindplus = bindplus_plugin:BindPlus\n"
    )
    (site / "bindplus_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(site))
    log = tmp_path / "riders.log"
    monkeypatch.setenv("BINDPLUS_LOG", str(log))
    yield log
    sys.modules.pop("bindplus_plugin", None)


def _spec_text(bind: BindServer, zone: str, provider: str, tail: str = "") -> str:
    return dns_spec(bind, zone, tail=tail).replace("provider: rfc2136", f"provider: {provider}", 1)


def test_a_subclass_under_a_new_name_gets_lock_riders_and_drift_record(
    bind: BindServer,
    bindplus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    zone = bind.new_zone()
    monkeypatch.setenv(SECRET_ENV, bind.secret)
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(_spec_text(bind, zone, "bindplus"))
    assert load_provider("bindplus").__mro__[1] is Rfc2136Provider

    # the lock is the built-in's: held by a run of plain rfc2136, the plugin waits for it
    ctx = RunContext(base_dir=tmp_path)
    builtin = load_spec_text(_spec_text(bind, zone, "rfc2136"), base_dir=tmp_path)
    (held,) = lock_sites(builtin, ctx, ["dns"])
    other = new_holder("-", timedelta(minutes=5), {"SIPCTL_LOCK_WHO": "other@ci"})
    assert held.acquire(other) is None
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 3
    assert "locked by other@ci" in capsys.readouterr().err
    assert not bindplus.exists(), "nothing was applied under another's lock"
    assert held.release(other) is None

    # its one UPDATE carries the record of the last apply and the lock's release
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    (riders,) = [json.loads(line) for line in bindplus.read_text().splitlines()]
    assert riders == [
        f"record the last apply in _sipctl-state.{zone}.",
        f"release the lock _sipctl-lock.{zone}.",
    ]
    assert bind.query(f"_sipctl-lock.{zone}", "TXT") == [], "released in that UPDATE"
    assert bind.query(f"_sipctl-state.{zone}", "TXT"), "the record of the last apply"

    # drift reads that record: nothing drifted, then a hand edit is found
    capsys.readouterr()
    assert run(["drift", "-f", str(spec)]) == 0
    assert "No drift." in capsys.readouterr().out
    bind.update(zone, delete=[(f"asterisk.{zone}.", "A")])
    assert run(["drift", "-f", str(spec)]) == 2
    assert f"A asterisk.{zone}. was removed on the live side" in capsys.readouterr().out
    bind.delete_zone(zone)


def test_a_subclass_under_a_new_name_gives_the_read_gate_the_built_ins_table(
    bind: BindServer, bindplus: Path, tmp_path: Path
) -> None:
    del bindplus
    ctx = RunContext(base_dir=tmp_path, env={SECRET_ENV: bind.secret})
    zone = "gate.example"
    tables = {}
    for name in ("rfc2136", "bindplus"):
        loaded = load_spec_text(_spec_text(bind, zone, name, ASTERISK), base_dir=tmp_path)
        provider = load_provider(name)(loaded, ctx)
        desired = provider.publishable([])
        assert provider.gate_reads(desired) == []  # a DNS read is no host read
        gates = host_gates([loaded], ctx)
        tables[name] = {key: gate.table for key, gate in gates.items()}
    assert tables["bindplus"] == tables["rfc2136"] and tables["rfc2136"]
