"""Never locked out: sshd runs in a server namespace, sipctl runs in a client namespace and
manages the server's firewall over SSH across a veth pair, through the real CLI.

A spec whose ssh_port is wrong is refused by ``plan`` (exit 3); forced, the host rolls the
rules back by itself within ``confirm_seconds`` because sipctl cannot confirm them over a
new connection, and then SSH works again with exactly the old rules.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.common import REPO
from fixtures.netns import Veth
from fixtures.sshd import SshServer, start_sshd

from sipctl.errors import RolledBackError, UnsafePlanError
from sipctl.providers.base import RunContext
from sipctl.providers.firewall.confirm import STATE_DIR
from sipctl.reconciler.engine import PlanRun, apply_plan, make_plan
from sipctl.reconciler.safety import refusal_reasons
from sipctl.schemas.loader import load_spec

CONFIRM_SECONDS = 5
SIPCTL = str(REPO / ".venv" / "bin" / "sipctl")


@dataclass
class Pbx:
    link: Veth
    sshd: SshServer
    tmp: Path

    def spec(self, backend: str, **firewall: Any) -> Path:
        data = {
            "version": 1,
            "domain": "mysite.ru",
            "firewall": {
                "target": self.sshd.target,
                "ssh": self.sshd.ssh_spec(),
                "backend": backend,
                "confirm_seconds": CONFIRM_SECONDS,
                "persist": str(self.tmp / f"persist-{backend}"),
                **firewall,
            },
        }
        path = self.tmp / f"{backend}-{firewall.get('ssh_port', 22)}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def sipctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI, run in the client namespace."""
        return self.link.b.run(SIPCTL, *args, "--no-color", check=False, timeout=120)

    def rules(self, backend: str) -> str:
        """The server's whole rule set, without comments and counters."""
        if backend == "nftables":
            return self.link.a.run("nft", "-s", "list", "ruleset").stdout
        out = self.link.a.sh("iptables-save -t filter; ip6tables-save -t filter")
        return "\n".join(line for line in out.splitlines() if not line.startswith("#"))


@pytest.fixture
def pbx(netns_pair: Veth, tmp_path: Path) -> Iterator[Pbx]:
    sshd = start_sshd(netns_pair.a_ip, 22, netns=netns_pair.a.name, workdir=tmp_path / "sshd")
    # Fake fail2ban rules on the server: they must come through the rollback too.
    netns_pair.a.sh(
        "iptables -N f2b-sipctl && iptables -A f2b-sipctl -s 192.0.2.7 -j REJECT && "
        "iptables -I INPUT -j f2b-sipctl && nft add table inet f2b-table"
    )
    try:
        yield Pbx(netns_pair, sshd, tmp_path)
    finally:
        sshd.stop()


def leftovers() -> list[str]:
    """Files of firewall rollback timers on the (shared) file system, and the timers."""
    files = sorted(p.name for p in Path(STATE_DIR).glob("firewall-*"))
    timers = subprocess.run(
        ["pgrep", "-f", f"{STATE_DIR}/firewall-"], capture_output=True, text=True
    ).stdout.split()
    return files + [f"timer pid {pid}" for pid in timers]


def output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def run(pbx: Pbx, spec: Path, *, apply: bool, force: bool = False) -> PlanRun:
    """Plan (and apply) with sipctl's engine, from the client namespace."""
    loaded = load_spec(spec)
    ctx = RunContext(base_dir=spec.parent)
    try:
        with pbx.link.b.entered():
            plan_run = make_plan(loaded, ctx, ["firewall"])
            if apply:
                apply_plan(plan_run, ctx, force=force)
            return plan_run
    finally:
        ctx.close()


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_wrong_ssh_port_is_refused_and_rolled_back(pbx: Pbx, backend: str) -> None:
    good, wrong = pbx.spec(backend), pbx.spec(backend, ssh_port=2222)
    run(pbx, good, apply=True)
    assert leftovers() == []  # confirmed: the timer is gone
    assert not run(pbx, good, apply=False).plan.has_changes
    old = pbx.rules(backend)
    assert "dport 22 " in (pbx.tmp / f"persist-{backend}").read_text().replace("\n", " ")

    # plan refuses: the hazard is a refusal reason (the CLI exits 3 on it, unless --force).
    reasons = refusal_reasons(run(pbx, wrong, apply=False).plan)
    assert len(reasons) == 1 and "would cut SSH" in reasons[0] and "port 22" in reasons[0]
    with pytest.raises(UnsafePlanError) as refused:
        run(pbx, wrong, apply=True)
    assert refused.value.exit_code == 3

    started = time.monotonic()
    with pytest.raises(RolledBackError) as rolled:
        run(pbx, wrong, apply=True, force=True)
    took = time.monotonic() - started
    assert rolled.value.exit_code == 3
    assert "rolled back: the new rules would cut SSH" in str(rolled.value)
    assert "SSH works again" in str(rolled.value)
    assert CONFIRM_SECONDS <= took < CONFIRM_SECONDS + 15

    assert pbx.rules(backend) == old
    assert leftovers() == []  # the timer cleaned up after itself
    # The persist file is written only once the new rules are confirmed: still the old ones.
    assert "2222" not in (pbx.tmp / f"persist-{backend}").read_text()
    # SSH works again, over a new connection, and nothing differs from the good spec.
    assert not run(pbx, good, apply=False).plan.has_changes


def test_through_the_cli(pbx: Pbx) -> None:
    """sipctl apply confirms over a new connection; plan exits 3 on a lockout."""
    good, wrong = pbx.spec("iptables"), pbx.spec("iptables", ssh_port=2222)
    done = pbx.sipctl("apply", "-f", str(good), "--auto-approve", "--no-verify")
    assert done.returncode == 0, output(done)
    assert "confirmed over a new SSH connection" in output(done)
    done = pbx.sipctl("plan", "-f", str(good), "--detailed-exitcode")
    assert done.returncode == 0, output(done)
    done = pbx.sipctl("plan", "-f", str(wrong))
    assert done.returncode == 3, output(done)
    assert "would cut SSH" in output(done) and "Traceback" not in output(done)


def test_ssh_through_dnat_is_judged_by_the_port_sshd_sees(pbx: Pbx) -> None:
    """sipctl dials 2200, the host's nat table forwards it to sshd on 22: INPUT sees 22."""
    pbx.link.a.run(
        "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "2200",
        "-j", "DNAT", "--to-destination", f"{pbx.link.a_ip}:22",
    )  # fmt: skip
    public = pbx.sshd.host_key.with_suffix(".pub").read_text().split()
    known = pbx.tmp / "known_hosts_2200"
    known.write_text(f"[{pbx.link.a_ip}]:2200 {public[0]} {public[1]}\n")

    def spec(ssh_port: int) -> Path:
        path = pbx.spec("iptables", ssh_port=ssh_port)
        data = yaml.safe_load(path.read_text())
        data["firewall"]["target"] = f"ssh://root@{pbx.link.a_ip}:2200"
        data["firewall"]["ssh"]["known_hosts"] = str(known)
        path.write_text(yaml.safe_dump(data))
        return path

    assert refusal_reasons(run(pbx, spec(22), apply=False).plan) == []
    reasons = refusal_reasons(run(pbx, spec(2200), apply=False).plan)
    assert len(reasons) == 1 and "TCP port 22," in reasons[0] and "$SSH_CONNECTION" in reasons[0]
