"""Shared test setup. Real servers are started by the fixture plugins in tests/fixtures/."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# A suite started in the background of a shell without job control ("scripts/test &", nohup
# in a script, some CI runners) inherits SIGINT ignored, and so would every sipctl a test
# starts (an ignored signal stays ignored across exec): the tests of Ctrl-C at apply's
# question then wait for a process that never sees it. A terminal's Ctrl-C is what they
# test, so the suite's processes take SIGINT as Python does by default, and pass that on.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
