"""The fail2ban layer against a real fail2ban-server, inside a network namespace.

The test starts its own fail2ban-server in a namespace it made (its own config dir copied
from the stock one, socket, pid file, ``dbfile = :memory:``, ``ignoreself = false``), so
bans become rules in that namespace only; the host's rules are never touched. sipctl drives
it through the host profile's fail2ban entry (``fail2ban-client -s SOCK -c CONF``) on ``local``.

Shown here: apply writes both files and reloads; a second plan is empty; the jail bans a
source after ``maxretry`` bad lines, over UDP and TCP, IPv4 and IPv6, as rules in the
namespace; a sipctl apply of the firewall layer afterwards keeps the ban in force (a banned
caller still cannot connect, an unbanned one can); a configuration fail2ban refuses is
rolled back to the previous files, and fail2ban runs on with them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures import host_profile
from fixtures.common import REPO, require
from fixtures.fail2ban_server import Fail2banServer, start_fail2ban, stock_config
from fixtures.netns import Netns, Veth, delete_netns, make_netns, veth
from fixtures.sshd import SshServer
from fixtures.waiting import WAIT_SECONDS, wait_until

from sipctl.errors import ProviderError
from sipctl.providers.base import RunContext
from sipctl.providers.fail2ban import Fail2banProvider
from sipctl.reconciler.diff import diff
from sipctl.reconciler.engine import apply_plan, make_plan
from sipctl.reconciler.render.fail2ban import render_fail2ban
from sipctl.schemas.loader import LoadedSpec, load_spec

pytestmark = pytest.mark.netns

MAXRETRY = 3
JAIL = "sipctl-asterisk"


@dataclass
class Fail2banHost:
    """A namespace with a fail2ban-server of the test's own, and a client namespace."""

    ns: Netns
    client: Netns
    link: Veth
    work: Path
    server: subprocess.Popen[bytes]
    backend: str  # the firewall backend, and so the ban action (iptables | nftables)

    @property
    def conf(self) -> Path:
        return self.work / "conf"

    @property
    def messages(self) -> Path:
        return self.work / "messages"

    @property
    def client_command(self) -> str:
        return f"fail2ban-client -s {self.work}/sock -c {self.conf}"

    def client_run(self, *args: str) -> str:
        done = subprocess.run(
            [*self.client_command.split(), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, f"fail2ban-client {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def spec(self, name: str = "sipctl.yaml", **fail2ban: str) -> LoadedSpec:
        host_profile.add("fail2ban", self.client_command.split())
        section = {
            "target": "local",
            "config_dir": str(self.conf),
            "logpath": str(self.messages),
            "maxretry": str(MAXRETRY),
            "findtime": "600",
            "bantime": "600",
            **fail2ban,
        }
        body = "".join(f"  {key}: {value}\n" for key, value in section.items())
        path = self.work / name
        path.write_text(
            textwrap.dedent(
                """\
                version: 1
                domain: mysite.ru
                transports: {udp: {port: 5060}, tcp: {port: 5060}}
                firewall: {target: local, backend: BACKEND, ssh_port: 22, persist: PERSIST}
                fail2ban:
                """
            )
            .replace("BACKEND", self.backend)
            .replace("PERSIST", str(self.work / "firewall.rules"))
            + body
        )
        return load_spec(path)

    def bad_calls(self, address: str, count: int = MAXRETRY) -> None:
        stamp = time.strftime("%b %d %H:%M:%S")
        bracketed = f"[{address}]" if ":" in address else address
        with self.messages.open("a") as log:
            for n in range(count):
                log.write(
                    f"[{stamp}] WARNING[4242][C-0000{n:04x}] Ext. nobody: "
                    f"Wrong call IP={bracketed}:5060\n"
                )

    def banned(self) -> str:
        return self.client_run("status", JAIL)

    def total_failed(self) -> int:
        """The wrong calls the jail has counted so far (``Total failed``)."""
        found = re.search(r"Total failed:\s*(\d+)", self.banned())
        assert found is not None, self.banned()
        return int(found[1])

    def wait_counted(self, total: int) -> None:
        """Until the jail has read the log up to ``total`` wrong calls: only then does "no
        ban" mean that fail2ban decided so (not that it had not read the lines yet)."""
        wait_until(lambda: self.total_failed() >= total, f"{total} wrong calls counted",
                   last=self.banned)  # fmt: skip


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def f2b(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fail2banHost]:
    backend: str = request.param
    for program in ("fail2ban-server", "fail2ban-client", "iptables", "ip6tables", "nft"):
        require(shutil.which(program) is not None, program)
    work = tmp_path_factory.mktemp(f"f2b-{backend}")
    stock_config(work / "conf")
    (work / "messages").touch()
    ns = make_netns()
    client = make_netns()
    server: Fail2banServer | None = None
    try:
        link = veth(ns, client)
        server = start_fail2ban(ns.argv, work / "conf", work)
        yield Fail2banHost(ns, client, link, work, server.process, backend)
    finally:
        if server is not None:
            server.stop()
        delete_netns(client)
        delete_netns(ns)


def _plan_and_apply(loaded: LoadedSpec, work: Path) -> tuple[list[str], Fail2banProvider]:
    ctx = RunContext(base_dir=work)
    provider = Fail2banProvider(loaded, ctx)
    desired = render_fail2ban(loaded.spec)
    live = provider.read(desired)
    assert live.problems == [] and live.skipped == [], (live.problems, live.skipped)
    return provider.apply(diff(desired, live), live), provider


def _wait(condition: str, probe: Fail2banHost, timeout: float = WAIT_SECONDS) -> str:
    def status() -> str | None:
        text = probe.banned()
        return text if condition in text else None

    return wait_until(
        status,
        f"{condition!r} in the jail's status",
        timeout,
        interval=0.1,
        last=probe.banned,
    )


def test_apply_writes_reloads_and_second_plan_is_empty(f2b: Fail2banHost) -> None:
    loaded = f2b.spec()
    lines, _ = _plan_and_apply(loaded, f2b.work)
    assert lines == [
        f"created {f2b.conf}/filter.d/sipctl-asterisk.conf",
        f"created {f2b.conf}/jail.d/sipctl.conf",
        "local: fail2ban reloaded",
    ]
    assert f"Jail list:\t{JAIL}" in f2b.client_run("status")
    action = f"{f2b.backend}-multiport"
    assert f2b.client_run("get", JAIL, "action", action, "protocol").strip() == "tcp,udp"
    mtimes = [p.stat().st_mtime_ns for p in sorted(f2b.conf.glob("*.d/sipctl*.conf"))]

    # Second time, through the CLI: no changes (exit 0 with --detailed-exitcode).
    cli = subprocess.run(
        [sys.executable, "-m", "sipctl", "plan", "-f", str(f2b.work / "sipctl.yaml"),
         "--target", "fail2ban", "--detailed-exitcode", "--no-color"],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert [p.stat().st_mtime_ns for p in sorted(f2b.conf.glob("*.d/sipctl*.conf"))] == mtimes


def test_jail_bans_and_firewall_apply_keeps_the_ban(f2b: Fail2banHost) -> None:
    _plan_and_apply(f2b.spec(), f2b.work)  # no change when the test above ran first
    caller = f2b.link.b_ip
    counted = f2b.total_failed()
    f2b.bad_calls(caller, MAXRETRY - 1)
    f2b.wait_counted(counted + MAXRETRY - 1)
    assert caller not in f2b.banned()  # one short of maxretry: no ban yet
    f2b.bad_calls(caller, 1)
    f2b.bad_calls("2001:db8::66")
    _wait("2001:db8::66", f2b)
    assert caller in _wait(caller, f2b)

    def check_ban() -> None:
        if f2b.backend == "iptables":
            v4 = f2b.ns.run("iptables", "-w", "-S").stdout.splitlines()
            v6 = f2b.ns.run("ip6tables", "-w", "-S").stdout.splitlines()
            ban = f"-A f2b-{JAIL} -s {caller}/32 -j REJECT --reject-with icmp-port-unreachable"
            assert ban in v4, v4
            for proto in ("tcp", "udp"):
                assert f"-A INPUT -p {proto} -m multiport --dports 5060 -j f2b-{JAIL}" in v4, v4
            assert any("-s 2001:db8::66/128" in rule for rule in v6), v6
        else:
            table = f2b.ns.run("nft", "list", "table", "inet", "f2b-table").stdout
            for proto in ("tcp", "udp"):
                assert f"{proto} dport 5060 ip saddr @addr-set-{JAIL} reject" in table, table
            assert caller in table and "2001:db8::66" in table, table

    # fail2ban lists a ban in its status before its action has written the rule (measured:
    # the ip6tables chain of the first IPv6 ban came a moment later under load).
    wait_until(lambda: _holds(check_ban), "the bans as rules in the namespace", last=check_ban)

    # A listener on the SIP port in the namespace: the banned caller is rejected.
    listener = subprocess.Popen(
        f2b.ns.argv(sys.executable, "-c", _LISTENER),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == b"ready"
        assert _connects(f2b, f2b.link.a_ip) == "refused"

        # sipctl's firewall layer, applied now, inside the namespace.
        loaded = f2b.spec()
        ctx = RunContext(base_dir=f2b.work)
        with f2b.ns.entered():
            plan_run = make_plan(loaded, ctx, ["firewall"])
            assert plan_run.plan.has_changes
            apply_plan(plan_run, ctx)
            again = make_plan(loaded, ctx, ["firewall"])
        assert not again.plan.has_changes

        check_ban()
        if f2b.backend == "iptables":
            # fail2ban's jumps stay above sipctl's: the ban is checked before SIP is accepted.
            rules = f2b.ns.run("iptables", "-w", "-S").stdout.splitlines()
            inputs = [rule for rule in rules if rule.startswith("-A INPUT ")]
            first_f2b = min(i for i, rule in enumerate(inputs) if f"-j f2b-{JAIL}" in rule)
            assert first_f2b < inputs.index("-A INPUT -j SIPCTL"), inputs
            assert "-P INPUT DROP" in rules
        else:
            assert "policy drop" in f2b.ns.run("nft", "list", "table", "inet", "sipctl").stdout
        assert _connects(f2b, f2b.link.a_ip) == "refused"

        # Unbanned, the same caller gets through sipctl's rules to the SIP port.
        f2b.client_run("set", JAIL, "unbanip", caller)
        assert _connects(f2b, f2b.link.a_ip) == "connected"
    finally:
        listener.kill()
        listener.wait(timeout=10)


_LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5060)); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""


def _holds(check: Callable[[], None]) -> bool:
    """``check`` passes (its AssertionError is what :func:`wait_until` reports at the end)."""
    try:
        check()
    except AssertionError:
        return False
    return True


def _connects(f2b: Fail2banHost, server_ip: str) -> str:
    """TCP connect from the client namespace to the SIP port: connected/refused/timeout."""
    script = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(2)\n"
        "try:\n"
        f"  s.connect(({server_ip!r}, 5060)); print('connected')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError: print('timeout')\n"
    )
    return f2b.client.run(sys.executable, "-c", script).stdout.strip()


def test_refused_reload_restores_the_files(f2b: Fail2banHost) -> None:
    _plan_and_apply(f2b.spec(), f2b.work)
    jail = f2b.conf / "jail.d" / "sipctl.conf"
    before = jail.read_bytes()

    # A log file that does not exist: fail2ban refuses the jail on reload.
    loaded = f2b.spec("missing-log.yaml", logpath=str(f2b.work / "no-such-log"))
    provider = Fail2banProvider(loaded, RunContext(base_dir=f2b.work))
    desired = render_fail2ban(loaded.spec)
    live = provider.read(desired)
    assert any("does not exist yet" in note for note in live.notes), live.notes
    changes = diff(desired, live)
    assert [c.address.name for c in changes] == [str(jail)]
    with pytest.raises(ProviderError) as refused:
        provider.apply(changes, live)
    message = str(refused.value)
    assert "fail2ban refused the new configuration" in message
    assert "Have not found any log file for sipctl-asterisk jail" in message
    assert "fail2ban runs with the previous files again" in message
    assert jail.read_bytes() == before
    assert f"Jail list:\t{JAIL}" in f2b.client_run("status")
    assert str(f2b.messages) in f2b.banned()


def test_an_apply_killed_before_the_reload_is_finished_by_the_next(f2b: Fail2banHost) -> None:
    """SIGKILL while fail2ban reloads: the files hold the new limit, the server the old one.
    The next plan says so and plans the files again; its apply reloads."""
    _plan_and_apply(f2b.spec(), f2b.work)  # the module's jail, whatever ran before
    more = f2b.spec("more.yaml", maxretry="7")
    reached = f2b.work / "reached"
    reached.unlink(missing_ok=True)
    stalling = f2b.work / "fail2ban-stalling"
    stalling.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *reload*) : > {reached}; exec sleep 60;; esac\n'
        f'exec {f2b.client_command} "$@"\n'
    )
    stalling.chmod(0o755)
    host_profile.add("fail2ban", [str(stalling)])
    apply = subprocess.Popen(
        [sys.executable, "-m", "sipctl", "apply", "-f", str(f2b.work / "more.yaml"),
         "--target", "fail2ban", "--auto-approve", "--no-color"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group: the reload it waits on dies with it
    )  # fmt: skip
    try:
        wait_until(reached.exists, "the apply reached fail2ban's reload", timeout=60)
    finally:
        os.killpg(apply.pid, signal.SIGKILL)
        apply.wait(timeout=10)
    more = f2b.spec("more.yaml", maxretry="7")  # the real fail2ban-client again
    assert "maxretry = 7" in (f2b.conf / "jail.d" / "sipctl.conf").read_text()
    assert f2b.client_run("get", JAIL, "maxretry").strip() == str(MAXRETRY)

    cli = subprocess.run(
        [sys.executable, "-m", "sipctl", "plan", "-f", str(f2b.work / "more.yaml"),
         "--target", "fail2ban", "--detailed-exitcode", "--no-color"],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
    )  # fmt: skip
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "stopped before fail2ban loaded them" in cli.stdout + cli.stderr
    try:
        lines, _ = _plan_and_apply(more, f2b.work)
        assert lines[-1] == "local: fail2ban reloaded", lines
        assert f2b.client_run("get", JAIL, "maxretry").strip() == "7"
        assert _plan_and_apply(more, f2b.work)[0] == [], "nothing left to do"
    finally:
        _plan_and_apply(f2b.spec(), f2b.work)  # back to the module's jail


def test_over_ssh_one_connection(f2b: Fail2banHost, ssh_server: SshServer) -> None:
    """The same host reached over SSH: read, prove, write and reload on one connection."""
    _plan_and_apply(f2b.spec(), f2b.work)  # the module's jail, whatever ran before
    ssh = ssh_server.ssh_spec()
    loaded = f2b.spec(
        "ssh.yaml",
        target=ssh_server.target,
        ssh=f"{{key_file: {ssh['key_file']}, known_hosts: {ssh['known_hosts']}}}",
        maxretry="4",
    )
    ctx = RunContext(base_dir=f2b.work)
    try:
        provider = Fail2banProvider(loaded, ctx)
        assert provider.target_id == ssh_server.target
        desired = render_fail2ban(loaded.spec)
        live = provider.read(desired)
        assert live.problems == [] and live.skipped == [], (live.problems, live.skipped)
        changes = diff(desired, live)
        assert [(c.action, c.address.name) for c in changes] == [
            ("update", str(f2b.conf / "jail.d" / "sipctl.conf"))
        ]
        assert provider.apply(changes, live)[-1] == f"{ssh_server.target}: fail2ban reloaded"
        transport = ctx.transports.get(ssh_server.target)
        # One connection; round trips: the host profile (once per run), read the files and
        # ping, sipctl's own directory (an apply's host lock makes sure of it first), write
        # the files with the mark of files not loaded yet, reload, remove the mark.
        assert (transport.connections, transport.round_trips) == (1, 6)  # type: ignore[attr-defined]
        assert f2b.client_run("get", JAIL, "maxretry").strip() == "4"
        assert diff(desired, Fail2banProvider(loaded, ctx).read(desired)) == []
    finally:
        ctx.close()
        _plan_and_apply(f2b.spec(), f2b.work)  # back to the module's jail


def test_a_jail_turned_off_after_sipctls_file_is_told(f2b: Fail2banHost) -> None:
    # jail.local is read after jail.d/*.conf: an admin's 'enabled = false' there turned
    # sipctl's jail off while its files matched the spec, and plan said "No changes"
    _plan_and_apply(f2b.spec(), f2b.work)
    local = f2b.conf / "jail.local"
    before = local.read_text()
    try:
        local.write_text(before + f"\n[{JAIL}]\nenabled = false\n")
        f2b.client_run("reload")
        assert JAIL not in f2b.client_run("status")
        cli = subprocess.run(
            [sys.executable, "-m", "sipctl", "plan", "-f", str(f2b.work / "sipctl.yaml"),
             "--target", "fail2ban", "--detailed-exitcode", "--no-color"],
            capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
        )  # fmt: skip
        text = " ".join((cli.stdout + cli.stderr).split())
        assert cli.returncode == 0, text  # the files are as wanted: nothing to change
        assert f"fail2ban runs no jail {JAIL}, which sipctl's" in text
        assert "jail.local, jail.d/*.local) turns it off" in text
    finally:
        local.write_text(before)
        f2b.client_run("reload")
