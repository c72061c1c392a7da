"""Bench: a no-op plan through octoDNS's PowerDNS plugin, against a real PowerDNS.

octoDNS plugins read whole zones (the PowerDNS plugin asks for the zone with all its rrsets;
it has no filter for one name), so what a plan costs grows with the zone, unlike RFC 2136
where sipctl asks for its own names only. This measures it: a zone with N unrelated A
records plus sipctl's own (applied once), then ``make_plan`` of the same spec (nothing to
change), in this process.

    .venv/bin/python bench/octodns_plan.py [--sizes 100,10000] [--repeat 3]

Measured on the 2-core CI-like machine (PowerDNS 4.7.3, octodns 1.22, octodns-powerdns 1.2):
100 unrelated records 0.11 s, 10,000 records 16 s per no-op plan. The HTTP answer is small;
the time is octoDNS building and validating a Record for every rrset of the zone (about
2.6 ms each, profiled), before sipctl keeps its own few.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fixtures.powerdns import PowerDnsServer  # noqa: E402

from sipctl.providers.base import RunContext  # noqa: E402
from sipctl.reconciler.engine import apply_plan, make_plan  # noqa: E402
from sipctl.schemas.loader import load_spec_text  # noqa: E402

KEY_ENV = "SIPCTL_BENCH_PDNS_KEY"


def spec(pdns: PowerDnsServer, zone: str) -> str:
    return (
        f"version: 1\ndomain: {zone}\n"
        f"servers:\n  - {{host: sip.{zone}, ipv4: [192.0.2.10]}}\n"
        "dns:\n  provider: octodns\n  octodns:\n"
        "    class: octodns_powerdns.PowerDnsProvider\n"
        f"    host: 127.0.0.1\n    port: {pdns.api_port}\n    api_key: env/{KEY_ENV}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pdns = PowerDnsServer()
    pdns.start()
    os.environ[KEY_ENV] = pdns.api_key
    rows = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            extra = [
                (f"h{i}", "A", 3600, [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"])
                for i in range(size)
            ]
            zone = pdns.new_zone(extra=extra)
            with tempfile.TemporaryDirectory() as tmp:
                loaded = load_spec_text(spec(pdns, zone), base_dir=Path(tmp))
                ctx = RunContext(base_dir=Path(tmp))
                first = make_plan(loaded, ctx)
                apply_plan(first, ctx)
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    plan = make_plan(loaded, RunContext(base_dir=Path(tmp)))
                    times.append(time.perf_counter() - start)
                    assert not plan.plan.has_changes
            rows.append((size, len(pdns.rrsets(zone)), min(times), max(times)))
    finally:
        pdns.stop()
    print("No-op plan through octodns_powerdns.PowerDnsProvider against PowerDNS 4 (sqlite3)")
    print(
        f"{'unrelated records':>18} {'rrsets in zone':>15} {'plan, best (s)':>15} {'worst (s)':>10}"
    )
    for size, rrsets, best, worst in rows:
        print(f"{size:>18} {rrsets:>15} {best:>15.2f} {worst:>10.2f}")


if __name__ == "__main__":
    main()
