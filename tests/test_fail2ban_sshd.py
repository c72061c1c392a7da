"""fail2ban.sshd against the real OpenSSH sshd and fail2ban-server, in a network namespace.

The server namespace runs sshd on the spec's ``firewall.ssh_port`` and a fail2ban-server of
the test's own (stock config copied, the stock ``sshd`` filter, ``sshd_log`` pointed by
``paths-overrides.local`` at a file that gets sshd's lines as syslog writes them). A client
namespace tries to log in with a key sshd does not know. Shown: sipctl's ``sipctl-sshd``
jail bans the client at ``maxretry`` failed logins, on the SSH port, and sipctl's firewall
apply afterwards keeps the ban.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from fixtures import host_profile
from fixtures.common import require
from fixtures.fail2ban_server import Fail2banServer, start_fail2ban, stock_config
from fixtures.netns import Netns, Veth, delete_netns, make_netns, veth
from fixtures.sshd import SshServer, make_key, start_sshd
from fixtures.waiting import wait_until

from sipctl.providers.base import RunContext
from sipctl.providers.fail2ban import Fail2banProvider
from sipctl.reconciler.diff import diff
from sipctl.reconciler.engine import apply_plan, make_plan
from sipctl.reconciler.render.fail2ban import SSHD_JAIL_NAME, render_fail2ban
from sipctl.schemas.loader import LoadedSpec, load_spec

pytestmark = pytest.mark.netns

MAXRETRY = 3
SSH_PORT = 2222


@dataclass
class SshdHost:
    ns: Netns
    client: Netns
    link: Veth
    work: Path
    sshd: SshServer

    @property
    def client_command(self) -> str:
        return f"fail2ban-client -s {self.work}/sock -c {self.work}/conf"

    def status(self) -> str:
        done = subprocess.run(
            [*self.client_command.split(), "status", SSHD_JAIL_NAME],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout + done.stderr

    def spec(self) -> LoadedSpec:
        host_profile.add("fail2ban", self.client_command.split())
        path = self.work / "sipctl.yaml"
        path.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                domain: mysite.ru
                firewall: {{target: local, backend: iptables, ssh_port: {SSH_PORT}}}
                fail2ban:
                  target: local
                  sshd: true
                  config_dir: {self.work}/conf
                  logpath: {self.work}/messages
                  maxretry: {MAXRETRY}
                """
            )
        )
        return load_spec(path)

    def failed_login(self) -> str:
        """One SSH login from the client namespace as a user this host does not have."""
        done = self.client.run(
            "ssh", "-p", str(SSH_PORT), "-i", str(self.work / "stranger"),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3",
            "-o", "IdentitiesOnly=yes", f"nobodyhere@{self.link.a_ip}", "true",
            check=False,
        )  # fmt: skip
        return done.stdout + done.stderr


def _as_syslog(source: Path, target: Path, stop: threading.Event) -> None:
    """Copy sshd's ``-e`` lines into ``target`` the way syslog writes them (date, host,
    ``sshd[pid]:``), which is what the stock filter reads from /var/log/auth.log."""
    offset = 0
    while not stop.is_set():
        data = source.read_bytes()[offset:] if source.exists() else b""
        complete = data[: data.rfind(b"\n") + 1]
        offset += len(complete)
        if complete:
            stamp = time.strftime("%b %d %H:%M:%S")
            with target.open("a") as out:
                for line in complete.decode(errors="replace").splitlines():
                    out.write(f"{stamp} pbx sshd[4242]: {line}\n")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def sshd_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdHost]:
    for program in ("fail2ban-server", "fail2ban-client", "iptables", "ssh"):
        require(shutil.which(program) is not None, program)
    work = tmp_path_factory.mktemp("f2b-sshd")
    conf = work / "conf"
    stock_config(conf, filters=("sshd.conf", "common.conf"))
    auth_log = work / "auth.log"
    auth_log.touch()
    (work / "messages").touch()
    (conf / "paths-overrides.local").write_text(
        f"[DEFAULT]\nsshd_log = {auth_log}\nsshd_backend = auto\n"
    )
    make_key(work / "stranger")
    ns, client = make_netns(), make_netns()
    stop = threading.Event()
    server: Fail2banServer | None = None
    sshd: SshServer | None = None
    try:
        link = veth(ns, client)
        sshd = start_sshd(link.a_ip, SSH_PORT, netns=ns.name, workdir=work / "sshd")
        threading.Thread(target=_as_syslog, args=(sshd.log, auth_log, stop), daemon=True).start()
        server = start_fail2ban(ns.argv, conf, work)
        yield SshdHost(ns, client, link, work, sshd)
    finally:
        stop.set()
        if server is not None:
            server.stop()
        if sshd is not None:
            sshd.stop()
        delete_netns(client)
        delete_netns(ns)


def _ssh_port_answers(host: SshdHost) -> str:
    script = (
        "import socket\n"
        "s=socket.socket(); s.settimeout(2)\n"
        "try:\n"
        f"  s.connect(({host.link.a_ip!r}, {SSH_PORT})); print('connected')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError: print('timeout')\n"
    )
    return host.client.run(sys.executable, "-c", script).stdout.strip()


def test_failed_ssh_logins_are_banned_at_maxretry_and_stay_banned(sshd_host: SshdHost) -> None:
    loaded = sshd_host.spec()
    ctx = RunContext(base_dir=sshd_host.work)
    provider = Fail2banProvider(loaded, ctx)
    desired = render_fail2ban(loaded.spec)
    live = provider.read(desired)
    assert live.problems == [], live.problems
    provider.apply(diff(desired, live), live)
    assert diff(desired, provider.read(desired)) == []  # a second plan is empty
    status = sshd_host.status()
    assert "Currently banned:\t0" in status, status

    attacker = sshd_host.link.b_ip
    assert _ssh_port_answers(sshd_host) == "connected"
    for attempt in range(1, MAXRETRY + 1):
        said = sshd_host.failed_login()
        assert "Permission denied" in said, said
        # fail2ban has read this attempt (then "not banned" is its decision, not a log line
        # it has not read yet); the last one bans
        wait_until(
            partial(_counted_or_banned, sshd_host, attempt, attacker),
            f"fail2ban counted attempt {attempt}",
            interval=0.1,
            last=sshd_host.status,
        )
        if attempt == MAXRETRY:
            wait_until(lambda: attacker in sshd_host.status(), "the ban", last=sshd_host.status)
        banned = attacker in sshd_host.status()
        assert banned == (attempt == MAXRETRY), (attempt, sshd_host.status())
    # the ban action runs a moment after the jail lists the address (a loaded machine)
    jump = f"-A INPUT -p tcp -m multiport --dports {SSH_PORT} -j f2b-{SSHD_JAIL_NAME}"

    def rules() -> str:
        return sshd_host.ns.run("iptables", "-w", "-S").stdout

    wait_until(lambda: jump in rules(), "the ban's rule", interval=0.2, last=rules)
    assert _ssh_port_answers(sshd_host) == "refused"

    # sipctl's firewall layer, applied now in the namespace: the ban holds.
    with sshd_host.ns.entered():
        plan_run = make_plan(loaded, ctx, ["firewall"])
        apply_plan(plan_run, ctx)
        assert not make_plan(loaded, ctx, ["firewall"]).plan.has_changes
    assert attacker in sshd_host.status()
    assert _ssh_port_answers(sshd_host) == "refused"
    ctx.close()


def test_an_sshd_jail_of_the_admins_own_is_left_alone_and_named(sshd_host: SshdHost) -> None:
    loaded = sshd_host.spec()
    admins = sshd_host.work / "conf" / "jail.d" / "defaults-debian.conf"
    admins.write_text("[sshd]\nenabled = true\nport = 2222\n")  # as Debian ships it
    reload = [*sshd_host.client_command.split(), "reload"]
    subprocess.run(reload, capture_output=True, timeout=30, check=True)
    try:
        ctx = RunContext(base_dir=sshd_host.work)
        desired = render_fail2ban(loaded.spec)
        live = Fail2banProvider(loaded, ctx).read(desired)
        ctx.close()
        assert diff(desired, live) == []  # sipctl changes nothing, theirs included
        [note] = [n for n in live.notes if "sshd jail of its own" in n]
        assert "(sshd)" in note and "leaves it alone" in note
        assert admins.read_text() == "[sshd]\nenabled = true\nport = 2222\n"
    finally:
        admins.unlink()
        subprocess.run(reload, capture_output=True, timeout=30, check=False)


def _total_failed(status: str) -> int:
    """The failures the jail has counted so far (``Total failed`` of its status)."""
    found = re.search(r"Total failed:\s*(\d+)", status)
    return int(found[1]) if found else 0


def _counted_or_banned(host: SshdHost, attempts: int, attacker: str) -> bool:
    status = host.status()
    return _total_failed(status) >= attempts or attacker in status
