"""Bench: SSH round trips of plan and apply on one PBX host with asterisk, firewall and
fail2ban layers (a real sshd, Asterisk and fail2ban-server in a network namespace).

Counts exec channels opened on the ONE pooled connection per host (each is a round trip),
and apart from them the firewall confirmation's own new connection (by design not pooled:
it proves a new login still works under the new rules). Steps: a no-op plan, a plan with
one change, the guarded apply of that saved plan (``sipctl apply plan.json``: lock, re-read,
apply, record, release) and ``apply -f`` of one change (lock, read, apply, record, release);
last, a no-op plan with the read-only login, through the host's read gate (one request per
round trip of the normal login).

Measured (Dec 2026): the no-op plan takes 3 round trips on one connection, through the read
gate as through the root login (asterisk, firewall, fail2ban: one request each); since the
programs come from the host's profile (/etc/sipctl/host.yaml), one more reads it, once per run.

Run: ``sudo .venv/bin/python bench/ssh_round_trips.py`` (``-v`` lists every exchange).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fixtures.pbx_host import pbx_host, read_only_plan_step, round_trip_steps  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="list every exchange")
    args = parser.parse_args()
    with pbx_host() as host:
        steps = round_trip_steps(host)
        steps.append(read_only_plan_step(host))
    head = ("step", "round trips", "connections", "confirm connections", "their round trips")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for step in steps:
        print(
            f"{step.name} | {step.round_trips} | {step.connections} | "
            f"{step.confirm_connections} | {step.confirm_round_trips}"
        )
    if args.verbose:
        for step in steps:
            print(f"\n{step.name}:")
            for n, line in enumerate(step.exchanges, 1):
                print(f"  {n:2d}. {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
