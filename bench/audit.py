"""Bench: what does ``sipctl audit`` cost, in packets and seconds, as a domain grows?

Starts a real BIND and a real Asterisk 22 (the test fixtures: root, bind9 and the cached
Asterisk chroot; ``pip install -e .[test]``), applies a spec with N declared names, and runs
the whole audit (live dialplan, calls, REGISTER/MESSAGE, enumeration, port knocks) at the
default rate limit. Prints one row per size: requests and packets per kind, seconds.

The count is bounded by design: about 75 INVITEs (fixed, whatever the size; up to 6 more
when declared names have no phone), 3 x (N + 3) OPTIONS/REGISTER/MESSAGE, and up to 13 port
knocks per address (the ports the spec allows are skipped); an INVITE costs 2-3 packets.

Run: ``python bench/audit.py`` (``--sizes 1,10,50``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from asterisk_helpers import apply_spec, spec_data, write_spec  # noqa: E402
from fixtures.asterisk import running_asterisk  # noqa: E402
from fixtures.bind import SECRET_ENV, BindServer  # noqa: E402

from sipctl.reconciler.audit.run import run_audit  # noqa: E402
from sipctl.schemas.loader import load_spec  # noqa: E402

KINDS = ("invite", "options", "register", "message", "port")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50", help="declared names per run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    bind = BindServer()
    bind.start()
    rows: list[tuple[int, dict[str, tuple[int, int]], int, float, int]] = []
    try:
        with running_asterisk() as pbx, tempfile.TemporaryDirectory() as work:
            zone = bind.new_zone(
                extra=(
                    '@ IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp\n'
                    f"_sip._udp IN SRV 10 0 {pbx.sip_port} pbx\npbx IN A 127.0.0.1\n"
                )
            )
            for size in sizes:
                users = {f"user{i}": str(200 + i) for i in range(size)}
                data = spec_data(pbx, users=users)
                data["domain"] = zone
                data["dns"] = {
                    "provider": "rfc2136",
                    "server": bind.server,
                    "tsig": {"name": bind.key_name, "secret_env": SECRET_ENV},
                }
                data["fail2ban"] = {"logpath": str(pbx.log_path)}
                spec = write_spec(Path(work), data, f"bench-{size}.yaml")
                apply_spec(spec)
                report = run_audit(load_spec(spec), bind.server)
                counts = {k: (c.requests, c.packets) for k, c in report.counts.items()}
                rows.append((size, counts, report.packets, report.seconds, len(report.findings)))
    finally:
        bind.stop()
    header = f"{'names':>5} " + " ".join(f"{k + ' req/pkt':>17}" for k in KINDS)
    print(header + f" {'packets':>8} {'seconds':>8} {'findings':>8}")
    for size, counts, packets, seconds, findings in rows:
        cells = " ".join(f"{'/'.join(map(str, counts.get(k, (0, 0)))):>17}" for k in KINDS)
        print(f"{size:>5} {cells} {packets:>8} {seconds:>8.1f} {findings:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
