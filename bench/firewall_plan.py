"""Bench: plan and apply time of the firewall (and fail2ban) layers over SSH, round trips counted.

Starts a real sshd in a network namespace (root, iproute2, openssh-server, iptables, nftables
and fail2ban must be installed) and runs sipctl's engine from a second namespace joined to it
by a veth pair, so the host's own rules are never touched. For each firewall backend:

- the first apply (plan + apply, with the confirm over a new SSH connection),
- a no-op plan (median of several),
- a change (one port added to ``extra``): plan + apply,

each with the SSH connections and round trips of the pooled connection (the target: one
connection per host per run, shared by both layers; reads batched into one round trip per
layer). The confirmation's own new connection is by design not pooled: it is counted apart.

Run: ``sudo .venv/bin/python bench/firewall_plan.py`` (``--repeat 9`` for more samples,
``--no-fail2ban`` for the firewall alone).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import yaml  # noqa: E402
from fixtures.netns import Veth, delete_netns, make_netns, veth  # noqa: E402
from fixtures.sshd import SshServer, start_sshd  # noqa: E402

from sipctl.providers.base import RunContext  # noqa: E402
from sipctl.providers.firewall import common as firewall_common  # noqa: E402
from sipctl.reconciler.engine import apply_plan, make_plan  # noqa: E402
from sipctl.schemas.loader import LoadedSpec, load_spec_text  # noqa: E402


def spec(sshd: SshServer, backend: str, work: Path, fail2ban: bool, extra: list[str]) -> str:
    data: dict[str, Any] = {
        "version": 1,
        "domain": "mysite.ru",
        "firewall": {
            "target": sshd.target,
            "ssh": sshd.ssh_spec(),
            "backend": backend,
            "extra": extra,
            "persist": str(work / backend / "rules"),
            "confirm_seconds": 10,
        },
    }
    if fail2ban:
        data["fail2ban"] = {
            "target": sshd.target,
            "ssh": sshd.ssh_spec(),
            "config_dir": str(work / backend / "fail2ban"),
            "logpath": str(work / "messages"),
        }
    return yaml.safe_dump(data)


class Counter:
    """Counts the confirmations' new connections (``fresh``) during one step."""

    def __init__(self) -> None:
        self.fresh = 0

    def wrap(self, original: Callable[..., None]) -> Callable[..., None]:
        def confirm(provider: Any, transport: Any, stem: str, started: float) -> None:
            self.fresh += 1
            original(provider, transport, stem, started)

        return confirm


def step(
    link: Veth, loaded: LoadedSpec, work: Path, apply: bool, layers: list[str]
) -> tuple[float, float, int, int, int, int]:
    """plan (+ apply) in the client namespace: plan s, apply s, connections, round trips,
    confirm connections, changes."""
    ctx = RunContext(base_dir=work)
    counter = Counter()
    original = firewall_common.FirewallProvider._confirm
    firewall_common.FirewallProvider._confirm = counter.wrap(original)  # type: ignore[method-assign]
    try:
        with link.b.entered():
            started = time.perf_counter()
            plan_run = make_plan(loaded, ctx, layers)
            planned = time.perf_counter()
            changes = sum(len(t.changes) for t in plan_run.plan.targets)
            if apply and plan_run.plan.has_changes:
                apply_plan(plan_run, ctx)
            done = time.perf_counter()
            stats = ctx.transports.stats()
    finally:
        firewall_common.FirewallProvider._confirm = original  # type: ignore[method-assign]
        ctx.close()
    connections = sum(c for c, _ in stats.values())
    round_trips = sum(r for _, r in stats.values())
    return planned - started, done - planned, connections, round_trips, counter.fresh, changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="no-op plans to take the median of")
    parser.add_argument("--no-fail2ban", action="store_true", help="bench the firewall alone")
    args = parser.parse_args()
    fail2ban = not args.no_fail2ban
    layers = ["firewall", "fail2ban"] if fail2ban else ["firewall"]
    server, client = make_netns(), make_netns()
    sshd: SshServer | None = None
    rows: list[tuple[str, str, float, float, int, int, int, int]] = []
    try:
        link = veth(server, client)
        with tempfile.TemporaryDirectory(prefix="sipctl-bench-fw-") as tmp:
            work = Path(tmp)
            (work / "messages").write_text("")
            sshd = start_sshd(link.a_ip, 22, netns=server.name, workdir=work / "sshd")
            for backend in ("iptables", "nftables"):

                def load(extra: list[str], backend: str = backend) -> LoadedSpec:
                    text = spec(sshd, backend, work, fail2ban, extra)  # type: ignore[arg-type]
                    return load_spec_text(text, source=str(work / "bench.yaml"), base_dir=work)

                rows.append((backend, "first apply", *step(link, load([]), work, True, layers)))
                noop = [step(link, load([]), work, False, layers) for _ in range(args.repeat)]
                median = statistics.median(n[0] for n in noop)
                rows.append(
                    (backend, f"no-op plan (median of {args.repeat})", median, 0.0, *noop[0][2:])
                )
                rows.append(
                    (
                        backend,
                        "change: +tcp/443",
                        *step(link, load(["tcp/443"]), work, True, layers),
                    )
                )
    finally:
        if sshd is not None:
            sshd.stop()
        delete_netns(client)
        delete_netns(server)
    print(f"layers: {', '.join(layers)}; one SSH target for both")
    head = (
        "backend",
        "step",
        "plan s",
        "apply s",
        "conns",
        "round trips",
        "confirm conns",
        "changes",
    )
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for backend, name, plan_s, apply_s, conns, trips, fresh, changes in rows:
        print(
            f"{backend} | {name} | {plan_s:.3f} | {apply_s:.3f} | {conns} | {trips} | "
            f"{fresh} | {changes}"
        )


if __name__ == "__main__":
    main()
