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

Then, sipctl alone at a hoster's scale (``--big``, default 10,000; 0 skips): one BIND
loading that many zones (how long it takes is printed), one apply, and no-op plans with
``--parallel 2`` (the goal: under 5 s wall) and ``--parallel 1``; and the same specs on the
``zonefile`` provider (``--zonefiles``, default 1,000 and 10,000 zone files in one
directory), whose no-op plans give the slope per added zone file.

Measured 2026-12-06 on the shared 2-core machine (load 10-14 from other work, so wall times
are not meaningful; cpu is the process's own), ``--zones 200,1000 --runs 3``:

| no-op plan, 200 -> 1,000 zones | cpu per added zone | BIND cpu per added zone |
|---|---|---|
| sipctl ``--parallel 1`` | 1.60 ms (2.23-2.33 ms before) | 0.225 ms (0.28-0.34 before) |
| sipctl ``--parallel 2`` | 1.62 ms | 0.150 ms |
| octoDNS 1.x + octodns-bind, SIP names | 3.49 ms | 0.375 ms |

10,000 zones on one BIND: BIND starts with them in 2.2 s; a no-op plan costs sipctl 17.9 s
of cpu with ``--parallel 2`` (17.1 s with 1) and BIND 1.9-2.1 s. On two idle cores that
is about 9 s of wall, not the 5 s asked: sipctl's cpu per zone would have to be about 0.8 ms.
Where a zone's 1.6 ms go (in-process, bench/zone_phases.py's split): reading the zone 0.8
(dnspython decoding the dozen records sipctl owns, and their text: 0.45), loading and
checking the spec 0.3 (libyaml and PyYAML's constructor 0.1, pydantic 0.05), rendering
0.12, diff and fingerprint 0.1, the garbage collector 0.15, the rest a few hundredths each.
The zonefile provider, 1,000 -> 10,000 zone files (``--zonefiles 1000,10000``): 3.1 ms of
cpu per added zone file with ``--parallel 1`` and 2 (31.4 s for 10,000). Two thirds of it is
dnspython's zone parser (``dns.zone.from_text`` of the whole small file, 2.1 ms), the one
reader of a zone file sipctl has; the rest is the same as on BIND but the transfer.

A second pass (later the same day, load 4-6; sipctl alone, main before it against after it,
interleaved, 5 runs at 200 and 1,000 zones, 2 at 10,000): cpu per added zone 1.68 -> 1.54 ms
(least of runs: 1.66 -> 1.53), 10,000 zones with ``--parallel 2`` 18.5 -> 17.5 s of cpu.
Most of it is the garbage collector (0.78 -> 0.37 s at 10,000 zones, and the 57 ms the end of
a run of 1,000 spent scanning every plan once more). What a zone still costs is the
libraries' own work, measured apart on one warm process (us per zone): libyaml and PyYAML
95, pydantic 42, dnspython decoding the 11 owned records of the transfer 170 and writing
their text 40, the transfer's framing and TSIG check 60: about 0.4 ms before sipctl's own
code runs, and about 0.6 ms in a run, where the phases share the caches. 0.5 ms per zone
would take reading a zone without those libraries (our own decoder of the owned records,
or our own YAML reading), which sipctl does not write; the zone file path is dnspython's
zone reader (1.8 ms for a file of 20 records, half of it the tokenizer and record parsers,
half adding each record to the zone; reading the records into a plain list of rrsets
through its own ``dns.zonefile.Reader`` costs the same).

Measured 2026-12-07 (load 3-9; each side an installed sipctl, before and after the run's
own costs around the domains were cut, interleaved): 200 -> 1,000 zones, medians of 5, cpu
per added zone 1.58 -> 1.38 ms with ``--parallel 1`` (octoDNS 4.07, BIND 0.16-0.19 ms under
sipctl, 0.43 under octoDNS); 10,000 zones, two runs each, ``--parallel 2`` 19.1-19.9 ->
16.7-17.0 s of cpu (the parent's 2.0-2.1 -> 1.1 s: one message per plan was 0.1 ms of its
cpu each), ``--parallel 1`` 17.0-17.1 -> 15.7-15.9 s (a pool of one thread woke the command's
for each domain). Zone files, 1,000 -> 5,000, one run each: 3.5 -> 3.0 ms per added file
with ``--parallel 1``, 3.3 -> 3.2 with 2. The libraries' own work, in one warm process (us):
libyaml and PyYAML 100-115 per spec, pydantic 45-55, dnspython decoding the 12 owned records
of a transfer 205-220 and their text 75-85, the TSIG check 40, ``dns.zone.from_text`` of the
bench's 19-line zone file 1,870-2,020.

Measured 2026-12-07, a third pass (load 5-9, on some runs 13; installed copies of 7e4fd25
and of a change that decoded neither the transfer's owners nobody asked for nor its SOA; the
first half, which followed the message's compression pointers itself, was taken back: it
grew sipctl's own reading of DNS messages for no saving the whole process shows):
interleaved, 7 runs each, 200 -> 1,000 zones ``--parallel 1``: 1.344 -> 1.343 ms of cpu
per added zone (least: 1.314 -> 1.324), the same within the noise of the shared machine;
in one process the read gained 0.03 ms of 0.74-0.82 (bench/zone_phases.py). This bench with
the change, medians of 5: sipctl 1.37 ms per added zone with ``--parallel 1`` and 1.54 with
2, octoDNS 3.54; BIND 0.163 and 0.138 ms under sipctl, 0.350 under octoDNS. 10,000 zones,
two runs at load 13.5 (wall meaningless): ``--parallel 2`` 18.9 s of cpu, ``--parallel 1``
17.4 s, BIND 2.0-2.6 s. What is left per zone is the libraries' (bench/zone_phases.py):
of the read's 0.7 ms in place, dnspython's own decoding of the owned records and names,
their text and the TSIG check are 0.45; 0.5 ms per zone for the whole plan would need
sipctl to read DNS messages, or YAML, without those libraries, which it does not.

Whether a zone costs more in a run of more zones (the 1.8 ms per zone at 10,000 above against
1.34-1.37 between 200 and 1,000): ``bench/run_growth.py`` splits a run step by step at each
size. Measured side by side at one load it does not (2026-12-07, load 5-9, ``--parallel 1``:
1.64 and 1.66 ms per added zone from 1,000 to 5,000 and from 5,000 to 10,000); the
figures above were taken on different days at different loads.

Needs the bench extra: ``pip install -e '.[bench]'`` (octoDNS and octodns-bind). Run as root
like the tests: ``python bench/peer_scale.py`` (``--zones 200,1000,5000 --runs 5 --big 10000
--zonefiles 1000,10000``; an empty ``--zones`` or ``--zonefiles`` skips that part).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.bind import SECRET_ENV, BindServer, dns_spec, zone_text
from measure import Sample, print_table, run_measured
from octodns_desired import SIP_BLOCK

OCTODNS = (
    SIP_BLOCK
    + """
import sys

host, port, key, algorithm, secret, zones_file = sys.argv[1:7]
provider = Rfc2136Provider("bind", host=host, port=int(port), key_name=key,
                           key_secret=secret, key_algorithm=algorithm)
changes = sum(plan_zone(provider, zone) for zone in open(zones_file).read().split())
print("changes:", changes)
"""
)


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


def sipctl_plan(specs: Path, parallel: int) -> list[str]:
    return [sys.executable, "-m", "sipctl", "plan", "-f", str(specs), "--detailed-exitcode",
            "--quiet", "--parallel", str(parallel)]  # fmt: skip


def apply_all(specs: Path, env: dict[str, str]) -> float:
    """Apply every spec once (``--parallel 2``); its wall seconds."""
    applied = run_measured(
        [
            sys.executable,
            "-m",
            "sipctl",
            "apply",
            "-f",
            str(specs),
            "--auto-approve",
            "--parallel",
            "2",
            "--quiet",
        ],
        env=env,
    )
    assert applied.returncode == 0, "the bench's specs must apply:\n" + applied.stdout[-2000:]
    return applied.wall


def big_bind(count: int, runs: int, work: Path) -> list[dict[str, str]]:
    """sipctl's no-op plans of ``count`` zones on one BIND (how long BIND takes to load them,
    and the apply, are reported too)."""
    zones = [f"b{n:05d}.example" for n in range(count)]
    bind = BindServer(work / f"bind-big-{count}")
    started = time.perf_counter()
    bind.start({zone: zone_text(zone) for zone in zones}, timeout=1800)
    loaded = time.perf_counter() - started
    try:
        specs = work / f"specs-big-{count}"
        specs.mkdir()
        for zone in zones:
            (specs / f"{zone}.yaml").write_text(dns_spec(bind, zone))
        env = {**os.environ, SECRET_ENV: bind.secret}
        applied = apply_all(specs, env)
        rows: dict[int, list[tuple[Sample, float]]] = {2: [], 1: []}
        for _ in range(runs):
            for parallel, samples in rows.items():
                samples.append(measured(bind, sipctl_plan(specs, parallel), env))
                assert samples[-1][0].returncode == 0, "sipctl must find nothing to change"
    finally:
        bind.stop()
    return [
        {
            "zones": f"{count:,}",
            "BIND start (loads them)": f"{loaded:.1f} s",
            "apply": f"{applied:.0f} s",
            "plan": f"--parallel {parallel}",
            "wall": f"{statistics.median(s.wall for s, _ in samples):.2f} s",
            "cpu": f"{statistics.median(s.cpu for s, _ in samples):.2f} s",
            "BIND cpu": f"{statistics.median(b for _, b in samples):.2f} s",
        }
        for parallel, samples in rows.items()
    ]


def zonefile_spec(zone: str, file: str) -> str:
    """The bench's spec of ``zone`` on the zonefile provider (the same records as on BIND);
    ``file`` as the spec names it."""
    return (
        f"version: 1\ndomain: {zone}\n"
        "transports: {udp: {port: 5060}, tcp: {port: 5060}, tls: {port: 5061}}\n"
        f"servers: [{{host: asterisk.{zone}, ipv4: [203.0.113.10], priority: 10}}]\n"
        "users: {director: 105, alex: 106, '101': 101}\n"
        f"dns:\n  provider: zonefile\n  file: {file}\n  ttl: 3600\n"
    )


def zone_files(count: int, runs: int, work: Path) -> list[dict[str, float]]:
    """sipctl's no-op plans of ``count`` specs, each on its own zone file."""
    # the zone files inside the specs' directory, where a spec's zone file may be (zone_places)
    specs = work / f"zonefiles-{count}" / "specs"
    zones_dir = specs / "zones"
    zones_dir.mkdir(parents=True)
    for n in range(count):
        zone = f"z{n:05d}.example"
        (zones_dir / f"{zone}.zone").write_text(zone_text(zone))
        (specs / f"{zone}.yaml").write_text(zonefile_spec(zone, f"zones/{zone}.zone"))
    apply_all(specs, dict(os.environ))
    rows: dict[int, list[Sample]] = {1: [], 2: []}
    for _ in range(runs):
        for parallel, samples in rows.items():
            samples.append(run_measured(sipctl_plan(specs, parallel)))
            assert samples[-1].returncode == 0, "sipctl must find nothing to change"
    return [
        {
            "parallel": float(parallel),
            "zones": float(count),
            "wall": statistics.median(s.wall for s in samples),
            "cpu": statistics.median(s.cpu for s in samples),
        }
        for parallel, samples in rows.items()
    ]


def print_zone_files(results: list[dict[str, float]]) -> None:
    print_table(
        [
            {
                "zone files": f"{r['zones']:,.0f}",
                "sipctl plan": f"--parallel {r['parallel']:.0f}",
                "wall": f"{r['wall']:.2f} s",
                "cpu": f"{r['cpu']:.2f} s",
            }
            for r in results
        ]
    )
    print()
    slopes = []
    for parallel in sorted({r["parallel"] for r in results}):
        mine = sorted((r for r in results if r["parallel"] == parallel), key=lambda r: r["zones"])
        if len(mine) < 2:
            continue
        first, last = mine[0], mine[-1]
        added = last["zones"] - first["zones"]
        slopes.append(
            {
                "sipctl plan (zone files)": f"--parallel {parallel:.0f}",
                "cpu per added zone": f"{1000 * (last['cpu'] - first['cpu']) / added:.2f} ms",
                "wall per added zone": f"{1000 * (last['wall'] - first['wall']) / added:.2f} ms",
            }
        )
    if slopes:
        print_table(slopes)


NAMES = {
    0.0: "sipctl plan --parallel 1",
    1.0: "sipctl plan --parallel 2",
    2.0: "octoDNS + octodns-bind (SIP names)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--zones", default="200,1000,5000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big", type=int, default=10000, help="zones on one BIND; 0 skips")
    parser.add_argument("--zonefiles", default="1000,10000", help="sizes; empty skips")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-peer-"))
    if args.zones:
        try:
            import octodns_bind  # noqa: F401
        except ImportError:
            print("needs the bench extra: pip install -e '.[bench]'", file=sys.stderr)
            return 1
        peers(args, work)
    if args.big:
        print()
        print_table(big_bind(args.big, args.runs, work))
    if args.zonefiles:
        print()
        sizes = [int(n) for n in args.zonefiles.split(",")]
        print_zone_files([row for size in sizes for row in zone_files(size, args.runs, work)])
    print(f"\nmedians of {args.runs} interleaved runs; load {os.getloadavg()[0]:.1f}")
    return 0


def peers(args: argparse.Namespace, work: Path) -> None:
    """sipctl beside octoDNS at each size of ``--zones``: the table and the slopes."""
    sizes = [int(n) for n in args.zones.split(",")]
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


if __name__ == "__main__":
    raise SystemExit(main())
