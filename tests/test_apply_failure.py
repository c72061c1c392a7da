"""A later layer fails: the error names the layers already applied, and a plan right after
shows exactly what remains (real files on a ``dir:`` target)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipctl.cli import run
from sipctl.errors import StalePlanError
from sipctl.providers.base import RunContext
from sipctl.reconciler.engine import apply_plan, make_plan
from sipctl.schemas.loader import load_spec

SPEC = """\
version: 1
domain: example.org
transports: {udp: {port: 5060}}
servers: [{host: pbx.example.org, ipv4: [192.0.2.5]}]
users: {director: 105}
asterisk: {target: "dir:pbx"}
firewall: {persist: /etc/iptables.up}
fail2ban: {enabled: true}
"""


def test_a_failing_later_layer_names_what_was_applied_and_plan_shows_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sipctl.yaml").write_text(SPEC)
    conf = tmp_path / "pbx" / "etc" / "asterisk"
    conf.mkdir(parents=True)
    (conf / "extensions.conf").write_text("[general]\n")
    loaded = load_spec(tmp_path / "sipctl.yaml")
    ctx = RunContext(base_dir=tmp_path)
    plan_run = make_plan(loaded, ctx)
    # the admin edits a file of the last host layer between plan and apply
    (conf / "extensions.conf").write_text("[general]\n; edited meanwhile\n")
    with pytest.raises(StalePlanError) as failure:
        apply_plan(plan_run, ctx)
    ctx.close()
    message = str(failure.value)
    assert "extensions.conf changed on the host since the plan" in message
    assert "already applied before this failure: firewall dir:pbx, fail2ban dir:pbx" in message
    assert "'sipctl plan' shows exactly what remains" in message
    assert run(["plan", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["domains"][0]["plan"]
    changed = {t["layer"] for t in plan["targets"] if t["changes"]}
    assert changed == {"asterisk"}, "firewall and fail2ban are live; only Asterisk remains"
