"""The test tiers: every test that needs root or a server carries that server's marker, and
every other one is marked ``fast`` (``scripts/test --fast`` runs ``-m fast``: no root, no
servers, nothing installed beyond the venv).

The markers come from the fixtures a test uses, so a test that starts BIND through the
``bind`` fixture is marked ``bind`` without anyone writing it; a test that starts a program
itself says so with its own marker (``pytestmark = pytest.mark.fail2ban``).
"""

from __future__ import annotations

import pytest

# fixture -> the marker of what it starts
FIXTURE_MARKERS = {
    "bind": "bind",
    "bind_zone": "bind",
    "asterisk": "asterisk",
    "netns": "netns",
    "netns_pair": "netns",
    "ssh_server": "sshd",
    "pebble": "pebble",
    "powerdns": "powerdns",
    "powerdns_zone": "powerdns",
    "route53": "route53",
    "route53_zone": "route53",
    "route53_env": "route53",
    "temporal": "temporal",
}

# What a test may need that the fast tier does not have (pyproject's markers say what each is).
NOT_FAST = frozenset(
    {*FIXTURE_MARKERS.values(), "fail2ban", "chromium", "root", "programs", "slow"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        for marker in sorted({FIXTURE_MARKERS[f] for f in fixtures if f in FIXTURE_MARKERS}):
            item.add_marker(marker)
        if not any(mark.name in NOT_FAST for mark in item.iter_markers()):
            item.add_marker("fast")
