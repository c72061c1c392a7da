"""Bench: a PBX host with many customers (``hosting``): what a plan of the host costs.

Writes a hoster's directory into a temp dir (one host file with a ``dir:`` target, N
customer files of U users each), applies the host once, then times through the CLI, each in
a fresh process as a CI job runs it:

- a no-op plan of the host (``sipctl plan -f host.yaml``: the host file, all its customer
  files, the live files read back and compared);
- a no-op plan of the whole directory (``sipctl plan -f .``: the host and every customer
  file, each customer's plan holding its DNS layer only, here none);
- the plan after one customer's file was added (it must name that customer's users only).

Run: ``python bench/hosting.py`` (``--customers 1000 --users 10``).

Measured on the 2-core development machine, shared with other jobs: 1,000 customers of 10
users, first apply 8.2 s, no-op plan of the host 3.1 s, of the whole directory (1,001
files) 5.8 s, the plan after adding one customer 4.3 s naming that customer's 10 users and
nothing else (100 customers: 1.5 s, 3.0 s, 1.7 s).

7 December 2026, main at 6b9fdd3, the same machine at load 1-2 (1,000 customers of 10
users): first apply 1.65 s, no-op plan of the host 0.62 s, of the whole directory 1.12 s,
the plan after adding one customer 0.84 s (its 10 users and the attention line of its
phones' context, the guest jumps not checked on a dir: target).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = """\
version: 1
domain: pbx1.hoster.example
hosting: {name: pbx1}
transports: {udp: {port: 5060}, tcp: {port: 5060}}
servers: [{host: pbx1.hoster.example, ipv4: [203.0.113.10]}]
asterisk: {target: 'dir:state/pbx1'}
fail2ban: {target: 'dir:state/pbx1'}
"""


def customer(n: int, users: int) -> str:
    names = "".join(f"  user{u}: {100 + u}\n" for u in range(users))
    return (
        f"version: 1\ndomain: c{n}.example\nhost: pbx1\nlocal_context: c{n}-phones\nusers:\n{names}"
    )


def sipctl(directory: Path, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sipctl", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise SystemExit(f"sipctl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return seconds, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sipctl-hosting-") as temp:
        directory = Path(temp)
        (directory / "pbx1.yaml").write_text(HOST)
        for n in range(args.customers):
            (directory / f"c{n}.example.yaml").write_text(customer(n, args.users))
        seconds, _ = sipctl(directory, "apply", "-f", "pbx1.yaml", "--auto-approve")
        print(f"{args.customers} customers x {args.users} users: first apply {seconds:.2f} s")
        seconds, shown = sipctl(directory, "plan", "-f", "pbx1.yaml", "--detailed-exitcode")
        assert "No changes" in shown, shown
        print(f"no-op plan of the host: {seconds:.2f} s")
        seconds, shown = sipctl(directory, "plan", "-f", ".", "--detailed-exitcode")
        assert f"{args.customers + 1} domain(s): {args.customers + 1} ok" in shown, shown[-500:]
        print(f"no-op plan of the whole directory (host and customer files): {seconds:.2f} s")
        (directory / "new.example.yaml").write_text(
            customer(0, args.users).replace("c0.example", "new.example").replace("c0-", "new-")
        )
        seconds, shown = sipctl(directory, "plan", "-f", "pbx1.yaml")
        lines = [ln.strip() for ln in shown.splitlines() if ln.strip().startswith(("+ ", "- "))]
        named = [ln for ln in lines if ln.startswith("+ user ")]
        others = [ln for ln in named if not ln.endswith(tuple(f"→ {100 + u}" for u in range(99)))]
        assert all("@new.example " in ln for ln in named), named
        assert len(named) == args.users and not others, lines
        print(f"plan after adding one customer: {seconds:.2f} s, {len(lines)} line(s):")
        for line in lines:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
