"""Bench: a no-op plan through octoDNS's PowerDNS plugin, against a real PowerDNS.

A zone with N unrelated A records plus sipctl's own (applied once), then ``make_plan`` of the
same spec (nothing to change), in this process. sipctl asks PowerDNS for its own names only
(``GET .../zones/ZONE?rrset_name=NAME``, providers/dns/octodns_reads.py), so the plan should
not grow with the zone. For comparison, the last column is one whole-zone read through the
plugin's own ``populate``, which is what every plugin without a name filter costs per read.

    .venv/bin/python bench/octodns_plan.py [--sizes 100,10000] [--repeat 3] [--whole-zone]

Measured on the 2-core CI-like machine (PowerDNS 4.7.3, octodns 1.22, octodns-powerdns 1.2),
shared with five other engineers' work, best of 3:

    unrelated records   no-op plan, names only (s)   whole-zone (s)   one whole populate (s)
                  100                         0.05             0.03                     0.02
               10,000                         0.05             1.28                     1.55

"whole-zone" is the same plan with the name filter switched off (``--whole-zone``: every
read populates the whole zone, as before; the earlier note measured 0.11 s and 16 s for it
on a busier machine). Asking for names costs one request per name (six for a one-server
spec), so a tiny zone reads a little slower that way; from a few hundred records on, the
filter wins, and the plan no longer grows with the zone. The whole-zone time is octoDNS
building and validating a Record for every rrset of the zone, before sipctl keeps its few.
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
from sipctl.providers.dns.octodns import OctodnsProvider  # noqa: E402
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
    parser.add_argument(
        "--whole-zone",
        action="store_true",
        help="switch the name filter off: every read populates the whole zone (as before)",
    )
    args = parser.parse_args()
    if args.whole_zone:
        import sipctl.providers.dns.octodns as octodns_provider

        octodns_provider.populate_names = lambda *_args: None  # type: ignore[assignment]
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
                provider = OctodnsProvider(loaded, RunContext(base_dir=Path(tmp)))
                start = time.perf_counter()
                provider.populate()
                whole = time.perf_counter() - start
            rows.append((size, len(pdns.rrsets(zone)), min(times), max(times), whole))
    finally:
        pdns.stop()
    print("No-op plan through octodns_powerdns.PowerDnsProvider against PowerDNS 4 (sqlite3)")
    print(
        f"{'unrelated records':>18} {'rrsets in zone':>15} {'plan, best (s)':>15} "
        f"{'worst (s)':>10} {'whole-zone populate (s)':>24}"
    )
    for size, rrsets, best, worst, whole in rows:
        print(f"{size:>18} {rrsets:>15} {best:>15.2f} {worst:>10.2f} {whole:>24.2f}")


if __name__ == "__main__":
    main()
