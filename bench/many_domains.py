"""Bench: one directory of many specs (one domain each, zone files), as a hosting provider
keeps them. A no-op ``plan -f DIR`` with ``--parallel 1`` and ``--parallel 2`` (worker
processes), wall and cpu seconds, and the same split over ``--shard I/N`` jobs run at once.

Run: ``python bench/many_domains.py`` (``--domains 1000,2000``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import installed_sipctl, print_table, run_measured


def write_specs(root: Path, count: int) -> Path:
    specs, zones = root / "specs", root / "zones"
    specs.mkdir(parents=True)
    zones.mkdir()
    for n in range(count):
        domain = f"d{n:05d}.example"
        (specs / f"{domain}.yaml").write_text(
            f"version: 1\ndomain: {domain}\n"
            f"servers: [{{host: sip.{domain}, ipv4: [192.0.2.{n % 250 + 1}]}}]\n"
            "users: {director: 105, alex: 106}\n"
            f"dns: {{provider: zonefile, file: ../zones/{domain}.zone, create_file: true}}\n"
        )
    return specs


def shards_at_once(sipctl: list[str], specs: Path, count: int) -> float:
    start = time.perf_counter()
    jobs = [
        subprocess.Popen(
            [*sipctl, "plan", "-f", str(specs), "--shard", f"{i}/{count}", "--parallel", "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(1, count + 1)
    ]
    for job in jobs:
        assert job.wait() == 0, "a shard failed"
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--domains", default="1000", help="specs per run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-"))
    python = installed_sipctl(work)
    sipctl = [str(python), "-m", "sipctl"]
    rows = []
    for count in (int(c) for c in args.domains.split(",")):
        specs = write_specs(work / f"n{count}", count)
        setup = run_measured(
            [*sipctl, "apply", "-f", str(specs), "--auto-approve", "--parallel", "2"]
        )
        assert setup.returncode == 0, "the bench specs must apply"
        row = {"domains": f"{count:,}"}
        for parallel in (1, 2):
            sample = run_measured([*sipctl, "plan", "-f", str(specs), "--parallel", str(parallel)])
            assert sample.returncode == 0, "a no-op plan must succeed"
            row[f"--parallel {parallel} wall"] = f"{sample.wall:.1f} s"
            row[f"--parallel {parallel} cpu"] = f"{sample.cpu:.1f} s"
        row["2 shards at once, wall"] = f"{shards_at_once(sipctl, specs, 2):.1f} s"
        rows.append(row)
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
