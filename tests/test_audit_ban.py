"""``sipctl audit --ban-test`` against a real Asterisk 22 and a real fail2ban, in namespaces.

Asterisk and fail2ban-server run in a server namespace (Asterisk's SIP on the veth address,
the jail's bans as iptables rules of that namespace only); the audit calls from a client
namespace, a disposable address the jail does not ignore. The jail and filter are sipctl's
own, applied by the fail2ban layer; the wrong calls are real calls Asterisk logs.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from asterisk_helpers import USERS, apply_spec
from fixtures import host_profile
from fixtures.asterisk import running_asterisk
from fixtures.netns import delete_netns, make_netns, veth
from test_fail2ban_jail import _config_dir, _plan_and_apply

from sipctl.providers.base import RunContext
from sipctl.reconciler.audit.ban_test import run_ban_test
from sipctl.reconciler.audit.report import AuditReport
from sipctl.reconciler.verify.report import Endpoint
from sipctl.schemas.loader import load_spec

pytestmark = [pytest.mark.asterisk, pytest.mark.netns]


def test_wrong_calls_get_the_prober_banned_and_sipctl_lifts_the_ban(tmp_path: Path) -> None:
    server, client = make_netns(), make_netns()
    f2b: subprocess.Popen[bytes] | None = None
    sock = tmp_path / "sock"
    command = f"fail2ban-client -s {sock} -c {tmp_path / 'conf'}"
    try:
        link = veth(server, client)
        _config_dir(tmp_path / "conf")
        with running_asterisk(netns=server, bind_address=link.a_ip) as pbx:
            data = {
                "version": 1,
                "domain": "mysite.ru",
                "transports": {"udp": {"port": pbx.sip_port}, "tcp": {"port": pbx.sip_port}},
                "users": USERS,
                "asterisk": pbx.spec_section(),
                "fail2ban": {
                    "target": "local",
                    "config_dir": str(tmp_path / "conf"),
                    "logpath": str(pbx.log_path),
                    "maxretry": 3,
                    "sshd": False,
                },
            }
            host_profile.add("fail2ban", command.split())
            spec = tmp_path / "sipctl.yaml"
            spec.write_text(yaml.safe_dump(data, sort_keys=False))
            apply_spec(spec)
            f2b = _start_fail2ban(server.argv, tmp_path, command)
            _plan_and_apply(load_spec(spec), tmp_path)
            report = AuditReport(domain="mysite.ru", nameserver=None)
            target = Endpoint("udp", link.a_ip, pbx.sip_port, "pbx")
            ctx = RunContext(base_dir=tmp_path)
            try:
                with client.entered():
                    run_ban_test(load_spec(spec).spec, target, ctx, report)
            finally:
                ctx.close()
            status = subprocess.run(
                [*command.split(), "status", "sipctl-asterisk"],
                capture_output=True, text=True, check=False,
            ).stdout  # fmt: skip
    finally:
        if f2b is not None:
            subprocess.run([*command.split(), "stop"], capture_output=True, check=False)
            f2b.wait(timeout=10)
        delete_netns(client)
        delete_netns(server)
    text = report.to_text()
    assert report.findings == [] and report.errors == [], text
    assert any(f"{link.b_ip} banned" in c for c in report.checks), text
    assert any("unbanned, the PBX answers it again" in c for c in report.checks), text
    assert "Total banned:\t1" in status and link.b_ip not in status.split("Banned IP list:")[1]


def _start_fail2ban(
    argv: Callable[..., list[str]], work: Path, command: str
) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        argv(
            "fail2ban-server", "-f", "-x", "-s", str(work / "sock"), "-p", str(work / "pid"),
            "-c", str(work / "conf"), "--logtarget", str(work / "fail2ban.log"),
        ),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ping = subprocess.run(
            [*command.split(), "ping"], capture_output=True, text=True, check=False
        )
        if "pong" in ping.stdout:
            return server
        time.sleep(0.05)
    server.kill()
    raise AssertionError("fail2ban-server did not start")


def test_a_banned_prober_is_told_it_is_banned_not_that_nothing_listens(tmp_path: Path) -> None:
    """A real ban (fail2ban-client set sipctl-asterisk banip <client>): verify's probes meet
    ICMP refusals, and verify and audit read the jail through the fail2ban target, name the
    ban, the unban command and ignoreip; once unbanned, the same probes are answered."""
    from sipctl.providers.sip_probe import probe
    from sipctl.reconciler.audit.run import explain_silence
    from sipctl.reconciler.verify.report import ProbeCheck, expectations, probe_defects
    from sipctl.reconciler.verify.run import ban_states

    server, client = make_netns(), make_netns()
    f2b: subprocess.Popen[bytes] | None = None
    sock = tmp_path / "sock"
    command = f"fail2ban-client -s {sock} -c {tmp_path / 'conf'}"
    try:
        link = veth(server, client)
        _config_dir(tmp_path / "conf")
        with running_asterisk(netns=server, bind_address=link.a_ip) as pbx:
            data = {
                "version": 1,
                "domain": "mysite.ru",
                "transports": {"udp": {"port": pbx.sip_port}, "tcp": {"port": pbx.sip_port}},
                "users": USERS,
                "asterisk": pbx.spec_section(),
                "fail2ban": {
                    "target": "local",
                    "config_dir": str(tmp_path / "conf"),
                    "logpath": str(pbx.log_path),
                    "sshd": False,
                },
            }
            host_profile.add("fail2ban", command.split())
            spec = tmp_path / "sipctl.yaml"
            spec.write_text(yaml.safe_dump(data, sort_keys=False))
            apply_spec(spec)
            f2b = _start_fail2ban(server.argv, tmp_path, command)
            loaded = load_spec(spec)
            _plan_and_apply(loaded, tmp_path)
            endpoints = [
                Endpoint(t, link.a_ip, pbx.sip_port, f"pbx.{loaded.spec.domain}")
                for t in ("udp", "tcp")
            ]
            wanted = expectations(loaded.spec, "sipctlcanary0")

            def probes() -> list[ProbeCheck]:
                with client.entered():
                    return [
                        ProbeCheck(ep, e, probe(ep.address, ep.port, ep.transport, e.user,
                                                loaded.spec.domain, timeout=2.0))
                        for ep in endpoints
                        for e in wanted
                    ]  # fmt: skip

            assert all(c.result.status is not None for c in probes()), "answered before the ban"
            banned = subprocess.run(
                [*command.split(), "set", "sipctl-asterisk", "banip", link.b_ip],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert banned.returncode == 0, banned.stderr
            silent = probes()
            assert all(c.result.status is None for c in silent)
            assert {c.result.error_kind for c in silent} <= {"refused", "timeout"}
            with client.entered():
                defects = probe_defects(silent, ban_states(loaded, silent, lambda _line: None))
                report = AuditReport(domain="mysite.ru", nameserver=None)
                report.errors.append("udp: 5 request(s) got no answer")
                ctx = RunContext(base_dir=tmp_path)
                try:
                    explain_silence(loaded.spec, endpoints[0], ctx, report, lambda _l: None)
                finally:
                    ctx.close()
            assert {d.code for d in defects} == {"prober-banned"}, defects
            unban = f"fail2ban-client set sipctl-asterisk unbanip {link.b_ip}"
            for defect in defects:
                assert unban in defect.message and "ignoreip" in defect.message, defect
                assert "nothing listens" not in defect.message.split(";", 1)[1]
            assert unban in report.errors[0] and "banned" in report.errors[0], report.errors

            subprocess.run([*command.split(), "set", "sipctl-asterisk", "unbanip", link.b_ip],
                           capture_output=True, check=True)  # fmt: skip
            again = probes()
            assert all(c.result.status is not None for c in again), "answered after the unban"
            with client.entered():
                # a dead listener is still a dead listener: not banned, said so
                report = AuditReport(domain="mysite.ru", nameserver=None)
                report.errors.append("tls: nothing listens")
                ctx = RunContext(base_dir=tmp_path)
                try:
                    explain_silence(loaded.spec, endpoints[0], ctx, report, lambda _l: None)
                finally:
                    ctx.close()
            assert any("is not banned" in c for c in report.checks), report.to_text()
    finally:
        if f2b is not None:
            subprocess.run([*command.split(), "stop"], capture_output=True, check=False)
            f2b.wait(timeout=10)
        delete_netns(client)
        delete_netns(server)
