"""The iptables and nftables providers against the real programs, inside network namespaces.

Every test runs sipctl's plan and apply (the engine, a ``local`` target) with this thread
moved into a namespace the test made (``Netns.entered``), so the host's own rules are never
read or touched. Fake fail2ban and admin rules are put in first; they must come through
every apply, change and removal exactly as they were.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.netns import Netns, Veth, delete_netns, make_netns

from sipctl.errors import StalePlanError
from sipctl.providers.base import RunContext
from sipctl.reconciler.engine import PlanRun, apply_plan, make_plan
from sipctl.schemas.loader import load_spec_text

BACKENDS = ["iptables", "nftables"]

# The rules of the first spec below, as the programs print them back.
IPTABLES_RULES = [
    "-A SIPCTL -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A SIPCTL -i lo -j ACCEPT",
    "-A SIPCTL -p icmp -m icmp --icmp-type 8 -j ACCEPT",
    "-A SIPCTL -p tcp -m tcp --dport 22 -j ACCEPT",
    "-A SIPCTL -p tcp -m tcp --dport 443 -j ACCEPT",
    "-A SIPCTL -p udp -m udp --dport 4000:4010 -j ACCEPT",
    "-A SIPCTL -p tcp -m tcp --dport 5060 -j ACCEPT",
    "-A SIPCTL -p udp -m udp --dport 5060 -j ACCEPT",
    "-A SIPCTL -p udp -m udp --dport 10000:20000 -j ACCEPT",
]
NFT_TABLE = """\
table inet sipctl {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname "lo" accept
		icmp type echo-request accept
		icmpv6 type echo-request accept
		icmpv6 type nd-neighbor-advert accept
		icmpv6 type nd-neighbor-solicit accept
		icmpv6 type nd-router-advert accept
		icmpv6 type nd-router-solicit accept
		tcp dport 22 accept
		tcp dport 443 accept
		udp dport 4000-4010 accept
		tcp dport 5060 accept
		udp dport 5060 accept
		udp dport 10000-20000 accept
	}
}
"""
FOREIGN_IPTABLES = """
iptables -N f2b-sipctl
iptables -A f2b-sipctl -s 192.0.2.7 -j REJECT
iptables -A f2b-sipctl -j RETURN
iptables -I INPUT -p udp -m multiport --dports 5060,5061 -j f2b-sipctl
iptables -N ADMIN
iptables -A ADMIN -p tcp --dport 8080 -j ACCEPT
iptables -A INPUT -j ADMIN
"""
FOREIGN_NFT = """
nft add table inet f2b-table
nft add chain inet f2b-table f2b-chain '{ type filter hook input priority -1; }'
nft add rule inet f2b-table f2b-chain ip saddr 192.0.2.7 drop
nft add table inet admin
nft add chain inet admin input '{ type filter hook input priority 10; }'
nft add rule inet admin input tcp dport 8080 accept
"""


def spec_text(backend: str, tmp: Path, **changes: Any) -> str:
    firewall: dict[str, Any] = {
        "target": "local",
        "backend": backend,
        "extra": ["tcp/443", "udp/4000-4010"],
        "persist": str(tmp / ("sipctl.nft" if backend == "nftables" else "iptables.up")),
    }
    firewall.update(changes.pop("firewall", {}))
    data: dict[str, Any] = {"version": 1, "domain": "mysite.ru", "firewall": firewall, **changes}
    return yaml.safe_dump(data)


class Host:
    """A namespace whose firewall sipctl manages through a ``local`` target."""

    def __init__(self, ns: Netns, backend: str, tmp: Path) -> None:
        self.ns, self.backend, self.tmp = ns, backend, tmp

    def plan(self, text: str) -> tuple[PlanRun, RunContext]:
        loaded = load_spec_text(text, source=str(self.tmp / "sipctl.yaml"), base_dir=self.tmp)
        ctx = RunContext(base_dir=self.tmp)
        with self.ns.entered():
            return make_plan(loaded, ctx, ["firewall"]), ctx

    def changes(self, text: str) -> list[str]:
        plan_run, ctx = self.plan(text)
        ctx.close()
        return [f"{c.action} {c.address}" for _, c in plan_run.plan.changes()]

    def apply(self, text: str, force: bool = False) -> list[str]:
        plan_run, ctx = self.plan(text)
        try:
            with self.ns.entered():
                return apply_plan(plan_run, ctx, force=force).lines
        finally:
            ctx.close()

    def ours(self) -> list[str]:
        if self.backend == "iptables":
            save = self.ns.run("iptables-save", "-t", "filter").stdout
            return [line for line in save.splitlines() if line.startswith("-A SIPCTL ")]
        return self.ns.run(
            "nft", "list", "table", "inet", "sipctl", check=False
        ).stdout.splitlines()

    def foreign(self) -> str:
        """Everything that is not sipctl's, as the programs print it."""
        if self.backend == "nftables":
            return self.ns.sh("nft list table inet f2b-table; nft list table inet admin")
        save = self.ns.run("iptables-save", "-t", "filter").stdout
        skip = re.compile(r"^(#|:INPUT |:SIPCTL |-A SIPCTL |-A INPUT -j SIPCTL$)")
        return "\n".join(line for line in save.splitlines() if not skip.match(line))

    def input_policy(self) -> str:
        save = self.ns.run("iptables-save", "-t", "filter").stdout
        return re.search(r"^:INPUT (\w+)", save, re.M).group(1)  # type: ignore[union-attr]


@pytest.fixture
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    ns = make_netns()
    try:
        yield Host(ns, request.param, tmp_path)
    finally:
        delete_netns(ns)


@pytest.mark.parametrize("host", BACKENDS, indirect=True)
def test_apply_change_and_remove_keep_foreign_rules(host: Host) -> None:
    host.ns.sh(FOREIGN_NFT if host.backend == "nftables" else FOREIGN_IPTABLES)
    foreign = host.foreign()
    first = spec_text(host.backend, host.tmp)

    lines = host.apply(first)
    assert any("written" in line for line in lines), lines
    if host.backend == "iptables":
        assert host.ours() == IPTABLES_RULES
        assert host.input_policy() == "DROP"
        save = host.ns.run("iptables-save", "-t", "filter").stdout
        jumps = [line for line in save.splitlines() if line.startswith("-A INPUT ")]
        # fail2ban's jump stays first: a banned address never reaches our accepts.
        assert jumps[0].endswith("-j f2b-sipctl") and jumps.count("-A INPUT -j SIPCTL") == 1
    else:
        assert "\n".join(host.ours()) + "\n" == NFT_TABLE
    assert host.foreign() == foreign
    assert host.changes(first) == []

    # A port leaves the spec, the RTP range moves (from the asterisk section).
    second = spec_text(
        host.backend,
        host.tmp,
        firewall={"extra": ["udp/4000-4010"]},
        asterisk={"rtp": {"start": 12000, "end": 12100}},
    )
    host.apply(second)
    rules = "\n".join(host.ours())
    assert "443" not in rules and "10000" not in rules
    assert ("12000:12100" if host.backend == "iptables" else "12000-12100") in rules
    assert host.foreign() == foreign
    assert host.changes(second) == []

    # The persist file brings back exactly these rules in a namespace that has none.
    persist = Path(spec_persist(second))
    fresh = make_netns()
    try:
        if host.backend == "iptables":
            fresh.run("iptables-restore", input=persist.read_text())
        else:
            fresh.run("nft", "-f", str(persist))
        assert Host(fresh, host.backend, host.tmp).ours() == host.ours()
    finally:
        delete_netns(fresh)

    removed = spec_text(host.backend, host.tmp, firewall={"ensure": "absent"})
    host.apply(removed, force=True)  # removing every rule is over the safety limit
    if host.backend == "iptables":
        assert host.ours() == [] and host.input_policy() == "ACCEPT"
        assert "SIPCTL" not in host.ns.run("iptables-save").stdout
    else:
        assert host.ours() == []
    assert host.foreign() == foreign
    assert host.changes(removed) == []


def spec_persist(text: str) -> str:
    return str(yaml.safe_load(text)["firewall"]["persist"])


@pytest.mark.parametrize("host", BACKENDS, indirect=True)
def test_rules_changed_after_the_plan_are_not_overwritten(host: Host) -> None:
    text = spec_text(host.backend, host.tmp)
    host.apply(text)
    changed = spec_text(host.backend, host.tmp, firewall={"extra": []})
    plan_run, ctx = host.plan(changed)
    if host.backend == "iptables":
        host.ns.run("iptables", "-A", "SIPCTL", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT")
    else:
        host.ns.run(
            "nft", "add", "rule", "inet", "sipctl", "input", "tcp", "dport", "9999", "accept"
        )
    before = host.ours()
    try:
        with host.ns.entered(), pytest.raises(StalePlanError):
            apply_plan(plan_run, ctx)
    finally:
        ctx.close()
    assert host.ours() == before


# --- real traffic over a veth pair -----------------------------------------------------------

LISTENER = textwrap.dedent(
    """
    import select, socket, sys
    socks = []
    for address in sys.argv[1:]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for port in (5060, 6000):
            t = socket.socket(family); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind((address, port)); t.listen(8); socks.append(t)
            u = socket.socket(family, socket.SOCK_DGRAM); u.bind((address, port))
            socks.append(u)
    print("ready", flush=True)
    while True:
        for s in select.select(socks, [], [])[0]:
            if s.type == socket.SOCK_STREAM:
                c, _ = s.accept(); c.sendall(b"hi"); c.close()
            else:
                data, peer = s.recvfrom(100); s.sendto(b"hi", peer)
    """
)
PROBE = textwrap.dedent(
    """
    import json, socket, sys
    found = {}
    for address in sys.argv[1:]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for proto in ("tcp", "udp"):
            for port in (5060, 6000):
                try:
                    if proto == "tcp":
                        s = socket.create_connection((address, port), timeout=0.7)
                        ok = s.recv(2) == b"hi"
                    else:
                        s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(0.7)
                        s.sendto(b"x", (address, port)); ok = s.recvfrom(10)[0] == b"hi"
                except OSError:
                    ok = False
                found[f"{proto}/{port} {'ipv6' if ':' in address else 'ipv4'}"] = ok
    print(json.dumps(found))
    """
)


def probe(link: Veth) -> dict[str, bool]:
    out = link.b.run(sys.executable, "-c", PROBE, link.a_ip, link.a_ip6).stdout
    result: dict[str, bool] = json.loads(out)
    return result


@pytest.mark.parametrize("spec_ipv6", [True, False], ids=["spec-ipv6", "spec-ipv4-only"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_real_traffic_through_the_rules(
    backend: str, spec_ipv6: bool, netns_pair: Veth, tmp_path: Path
) -> None:
    """Over IPv4 and IPv6: the spec's ports answer, another port does not, whether or not the
    spec names an IPv6 address (IPv6 input is default-deny either way, with both backends).
    Neighbour caches are flushed after the rules are in, so IPv6 works only if neighbour
    discovery passes."""
    link = netns_pair
    listener = link.a.popen(sys.executable, "-c", LISTENER, link.a_ip, link.a_ip6)
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == b"ready"
        assert all(probe(link).values())  # no rules yet: every listener answers
        server: dict[str, Any] = {"host": "pbx.mysite.ru", "ipv4": [link.a_ip]}
        if spec_ipv6:
            server["ipv6"] = [link.a_ip6]
        text = spec_text(backend, tmp_path, servers=[server])
        Host(link.a, backend, tmp_path).apply(text)
        for ns in (link.a, link.b):
            ns.run("ip", "neigh", "flush", "all")
        started = time.monotonic()
        found = probe(link)
        assert found == {
            f"{proto}/{port} {family}": port == 5060
            for family in ("ipv4", "ipv6")
            for proto in ("tcp", "udp")
            for port in (5060, 6000)
        }
        assert time.monotonic() - started < 10
        if backend == "iptables":  # the IPv6 persist file holds the same default-deny
            v6 = (Path(spec_persist(text)).parent / "ip6tables.up").read_text()
            assert ":INPUT DROP" in v6 and "--dport 5060 -j ACCEPT" in v6
            fresh = make_netns()
            try:
                fresh.run("ip6tables-restore", input=v6)
                saved = fresh.run("ip6tables-save", "-t", "filter").stdout
                live = link.a.run("ip6tables-save", "-t", "filter").stdout
                assert _rules(saved) == _rules(live)
            finally:
                delete_netns(fresh)
    finally:
        listener.kill()
        listener.wait()


def _rules(save: str) -> list[str]:
    """The rules and the INPUT policy of an iptables-save text (no counters, no dates)."""
    keep = [line for line in save.splitlines() if line.startswith(("-A", ":INPUT"))]
    return [re.sub(r" \[\d+:\d+\]$", "", line) for line in keep]


# --- a dir: target ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_dir_target_writes_only_the_persist_file(backend: str, tmp_path: Path) -> None:
    root = tmp_path / "pbx"
    text = spec_text(backend, tmp_path, firewall={"target": "dir:pbx", "persist": "/etc/fw.rules"})
    loaded = load_spec_text(text, source=str(tmp_path / "sipctl.yaml"), base_dir=tmp_path)
    ctx = RunContext(base_dir=tmp_path)
    try:
        plan_run = make_plan(loaded, ctx, ["firewall"])
        target = plan_run.plan.targets[0]
        assert len(target.skipped) == 1 and "no rules loaded" in target.skipped[0]
        apply_plan(plan_run, ctx)
        again = make_plan(loaded, ctx, ["firewall"])
        assert not again.plan.has_changes
    finally:
        ctx.close()
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    expected = ["etc/fw.rules"] if backend == "nftables" else ["etc/fw.rules", "etc/fw.rules.v6"]
    assert written == expected


def test_dir_target_without_persist_is_a_problem(tmp_path: Path) -> None:
    from sipctl.errors import ProviderError

    text = spec_text("iptables", tmp_path, firewall={"target": "dir:pbx", "persist": None})
    loaded = load_spec_text(text, source=str(tmp_path / "sipctl.yaml"), base_dir=tmp_path)
    ctx = RunContext(base_dir=tmp_path)
    try:
        with pytest.raises(ProviderError, match=r"firewall\.persist is not set"):
            make_plan(loaded, ctx, ["firewall"])
    finally:
        ctx.close()


def test_the_namespace_is_not_the_host() -> None:
    """A guard for this whole module: entering a namespace really moves the thread."""
    ns = make_netns()
    try:
        with ns.entered():
            inside = Path("/proc/thread-self/ns/net").stat().st_ino
        outside = Path("/proc/thread-self/ns/net").stat().st_ino
        assert inside != outside
        assert inside == Path(ns.path).stat().st_ino
        assert subprocess.run(["true"]).returncode == 0
    finally:
        delete_netns(ns)


def test_a_change_of_backend_says_the_old_rules_are_still_loaded(tmp_path: Path) -> None:
    ns = make_netns()
    try:
        Host(ns, "iptables", tmp_path).apply(spec_text("iptables", tmp_path))
        plan_run, ctx = Host(ns, "nftables", tmp_path).plan(spec_text("nftables", tmp_path))
        ctx.close()
        notes = plan_run.plan.targets[0].notes
        assert any("chain SIPCTL of the iptables backend is still loaded" in n for n in notes)
    finally:
        delete_netns(ns)


@pytest.mark.parametrize("host", BACKENDS, indirect=True)
def test_reject_policy_is_a_final_reject_rule(host: Host) -> None:
    text = spec_text(host.backend, host.tmp, firewall={"policy": "reject"})
    host.apply(text)
    last = host.ours()[-1] if host.backend == "iptables" else host.ours()[-3].strip()
    assert last in ("-A SIPCTL -j REJECT --reject-with icmp-port-unreachable", "reject")
    assert host.changes(text) == []
    host.apply(spec_text(host.backend, host.tmp))  # back to drop: the reject rule goes
    assert not any("REJECT" in r or r.strip() == "reject" for r in host.ours())


def test_a_refused_change_leaves_the_old_rules(tmp_path: Path) -> None:
    """iptables-restore refuses to delete SIPCTL while an admin's chain jumps to it: the
    apply fails with iptables' own words and every rule is as it was."""
    from sipctl.errors import ProviderError

    ns = make_netns()
    try:
        host = Host(ns, "iptables", tmp_path)
        host.apply(spec_text("iptables", tmp_path))
        ns.sh("iptables -N ADMIN && iptables -A ADMIN -j SIPCTL")
        before = _rules(ns.run("iptables-save", "-t", "filter").stdout)
        with pytest.raises(ProviderError, match="refused the new rules, so the old ones were"):
            host.apply(spec_text("iptables", tmp_path, firewall={"ensure": "absent"}), force=True)
        after = _rules(ns.run("iptables-save", "-t", "filter").stdout)
        assert after == before
    finally:
        delete_netns(ns)
