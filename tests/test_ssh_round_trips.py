"""Round trips over SSH to one PBX host with asterisk, firewall and fail2ban layers: a real
sshd, Asterisk and fail2ban-server in a network namespace (``fixtures/pbx_host.py``).

The count is deterministic (exec channels opened on the one pooled connection), so it is
held to a ceiling here; ``bench/ssh_round_trips.py`` prints the same steps as a table.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fixtures.pbx_host import PbxHost, Step, hosting_page_steps, pbx_host, round_trip_steps

pytestmark = [pytest.mark.asterisk, pytest.mark.netns, pytest.mark.sshd, pytest.mark.slow]

# (step, most round trips on the pooled connection)
# Each run reads the host profile once (the programs of the asterisk and fail2ban layers);
# then the files, programs and the firewall's script all three layers declare go in one
# round trip (providers/transport/batch.py).
CEILINGS = {
    "no-op plan": 2,
    "plan with a change (+tcp/443)": 2,
    "guarded apply of that plan (apply plan.json)": 7,
    "apply -f of one change (-tcp/443)": 7,
    "no-op plan after it": 2,
}


@pytest.fixture(scope="module")
def host() -> Iterator[PbxHost]:
    with pbx_host() as started:
        yield started


def test_a_guarded_apply_on_one_host_takes_at_most_seven_round_trips(host: PbxHost) -> None:
    steps: dict[str, Step] = {step.name: step for step in round_trip_steps(host)}
    for name, ceiling in CEILINGS.items():
        step = steps[name]
        listing = "\n".join(f"  {n}. {what}" for n, what in enumerate(step.exchanges, 1))
        assert step.round_trips <= ceiling, f"{name}: {step.round_trips} round trips\n{listing}"
        assert step.connections == 1, f"{name}: one pooled connection per host per run"
    applied = steps["guarded apply of that plan (apply plan.json)"]
    assert sum("held:" in what for what in applied.exchanges) == 1, "one host lock per run"
    assert applied.confirm_connections == 1, "the firewall confirms over one new login"
    assert steps["no-op plan after it"].round_trips == steps["no-op plan"].round_trips


# A hosting PBX with TLS, WSS and customers' pages: its record of the last apply, the page
# record, the page's files, the certificate and key, the Asterisk and fail2ban files and
# programs, the firewall's script: all in one round trip, through the read gate too (the key answered only
# as a key in the same request); before, each took one of its own: 8, 8, 10, 8 and 16.
HOSTING_CEILINGS = {
    "hosting, TLS, WSS, pages: no-op plan": 2,
    "hosting, TLS, WSS, pages: drift": 2,
    "hosting, TLS, WSS, pages: no-op apply -f": 4,
    "hosting, TLS, WSS, pages: no-op plan through the read gate": 2,
    # 12: Asterisk's reload is followed by the removal of the mark of files not loaded yet
    # (providers/load_mark.py), which tells a plan after an apply killed before the reload
    "hosting, TLS, WSS, pages: apply -f removing a customer": 12,
}


def test_a_hosting_pbx_with_tls_wss_and_pages_plans_in_two_round_trips(host: PbxHost) -> None:
    steps: dict[str, Step] = {step.name: step for step in hosting_page_steps(host)}
    for name, ceiling in HOSTING_CEILINGS.items():
        step = steps[name]
        listing = "\n".join(f"  {n}. {what}" for n, what in enumerate(step.exchanges, 1))
        assert step.round_trips <= ceiling, f"{name}: {step.round_trips} round trips\n{listing}"
        assert step.connections == 1, f"{name}: one pooled connection per host per run"
