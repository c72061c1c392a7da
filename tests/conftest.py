"""Shared test setup. Real servers are started by the fixture plugins in tests/fixtures/."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = [
    "fixtures.state_dir",  # first: no test touches the machine's /var/lib/sipctl
    "fixtures.common",
    "fixtures.properties",  # the Hypothesis profile scripts/test --fast loads
    "fixtures.host_profile",
    "fixtures.bind",
    "fixtures.sshd",
    "fixtures.netns",  # before asterisk, which imports it (else pytest cannot rewrite it)
    "fixtures.asterisk",
    "fixtures.pebble",
    "fixtures.powerdns",
    "fixtures.moto_route53",
    "fixtures.temporal",
    "fixtures.hosting",  # after bind and asterisk, which it imports
    "tiers",  # markers from the fixtures a test uses; the rest is the fast tier
]
