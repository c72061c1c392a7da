"""Bench: what a certificate costs: an ACME DNS-01 order through sipctl's own DNS layer.

Starts a real BIND and Debian's ``pebble`` (validating against that BIND, no sleep before
validation, certificates valid for 10 days), then for certificates of 2, 5 and 10 names (the
domain and 1, 4, 9 servers) runs through the CLI, as a user does:

- ``sipctl apply`` that obtains the first certificate,
- ``sipctl plan`` when nothing is due (median of 3): no order, only the files are read,
- ``sipctl apply`` that renews it (renew_days above the 10 days pebble gives),

and counts, through a proxy in front of BIND, the DNS connections and messages sipctl sends
(the lock, the challenge records and their removal, the DNS layer's read, the record of the
apply). The PBX is a ``dir:`` target: no reload, only the order and the files.

Run as root with the test environment: ``sudo .venv/bin/python bench/certificate.py``.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fixtures.bind import BindServer, bind_env  # noqa: E402
from fixtures.dns_count import DnsCounter  # noqa: E402
from fixtures.pebble import PebbleServer  # noqa: E402

from sipctl.cli import run  # noqa: E402


def spec_text(server: str, key_name: str, zone: str, pebble: PebbleServer, root: Path,
              names: int, renew_days: int) -> str:  # fmt: skip
    servers = ", ".join(
        f"{{host: s{i}.{zone}, ipv4: [203.0.113.{i + 10}]}}" for i in range(names - 1)
    )
    return (
        f"version: 1\ndomain: {zone}\n"
        "transports: {udp: {port: 5060}, tls: {port: 5061}}\n"
        f"servers: [{servers}]\n"
        f"dns:\n  provider: rfc2136\n  server: '{server}'\n"
        f"  tsig: {{name: {key_name}, secret_env: SIPCTL_TSIG_SECRET}}\n"
        f"asterisk:\n  target: dir:{root}\n  tls:\n"
        "    cert_file: /etc/asterisk/keys/asterisk.pem\n"
        "    key_file: /etc/asterisk/keys/asterisk.key\n"
        f"    acme: {{directory: '{pebble.directory}', renew_days: {renew_days}, "
        f"ca_file: '{pebble.ca_file}'}}\n"
    )


def timed(args: list[str]) -> tuple[int, float]:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = run(args)
    return code, time.perf_counter() - start


def measure(bind: BindServer, pebble: PebbleServer, names: int, tmp: Path) -> dict[str, str]:
    zone = bind.new_zone()
    root = tmp / zone
    spec = tmp / f"{zone}.yaml"
    host, _, port = bind.server.rpartition(":")
    row = {"names": str(names)}
    with DnsCounter(host, int(port)) as counter:
        for label, renew_days, command in (
            ("obtain", 5, "apply"),
            ("renew", 30, "apply"),
        ):
            spec.write_text(spec_text(counter.server, bind.key_name, zone, pebble, root, names,
                                      renew_days))  # fmt: skip
            before = counter.snapshot()
            code, seconds = timed([command, "-f", str(spec), "--auto-approve", "--no-verify"])
            assert code == 0, f"{label} failed"
            after = counter.snapshot()
            row[f"{label} s"] = f"{seconds:.2f}"
            row[f"{label} DNS"] = (
                f"{after['connection'] - before['connection']} conn, "
                f"{after['update'] - before['update']} UPDATE, "
                f"{after['query'] - before['query']} query"
            )
            if label == "obtain":
                spec.write_text(spec_text(counter.server, bind.key_name, zone, pebble, root,
                                          names, 5))  # fmt: skip
                runs = [timed(["plan", "-f", str(spec), "--detailed-exitcode"]) for _ in range(3)]
                assert all(code == 0 for code, _ in runs), "nothing should be due"
                row["no-op plan s"] = f"{statistics.median(s for _, s in runs):.2f}"
    bind.delete_zone(zone)
    return row


def main() -> None:
    bind = BindServer()
    bind.start()
    pebble = PebbleServer(bind.server, 10 * 86400)
    try:
        pebble.start()
        os.environ.update(bind_env(bind))
        with tempfile.TemporaryDirectory(prefix="sipctl-bench-cert-") as tmp:
            rows = [measure(bind, pebble, n, Path(tmp)) for n in (2, 5, 10)]
    finally:
        pebble.stop()
        bind.stop()
    headers = list(rows[0])
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in headers]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(row[h].ljust(w) for h, w in zip(headers, widths, strict=True)))


if __name__ == "__main__":
    main()
