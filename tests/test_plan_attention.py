"""The merge request that looks innocent: what the plan tells its reviewer first.

One word of a spec (``route: goto``, ``maxretry: 1000``, a port in ``firewall.extra``) can
let strangers run the admin's dialplan, open a port to the internet or take the teeth out of
the bans; the plan names each such change once, at its top, in the text, the Markdown and the
JSON views. The plans are real: dir: targets planned, applied and planned again through the
CLI, so the 'before' side is what sipctl reads back. Asterisk's own word that a goto guest
runs the admin's steps is test_asterisk_live's ``test_not_found_mode_and_goto_route``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.reconciler.attention import attention_reasons
from sipctl.reconciler.views import ATTENTION_HEADING

BASE: dict[str, Any] = {
    "version": 1,
    "domain": "mysite.ru",
    "users": {"director": 105, "sales": {"ring": [106, 107], "fallback": 101}},
    "asterisk": {"target": "dir:pbx"},
    "firewall": {"target": "dir:pbx", "persist": "/etc/iptables.up", "extra": ["tcp/443"]},
    "fail2ban": {"target": "dir:pbx", "sshd": True},
}


def _write(tmp_path: Path, **changes: dict[str, Any]) -> str:
    data = json.loads(json.dumps(BASE))
    for section, values in changes.items():
        data[section].update(values)
    path = tmp_path / "sipctl.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@pytest.fixture
def applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert run(["apply", "-f", _write(tmp_path), "--auto-approve"]) == 0
    capsys.readouterr()
    return tmp_path


def _plan_views(spec: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str, dict[str, Any]]:
    views = []
    for flags in (["--no-color"], ["--markdown"], ["--json"]):
        assert run(["plan", "-f", spec, *flags]) == 0
        views.append(capsys.readouterr().out)
    data = json.loads(views[2])["domains"][0]["plan"]
    return views[0], views[1], data


def test_an_unchanged_spec_needs_no_attention(
    applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, markdown, data = _plan_views(_write(applied), capsys)
    assert "attention" not in data
    assert "attention" not in text.lower() and "attention" not in markdown.lower()


def test_route_goto_is_named_before_the_changes(
    applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, markdown, data = _plan_views(_write(applied, asterisk={"route": "goto"}), capsys)
    [reason] = data["attention"]
    assert "guests now run the admin's own dialplan in context 'default'" in reason
    # director by Goto, the ring group through Local channels into the same context
    assert "(extensions 101, 105, 106, 107, by Goto or a ring group's Local channel" in reason
    assert "check them before" in reason
    # a dir: target has no running Asterisk to read the extensions' steps in: said so
    assert "(guest jumps not checked: asterisk.target dir:pbx is a directory" in reason
    # said once, before the first change of the text and the Markdown
    assert text.count(ATTENTION_HEADING) == 1 and text.count(reason) == 1
    assert text.index(reason) < text.index("# asterisk at")
    assert markdown.count(f"**{ATTENTION_HEADING}**") == 1
    assert markdown.index("guests now run") < markdown.index("```diff")
    # and going back to dial widens nothing
    assert run(["apply", "-f", _write(applied, asterisk={"route": "goto"}), "--auto-approve"]) == 0
    capsys.readouterr()
    assert "attention" not in _plan_views(_write(applied), capsys)[2]


HOST = """\
version: 1
domain: pbx1.hoster.example
hosting: {name: pbx1}
transports: {udp: {port: 5060}}
servers: [{host: pbx1.hoster.example, ipv4: [203.0.113.10]}]
asterisk: {target: 'dir:state/pbx1'}
"""


def test_a_host_of_many_customers_names_their_jumps_in_one_summarised_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host's first plan of many customers (a dir: target, where no Asterisk can be
    asked): one attention line counts the contexts and extensions and names the first few,
    as the check's own note does, instead of a line per customer with every extension."""
    (tmp_path / "pbx1.yaml").write_text(HOST)
    for n in range(40):
        names = "".join(f"  user{u}: {100 + u}\n" for u in range(25))
        (tmp_path / f"c{n}.yaml").write_text(
            f"version: 1\ndomain: c{n}.example\nhost: pbx1\nlocal_context: c{n}-phones\n"
            f"users:\n{names}"
        )
    spec = str(tmp_path / "pbx1.yaml")
    text, markdown, data = _plan_views(spec, capsys)
    [reason] = data["attention"]
    assert reason.startswith("guests now run the admin's own dialplan in 40 contexts (1,000 "
                             "extensions: 100@c0-phones, 101@c0-phones, 102@c0-phones, "
                             "103@c0-phones, 104@c0-phones and 995 more, by Goto")  # fmt: skip
    assert "(guest jumps not checked: asterisk.target dir:state/pbx1 is a directory" in reason
    assert "and 995 more can call out was not read" in reason
    assert len(reason) < 1000 and "c39-phones" not in reason
    assert "c39-phones" not in text.split("# asterisk at")[0]  # before the changes
    assert markdown.count("guests now run") == 1


def test_milder_bans_are_named_and_stricter_ones_are_not(
    applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    milder = {"maxretry": 1000, "findtime": 1, "bantime": 1, "ignoreip": ["10.0.0.0/8"]}
    _, _, data = _plan_views(_write(applied, fail2ban=milder), capsys)
    reasons = data["attention"]
    for jail in ("sipctl-asterisk", "sipctl-sshd"):
        assert f"fail2ban jail {jail}: more failures before a ban (maxretry 5 → 1000)" in reasons
        assert f"fail2ban jail {jail}: a shorter ban (bantime 3600 → 1)" in reasons
        assert f"fail2ban jail {jail}: a shorter window counting failures (findtime 600 → 1)" in (
            reasons
        )
        assert f"fail2ban jail {jail} never bans 10.0.0.0/8 any more" in reasons
    _, _, data = _plan_views(_write(applied, fail2ban={"enabled": False}), capsys)
    assert data["attention"] == [
        f"fail2ban jail {jail} is disabled: nothing bans its attackers any more"
        for jail in ("sipctl-asterisk", "sipctl-sshd")
    ]
    stricter = {"maxretry": 2, "findtime": 3600, "bantime": -1}
    assert "attention" not in _plan_views(_write(applied, fail2ban=stricter), capsys)[2]


def test_new_firewall_openings_are_named_and_closings_are_not(
    applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wider = {"extra": ["tcp/443", "tcp/5038", "udp/1-65535"]}
    _, markdown, data = _plan_views(_write(applied, firewall=wider), capsys)
    assert [r.split(" from ")[0] for r in data["attention"]] == [
        "the firewall newly accepts tcp/5038",
        "the firewall newly accepts udp/1-5059,5061-9999,20001-65535",
    ]
    assert "tcp/5038" in markdown.split("```diff")[0]
    assert "attention" not in _plan_views(_write(applied, firewall={"extra": []}), capsys)[2]


def test_a_new_spec_names_only_its_dialplan_jumps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A layer created from nothing is read as a whole; its goto is never obvious, so it is
    named even then."""
    assert "attention" not in _plan_views(_write(tmp_path), capsys)[2]
    _, _, data = _plan_views(_write(tmp_path, asterisk={"route": "goto"}), capsys)
    assert len(data["attention"]) == 1 and "context 'default'" in data["attention"][0]


def _jail(values: dict[str, int]) -> dict[str, list[str]]:
    return {"[sipctl-asterisk]": ["enabled = true", *(f"{k} = {v}" for k, v in values.items())]}


LIMITS = st.fixed_dictionaries(
    {
        "maxretry": st.integers(1, 1000),
        "findtime": st.integers(1, 31536000),
        "bantime": st.sampled_from([-1]) | st.integers(1, 315360000),
    }
)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=LIMITS, after=LIMITS)
def test_a_jail_is_named_exactly_when_a_limit_gets_milder(
    before: dict[str, int], after: dict[str, int]
) -> None:
    def ban(seconds: int) -> float:
        return float("inf") if seconds < 0 else seconds

    change = {
        "address": {
            "layer": "fail2ban",
            "kind": "file",
            "name": "/etc/fail2ban/jail.d/sipctl.conf",
        },
        "action": "update",
        "before": _jail(before),
        "after": _jail(after),
    }
    named = {r.split("(")[1].split()[0] for r in attention_reasons([{"changes": [change]}])}
    milder = {
        key
        for key, worse in (
            ("maxretry", after["maxretry"] > before["maxretry"]),
            ("findtime", after["findtime"] < before["findtime"]),
            ("bantime", ban(after["bantime"]) < ban(before["bantime"])),
        )
        if worse
    }
    assert named == milder


def test_a_hosting_customer_s_new_name_is_named_with_its_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hosting customer's names always jump into its phones' context (the admin's): a new
    name there is a new way in, and the plan says which context and extension."""
    examples = Path(__file__).resolve().parent.parent / "examples" / "hosting"
    for source in examples.glob("*.yaml"):
        (tmp_path / source.name).write_text(source.read_text())
    host = str(tmp_path / "pbx1.yaml")
    assert run(["apply", "-f", host, "--auto-approve", "--target", "asterisk"]) == 0
    capsys.readouterr()
    customer = tmp_path / "alpha.example.yaml"
    customer.write_text(customer.read_text().replace("  director: 105", "  director: 105\n  x: 9"))
    assert run(["plan", "-f", host, "--json", "--target", "asterisk"]) == 0
    plan = json.loads(capsys.readouterr().out)["domains"][0]["plan"]
    [reason] = plan["attention"]
    assert "in context 'alpha-phones' (extension 9, by Goto" in reason, reason


def test_a_removed_firewall_and_jail_are_named(
    applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _write(applied, firewall={"ensure": "absent"}, fail2ban={"sshd": False})
    assert run(["plan", "-f", spec, "--json"]) == 3  # the safety limit refuses it too
    data = json.loads(capsys.readouterr().out)["domains"][0]["plan"]
    assert data["attention"] == [
        "the firewall's chain SIPCTL is removed: its default-deny no longer applies",
        "fail2ban jail sipctl-sshd is removed: nothing bans its attackers any more",
    ]


def test_a_new_transport_without_a_firewall_layer_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """manage_transports makes Asterisk listen on the spec's ports: with no firewall in the
    plan nothing of sipctl's opens (or guards) them, so the reviewer is told what is open."""
    _, _, data = _plan_views(_write(tmp_path, asterisk={"manage_transports": True}), capsys)
    assert not any("Asterisk now listens" in r for r in data.get("attention", []))
    spec = yaml.safe_load(Path(_write(tmp_path, asterisk={"manage_transports": True})).read_text())
    del spec["firewall"]
    spec["transports"] = {"udp": {"port": 5070}, "tcp": {"port": 5070}}
    (tmp_path / "sipctl.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    _, _, data = _plan_views(str(tmp_path / "sipctl.yaml"), capsys)
    listens = [r for r in data["attention"] if r.startswith("Asterisk now listens")]
    assert [r.split(" (")[0] for r in listens] == [
        "Asterisk now listens on tcp/5070",
        "Asterisk now listens on udp/5070",
    ]
    assert "open to every address unless a firewall of yours filters it" in listens[0]
    assert "open it there by hand" in listens[0]
    assert run(["apply", "-f", str(tmp_path / "sipctl.yaml"), "--auto-approve"]) == 0
    capsys.readouterr()
    assert "attention" not in _plan_views(str(tmp_path / "sipctl.yaml"), capsys)[2]
