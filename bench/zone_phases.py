"""Bench: where one zone's cpu goes in a no-op plan, phase by phase, on one real BIND.

A BIND is started with ``--zones`` small zones (``fixtures.bind.zone_text``), sipctl applies
its records to each, and then each spec is planned in this process the way ``plan -f DIR``
plans it, one phase at a time, each phase's thread cpu summed: loading and checking the spec,
rendering it and finding its claims, opening the provider, reading the zone, the diff and
fingerprint, the plan's object and its text. Printed: milliseconds per zone of each phase,
the least over chunks of 97 zones (other work on a shared machine only adds time). The
whole process adds what is not per phase (start-up, the garbage collector, the summary):
``bench/peer_scale.py`` measures that.

Measured 2026-12-06, 1,000 zones, on the shared 2-core machine (ms per zone):

| phase | before (42524ce) | after |
|---|---|---|
| load + check | 0.45 | 0.35 (0.21 alone) |
| render + claims | 0.26 | 0.15 (0.11 alone) |
| open the provider | 0.05 | 0.04 |
| read (one signed transfer) | 1.02 | 0.80-0.86 |
| diff + fingerprint | 0.10 | 0.10 |
| plan + its text | 0.03 | 0.03 |

A second pass the same day (main before it against after it, interleaved, three runs each,
load 4): the phases are the same within the noise of a shared machine (0.05 ms): read 0.80
-0.86 before, 0.77-0.82 after (each read record's text now written once, the SOA's never:
25 us of the read measured apart); the whole process gained most (see peer_scale.py: the
garbage collector, which this in-process split does not count).

Measured 2026-12-07 (600 zones, load 5-7; installed copies of 7e4fd25 and of a change
that decoded neither the owners of a transfer nobody asked for nor the SOA, run in turn,
twice): read 0.817 and 0.736 ms before, 0.783 and 0.708 after; the other phases the same.
(The owners' half followed compression pointers in sipctl's own code; taken back, see
peer_scale.py. Its index walk was 30 us of the 100 below.)
What the read still costs, in place (each zone's names and records cold; thread cpu around
each part, 600 zones, us): dnspython decoding the 9 owned records and their 6 owner names
300, their text 85, the TSIG check 65-70 (40 in a warm loop): about 0.45 ms of the
library's own; sipctl's walk of the message and its index 30, the query, the kept
connection and its syscalls 50-60 (per zone, by strace -c: one sendto, one recvfrom, two
polls, one ioctl and two getrandom, 0.05 ms of system time; no connect), the owned state 22,
and the rest of the read's own code about 80.

Run as root like the tests: ``python bench/zone_phases.py`` (``--zones 1000``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.bind import SECRET_ENV, BindServer, dns_spec, zone_text
from measure import run_measured

from sipctl.cli_common import load_checked
from sipctl.providers.base import RunContext
from sipctl.reconciler import engine, views
from sipctl.reconciler.gitops import multi
from sipctl.reconciler.plan import Plan

PHASES = ("load + check", "render + claims", "open", "read", "diff + fingerprint", "plan + text")
CHUNK = 97


def planned(paths: list[Path], env: dict[str, str]) -> dict[str, float]:
    """Thread cpu seconds of each phase over ``paths``."""
    now = time.thread_time
    spent = dict.fromkeys(PHASES, 0.0)
    for path in paths:
        domain = multi.Domain(path)
        start = now()
        domain.loaded = load_checked(path)
        loaded = now()
        multi.claim(domain)
        claimed = now()
        ctx = RunContext(base_dir=domain.loaded.base_dir, env=env, log=lambda _line: None)
        layers = engine.selected_layers(domain.loaded, None)
        runs = engine._open_targets(domain.loaded, ctx, layers, domain.rendered or {})
        opened = now()
        engine._read_all(runs, ctx)
        read = now()
        targets = [engine._target_plan(run) for run in runs]
        diffed = now()
        ctx.close()
        plan = Plan(
            spec_source=domain.loaded.source,
            spec_text=domain.loaded.text,
            spec_sha256=hashlib.sha256(domain.loaded.text.encode()).hexdigest(),
            domain=domain.loaded.spec.domain,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            sipctl_version="bench",
            targets=targets,
            layers=[],
        )
        views.render_human(plan.to_json(), color=False, detail=False)
        done = now()
        for phase, seconds in zip(
            PHASES,
            (loaded - start, claimed - loaded, opened - claimed, read - opened),
            strict=False,
        ):
            spent[phase] += seconds
        spent["diff + fingerprint"] += diffed - read
        spent["plan + text"] += done - diffed
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--zones", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-phases-"))
    zones = [f"q{n:05d}.example" for n in range(args.zones)]
    bind = BindServer(work / "bind")
    bind.start({zone: zone_text(zone) for zone in zones}, timeout=1800)
    try:
        specs = work / "specs"
        specs.mkdir()
        for zone in zones:
            (specs / f"{zone}.yaml").write_text(dns_spec(bind, zone))
        env = {**os.environ, SECRET_ENV: bind.secret}
        apply = [sys.executable, "-m", "sipctl", "apply", "-f", str(specs), "--auto-approve"]
        assert run_measured([*apply, "--parallel", "2"], env=env).returncode == 0
        paths = sorted(specs.iterdir())
        planned(paths[:30], env)  # imports and first-use work are not per zone
        best = dict.fromkeys(PHASES, float("inf"))
        for start in range(30, len(paths) - CHUNK + 1, CHUNK):
            spent = planned(paths[start : start + CHUNK], env)
            for phase in PHASES:
                best[phase] = min(best[phase], 1000 * spent[phase] / CHUNK)
    finally:
        bind.stop()
    for phase in PHASES:
        print(f"{phase:20s} {best[phase]:6.3f} ms per zone")
    print(f"{'sum':20s} {sum(best.values()):6.3f} ms per zone")
    print(f"\nleast over chunks of {CHUNK} zones; load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
