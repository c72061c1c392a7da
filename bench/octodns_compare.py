"""Bench: sipctl against octoDNS managing the same SIP block of a 10,000-record zone.

Both as whole processes against the same real BIND, paired in one run: sipctl's no-op
``plan`` (it asks for its own names only) and octoDNS's own BIND provider
(``octodns_bind.Rfc2136Provider``: the zone read by AXFR) planning the same NAPTR, SRV, TXT
and A records, scoped to those names with octoDNS's ``NameAllowlistFilter``. Both find
nothing to change. Printed: median cpu seconds and the ratio.

Needs the bench extra: ``pip install -e '.[bench]'`` (octoDNS and octodns-bind).
Run: ``python bench/octodns_compare.py`` (``--records 10000 --runs 5``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.bind import SECRET_ENV, BindServer, dns_spec, zone_text
from measure import installed_sipctl, median_cpu, print_table, run_measured
from octodns_desired import SIP_BLOCK

OCTODNS = (
    SIP_BLOCK
    + """
import sys

host, port, zone, key, algorithm, secret = sys.argv[1:7]
provider = Rfc2136Provider("bind", host=host, port=int(port), key_name=key,
                           key_secret=secret, key_algorithm=algorithm)
print("changes:", plan_zone(provider, zone))
"""
)


def filler(count: int) -> str:
    return "".join(f"h{i} IN A 198.51.{(i // 250) % 250}.{i % 250 + 1}\n" for i in range(count))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=10000, help="unrelated records")
    parser.add_argument("--runs", type=int, default=5, help="paired runs (median)")
    args = parser.parse_args()
    try:
        import octodns_bind  # noqa: F401
    except ImportError:
        print("needs the bench extra: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-"))
    python = installed_sipctl(work)
    bind = BindServer()
    bind.start()
    try:
        zone = bind.new_zone("compare.test", text=zone_text("compare.test", filler(args.records)))
        spec = work / "sipctl.yaml"
        spec.write_text(dns_spec(bind, zone))
        env = {**os.environ, SECRET_ENV: bind.secret}
        sipctl = [str(python), "-m", "sipctl"]
        applied = run_measured(
            [*sipctl, "apply", "-f", str(spec), "--auto-approve", "--no-verify"], env=env
        )
        assert applied.returncode == 0, "the bench spec must apply"
        host, _, port = bind.server.rpartition(":")
        octo = [
            sys.executable,
            "-c",
            OCTODNS,
            host,
            port,
            zone,
            bind.key_name,
            bind.algorithm,
            bind.secret,
        ]
        plan = [*sipctl, "plan", "-f", str(spec), "--detailed-exitcode"]
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(run_measured(plan, env=env))
            theirs.append(run_measured(octo, env=env))
            assert ours[-1].returncode == 0, "sipctl's plan must find nothing to change"
            assert theirs[-1].returncode == 0, "octoDNS's plan must run"
    finally:
        bind.stop()
    rows = [
        {"tool": "sipctl plan", "cpu (median)": f"{median_cpu(ours):.2f} s"},
        {"tool": "octoDNS (octodns-bind, AXFR)", "cpu (median)": f"{median_cpu(theirs):.2f} s"},
    ]
    print_table(rows)
    print(
        f"\n{args.records:,} unrelated records; octoDNS/sipctl = "
        f"{median_cpu(theirs) / median_cpu(ours):.1f}x; octoDNS said: {theirs[-1].stdout.strip()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
