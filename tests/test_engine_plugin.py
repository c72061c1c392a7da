"""The engine and CLI with a third-party provider plugged in through an entry point.

The plugin is a tiny in-memory DNS provider written the way an outside author would write
one: it proves that providers are found by entry point, and lets us check the engine's own
rules (exit codes, safety limits, stale plans, unexpected errors) without any server.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipctl.cli import run

PLUGIN = '''
from __future__ import annotations
import json
from pathlib import Path
from sipctl.errors import StalePlanError
from sipctl.providers.base import Provider
from sipctl.reconciler.resources import Address, LiveState


class MemoryDns(Provider):
    """Keeps the zone as JSON in $MEMDNS_FILE."""
    layer = "dns"
    name = "memdns"

    def __init__(self, loaded, ctx):
        self.path = Path(ctx.env["MEMDNS_FILE"])
        self.ctx = ctx

    @property
    def target_id(self):
        return "memdns:" + self.path.name

    def _load(self):
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def read(self, desired):
        if self.ctx.env.get("MEMDNS_CRASH"):
            raise RuntimeError("plugin bug")
        data = self._load()
        live = LiveState()
        for key, value in data.items():
            layer, kind, name = key.split("|")
            live.resources[Address(layer, kind, name)] = value
        return live

    def apply(self, changes, live, riders=()):
        data = self._load()
        for change in changes:
            key = "|".join((change.address.layer, change.address.kind, change.address.name))
            if data.get(key) != change.before:
                raise StalePlanError(f"{key} changed")
            if change.after is None:
                data.pop(key, None)
            else:
                data[key] = change.after
        self.path.write_text(json.dumps(data))
        return [f"memdns: {len(changes)} change(s)"]
'''

SPEC = """\
version: 1
domain: example.org
servers:
  - host: sip.example.org
    ipv4: [192.0.2.10]
  - host: sip2.example.org
    ipv4: [192.0.2.11]
    priority: 20
users:
  alice: 201
dns:
  provider: memdns
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    dist = site / "memdns_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: memdns-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sipctl.providers]\nmemdns = memdns_plugin:MemoryDns\n")
    (site / "memdns_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(site))
    state = tmp_path / "zone.json"
    monkeypatch.setenv("MEMDNS_FILE", str(state))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sipctl.yaml").write_text(SPEC)
    yield state
    sys.modules.pop("memdns_plugin", None)


def test_plugin_is_found_and_applied_idempotently(
    plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert "Plan: 11 to add, 0 to change, 0 to destroy." in out
    assert run(["apply", "--auto-approve"]) == 0
    assert "Apply complete! 11 added" in capsys.readouterr().out
    assert run(["plan", "--detailed-exitcode"]) == 0
    assert "No changes." in capsys.readouterr().out


def test_apply_without_terminal_needs_auto_approve(
    plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply"]) == 1
    assert "--auto-approve" in capsys.readouterr().err
    assert not plugin.exists()


def test_saved_plan_is_applied_exactly_and_goes_stale(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "--out", "plan.json"]) == 0
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert saved["format_version"] == "1" and saved["summary"]["add"] == 11
    assert run(["show", "plan.json"]) == 0
    assert "11 to add" in capsys.readouterr().out
    # the zone changes behind the plan's back: the plan is stale, nothing is applied
    plugin.write_text(json.dumps({"dns|TXT|other.example.org.": {"ttl": 1, "records": ["x"]}}))
    before = plugin.read_text()
    assert run(["apply", "plan.json"]) == 3
    assert "stale" in capsys.readouterr().err
    assert plugin.read_text() == before


def test_removing_too_much_is_refused_without_force(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", "--auto-approve"]) == 0
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        SPEC.replace("dns:\n  provider: memdns\n", "dns:\n  provider: memdns\n  ensure: absent\n")
    )
    capsys.readouterr()
    assert run(["plan"]) == 3
    said = capsys.readouterr()
    assert said.out.count("removes every NAPTR and SRV") == 1  # in the plan, once
    assert "--force" in said.out and "--force" in said.err and "see the reasons above" in said.err
    assert run(["apply", "--auto-approve"]) == 3
    assert run(["apply", "--auto-approve", "--force"]) == 0
    assert json.loads(plugin.read_text()) == {}


def test_share_limit_counts_records(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", "--auto-approve"]) == 0
    spec = tmp_path / "sipctl.yaml"
    # dropping the second server removes 1 SRV record of 2 in each of 2 rrsets, its A and
    # its registry entry: more than 30% of the records sipctl manages there
    spec.write_text(
        SPEC.replace("  - host: sip2.example.org\n    ipv4: [192.0.2.11]\n    priority: 20\n", "")
    )
    capsys.readouterr()
    assert run(["plan"]) == 3
    assert capsys.readouterr().out.count("the limit is 30%; a whole file") == 1


def test_json_and_markdown_views(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["domains"][0]["plan"]
    assert data["summary"] == {"add": 11, "change": 0, "destroy": 0}
    assert {c["action"] for t in data["targets"] for c in t["changes"]} == {"create"}
    assert run(["plan", "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("<!-- sipctl-plan:example.org -->\n### sipctl plan for `example.org`")
    assert "**Plan: 11 to add, 0 to change, 0 to destroy." in md
    assert run(["plan", "--json", "--markdown"]) == 1


def test_unexpected_error_goes_to_the_debug_log(
    plugin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = tmp_path / "debug.log"
    monkeypatch.setenv("SIPCTL_DEBUG_LOG", str(log))
    monkeypatch.setenv("MEMDNS_CRASH", "1")
    assert run(["plan"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(log) in err and "unexpected error" in err
    assert "RuntimeError: plugin bug" in log.read_text()


def test_unknown_provider_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sipctl.yaml").write_text(SPEC.replace("memdns", "nosuchdns"))
    assert run(["validate"]) == 1
    err = capsys.readouterr().err
    assert "no provider named 'nosuchdns'" in err and "rfc2136" in err
    # plan says the same, with the spec's line (it once said neither file nor line), and
    # a near miss names the provider meant
    (tmp_path / "sipctl.yaml").write_text(SPEC.replace("memdns", "zonefil"))
    for command in ("validate", "plan"):
        assert run([command]) == 1
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
        assert len(lines) == 1, lines
        assert lines[0].startswith("Error: sipctl.yaml:"), lines
        assert ": dns: no provider named 'zonefil' is installed" in lines[0]
        assert lines[0].endswith("; did you mean 'zonefile'?"), lines


def test_target_selects_layers(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--target", "asterisk"]) == 1
    assert "has no 'asterisk' section" in capsys.readouterr().err
    assert run(["plan", "--target", "bogus"]) == 1
    assert "no such layer" in capsys.readouterr().err
