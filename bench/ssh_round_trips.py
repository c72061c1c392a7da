"""Bench: SSH round trips of plan and apply on one PBX host with asterisk, firewall and
fail2ban layers (a real sshd, Asterisk and fail2ban-server in a network namespace).

Counts exec channels opened on the ONE pooled connection per host (each is a round trip),
and apart from them the firewall confirmation's own new connection (by design not pooled:
it proves a new login still works under the new rules). Steps: a no-op plan, a plan with
one change, the guarded apply of that saved plan (``sipctl apply plan.json``: lock, re-read,
apply, record, release) and ``apply -f`` of one change (lock, read, apply, record, release);
then a no-op plan with the read-only login, through the host's read gate (one request per
round trip of the normal login); last, the host as a hosting PBX with TLS, WSS and two
customers' click-to-call pages published on it (its first apply, a no-op plan, drift, a
no-op ``apply -f``, a no-op plan through its read gate, where the TLS key is answered only
as its sha256 and public key in the same request, and ``apply -f`` after a customer's file
was deleted).

Every layer's declared reads of the host (files, keys, programs whose words depend on no
file, the firewall's read script: ``Provider.host_reads``) go in ONE round trip
(``providers/transport/batch.py``); the host profile (/etc/sipctl/host.yaml, which names the
programs) is read before it, once per run.

Measured (round trips on the pooled connection; before: 599a17e, after: the 2 December
stop; 7 December: main at 2c4e2d1, after the later stops' work, not broken down):

| step | before | after | 7 December |
|---|---|---|---|
| first apply (apply -f) | 13 | 11 | 12 |
| no-op plan | 4 | 2 | 2 |
| plan with a change (+tcp/443) | 4 | 2 | 2 |
| guarded apply of that plan (apply plan.json) | 9 | 7 | 6 |
| apply -f of one change (-tcp/443) | 9 | 7 | 6 |
| no-op plan after it | 4 | 2 | 2 |
| no-op plan through the read gate (read-only login) | 4 | 2 | 2 |
| hosting, TLS, WSS, pages: first apply | 19 | 13 | 15 |
| hosting, TLS, WSS, pages: no-op plan | 8 | 2 | 2 |
| hosting, TLS, WSS, pages: drift | 8 | 2 | 2 |
| hosting, TLS, WSS, pages: no-op apply -f | 10 | 4 | 4 |
| hosting, TLS, WSS, pages: no-op plan through the read gate | 8 | 2 | 2 |
| hosting, TLS, WSS, pages: apply -f removing a customer | 16 | 11 | 12 |

Of the removal's 11 (2 December): the old page's files, named only by the page's record,
are read in a round trip of their own after it; the writes (Asterisk, the page, the page's
record, the host's record) and the reload are one round trip each.

Run: ``sudo .venv/bin/python bench/ssh_round_trips.py`` (``-v`` lists every exchange).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fixtures.host_profile import standalone  # noqa: E402
from fixtures.pbx_host import (  # noqa: E402
    hosting_page_steps,
    pbx_host,
    read_only_plan_step,
    round_trip_steps,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="list every exchange")
    args = parser.parse_args()
    with standalone(), pbx_host() as host:
        steps = round_trip_steps(host)
        steps.append(read_only_plan_step(host))
        steps += hosting_page_steps(host)
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
