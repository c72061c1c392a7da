"""Apply order: withdraw first, advertise last; DNS alone goes out in one step per zone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sipctl.reconciler.engine import PlanRun, TargetRun, _steps
from sipctl.reconciler.layers import layer_named
from sipctl.reconciler.plan import Change, Plan, TargetPlan
from sipctl.reconciler.resources import Address, LiveState
from sipctl.reconciler.views import render_human
from sipctl.schemas import load_spec_text


@dataclass
class StubProvider:
    target_id: str


def _change(layer: str, kind: str, action: str, before: Any = None, after: Any = None) -> Change:
    return Change(Address(layer, kind, f"{kind.lower()}.example."), action, before, after)  # type: ignore[arg-type]


def _plan_run(targets: dict[str, list[Change]]) -> PlanRun:
    loaded = load_spec_text("version: 1\ndomain: example.org\n")
    runs, plans = [], []
    for layer_name, changes in targets.items():
        runs.append(
            TargetRun(layer_named(layer_name), StubProvider(f"t-{layer_name}"), [], LiveState())
        )  # type: ignore[arg-type]
        plans.append(TargetPlan(layer_name, "stub", f"t-{layer_name}", "sha256:x", changes=changes))
    plan = Plan("s.yaml", "", "", "example.org", "now", "0", targets=plans)
    return PlanRun(plan, runs, loaded)


def _order(plan_run: PlanRun) -> list[tuple[str, list[str]]]:
    return [(run.layer.name, [c.action for c in changes]) for run, changes in _steps(plan_run)]


def test_dns_withdraws_before_and_advertises_after_the_hosts() -> None:
    srv_before = {"ttl": 60, "records": ["10 0 5060 a.example.", "20 0 5060 b.example."]}
    srv_after = {"ttl": 60, "records": ["10 0 5060 a.example."]}
    plan_run = _plan_run(
        {
            "dns": [
                _change("dns", "A", "create", after={"ttl": 60, "records": ["192.0.2.1"]}),
                _change("dns", "SRV", "update", before=srv_before, after=srv_after),
                _change("dns", "AAAA", "delete", before={"ttl": 60, "records": ["2001:db8::1"]}),
            ],
            "asterisk": [
                _change("asterisk", "file", "update", before={"text": "a"}, after={"text": "b"})
            ],
            "firewall": [_change("firewall", "chain", "create", after={"rules": []})],
            "fail2ban": [_change("fail2ban", "file", "create", after={"text": "x"})],
        }
    )
    assert _order(plan_run) == [
        ("dns", ["update", "delete"]),  # withdraw: the SRV loses a record, an AAAA goes
        ("firewall", ["create"]),
        ("fail2ban", ["create"]),
        ("asterisk", ["update"]),
        ("dns", ["create"]),  # advertise last
    ]


def test_dns_alone_is_one_step() -> None:
    plan_run = _plan_run(
        {
            "dns": [
                _change("dns", "A", "create", after={"ttl": 60, "records": ["192.0.2.1"]}),
                _change("dns", "AAAA", "delete", before={"ttl": 60, "records": ["2001:db8::1"]}),
            ],
        }
    )
    assert _order(plan_run) == [("dns", ["delete", "create"])]


def test_human_view_of_an_empty_plan_says_so_in_words() -> None:
    plan_run = _plan_run({"dns": []})
    text = render_human(plan_run.plan.to_json())
    assert text.startswith("No changes.")
    assert "\x1b[" not in text


def test_human_view_headers_and_summary() -> None:
    plan_run = _plan_run(
        {
            "dns": [
                _change("dns", "A", "create", after={"ttl": 60, "records": ["192.0.2.1"]}),
                _change(
                    "dns",
                    "SRV",
                    "update",
                    before={"ttl": 60, "records": ["1"]},
                    after={"ttl": 30, "records": ["1"]},
                ),
                _change("dns", "TXT", "delete", before={"ttl": 60, "records": ["x"]}),
            ],
        }
    )
    short = render_human(plan_run.plan.to_json())
    assert "ttl: 60 -> 30" not in short  # record lines only with -v
    assert "Plan: 1 to add, 1 to change, 1 to destroy." in short
    text = render_human(plan_run.plan.to_json(), color=True, detail=True)
    assert "# dns.A[a.example.] will be created" in text
    assert "# dns.SRV[srv.example.] will be updated in place" in text
    assert "# dns.TXT[txt.example.] will be destroyed" in text
    assert "ttl: 60 -> 30" in text
    assert "Plan: 1 to add, 1 to change, 1 to destroy." in text
    assert "\x1b[32m" in text  # green for +
