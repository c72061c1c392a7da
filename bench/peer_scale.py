"""Bench: the cost of one more domain, sipctl beside octoDNS, on one real BIND.

For each size (200, 1,000 and 5,000 zones by default) a new BIND is started with that many
small zones (SOA, NS, MX, TXT, a non-SIP NAPTR, two A records: ``fixtures.bind.zone_text``),
sipctl applies its records to every zone once, and then, interleaved run by run:
- sipctl's no-op ``plan -f DIR`` (``--parallel 1``, and ``--parallel 2`` for the wall time);
- octoDNS 1.x with ``octodns-bind``'s ``Rfc2136Provider`` planning the same SIP names of
  every zone (``NameAllowlistFilter``: octoDNS reads each zone by one signed AXFR).
Each run is a whole process measured by the kernel; BIND's own cpu is read from
/proc/PID/stat before and after. Printed: medians of wall, cpu and BIND cpu per run, and the
slopes per added zone between the sizes.

Needs the bench extra: ``pip install octodns octodns-bind``. Run as root like the tests:
``python bench/peer_scale.py`` (``--zones 200,1000,5000 --runs 5``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.bind import SECRET_ENV, BindServer, dns_spec, zone_text
from measure import Sample, print_table, run_measured

OCTODNS = """
import sys
from octodns.processor.filter import NameAllowlistFilter
from octodns.record import Record
from octodns.zone import Zone
from octodns_bind import Rfc2136Provider

host, port, key, algorithm, secret, zones_file = sys.argv[1:7]
provider = Rfc2136Provider("bind", host=host, port=int(port), key_name=key,
                           key_secret=secret, key_algorithm=algorithm)
names = ["", "_sip._udp", "_sip._tcp", "_sips._tcp", "asterisk"]
changes = 0
for zone in open(zones_file).read().split():
    desired = Zone(zone + ".", [])
    def add(name, data):
        desired.add_record(Record.new(desired, name, {"ttl": 3600, **data}))
    add("", {"type": "NAPTR", "values": [
        {"order": o, "preference": 10, "flags": "S", "service": s, "regexp": "",
         "replacement": f"{p}.{zone}."}
        for o, s, p in ((10, "SIP+D2U", "_sip._udp"), (20, "SIP+D2T", "_sip._tcp"),
                        (30, "SIPS+D2T", "_sips._tcp"))]})
    for prefix, port_ in (("_sip._udp", 5060), ("_sip._tcp", 5060), ("_sips._tcp", 5061)):
        add(prefix, {"type": "SRV", "values": [
            {"priority": 10, "weight": 0, "port": port_, "target": f"asterisk.{zone}."}]})
    add("asterisk", {"type": "A", "value": "203.0.113.10"})
    plan = provider.plan(desired, processors=[NameAllowlistFilter("sip", names)])
    changes += len(plan.changes) if plan else 0
print("changes:", changes)
"""


def bind_cpu(bind: BindServer) -> float:
    """BIND's user + system cpu seconds so far."""
    assert bind._process is not None
    fields = Path(f"/proc/{bind._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(bind: BindServer, argv: list[str], env: dict[str, str]) -> tuple[Sample, float]:
    before = bind_cpu(bind)
    sample = run_measured(argv, env=env)
    return sample, bind_cpu(bind) - before


def one_size(count: int, runs: int, work: Path) -> list[dict[str, float]]:
    zones = [f"p{n:05d}.example" for n in range(count)]
    bind = BindServer(work / f"bind-{count}")
    bind.start({zone: zone_text(zone) for zone in zones}, timeout=600)
    try:
        specs = work / f"specs-{count}"
        specs.mkdir()
        for zone in zones:
            (specs / f"{zone}.yaml").write_text(dns_spec(bind, zone))
        zones_file = work / f"zones-{count}.txt"
        zones_file.write_text("\n".join(zones))
        env = {**os.environ, SECRET_ENV: bind.secret}
        sipctl = [sys.executable, "-m", "sipctl"]
        applied = run_measured(
            [*sipctl, "apply", "-f", str(specs), "--auto-approve", "--parallel", "2"], env=env
        )
        assert applied.returncode == 0, "the bench's specs must apply"
        host, _, port = bind.server.rpartition(":")
        octo = [sys.executable, "-c", OCTODNS, host, port, bind.key_name, bind.algorithm]
        octo += [bind.secret, str(zones_file)]
        plan = [*sipctl, "plan", "-f", str(specs), "--detailed-exitcode", "--quiet"]
        rows: dict[str, list[tuple[Sample, float]]] = {"sipctl": [], "sipctl p2": [], "oct": []}
        for _ in range(runs):
            rows["sipctl"].append(measured(bind, [*plan, "--parallel", "1"], env))
            rows["sipctl p2"].append(measured(bind, [*plan, "--parallel", "2"], env))
            rows["oct"].append(measured(bind, octo, env))
            assert rows["sipctl"][-1][0].returncode == 0, "sipctl must find nothing to change"
            assert rows["oct"][-1][0].returncode == 0, rows["oct"][-1][0].stdout
    finally:
        bind.stop()
    out = []
    for tool, samples in rows.items():
        out.append(
            {
                "tool": {"sipctl": 0.0, "sipctl p2": 1.0, "oct": 2.0}[tool],
                "zones": float(count),
                "wall": statistics.median(s.wall for s, _ in samples),
                "cpu": statistics.median(s.cpu for s, _ in samples),
                "bind": statistics.median(b for _, b in samples),
            }
        )
    return out


NAMES = {
    0.0: "sipctl plan --parallel 1",
    1.0: "sipctl plan --parallel 2",
    2.0: "octoDNS + octodns-bind (SIP names)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--zones", default="200,1000,5000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        import octodns_bind  # noqa: F401
    except ImportError:
        print("needs the bench extra: pip install octodns octodns-bind", file=sys.stderr)
        return 1
    sizes = [int(n) for n in args.zones.split(",")]
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-peer-"))
    results = [row for size in sizes for row in one_size(size, args.runs, work)]
    table = []
    for row in results:
        table.append(
            {
                "tool": NAMES[row["tool"]],
                "zones": f"{row['zones']:,.0f}",
                "wall": f"{row['wall']:.2f} s",
                "cpu": f"{row['cpu']:.2f} s",
                "BIND cpu": f"{row['bind']:.2f} s",
            }
        )
    print_table(table)
    print()
    slopes = []
    for tool, name in NAMES.items():
        mine = sorted((r for r in results if r["tool"] == tool), key=lambda r: r["zones"])
        if len(mine) < 2:
            continue
        first, last = mine[0], mine[-1]
        added = last["zones"] - first["zones"]
        slopes.append(
            {
                "tool": name,
                "cpu per added zone": f"{1000 * (last['cpu'] - first['cpu']) / added:.2f} ms",
                "wall per added zone": f"{1000 * (last['wall'] - first['wall']) / added:.2f} ms",
                "BIND cpu per added zone": f"{1000 * (last['bind'] - first['bind']) / added:.3f}"
                " ms",
            }
        )
    print_table(slopes)
    print(f"\nmedians of {args.runs} interleaved runs; load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
