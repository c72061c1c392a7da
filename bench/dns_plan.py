"""Bench: does a DNS plan cost the same in a zone of 100 records as in one of 100,000?

Starts a real BIND (bind9 must be installed; the test extras too: ``pip install -e .[test]``),
loads zones of 100, 10,000 and 100,000 unrelated records plus the SIP records (the zone file
is generated directly, not by UPDATE), and measures through the rfc2136 provider:

- a no-op plan (read + diff): time (median of several runs) and peak Python memory,
- a change (a second server added): plan time and apply time,
- the DNS messages each run sends (reads, and UPDATEs for the apply),
- a whole ``sipctl apply`` (a third server added) through a counting proxy in
  front of BIND: connections and messages, the lock and the record of the last apply
  included (lock UPDATE, one pipelined read, one UPDATE with changes, record and release).

Run: ``python bench/dns_plan.py`` (``--sizes 100,1000`` for others; ``--axfr`` also times a
whole-zone transfer parsed by dnspython, the approach sipctl avoids).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fixtures.bind import BindServer, bind_env, dns_spec, zone_text  # noqa: E402
from fixtures.dns_count import DnsCounter  # noqa: E402

from sipctl.cli import run  # noqa: E402
from sipctl.providers.base import RunContext  # noqa: E402
from sipctl.providers.dns.rfc2136 import Rfc2136Provider  # noqa: E402
from sipctl.reconciler.diff import diff  # noqa: E402
from sipctl.reconciler.render.dns import render_dns, zone_snippet  # noqa: E402
from sipctl.schemas.loader import LoadedSpec, load_spec_text  # noqa: E402

ONE_SERVER = "[{{host: asterisk.{z}, ipv4: [203.0.113.10], priority: 10}}]"
TWO_SERVERS = (
    "[{{host: asterisk.{z}, ipv4: [203.0.113.10], priority: 10}}, "
    "{{host: second.{z}, ipv4: [203.0.113.11], priority: 20}}]"
)
THREE_SERVERS = TWO_SERVERS[:-1] + ", {{host: third.{z}, ipv4: [203.0.113.12], priority: 30}}]"


def filler(count: int) -> str:
    """``count`` unrelated records: mostly A, some TXT and MX, like a real zone."""
    lines = []
    for i in range(count):
        if i % 10 == 0:
            lines.append(f'h{i} IN TXT "unrelated record {i}"')
        elif i % 25 == 1:
            lines.append(f"m{i} IN MX 10 h{i - 1}")
        else:
            lines.append(f"h{i} IN A 198.51.{(i // 250) % 250}.{i % 250 + 1}")
    return "\n".join(lines) + "\n"


def load(bind: BindServer, text: str, tmp: Path) -> LoadedSpec:
    return load_spec_text(text, source="bench.yaml", base_dir=tmp)


def plan_once(bind: BindServer, loaded: LoadedSpec, tmp: Path) -> tuple[float, int, int]:
    """One read + diff: seconds, messages sent, number of changes."""
    provider = Rfc2136Provider(loaded, RunContext(base_dir=tmp, env=bind_env(bind)))
    desired = render_dns(loaded.spec)
    start = time.perf_counter()
    changes = diff(desired, provider.read(desired))
    return time.perf_counter() - start, provider.messages_sent, len(changes)


def bench_size(bind: BindServer, size: int, tmp: Path, repeat: int, axfr: bool) -> dict[str, str]:
    zone = f"bench{size}.test"
    sip = zone_snippet(
        load(bind, dns_spec(bind, zone, servers=ONE_SERVER.format(z=zone)), tmp).spec
    )
    made = time.perf_counter()
    bind.new_zone(zone, text=zone_text(zone, filler(size) + sip))
    loaded_in = time.perf_counter() - made
    noop_spec = load(bind, dns_spec(bind, zone, servers=ONE_SERVER.format(z=zone)), tmp)

    times, messages = [], 0
    for _ in range(repeat):
        seconds, messages, changes = plan_once(bind, noop_spec, tmp)
        assert changes == 0, f"the no-op plan of {zone} has {changes} change(s)"
        times.append(seconds)
    tracemalloc.start()
    plan_once(bind, noop_spec, tmp)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    change_spec = load(bind, dns_spec(bind, zone, servers=TWO_SERVERS.format(z=zone)), tmp)
    provider = Rfc2136Provider(change_spec, RunContext(base_dir=tmp, env=bind_env(bind)))
    desired = render_dns(change_spec.spec)
    start = time.perf_counter()
    live = provider.read(desired)
    changes = diff(desired, live)
    planned = time.perf_counter() - start
    read_messages = provider.messages_sent
    start = time.perf_counter()
    provider.apply(changes, live)
    applied = time.perf_counter() - start
    assert plan_once(bind, change_spec, tmp)[2] == 0, "a plan after apply must be empty"
    whole, whole_seconds = whole_apply(bind, zone, tmp)

    row = {
        "unrelated records": f"{size:,}",
        "named load": f"{loaded_in:.2f} s",
        "no-op plan": f"{statistics.median(times) * 1000:.1f} ms",
        "peak mem": f"{peak / 1024:.0f} KiB",
        "msgs (no-op)": str(messages),
        "change plan": f"{planned * 1000:.1f} ms",
        "apply": f"{applied * 1000:.1f} ms",
        "msgs (change)": f"{read_messages} read + {provider.updates_sent} UPDATE",
        "rrsets changed": str(len(changes)),
        "sipctl apply": f"{whole_seconds * 1000:.1f} ms",
        "msgs (sipctl apply)": whole,
    }
    if axfr:
        row["AXFR+parse"] = f"{time_axfr(bind, zone):.2f} s"
    bind.delete_zone(zone)
    return row


def whole_apply(bind: BindServer, zone: str, tmp: Path) -> tuple[str, float]:
    """A whole ``sipctl apply -f`` as a user runs it (read, lock, check, apply, record,
    release) adding a third server, through a proxy that counts what reaches BIND."""
    host, _, port = bind.server.rpartition(":")
    with DnsCounter(host, int(port)) as counter:
        text = dns_spec(bind, zone, servers=THREE_SERVERS.format(z=zone))
        spec = tmp / "sipctl.yaml"
        spec.write_text(text.replace(f"'{bind.server}'", f"'{counter.server}'"))
        os.environ.update(bind_env(bind))
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"])
        seconds = time.perf_counter() - start
        counts = counter.snapshot()
    assert code == 0, "the whole apply must succeed"
    text = f"{counts['connection']} conn: {counts['query']} query + {counts['update']} UPDATE"
    return text, seconds


def time_axfr(bind: BindServer, zone: str) -> float:
    start = time.perf_counter()
    bind.zone_records(zone)
    return time.perf_counter() - start


def print_table(rows: list[dict[str, str]]) -> None:
    headers = list(rows[0])
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in headers]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(row[h].rjust(w) for h, w in zip(headers, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100,10000,100000", help="unrelated records per zone")
    parser.add_argument("--repeat", type=int, default=5, help="no-op plans per size (median)")
    parser.add_argument("--axfr", action="store_true", help="also time AXFR + parse")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from sipctl.providers.base import load_provider
    from sipctl.providers.dns import lock  # noqa: F401  # imported by the first lock
    from sipctl.providers.transport import host_lock  # noqa: F401
    from sipctl.schemas import checks  # noqa: F401  # imported by the first plan

    load_provider("rfc2136")  # the entry points are scanned once per process

    bind = BindServer()
    bind.start()
    try:
        rows = [bench_size(bind, size, bind.dir, args.repeat, args.axfr) for size in sizes]
    finally:
        bind.stop()
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
