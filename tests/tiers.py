"""The test tiers: every test that needs root or a server carries that server's marker, and
every other one is marked ``fast`` (``scripts/test --fast`` runs ``-m fast``: no root, no
servers, nothing installed beyond the venv).

The markers come from the fixtures a test uses, so a test that starts BIND through the
``bind`` fixture is marked ``bind`` without anyone writing it, and from the servers the
test's own code or its module's fixtures start by name (``make_netns()``, a ``pbx`` fixture
around ``running_asterisk()``). A test that starts a program some other way says so with its
own marker (``pytestmark = pytest.mark.fail2ban``): scripts/test --fast, run as a user
without those programs, is what finds one that does not.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

# fixture -> the marker of what it starts
FIXTURE_MARKERS = {
    "bind": "bind",
    "bind_zone": "bind",
    "asterisk": "asterisk",
    "hosting_pbx": "asterisk",
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

# what starts a server when a test or a fixture of its module calls it -> that server's marker
STARTERS = {
    "running_asterisk": "asterisk",
    "two_phone_pbx": "asterisk",  # fixtures.hosting's running_asterisk with two phones
    "BindServer": "bind",
    "make_netns": "netns",
    "start_sshd": "sshd",
    "running_pebble": "pebble",
    "PowerDnsServer": "powerdns",
    "MotoRoute53": "route53",
    "TemporalDevServer": "temporal",
}
_STARTER = re.compile(r"\b(" + "|".join(STARTERS) + r")\(")

# What a test may need that the fast tier does not have (pyproject's markers say what each is).
NOT_FAST = frozenset(
    {*FIXTURE_MARKERS.values(), "fail2ban", "chromium", "root", "programs", "slow"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        needs = {FIXTURE_MARKERS[f] for f in fixtures if f in FIXTURE_MARKERS}
        for code in _own_code(item):
            needs |= _started_by(code)
        for marker in sorted(needs):
            item.add_marker(marker)
        if not any(mark.name in NOT_FAST for mark in item.iter_markers()):
            item.add_marker("fast")


def _own_code(item: pytest.Item) -> list[Callable[..., Any]]:
    """The test function and the fixtures it uses that its own module defines (the shared
    fixtures are known by name above)."""
    code = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)  # pytest's own record of the fixture closure
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        code.extend(d.func for d in definitions if not d.func.__module__.startswith("fixtures."))
    return [c for c in code if callable(c)]


@cache
def _started_by(code: Callable[..., Any]) -> frozenset[str]:
    # A function's source is a part of its file: one that names no starter says none
    # (reading each function's source tokenizes it, which took each pytest process about
    # a second for the suite's 1,400 functions and fixtures).
    where = getattr(inspect.unwrap(code), "__code__", None)
    if where is not None and not _names_a_starter(where.co_filename):
        return frozenset()
    try:
        source = inspect.getsource(code)
    except (OSError, TypeError):
        return frozenset()
    return frozenset(STARTERS[name] for name in _STARTER.findall(source))


@cache
def _names_a_starter(filename: str) -> bool:
    try:
        return _STARTER.search(Path(filename).read_text(encoding="utf-8")) is not None
    except (OSError, UnicodeDecodeError):
        return True  # unknown: the function's own source decides
