"""``sipctl audit --ban-test`` against a real Asterisk 22 and a real fail2ban, in namespaces.

Asterisk and fail2ban-server run in a server namespace (Asterisk's SIP on the veth address,
the jail's bans as iptables rules of that namespace only); the audit calls from a client
namespace, a disposable address the jail does not ignore. The jail and filter are sipctl's
own, applied by the fail2ban layer; the wrong calls are real calls Asterisk logs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from asterisk_helpers import USERS, apply_spec
from fixtures import host_profile
from fixtures.asterisk import AsteriskInstance, running_asterisk
from fixtures.fail2ban_server import Fail2banServer, start_fail2ban, stock_config
from fixtures.netns import Netns, Veth, delete_netns, make_netns, veth
from test_fail2ban_jail import _plan_and_apply

from sipctl.providers.base import RunContext
from sipctl.reconciler.audit.ban_test import run_ban_test
from sipctl.reconciler.audit.report import AuditReport
from sipctl.reconciler.verify.report import Endpoint
from sipctl.schemas.loader import load_spec

pytestmark = [pytest.mark.asterisk, pytest.mark.netns]


@dataclass
class BanLab:
    """A PBX in a server namespace with sipctl's jail on a real fail2ban-server, and a
    client namespace the jail does not ignore."""

    pbx: AsteriskInstance
    link: Veth
    client: Netns
    command: list[str]  # fail2ban-client on the lab's own socket
    spec: Path

    def fail2ban(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.command, *args], capture_output=True, text=True, check=check)


def client_words(work: Path) -> list[str]:
    """fail2ban-client of the lab's server (known before it starts: the host profile)."""
    return ["fail2ban-client", "-s", str(work / "sock"), "-c", str(work / "conf")]


@contextmanager
def ban_lab(tmp_path: Path, unknown_callers: str = "reject", **fail2ban: Any) -> Iterator[BanLab]:
    """Asterisk and fail2ban-server in a server namespace, the Asterisk and fail2ban layers
    applied by sipctl (``fail2ban``: more of its spec section); all stopped at the end."""
    server, client = make_netns(), make_netns()
    f2b: Fail2banServer | None = None
    try:
        link = veth(server, client)
        stock_config(tmp_path / "conf")
        with running_asterisk(netns=server, bind_address=link.a_ip) as pbx:
            data = {
                "version": 1,
                "domain": "mysite.ru",
                "transports": {"udp": {"port": pbx.sip_port}, "tcp": {"port": pbx.sip_port}},
                "users": USERS,
                "asterisk": pbx.spec_section(unknown_callers=unknown_callers),
                "fail2ban": {
                    "target": "local",
                    "config_dir": str(tmp_path / "conf"),
                    "logpath": str(pbx.log_path),
                    "sshd": False,
                    **fail2ban,
                },
            }
            host_profile.add("fail2ban", client_words(tmp_path))
            spec = tmp_path / "sipctl.yaml"
            spec.write_text(yaml.safe_dump(data, sort_keys=False))
            apply_spec(spec)
            f2b = start_fail2ban(server.argv, tmp_path / "conf", tmp_path)
            _plan_and_apply(load_spec(spec), tmp_path)
            yield BanLab(pbx, link, client, f2b.client, spec)
    finally:
        if f2b is not None:
            f2b.stop()
        delete_netns(client)
        delete_netns(server)


def _explain_silence(lab: BanLab, tmp_path: Path, error: str) -> AuditReport:
    """What the audit says, from the client namespace, about a target that got ``error``."""
    from sipctl.reconciler.audit.run import explain_silence

    loaded = load_spec(lab.spec)
    target = Endpoint("udp", lab.link.a_ip, lab.pbx.sip_port, "pbx.mysite.ru")
    report = AuditReport(domain="mysite.ru", nameserver=None)
    report.errors.append(error)
    ctx = RunContext(base_dir=tmp_path)
    try:
        with lab.client.entered():
            explain_silence(loaded.spec, target, ctx, report, lambda _l: None)
    finally:
        ctx.close()
    return report


@pytest.mark.parametrize("unknown_callers", ["reject", "challenge"])
def test_wrong_calls_get_the_prober_banned_and_sipctl_lifts_the_ban(
    tmp_path: Path, unknown_callers: str
) -> None:
    """With challenge the wrong calls are answered 401 and counted by Asterisk's 'No
    matching endpoint found' NOTICE instead of the Wrong call line."""
    with ban_lab(tmp_path, unknown_callers, maxretry=3) as lab:
        report = AuditReport(domain="mysite.ru", nameserver=None)
        target = Endpoint("udp", lab.link.a_ip, lab.pbx.sip_port, "pbx")
        ctx = RunContext(base_dir=tmp_path)
        try:
            with lab.client.entered():
                run_ban_test(load_spec(lab.spec).spec, target, ctx, report)
        finally:
            ctx.close()
        status = lab.fail2ban("status", "sipctl-asterisk").stdout
        client_ip = lab.link.b_ip
    text = report.to_text()
    assert report.findings == [] and report.errors == [], text
    assert any(f"{client_ip} banned" in c for c in report.checks), text
    assert any("unbanned, the PBX answers it again" in c for c in report.checks), text
    assert "Total banned:\t1" in status and client_ip not in status.split("Banned IP list:")[1]


def test_a_banned_prober_is_told_it_is_banned_not_that_nothing_listens(tmp_path: Path) -> None:
    """A real ban (fail2ban-client set sipctl-asterisk banip <client>): verify's probes meet
    ICMP refusals, and verify and audit read the jail through the fail2ban target, name the
    ban, the unban command and ignoreip; once unbanned, the same probes are answered."""
    from sipctl.providers.sip_probe import probe
    from sipctl.reconciler.verify.report import ProbeCheck, expectations, probe_defects
    from sipctl.reconciler.verify.run import ban_states

    with ban_lab(tmp_path) as lab:
        loaded = load_spec(lab.spec)
        endpoints = [
            Endpoint(t, lab.link.a_ip, lab.pbx.sip_port, f"pbx.{loaded.spec.domain}")
            for t in ("udp", "tcp")
        ]
        wanted = expectations(loaded.spec, "sipctlcanary0")

        def probes() -> list[ProbeCheck]:
            with lab.client.entered():
                return [
                    ProbeCheck(ep, e, probe(ep.address, ep.port, ep.transport, e.user,
                                            loaded.spec.domain, timeout=2.0))
                    for ep in endpoints
                    for e in wanted
                ]  # fmt: skip

        assert all(c.result.status is not None for c in probes()), "answered before the ban"
        banned = lab.fail2ban("set", "sipctl-asterisk", "banip", lab.link.b_ip)
        assert banned.returncode == 0, banned.stderr
        silent = probes()
        assert all(c.result.status is None for c in silent)
        assert {c.result.error_kind for c in silent} <= {"refused", "timeout"}
        with lab.client.entered():
            defects = probe_defects(silent, ban_states(loaded, silent, lambda _line: None))
        report = _explain_silence(lab, tmp_path, "udp: 5 request(s) got no answer")
        assert {d.code for d in defects} == {"prober-banned"}, defects
        unban = f"fail2ban-client set sipctl-asterisk unbanip {lab.link.b_ip}"
        for defect in defects:
            assert unban in defect.message and "ignoreip" in defect.message, defect
            assert "nothing listens" not in defect.message.split(";", 1)[1]
        assert unban in report.errors[0] and "banned" in report.errors[0], report.errors

        lab.fail2ban("set", "sipctl-asterisk", "unbanip", lab.link.b_ip, check=True)
        again = probes()
        assert all(c.result.status is not None for c in again), "answered after the unban"
        # a dead listener is still a dead listener: not banned, said so
        report = _explain_silence(lab, tmp_path, "tls: nothing listens")
        assert any("is not banned" in c for c in report.checks), report.to_text()
